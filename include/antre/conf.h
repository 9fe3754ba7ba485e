/* conf.h: antre's configuration: one declarative table of directives, an INI file.
 *
 * Every directive is declared once in common/conf.c (section, name, type, bounds, default,
 * whether a reload may change it, a one-line help). conf/antre.conf lists them all.
 * Loading parses the whole file into a fresh `struct conf`, starting from the defaults, and
 * reports every problem as `file:line: [section] name: reason`. A reload (SIGHUP) loads the file
 * the same way and then keeps, from the running config, every value that cannot change without
 * a restart, reporting each such change. */
#ifndef ANTRE_CONF_H
#define ANTRE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONF_STR 256
#define CONF_ADDR 64

/* A listen address as written ("127.0.0.1:8080", "[::1]:8080", "*:8080") and as parsed. */
struct conf_addr {
    char text[CONF_ADDR];
    struct sockaddr_storage sa;
    socklen_t salen;
};

struct conf_gateway {
    struct conf_addr listen;
    struct conf_addr admin_listen;
    char admin_token_file[CONF_STR];
    int processes;
    int backlog;
    char trusted_proxies[CONF_STR]; /* cidr.h list; checked at load */
    int proxy_protocol;
    int max_connections;
    int max_url_bytes;
    int max_header_bytes;
    int max_headers;
    int64_t max_body_bytes;
    int header_timeout_ms;
    int body_timeout_ms;
    int idle_timeout_ms;
    int write_timeout_ms;
    int drain_timeout_ms;
    double per_ip_rate;
    int per_ip_burst;
    int per_ip_table_size;
    int per_ip_max_connections; /* per client IP, all processes; 0 = off */
    int body_min_rate;          /* bytes/s a body must average after the grace */
    int body_total_timeout_ms;  /* the whole body, plus size / body_min_rate s */
    char access_log[CONF_STR];
    char secret_file[CONF_STR];
};

/* [log]: read by every program. */
/* [programme]: the programme this front door serves, as applicants see it. */
#define CONF_PROGRAMME_NAME 64
struct conf_programme {
    char name[CONF_PROGRAMME_NAME];        /* on the waiting page and in the checklist's hints */
    char sender_name[CONF_PROGRAMME_NAME]; /* whom verification emails come from; "" = name */
};

struct conf_log {
    char level[16]; /* debug, info, warn or error */
};

struct conf_redis {
    char url[CONF_STR];
    int timeout_ms;
    int max_pending;
    char appendfsync[16];
    char server_bin[CONF_STR];
    char dir[CONF_STR];
};

struct conf_upload {
    int64_t max_bytes;       /* largest document accepted (413 above) */
    int max_concurrent;      /* uploads in progress per gateway process (503 above) */
    int64_t spool_max_bytes; /* bytes spooled and not yet taken by a worker, per process */
    char spool_dir[CONF_STR];
    char store_dir[CONF_STR];
    int64_t store_max_bytes; /* documents larger than this are shrunk by the worker */
    int min_width, min_height;
    int64_t max_pixels;
    int reject_blurry;           /* 1: a blurry photo is rejected, not only warned */
    double min_sharpness;        /* variance of the Laplacian below which: blurry */
    double min_brightness;       /* mean grey level below which: too_dark */
    double max_brightness;       /* mean grey level above which: overexposed */
    double ktp_aspect_tolerance; /* relative distance from 1.586 that warns a KTP photo */
    int tus_expiry_s;            /* unfinished resumable uploads are removed after this */
    int tus_idle_s;      /* an unfinished resumable upload idle this long gives its bytes back */
    int tus_per_session; /* unfinished resumable uploads one session may hold */
    int orphan_grace_s;  /* a spool file without a live job this old is removed */
};

struct conf_registration {
    int min_age_years, max_age_years; /* working age, inclusive */
    int idempotency_ttl_s;            /* how long an Idempotency-Key's answer is kept */
};

/* One-time verification codes (issue 9; docs/design.md, "Verification codes"). */
struct conf_verify {
    int code_digits;           /* digits of a code (the worker makes it, the gateway checks it) */
    int code_ttl_s;            /* a code confirms for this long after it was asked for */
    int resend_interval_s;     /* one code per this many seconds per destination and registration */
    int max_sends_per_day;     /* codes per destination and per registration in any 24 hours */
    int max_attempts;          /* wrong confirms that burn a code */
    int recover_per_nik_day;   /* recovery codes asked for one NIK in any 24 hours */
    int recover_per_addr_hour; /* recovery requests from one client address in any hour */
};

struct conf_worker {
    int processes;
    struct conf_addr admin_listen;
    int drain_timeout_ms;
    char admin_token_file[CONF_STR];
    int photo_threads; /* threads checking photos per process; 0: the online CPUs, at most 4 */
};

/* [downstream]: where the worker forwards registrations (worker/register.c). */
struct conf_downstream {
    char url[CONF_STR];              /* "" : accepted locally */
    int timeout_ms;                  /* one attempt, connect included */
    int connect_timeout_ms;          /* TCP + TLS connect */
    int64_t max_response_bytes;      /* longest answer read */
    char signing_key_file[CONF_STR]; /* "": bodies are not signed */
};

/* [smtp]: how the worker sends verification codes by email (worker/smtp_client.c, mail.c,
 * dkim.c, verify.c). */
struct conf_smtp {
    char url[CONF_STR];           /* smtp://host:port or smtps://host:port; "": email off */
    int starttls;                 /* smtp:// must upgrade with STARTTLS */
    char login_file[CONF_STR];    /* "user:password" on its first line; "": no login */
    char from[CONF_STR];          /* the sender's address */
    char dkim_domain[CONF_STR];   /* "": not signed */
    char dkim_selector[64];       /* DNS selector of the public key */
    char dkim_key_file[CONF_STR]; /* PEM RSA private key */
    char templates_dir[CONF_STR]; /* verify-code.LANG.{subject,txt,html,sms} */
    int timeout_ms;               /* one send, connect included */
    double rate;                  /* messages per second over all workers; 0: unlimited */
};

/* [sms]: how the worker sends verification codes by SMS through an HTTP provider. */
struct conf_sms {
    char url[CONF_STR];           /* http:// or https://; "": SMS off */
    char method[8];               /* POST or PUT */
    char headers_file[CONF_STR];  /* "Name: value" lines sent with every request */
    char body_template[CONF_STR]; /* JSON with {{number}}, {{text}}, {{reference}} */
    char id_field[64];            /* where the answer has the message id ("a.b" for nested) */
    int timeout_ms;               /* one request, connect included */
    double rate;                  /* messages per second over all workers; 0: unlimited */
};

/* One [queue.NAME] section: how the worker drains one queue. queue[] in struct conf is
 * indexed by enum job_queue (upload, register, verify). */
struct conf_queue {
    double rate;              /* jobs started per second over all workers; 0: unlimited */
    int concurrency;          /* jobs in hand at once, per worker process */
    int max_attempts;         /* deliveries before the entry is dead-lettered */
    int visibility_timeout_s; /* an entry idle this long in another's hands is reclaimed */
    int backoff_base_ms;      /* first retry delay (doubled per attempt, with jitter) */
    int backoff_max_ms;       /* largest retry delay */
};

#define CONF_QUEUES 3

#define CONF_MAX_ROOMS 16
#define CONF_ROOM_NAME 33

enum conf_room_mode { ROOM_MODE_FIFO, ROOM_MODE_PASSTHROUGH, ROOM_MODE_REJECT };

/* One [room.NAME] section: a waiting room, one per registration wave. Times are Unix
 * milliseconds (0 = not set). */
struct conf_room {
    char name[CONF_ROOM_NAME];
    char mode[16]; /* fifo, passthrough, reject */
    double admit_rate_per_min;
    int admit_burst; /* admissions at once beyond the rate; 0: one second of the rate (>= 1) */
    int max_active;
    int session_ttl_s;
    char continue_url[CONF_STR];     /* "", a same-origin path, or an absolute URL */
    char handoff_key_file[CONF_STR]; /* signs the hand-off to another origin ("" none) */
    int redeem_window_s;
    int paused; /* 1: the controller admits no one (joins still queue) */
    int64_t prequeue_from;
    int64_t opens_at;
    int64_t closes_at;
    char prequeue_from_text[40], opens_at_text[40], closes_at_text[40];
    char applicant_key_file[CONF_STR]; /* verifies applicant tokens; "" = binding off */
    char applicant_audience[CONF_STR]; /* the aud they must carry; "" = the room's name */
};

struct conf {
    char path[CONF_STR]; /* the file it was loaded from ("" for defaults only) */
    struct conf_gateway gateway;
    struct conf_log log;
    struct conf_programme programme;
    struct conf_redis redis;
    struct conf_worker worker;
    struct conf_upload upload;
    struct conf_registration registration;
    struct conf_verify verify;
    struct conf_downstream downstream;
    struct conf_smtp smtp;
    struct conf_sms sms;
    struct conf_queue queue[CONF_QUEUES];
    struct conf_room rooms[CONF_MAX_ROOMS];
    int nrooms;
};

/* The room named NAME (LEN bytes), or NULL. */
const struct conf_room *conf_room_find(const struct conf *c, const char *name, size_t len);

/* The mode of R as an enum. */
enum conf_room_mode conf_room_mode(const struct conf_room *r);

/* Parse an RFC 3339 timestamp ("2026-11-28T20:00:00+07:00", "...Z", optional fraction) into
 * Unix milliseconds. 0 ok, -1. */
int conf_time_parse(const char *s, int64_t *ms);

/* Fill C with every directive's default. Never fails (the defaults are checked by the tests). */
void conf_defaults(struct conf *c);

/* Load PATH into C (defaults first, then the file). Every error found is appended to ERR as one
 * line `file:line: [section] name: reason` (ERR is always NUL-terminated; lines that do not fit
 * are dropped). Returns 0, or -1 when the file cannot be used; then C must not be used. */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen);

/* Apply a reload: NEW was loaded successfully from the same file; every directive that cannot
 * change without a restart is copied back from OLD into NEW, and a line naming it is appended to
 * NOTE (`[section] name: changed in the file; takes effect after a restart`). Returns how many
 * such directives differed. */
int conf_reload_merge(const struct conf *old, struct conf *newc, char *note, size_t notelen);

/* Parse "host:port" / "[v6]:port" / "*:port" into A. 0 ok, -1 with a reason in ERR. */
int conf_addr_parse(struct conf_addr *a, const char *text, char *err, size_t errlen);

/* The directive table, for tools and tests: iterate with conf_directive_at(i) until NULL. The
 * directives of [room.NAME] sections come last, with section "room.*". */
struct conf_directive_info {
    const char *section;
    const char *name;
    const char *def;
    const char *help;
    int reloadable;
};
const struct conf_directive_info *conf_directive_at(size_t i);

#endif
