/* files.c - the host's mapped files (hl_config_map_file) as a read-only file system for
 * picolibc (fopen, fread, fgets, fseek, ...) and interpreters: open, read, pread, lseek,
 * close, fstat, stat, lstat, access. docs/guest.md ("Files") gives the rules and errnos.
 *
 * The labels are the paths. Both a path and a label are read in a normal form: split at
 * '/', empty and "." components dropped, ".." removing the component before it (at the top
 * it is dropped, as ".." of "/" is "/"). So "x", "./x", "/x" and "a/../x" name one file, and
 * the files form one tree whose root is also the working directory. A path that is a proper
 * prefix of some label, ending at a '/' of it, is a directory (stat says S_IFDIR; it cannot
 * be opened). Descriptors 0, 1, 2 stay stdin (always at its end), stdout and stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hyperlight_guest.h"

#define PATH_CAP 256 /* bytes of a normal form with its NUL: longer is ENAMETOOLONG */

struct ofile {
    const unsigned char *data;
    uint64_t size, pos;
    int file; /* index in the PEB's files */
    bool used;
};
static struct ofile fds[HL_GUEST_OPEN_MAX]; /* 0, 1, 2 unused: the standard streams */

/* Writes path's normal form (see the top of the file) to out[0, cap). Returns its length,
 * or -1 if it does not fit. */
static int normalize(const char *path, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = path;
    while (*p) {
        const char *c;
        size_t len;
        while (*p == '/') p++;
        for (c = p; *p && *p != '/'; p++) {
        }
        len = (size_t)(p - c);
        if (len == 0 || (len == 1 && c[0] == '.')) continue;
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            while (n > 0 && out[n - 1] != '/') n--;
            if (n > 0) n--;
            continue;
        }
        if (n + (n ? 1 : 0) + len >= cap) return -1;
        if (n) out[n++] = '/';
        memcpy(out + n, c, len);
        n += len;
    }
    out[n] = 0;
    return (int)n;
}

enum { FOUND_FILE = 0, FOUND_DIR = 1 };

/* Finds path among the mapped files: FOUND_FILE with *file set, FOUND_DIR, or -errno. */
static int resolve(const char *path, int *file)
{
    const struct hl_peb *peb = hl_guest_peb();
    char want[PATH_CAP], label[HL_FILE_LABEL_MAX + 1];
    int n;
    bool dir = false, trailing;
    if (!path) return -EFAULT;
    if (!path[0]) return -ENOENT; /* POSIX: the empty path names nothing */
    if ((n = normalize(path, want, sizeof want)) < 0) return -ENAMETOOLONG;
    if (n == 0) return FOUND_DIR; /* the root */
    trailing = path[strlen(path) - 1] == '/';
    for (uint64_t i = 0; i < peb->nfiles && i < HL_MAX_FILES; i++) {
        int ln;
        char lcopy[HL_FILE_LABEL_MAX + 1];
        memcpy(lcopy, peb->files[i].label, sizeof lcopy); /* terminated by the host; again, cheaply */
        lcopy[HL_FILE_LABEL_MAX] = 0;
        if ((ln = normalize(lcopy, label, sizeof label)) < 0) continue;
        if (ln == n && memcmp(label, want, (size_t)n) == 0) {
            *file = (int)i;
            return trailing ? -ENOTDIR : FOUND_FILE; /* "file/" names a directory */
        }
        if (ln > n && memcmp(label, want, (size_t)n) == 0 && label[n] == '/') dir = true;
    }
    return dir ? FOUND_DIR : -ENOENT;
}

static int fail(int e)
{
    errno = e;
    return -1;
}

/* The open file behind fd, or NULL (the standard streams are not in the table). */
static struct ofile *get(int fd) { return fd > 2 && fd < HL_GUEST_OPEN_MAX && fds[fd].used ? &fds[fd] : NULL; }

int open(const char *path, int flags, ...)
{
    const struct hl_peb *peb = hl_guest_peb();
    int file = -1, r = resolve(path, &file), acc = flags & O_ACCMODE;
    if (r == -ENOENT && (flags & O_CREAT)) return fail(EROFS); /* nothing can be created */
    if (r < 0) return fail(-r);
    if (r == FOUND_DIR) return fail(EISDIR); /* no directory descriptors */
    if ((flags & O_CREAT) && (flags & O_EXCL)) return fail(EEXIST);
    if (acc != O_RDONLY || (flags & O_TRUNC)) return fail(EROFS);
    if (flags & O_DIRECTORY) return fail(ENOTDIR);
    for (int fd = 3; fd < HL_GUEST_OPEN_MAX; fd++)
        if (!fds[fd].used) {
            fds[fd] = (struct ofile){ .data = (const unsigned char *)(uintptr_t)peb->files[file].gpa,
                                      .size = peb->files[file].size,
                                      .file = file,
                                      .used = true };
            return fd;
        }
    return fail(EMFILE);
}

/* Copies up to n bytes of f at off into buf. */
static ssize_t copy_out(const struct ofile *f, void *buf, size_t n, uint64_t off)
{
    uint64_t left = off < f->size ? f->size - off : 0;
    if (n > left) n = (size_t)left;
    if (n) memcpy(buf, f->data + off, n);
    return (ssize_t)n;
}

ssize_t read(int fd, void *buf, size_t n)
{
    struct ofile *f = get(fd);
    ssize_t got;
    if (fd == 0) return 0; /* stdin is always at its end */
    if (!f) return fail(EBADF);
    got = copy_out(f, buf, n, f->pos);
    f->pos += (uint64_t)got;
    return got;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    struct ofile *f = get(fd);
    if (fd >= 0 && fd <= 2) return fail(ESPIPE);
    if (!f) return fail(EBADF);
    if (off < 0) return fail(EINVAL);
    return copy_out(f, buf, n, (uint64_t)off);
}

off_t lseek(int fd, off_t off, int whence)
{
    struct ofile *f = get(fd);
    off_t base, to;
    if (fd >= 0 && fd <= 2) return fail(ESPIPE);
    if (!f) return fail(EBADF);
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (off_t)f->pos; break;
    case SEEK_END: base = (off_t)f->size; break;
    default: return fail(EINVAL);
    }
    if (__builtin_add_overflow(base, off, &to)) return fail(EOVERFLOW);
    if (to < 0) return fail(EINVAL);
    f->pos = (uint64_t)to; /* beyond the end is allowed: reads there return 0 */
    return to;
}

int close(int fd)
{
    struct ofile *f = get(fd);
    if (fd >= 0 && fd <= 2) return 0; /* the standard streams stay */
    if (!f) return fail(EBADF);
    f->used = false;
    return 0;
}

static void fill_stat(struct stat *st, mode_t mode, uint64_t size, uint64_t ino)
{
    memset(st, 0, sizeof *st);
    st->st_mode = mode;
    st->st_nlink = S_ISDIR(mode) ? 2 : 1;
    st->st_ino = (ino_t)ino;
    st->st_size = (off_t)size;
    st->st_blksize = HL_PAGE_SIZE;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

int fstat(int fd, struct stat *st)
{
    struct ofile *f = get(fd);
    if (!st) return fail(EFAULT);
    if (fd == 0) fill_stat(st, S_IFCHR | 0444, 0, 0);
    else if (fd == 1 || fd == 2) fill_stat(st, S_IFCHR | 0222, 0, 0);
    else if (f) fill_stat(st, S_IFREG | 0444, f->size, (uint64_t)f->file + 2);
    else return fail(EBADF);
    return 0;
}

int stat(const char *restrict path, struct stat *restrict st)
{
    const struct hl_peb *peb = hl_guest_peb();
    int file = -1, r = resolve(path, &file);
    if (r < 0) return fail(-r);
    if (!st) return fail(EFAULT);
    if (r == FOUND_DIR) fill_stat(st, S_IFDIR | 0555, 0, 1);
    else fill_stat(st, S_IFREG | 0444, peb->files[file].size, (uint64_t)file + 2);
    return 0;
}

/* There are no symbolic links. */
int lstat(const char *restrict path, struct stat *restrict st) { return stat(path, st); }

int access(const char *path, int mode)
{
    int file = -1, r = resolve(path, &file);
    if (r < 0) return fail(-r);
    if (mode & W_OK) return fail(EROFS);
    if ((mode & X_OK) && r == FOUND_FILE) return fail(EACCES);
    return 0;
}
