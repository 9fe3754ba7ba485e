/* tus.h: resumable uploads, tus 1.0.0 at /v1/uploads (see tus.c).
 *
 * Wiring (server.c): tus_register(gw->router) BEFORE the route `GET /v1/uploads/{id}` (a GET
 * route also answers HEAD, and the first matching route wins); tus_init(gw) once gw->redis
 * exists; tus_free(gw) after rconn_free (pending Redis callbacks still use this module). */
#ifndef ANTRE_TUS_H
#define ANTRE_TUS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* The protocol version spoken, sent as Tus-Resumable on every tus answer. */
#define TUS_VERSION "1.0.0"

struct gw;
struct router;
struct tus_info;

/* OPTIONS /v1/uploads (no session), POST /v1/uploads, HEAD/PATCH/DELETE /v1/uploads/{id} and
 * POST /v1/uploads/{id} with X-HTTP-Method-Override (session required). */
void tus_register(struct router *rt);

/* Start the sweep that removes expired unfinished uploads (every min(60 s, tus_expiry_s / 4)).
 * Call once per process, after gw->redis is set. */
void tus_init(struct gw *gw);

/* Stop the sweep and forget this process's upload reservations. Call after rconn_free. */
void tus_free(struct gw *gw);

/* For GET /v1/uploads/{id}: while upload ID is a tus upload still receiving on this machine,
 * set *OFFSET to the bytes received so far (the spool file's size) and return 0. Returns -1
 * when it is not receiving here: never a tus upload, already complete and queued (its record
 * then says so), terminated, expired, or received by another machine. A record still in state
 * `receiving` for which this returns -1 on the machine that holds its spool file means the
 * upload was terminated or expired and its record could not be removed. */
int tus_offset(struct gw *gw, const char *id, uint64_t *offset);

/* Why tus_metadata_parse refused: the error to answer with (ERR_INVALID_METADATA, or
 * ERR_UNSUPPORTED_MEDIA_TYPE for a `filetype` that upload_declared refuses), the metadata
 * key at fault (NULL for the header as a whole) and the message in Indonesian and English.
 * Static strings. */
struct tus_meta_error {
    enum error_id code;
    const char *field;
    const char *msg_id;
    const char *msg_en;
};

/* Parse an Upload-Metadata value (V, LEN bytes, need not be NUL-terminated; V may be NULL when
 * LEN is 0): comma-separated "key base64value" pairs, at most TUS_META_MAX bytes of printable
 * ASCII. registration_id (an upload id's format, ident.h) and kind (ktp|selfie) are required,
 * filetype optional (a type upload_declared takes, stored by its lower-case name; empty says
 * nothing and is stored as ""), each at most once; other keys are kept (the raw value goes to
 * IN->metadata, echoed by HEAD) but not read. Fills IN's metadata, reg, kind and content_type
 * (left as they were when absent). 0, or -1 with the reason in E. Whether the
 * registration is the session's is the caller's to check. */
int tus_metadata_parse(const char *v, size_t len, struct tus_info *in, struct tus_meta_error *e);

#endif
