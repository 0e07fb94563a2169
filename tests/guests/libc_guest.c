/* libc_guest.c - the guest of tests/integration/test_libc.c: picolibc as a guest sees it
 * (printf of doubles, strtod/strtof/strtold, <limits.h>, the build macros of hyperlight-cc)
 * and the POSIX leaves of src/guest/posix.c, each called and its result and errno returned. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hyperlight_guest.h"

static char out[1200];

/* Format(fmt, x): snprintf(fmt, x) for a format with one double conversion. */
static int format(const hl_value *args, int argc, hl_value *ret)
{
    snprintf(out, sizeof out, hl_value_str(&args[0]), args[1].v.f64);
    *ret = hl_str(out);
    return 0;
}

/* Repeat(fmt, x, n): formats x n times; the total length (for timing printf). */
static int repeat(const hl_value *args, int argc, hl_value *ret)
{
    int64_t total = 0;
    for (int32_t i = 0; i < args[2].v.i32; i++)
        total += snprintf(out, sizeof out, hl_value_str(&args[0]), args[1].v.f64);
    *ret = hl_i64(total);
    return 0;
}

/* Strtod(kind, s): "BITS END" for strtod ("d"), strtof ("f") or strtold ("l", as a double:
 * long double is the x87 format, its value here always fits a double), BITS the result's
 * bits in hex and END the offset of the end pointer. */
static int parse(const hl_value *args, int argc, hl_value *ret)
{
    const char *kind = hl_value_str(&args[0]), *s = hl_value_str(&args[1]);
    char *end = NULL;
    double d;
    if (kind[0] == 'f') {
        float f = strtof(s, &end);
        unsigned int u;
        memcpy(&u, &f, sizeof u);
        snprintf(out, sizeof out, "%08x %d", u, (int)(end - s));
    } else {
        d = kind[0] == 'l' ? (double)strtold(s, &end) : strtod(s, &end);
        unsigned long long u;
        memcpy(&u, &d, sizeof u);
        snprintf(out, sizeof out, "%016llx %d", u, (int)(end - s));
    }
    *ret = hl_str(out);
    return 0;
}

/* Sscanf(s): "VALUE COUNT" for sscanf(s, "%lf%n"): the value as %a, the characters read,
 * or "none" when no number was converted. */
static int scan(const hl_value *args, int argc, hl_value *ret)
{
    double d = 0;
    int n = -1;
    if (sscanf(hl_value_str(&args[0]), "%lf%n", &d, &n) != 1) snprintf(out, sizeof out, "none");
    else snprintf(out, sizeof out, "%a %d", d, n);
    *ret = hl_str(out);
    return 0;
}

/* Limits(): SSIZE_MAX */
static int limits(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_i64(SSIZE_MAX);
    return 0;
}

/* Macros(): which of the compiler's system macros the guest was compiled with. */
static int macros(const hl_value *args, int argc, hl_value *ret)
{
    out[0] = 0;
#ifdef __hyperlight__
    strcat(out, " __hyperlight__");
#endif
#ifdef __linux__
    strcat(out, " __linux__");
#endif
#ifdef __linux
    strcat(out, " __linux");
#endif
#ifdef linux
    strcat(out, " linux");
#endif
#ifdef __gnu_linux__
    strcat(out, " __gnu_linux__");
#endif
    *ret = hl_str(out[0] ? out + 1 : out);
    return 0;
}

static const char *errno_name(int e)
{
    static char num[16];
    switch (e) {
    case 0: return "0";
    case ENOSYS: return "ENOSYS";
    case ENOTTY: return "ENOTTY";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    }
    snprintf(num, sizeof num, "%d", e);
    return num;
}

/* Leaf(name): calls the POSIX function name with harmless arguments and returns
 * "RESULT ERRNO" (a pointer result as 0 for NULL and 1 otherwise, errno by name, 0 when the
 * call left it unchanged); "unknown" for a name it does not know. */
static int leaf(const hl_value *args, int argc, hl_value *ret)
{
    const char *n = hl_value_str(&args[0]);
    char buf[64];
    int fds[2];
    long r;
    errno = 0;
#define IS(s) (strcmp(n, s) == 0)
    if (IS("rename")) r = rename("a", "b");
    else if (IS("link")) r = link("a", "b");
    else if (IS("symlink")) r = symlink("a", "b");
    else if (IS("readlink")) r = readlink("a", buf, sizeof buf);
    else if (IS("mkdir")) r = mkdir("d", 0755);
    else if (IS("rmdir")) r = rmdir("d");
    else if (IS("chdir")) r = chdir("/");
    else if (IS("getcwd")) r = getcwd(buf, sizeof buf) != NULL;
    else if (IS("realpath")) r = realpath(".", NULL) != NULL;
    else if (IS("chmod")) r = chmod("a", 0644);
    else if (IS("utimes")) r = utimes("a", NULL);
    else if (IS("unlink")) r = unlink("a");
    else if (IS("chown")) r = chown("a", 0, 0);
    else if (IS("lchown")) r = lchown("a", 0, 0);
    else if (IS("truncate")) r = truncate("a", 0);
    else if (IS("mkfifo")) r = mkfifo("a", 0644);
    else if (IS("mknod")) r = mknod("a", 0644, 0);
    else if (IS("mkdtemp")) r = mkdtemp((char[]){ "dXXXXXX" }) != NULL;
    else if (IS("umask")) {
        mode_t before = umask(077); /* the two calls in this order */
        r = before * 1000L + umask(022);
    } else if (IS("ttyname")) r = ttyname(1) != NULL;
    else if (IS("vfork")) r = vfork();
    else if (IS("execl")) r = execl("/bin/sh", "sh", (char *)NULL);
    else if (IS("execle")) r = execle("/bin/sh", "sh", (char *)NULL, (char *const[]){ NULL });
    else if (IS("execlp")) r = execlp("sh", "sh", (char *)NULL);
    else if (IS("ids")) r = getuid() + geteuid() + getgid() + getegid();
    else if (IS("remove")) r = remove("a");
    else if (IS("isatty0")) r = isatty(0);
    else if (IS("isatty1")) r = isatty(1);
    else if (IS("dup")) r = dup(1);
    else if (IS("dup2")) r = dup2(1, 5);
    else if (IS("pipe")) r = pipe(fds);
    else if (IS("select")) r = select(0, NULL, NULL, NULL, NULL);
    else if (IS("getpid")) r = getpid();
    else if (IS("getppid")) r = getppid();
    else if (IS("fork")) r = fork();
    else if (IS("execve")) r = execve("/bin/sh", (char *const[]){ "sh", NULL }, (char *const[]){ NULL });
    else if (IS("execv")) r = execv("/bin/sh", (char *const[]){ "sh", NULL });
    else if (IS("execvp")) r = execvp("sh", (char *const[]){ "sh", NULL });
    else if (IS("wait")) r = wait(NULL);
    else if (IS("waitpid")) r = waitpid(-1, NULL, 0);
    else if (IS("kill")) r = kill(1, SIGTERM);
    else if (IS("sigaction")) r = sigaction(SIGINT, NULL, NULL);
    else if (IS("sigprocmask")) r = sigprocmask(SIG_SETMASK, NULL, NULL);
    else if (IS("system")) r = system("ls");
    else if (IS("systemnull")) r = system(NULL);
    else if (IS("pagesize")) r = sysconf(_SC_PAGESIZE);
    else if (IS("nprocs")) r = sysconf(_SC_NPROCESSORS_ONLN);
    else if (IS("sysconf")) r = sysconf(_SC_ARG_MAX);
    else {
        *ret = hl_str("unknown");
        return 0;
    }
#undef IS
    snprintf(out, sizeof out, "%ld %s", r, errno_name(errno));
    *ret = hl_str(out);
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("Format", format, HL_STRING, 2, HL_STRING, HL_F64);
    hl_guest_register("Repeat", repeat, HL_I64, 3, HL_STRING, HL_F64, HL_I32);
    hl_guest_register("Strtod", parse, HL_STRING, 2, HL_STRING, HL_STRING);
    hl_guest_register("Sscanf", scan, HL_STRING, 1, HL_STRING);
    hl_guest_register("Limits", limits, HL_I64, 0);
    hl_guest_register("Macros", macros, HL_STRING, 0);
    hl_guest_register("Leaf", leaf, HL_STRING, 1, HL_STRING);
}
