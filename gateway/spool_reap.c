/* spool_reap.c: the orphan reaper of [upload] spool_dir (spool.h, spool_reap).
 *
 * A spool file outlives its job in two ways: its enqueue script's answer was lost (Redis stalled
 * past [redis] timeout_ms; the gateway keeps the file, since the script may still run) and the
 * script never ran; or the process that should have deleted it died first (a gateway between a
 * superseding enqueue and the unlink, a worker between its verdict and the unlink). The reaper
 * runs in the gateway, in the sweep timer of process 0 (tus_store.c), because the gateway owns
 * the spool directory: it writes the files, it runs when no worker does, and it already sweeps
 * that directory for expired resumable uploads.
 *
 * A file is a candidate when it is an upload's (named by an upload id, or tus-ID without a
 * tus-ID.info: a resumable upload complete and queued) and older than [upload] orphan_grace_s,
 * longer than any body, fsync and enqueue may take. spool.lua 'reap' then decides in Redis,
 * atomically with giving the bytes back: no record names it, or the record is final (accepted,
 * rejected, superseded), and it goes. A file whose job is still to come ('processing') stays.
 * If a script stalled for longer than the grace runs after the file went, its job finds no file
 * and the worker rejects it as missing_file, telling the applicant to upload again. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "antre/keys.h"
#include "antre/log.h"
#include "gateway.h"
#include "ident.h"
#include "spool.h"

#define REAP_MAX 256 /* candidates asked about per sweep */

struct reap {
    struct gw *gw;
    char path[CONF_STR + 80];
};

static int in_flight; /* questions not yet answered: no new sweep meanwhile */

static void on_reap(void *arg, const redisReply *r, const char *err)
{
    struct reap *rp = arg;
    in_flight--;
    const char *w = spool_reply_word(r, err);
    if (w && !strcmp(w, "orphan")) {
        log_info("spool: orphan file removed path=%s", rp->path);
        spool_unlink(rp->gw, rp->path);
    }
    free(rp);
}

/* The upload id a spool file NAME belongs to, into ID; 0 when it is no upload's file, or a
 * resumable upload still receiving (its .info exists: the expiry sweep's). */
static int candidate(struct gw *gw, const char *name, char id[IDENT_LEN + 1])
{
    size_t n = strlen(name);
    const char *p = name;
    if (n == 4 + IDENT_LEN && strncmp(name, "tus-", 4) == 0) p = name + 4;
    else if (n != IDENT_LEN) return 0;
    if (!ident_valid(p, IDENT_LEN)) return 0;
    memcpy(id, p, IDENT_LEN);
    id[IDENT_LEN] = 0;
    if (p == name) return 1;
    char info[CONF_STR + 80];
    snprintf(info, sizeof info, "%s/%s.info", gw->conf.upload.spool_dir, name);
    return access(info, F_OK) < 0;
}

void spool_reap(struct gw *gw)
{
    if (in_flight > 0) return;
    DIR *d = opendir(gw->conf.upload.spool_dir);
    if (!d) return;
    time_t before = time(NULL) - gw->conf.upload.orphan_grace_s;
    struct dirent *e;
    char id[IDENT_LEN + 1];
    int asked = 0;
    while (asked < REAP_MAX && (e = readdir(d))) {
        if (!candidate(gw, e->d_name, id)) continue;
        struct reap *rp = calloc(1, sizeof *rp);
        if (!rp) abort();
        rp->gw = gw;
        snprintf(rp->path, sizeof rp->path, "%s/%s", gw->conf.upload.spool_dir, e->d_name);
        struct stat st;
        if (lstat(rp->path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_mtime > before) {
            free(rp);
            continue;
        }
        char key[KEYS_MAX];
        keys_upload(key, id);
        const char *keys[] = {key};
        const char *args[] = {"reap", id};
        if (spool_script(gw, on_reap, rp, 1, keys, 2, args) < 0) {
            free(rp);
            break;
        }
        in_flight++;
        asked++;
    }
    closedir(d);
}
