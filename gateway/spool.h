/* spool.h: receiving documents to disk, under the upload budgets, and handing them to workers.
 *
 * A document streams to a file in [upload] spool_dir as it arrives (never whole in memory). It
 * is fsynced before its job is queued, and the job (upload record, the registration's pointer,
 * the `upload` stream entry) is written by one script before anyone answers 202.
 *
 * Two budgets. Slots ([upload] max_concurrent) are per gateway process and held only while a
 * body streams (a single-shot PUT, a tus PATCH). Bytes ([upload] spool_max_bytes) are counted
 * in Redis, shared by every gateway process (common/lua/spool.lua): an upload reserves its
 * length at its head (in the same script as the owner check, so no extra round trip), the
 * enqueue script turns the reservation into the file's real size, and the worker gives the
 * bytes back once it has deleted the file. Until the job is queued the reservation is a lease
 * that lapses by itself, so a gateway killed mid-upload leaks nothing for long.
 *
 * A spool file is never deleted while its job may still be queued: when the enqueue script's
 * answer is lost (Redis stalled past [redis] timeout_ms; the script may run later), the file
 * stays, and the reaper (spool_reap.c) removes it once it is older than
 * [upload] orphan_grace_s and no job names it. */
#ifndef ANTRE_SPOOL_H
#define ANTRE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "antre/rconn.h"

struct gw;

/* Take one of this process's upload slots. 0, or -1 when all are taken (answer with
 * ERR_UPLOAD_BUDGET, which counts the refusal). Give it back with spool_slot_release, once. */
int spool_slot_take(struct gw *gw);
void spool_slot_release(struct gw *gw);

/* 1 when a slot is free now (a head that will take one once Redis has answered). */
int spool_slot_free(struct gw *gw);

/* How long (ms) a reservation of BYTES for a body that starts now may need: the longest the
 * gateway lets such a body take ([gateway] body_total_timeout_ms plus BYTES / body_min_rate),
 * plus time to fsync and queue it. */
int64_t spool_lease_ms(struct gw *gw, uint64_t bytes);

/* Run common/lua/spool.lua: KEYS are the budget's two keys then the NKEYS of KEYS, ARGS[0] the
 * operation (spool.lua says what each takes and returns). Same contract as script_call. */
int spool_script(struct gw *gw, rconn_cb *cb, void *arg, int nkeys, const char *const *keys,
                 int nargs, const char *const *args);

/* The head of a single-shot upload, in one script: the session's owner OWNER may upload to
 * registration REG_ID (its record's `owner`; MARKED, the id's mark, for a record without one),
 * and BYTES (< 0: check the owner only) are reserved for UPLOAD_ID under [upload]
 * spool_max_bytes, with a lease of spool_lease_ms. CB gets spool.lua 'reserve''s reply:
 * {"not_owner"}, {"checked"}, {"full"} or {"reserved", fence}. Same contract as rconn_command. */
int spool_reserve(struct gw *gw, const char *upload_id, const char *reg_id, const char *owner,
                  int marked, int64_t bytes, rconn_cb *cb, void *arg);

/* The word a spool.lua reply R starts with (its first element), or NULL after an error ERR, an
 * error reply or anything else. Points into R. */
const char *spool_reply_word(const redisReply *r, const char *err);

/* Give upload UPLOAD_ID's bytes back (the upload ended without a job). Fire and forget: a
 * failure is logged, and the lease lapses anyway. */
void spool_unreserve(struct gw *gw, const char *upload_id);

/* Remove PATH when it names a file directly in [upload] spool_dir (a path read from Redis is
 * never trusted further); ENOENT is fine. */
void spool_unlink(struct gw *gw, const char *path);

struct spool;

/* Open (create, or with APPEND reopen for more bytes) the spool file NAME (a file name, no
 * directory) in [upload] spool_dir, mode 0600. NULL with the reason in ERR. */
struct spool *spool_open(struct gw *gw, const char *name, int append, char *err, size_t errlen);

/* Append LEN bytes. 0, or -1 (disk full, I/O error: logged). */
int spool_write(struct spool *s, const void *data, size_t len);

/* Gather writes into 64 KB blocks (fewer syscalls) for a file that nobody reads before it is
 * finished; without it every spool_write reaches the file at once (a resumable upload's offset
 * is the file's size). */
void spool_buffer(struct spool *s);

/* Bytes in the file now (with spool_buffer: written so far, some perhaps still in memory). */
uint64_t spool_size(const struct spool *s);

/* The file's path (valid until spool_close/discard). */
const char *spool_path(const struct spool *s);

/* Flush the file to disk (fsync) and close it; S is freed. 0, or -1 (the file is removed). */
int spool_finish(struct spool *s);

/* Like spool_finish, but the fsync runs on a background thread so the event loop never waits
 * for the disk: DONE(ARG, 0 or -1) is called later from the loop of GW's process. S is freed. */
void spool_finish_async(struct gw *gw, struct spool *s, void (*done)(void *arg, int rc), void *arg);

/* Close without syncing, keeping the file (a resumable upload waiting for more). */
void spool_close(struct spool *s);

/* Close and remove the file; S is freed. */
void spool_discard(struct spool *s);

/* Queue the finished document PATH (BYTES, CONTENT_TYPE) of upload UPLOAD_ID for registration
 * REG_ID, KIND "ktp" or "selfie", begun at FENCE (spool.lua 'reserve''s; "" for the record's
 * own, a tus upload's): spool.lua 'commit' writes the upload record ('processing'), the
 * registration's pointer and the `upload` stream entry (its fields: job.h), counts BYTES as
 * waiting for a worker, and supersedes the older upload of that document. Its reply:
 * {"not_owner"} (the registration's record names an owner other than OWNER: a recovery moved it
 * since the upload began; nothing written), {"queued"} (queued before), {"superseded"} (a newer
 * upload of the document is queued already) or {"ok", path}: pass it to
 * spool_enqueued_cleanup. CB is called once with the reply; same contract as rconn_command
 * (-1: refused at once, or not a valid job (logged); CB not called). On a refusal or a
 * "superseded" the caller removes the file and gives nothing back (the script did). On an
 * error or timeout the script may still run: keep the file (the reaper decides later). */
int spool_enqueue(struct gw *gw, const char *upload_id, const char *reg_id, const char *owner,
                  const char *kind, const char *path, uint64_t bytes, const char *content_type,
                  const char *fence, rconn_cb *cb, void *arg);

/* After an {"ok", path} of spool_enqueue (REPLY): remove the file of the upload it superseded. */
void spool_enqueued_cleanup(struct gw *gw, const redisReply *reply);

/* The reply of spool_enqueue (REPLY, or NULL after an error) as its first word: "ok",
 * "queued", "superseded", "not_owner", or NULL (an error, a timeout, anything else). */
const char *spool_enqueue_outcome(const redisReply *reply, const char *err);

/* Remove orphan spool files (spool_reap.c): files in [upload] spool_dir older than
 * [upload] orphan_grace_s whose upload has no record or a final one, and give their bytes back.
 * Called by the sweep timer of one gateway process (tus_store.c). */
void spool_reap(struct gw *gw);

#endif
