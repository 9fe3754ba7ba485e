/* test_photo.c: unit tests of the worker's photo check (worker/photo.c, photo_quality.c,
 * photo_store.c) on real files made at test time in a mkdtemp directory: libvips draws the
 * pictures and writes JPEG and PNG, cwebp (Debian webp) writes the WebP, heif-enc (Debian
 * libheif-examples) the HEIC, exiftool (Debian libimage-exiftool-perl) writes EXIF
 * Orientation and GPS and then checks that none is left. A missing tool fails the test with the
 * package to install; nothing is skipped.
 *
 * The test picture is a mosaic: 50x40 random grey levels, each a block of 32x25 pixels (hard
 * edges everywhere, as a card's print has), with a little noise; "blurred" is the same picture
 * through a Gaussian blur. The [upload] thresholds (conf defaults, used here) were chosen from
 * what quality_test_set logs. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "../../worker/photo.h"
#include "antre/conf.h"

static char tmp[256];
static char store[300];
static struct conf conf;
static struct photo_opts opts;

static void setup(void)
{
    char err[256];
    cr_assert_eq(photo_init("test_photo", err, sizeof err), 0, "%s", err);
    snprintf(tmp, sizeof tmp, "/tmp/antre-test-photo-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
    snprintf(store, sizeof store, "%s/store", tmp);
    conf_defaults(&conf);
    photo_opts_from_conf(&opts, &conf);
    opts.store_dir = store;
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "test_photo: could not remove %s\n", tmp);
    vips_shutdown();
}

TestSuite(photo, .init = setup, .fini = teardown);

/* Fail (not skip) when TOOL is not installed, naming its Debian package. */
static void need_tool(const char *tool, const char *package)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    cr_assert_eq(system(cmd), 0, "%s is missing: apt-get install %s (or make test-deps)", tool,
                 package);
}

/* Run the shell command made from the printf arguments; fail the test when it fails. */
#define RUN(...)                                                                                   \
    do {                                                                                           \
        char cmd_[5000];                                                                           \
        snprintf(cmd_, sizeof cmd_, __VA_ARGS__);                                                  \
        cr_assert_eq(system(cmd_), 0, "failed: %s", cmd_);                                         \
    } while (0)

static void path_of(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s", tmp, name);
}

/* The mosaic picture, W x H, 3 bands uchar (see the top comment). Free with g_object_unref. */
static VipsImage *mosaic_of(int w, int h, double contrast, double noise)
{
    VipsImage *t[6] = {0};
    VipsImage *out = NULL;
    cr_assert_eq(vips_gaussnoise(&t[0], 50, 40, "mean", 128.0, "sigma", contrast, "seed", 7, NULL),
                 0);
    cr_assert_eq(vips_zoom(t[0], &t[1], (w + 49) / 50, (h + 39) / 40, NULL), 0);
    cr_assert_eq(vips_crop(t[1], &t[2], 0, 0, w, h, NULL), 0);
    cr_assert_eq(vips_gaussnoise(&t[3], w, h, "mean", 0.0, "sigma", noise, "seed", 3, NULL), 0);
    cr_assert_eq(vips_add(t[2], t[3], &t[4], NULL), 0);
    VipsImage *bands[3] = {t[4], t[4], t[4]};
    cr_assert_eq(vips_bandjoin(bands, &t[5], 3, NULL), 0);
    cr_assert_eq(vips_cast_uchar(t[5], &out, NULL), 0);
    for (int i = 0; i < 6; i++) g_object_unref(t[i]);
    return out;
}

static VipsImage *mosaic(int w, int h, double noise) { return mosaic_of(w, h, 60.0, noise); }

static VipsImage *blurred(VipsImage *img, double sigma)
{
    VipsImage *b = NULL, *out = NULL;
    cr_assert_eq(vips_gaussblur(img, &b, sigma, NULL), 0);
    cr_assert_eq(vips_cast_uchar(b, &out, NULL), 0);
    g_object_unref(b);
    /* Rendered once here, as photo_process renders its input. */
    VipsImage *mem = vips_image_copy_memory(out);
    cr_assert_not_null(mem, "%s", vips_error_buffer());
    g_object_unref(out);
    return mem;
}

static void save(VipsImage *img, const char *path, int q)
{
    int rc = strstr(path, ".png") ? vips_pngsave(img, path, NULL)
                                  : vips_jpegsave(img, path, "Q", q, NULL);
    cr_assert_eq(rc, 0, "save %s: %s", path, vips_error_buffer());
}

static struct photo_result process(const char *path, enum photo_kind kind)
{
    struct photo_result r;
    char err[512] = "";
    cr_assert_eq(photo_process(&opts, path, kind, &r, err, sizeof err), 0, "%s: %s", path, err);
    return r;
}

static void assert_accepted_jpeg(const struct photo_result *r, int w, int h)
{
    cr_assert_eq(r->state, PHOTO_ACCEPTED, "rejected: %s", r->reason ? r->reason : "-");
    cr_assert_eq(r->width, w);
    cr_assert_eq(r->height, h);
    cr_assert_eq(strlen(r->sha256), 64);
    struct stat st;
    cr_assert_eq(stat(r->stored_path, &st), 0, "%s", r->stored_path);
    cr_assert_eq(st.st_size, r->bytes_stored);
    /* It is a JPEG that decodes in full, of the size reported. */
    VipsImage *img = vips_image_new_from_file(r->stored_path, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    cr_assert_not_null(img, "%s", vips_error_buffer());
    const char *loader = NULL;
    cr_assert_eq(vips_image_get_string(img, VIPS_META_LOADER, &loader), 0);
    cr_assert_str_eq(loader, "jpegload");
    double avg;
    cr_assert_eq(vips_avg(img, &avg, NULL), 0, "%s", vips_error_buffer());
    cr_assert_eq(vips_image_get_width(img), w);
    cr_assert_eq(vips_image_get_height(img), h);
    g_object_unref(img);
}

/* The measures of the test set, logged: the thresholds in [upload] were chosen from these. */
Test(photo, quality_test_set)
{
    char err[256];
    /* A high-contrast picture at 1600x1000 and a low-contrast one (a pale card) at 2400x1800. */
    VipsImage *pics[2] = {mosaic_of(1600, 1000, 60.0, 4.0), mosaic_of(2400, 1800, 20.0, 2.0)};
    static const double sigmas[] = {0, 1, 2, 3, 5, 8};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof sigmas / sizeof sigmas[0]; i++) {
            /* The same blur relative to the picture's size. */
            double s = sigmas[i] * vips_image_get_width(pics[p]) / 1600.0;
            VipsImage *img = s > 0 ? blurred(pics[p], s) : pics[p];
            struct photo_quality q;
            cr_assert_eq(photo_quality_measure(img, &q, err, sizeof err), 0, "%s", err);
            fprintf(stderr,
                    "test_photo: picture %d blur sigma %.0f (of 1600 px): sharpness %.1f "
                    "brightness %.1f\n",
                    p, sigmas[i], q.sharpness, q.brightness);
            if (img != pics[p]) g_object_unref(img);
        }
    g_object_unref(pics[0]);
    g_object_unref(pics[1]);
}

Test(photo, jpeg_and_png_accepted)
{
    char jpg[300], png[300];
    path_of(jpg, sizeof jpg, "a.jpg");
    path_of(png, sizeof png, "a.png");
    VipsImage *img = mosaic(1586, 1000, 4.0);
    save(img, jpg, 90);
    save(img, png, 0);
    g_object_unref(img);
    struct photo_result r = process(jpg, PHOTO_KTP);
    assert_accepted_jpeg(&r, 1586, 1000);
    cr_assert_eq(r.quality.warnings, 0, "warnings %#x sharpness %.1f brightness %.1f",
                 r.quality.warnings, r.quality.sharpness, r.quality.brightness);
    cr_assert_null(r.reason);
    cr_assert_null(r.hint_en);
    r = process(png, PHOTO_SELFIE);
    assert_accepted_jpeg(&r, 1586, 1000);
    cr_assert_eq(r.quality.warnings, 0);
}

Test(photo, webp_and_heic_accepted_stored_as_jpeg)
{
    need_tool("cwebp", "webp");
    need_tool("heif-enc", "libheif-examples");
    char png[300], webp[300], heic[300];
    path_of(png, sizeof png, "src.png");
    path_of(webp, sizeof webp, "a.webp");
    path_of(heic, sizeof heic, "a.heic");
    VipsImage *img = mosaic(1200, 800, 4.0);
    save(img, png, 0);
    g_object_unref(img);
    RUN("cwebp -quiet -q 85 '%s' -o '%s'", png, webp);
    RUN("heif-enc -q 85 -o '%2$s' '%1$s' >/dev/null", png, heic);
    struct photo_result r = process(webp, PHOTO_SELFIE);
    assert_accepted_jpeg(&r, 1200, 800);
    r = process(heic, PHOTO_SELFIE);
    assert_accepted_jpeg(&r, 1200, 800);
}

Test(photo, pdf_unsupported_with_a_hint)
{
    char pdf[300];
    path_of(pdf, sizeof pdf, "ktp.pdf");
    FILE *f = fopen(pdf, "w");
    cr_assert_not_null(f);
    fputs("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", f);
    fclose(f);
    struct photo_result r = process(pdf, PHOTO_KTP);
    cr_assert_eq(r.state, PHOTO_REJECTED);
    cr_assert_str_eq(r.reason, "unsupported_type");
    cr_assert_not_null(strstr(r.hint_en, "photo"));
    cr_assert_not_null(strstr(r.hint_id, "foto"));
    cr_assert_str_eq(r.sha256, "");
}

Test(photo, truncated_jpeg_corrupt)
{
    char jpg[300], cut[300];
    path_of(jpg, sizeof jpg, "whole.jpg");
    path_of(cut, sizeof cut, "cut.jpg");
    VipsImage *img = mosaic(1200, 800, 4.0);
    save(img, jpg, 90);
    g_object_unref(img);
    struct stat st;
    cr_assert_eq(stat(jpg, &st), 0);
    char sz[32];
    snprintf(sz, sizeof sz, "%lld", (long long)st.st_size / 2);
    RUN("head -c %2$s '%1$s' > '%1$s.cut'", jpg, sz);
    RUN("mv '%s.cut' '%s'", jpg, cut);
    struct photo_result r = process(cut, PHOTO_KTP);
    cr_assert_eq(r.state, PHOTO_REJECTED);
    cr_assert_str_eq(r.reason, "corrupt");
    cr_assert_not_null(r.hint_en);
}

Test(photo, too_small)
{
    char jpg[300];
    path_of(jpg, sizeof jpg, "small.jpg");
    VipsImage *img = mosaic(500, 400, 4.0);
    save(img, jpg, 90);
    g_object_unref(img);
    struct photo_result r = process(jpg, PHOTO_KTP);
    cr_assert_eq(r.state, PHOTO_REJECTED);
    cr_assert_str_eq(r.reason, "too_small");
    cr_assert_eq(r.width, 500);
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A PNG whose IHDR declares 30000x30000 RGB (2.7 GB of pixels) with one tiny IDAT: refused
 * from the header, and the process's peak RSS does not grow by anything near a decode. */
Test(photo, png_bomb_too_many_pixels_without_allocation)
{
    unsigned char png[8 + 25 + 12 + 12 + 12];
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *ihdr = png + 8;
    put32(ihdr, 13);
    memcpy(ihdr + 4, "IHDR", 4);
    put32(ihdr + 8, 30000);
    put32(ihdr + 12, 30000);
    memcpy(ihdr + 16, "\x08\x02\x00\x00\x00", 5);
    put32(ihdr + 21, crc32_of(ihdr + 4, 17));
    unsigned char *idat = ihdr + 25;
    put32(idat, 0);
    memcpy(idat + 4, "IDAT", 4);
    put32(idat + 8, crc32_of(idat + 4, 4));
    unsigned char *iend = idat + 12;
    put32(iend, 0);
    memcpy(iend + 4, "IEND", 4);
    put32(iend + 8, crc32_of(iend + 4, 4));
    char path[300];
    path_of(path, sizeof path, "bomb.png");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(png, 1, sizeof png - 12, f), sizeof png - 12);
    fclose(f);

    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    struct photo_result r = process(path, PHOTO_KTP);
    getrusage(RUSAGE_SELF, &after);
    cr_assert_eq(r.state, PHOTO_REJECTED);
    cr_assert_str_eq(r.reason, "too_many_pixels");
    cr_assert_eq(r.width, 30000);
    cr_assert_eq(r.height, 30000);
    /* ru_maxrss is in kilobytes: a decode would need 2.7 GB; allow 64 MB of noise. */
    cr_assert_lt(after.ru_maxrss - before.ru_maxrss, 64 * 1024, "peak RSS grew by %ld kB",
                 after.ru_maxrss - before.ru_maxrss);
}

/* A photo taken sideways (EXIF Orientation 6: turn 90 degrees clockwise to view) with GPS and
 * a comment: stored upright, with no EXIF, GPS, XMP or comment left. */
Test(photo, exif_orientation_applied_and_metadata_stripped)
{
    need_tool("exiftool", "libimage-exiftool-perl");
    char jpg[300];
    path_of(jpg, sizeof jpg, "sideways.jpg");
    /* Dark mosaic with a white block in the stored top-left corner. */
    VipsImage *m = mosaic(1200, 800, 4.0), *dark = NULL, *out = NULL;
    cr_assert_eq(vips_linear1(m, &dark, 0.3, 0.0, NULL), 0);
    VipsImage *d8 = NULL;
    cr_assert_eq(vips_cast_uchar(dark, &d8, NULL), 0);
    double white[3] = {255, 255, 255};
    cr_assert_eq(vips_copy(d8, &out, NULL), 0);
    cr_assert_eq(vips_draw_rect(out, white, 3, 0, 0, 200, 200, "fill", TRUE, NULL), 0);
    save(out, jpg, 90);
    g_object_unref(m);
    g_object_unref(dark);
    g_object_unref(d8);
    g_object_unref(out);
    RUN("exiftool -q -overwrite_original -Orientation#=6 -GPSLatitude=6.2 -GPSLatitudeRef=S "
        "-GPSLongitude=106.8 -GPSLongitudeRef=E -XMP:Description=secret -Comment=secret "
        "'%s'%s",
        jpg, "");
    RUN("exiftool -s -s -s -Orientation# '%s' | grep -qx 6%s", jpg, "");
    RUN("exiftool -s -s -s -GPSLatitude '%s' | grep -q .%s", jpg, "");

    struct photo_result r = process(jpg, PHOTO_KTP);
    assert_accepted_jpeg(&r, 800, 1200);
    cr_assert_eq(r.lossless, 0, "a sideways photo is re-encoded upright, not kept as it is");
    /* Turned clockwise: the white block is now at the top right. */
    VipsImage *st = vips_image_new_from_file(r.stored_path, NULL);
    cr_assert_not_null(st);
    double *v = NULL;
    int n = 0;
    cr_assert_eq(vips_getpoint(st, &v, &n, 700, 100, NULL), 0);
    cr_assert_gt(v[0], 200, "top right is %.0f, not white", v[0]);
    g_free(v);
    cr_assert_eq(vips_getpoint(st, &v, &n, 100, 100, NULL), 0);
    cr_assert_lt(v[0], 150, "top left is %.0f, still white", v[0]);
    g_free(v);
    g_object_unref(st);
    /* Nothing but the JPEG's own structure: no EXIF/GPS/XMP group, no orientation, no comment. */
    RUN("! exiftool -a -G1 -s '%s' | grep -E "
        "'^\\[(IFD0|ExifIFD|GPS|XMP|XMP-[a-z]+|IFD1|ICC_Profile)\\]|Orientation|Comment|secret'%s",
        r.stored_path, "");
}

Test(photo, big_jpeg_shrunk_under_store_max_bytes)
{
    char jpg[300];
    path_of(jpg, sizeof jpg, "big.jpg");
    VipsImage *img = mosaic(4000, 3000, 40.0);
    save(img, jpg, 100);
    g_object_unref(img);
    struct stat st;
    cr_assert_eq(stat(jpg, &st), 0);
    cr_assert_gt(st.st_size, 4 * 1024 * 1024, "the test photo is only %lld bytes",
                 (long long)st.st_size);
    struct photo_result r = process(jpg, PHOTO_SELFIE);
    cr_assert_eq(r.state, PHOTO_ACCEPTED);
    cr_assert(r.shrunk);
    cr_assert_leq(r.bytes_stored, 2 * 1024 * 1024);
    cr_assert_lt(r.width, 4000);
    double aspect = (double)r.width / r.height;
    cr_assert_lt(aspect > 4.0 / 3 ? aspect - 4.0 / 3 : 4.0 / 3 - aspect, 0.01, "%dx%d", r.width,
                 r.height);
    assert_accepted_jpeg(&r, r.width, r.height);
    cr_assert_not_null(strstr(r.hint_en, "smaller"), "%s", r.hint_en);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

Test(photo, same_content_stored_once)
{
    char a[300], b[300];
    path_of(a, sizeof a, "one.jpg");
    path_of(b, sizeof b, "two.jpg");
    VipsImage *img = mosaic(1200, 800, 4.0);
    save(img, a, 90);
    save(img, b, 90);
    g_object_unref(img);
    struct photo_result r1 = process(a, PHOTO_SELFIE);
    struct photo_result r2 = process(b, PHOTO_SELFIE);
    cr_assert_eq(r1.state, PHOTO_ACCEPTED);
    cr_assert_str_eq(r1.sha256, r2.sha256);
    cr_assert_str_eq(r1.stored_path, r2.stored_path);
    char sub[400];
    snprintf(sub, sizeof sub, "%s/%.2s", store, r1.sha256);
    cr_assert_eq(count_files(store), 1);
    cr_assert_eq(count_files(sub), 1);
}

Test(photo, blurred_flagged_and_sharp_original_not)
{
    char sharp_path[300], blur_path[300];
    path_of(sharp_path, sizeof sharp_path, "sharp.jpg");
    path_of(blur_path, sizeof blur_path, "blur.jpg");
    VipsImage *sharp = mosaic(1600, 1000, 4.0), *blur = blurred(sharp, 8.0);
    save(sharp, sharp_path, 90);
    save(blur, blur_path, 90);
    g_object_unref(sharp);
    g_object_unref(blur);
    struct photo_result r = process(sharp_path, PHOTO_KTP);
    cr_assert_eq(r.quality.warnings & PHOTO_WARN_BLURRY, 0, "sharpness %.1f", r.quality.sharpness);
    r = process(blur_path, PHOTO_KTP);
    cr_assert_eq(r.state, PHOTO_ACCEPTED, "a warning alone does not reject");
    cr_assert(r.quality.warnings & PHOTO_WARN_BLURRY, "sharpness %.1f", r.quality.sharpness);
    cr_assert_not_null(strstr(r.hint_en, "blurry"));
    opts.reject_blurry = 1;
    r = process(blur_path, PHOTO_KTP);
    cr_assert_eq(r.state, PHOTO_REJECTED);
    cr_assert_str_eq(r.reason, "blurry");
}

Test(photo, too_dark_and_overexposed)
{
    char dark_path[300], bright_path[300];
    path_of(dark_path, sizeof dark_path, "dark.jpg");
    path_of(bright_path, sizeof bright_path, "bright.jpg");
    VipsImage *m = mosaic(1200, 800, 4.0), *t = NULL, *img = NULL;
    cr_assert_eq(vips_linear1(m, &t, 0.2, 0.0, NULL), 0);
    cr_assert_eq(vips_cast_uchar(t, &img, NULL), 0);
    save(img, dark_path, 90);
    g_object_unref(t);
    g_object_unref(img);
    cr_assert_eq(vips_linear1(m, &t, 0.2, 215.0, NULL), 0);
    cr_assert_eq(vips_cast_uchar(t, &img, NULL), 0);
    save(img, bright_path, 90);
    g_object_unref(t);
    g_object_unref(img);
    g_object_unref(m);
    struct photo_result r = process(dark_path, PHOTO_SELFIE);
    cr_assert(r.quality.warnings & PHOTO_WARN_TOO_DARK, "brightness %.1f", r.quality.brightness);
    cr_assert_eq(r.quality.warnings & PHOTO_WARN_OVEREXPOSED, 0);
    r = process(bright_path, PHOTO_SELFIE);
    cr_assert(r.quality.warnings & PHOTO_WARN_OVEREXPOSED, "brightness %.1f", r.quality.brightness);
    cr_assert_str_eq(photo_warning_name(PHOTO_WARN_OVEREXPOSED), "overexposed");
    cr_assert_not_null(photo_warning_hint(PHOTO_WARN_TOO_DARK, 1));
}

Test(photo, ktp_aspect_warned_only_for_a_ktp)
{
    char jpg[300];
    path_of(jpg, sizeof jpg, "square.jpg");
    VipsImage *img = mosaic(1000, 1000, 4.0);
    save(img, jpg, 90);
    g_object_unref(img);
    struct photo_result r = process(jpg, PHOTO_KTP);
    cr_assert(r.quality.warnings & PHOTO_WARN_KTP_ASPECT);
    r = process(jpg, PHOTO_SELFIE);
    cr_assert_eq(r.quality.warnings & PHOTO_WARN_KTP_ASPECT, 0);
}

/* The whole file at PATH in a new buffer (free it); *LEN its size. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)n);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Offset of the last SOS marker (FF DA) in BUF: in entropy-coded data FF is always followed by
 * 00 or RSTn, so the last one is the frame's last scan, not one in an EXIF thumbnail. */
static size_t last_sos(const unsigned char *buf, size_t len)
{
    size_t at = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == 0xff && buf[i + 1] == 0xda) at = i;
    cr_assert_gt(at, 0, "no SOS");
    return at;
}

/* The largest difference between the pixels of the two files (decoded in full). */
static double max_pixel_diff(const char *a, const char *b)
{
    VipsImage *ia = vips_image_new_from_file(a, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    VipsImage *ib = vips_image_new_from_file(b, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    cr_assert(ia && ib, "%s", vips_error_buffer());
    VipsImage *d = NULL, *ad = NULL;
    double mx = -1;
    cr_assert_eq(vips_subtract(ia, ib, &d, NULL), 0, "%s", vips_error_buffer());
    cr_assert_eq(vips_abs(d, &ad, NULL), 0);
    cr_assert_eq(vips_max(ad, &mx, NULL), 0, "%s", vips_error_buffer());
    g_object_unref(ad);
    g_object_unref(d);
    g_object_unref(ia);
    g_object_unref(ib);
    return mx;
}

/* An upright phone JPEG within store_max_bytes, with EXIF (GPS, camera), XMP, a comment and an
 * ICC profile: stored without re-encoding (its entropy-coded data byte for byte, the same
 * pixels) and without any of that metadata. */
Test(photo, lossless_path_keeps_the_coded_data_and_drops_the_metadata)
{
    need_tool("exiftool", "libimage-exiftool-perl");
    char jpg[300];
    path_of(jpg, sizeof jpg, "upright.jpg");
    VipsImage *img = mosaic(1600, 1200, 4.0);
    cr_assert_eq(vips_jpegsave(img, jpg, "Q", 92, "profile", "srgb", "interlace", TRUE, NULL), 0,
                 "%s", vips_error_buffer());
    g_object_unref(img);
    RUN("exiftool -q -overwrite_original -Orientation#=1 -Make=Phone -Model=X1 "
        "-SerialNumber=SN123 -GPSLatitude=6.2 -GPSLatitudeRef=S -GPSLongitude=106.8 "
        "-GPSLongitudeRef=E -XMP:Description=secret -Comment=secret '%s'%s",
        jpg, "");
    RUN("exiftool -s -s -s -GPSLatitude -ProfileDescription -Comment '%s' | grep -c . | grep -qx "
        "3%s",
        jpg, "");

    struct photo_result r = process(jpg, PHOTO_SELFIE);
    assert_accepted_jpeg(&r, 1600, 1200);
    cr_assert_eq(r.lossless, 1, "an upright JPEG that fits is kept as coded");
    cr_assert_eq(r.shrunk, 0);
    size_t ilen, slen;
    unsigned char *in = slurp(jpg, &ilen), *st = slurp(r.stored_path, &slen);
    cr_assert_lt(slen, ilen);
    size_t isos = last_sos(in, ilen), ssos = last_sos(st, slen);
    cr_assert_eq(ilen - isos, slen - ssos, "the last scan differs in length");
    cr_assert_eq(memcmp(in + isos, st + ssos, ilen - isos), 0, "the last scan differs");
    free(in);
    free(st);
    cr_assert_eq(max_pixel_diff(jpg, r.stored_path), 0.0, "the pixels differ");
    RUN("! exiftool -a -G1 -s '%s' | grep -E "
        "'^\\[(IFD0|ExifIFD|GPS|XMP|XMP-[a-z]+|IFD1|ICC_Profile|ICC-header)\\]|Orientation|"
        "Comment|secret|SN123|Phone'%s",
        r.stored_path, "");
    /* The same photo judged the same as by the full decode: the measure of the 1/2-scale
     * decode is within 15% of that of the full image. */
    VipsImage *full = vips_image_new_from_file(jpg, NULL);
    cr_assert_not_null(full);
    VipsImage *mem = vips_image_copy_memory(full);
    struct photo_quality q;
    char err[256];
    cr_assert_eq(photo_quality_measure(mem, &q, err, sizeof err), 0, "%s", err);
    g_object_unref(mem);
    g_object_unref(full);
    cr_assert_lt(fabs(r.quality.sharpness - q.sharpness) / q.sharpness, 0.15,
                 "lossless %.1f, full %.1f", r.quality.sharpness, q.sharpness);
    cr_assert_lt(fabs(r.quality.brightness - q.brightness), 2.0);
    cr_assert_lt(fabs(r.quality.aspect - q.aspect), 1e-9);
}

/* A JPEG cut short, baseline and progressive, is corrupt on the lossless path (the walk copies
 * it to its end, and the shrink-on-load decode of the copy still reads every scan) and on the
 * streamed re-encode path. */
Test(photo, truncated_jpeg_corrupt_on_the_lossless_path)
{
    VipsImage *img = mosaic(2400, 1600, 4.0);
    for (int progressive = 0; progressive < 2; progressive++) {
        char jpg[300];
        path_of(jpg, sizeof jpg, progressive ? "p.jpg" : "b.jpg");
        cr_assert_eq(vips_jpegsave(img, jpg, "Q", 90, "interlace", progressive, NULL), 0);
        size_t len;
        unsigned char *buf = slurp(jpg, &len);
        /* Cut at 90%: all the headers and most scans are there. */
        size_t cut = len * 9 / 10;
        FILE *f = fopen(jpg, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(buf, 1, cut, f), cut);
        fclose(f);
        unsigned char *st = malloc(cut);
        size_t slen = 0;
        cr_assert_eq(photo_jpeg_strip(buf, cut, st, cut, &slen), 0);
        size_t tail = cut - last_sos(buf, cut);
        cr_assert_geq(slen, tail);
        cr_assert_eq(memcmp(st + slen - tail, buf + cut - tail, tail), 0,
                     "the scans are copied to the cut");
        VipsImage *small = NULL;
        cr_assert_eq(vips_jpegload_buffer(st, slen, &small, "shrink", 4, "fail_on",
                                          VIPS_FAIL_ON_ERROR, NULL),
                     0);
        double avg;
        cr_assert_neq(vips_avg(small, &avg, NULL), 0, "the 1/4 decode did not see the cut");
        vips_error_clear();
        g_object_unref(small);
        free(st);
        free(buf);
        struct photo_result r = process(jpg, PHOTO_KTP);
        cr_assert_eq(r.state, PHOTO_REJECTED, "progressive %d", progressive);
        cr_assert_str_eq(r.reason, "corrupt");
        /* Over the limit, the same file takes the streamed re-encode path: corrupt too. */
        int64_t keep = opts.store_max_bytes;
        opts.store_max_bytes = (int64_t)cut / 2;
        r = process(jpg, PHOTO_KTP);
        opts.store_max_bytes = keep;
        cr_assert_eq(r.state, PHOTO_REJECTED, "re-encode path, progressive %d", progressive);
        cr_assert_str_eq(r.reason, "corrupt");
    }
    g_object_unref(img);
}

/* A JPEG far over store_max_bytes loads at a reduced scale (shrink-on-load) and still fits,
 * with its aspect ratio. */
Test(photo, far_too_big_jpeg_shrunk_on_load)
{
    char jpg[300];
    path_of(jpg, sizeof jpg, "huge.jpg");
    VipsImage *img = mosaic(4000, 3000, 40.0);
    save(img, jpg, 95);
    g_object_unref(img);
    opts.store_max_bytes = 400 * 1024;
    struct photo_result r = process(jpg, PHOTO_SELFIE);
    cr_assert_eq(r.state, PHOTO_ACCEPTED);
    cr_assert(r.shrunk);
    cr_assert_eq(r.lossless, 0);
    cr_assert_leq(r.bytes_stored, 400 * 1024);
    cr_assert_leq(r.width, 2000, "%dx%d", r.width, r.height);
    cr_assert_geq(r.width, 640);
    double aspect = (double)r.width / r.height;
    cr_assert_lt(fabs(aspect - 4.0 / 3), 0.01, "%dx%d", r.width, r.height);
    assert_accepted_jpeg(&r, r.width, r.height);
}

/* Run photo_jpeg_strip on the LEN bytes at IN; returns its result, the copy in OUT (256). */
static int strip(const char *in, size_t len, unsigned char *out, size_t *olen)
{
    cr_assert_leq(len, 256);
    return photo_jpeg_strip((const unsigned char *)in, len, out, 256, olen);
}

#define STRIP_EQ(in, want)                                                                         \
    do {                                                                                           \
        unsigned char o_[256];                                                                     \
        size_t ol_ = 0;                                                                            \
        cr_assert_eq(strip(in, sizeof in - 1, o_, &ol_), 0);                                       \
        cr_assert_eq(ol_, sizeof want - 1, "length %zu, want %zu", ol_, sizeof want - 1);          \
        cr_assert_eq(memcmp(o_, want, ol_), 0);                                                    \
    } while (0)

/* The marker walk on hand-made streams: what goes, what stays, what it refuses. */
Test(photo, jpeg_strip_marker_walk)
{
    /* APP1 (EXIF), COM, APP2 (ICC) dropped; DQT, SOF0 copied; fill bytes before a marker
     * dropped; stuffed FF 00 and RST0 in the scan kept; COM between scans dropped; the
     * trailer after EOI (a motion photo's video) dropped. */
    STRIP_EQ("\xff\xd8"
             "\xff\xe1\x00\x08"
             "Exif\x00\x00"
             "\xff\xfe\x00\x05"
             "abc"
             "\xff\xff\xff\xe2\x00\x04"
             "ab"
             "\xff\xdb\x00\x04\x01\x02"
             "\xff\xc0\x00\x03\x07"
             "\xff\xda\x00\x03\x09"
             "\x11\xff\x00\x22\xff\xd0\x33\xff\xff\xd1"
             "\xff\xfe\x00\x03x"
             "\xff\xda\x00\x03\x0a\x44"
             "\xff\xff\xd9MP4 video",
             "\xff\xd8"
             "\xff\xdb\x00\x04\x01\x02"
             "\xff\xc0\x00\x03\x07"
             "\xff\xda\x00\x03\x09"
             "\x11\xff\x00\x22\xff\xd0\x33\xff\xff\xd1"
             "\xff\xda\x00\x03\x0a\x44"
             "\xff\xd9");
    /* JFIF rewritten without its 1x1 thumbnail; JFXX dropped; Adobe APP14 and TEM kept. */
    STRIP_EQ("\xff\xd8"
             "\xff\xe0\x00\x13JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x01\x01\xaa\xbb\xcc"
             "\xff\xe0\x00\x08JFXX\x00\x10"
             "\xff\xee\x00\x0e"
             "Adobe\x00\x64\x00\x00\x00\x00\x01"
             "\xff\x01"
             "\xff\xda\x00\x03\x09\x55\xff\xd9",
             "\xff\xd8"
             "\xff\xe0\x00\x10JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x00\x00"
             "\xff\xee\x00\x0e"
             "Adobe\x00\x64\x00\x00\x00\x00\x01"
             "\xff\x01"
             "\xff\xda\x00\x03\x09\x55\xff\xd9");
    /* Refused: not a JPEG, a segment longer than the file, a length under 2, a second SOI, a
     * JPGn extension, EOI before any scan, a byte that is no marker between segments, a cut
     * segment length, an arithmetic-coded frame (SOF9), DAC, a lossless frame (SOF3). */
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\x89PNG\r\n\x1a\n", 8},
        {"\xff\xd8\xff\xe1\x01\x00"
         "Exif",
         10},
        {"\xff\xd8\xff\xdb\x00\x01\xff\xd9", 8},
        {"\xff\xd8\xff\xd8\xff\xd9", 6},
        {"\xff\xd8\xff\xf7\x00\x02\xff\xda\x00\x02\xff\xd9", 12},
        {"\xff\xd8\xff\xd9", 4},
        {"\xff\xd8\x00\xff\xda\x00\x02\xff\xd9", 9},
        {"\xff\xd8\xff\xe1\x00", 5},
        {"\xff\xd8\xff\xc9\x00\x03\x08\xff\xda\x00\x02\xff\xd9", 13},
        {"\xff\xd8\xff\xcc\x00\x02\xff\xda\x00\x02\xff\xd9", 12},
        {"\xff\xd8\xff\xc3\x00\x02\xff\xda\x00\x02\xff\xd9", 12},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char o[256];
        size_t ol = 0;
        cr_assert_eq(strip(bad[i].s, bad[i].n, o, &ol), -1, "case %zu accepted", i);
    }
    /* An output buffer smaller than the input is refused rather than overrun. */
    unsigned char o[4];
    size_t ol = 0;
    cr_assert_eq(photo_jpeg_strip((const unsigned char *)"\xff\xd8\xff\xda\x00\x02\xff\xd9", 8, o,
                                  sizeof o, &ol),
                 -1);
}

/* The size of IMG encoded as photo_process encodes it (quality Q, strip). */
static size_t encoded_size(VipsImage *img, int q)
{
    void *buf = NULL;
    size_t len = 0;
    cr_assert_eq(vips_jpegsave_buffer(img, &buf, &len, "Q", q, "strip", TRUE, NULL), 0, "%s",
                 vips_error_buffer());
    g_free(buf);
    return len;
}

/* A photo over store_max_bytes that fits at quality 75 keeps every pixel: a lower quality
 * comes before a smaller size. */
Test(photo, over_the_limit_fits_at_a_lower_quality_with_every_pixel)
{
    char jpg[300];
    path_of(jpg, sizeof jpg, "q95.jpg");
    VipsImage *img = mosaic(2000, 1500, 20.0);
    save(img, jpg, 95);
    g_object_unref(img);
    VipsImage *in = vips_image_new_from_file(jpg, NULL);
    cr_assert_not_null(in);
    size_t q85 = encoded_size(in, 85), q75 = encoded_size(in, 75);
    g_object_unref(in);
    struct stat st;
    cr_assert_eq(stat(jpg, &st), 0);
    cr_assert_lt(q75, q85);
    opts.store_max_bytes = (int64_t)(q75 + q85) / 2;
    cr_assert_gt(st.st_size, opts.store_max_bytes, "the input must be over the limit");
    struct photo_result r = process(jpg, PHOTO_SELFIE);
    assert_accepted_jpeg(&r, 2000, 1500);
    cr_assert(r.shrunk, "re-encoded to fit");
    cr_assert_eq(r.lossless, 0);
    cr_assert_eq((size_t)r.bytes_stored, q75, "stored %lld, quality 75 gives %zu",
                 (long long)r.bytes_stored, q75);
    cr_assert_not_null(strstr(r.hint_en, "smaller"), "%s", r.hint_en);
}

/* A CMYK JPEG (as some scanners and print tools write) is neither kept as it is nor measured
 * on its ink bands: it is converted and stored as an sRGB JPEG, and a white page is not
 * "too dark". */
Test(photo, cmyk_jpeg_converted_and_measured_in_srgb)
{
    char jpg[300];
    path_of(jpg, sizeof jpg, "cmyk.jpg");
    /* No ink at all (C = M = Y = K = 0) with a little texture: a white page. */
    VipsImage *m = mosaic_of(1200, 800, 4.0, 2.0), *ink = NULL, *four = NULL, *cmyk = NULL;
    cr_assert_eq(vips_linear1(m, &ink, 0.1, 0.0, NULL), 0);
    VipsImage *ink8 = NULL;
    cr_assert_eq(vips_cast_uchar(ink, &ink8, NULL), 0);
    VipsImage *k = NULL;
    cr_assert_eq(vips_extract_band(ink8, &k, 0, NULL), 0);
    VipsImage *bands[2] = {ink8, k};
    cr_assert_eq(vips_bandjoin(bands, &four, 2, NULL), 0);
    cr_assert_eq(vips_copy(four, &cmyk, "interpretation", VIPS_INTERPRETATION_CMYK, NULL), 0);
    cr_assert_eq(vips_image_get_bands(cmyk), 4);
    cr_assert_eq(vips_jpegsave(cmyk, jpg, "Q", 90, NULL), 0, "%s", vips_error_buffer());
    VipsImage *objs[] = {m, ink, ink8, k, four, cmyk};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) g_object_unref(objs[i]);
    VipsImage *back = vips_image_new_from_file(jpg, NULL);
    cr_assert_not_null(back);
    cr_assert_eq(vips_image_get_bands(back), 4, "the test file is not CMYK");
    g_object_unref(back);

    struct photo_result r = process(jpg, PHOTO_SELFIE);
    assert_accepted_jpeg(&r, 1200, 800);
    cr_assert_eq(r.lossless, 0);
    VipsImage *st = vips_image_new_from_file(r.stored_path, NULL);
    cr_assert_not_null(st);
    cr_assert_eq(vips_image_get_bands(st), 3);
    g_object_unref(st);
    cr_assert_gt(r.quality.brightness, 200, "brightness %.1f", r.quality.brightness);
    cr_assert_eq(r.quality.warnings & PHOTO_WARN_TOO_DARK, 0);
}
