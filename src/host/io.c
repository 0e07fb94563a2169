/* io.c - whole reads and writes, retried on EINTR and short transfers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"

/* One loop for all four: off < 0 means the file position. */
static int transfer(int fd, void *buf, size_t len, off_t off, bool write_)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = write_ ? (off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off))
                           : (off < 0 ? read(fd, p, len) : pread(fd, p, len, off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) {
            errno = write_ ? ENOSPC : EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        if (off >= 0) off += n;
    }
    return 0;
}

int hl_read_full(int fd, void *buf, size_t len) { return transfer(fd, buf, len, -1, false); }
int hl_write_full(int fd, const void *buf, size_t len) { return transfer(fd, (void *)buf, len, -1, true); }
int hl_pread_full(int fd, void *buf, size_t len, off_t off) { return transfer(fd, buf, len, off, false); }
int hl_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
    return transfer(fd, (void *)buf, len, off, true);
}

void hl_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    int fd;
    snprintf(dir, sizeof dir, "%s", path);
    fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    fsync(fd);
    close(fd);
}

int hl_read_file(const char *path, uint64_t max, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;
    if (fd < 0) return -1;
    if (fstat(fd, &st) < 0) goto fail;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
        goto fail;
    }
    if (!(buf = malloc(st.st_size ? (size_t)st.st_size : 1))) goto fail;
    if (hl_read_full(fd, buf, (size_t)st.st_size) < 0) {
        free(buf);
        goto fail;
    }
    close(fd);
    *data = buf;
    *len = (size_t)st.st_size;
    return 0;
fail:
    e = errno;
    close(fd);
    errno = e;
    return -2;
}
