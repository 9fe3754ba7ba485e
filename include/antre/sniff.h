/* sniff.h: what a file is, from its first bytes (magic numbers), never from its name or the
 * type a client declares.
 *
 * Types told apart: JPEG (FF D8 FF), PNG (the 8-byte signature), WebP (a RIFF container whose
 * form type is WEBP), HEIC and HEIF (an ISO-BMFF `ftyp` box first, by its brands), AVIF (same
 * box, brand avif or avis: told apart so that an AVIF, whose compatible brands include mif1, is
 * not taken for a HEIF that the worker might not decode), and PDF (%PDF-). Reads are bounded:
 * only the first SNIFF_MAX bytes are ever looked at, and fewer are simply a shorter prefix
 * (a truncated header is SNIFF_UNKNOWN, never a read past LEN).
 *
 * ftyp brands: HEIC = heic, heix, heim, heis, hevc, hevx (HEVC-coded images or sequences);
 * HEIF = mif1, msf1 (the generic image and sequence brands); AVIF = avif, avis. The major brand
 * decides when it is one of these; otherwise the compatible brands do, HEIC before AVIF before
 * HEIF (an iPhone's file says major heic; some encoders say major mif1 with heic compatible).
 *
 * Which types are ACCEPTED is the caller's decision; this module only names them. */
#ifndef ANTRE_SNIFF_H
#define ANTRE_SNIFF_H

#include <stddef.h>

enum sniff_type {
    SNIFF_UNKNOWN = 0,
    SNIFF_JPEG,
    SNIFF_PNG,
    SNIFF_WEBP,
    SNIFF_HEIC,
    SNIFF_HEIF,
    SNIFF_AVIF,
    SNIFF_PDF,
    SNIFF__COUNT
};

/* Bytes sniff_bytes looks at, at most: an ftyp box with up to 28 compatible brands. */
#define SNIFF_MAX 128

/* The type of a file that begins with the LEN bytes at B (only min(LEN, SNIFF_MAX) are read). */
enum sniff_type sniff_bytes(const void *b, size_t len);

/* The MIME type of T ("image/jpeg", ..., "application/pdf"), or NULL for SNIFF_UNKNOWN. Static
 * storage. */
const char *sniff_mime(enum sniff_type t);

/* 1 when the LEN bytes at B could still be the start of a file that sniff_bytes calls T, that
 * is, they agree with T's signature as far as they go; 0 when no more bytes can make it T (and
 * always 0 for SNIFF_UNKNOWN). Lets a streaming reader refuse a body at its first bytes. Fixed
 * signatures (JPEG, PNG, WebP's RIFF....WEBP, PDF) are compared as far as LEN goes. An ftyp
 * type (HEIC, HEIF, AVIF) stays possible until its box head, its major brand or (when the
 * major brand is not one of those listed above) the whole box as far as SNIFF_MAX says
 * otherwise: its brands start at offset 8, so a reader must keep up to SNIFF_MAX bytes to be
 * sure. From SNIFF_MAX bytes on the answer is final: 1 exactly when sniff_bytes(B, LEN) == T. */
int sniff_could_be(const void *b, size_t len, enum sniff_type t);

/* Sniff the file open at FD: reads its first SNIFF_MAX bytes with pread (the file offset does
 * not move). SNIFF_UNKNOWN when it cannot be read. */
enum sniff_type sniff_fd(int fd);

#endif
