/* upload.h: single-shot document uploads and the upload status endpoint.
 *
 *   PUT /v1/registrations/{id}/documents/{ktp|selfie}   the photo as the body, streamed to a
 *                                                       spool file, then queued for a worker
 *   GET /v1/uploads/{id}                                the upload's state
 *
 * Both need a session (the waiting room's gate), and both refuse ids the session does not own.
 *
 * The photo types the door takes, here and in tus uploads (tus.c), are JPEG, PNG, WebP, HEIC and
 * HEIF (what phones save; the worker stores every one as JPEG). The first bytes decide
 * (sniff.h), not the declared type: a declared type only refuses early when it names something
 * else (a PDF, a GIF, AVIF, text). The helpers below keep that rule and its refusals in one
 * place. */
#ifndef ANTRE_UPLOAD_H
#define ANTRE_UPLOAD_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "antre/sniff.h"

struct conn;
struct gw;
struct router;

/* The message of a refused declared type (415 unsupported_media_type): the five types and how
 * to send a photo instead. Static strings, for answers built without upload_refuse_declared. */
#define UPLOAD_TAKEN_ID                                                                            \
    "Yang diterima hanya foto JPEG, PNG, WebP, HEIC atau HEIF (image/jpeg, image/png, "            \
    "image/webp, image/heic, image/heif)."
#define UPLOAD_TAKEN_EN                                                                            \
    "Only JPEG, PNG, WebP, HEIC or HEIF photos are accepted (image/jpeg, image/png, image/webp, "  \
    "image/heic, image/heif)."
#define UPLOAD_HOW_ID                                                                              \
    "Foto kartu (atau wajah Anda, untuk swafoto) dengan kamera ponsel, lalu kirim foto itu apa "   \
    "adanya."
#define UPLOAD_HOW_EN                                                                              \
    "Take a photo of the card (or of your face, for the selfie) with your phone's camera and "     \
    "send that photo as it is."
#define UPLOAD_TYPE_MSG_ID "Jenis berkas ini tidak diterima. " UPLOAD_TAKEN_ID " " UPLOAD_HOW_ID
#define UPLOAD_TYPE_MSG_EN "This type of file is not accepted. " UPLOAD_TAKEN_EN " " UPLOAD_HOW_EN

/* 1 when a file whose first bytes are of type T is taken: JPEG, PNG, WebP, HEIC or HEIF. */
int upload_type_taken(enum sniff_type t);

/* 1 when the LEN first bytes of a file at B (fewer than SNIFF_MAX: a prefix still arriving) could
 * still be a type the door takes (sniff_could_be), so that a body can be refused early. */
int upload_could_be_taken(const void *b, size_t len);

/* What a declared media type says, compared without regard to case: V (LEN bytes) is the type
 * alone (no parameters, no blanks around it). Returns its lower-case name, static, when it is one
 * of the five taken types or application/octet-stream (which says nothing: the bytes decide);
 * NULL for any other type, refused from the head. */
const char *upload_declared(const char *v, size_t len);

/* The JSON array ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"] (new
 * reference), the `accepted` member of the refusals. */
json_t *upload_accepted_json(void);

/* Answer 415 unsupported_media_type for a declared type that upload_declared refused:
 * UPLOAD_TYPE_MSG_ID/EN and `accepted`. (Response headers added before the call go with it.) */
void upload_refuse_declared(struct conn *c);

/* Answer 403 not_owner for a registration. */
void upload_refuse_not_owner(struct conn *c);

/* Answer 415 unsupported_media_type for a file whose first bytes are of type DETECTED, not taken:
 * a message naming what the file is (a PDF, an AVIF photo, or not a photo we can read), the five
 * types and how to send a photo instead, with `accepted`, `declared` (DECLARED, or null when
 * NULL or "") and `detected` (sniff_mime(DETECTED): null for SNIFF_UNKNOWN). */
void upload_refuse_content(struct conn *c, const char *declared, enum sniff_type detected);

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
 * offset, reason, hint, sha256, width, height, bytes_stored, quality the record holds (numbers
 * as JSON integers; quality as the worker's JSON object; hint from the record's hint_en when
 * LANG_EN, else hint_id, else its plain hint). NULL when REC is not a non-empty array (no such
 * record). Free with json_decref. */
json_t *upload_status_json(const char *upload_id, const redisReply *rec, int lang_en);

#endif
