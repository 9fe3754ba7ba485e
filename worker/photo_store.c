/* photo_store.c: the content-addressed store of checked photos. A JPEG is kept as
 * store_dir/ab/<sha256>.jpg (ab: the digest's first two hex digits, so that no directory holds
 * more than 1/256 of the photos). It is written to a temporary file in the same directory,
 * fsynced, renamed over the final name and the directory fsynced: a crash leaves either no
 * file or the whole file, never a torn one. The same content twice is one file; two workers
 * storing it at once both rename identical bytes, which is harmless. */
#include "photo.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "antre/codec.h"
#include "antre/errbuf.h"
#include "antre/fileutil.h"

int photo_store_put(const char *dir, const void *buf, size_t len, char sha256[65], char *path,
                    size_t pathlen, char *err, size_t errlen)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md) {
        errbuf_set(err, errlen, "photo_store: sha256 failed");
        return -1;
    }
    codec_hex_encode(md, sizeof md, sha256, 65);
    int n = snprintf(path, pathlen, "%s/%.2s/%s.jpg", dir, sha256, sha256);
    if (n < 0 || (size_t)n >= pathlen) {
        errbuf_set(err, errlen, "photo_store: path too long under %s", dir);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == (off_t)len) return 0;
    if (fileutil_mkdir_parents(path, 0750, err, errlen) < 0) return -1;

    char tmp[4200];
    n = snprintf(tmp, sizeof tmp, "%s/%.2s/.%s.XXXXXX", dir, sha256, sha256);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errbuf_set(err, errlen, "photo_store: path too long under %s", dir);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        errbuf_set(err, errlen, "photo_store: mkstemp %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fchmod(fd, 0640) < 0 || fileutil_write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
        errbuf_set(err, errlen, "photo_store: write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        errbuf_set(err, errlen, "photo_store: rename to %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (fileutil_fsync_parent(path) < 0) {
        errbuf_set(err, errlen, "photo_store: fsync of the directory of %s: %s", path,
                   strerror(errno));
        return -1;
    }
    return 0;
}
