/* photo_quality.c: the measures behind the quality hints, on an upright sRGB image.
 *
 * Sharpness is the variance of the Laplacian (the 3x3 kernel 0 1 0 / 1 -4 1 / 0 1 0) of the
 * grey (luma) image scaled so that its long side is 640 pixels (first by the largest power of
 * two that keeps it at 640 or more, a box average as libjpeg's DCT scaling does on load, then
 * by the rest with lanczos3: an image the lossless path decoded at 1/4 and the full-size image
 * of the re-encode path give nearly the same measure; tests/unit/test_photo.c holds them within
 * 15%): a focused picture has strong local
 * second derivatives at its edges, a blurred or shaken one has few. Scaling first makes the
 * number independent of the camera's resolution (a 12 MP photo is not "sharper" than a 2 MP one
 * of the same scene) and cheap. Brightness is the mean grey level (0-255) of the same image.
 * The thresholds come from [upload] and were chosen on the test set of tests/unit/test_photo.c
 * (sharp and blurred versions of the same pictures). */
#include <math.h>
#include <vips/vips.h>

#include "antre/errbuf.h"
#include "photo.h"

/* The ratio of an ID-1 card (ISO/IEC 7810), which a KTP is: 85.60 mm x 53.98 mm. */
#define KTP_ASPECT (85.60 / 53.98)
#define MEASURE_LONG_SIDE 640.0

int photo_quality_measure(void *vimg, struct photo_quality *q, char *err, size_t errlen)
{
    VipsImage *img = vimg;
    VipsImage *t[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    int rc = -1;
    int w = vips_image_get_width(img), h = vips_image_get_height(img);
    int lng = w > h ? w : h, sht = w > h ? h : w;
    q->aspect = sht > 0 ? (double)lng / sht : 0;

    int f = 1;
    while (lng / (f * 2) >= MEASURE_LONG_SIDE) f *= 2;
    if (f > 1 ? vips_shrink(img, &t[0], f, f, NULL) : vips_copy(img, &t[0], NULL)) goto out;
    /* Grey before the lanczos3 step (one band to resample instead of three), as luma: the
     * weighted sum of the gamma-encoded R, G and B (ITU-R BT.601, JPEG's own Y). Not
     * vips_colourspace's B_W, which goes through linear light in floating point and took a
     * sixth of the lossless path's time; a grey picture gives the same number either way. */
    if (vips_image_get_bands(t[0]) >= 3) {
        VipsImage *rgb = NULL, *y = NULL;
        VipsImage *m = vips_image_new_matrixv(3, 1, 0.299, 0.587, 0.114);
        int bad = vips_extract_band(t[0], &rgb, 0, "n", 3, NULL) || vips_recomb(rgb, &y, m, NULL) ||
                  vips_cast_uchar(y, &t[1], NULL);
        g_object_unref(m);
        if (rgb) g_object_unref(rgb);
        if (y) g_object_unref(y);
        if (bad) goto out;
    } else if (vips_copy(t[0], &t[1], NULL)) {
        goto out;
    }
    if (vips_extract_band(t[1], &t[2], 0, NULL)) goto out;
    int blng = vips_image_get_width(t[2]) > vips_image_get_height(t[2])
                   ? vips_image_get_width(t[2])
                   : vips_image_get_height(t[2]);
    double scale = MEASURE_LONG_SIDE / blng;
    VipsImage *grey = NULL;
    if (scale < 1.0 ? vips_resize(t[2], &grey, scale, NULL) : vips_copy(t[2], &grey, NULL))
        goto out;
    /* Why render the small grey image before measuring: the convolution asks its input for
     * overlapping regions and two statistics read it, and with the operation cache off every
     * request would run the resize of the full-size image again (0.9 s instead of 0.03 s on a
     * 12 MP photo). It also keeps the libvips 8.14 hang of an unrendered blur-resize-statistic
     * chain out of reach. */
    t[3] = vips_image_copy_memory(grey);
    g_object_unref(grey);
    if (!t[3]) goto out;
    t[4] = vips_image_new_matrixv(3, 3, 0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0);
    if (vips_conv(t[3], &t[5], t[4], "precision", VIPS_PRECISION_FLOAT, NULL)) goto out;
    double sd = 0, mean = 0;
    if (vips_deviate(t[5], &sd, NULL) || vips_avg(t[3], &mean, NULL)) goto out;
    q->sharpness = sd * sd;
    q->brightness = mean;
    rc = 0;
out:
    if (rc < 0) {
        errbuf_set(err, errlen, "photo_quality: %s", vips_error_buffer());
        vips_error_clear();
    }
    for (int i = 0; i < 6; i++)
        if (t[i]) g_object_unref(t[i]);
    return rc;
}

void photo_quality_judge(const struct photo_opts *o, enum photo_kind kind, struct photo_quality *q)
{
    q->warnings = 0;
    if (q->sharpness < o->min_sharpness) q->warnings |= PHOTO_WARN_BLURRY;
    if (q->brightness < o->min_brightness) q->warnings |= PHOTO_WARN_TOO_DARK;
    if (q->brightness > o->max_brightness) q->warnings |= PHOTO_WARN_OVEREXPOSED;
    if (kind == PHOTO_KTP && fabs(q->aspect - KTP_ASPECT) / KTP_ASPECT > o->ktp_aspect_tolerance)
        q->warnings |= PHOTO_WARN_KTP_ASPECT;
}
