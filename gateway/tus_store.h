/* tus_store.h: where a resumable upload lives while it is received (see tus_store.c): its two
 * files in [upload] spool_dir, its lock, its record and its share of the spool-bytes budget in
 * Redis, and the sweep that removes expired ones (and runs the orphan reaper, spool.h). The
 * protocol (tus.c) decides; this module keeps. */
#ifndef ANTRE_TUS_STORE_H
#define ANTRE_TUS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "antre/rconn.h"
#include "antre/sniff.h"
#include "ident.h"

struct gw;

#define TUS_META_MAX 1024 /* Upload-Metadata bytes kept (and echoed by HEAD) */

/* What tus-ID.info holds: what a PATCH must know before reading a body. */
struct tus_info {
    uint64_t length;
    int64_t expires; /* Unix seconds */
    char reg[IDENT_LEN + 1];
    char kind[8];                    /* ktp | selfie */
    char content_type[32];           /* as declared by `filetype` (upload_declared), or "" */
    char metadata[TUS_META_MAX + 1]; /* Upload-Metadata as the client sent it */
};

/* The file name (no directory) of upload ID's data file, or with INFO of its tus-ID.info, into
 * OUT (LEN bytes; 64 is enough). */
void tus_store_name(char *out, size_t len, const char *id, int info);

/* The full path of the same (LEN bytes; CONF_STR + 64 is enough). */
void tus_store_path(struct gw *gw, char *out, size_t len, const char *id, int info);

/* Read tus-ID.info into IN. 0, or -1 when it is missing or unreadable (logged). */
int tus_store_read_info(struct gw *gw, const char *id, struct tus_info *in);

/* Write tus-ID.info (mode 0600, not fsynced). 0, or -1 with the reason in ERR. */
int tus_store_write_info(struct gw *gw, const char *id, const struct tus_info *in, char *err,
                         size_t errlen);

/* Size of the data file (the upload's offset). 0, or -1 when it is missing. */
int tus_store_size(struct gw *gw, const char *id, uint64_t *size);

/* Open upload ID's data file and flock it. The fd holding the lock (close it to unlock); -1
 * when another request holds it; -2 when the file is gone. */
int tus_store_lock(struct gw *gw, const char *id);

/* Cut the data file back to LEN bytes (a discarded chunk). Logs a failure. */
void tus_store_truncate(struct gw *gw, const char *id, uint64_t len);

/* What the first bytes of the data file are (sniff.h); SNIFF_UNKNOWN when unreadable. */
enum sniff_type tus_store_sniff(struct gw *gw, const char *id);

/* Remove both files of upload ID (nothing else). */
void tus_store_unlink(struct gw *gw, const char *id);

/* Remove upload ID: its files, its record and its bytes (spool.lua 'tus_drop', fire and
 * forget). The caller holds its lock (or knows nobody can). */
void tus_store_remove(struct gw *gw, const char *id);

/* Remove an expired upload unless a request is working on it (the BUSY hook of
 * tus_store_init says so) or another process holds its lock. */
void tus_store_expire(struct gw *gw, const char *id);

/* The upload's record (keys_upload). Each calls CB once with the reply, same contract as
 * rconn_command (-1: refused at once, CB not called).
 *   _create: spool.lua 'tus_create': OWNER (the session's; MARKED: the registration id carries
 *            its mark, for a record without an `owner`) may upload to IN's registration, which
 *            exists; the session's unfinished upload of the same registration and kind is
 *            replaced; the session holds fewer than [upload] tus_per_session; IN's length is
 *            reserved with a lease of [upload] tus_idle_s; then the record (state receiving,
 *            protocol tus, IN's fields, PATH and the times). Replies {"not_owner"},
 *            {"unknown_registration"}, {"too_many"}, {"full"} or {"created", replaced id...};
 *   _delete: spool.lua 'tus_drop': the record goes and its bytes are given back;
 *   _state: HGET state;  _lookup: HMGET state length metadata. */
int tus_store_record_create(struct gw *gw, const char *id, const struct tus_info *in,
                            const char *path, const char *owner, int marked, rconn_cb *cb,
                            void *arg);
int tus_store_record_delete(struct gw *gw, const char *id, rconn_cb *cb, void *arg);
int tus_store_record_state(struct gw *gw, const char *id, rconn_cb *cb, void *arg);
int tus_store_record_lookup(struct gw *gw, const char *id, rconn_cb *cb, void *arg);

/* Upload ID's bytes (its Upload-Length LENGTH) counted again by spool.lua 'renew', with a
 * lease of [upload] tus_idle_s, plus, when STREAMING (a PATCH about to stream REMAINING bytes),
 * the time the chunk may take (spool_lease_ms); without, from a PATCH that just ended: idle from
 * now. Replies {"ok"}, {"full"} or {"gone", state} (the record is no longer receiving:
 * replaced, terminated, or queued). Same contract as rconn_command. */
int tus_store_renew(struct gw *gw, const char *id, uint64_t length, uint64_t remaining,
                    int streaming, rconn_cb *cb, void *arg);

/* Start the expiry sweep (every min(60 s, tus_expiry_s / 4)); BUSY(ID) returns 1 while a
 * request of this process works on upload ID, which the sweep then leaves alone. */
void tus_store_init(struct gw *gw, int (*busy)(const char *id));

/* Stop the sweep. */
void tus_store_free(struct gw *gw);

#endif
