/* fileutil.h: the small file-system helpers that several modules need (key file, embedded Redis
 * data directory, upload spool): mkdir -p, a write(2) loop, and the fsync of a directory entry.
 *
 * All of them block: call them at start-up, on a worker thread, or where the caller has decided
 * a short disk wait on the event loop is acceptable (see STYLE: only a finished upload's fsync). */
#ifndef ANTRE_FILEUTIL_H
#define ANTRE_FILEUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Create DIR and every missing parent, each with exactly MODE (set with chmod after mkdir, so
 * the umask does not matter); directories that already exist are left as they are. DIR may be
 * relative. Returns 0 when DIR is a directory afterwards, or -1 with errno set and a one-line
 * reason naming the directory that failed in ERR (ERRLEN bytes; ERR may be NULL). A path that
 * exists but is not a directory fails with ENOTDIR. */
int fileutil_mkdir_p(const char *dir, mode_t mode, char *err, size_t errlen);

/* Like fileutil_mkdir_p() for the directory that holds the file PATH (nothing to do when PATH
 * has no '/'). */
int fileutil_mkdir_parents(const char *path, mode_t mode, char *err, size_t errlen);

/* Write all LEN bytes of BUF to FD, retrying after EINTR and short writes. Returns 0, or -1 with
 * errno set (EIO when write(2) returned 0). Some bytes may have been written on failure. */
int fileutil_write_all(int fd, const void *buf, size_t len);

/* Fsync the directory that holds PATH ("." when PATH has no '/'), so that a file just created,
 * linked or renamed there survives a crash. Returns 0, or -1 with errno set. */
int fileutil_fsync_parent(const char *path);

#endif
