/* test_sniff.c: unit tests of the magic-byte sniffer (common/sniff.c).
 *
 * The headers are the exact first bytes of files made by real tools (the byte layouts of
 * libjpeg's JFIF and an iPhone's Exif JPEG, libpng, libwebp's lossy, lossless and extended
 * files, an iPhone HEIC and libheif's heif-enc, libavif, a PDF writer), then the same headers cut
 * short, and near-misses that share a prefix with a real signature. */
#include "antre/sniff.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SNIFF(lit) sniff_bytes(lit, sizeof(lit) - 1)

/* JFIF (libjpeg) and Exif (a phone camera). */
static const char jfif[] = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";
static const char exif[] = "\xff\xd8\xff\xe1\x2f\xfe"
                           "Exif\x00\x00MM\x00\x2a";
static const char png[] = "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x08\x00\x00\x00\x08";
static const char webp_lossy[] = "RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00";
static const char webp_lossless[] = "RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00";
static const char webp_ext[] = "RIFF\x3c\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00";
/* iPhone: major heic, compatible mif1 heic. */
static const char heic_iphone[] = "\x00\x00\x00\x18"
                                  "ftypheic\x00\x00\x00\x00"
                                  "mif1heic";
/* heif-enc: major heic too; some encoders write major mif1 with heic among the compatible. */
static const char heic_mif1_major[] = "\x00\x00\x00\x1c"
                                      "ftypmif1\x00\x00\x00\x00"
                                      "mif1miafheic";
static const char heif_generic[] = "\x00\x00\x00\x18"
                                   "ftypmif1\x00\x00\x00\x00"
                                   "mif1miaf";
static const char heic_seq[] = "\x00\x00\x00\x18"
                               "ftyphevc\x00\x00\x00\x00"
                               "msf1hevc";
static const char avif[] = "\x00\x00\x00\x20"
                           "ftypavif\x00\x00\x00\x00"
                           "avifmif1miafMA1B";
static const char pdf[] = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

Test(sniff, real_headers)
{
    cr_assert_eq(SNIFF(jfif), SNIFF_JPEG);
    cr_assert_eq(SNIFF(exif), SNIFF_JPEG);
    cr_assert_eq(SNIFF(png), SNIFF_PNG);
    cr_assert_eq(SNIFF(webp_lossy), SNIFF_WEBP);
    cr_assert_eq(SNIFF(webp_lossless), SNIFF_WEBP);
    cr_assert_eq(SNIFF(webp_ext), SNIFF_WEBP);
    cr_assert_eq(SNIFF(heic_iphone), SNIFF_HEIC);
    cr_assert_eq(SNIFF(heic_mif1_major), SNIFF_HEIF); /* the major brand decides */
    cr_assert_eq(SNIFF(heif_generic), SNIFF_HEIF);
    cr_assert_eq(SNIFF(heic_seq), SNIFF_HEIC);
    cr_assert_eq(SNIFF(avif), SNIFF_AVIF);
    cr_assert_eq(SNIFF(pdf), SNIFF_PDF);
}

Test(sniff, mime_types)
{
    cr_assert_str_eq(sniff_mime(SNIFF_JPEG), "image/jpeg");
    cr_assert_str_eq(sniff_mime(SNIFF_PNG), "image/png");
    cr_assert_str_eq(sniff_mime(SNIFF_WEBP), "image/webp");
    cr_assert_str_eq(sniff_mime(SNIFF_HEIC), "image/heic");
    cr_assert_str_eq(sniff_mime(SNIFF_HEIF), "image/heif");
    cr_assert_str_eq(sniff_mime(SNIFF_AVIF), "image/avif");
    cr_assert_str_eq(sniff_mime(SNIFF_PDF), "application/pdf");
    cr_assert_null(sniff_mime(SNIFF_UNKNOWN));
    cr_assert_null(sniff_mime(SNIFF__COUNT));
    cr_assert_null(sniff_mime((enum sniff_type) - 1));
}

Test(sniff, compatible_brands_when_the_major_is_foreign)
{
    /* A major brand we do not know, with heic compatible: HEIC; avif before mif1; mif1 alone:
     * HEIF; nothing known: unknown. */
    cr_assert_eq(SNIFF("\x00\x00\x00\x1c"
                       "ftypisom\x00\x00\x00\x00"
                       "mif1avifheic"),
                 SNIFF_HEIC);
    cr_assert_eq(SNIFF("\x00\x00\x00\x18"
                       "ftypisom\x00\x00\x00\x00"
                       "mif1avif"),
                 SNIFF_AVIF);
    cr_assert_eq(SNIFF("\x00\x00\x00\x14"
                       "ftypisom\x00\x00\x00\x00"
                       "mif1"),
                 SNIFF_HEIF);
    cr_assert_eq(SNIFF("\x00\x00\x00\x18"
                       "ftypisom\x00\x00\x00\x00"
                       "mp41mp42"),
                 SNIFF_UNKNOWN);
}

Test(sniff, truncated_headers_are_unknown)
{
    const struct {
        const char *b;
        size_t full;
    } all[] = {{jfif, sizeof jfif - 1},
               {png, sizeof png - 1},
               {webp_lossy, sizeof webp_lossy - 1},
               {pdf, sizeof pdf - 1},
               {avif, sizeof avif - 1}};
    static const size_t need[] = {3, 8, 12, 5, 12};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        for (size_t n = 0; n < need[i]; n++) {
            /* A heap copy of exactly N bytes: ASan sees a read past it. */
            char *cut = malloc(n ? n : 1);
            memcpy(cut, all[i].b, n);
            cr_assert_eq(sniff_bytes(cut, n), SNIFF_UNKNOWN, "case %zu cut to %zu", i, n);
            free(cut);
        }
        cr_assert_neq(sniff_bytes(all[i].b, need[i] < 16 ? all[i].full : need[i]), SNIFF_UNKNOWN);
    }
    /* An ftyp box cut inside its compatible brands reads only the brands that are there. */
    cr_assert_eq(sniff_bytes(heic_mif1_major, 16), SNIFF_HEIF);
    cr_assert_eq(sniff_bytes("\x00\x00\x00\x18"
                             "ftypisom\x00\x00\x00\x00"
                             "mif1heic",
                             20),
                 SNIFF_HEIF);
    cr_assert_eq(sniff_bytes("\x00\x00\x00\x18"
                             "ftypisom\x00\x00\x00\x00"
                             "mif1heic",
                             23),
                 SNIFF_HEIF);
    cr_assert_eq(sniff_bytes("\x00\x00\x00\x18"
                             "ftypisom\x00\x00\x00\x00"
                             "mif1heic",
                             24),
                 SNIFF_HEIC);
    cr_assert_eq(sniff_bytes("", 0), SNIFF_UNKNOWN);
}

Test(sniff, near_misses)
{
    cr_assert_eq(SNIFF("\xff\xd8\xfe\xe0"), SNIFF_UNKNOWN); /* not FF D8 FF */
    cr_assert_eq(SNIFF("\xff\xd9\xff\xe0"), SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("\x89PNG\r\n\x1a\x0a"), SNIFF_PNG);
    cr_assert_eq(SNIFF("\x89PNG\n\n\x1a\n"), SNIFF_UNKNOWN); /* line ends mangled */
    cr_assert_eq(SNIFF("\x89PNG\r\n\x1a\r"), SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("RIFF\x24\x00\x00\x00WAVEfmt "), SNIFF_UNKNOWN); /* a WAV */
    cr_assert_eq(SNIFF("RIFX\x24\x00\x00\x00WEBPVP8 "), SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("%PDF"), SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("%PDX-1.4"), SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF(" %PDF-1.4"), SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("GIF89a\x01\x00\x01\x00"), SNIFF_UNKNOWN);
    /* ftyp boxes that lie about their size, or are not ftyp. */
    cr_assert_eq(SNIFF("\x00\x00\x00\x0c"
                       "ftypheic\x00\x00\x00\x00"),
                 SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("\x00\x00\x00\x19"
                       "ftypheic\x00\x00\x00\x00"
                       "mif1heic"),
                 SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("\x00\x00\x00\x01"
                       "ftypheic\x00\x00\x00\x00"
                       "mif1heic"),
                 SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("\x00\x00\x00\x18"
                       "moovheic\x00\x00\x00\x00"
                       "mif1heic"),
                 SNIFF_UNKNOWN);
    cr_assert_eq(SNIFF("\x00\x00\x00\x18"
                       "ftypHEIC\x00\x00\x00\x00"
                       "MIF1HEIC"),
                 SNIFF_UNKNOWN);
    /* A brand outside the box (size 20: one compatible brand) is not read. */
    cr_assert_eq(SNIFF("\x00\x00\x00\x14"
                       "ftypisom\x00\x00\x00\x00"
                       "mp42heic"),
                 SNIFF_UNKNOWN);
}

Test(sniff, reads_at_most_sniff_max)
{
    /* A box claiming 4096 bytes whose heic brand lies past SNIFF_MAX is not seen. */
    unsigned char b[4096];
    memset(b, 'x', sizeof b);
    memcpy(b,
           "\x00\x00\x10\x00"
           "ftypisom\x00\x00\x00\x00",
           16);
    memcpy(b + SNIFF_MAX, "heic", 4);
    cr_assert_eq(sniff_bytes(b, sizeof b), SNIFF_UNKNOWN);
    memcpy(b + SNIFF_MAX - 4, "heic", 4);
    cr_assert_eq(sniff_bytes(b, sizeof b), SNIFF_HEIC);
}

Test(sniff, could_be)
{
    cr_assert(sniff_could_be("", 0, SNIFF_JPEG));
    cr_assert(sniff_could_be("\xff\xd8", 2, SNIFF_JPEG));
    cr_assert(sniff_could_be("\xff\xd8\xff\x00\x01", 5, SNIFF_JPEG));
    cr_assert_not(sniff_could_be("\xff\xd9", 2, SNIFF_JPEG));
    cr_assert(sniff_could_be("\x89PN", 3, SNIFF_PNG));
    cr_assert_not(sniff_could_be("\x89PX", 3, SNIFF_PNG));
    /* WebP: RIFF, any size, WEBP. */
    cr_assert(sniff_could_be("RIFF", 4, SNIFF_WEBP));
    cr_assert(sniff_could_be("RIFF\x24\x00\x00\x00WE", 10, SNIFF_WEBP));
    cr_assert_not(sniff_could_be("RIFF\x24\x00\x00\x00WA", 10, SNIFF_WEBP)); /* a WAV */
    cr_assert_not(sniff_could_be("RIFX", 4, SNIFF_WEBP));
    cr_assert(sniff_could_be("%PD", 3, SNIFF_PDF));
    cr_assert_not(sniff_could_be("%PDX", 4, SNIFF_PDF));
    cr_assert_not(sniff_could_be("\xff\xd8\xff", 3, SNIFF_UNKNOWN));
    cr_assert_not(sniff_could_be("", 0, SNIFF_UNKNOWN));
}

/* Every prefix of HDR (FULL bytes, a complete ftyp box) could be WANT, and the whole is WANT
 * and nothing else; each prefix is a heap copy of exactly its length (ASan sees an overread). */
static void prefixes_could_be(const char *hdr, size_t full, enum sniff_type want)
{
    for (size_t n = 0; n <= full; n++) {
        char *cut = malloc(n ? n : 1);
        memcpy(cut, hdr, n);
        cr_assert(sniff_could_be(cut, n, want), "type %d cut to %zu", want, n);
        free(cut);
    }
    for (enum sniff_type t = SNIFF_JPEG; t < SNIFF__COUNT; t++)
        cr_assert_eq(sniff_could_be(hdr, full, t), t == want, "type %d as %d", want, t);
}

Test(sniff, could_be_an_ftyp_type)
{
    /* The bytes a streaming reader sees one by one never refuse a real HEIC, HEIF or AVIF. */
    prefixes_could_be(heic_iphone, sizeof heic_iphone - 1, SNIFF_HEIC);
    prefixes_could_be(heif_generic, sizeof heif_generic - 1, SNIFF_HEIF);
    prefixes_could_be(heic_mif1_major, sizeof heic_mif1_major - 1, SNIFF_HEIF);
    prefixes_could_be(heic_seq, sizeof heic_seq - 1, SNIFF_HEIC);
    prefixes_could_be(avif, sizeof avif - 1, SNIFF_AVIF);
    prefixes_could_be(webp_ext, sizeof webp_ext - 1, SNIFF_WEBP);

    /* The first 8 bytes (all the old 8-byte check saw) cannot tell HEIC, HEIF and AVIF apart. */
    for (enum sniff_type t = SNIFF_HEIC; t <= SNIFF_AVIF; t++)
        cr_assert(sniff_could_be(avif, 8, t));
    /* A known major brand decides at 12 bytes, before the box is in. */
    cr_assert(sniff_could_be(avif, 12, SNIFF_AVIF));
    cr_assert_not(sniff_could_be(avif, 12, SNIFF_HEIC));
    cr_assert_not(sniff_could_be(avif, 12, SNIFF_HEIF));
    cr_assert_not(sniff_could_be(heic_iphone, 12, SNIFF_HEIF));

    /* A foreign major brand: the compatible brands decide, so only the whole box can say no. */
    static const char isom[] = "\x00\x00\x00\x1c"
                               "ftypisom\x00\x00\x00\x00"
                               "mp41mp42heic";
    for (size_t n = 0; n < sizeof isom - 1; n++) {
        cr_assert(sniff_could_be(isom, n, SNIFF_HEIC), "cut to %zu", n);
        cr_assert(sniff_could_be(isom, n, SNIFF_HEIF), "cut to %zu", n);
    }
    cr_assert(sniff_could_be(isom, sizeof isom - 1, SNIFF_HEIC));
    cr_assert_not(sniff_could_be(isom, sizeof isom - 1, SNIFF_HEIF));
    static const char mp4[] = "\x00\x00\x00\x18"
                              "ftypisom\x00\x00\x00\x00"
                              "mp41mp42";
    cr_assert(sniff_could_be(mp4, 20, SNIFF_HEIC));
    cr_assert_not(sniff_could_be(mp4, sizeof mp4 - 1, SNIFF_HEIC)); /* a video */

    /* Box heads that cannot be an ftyp box say no at once. */
    cr_assert_not(sniff_could_be("\x00\x00\x00\x18moov", 8, SNIFF_HEIC));
    cr_assert_not(sniff_could_be("\x00\x00\x00\x18"
                                 "ftpy",
                                 8, SNIFF_HEIC));
    cr_assert_not(sniff_could_be("\x00\x00\x00\x0c", 4, SNIFF_HEIC)); /* under 16 */
    cr_assert_not(sniff_could_be("\x00\x00\x00\x19", 4, SNIFF_HEIF)); /* half a brand */
    cr_assert(sniff_could_be("\x00\x00\x00\x18"
                             "ft",
                             6, SNIFF_HEIF));
}

Test(sniff, could_be_past_sniff_max_is_sniff_bytes)
{
    /* A box longer than SNIFF_MAX: undecided until SNIFF_MAX bytes, then what sniff_bytes says,
     * for every type. */
    unsigned char b[SNIFF_MAX + 64];
    memset(b, 'x', sizeof b);
    memcpy(b,
           "\x00\x00\x10\x00"
           "ftypisom\x00\x00\x00\x00",
           16);
    memcpy(b + SNIFF_MAX - 4, "mif1", 4);
    cr_assert(sniff_could_be(b, SNIFF_MAX - 1, SNIFF_HEIC));
    for (size_t n = SNIFF_MAX; n <= sizeof b; n += 32)
        for (enum sniff_type t = SNIFF_JPEG; t < SNIFF__COUNT; t++)
            cr_assert_eq(sniff_could_be(b, n, t), sniff_bytes(b, n) == t, "%zu bytes as %d", n, t);
    cr_assert_eq(sniff_bytes(b, sizeof b), SNIFF_HEIF);
}

Test(sniff, from_a_file)
{
    char path[] = "/tmp/test_sniff_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    cr_assert_eq(sniff_fd(fd), SNIFF_UNKNOWN); /* empty */
    cr_assert_eq(write(fd, heic_iphone, sizeof heic_iphone - 1), (ssize_t)sizeof heic_iphone - 1);
    cr_assert_eq(sniff_fd(fd), SNIFF_HEIC); /* pread: the offset at the end does not matter */
    close(fd);
    cr_assert_eq(sniff_fd(fd), SNIFF_UNKNOWN); /* closed */
}
