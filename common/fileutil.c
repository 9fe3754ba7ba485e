/* fileutil.c: mkdir -p, write_all and a directory fsync (see fileutil.h).
 *
 * mkdir -p walks the path one component at a time instead of trying the whole path first: the
 * common case (everything exists) then costs one EEXIST per component, which is cheap at
 * start-up, and the code has one path for both cases. */
#include "antre/fileutil.h"

#include "antre/errbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir BUF with MODE unless it is already a directory. */
static int make_one(const char *buf, mode_t mode, char *err, size_t errlen)
{
    if (mkdir(buf, mode) == 0) {
        if (chmod(buf, mode) == 0) return 0; /* exact MODE, whatever the umask */
    } else if (errno == EEXIST) {
        struct stat st;
        if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        errno = ENOTDIR;
    }
    int e = errno;
    errbuf_set(err, errlen, "cannot create directory %s: %s", buf, strerror(e));
    errno = e;
    return -1;
}

int fileutil_mkdir_p(const char *dir, mode_t mode, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t n = dir ? strlen(dir) : 0;
    if (n == 0 || n >= sizeof buf) {
        errbuf_set(err, errlen, "cannot create directory: %s", n ? "path too long" : "empty path");
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, dir, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0'; /* "a/b/" is "a/b" */
    for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
        if (p[-1] == '/') continue; /* "a//b" */
        *p = '\0';
        int rc = make_one(buf, mode, err, errlen);
        *p = '/';
        if (rc < 0) return -1;
    }
    return make_one(buf, mode, err, errlen);
}

int fileutil_mkdir_parents(const char *path, mode_t mode, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    if (!path || strlen(path) >= sizeof dir) {
        errbuf_set(err, errlen, "cannot create directory: path too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0; /* in the working directory, or in "/" */
    *slash = '\0';
    return fileutil_mkdir_p(dir, mode, err, errlen);
}

int fileutil_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int fileutil_fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    if (!path || strlen(path) >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}
