/* fuzz_tus_metadata.c: libFuzzer target for the tus Upload-Metadata parser
 * (tus_metadata_parse in gateway/tus.c).
 *
 * The input is a header value, given in a buffer of exactly its size. Checked with abort():
 *   - the answer is 0 or -1; on -1 the error names a code, Indonesian and English messages;
 *   - on 0, registration_id is a well-formed id, kind is ktp or selfie, content_type is empty,
 *     one of the five photo types (image/jpeg, image/png, image/webp, image/heic, image/heif)
 *     or application/octet-stream, in lower case, and metadata is the input itself (so at most
 *     TUS_META_MAX bytes of printable ASCII);
 *   - the parser stops at LEN: the same value followed by more bytes gives the same answer;
 *   - it agrees with reference(), the rules of tus.h written another way (a NUL-terminated copy
 *     cut with strchr/strspn, base64 decoded by OpenSSL's EVP_DecodeBlock), on the result, the
 *     error's code and field, and the values parsed. */
#include "../../gateway/tus.h"
#include "../../gateway/tus_store.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ref {
    int rc;
    enum error_id code;
    const char *field;
    char reg[IDENT_LEN + 1], kind[8], type[32];
};

static int refuse(struct ref *r, enum error_id code, const char *field)
{
    r->rc = -1;
    r->code = code;
    r->field = field;
    return -1;
}

/* Standard padded base64 of S (LEN chars) into OUT; the byte count, or -1. */
static int ref_b64(const char *s, size_t len, unsigned char *out)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len % 4) return -1;
    size_t pad = 0;
    while (pad < len && pad < 2 && s[len - 1 - pad] == '=') pad++;
    if (strspn(s, alpha) < len - pad) return -1;
    if (pad && (len - pad) % 4 < 2) return -1;
    if (len == 0) return 0;
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    if (n < 0) return -1;
    return n - (int)pad;
}

static int is_hex_id(const unsigned char *b, int n)
{
    if (n != IDENT_LEN) return 0;
    for (int i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", b[i]) || !b[i]) return 0;
    return 1;
}

static int reference(const char *v, size_t len, struct ref *r)
{
    memset(r, 0, sizeof *r);
    if (len > TUS_META_MAX) return refuse(r, ERR_INVALID_METADATA, NULL);
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] > 0x7e) return refuse(r, ERR_INVALID_METADATA, NULL);
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, v, len);
    s[len] = 0;
    int have_reg = 0, have_kind = 0, have_type = 0, rc = 0;
    for (char *seg = s; *seg || seg == s;) {
        if (!*seg && len == 0) break;
        char *comma = strchr(seg, ',');
        char *next = comma ? comma + 1 : seg + strlen(seg);
        if (comma) *comma = 0;
        char *key = seg + strspn(seg, " ");
        size_t kl = strcspn(key, " ");
        char *val = key + kl + strspn(key + kl, " ");
        size_t vl = strlen(val);
        while (vl && val[vl - 1] == ' ') vl--;
        if (kl == 0) {
            rc = refuse(r, ERR_INVALID_METADATA, NULL);
            break;
        }
        unsigned char dec[512];
        int dl = vl <= 600 ? ref_b64(val, vl, dec) : -1;
        if (dl < 0 || dl > 191) {
            rc = refuse(r, ERR_INVALID_METADATA, NULL);
            break;
        }
        key[kl] = 0;
        if (!strcmp(key, "registration_id")) {
            if (have_reg++ || !is_hex_id(dec, dl)) {
                rc = refuse(r, ERR_INVALID_METADATA, "registration_id");
                break;
            }
            memcpy(r->reg, dec, IDENT_LEN);
        } else if (!strcmp(key, "kind")) {
            if (have_kind++ ||
                !((dl == 3 && !memcmp(dec, "ktp", 3)) || (dl == 6 && !memcmp(dec, "selfie", 6)))) {
                rc = refuse(r, ERR_INVALID_METADATA, "kind");
                break;
            }
            memcpy(r->kind, dec, (size_t)dl);
        } else if (!strcmp(key, "filetype")) {
            if (have_type++) {
                rc = refuse(r, ERR_INVALID_METADATA, "filetype");
                break;
            }
            /* Any case; stored in lower case; empty says nothing. */
            static const char *const types[] = {"image/jpeg", "image/png",
                                                "image/webp", "image/heic",
                                                "image/heif", "application/octet-stream"};
            size_t k = 0;
            while (k < 6 && !((size_t)dl == strlen(types[k]) &&
                              !strncasecmp((const char *)dec, types[k], (size_t)dl)))
                k++;
            if (dl > 0 && k == 6) {
                rc = refuse(r, ERR_UNSUPPORTED_MEDIA_TYPE, "filetype");
                break;
            }
            if (dl > 0) strcpy(r->type, types[k]);
        }
        if (!comma) break;
        seg = next;
        if (!*seg) break; /* a trailing comma ends the list */
    }
    free(s);
    if (rc < 0) return rc;
    if (!have_reg) return refuse(r, ERR_INVALID_METADATA, "registration_id");
    if (!have_kind) return refuse(r, ERR_INVALID_METADATA, "kind");
    return 0;
}

static int same_field(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *v = (const char *)data;
    struct tus_info in;
    struct tus_meta_error e;
    memset(&in, 0, sizeof in);
    memset(&e, 0, sizeof e);
    int rc = tus_metadata_parse(size ? v : NULL, size, &in, &e);
    CHECK(rc == 0 || rc == -1);
    if (rc < 0) {
        CHECK(e.code == ERR_INVALID_METADATA || e.code == ERR_UNSUPPORTED_MEDIA_TYPE);
        CHECK(e.msg_id && e.msg_en && *e.msg_id && *e.msg_en);
    } else {
        CHECK(strlen(in.reg) == IDENT_LEN && strspn(in.reg, "0123456789abcdef") == IDENT_LEN);
        CHECK(!strcmp(in.kind, "ktp") || !strcmp(in.kind, "selfie"));
        CHECK(!in.content_type[0] || !strcmp(in.content_type, "image/jpeg") ||
              !strcmp(in.content_type, "image/png") || !strcmp(in.content_type, "image/webp") ||
              !strcmp(in.content_type, "image/heic") || !strcmp(in.content_type, "image/heif") ||
              !strcmp(in.content_type, "application/octet-stream"));
        CHECK(size <= TUS_META_MAX && strlen(in.metadata) == size &&
              !memcmp(in.metadata, data, size));
    }

    /* The same value with more bytes after it. */
    static const char tails[][4] = {",a ", "=", "A", "\0"};
    char *longer = malloc(size + 4);
    if (!longer) abort();
    if (size) memcpy(longer, data, size);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        struct tus_info in2;
        struct tus_meta_error e2;
        memset(&in2, 0, sizeof in2);
        memcpy(longer + size, tails[i], 4);
        CHECK(tus_metadata_parse(longer, size, &in2, &e2) == rc);
        CHECK(rc < 0 || !memcmp(&in, &in2, sizeof in));
    }
    free(longer);

    struct ref r;
    reference(v, size, &r);
    if (r.rc != rc || (rc < 0 && (r.code != e.code || !same_field(r.field, e.field))) ||
        (rc == 0 &&
         (strcmp(r.reg, in.reg) || strcmp(r.kind, in.kind) || strcmp(r.type, in.content_type)))) {
        fprintf(stderr, "fuzz_tus_metadata: %.*s: parser %d (%s), reference %d (%s)\n", (int)size,
                v, rc, rc < 0 && e.field ? e.field : "-", r.rc,
                r.rc < 0 && r.field ? r.field : "-");
        abort();
    }
    return 0;
}
