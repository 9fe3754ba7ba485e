/* keyfile.h: the file of signing keys and the pepper behind signed tokens (token.h).
 *
 * Keys live in a key file (`[gateway] secret_file`, default var/secret), never in the config text:
 *
 *     # comment (a `#` starts a comment anywhere on a line; blank lines are ignored)
 *     pepper   <64 hex digits>        optional; hashes applicant identifiers (token_hmac)
 *     k2       <64 hex digits>        the FIRST key line signs new tokens
 *     k1       <64 hex digits>        every key line verifies
 *
 * A key is 32 bytes written as 64 hex digits (either case; `openssl rand -hex 32` makes one). A
 * kid is 1-16 characters of A-Z a-z 0-9 `_` `-`; `pepper` is reserved. The file must be a regular
 * file that only its owner can read or write (mode 0600 or 0400): a file with any group/other bit
 * is refused with a `chmod 600` hint.
 *
 * Rotation without invalidating live tokens: put a new key line FIRST (it signs from the next
 * load on), keep the old lines until every token they signed has expired (the longest of the
 * rooms' session and ticket lifetimes), then delete them. A token whose kid is no longer in the
 * file fails with TOKEN_UNKNOWN_KEY. Every key line also gives a sealing key (seal.h) for the
 * personal fields of registration records: a line stays while records it sealed are kept.
 *
 * The pepper is separate from the signing keys on purpose: applicant identifiers are stored only
 * as token_hmac() digests, and those digests must not change when signing keys rotate. Never
 * change or remove the pepper during a registration wave: applicants already holding a place
 * could join a second time.
 *
 * When the file does not exist, keyfile_load() creates it (mode 0600; missing parent
 * directories are made with mode 0700) holding one pepper and one key, both from RAND_bytes, the
 * key named `k<UTC date YYYYMMDD>-<4 random hex digits>`, e.g. `k20261128-3fa9`. The file is
 * written and fsynced under a temporary name opened with O_CREAT|O_EXCL and mode 0600, then
 * published with link(2), which fails rather than replace an existing file; so processes starting
 * together never see a half-written file and all end up with the one key file that won.
 *
 * Key material is never logged, never put in an error message, and is wiped from the buffers that
 * held it (keyfile_clear() wipes the loaded keys). */
#ifndef ANTRE_KEYFILE_H
#define ANTRE_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define KEYFILE_KID_MAX 16   /* longest kid, in characters */
#define KEYFILE_KEY_BYTES 32 /* size of a signing key or the pepper */

/* One key line. */
struct keyfile_key {
    char kid[KEYFILE_KID_MAX + 1]; /* NUL-terminated */
    size_t kidlen;
    int line; /* line of the file, for messages */
    uint8_t key[KEYFILE_KEY_BYTES];
};

/* A loaded key file: every key line in file order (keys[0] signs), and the pepper. */
struct keyfile {
    struct keyfile_key *keys; /* N of them, at least 1 after a successful load */
    size_t n, cap;
    int has_pepper;                    /* 1 when the file has a pepper line */
    uint8_t pepper[KEYFILE_KEY_BYTES]; /* zero without one */
};

/* Load the key file PATH into OUT, creating the file first when it does not exist (see above).
 *
 * Blocks (file I/O, fsync): call at start-up or on reload, never from the event loop. Logs one
 * info line when it creates the file (path and kid, never key material); errors are not logged:
 * the caller logs ERR.
 *
 * ERR/ERRLEN receive a one-line reason on failure, as `path:line: reason` for a bad line, or
 * `path: reason` (e.g. a group/other-readable file, with the `chmod 600` command that fixes it;
 * a missing key line; a directory that cannot be created). Key values are never quoted.
 *
 * Returns 0 with OUT filled (wipe and free it with keyfile_clear()), or -1 with OUT cleared. */
int keyfile_load(const char *path, struct keyfile *out, char *err, size_t errlen);

/* Wipe and free what keyfile_load() put in KF, leaving it empty. KF may be NULL. */
void keyfile_clear(struct keyfile *kf);

/* 1 when LEN bytes of S are a valid kid (1-KEYFILE_KID_MAX of A-Z a-z 0-9 `_` `-`), else 0. */
int keyfile_kid_valid(const char *s, size_t len);

#endif
