/* photo.c: one uploaded photo from spool file to stored JPEG (see photo.h for the contract).
 *
 * The steps, each refusing as early and as cheaply as it can:
 *   1. sniff the first bytes (common/sniff.c): JPEG, PNG, WebP, HEIC and HEIF go on, the rest
 *      (PDF, AVIF, anything) is unsupported_type;
 *   2. open it with that type's own libvips loader, which reads only the header: the pixel
 *      count is checked against max_pixels BEFORE any pixel is decoded, so a PNG that declares
 *      30000x30000 costs a few kilobytes, and the size against min_width x min_height;
 *   3. the lossless path, for the common case of a phone JPEG that is already upright (no EXIF
 *      orientation, or 1), 1 or 3 colour components and within store_max_bytes: the file's own
 *      coded data is kept, without its metadata (photo_jpeg_strip), so nothing is re-encoded
 *      and nothing is lost. What is stored is then decoded in full with libjpeg's DCT scaling
 *      (shrink-on-load to the power of two that keeps the long side at 640 or more): every
 *      scan and every coefficient is still read, so a truncated or damaged file fails here
 *      (corrupt), and the quality measures run on that reduced image;
 *   4. otherwise re-encode. Every JPEG but CMYK is measured on the same reduced decode (step
 *      6; the measures do not change under a quarter turn; it also catches a truncated or
 *      damaged file: corrupt). A plain upright JPEG (a phone photo over the limit) is then
 *      decoded again and streamed to the encoder, never whole in memory. Anything else (PNG,
 *      WebP, HEIC, a JPEG with an orientation to apply, CMYK) is decoded whole into memory with fail_on=error (corrupt when that fails; the memory is
 *      bounded by max_pixels x bands). A JPEG at least 4 times over store_max_bytes is loaded
 *      at 1/2, 1/4 or 1/8 (shrink-on-load), a fraction of the cost of a full decode;
 *   5. turn it upright by its EXIF orientation (vips_autorot), convert to 8-bit sRGB and
 *      flatten any alpha onto white (JPEG has neither 16 bits nor alpha);
 *   6. measure sharpness and brightness (photo_quality.c) and set the warnings;
 *   7. encode as JPEG (quality 85, or 75 at once when the file is twice the limit or more)
 *      with strip (no EXIF, GPS, XMP, ICC or comment survives); over store_max_bytes, encode
 *      again at quality 75, and while still over, scale the image down by the square root of
 *      the excess (JPEG size goes roughly with the pixel count);
 *   8. store it by SHA-256 (photo_store.c). */
#include "photo.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "antre/conf.h"
#include "antre/errbuf.h"
#include "antre/sniff.h"

#define JPEG_QUALITY 85
/* The quality a photo over store_max_bytes is encoded at before it is made smaller (libvips'
 * own default). */
#define JPEG_QUALITY_FIT 75
#define MAX_SHRINK_ROUNDS 8
/* The long side the quality measures are defined on (photo_quality.c). */
#define MEASURE_LONG_SIDE 640
/* libjpeg scales by 1/2, 1/4 or 1/8 while decoding. */
#define MAX_LOAD_SHRINK 8

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

/* Append N bytes at P to OUT (the caller sized OUT for the whole input, which no output
 * exceeds). */
static void put(unsigned char *out, size_t *olen, const unsigned char *p, size_t n)
{
    memcpy(out + *olen, p, n);
    *olen += n;
}

/* Why these segments go and these stay. Every APPn (EXIF with GPS and the camera's serial
 * number, XMP, ICC profiles, MPF, maker data, Photoshop IRB) and every COM goes, wherever it
 * sits (between scans too); so does anything after EOI (a Motion Photo's video, a vendor
 * trailer). Two exceptions carry no personal data and change how the pixels are read:
 *   - APP0 JFIF is rewritten as a bare 16-byte JFIF (version, density unit and values) without
 *     its thumbnail, which could show another picture than the photo; JFXX and other APP0 go;
 *   - APP14 "Adobe" (12 bytes: version, flags, colour transform) is kept as it is: without it a
 *     JPEG coded in RGB would be read as YCbCr, with false colours.
 * ICC (APP2) is dropped as the re-encode path drops it (strip): a wide-gamut (Display P3) photo
 * then shows slightly less saturated colours, which does not matter for reading a card and
 * leaves no device profile, whose description names the phone's make, in the store. Markers are
 * walked by their lengths up to each SOS; in entropy-coded data FF 00 (a stuffed byte) and RSTn
 * are data, fill bytes (extra FF) before a marker are dropped. */
int photo_jpeg_strip(const unsigned char *in, size_t len, unsigned char *out, size_t outcap,
                     size_t *outlen)
{
    size_t pos = 2, olen = 0;
    int in_scan = 0;
    if (len < 4 || outcap < len || in[0] != 0xff || in[1] != 0xd8) return -1;
    put(out, &olen, in, 2);
    for (;;) {
        if (in_scan) {
            /* Entropy-coded data up to the next marker; without one the file is cut short and
             * all of it is kept: the decoder that checks what is stored then says corrupt. */
            size_t start = pos;
            for (;;) {
                const unsigned char *ff = memchr(in + pos, 0xff, len - pos);
                if (!ff) {
                    put(out, &olen, in + start, len - start);
                    *outlen = olen;
                    return 0;
                }
                size_t i = (size_t)(ff - in), j = i + 1;
                while (j < len && in[j] == 0xff) j++;
                if (j >= len) {
                    put(out, &olen, in + start, i - start);
                    *outlen = olen;
                    return 0;
                }
                if (in[j] == 0x00 || (in[j] >= 0xd0 && in[j] <= 0xd7)) {
                    pos = j + 1;
                    continue;
                }
                put(out, &olen, in + start, i - start);
                pos = i;
                break;
            }
        }
        if (pos >= len || in[pos] != 0xff) return -1;
        while (pos < len && in[pos] == 0xff) pos++; /* fill bytes */
        if (pos >= len) return -1;
        unsigned char m = in[pos++];
        if (m == 0xd9) { /* EOI: the end, whatever follows */
            if (!in_scan) return -1;
            put(out, &olen, (const unsigned char *)"\xff\xd9", 2);
            *outlen = olen;
            return 0;
        }
        if (m == 0x01) { /* TEM: standalone */
            put(out, &olen, in + pos - 2, 2);
            continue;
        }
        if (m == 0x00 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) return -1;
        if (len - pos < 2) return -1;
        size_t seglen = (size_t)in[pos] << 8 | in[pos + 1];
        if (seglen < 2 || seglen > len - pos) return -1;
        const unsigned char *pay = in + pos + 2;
        size_t plen = seglen - 2;
        if (m == 0xe0) {
            if (plen >= 14 && !memcmp(pay, "JFIF", 5)) {
                unsigned char jfif[18] = {0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0};
                memcpy(jfif + 9, pay + 5, 7); /* version, units, X and Y density; no thumbnail */
                put(out, &olen, jfif, sizeof jfif);
            }
        } else if (m == 0xee) {
            if (plen == 12 && !memcmp(pay, "Adobe", 5)) put(out, &olen, in + pos - 2, seglen + 2);
        } else if (m > 0xe0 && m <= 0xef) {
            /* APP1-APP15 other than Adobe: dropped */
        } else if (m == 0xfe) {
            /* COM: dropped */
        } else if ((m >= 0xf0 && m <= 0xfd) || (m >= 0xc3 && m <= 0xcf && m != 0xc4) || m == 0xde ||
                   m == 0xdf) {
            /* Only baseline, extended and progressive Huffman frames (SOF0-2) are kept as they
             * are: browsers do not show arithmetic-coded, lossless or hierarchical JPEG (SOF3,
             * SOF5-15, DAC, DHP, EXP), and JPGn extensions are in no photo. Re-encode those. */
            return -1;
        } else {
            put(out, &olen, in + pos - 2, seglen + 2);
            if (m == 0xda) in_scan = 1;
        }
        pos += seglen;
    }
}

static int reject(struct photo_result *out, const char *reason, const struct hint *h)
{
    out->state = PHOTO_REJECTED;
    out->reason = reason;
    out->hint_id = h->id;
    out->hint_en = h->en;
    return 0;
}

/* The options every load is made with: a truncated or damaged file is an error, and the pixels
 * are read once, top to bottom, so that the loader keeps no whole-image buffer of its own
 * beside the one photo.c renders (or none, when the JPEG is streamed to the encoder). */
#define SEQ "fail_on", VIPS_FAIL_ON_ERROR, "access", VIPS_ACCESS_SEQUENTIAL

/* Open PATH with the loader of type T (header only), or NULL with the libvips error pending. */
static VipsImage *open_header(const char *path, enum sniff_type t)
{
    VipsImage *img = NULL;
    int rc = -1;
    switch (t) {
    case SNIFF_JPEG: rc = vips_jpegload(path, &img, SEQ, NULL); break;
    case SNIFF_PNG: rc = vips_pngload(path, &img, SEQ, NULL); break;
    case SNIFF_WEBP: rc = vips_webpload(path, &img, SEQ, NULL); break;
    case SNIFF_HEIC:
    case SNIFF_HEIF: rc = vips_heifload(path, &img, SEQ, NULL); break;
    default: break;
    }
    return rc == 0 ? img : NULL;
}

/* The largest power of two up to MAX_LOAD_SHRINK by which libjpeg may scale an image of long
 * side LNG while it decodes, keeping the long side at MIN_LNG or more. */
static int load_shrink_for(int lng, int min_lng)
{
    int f = 1;
    while (f < MAX_LOAD_SHRINK && lng / (f * 2) >= min_lng) f *= 2;
    return f;
}

/* Read the file at PATH (at most MAX bytes) into a new buffer (free it). Returns NULL with ERR
 * when it cannot be read, or (with *TOO_BIG set) when it is over MAX. */
static unsigned char *read_bounded(const char *path, int64_t max, size_t *len, int *too_big,
                                   char *err, size_t errlen)
{
    *too_big = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        errbuf_set(err, errlen, "photo: open %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (st.st_size > max || st.st_size <= 0) {
        *too_big = 1;
        close(fd);
        return NULL;
    }
    unsigned char *buf = malloc((size_t)st.st_size);
    if (!buf) abort();
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            errbuf_set(err, errlen, "photo: read %s: %s", path, n < 0 ? strerror(errno) : "short");
            free(buf);
            close(fd);
            return NULL;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

/* Whether the JPEG whose header is IMG is 8-bit with 1 (grey) or 3 (YCbCr or RGB) components,
 * not CMYK: its reduced decode can be measured as it is. */
static int plain_jpeg(VipsImage *img)
{
    VipsInterpretation in = vips_image_get_interpretation(img);
    return vips_image_get_format(img) == VIPS_FORMAT_UCHAR &&
           (vips_image_get_bands(img) == 1 || vips_image_get_bands(img) == 3) &&
           (in == VIPS_INTERPRETATION_sRGB || in == VIPS_INTERPRETATION_B_W);
}

/* Whether that JPEG is also upright already (no EXIF orientation, or 1): it can be stored as
 * it is, or streamed from decoder to encoder with nothing to turn or convert. */
static int plain_upright_jpeg(VipsImage *img)
{
    return plain_jpeg(img) && vips_image_get_orientation(img) == 1;
}

/* Decode the JPEG in BUF (LEN bytes) or, when BUF is NULL, at PATH, at the reduced scale the
 * quality measures need (libjpeg's DCT scaling: still every scan and every coefficient read,
 * fail_on error) and measure it into Q; the aspect is that of the full size W x H. Why not
 * measure the full-size image the re-encode path holds anyway: its box shrink to 1/4 was 40%
 * of that path's instructions (libvips 8.14's vips_shrinkh), a decode at 1/4 costs a fraction
 * of it, and both paths then measure exactly alike. The orientation does not matter: the
 * measures do not change under a quarter turn. Returns 0, 1 when the JPEG does not decode
 * (corrupt), or -1 with ERR. */
static int measure_jpeg_reduced(const void *buf, size_t len, const char *path, int w, int h,
                                struct photo_quality *q, char *err, size_t errlen)
{
    int lng = w > h ? w : h, sht = w > h ? h : w;
    int f = load_shrink_for(lng, MEASURE_LONG_SIDE);
    VipsImage *img = NULL, *mem = NULL;
    if ((buf ? vips_jpegload_buffer((void *)buf, len, &img, "shrink", f, SEQ, NULL)
             : vips_jpegload(path, &img, "shrink", f, SEQ, NULL)) ||
        !(mem = vips_image_copy_memory(img))) {
        if (img) g_object_unref(img);
        vips_error_clear();
        return 1;
    }
    g_object_unref(img);
    int rc = photo_quality_measure(mem, q, err, errlen);
    g_object_unref(mem);
    if (rc == 0) q->aspect = (double)lng / sht;
    return rc < 0 ? -1 : 0;
}

/* Results of lossless(): stored, a verdict (rejected), or take the re-encode path. */
enum lossless_rc { LOSSLESS_DONE = 0, LOSSLESS_ERROR = -1, LOSSLESS_REENCODE = 1 };

static int finish_accepted(struct photo_result *out);

/* Step 3 of the top comment: strip IN_PATH's metadata, check what is left by decoding it at a
 * reduced scale, measure it, store it. OUT->width and height hold the header's size. */
static int lossless(const struct photo_opts *o, const char *in_path, enum photo_kind kind,
                    struct photo_result *out, char *err, size_t errlen)
{
    size_t len = 0, slen = 0;
    int too_big = 0;
    unsigned char *in = read_bounded(in_path, o->store_max_bytes, &len, &too_big, err, errlen);
    if (!in) return too_big ? LOSSLESS_REENCODE : LOSSLESS_ERROR;
    unsigned char *st = malloc(len);
    if (!st) abort();
    int rc = LOSSLESS_REENCODE;
    if (photo_jpeg_strip(in, len, st, len, &slen) < 0) goto out;
    /* What is stored is what is checked: the stripped bytes, every scan decoded. */
    int m =
        measure_jpeg_reduced(st, slen, NULL, out->width, out->height, &out->quality, err, errlen);
    if (m != 0) {
        rc = m > 0 ? reject(out, "corrupt", &hint_corrupt) : LOSSLESS_ERROR;
        goto out;
    }
    rc = LOSSLESS_ERROR;
    photo_quality_judge(o, kind, &out->quality);
    if (o->reject_blurry && (out->quality.warnings & PHOTO_WARN_BLURRY)) {
        rc = reject(out, "blurry", &warnings[0].hint);
        goto out;
    }
    if (photo_store_put(o->store_dir, st, slen, out->sha256, out->stored_path,
                        sizeof out->stored_path, err, errlen) < 0)
        goto out;
    out->bytes_stored = (int64_t)slen;
    out->lossless = 1;
    rc = finish_accepted(out);
out:
    free(st);
    free(in);
    return rc;
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

/* Where encode_fitting takes its pixels for each try: the upright image in memory (MEM), or
 * else the plain upright JPEG at PATH, decoded again at 1/SHRINK and streamed to the encoder
 * (no whole image in memory: the common re-encode of a phone photo needs one try). */
struct source {
    VipsImage *mem;
    const char *path;
    int shrink;
};

static VipsImage *source_open(const struct source *src)
{
    VipsImage *img = NULL;
    if (src->mem) {
        g_object_ref(src->mem);
        return src->mem;
    }
    return vips_jpegload(src->path, &img, "shrink", src->shrink, SEQ, NULL) ? NULL : img;
}

/* Encode SRC as JPEG so that it fits MAX bytes: at quality Q (JPEG_QUALITY, or JPEG_QUALITY_FIT
 * straight away when the caller knows the first would not fit), then at JPEG_QUALITY_FIT, then
 * at that quality scaled down until it fits. On success *BUF (g_free it), *LEN, the stored
 * size in *W x *H and *SHRUNK (1 when encoded at a lower quality or size to fit). Returns 0,
 * -1 when libvips failed (its error pending; from a streamed source, the decode), or -2 when
 * no size fits.
 *
 * Why a lower quality before a smaller size: most phone photos over the limit (2-6 MB at
 * quality 90-95) fit at quality 75 with every pixel kept, which reads better than the same
 * bytes at 85 with 10-30% fewer pixels per side, and an encode of 12 MP costs 0.04 s where the
 * lanczos3 resize before it costs 0.2 s. Why no optimize_coding: the second Huffman pass makes
 * the file about 5% smaller but the encode 2.5 times slower (0.106 s instead of 0.040 s for
 * 12 MP on the bench machine), and the store limit is met either way. */
static int encode_fitting(const struct source *src, int64_t max, int q, void **buf, size_t *len,
                          int *w, int *h, int *shrunk)
{
    double scale = 1.0;
    *shrunk = q != JPEG_QUALITY;
    for (int round = 0; round <= MAX_SHRINK_ROUNDS; round++) {
        VipsImage *img = source_open(src), *scaled = NULL;
        if (!img) return -1;
        int bad =
            scale < 1.0 ? vips_resize(img, &scaled, scale, NULL) : vips_copy(img, &scaled, NULL);
        g_object_unref(img);
        if (bad) return -1;
        bad = vips_jpegsave_buffer(scaled, buf, len, "Q", q, "strip", TRUE, NULL);
        *w = vips_image_get_width(scaled);
        *h = vips_image_get_height(scaled);
        g_object_unref(scaled);
        if (bad) return -1;
        if ((int64_t)*len <= max) return 0;
        *shrunk = 1;
        g_free(*buf);
        *buf = NULL;
        if (q != JPEG_QUALITY_FIT) {
            q = JPEG_QUALITY_FIT;
            continue;
        }
        /* JPEG bytes grow about with the pixel count: shrink each side by the square root of
         * the excess, 5% more so that one round usually suffices. */
        scale *= sqrt((double)max / (double)*len) * 0.95;
        if (*w * scale < 16 || *h * scale < 16) break;
    }
    vips_error("photo", "cannot fit the photo in %lld bytes", (long long)max);
    return -2;
}

/* Mark OUT accepted (stored already) and give it the hint of its first warning, else the
 * "we made it smaller" one when it was shrunk. Returns 0. */
static int finish_accepted(struct photo_result *out)
{
    out->state = PHOTO_ACCEPTED;
    for (int i = 0; i < PHOTO_WARN__COUNT; i++)
        if (out->quality.warnings & (1u << i)) {
            out->hint_id = warnings[i].hint.id;
            out->hint_en = warnings[i].hint.en;
            return 0;
        }
    if (out->shrunk) {
        out->hint_id = hint_shrunk.id;
        out->hint_en = hint_shrunk.en;
    }
    return 0;
}

/* The shrink-on-load factor for a JPEG of FILE_BYTES that is over O->store_max_bytes. JPEG
 * bytes go about with the pixel count and the stored quality (75-85) is no higher than a
 * phone's (90-95), so a scale of sqrt(max / bytes) per side always fits: loading at 1/2, 1/4 or
 * 1/8 when that is still no smaller never goes below what fits, and a decode at 1/2 costs a
 * fraction of a full one. It may keep fewer pixels than the least reduction would (a 12 MB
 * 48 MP photo is stored at 12 MP), which neither a card nor a face needs. Never below the
 * minimum size, nor below the 640 px the quality measures use. */
static int reencode_shrink_for(const struct photo_opts *o, int64_t file_bytes, int w, int h)
{
    if (file_bytes <= o->store_max_bytes) return 1;
    double need = sqrt((double)o->store_max_bytes / (double)file_bytes);
    int lng = w > h ? w : h, sht = w > h ? h : w;
    int min_lng = o->min_width > o->min_height ? o->min_width : o->min_height;
    int min_sht = o->min_width > o->min_height ? o->min_height : o->min_width;
    int f = 1;
    while (f < MAX_LOAD_SHRINK && 1.0 / (f * 2) >= need && lng / (f * 2) >= min_lng &&
           sht / (f * 2) >= min_sht && lng / (f * 2) >= MEASURE_LONG_SIDE)
        f *= 2;
    return f;
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
    struct stat fst;
    int64_t file_bytes = fstat(fd, &fst) == 0 ? (int64_t)fst.st_size : 0;
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
    if (t == SNIFF_JPEG && plain_upright_jpeg(img) && file_bytes <= o->store_max_bytes) {
        int lrc = lossless(o, in_path, kind, out, err, errlen);
        if (lrc != LOSSLESS_REENCODE) {
            g_object_unref(img);
            return lrc;
        }
    }

    /* The re-encode path. A plain upright JPEG is measured on a reduced decode (which also
     * catches a truncated or damaged file) and then streamed from decoder to encoder; anything
     * else is decoded into memory, turned upright and converted first. */
    int load_shrink =
        t == SNIFF_JPEG ? reencode_shrink_for(o, file_bytes, out->width, out->height) : 1;
    /* A phone's JPEG re-encoded at JPEG_QUALITY takes about half its bytes (at the same
     * scale): one that would still be over goes to JPEG_QUALITY_FIT at once, saving a try. */
    int q = t == SNIFF_JPEG && 0.5 * (double)file_bytes / ((double)load_shrink * load_shrink) >
                                   (double)o->store_max_bytes
                ? JPEG_QUALITY_FIT
                : JPEG_QUALITY;
    struct source src = {NULL, in_path, load_shrink};
    int streamed = t == SNIFF_JPEG && plain_upright_jpeg(img);
    int measure_reduced = t == SNIFF_JPEG && plain_jpeg(img);
    if (!streamed) {
        if (load_shrink > 1) {
            g_object_unref(img);
            if (vips_jpegload(in_path, &img, "shrink", load_shrink, SEQ, NULL)) {
                vips_error_clear();
                return reject(out, "corrupt", &hint_corrupt);
            }
        }
        src.mem = decode_upright(img);
        if (!src.mem) {
            g_object_unref(img);
            vips_error_clear();
            return reject(out, "corrupt", &hint_corrupt);
        }
    }
    g_object_unref(img);
    int rc = -1;
    void *buf = NULL;
    size_t len = 0;
    if (measure_reduced) {
        int m = measure_jpeg_reduced(NULL, 0, in_path, out->width, out->height, &out->quality, err,
                                     errlen);
        if (m > 0) {
            rc = reject(out, "corrupt", &hint_corrupt);
            goto out;
        }
        if (m < 0) goto out;
    } else if (photo_quality_measure(src.mem, &out->quality, err, errlen) < 0) {
        goto out;
    }
    photo_quality_judge(o, kind, &out->quality);
    if (o->reject_blurry && (out->quality.warnings & PHOTO_WARN_BLURRY)) {
        if (src.mem) {
            out->width = vips_image_get_width(src.mem);
            out->height = vips_image_get_height(src.mem);
        }
        rc = reject(out, "blurry", &warnings[0].hint);
        goto out;
    }
    int e = encode_fitting(&src, o->store_max_bytes, q, &buf, &len, &out->width, &out->height,
                           &out->shrunk);
    if (e == -1 && streamed) {
        /* The reduced decode read every scan, but the full one failed: damaged data. */
        vips_error_clear();
        rc = reject(out, "corrupt", &hint_corrupt);
        goto out;
    }
    if (e < 0) {
        errbuf_set(err, errlen, "photo: encode %s: %s", in_path, vips_error_buffer());
        vips_error_clear();
        goto out;
    }
    if (load_shrink > 1) out->shrunk = 1;
    if (photo_store_put(o->store_dir, buf, len, out->sha256, out->stored_path,
                        sizeof out->stored_path, err, errlen) < 0)
        goto out;
    out->bytes_stored = (int64_t)len;
    rc = finish_accepted(out);
out:
    if (buf) g_free(buf);
    if (src.mem) g_object_unref(src.mem);
    return rc;
}
