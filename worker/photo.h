/* photo.h: the worker's check of one uploaded photo (a KTP card or a selfie), as a library the
 * queue consumer calls: sniff the type, read the size from the header, decode, turn it upright,
 * strip every metadata block, shrink it under store_max_bytes, measure sharpness and brightness,
 * and store the JPEG by SHA-256 (worker/photo_store.c). An upright JPEG that fits keeps its own
 * coded data (the lossless path: only its metadata segments go); anything else is re-encoded. The measures live in
 * worker/photo_quality.c.
 *
 * Threads: photo_init() once per process before any other call (it starts libvips, turns off
 * the libvips operation cache and sets libvips' own worker threads to 1, all process-wide), then
 * photo_process() may run on several threads at once: it keeps no state between calls. The
 * worker's thread pool is the parallelism; one call uses one core. libvips' error buffer is
 * process-wide, so the ERR text of two failing calls at the same moment may mix; the verdict
 * (reason) never does. */
#ifndef ANTRE_WORKER_PHOTO_H
#define ANTRE_WORKER_PHOTO_H

#include <stddef.h>
#include <stdint.h>

struct conf;

enum photo_kind { PHOTO_KTP, PHOTO_SELFIE };
enum photo_state { PHOTO_ACCEPTED, PHOTO_REJECTED };

/* quality.warnings bits. */
#define PHOTO_WARN_BLURRY 0x1u
#define PHOTO_WARN_TOO_DARK 0x2u
#define PHOTO_WARN_OVEREXPOSED 0x4u
#define PHOTO_WARN_KTP_ASPECT 0x8u
#define PHOTO_WARN__COUNT 4

/* The rules, usually from [upload] (photo_opts_from_conf). STORE_DIR is borrowed. */
struct photo_opts {
    const char *store_dir;
    int64_t store_max_bytes;
    int min_width, min_height; /* either orientation: a portrait 400x600 passes 600x400 */
    int64_t max_pixels;
    int reject_blurry;
    double min_sharpness, min_brightness, max_brightness, ktp_aspect_tolerance;
};

struct photo_quality {
    double sharpness;  /* variance of the Laplacian of the grey image, long side 640 */
    double brightness; /* mean grey level, 0-255 */
    double aspect;     /* long side / short side, upright */
    unsigned warnings; /* PHOTO_WARN_* bits */
};

struct photo_result {
    enum photo_state state;
    /* NULL when accepted; else "unsupported_type", "too_many_pixels", "too_small", "corrupt",
     * "blurry" (only with reject_blurry). Static storage. */
    const char *reason;
    /* What the applicant can do, Indonesian and English (static; NULL when nothing to say): the
     * reason's hint when rejected, else the first warning's, else "we made it smaller". */
    const char *hint_id, *hint_en;
    int shrunk;      /* 1 when re-encoded at a lower quality or size to fit store_max_bytes */
    int lossless;    /* 1 when the JPEG's own coded data was stored (no re-encode) */
    char sha256[65]; /* of the stored JPEG, hex; "" when rejected */
    char stored_path[4096]; /* where it is (store_dir/ab/<sha256>.jpg); "" when rejected */
    int width, height;      /* stored (upright) when accepted, from the header when rejected */
    int64_t bytes_stored;   /* 0 when rejected */
    struct photo_quality quality;
};

/* Start libvips for this process (VIPS_INIT; ARGV0 may be NULL): call once, before any thread
 * calls photo_process. Returns 0, or -1 with the reason in ERR. */
int photo_init(const char *argv0, char *err, size_t errlen);

/* Fill O from C's [upload] section; O->store_dir borrows C's string. */
void photo_opts_from_conf(struct photo_opts *o, const struct conf *c);

/* Check the photo at IN_PATH (a spool file; left in place: the caller deletes it once the
 * result is recorded) as a KIND, store it under O->store_dir when accepted, and fill OUT.
 * Returns 0 when a verdict was reached (OUT->state accepted or rejected: a bad file is a
 * verdict, not an error), or -1 with the reason in ERR when the photo could not be judged or
 * stored (unreadable spool file, full disk, libvips failure on a good file): retry later. */
int photo_process(const struct photo_opts *o, const char *in_path, enum photo_kind kind,
                  struct photo_result *out, char *err, size_t errlen);

/* Copy the JPEG of LEN bytes at IN to OUT (OUTCAP bytes, at least LEN: the copy is never
 * longer) without its metadata, keeping its coded data byte for byte: every APPn segment and
 * every COM is dropped, wherever it sits, and everything after EOI; APP0 JFIF is rewritten
 * without its thumbnail and APP14 Adobe (the colour transform) is kept. A file cut short is
 * copied to its end (the decoder that checks the copy says it is corrupt). Sets *OUTLEN and
 * returns 0, or -1 when IN's marker structure is not one this walk copies safely (not a JPEG,
 * a segment running past the end, a marker where none may be): re-encode it instead. */
int photo_jpeg_strip(const unsigned char *in, size_t len, unsigned char *out, size_t outcap,
                     size_t *outlen);

/* The name of warning bit W ("blurry", "too_dark", "overexposed", "ktp_aspect"), or NULL. */
const char *photo_warning_name(unsigned w);

/* The hint of warning bit W in Indonesian (LANG_ID nonzero) or English, or NULL. Static. */
const char *photo_warning_hint(unsigned w, int lang_id);

/* --- worker/photo_quality.c --- */

/* Measure IMG (a VipsImage *, upright; borrowed) into Q's sharpness, brightness and aspect.
 * Returns 0, or -1 (libvips error text in ERR). */
int photo_quality_measure(void *img, struct photo_quality *q, char *err, size_t errlen);

/* Set Q->warnings from Q's measures and O's thresholds (KTP_ASPECT only for a KTP). */
void photo_quality_judge(const struct photo_opts *o, enum photo_kind kind, struct photo_quality *q);

/* --- worker/photo_store.c --- */

/* Store the LEN bytes of JPEG at BUF under DIR as DIR/ab/<sha256>.jpg (temporary file, fsync,
 * rename, fsync of the directory); the same content already there is left as it is. Writes
 * the hex digest to SHA256 (65 bytes) and the path to PATH (PATHLEN). Returns 0, or -1 with
 * ERR. */
int photo_store_put(const char *dir, const void *buf, size_t len, char sha256[65], char *path,
                    size_t pathlen, char *err, size_t errlen);

#endif
