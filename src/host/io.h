/* io.h - whole-buffer reads and writes on descriptors, and directory syncs (io.c). Each
 * returns 0, or -1 with errno set; EINTR and short transfers are retried, and an
 * end of file before len bytes (a file that shrank, a full device) is EIO. */
#ifndef HL_IO_H
#define HL_IO_H

#include <stddef.h>
#include <sys/types.h>

int hl_read_full(int fd, void *buf, size_t len);
int hl_write_full(int fd, const void *buf, size_t len);
int hl_pread_full(int fd, void *buf, size_t len, off_t off);
int hl_pwrite_full(int fd, const void *buf, size_t len, off_t off);
/* fsyncs the directory that holds path, so that creating or renaming path is durable. */
int hl_sync_dir(const char *path);

#endif
