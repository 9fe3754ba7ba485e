/* spool.h: receiving documents to disk, under the upload budgets, and handing them to workers.
 *
 * A document streams to a file in [upload] spool_dir as it arrives (never whole in memory). It
 * is fsynced before its job is queued, and the job (upload record, the registration's pointer,
 * the `upload` stream entry) is written by one script before anyone answers 202. Budgets are
 * per gateway process: uploads in progress ([upload] max_concurrent) and the bytes they may
 * still write ([upload] spool_max_bytes, reserved from Content-Length or the upload length). */
#ifndef ANTRE_SPOOL_H
#define ANTRE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "antre/rconn.h"

struct gw;

/* Reserve one upload of up to BYTES. 0 ok; -1 refused (the budget is spent: answer with
 * ERR_UPLOAD_BUDGET, which counts the refusal). Give it back with spool_budget_release. */
int spool_budget_take(struct gw *gw, uint64_t bytes);
void spool_budget_release(struct gw *gw, uint64_t bytes);

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
 * REG_ID, KIND "ktp" or "selfie": one script writes the upload record ('processing'), the
 * registration's pointer and the `upload` stream entry (its fields: job.h), unless the
 * registration's record names an owner other than OWNER (the session's; a recovery moved it
 * since the upload began): then nothing is written and the reply is {"not_owner"}. CB is called
 * once with the reply; same contract as rconn_command (-1: refused at once, or not a valid job
 * (logged); CB not called). */
int spool_enqueue(struct gw *gw, const char *upload_id, const char *reg_id, const char *owner,
                  const char *kind, const char *path, uint64_t bytes, const char *content_type,
                  rconn_cb *cb, void *arg);

#endif
