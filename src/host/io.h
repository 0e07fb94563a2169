/* io.h - whole reads and writes: retry on EINTR and short transfers, in one place. */
#ifndef HL_IO_H
#define HL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Each returns 0, or -1 with errno set (EIO for an end of file before len bytes). */
int hl_read_full(int fd, void *buf, size_t len);
int hl_write_full(int fd, const void *buf, size_t len);
int hl_pread_full(int fd, void *buf, size_t len, off_t off);
int hl_pwrite_full(int fd, const void *buf, size_t len, off_t off);
/* fsyncs the directory that holds (path), so that a rename into it is durable. */
void hl_sync_dir(const char *path);
/* Reads the regular file (path), of at most (max) bytes, into a new malloc'd buffer:
 * 0 with *data and *len set; -1 if it cannot be opened, -2 if it cannot be read, with
 * errno set (EFBIG: above max; EINVAL: not a regular file). */
int hl_read_file(const char *path, uint64_t max, uint8_t **data, size_t *len);

#endif
