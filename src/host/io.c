/* io.c - whole-buffer reads and writes, retried across EINTR and short transfers. */
#define _GNU_SOURCE
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One transfer of up to n bytes at offset off (or at the file position if off < 0). */
typedef ssize_t (*xfer_fn)(int fd, void *buf, size_t n, off_t off);

static ssize_t do_read(int fd, void *buf, size_t n, off_t off)
{
    return off < 0 ? read(fd, buf, n) : pread(fd, buf, n, off);
}

static ssize_t do_write(int fd, void *buf, size_t n, off_t off)
{
    return off < 0 ? write(fd, buf, n) : pwrite(fd, buf, n, off);
}

static int full(xfer_fn xfer, int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = xfer(fd, (uint8_t *)buf + done, len - done, off < 0 ? off : off + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int hl_read_full(int fd, void *buf, size_t len) { return full(do_read, fd, buf, len, -1); }
int hl_write_full(int fd, const void *buf, size_t len) { return full(do_write, fd, (void *)buf, len, -1); }

int hl_pread_full(int fd, void *buf, size_t len, off_t off)
{
    if (off < 0) return errno = EINVAL, -1;
    return full(do_read, fd, buf, len, off);
}

int hl_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
    if (off < 0) return errno = EINVAL, -1;
    return full(do_write, fd, (void *)buf, len, off);
}

int hl_sync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd, rc, err;
    if (!copy) return -1;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    err = errno;
    free(copy);
    if (fd < 0) return errno = err, -1;
    rc = fsync(fd);
    err = errno;
    close(fd);
    errno = err;
    return rc;
}
