/* files_guest.c - guest for test_files: the mapped files through open/read/lseek/fstat/close,
 * stat and access, and picolibc's fopen family; each function reports what it saw as text,
 * so the host test compares one exact string. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hyperlight_guest.h"

static char report[4096];
static size_t used;

/* Appends printf-style text and a space to the report. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (used < sizeof report) used += (size_t)vsnprintf(report + used, sizeof report - used, fmt, ap);
    va_end(ap);
    if (used < sizeof report - 1) report[used++] = ' ';
    if (used >= sizeof report) used = sizeof report - 1;
    report[used] = 0;
}

/* The report, without its last space, as the call's result. */
static int finish(hl_value *r)
{
    if (used && report[used - 1] == ' ') report[--used] = 0;
    *r = hl_str(report);
    used = 0;
    return 0;
}

/* "r" or "r/errno" for a call that returned r. */
static void res(const char *what, long long r)
{
    if (r < 0) say("%s=%lld/%d", what, r, errno);
    else say("%s=%lld", what, r);
    errno = 0;
}

/* Seq(path): one open file through read, lseek, pread, fstat and close (path holds "hello"). */
static int seq(const hl_value *a, int n, hl_value *r)
{
    char buf[16] = { 0 };
    struct stat st;
    int fd = open(hl_value_str(&a[0]), O_RDONLY);
    res("open", fd);
    res("read", read(fd, buf, 2));
    say("[%s]", buf);
    res("cur", lseek(fd, 0, SEEK_CUR));
    res("end-1", lseek(fd, -1, SEEK_END));
    memset(buf, 0, sizeof buf);
    res("read", read(fd, buf, 10));
    say("[%s]", buf);
    res("eof", read(fd, buf, 10));
    res("set100", lseek(fd, 100, SEEK_SET));
    res("past", read(fd, buf, 10));
    memset(buf, 0, sizeof buf);
    res("pread", pread(fd, buf, 3, 1));
    say("[%s]", buf);
    res("pread-neg", pread(fd, buf, 3, -1));
    res("cur-200", lseek(fd, -200, SEEK_CUR));
    res("whence7", lseek(fd, 0, 7));
    res("fstat", fstat(fd, &st));
    say("mode=%o size=%lld", (unsigned)st.st_mode, (long long)st.st_size);
    res("write", write(fd, "x", 1));
    res("close", close(fd));
    res("close", close(fd));
    res("read", read(fd, buf, 1));
    res("lseek", lseek(fd, 0, SEEK_SET));
    res("fstat", fstat(fd, &st));
    res("read0", read(0, buf, 1));
    res("read1", read(1, buf, 1));
    res("lseek0", lseek(0, 0, SEEK_SET));
    res("fstat1", fstat(1, &st));
    say("mode=%o", (unsigned)st.st_mode);
    res("read-1", read(-1, buf, 1));
    res("read99", read(99, buf, 1));
    return finish(r);
}

/* Open(path, flags): what open(path, flags) returns (the descriptor is closed again). flags
 * are letters, so that the host need not know picolibc's values: r O_RDONLY, w O_WRONLY,
 * b O_RDWR, c O_CREAT, x O_EXCL, t O_TRUNC, d O_DIRECTORY. */
static int do_open(const hl_value *a, int n, hl_value *r)
{
    int flags = 0, fd;
    for (const char *f = hl_value_str(&a[1]); *f; f++)
        flags |= *f == 'w'   ? O_WRONLY
                 : *f == 'b' ? O_RDWR
                 : *f == 'c' ? O_CREAT
                 : *f == 'x' ? O_EXCL
                 : *f == 't' ? O_TRUNC
                 : *f == 'd' ? O_DIRECTORY
                             : O_RDONLY;
    fd = open(hl_value_str(&a[0]), flags);
    res("open", fd);
    if (fd >= 0) close(fd);
    return finish(r);
}

/* Stat(path): stat and access of path. */
static int do_stat(const hl_value *a, int n, hl_value *r)
{
    struct stat st;
    const char *p = hl_value_str(&a[0]);
    int rc = stat(p, &st);
    res("stat", rc);
    if (rc == 0) say("mode=%o size=%lld", (unsigned)st.st_mode, (long long)st.st_size);
    res("F", access(p, F_OK));
    res("R", access(p, R_OK));
    res("W", access(p, W_OK));
    res("X", access(p, X_OK));
    return finish(r);
}

/* Sum(path) -> u64: FNV-1a of the whole file read with read() in odd-sized pieces. */
static int sum(const hl_value *a, int n, hl_value *r)
{
    unsigned char buf[1000];
    uint64_t h = 0xcbf29ce484222325ull;
    ssize_t got;
    int fd = open(hl_value_str(&a[0]), O_RDONLY);
    if (fd < 0) return hl_error(1, "open: errno %d", errno);
    while ((got = read(fd, buf, sizeof buf - 3)) > 0)
        for (ssize_t i = 0; i < got; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
    close(fd);
    if (got < 0) return hl_error(1, "read: errno %d", errno);
    *r = hl_u64(h);
    return 0;
}

/* Emfile(path): opens path until open fails, then closes every descriptor and opens once more. */
static int emfile(const hl_value *a, int n, hl_value *r)
{
    int fds[HL_GUEST_OPEN_MAX], k = 0, fd;
    while (k < HL_GUEST_OPEN_MAX && (fd = open(hl_value_str(&a[0]), O_RDONLY)) >= 0) fds[k++] = fd;
    say("opened=%d first=%d last=%d errno=%d", k, k ? fds[0] : -1, k ? fds[k - 1] : -1, errno);
    for (int i = 0; i < k; i++) close(fds[i]);
    fd = open(hl_value_str(&a[0]), O_RDONLY);
    res("again", fd);
    close(fd);
    return finish(r);
}

/* Stdio(path): fopen, fgets each line, ftell, fseek, fread, fclose; then the refusals. */
static int stdio_fns(const hl_value *a, int n, hl_value *r)
{
    char line[64], buf[8] = { 0 };
    const char *p = hl_value_str(&a[0]);
    FILE *f = fopen(p, "r");
    if (!f) return hl_error(1, "fopen: errno %d", errno);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        say("<%s>", line);
    }
    say("feof=%d", feof(f) != 0);
    say("ftell=%ld", ftell(f));
    say("fseek=%d", fseek(f, 4, SEEK_SET));
    say("fread=%zu", fread(buf, 1, 5, f)); /* one call per statement: argument order is unspecified */
    say("[%s] ftell=%ld", buf, ftell(f));
    say("fclose=%d", fclose(f));
    errno = 0;
    f = fopen(p, "w");
    say("w=%s/%d", f ? "FILE" : "NULL", errno);
    errno = 0;
    f = fopen(p, "r+");
    say("r+=%s/%d", f ? "FILE" : "NULL", errno);
    errno = 0;
    f = fopen("no/such/file", "r");
    say("missing=%s/%d", f ? "FILE" : "NULL", errno);
    return finish(r);
}

/* Raw(label): what hl_guest_file says of label. */
static int raw(const hl_value *a, int n, hl_value *r)
{
    size_t len = 99;
    const void *p = hl_guest_file(hl_value_str(&a[0]), &len);
    say("%s len=%zu", p ? "found" : "NULL", len);
    return finish(r);
}

/* Keep(path) opens path and keeps the descriptor; Take(n) reads n bytes from it. Open files
 * live in guest memory, so snapshots and restores keep them and their offsets. */
static int kept = -1;
static int keep(const hl_value *a, int n, hl_value *r)
{
    kept = open(hl_value_str(&a[0]), O_RDONLY);
    res("open", kept);
    return finish(r);
}
static int take(const hl_value *a, int n, hl_value *r)
{
    char buf[64] = { 0 };
    res("read", read(kept, buf, a[0].v.u32 < sizeof buf ? a[0].v.u32 : sizeof buf - 1));
    say("[%s]", buf);
    return finish(r);
}

void hl_guest_main(void)
{
    hl_guest_register("Raw", raw, HL_STRING, 1, HL_STRING);
    hl_guest_register("Keep", keep, HL_STRING, 1, HL_STRING);
    hl_guest_register("Take", take, HL_STRING, 1, HL_U32);
    hl_guest_register("Seq", seq, HL_STRING, 1, HL_STRING);
    hl_guest_register("Open", do_open, HL_STRING, 2, HL_STRING, HL_STRING);
    hl_guest_register("Stat", do_stat, HL_STRING, 1, HL_STRING);
    hl_guest_register("Sum", sum, HL_U64, 1, HL_STRING);
    hl_guest_register("Emfile", emfile, HL_STRING, 1, HL_STRING);
    hl_guest_register("Stdio", stdio_fns, HL_STRING, 1, HL_STRING);
}
