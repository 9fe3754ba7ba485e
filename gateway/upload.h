/* upload.h: single-shot document uploads and the upload status endpoint.
 *
 *   PUT /v1/registrations/{id}/documents/{ktp|selfie}   the photo as the body, streamed to a
 *                                                       spool file, then queued for a worker
 *   GET /v1/uploads/{id}                                the upload's state
 *
 * Both need a session (the waiting room's gate), and both refuse ids the session does not own. */
#ifndef ANTRE_UPLOAD_H
#define ANTRE_UPLOAD_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdint.h>

struct gw;
struct router;

/* Register the two routes on RT. Call it after any module that registers HEAD on
 * /v1/uploads/{id} (tus): a GET route also answers HEAD, and the first match wins. */
void upload_register(struct router *rt);

/* Where GET /v1/uploads/{id} learns how far an upload whose record says `receiving` (a resumable
 * upload) has come: FN(GW, ID, &OFFSET) sets OFFSET and returns 0 while ID is receiving on this
 * machine, else -1. Set once at start-up, e.g. upload_set_offset_source(tus_offset); without it
 * (or when FN returns -1) the answer shows the record's own `offset`, if any. */
void upload_set_offset_source(int (*fn)(struct gw *gw, const char *id, uint64_t *offset));

/* The body of GET /v1/uploads/{id} for upload UPLOAD_ID from the reply REC of HGETALL on its
 * record (keys_upload): {"upload_id", "state", ...} with whichever of registration_id, kind,
 * offset, reason, hint, sha256, width, height, bytes_stored the record holds (numbers as JSON
 * integers). NULL when REC is not a non-empty array (no such record). Free with json_decref. */
json_t *upload_status_json(const char *upload_id, const redisReply *rec);

#endif
