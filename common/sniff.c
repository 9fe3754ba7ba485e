/* sniff.c: image and document types by magic bytes (see sniff.h). */
#include "antre/sniff.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static const unsigned char sig_jpeg[3] = {0xff, 0xd8, 0xff};
static const unsigned char sig_png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static const char *const mimes[SNIFF__COUNT] = {
    [SNIFF_JPEG] = "image/jpeg",     [SNIFF_PNG] = "image/png",   [SNIFF_WEBP] = "image/webp",
    [SNIFF_HEIC] = "image/heic",     [SNIFF_HEIF] = "image/heif", [SNIFF_AVIF] = "image/avif",
    [SNIFF_PDF] = "application/pdf",
};

const char *sniff_mime(enum sniff_type t) { return (unsigned)t < SNIFF__COUNT ? mimes[t] : NULL; }

/* The type an ftyp brand (4 bytes) stands for, or SNIFF_UNKNOWN. */
static enum sniff_type brand_type(const unsigned char *b)
{
    static const struct {
        char brand[5];
        enum sniff_type t;
    } brands[] = {
        {"heic", SNIFF_HEIC}, {"heix", SNIFF_HEIC}, {"heim", SNIFF_HEIC}, {"heis", SNIFF_HEIC},
        {"hevc", SNIFF_HEIC}, {"hevx", SNIFF_HEIC}, {"avif", SNIFF_AVIF}, {"avis", SNIFF_AVIF},
        {"mif1", SNIFF_HEIF}, {"msf1", SNIFF_HEIF},
    };
    for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
        if (memcmp(b, brands[i].brand, 4) == 0) return brands[i].t;
    return SNIFF_UNKNOWN;
}

/* An ISO-BMFF file starts with its ftyp box: size (32-bit big-endian, at least 16, a whole
 * number of 4-byte brands after the 16-byte head), "ftyp", major brand, minor version, then
 * compatible brands. Only the brands inside both the box and the LEN bytes are read. */
static enum sniff_type sniff_ftyp(const unsigned char *b, size_t len)
{
    if (len < 16 || memcmp(b + 4, "ftyp", 4) != 0) return SNIFF_UNKNOWN;
    uint32_t size = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (size < 16 || (size - 16) % 4 != 0) return SNIFF_UNKNOWN;
    enum sniff_type major = brand_type(b + 8);
    if (major != SNIFF_UNKNOWN) return major;
    size_t end = size < len ? size : len;
    enum sniff_type best = SNIFF_UNKNOWN;
    for (size_t off = 16; off + 4 <= end; off += 4) {
        enum sniff_type t = brand_type(b + off);
        /* HEIC before AVIF before HEIF: the enum's order is not the preference. */
        if (t == SNIFF_HEIC) return t;
        if (t == SNIFF_AVIF || (t == SNIFF_HEIF && best == SNIFF_UNKNOWN)) best = t;
    }
    return best;
}

enum sniff_type sniff_bytes(const void *data, size_t len)
{
    const unsigned char *b = data;
    if (len > SNIFF_MAX) len = SNIFF_MAX;
    if (len >= sizeof sig_jpeg && memcmp(b, sig_jpeg, sizeof sig_jpeg) == 0) return SNIFF_JPEG;
    if (len >= sizeof sig_png && memcmp(b, sig_png, sizeof sig_png) == 0) return SNIFF_PNG;
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return SNIFF_WEBP;
    if (len >= 5 && memcmp(b, "%PDF-", 5) == 0) return SNIFF_PDF;
    return sniff_ftyp(b, len);
}

/* Whether the LEN bytes at B agree with the N bytes of SIG placed at offset OFF, as far as they
 * go (bytes not there yet agree). */
static int agrees(const unsigned char *b, size_t len, size_t off, const void *sig, size_t n)
{
    if (len <= off) return 1;
    return memcmp(b + off, sig, len - off < n ? len - off : n) == 0;
}

/* sniff_could_be for the ftyp types (HEIC, HEIF, AVIF). The answer is sniff_bytes's as soon as
 * the bytes it reads are there (the box, up to SNIFF_MAX); before that, a box head that cannot
 * be one, or a major brand that names another type, already says no. */
static int ftyp_could_be(const unsigned char *b, size_t len, enum sniff_type t)
{
    if (!agrees(b, len, 4, "ftyp", 4)) return 0;
    if (len < 4) return 1;
    uint32_t size = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    if (size < 16 || (size - 16) % 4 != 0) return 0;
    if (len >= (size < SNIFF_MAX ? size : SNIFF_MAX)) return sniff_bytes(b, len) == t;
    if (len >= 12) {
        enum sniff_type major = brand_type(b + 8);
        if (major != SNIFF_UNKNOWN) return major == t;
    }
    return 1;
}

int sniff_could_be(const void *data, size_t len, enum sniff_type t)
{
    const unsigned char *b = data;
    switch (t) {
    case SNIFF_JPEG: return agrees(b, len, 0, sig_jpeg, sizeof sig_jpeg);
    case SNIFF_PNG: return agrees(b, len, 0, sig_png, sizeof sig_png);
    case SNIFF_WEBP: return agrees(b, len, 0, "RIFF", 4) && agrees(b, len, 8, "WEBP", 4);
    case SNIFF_PDF: return agrees(b, len, 0, "%PDF-", 5);
    case SNIFF_HEIC:
    case SNIFF_HEIF:
    case SNIFF_AVIF: return ftyp_could_be(b, len, t);
    default: return 0;
    }
}

enum sniff_type sniff_fd(int fd)
{
    unsigned char b[SNIFF_MAX];
    ssize_t n = pread(fd, b, sizeof b, 0);
    return n > 0 ? sniff_bytes(b, (size_t)n) : SNIFF_UNKNOWN;
}
