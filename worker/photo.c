/* photo.c: one uploaded photo from spool file to stored JPEG (see photo.h for the contract).
 *
 * The steps, each refusing as early and as cheaply as it can:
 *   1. sniff the first bytes (common/sniff.c): JPEG, PNG, WebP, HEIC and HEIF go on, the rest
 *      (PDF, AVIF, anything) is unsupported_type;
 *   2. open it with that type's own libvips loader, which reads only the header: the pixel
 *      count is checked against max_pixels BEFORE any pixel is decoded, so a PNG that declares
 *      30000x30000 costs a few kilobytes, and the size against min_width x min_height;
 *   3. decode the whole image into memory with fail_on=error: a truncated or damaged file
 *      fails here (corrupt). The memory is bounded by max_pixels x bands;
 *   4. turn it upright by its EXIF orientation (vips_autorot), convert to 8-bit sRGB and
 *      flatten any alpha onto white (JPEG has neither 16 bits nor alpha);
 *   5. measure sharpness and brightness (photo_quality.c) and set the warnings;
 *   6. encode as JPEG with strip (no EXIF, GPS, XMP, ICC or comment survives); while the JPEG is
 *      over store_max_bytes, scale the image down by the square root of the excess (JPEG size
 *      goes roughly with the pixel count) and encode again;
 *   7. store it by SHA-256 (photo_store.c). */
#include "photo.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <vips/vips.h>

#include "antre/conf.h"
#include "antre/errbuf.h"
#include "antre/sniff.h"

#define JPEG_QUALITY 85
#define MAX_SHRINK_ROUNDS 8

struct hint {
    const char *id, *en;
};

static const struct hint hint_unsupported =
    {"Kirim foto (JPEG, PNG, WebP atau HEIC), bukan PDF atau dokumen lain: foto kartu dengan "
     "kamera ponsel lalu unggah fotonya.",
     "Send a photo (JPEG, PNG, WebP or HEIC), not a PDF or another document: take a picture of the "
     "card with your phone's camera and upload that."};
static const struct hint hint_too_many_pixels =
    {"Foto terlalu besar untuk diperiksa. Kirim foto biasa dari kamera ponsel.",
     "The photo is too large to check. Send an ordinary photo from your phone's camera."};
static const struct hint hint_too_small =
    {"Foto terlalu kecil: kartu harus dapat dibaca. Foto lebih dekat dengan resolusi penuh.",
     "The photo is too small: the card must be readable. Take it closer, at full resolution."};
static const struct hint hint_corrupt =
    {"File foto rusak atau terpotong. Ambil foto lagi lalu unggah ulang.",
     "The photo file is damaged or cut short. Take the photo again and upload it again."};
static const struct hint hint_shrunk =
    {"Foto Anda kami perkecil; tidak perlu memperkecilnya sendiri.",
     "We made your photo smaller; no need to shrink it yourself."};

/* In PHOTO_WARN_* bit order. */
static const struct {
    const char *name;
    struct hint hint;
} warnings[PHOTO_WARN__COUNT] = {
    {"blurry",
     {"Foto buram. Pegang ponsel dengan tenang, ketuk layar untuk fokus, lalu foto lagi.",
      "The photo is blurry. Hold the phone still, tap the screen to focus, and take it again."}},
    {"too_dark",
     {"Foto terlalu gelap. Foto di tempat yang terang, dekat jendela atau lampu.",
      "The photo is too dark. Take it somewhere bright, near a window or a lamp."}},
    {"overexposed",
     {"Foto terlalu terang. Hindari cahaya langsung dan pantulan lampu kilat.",
      "The photo is too bright. Avoid direct light and the flash's glare."}},
    {"ktp_aspect",
     {"Kartu tidak memenuhi foto. Dekatkan ponsel sampai KTP mengisi bingkai.",
      "The card does not fill the photo. Move closer until the KTP fills the frame."}},
};

const char *photo_warning_name(unsigned w)
{
    for (int i = 0; i < PHOTO_WARN__COUNT; i++)
        if (w == 1u << i) return warnings[i].name;
    return NULL;
}

const char *photo_warning_hint(unsigned w, int lang_id)
{
    for (int i = 0; i < PHOTO_WARN__COUNT; i++)
        if (w == 1u << i) return lang_id ? warnings[i].hint.id : warnings[i].hint.en;
    return NULL;
}

int photo_init(const char *argv0, char *err, size_t errlen)
{
    if (VIPS_INIT(argv0 ? argv0 : "antre-worker")) {
        errbuf_set(err, errlen, "photo: vips_init: %s", vips_error_buffer());
        vips_error_clear();
        return -1;
    }
    /* Every photo is new: a cache of operations would only hold memory (and file names are
     * reused by the spool). The worker's own threads are the parallelism. */
    vips_cache_set_max(0);
    vips_concurrency_set(1);
    return 0;
}

void photo_opts_from_conf(struct photo_opts *o, const struct conf *c)
{
    o->store_dir = c->upload.store_dir;
    o->store_max_bytes = c->upload.store_max_bytes;
    o->min_width = c->upload.min_width;
    o->min_height = c->upload.min_height;
    o->max_pixels = c->upload.max_pixels;
    o->reject_blurry = c->upload.reject_blurry;
    o->min_sharpness = c->upload.min_sharpness;
    o->min_brightness = c->upload.min_brightness;
    o->max_brightness = c->upload.max_brightness;
    o->ktp_aspect_tolerance = c->upload.ktp_aspect_tolerance;
}

static int reject(struct photo_result *out, const char *reason, const struct hint *h)
{
    out->state = PHOTO_REJECTED;
    out->reason = reason;
    out->hint_id = h->id;
    out->hint_en = h->en;
    return 0;
}

/* Open PATH with the loader of type T (header only), or NULL with the libvips error pending. */
static VipsImage *open_header(const char *path, enum sniff_type t)
{
    VipsImage *img = NULL;
    int rc = -1;
    switch (t) {
    case SNIFF_JPEG: rc = vips_jpegload(path, &img, "fail_on", VIPS_FAIL_ON_ERROR, NULL); break;
    case SNIFF_PNG: rc = vips_pngload(path, &img, "fail_on", VIPS_FAIL_ON_ERROR, NULL); break;
    case SNIFF_WEBP: rc = vips_webpload(path, &img, "fail_on", VIPS_FAIL_ON_ERROR, NULL); break;
    case SNIFF_HEIC:
    case SNIFF_HEIF: rc = vips_heifload(path, &img, "fail_on", VIPS_FAIL_ON_ERROR, NULL); break;
    default: break;
    }
    return rc == 0 ? img : NULL;
}

/* Decode IMG into memory, upright, 8-bit sRGB without alpha. Returns a new image or NULL. */
static VipsImage *decode_upright(VipsImage *img)
{
    VipsImage *t[4] = {NULL, NULL, NULL, NULL};
    VipsImage *res = NULL;
    t[0] = vips_image_copy_memory(img);
    if (!t[0] || vips_autorot(t[0], &t[1], NULL) ||
        vips_colourspace(t[1], &t[2], VIPS_INTERPRETATION_sRGB, NULL))
        goto out;
    if (vips_image_hasalpha(t[2])) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int bad = vips_flatten(t[2], &t[3], "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (bad) goto out;
    } else if (vips_copy(t[2], &t[3], NULL)) {
        goto out;
    }
    if (vips_cast_uchar(t[3], &res, NULL)) res = NULL;
out:
    for (int i = 0; i < 4; i++)
        if (t[i]) g_object_unref(t[i]);
    return res;
}

/* Encode IMG as JPEG, scaled down until it fits MAX bytes. On success *BUF (g_free it), *LEN,
 * the stored size in *W x *H and *SHRUNK. Returns 0 or -1 (libvips error pending). */
static int encode_fitting(VipsImage *img, int64_t max, void **buf, size_t *len, int *w, int *h,
                          int *shrunk)
{
    double scale = 1.0;
    *shrunk = 0;
    for (int round = 0; round <= MAX_SHRINK_ROUNDS; round++) {
        VipsImage *scaled = NULL;
        if (scale < 1.0 ? vips_resize(img, &scaled, scale, NULL) : vips_copy(img, &scaled, NULL))
            return -1;
        int bad = vips_jpegsave_buffer(scaled, buf, len, "Q", JPEG_QUALITY, "strip", TRUE,
                                       "optimize_coding", TRUE, NULL);
        *w = vips_image_get_width(scaled);
        *h = vips_image_get_height(scaled);
        g_object_unref(scaled);
        if (bad) return -1;
        if ((int64_t)*len <= max) return 0;
        /* JPEG bytes grow about with the pixel count: shrink each side by the square root of
         * the excess, 5% more so that one round usually suffices. */
        scale *= sqrt((double)max / (double)*len) * 0.95;
        *shrunk = 1;
        g_free(*buf);
        *buf = NULL;
        if (*w * scale < 16 || *h * scale < 16) break;
    }
    vips_error("photo", "cannot fit the photo in %lld bytes", (long long)max);
    return -1;
}

int photo_process(const struct photo_opts *o, const char *in_path, enum photo_kind kind,
                  struct photo_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int fd = open(in_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errbuf_set(err, errlen, "photo: open %s: %m", in_path);
        return -1;
    }
    enum sniff_type t = sniff_fd(fd);
    close(fd);
    if (t != SNIFF_JPEG && t != SNIFF_PNG && t != SNIFF_WEBP && t != SNIFF_HEIC && t != SNIFF_HEIF)
        return reject(out, "unsupported_type", &hint_unsupported);

    VipsImage *img = open_header(in_path, t);
    if (!img) {
        vips_error_clear();
        return reject(out, "corrupt", &hint_corrupt);
    }
    out->width = vips_image_get_width(img);
    out->height = vips_image_get_height(img);
    int lng = out->width > out->height ? out->width : out->height;
    int sht = out->width > out->height ? out->height : out->width;
    int min_lng = o->min_width > o->min_height ? o->min_width : o->min_height;
    int min_sht = o->min_width > o->min_height ? o->min_height : o->min_width;
    if ((int64_t)out->width * out->height > o->max_pixels) {
        g_object_unref(img);
        return reject(out, "too_many_pixels", &hint_too_many_pixels);
    }
    if (lng < min_lng || sht < min_sht) {
        g_object_unref(img);
        return reject(out, "too_small", &hint_too_small);
    }

    VipsImage *up = decode_upright(img);
    g_object_unref(img);
    if (!up) {
        vips_error_clear();
        return reject(out, "corrupt", &hint_corrupt);
    }
    int rc = -1;
    void *buf = NULL;
    size_t len = 0;
    if (photo_quality_measure(up, &out->quality, err, errlen) < 0) goto out;
    photo_quality_judge(o, kind, &out->quality);
    if (o->reject_blurry && (out->quality.warnings & PHOTO_WARN_BLURRY)) {
        out->width = vips_image_get_width(up);
        out->height = vips_image_get_height(up);
        reject(out, "blurry", &warnings[0].hint);
        rc = 0;
        goto out;
    }
    if (encode_fitting(up, o->store_max_bytes, &buf, &len, &out->width, &out->height,
                       &out->shrunk) < 0) {
        errbuf_set(err, errlen, "photo: encode %s: %s", in_path, vips_error_buffer());
        vips_error_clear();
        goto out;
    }
    if (photo_store_put(o->store_dir, buf, len, out->sha256, out->stored_path,
                        sizeof out->stored_path, err, errlen) < 0)
        goto out;
    out->state = PHOTO_ACCEPTED;
    out->bytes_stored = (int64_t)len;
    for (int i = 0; i < PHOTO_WARN__COUNT; i++)
        if (out->quality.warnings & (1u << i)) {
            out->hint_id = warnings[i].hint.id;
            out->hint_en = warnings[i].hint.en;
            break;
        }
    if (!out->hint_en && out->shrunk) {
        out->hint_id = hint_shrunk.id;
        out->hint_en = hint_shrunk.en;
    }
    rc = 0;
out:
    if (buf) g_free(buf);
    g_object_unref(up);
    return rc;
}
