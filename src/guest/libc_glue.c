/* libc_glue.c - what picolibc needs from the platform: stdio streams, the heap break, and
 * write and _exit (the files are files.c, the clocks time.c, the other POSIX leaves posix.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "guest_internal.h"
#include "hyperlight_guest.h"

/* ---- stdio: picolibc's tinystdio calls put() once per character ---- */
static int put_out(char c, FILE *f)
{
    (void)f;
    hl_guest_print_char(1, c);
    return (unsigned char)c;
}
static int put_err(char c, FILE *f)
{
    (void)f;
    hl_guest_print_char(2, c);
    return (unsigned char)c;
}
static int get_eof(FILE *f)
{
    (void)f;
    return _FDEV_EOF;
}
static FILE f_out = FDEV_SETUP_STREAM(put_out, NULL, NULL, _FDEV_SETUP_WRITE);
static FILE f_err = FDEV_SETUP_STREAM(put_err, NULL, NULL, _FDEV_SETUP_WRITE);
static FILE f_in = FDEV_SETUP_STREAM(NULL, get_eof, NULL, _FDEV_SETUP_READ);
FILE *const stdout = &f_out;
FILE *const stderr = &f_err;
FILE *const stdin = &f_in;

/* ---- heap: malloc (malloc.c) grows through sbrk ---- */
static char *brk_cur, *brk_end, *brk_base;

void hl_guest_heap_init(void *base, size_t size)
{
    brk_base = brk_cur = base;
    brk_end = brk_cur + size;
}

void *sbrk(ptrdiff_t incr)
{
    char *old = brk_cur;
    if ((incr > 0 && incr > brk_end - brk_cur) || (incr < 0 && -incr > brk_cur - brk_base)) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk_cur += incr;
    return old;
}

/* ---- POSIX leaves ---- */
void _exit(int code) { hl_abort(code, "guest called exit(%d)", code); }

ssize_t write(int fd, const void *buf, size_t n)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    hl_guest_print(fd, buf, n);
    return (ssize_t)n;
}
