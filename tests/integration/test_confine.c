/* test_confine.c - seccomp confinement (hl_config_set_confinement, docs/confinement.md) on
 * real KVM: calls of every kind on a confined sandbox, a host function stopped for a system
 * call it did not declare and the same one working once declared, a refused call outside
 * host functions, interrupts and time limits, the calling thread left unconfined, many
 * confined sandboxes whose workers are joined at free, and the cost of confinement on an
 * empty call. Guests: tests/guests/calls_guest.c and cancel_guest.c. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "interrupt.h"

#define CALL_OK(sb, name, rt, args, n, out)                                                                             \
    do {                                                                                                                \
        hl_status st_;                                                                                                  \
        memset((out), 0, sizeof *(out));                                                                                \
        st_ = hl_call((sb), (name), (rt), (args), (n), (out));                                                          \
        if (st_ != HL_OK)                                                                                               \
            fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, (name), hl_status_name(st_), hl_last_error(sb)); \
        CHECK_INT(st_, HL_OK);                                                                                          \
        CHECK_INT((out)->type, (rt));                                                                                   \
    } while (0)


static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* ---- /proc ---- */
static int count_dir(const char *path)
{
    int n = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The Seccomp: field of a thread's status (0 none, 2 filter), -1 if unreadable. */
static int seccomp_mode(pid_t tid)
{
    char path[64], line[256];
    int mode = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    if (!(f = fopen(path, "r"))) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1) break;
    fclose(f);
    return mode;
}

/* The library's worker threads (named "hl-confine"): with named, all of them; without, those
 * with a seccomp filter loaded. (Tasks KVM starts from a worker inherit its filter; they are
 * not counted.) */
static int confined_threads(bool named)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) {
        char path[300], comm[32] = "";
        FILE *f;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        if ((f = fopen(path, "r"))) {
            n += fgets(comm, sizeof comm, f) && strcmp(comm, "hl-confine\n") == 0 &&
                 (named || seccomp_mode(atoi(e->d_name)) == 2);
            fclose(f);
        }
    }
    closedir(d);
    return n;
}

/* ---- host functions ---- */
static pid_t host_tid; /* thread the last host function ran on */
static int host_calls;

static int h_i32(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_tid = gettid();
    host_calls++;
    *r = hl_i32(~a[0].v.i32);
    return 0;
}
static int h_string(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = a[0].v.buf.len + 7;
    char *s = hl_host_call_alloc(c, len);
    host_calls++;
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    snprintf(s, len, "host<%s>", hl_value_str(&a[0]));
    *r = hl_str(s);
    return 0;
}
static int h_void(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    return 0;
}
/* n bytes (i*31+7)&0xff: a large allocation (malloc maps it) on the worker */
static int h_big(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    uint32_t len = a[0].v.u32;
    unsigned char *s = hl_host_call_alloc(c, len);
    host_calls++;
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    for (uint32_t i = 0; i < len; i++) s[i] = (unsigned char)(i * 31 + 7);
    *r = hl_bytes(s, len);
    return 0;
}

/* HostI32 of the violation tests: opens /etc/passwd and reads 4 bytes; returns what read
 * returned (or -errno of open). Records what open returned and whether the call was then
 * already cancelled. */
static int open_ret, open_errno, open_saw_cancel;
static char open_data[8];
static int h_open(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    int got = 0;
    host_tid = gettid();
    errno = 0;
    open_ret = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    open_errno = errno;
    open_saw_cancel = hl_host_call_cancelled(c);
    memset(open_data, 0, sizeof open_data);
    if (open_ret >= 0) {
        got = (int)read(open_ret, open_data, 4);
        close(open_ret);
    }
    *r = hl_i32(open_ret >= 0 ? got : -open_errno);
    return 0;
}

/* HostI32 that makes an i386 system call (int 0x80, getpid = 20): another architecture */
static long int80_ret;
static int h_int80(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "rcx", "r11");
    int80_ret = ret;
    *r = hl_i32(0);
    return 0;
}

/* Whether this kernel runs int 0x80 in a 64-bit process (IA32 emulation), tried in a child. */
static bool have_int80(void)
{
    int status;
    pid_t pid = fork();
    if (pid == 0) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "rcx", "r11");
        _exit(ret == getpid() ? 0 : 1);
    }
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* print callback: collects stream 1 and 2 */
static char printed[1 << 20];
static size_t nprinted;
static void collect(void *user, int stream, const char *data, size_t len)
{
    if (nprinted + len + 4 > sizeof printed) return;
    if (stream == 2) printed[nprinted++] = '[';
    memcpy(printed + nprinted, data, len);
    nprinted += len;
    if (stream == 2) printed[nprinted++] = ']';
    printed[nprinted] = 0;
}
/* a print callback that makes a system call (getppid) */
static void print_getppid(void *user, int stream, const char *data, size_t len)
{
    *(long *)user = syscall(SYS_getppid);
}

static void reg(hl_config *cfg, const char *name, hl_type ret, hl_host_fn fn, int n, hl_type p0)
{
    if (hl_config_register_host_fn(cfg, name, ret, &p0, n, fn, NULL) != HL_OK) {
        fprintf(stderr, "register %s: %s\n", name, hl_config_error(cfg));
        exit(1);
    }
}

static hl_config *calls_config(bool confine)
{
    hl_config *cfg = hl_config_new();
    reg(cfg, "HostI32", HL_I32, h_i32, 1, HL_I32);
    reg(cfg, "HostString", HL_STRING, h_string, 1, HL_STRING);
    reg(cfg, "HostVoid", HL_VOID, h_void, 0, HL_VOID);
    reg(cfg, "HostMark", HL_VOID, h_void, 0, HL_VOID);
    reg(cfg, "HostBig", HL_BYTES, h_big, 1, HL_U32);
    hl_config_set_print(cfg, collect, NULL);
    CHECK_INT(hl_config_set_confinement(cfg, confine), HL_OK);
    return cfg;
}

/* ---- calls of every kind ---- */
static void test_calls(void)
{
    hl_config *cfg = calls_config(true);
    hl_sandbox *sb = must_sandbox("calls_guest", cfg);
    hl_snapshot *snap = NULL;
    hl_value r, a[2];
    char want[64];
    uint64_t h;

    a[0] = hl_i32(40), a[1] = hl_i32(2);
    CALL_OK(sb, "Add", HL_I32, a, 2, &r);
    CHECK_INT(r.v.i32, 42);
    a[0] = hl_str("hello");
    CALL_OK(sb, "EchoString", HL_STRING, a, 1, &r);
    CHECK_STR((const char *)r.v.buf.ptr, "hello");
    host_tid = 0;
    a[0] = hl_i32(5);
    CALL_OK(sb, "HostEchoI32", HL_I32, a, 1, &r);
    CHECK_INT(r.v.i32, ~5);
    /* the host function ran on another thread, which is confined; this one is not */
    CHECK(host_tid != 0 && host_tid != gettid());
    CHECK_INT(seccomp_mode(host_tid), 2);
    CHECK_INT(seccomp_mode(gettid()), 0);
    a[0] = hl_str("x");
    CALL_OK(sb, "HostEchoString", HL_STRING, a, 1, &r);
    CHECK_STR((const char *)r.v.buf.ptr, "host<x>");
    CALL_OK(sb, "HostEchoVoid", HL_I32, NULL, 0, &r);
    CHECK_INT(r.v.i32, 2);
    /* large values: malloc maps memory on the worker, for the host's result and ours */
    a[0] = hl_u32(200000);
    CALL_OK(sb, "HostBigSum", HL_STRING, a, 1, &r);
    {
        unsigned char *big = malloc(200000);
        for (uint32_t i = 0; i < 200000; i++) big[i] = (unsigned char)(i * 31 + 7);
        snprintf(want, sizeof want, "len=200000 fnv=%016llx", (unsigned long long)fnv(FNV_INIT, big, 200000));
        free(big);
    }
    CHECK_STR((const char *)r.v.buf.ptr, want);
    a[0] = hl_u32(200000);
    CALL_OK(sb, "RetString", HL_STRING, a, 1, &r);
    CHECK_INT(r.v.buf.len, 200000);
    CHECK(r.v.buf.len == 200000 && ((const char *)r.v.buf.ptr)[199999] == (char)('a' + 199999 % 26));
    /* prints through the callback, around a host call */
    nprinted = 0;
    CALL_OK(sb, "PrintAroundHost", HL_VOID, NULL, 0, &r);
    CHECK_STR(printed, "before;[err before;]after;");
    nprinted = 0;
    a[0] = hl_u32(100);
    CALL_OK(sb, "PrintMany", HL_U64, a, 1, &r);
    h = fnv(FNV_INIT, printed, nprinted);
    CHECK_INT(nprinted, 6400);
    CHECK(r.v.u64 == h);
    /* snapshots and restores work as usual (they run on the calling thread) */
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    CALL_OK(sb, "Counter", HL_U64, NULL, 0, &r);
    CALL_OK(sb, "Counter", HL_U64, NULL, 0, &r);
    CHECK_INT(r.v.u64, 2);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CALL_OK(sb, "Counter", HL_U64, NULL, 0, &r);
    CHECK_INT(r.v.u64, 1);
    /* errors of the guest's own come back as usual */
    a[0] = hl_i32(7), a[1] = hl_str("nope");
    CHECK_INT(hl_call(sb, "Fail", HL_I32, a, 2, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), 7);
    CHECK_STR(hl_last_error(sb), "guest function 'Fail' failed with code 7: nope");
    CHECK_INT(hl_call(sb, "NoSuch", HL_VOID, NULL, 0, &r), HL_ERR_NOT_FOUND);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    /* a sandbox made from a snapshot with a confining configuration is confined too */
    {
        hl_sandbox *sb2 = NULL;
        CHECK_INT(hl_sandbox_new_from_snapshot(&sb2, snap, cfg), HL_OK);
        if (sb2) {
            host_tid = 0;
            a[0] = hl_i32(9);
            CALL_OK(sb2, "HostEchoI32", HL_I32, a, 1, &r);
            CHECK_INT(r.v.i32, ~9);
            CHECK_INT(seccomp_mode(host_tid), 2);
            CHECK(host_tid != 0 && host_tid != gettid());
            hl_sandbox_free(sb2);
        }
    }
    /* and so are a pool's */
    {
        hl_pool *pool = NULL;
        hl_sandbox *sb3 = NULL;
        CHECK_INT(hl_pool_new(&pool, snap, cfg, 2, false), HL_OK);
        if (pool && hl_pool_get(pool, &sb3) == HL_OK) {
            host_tid = 0;
            a[0] = hl_i32(11);
            CALL_OK(sb3, "HostEchoI32", HL_I32, a, 1, &r);
            CHECK_INT(r.v.i32, ~11);
            CHECK_INT(seccomp_mode(host_tid), 2);
            CHECK_INT(hl_pool_put(pool, sb3), HL_OK);
        } else {
            CHECK(0);
        }
        hl_pool_free(pool);
    }
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* The default print function writes to fd 1 from the worker (and flushes stdout first, so
 * what the embedder printed before comes first). */
static void test_default_print(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_value r, a = hl_u32(5);
    char path[] = "/tmp/hl-confine-XXXXXX", buf[1024];
    int fd = mkstemp(path), saved;
    ssize_t n;
    hl_status st;
    CHECK_INT(hl_config_set_confinement(cfg, true), HL_OK);
    sb = must_sandbox("calls_guest", cfg); /* its initialisation logs; no log function: dropped */
    CHECK(fd >= 0);
    fflush(stdout);
    saved = dup(1);
    dup2(fd, 1);
    printf("pre;");
    st = hl_call(sb, "PrintMany", HL_U64, &a, 1, &r);
    printf(";post");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_INT(st, HL_OK);
    n = pread(fd, buf, sizeof buf - 1, 0);
    CHECK_INT(n, 4 + 5 * 64 + 5);
    if (n == 4 + 5 * 64 + 5) {
        buf[n] = 0;
        CHECK(memcmp(buf, "pre;", 4) == 0 && memcmp(buf + 4 + 320, ";post", 5) == 0);
        CHECK(fnv(FNV_INIT, buf + 4, 320) == r.v.u64);
    }
    close(fd);
    unlink(path);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* ---- violations ---- */
static void test_violation(void)
{
    hl_config *cfg = calls_config(true);
    hl_sandbox *sb;
    hl_snapshot *snap = NULL;
    hl_value r, a = hl_i32(1);
    int fds;
    const int decl[] = { SYS_openat, SYS_read, SYS_close };
    const int bad[] = { SYS_openat, -1 };
    const int huge[] = { 4096 };

    reg(cfg, "HostI32", HL_I32, h_open, 1, HL_I32);
    sb = must_sandbox("calls_guest", cfg);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
    fds = count_dir("/proc/self/fd");
    open_ret = 12345;
    open_saw_cancel = 0;
    CHECK_INT(hl_call(sb, "HostEchoI32", HL_I32, &a, 1, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'HostEchoI32' stopped: host function 'HostI32' made a "
                                 "system call that is not allowed: openat (257)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_INT(open_ret, -1);                    /* inside the host function, open failed ... */
    CHECK_INT(open_errno, EPERM);               /* ... with EPERM */
    CHECK_INT(open_saw_cancel, 1);              /* and the call was already marked cancelled */
    CHECK_INT(count_dir("/proc/self/fd"), fds); /* nothing was opened */
    CHECK_INT(hl_call(sb, "Add", HL_I32, (hl_value[]){ hl_i32(1), hl_i32(2) }, 2, &r), HL_ERR_STATE);
    CHECK_HAS(hl_last_error(sb), "host function 'HostI32' made a system call that is not allowed: openat (257)");
    /* restore makes it Ready; the filter stays */
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CALL_OK(sb, "Add", HL_I32, ((hl_value[]){ hl_i32(1), hl_i32(2) }), 2, &r);
    CHECK_INT(r.v.i32, 3);
    CHECK_INT(hl_call(sb, "HostEchoI32", HL_I32, &a, 1, &r), HL_ERR_CANCELLED);
    CHECK_HAS(hl_last_error(sb), "openat (257)");
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);

    /* declaring the system calls */
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "NoSuchFn", decl, 3), HL_ERR_NOT_FOUND);
    CHECK_STR(hl_config_error(cfg), "host function 'NoSuchFn' is not registered");
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "HostI32", decl, 3), HL_OK);
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "HostI32", bad, 2), HL_ERR_INVALID_ARG); /* changes nothing */
    CHECK_STR(hl_config_error(cfg), "host function 'HostI32': -1 is not an x86-64 system call number");
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "HostI32", huge, 1), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "HostI32", NULL, 1), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_host_fn_syscalls(NULL, "HostI32", decl, 1), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_allow_syscalls(cfg, huge, 1), HL_ERR_INVALID_ARG);
    sb = must_sandbox("calls_guest", cfg);
    fds = count_dir("/proc/self/fd");
    CALL_OK(sb, "HostEchoI32", HL_I32, &a, 1, &r);
    CHECK_INT(r.v.i32, 4);
    CHECK(open_ret >= 0);
    CHECK_STR(open_data, "root");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_INT(count_dir("/proc/self/fd"), fds); /* closed again */
    hl_sandbox_free(sb);

    /* a declaration is per function and replaced by the next one: openat alone, no read */
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "HostI32", decl, 1), HL_OK);
    sb = must_sandbox("calls_guest", cfg);
    fds = count_dir("/proc/self/fd");
    CHECK_INT(hl_call(sb, "HostEchoI32", HL_I32, &a, 1, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'HostEchoI32' stopped: host function 'HostI32' made a "
                                 "system call that is not allowed: read (0)");
    CHECK(open_ret >= 0);
    /* its close was refused too: the descriptor is still open */
    CHECK_INT(count_dir("/proc/self/fd"), fds + 1);
    if (open_ret >= 0) close(open_ret);
    hl_sandbox_free(sb);

    /* another architecture's system call: refused too, and named as such */
    if (have_int80()) {
        reg(cfg, "HostI32", HL_I32, h_int80, 1, HL_I32);
        sb = must_sandbox("calls_guest", cfg);
        int80_ret = 0;
        CHECK_INT(hl_call(sb, "HostEchoI32", HL_I32, &a, 1, &r), HL_ERR_CANCELLED);
        CHECK_STR(hl_last_error(sb), "call to guest function 'HostEchoI32' stopped: host function 'HostI32' made "
                                     "a system call that is not allowed: getpid (20, i386)");
        CHECK_INT(int80_ret, -EPERM);
        hl_sandbox_free(sb);
    } else {
        printf("     (int 0x80 not supported by this kernel: i386 system call test skipped)\n");
    }
    hl_config_free(cfg);
}

/* A refused call outside host functions: in the print function. */
static void test_violation_outside(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_value r, a = hl_u32(3);
    long pid = 0;
    const int getppid_nr[] = { SYS_getppid };
    hl_config_set_print(cfg, print_getppid, &pid);
    CHECK_INT(hl_config_set_confinement(cfg, true), HL_OK);
    sb = must_sandbox("calls_guest", cfg);
    CHECK_INT(hl_call(sb, "PrintMany", HL_U64, &a, 1, &r), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'PrintMany' stopped: a system call that is not allowed "
                                 "was made outside host functions (by the print or log function, or by the "
                                 "library): getppid (110)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_INT(pid, -1);
    hl_sandbox_free(sb);
    CHECK_INT(hl_config_allow_syscalls(cfg, getppid_nr, 1), HL_OK);
    sb = must_sandbox("calls_guest", cfg);
    CALL_OK(sb, "PrintMany", HL_U64, &a, 1, &r);
    CHECK_INT(pid, getppid());
    hl_sandbox_free(sb);
    /* declaring calls the base list allows only with conditions (ioctl, mmap, write, ...)
     * allows them whole; the filter still builds */
    {
        const int more[] = { SYS_ioctl, SYS_mmap, SYS_mprotect, SYS_madvise, SYS_write, SYS_tgkill, SYS_futex };
        CHECK_INT(hl_config_allow_syscalls(cfg, more, 7), HL_OK);
        sb = must_sandbox("calls_guest", cfg);
        CALL_OK(sb, "PrintMany", HL_U64, &a, 1, &r);
        CHECK_INT(pid, getppid());
        hl_sandbox_free(sb);
    }
    hl_config_free(cfg);
}

/* ---- interrupts and time limits ---- */

static void test_cancel(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_snapshot *snap = NULL;
    hl_value r;
    double lat, t0, el;
    const int sleep_nrs[] = { SYS_clock_nanosleep, SYS_nanosleep };
    CHECK_INT(hl_config_register_host_fn(cfg, "Noop", HL_I32, NULL, 0, host_noop, NULL), HL_OK);
    CHECK_INT(hl_config_register_host_fn(cfg, "Slow", HL_I32, NULL, 0, host_slow, NULL), HL_OK);
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "Slow", sleep_nrs, 2), HL_OK);
    CHECK_INT(hl_config_set_confinement(cfg, true), HL_OK);
    sb = must_sandbox("cancel_guest", cfg);
    CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);

    /* a guest that spins without exits */
    CHECK_INT(call_interrupted(sb, "Spin", HL_VOID, 50, &lat), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'Spin' was interrupted (hl_sandbox_interrupt)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK(lat < 1000);
    printf("     interrupt of a spinning confined guest: returned %.2f ms after the interrupt\n", lat);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);

    /* a host function in progress (it sleeps: declared) */
    slow_saw_cancel = 0;
    CHECK_INT(call_interrupted(sb, "CallSlow", HL_I32, 50, &lat), HL_ERR_CANCELLED);
    CHECK_STR(hl_last_error(sb), "call to guest function 'CallSlow' was interrupted (hl_sandbox_interrupt)");
    CHECK_INT(slow_saw_cancel, 1);
    CHECK(lat < 1000);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);

    /* a guest in a loop of host calls */
    CHECK_INT(call_interrupted(sb, "HostLoop", HL_VOID, 50, &lat), HL_ERR_CANCELLED);
    CHECK(lat < 1000);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);

    /* time limits: the timer's signal goes to the worker */
    hl_sandbox_set_timeout(sb, 100);
    t0 = test_now_ms();
    CHECK_INT(hl_call(sb, "Spin", HL_VOID, NULL, 0, &r), HL_ERR_CANCELLED);
    el = test_now_ms() - t0;
    CHECK_STR(hl_last_error(sb), "call to guest function 'Spin' timed out after 100 ms");
    CHECK(el >= 99 && el < 2000);
    printf("     100 ms time limit on a spinning confined guest: returned after %.1f ms\n", el);
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    /* a call within its time limit, several times (the timer is re-armed on the worker) */
    for (int i = 0; i < 3; i++) {
        CALL_OK(sb, "Count", HL_U64, NULL, 0, &r);
        CHECK_INT(r.v.u64, (uint64_t)i + 1);
    }
    hl_sandbox_set_timeout(sb, 0);
    CALL_OK(sb, "Count", HL_U64, NULL, 0, &r);
    CHECK_INT(r.v.u64, 4);
    /* an interrupt when no call runs cancels nothing */
    hl_sandbox_interrupt(sb);
    CALL_OK(sb, "Count", HL_U64, NULL, 0, &r);
    CHECK_INT(r.v.u64, 5);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* ---- the calling thread stays free ---- */
static void test_caller_unconfined(void)
{
    hl_config *cfg = calls_config(true);
    hl_sandbox *sb = must_sandbox("calls_guest", cfg);
    hl_value r, a = hl_i32(3);
    int fd;
    CALL_OK(sb, "HostEchoI32", HL_I32, &a, 1, &r);
    fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK_INT(seccomp_mode(gettid()), 0);
    hl_sandbox_free(sb);
    hl_config_free(cfg);

    /* configuration errors */
    CHECK_INT(hl_config_set_confinement(NULL, true), HL_ERR_INVALID_ARG);
    cfg = calls_config(true);
    CHECK_INT(hl_config_set_core_dir(cfg, "/tmp"), HL_OK);
    {
        hl_sandbox *bad = NULL;
        CHECK_INT(hl_sandbox_new_from_file(&bad, guest_path("calls_guest"), cfg), HL_ERR_INVALID_ARG);
        CHECK(bad == NULL);
        CHECK_HAS(hl_last_error(NULL), "confinement cannot be combined with crash dumps");
    }
    hl_config_free(cfg);
}

/* ---- many at once ---- */
#define MANY 20
#define CALLERS 4
struct caller {
    hl_sandbox **sbs;
    int n, fails;
};
static void *caller_main(void *p)
{
    struct caller *c = p;
    for (int k = 0; k < 50; k++)
        for (int i = 0; i < c->n; i++) {
            hl_value r, a[2] = { hl_i32(i), hl_i32(k) };
            if (hl_call(c->sbs[i], "Add", HL_I32, a, 2, &r) != HL_OK || r.v.i32 != i + k) c->fails++;
            a[0] = hl_i32(k);
            if (hl_call(c->sbs[i], "HostEchoI32", HL_I32, a, 1, &r) != HL_OK || r.v.i32 != ~k) c->fails++;
        }
    return NULL;
}

static void test_many(void)
{
    hl_config *cfg = calls_config(true);
    hl_sandbox *sbs[MANY];
    pthread_t th[CALLERS];
    struct caller cs[CALLERS];
    int before = count_dir("/proc/self/task"), fails = 0;
    /* (the kernel may add a task of its own per VM, so the workers are counted by name) */
    for (int i = 0; i < MANY; i++) sbs[i] = must_sandbox("calls_guest", cfg);
    CHECK_INT(confined_threads(true), MANY);
    CHECK_INT(confined_threads(false), MANY); /* each filter loaded before the guest's initialisation */
    for (int t = 0; t < CALLERS; t++) {
        cs[t] = (struct caller){ sbs + t * (MANY / CALLERS), MANY / CALLERS, 0 };
        pthread_create(&th[t], NULL, caller_main, &cs[t]);
    }
    for (int t = 0; t < CALLERS; t++) {
        pthread_join(th[t], NULL);
        fails += cs[t].fails;
    }
    CHECK_INT(fails, 0);
    CHECK_INT(confined_threads(false), MANY);
    for (int i = 0; i < MANY; i++) hl_sandbox_free(sbs[i]);
    CHECK_INT(count_dir("/proc/self/task"), before);
    CHECK_INT(confined_threads(true), 0);
    CHECK_INT(confined_threads(false), 0);
    /* creating and freeing without any call: the worker never loaded a filter */
    for (int i = 0; i < MANY; i++) sbs[i] = must_sandbox("calls_guest", cfg);
    for (int i = 0; i < MANY; i++) hl_sandbox_free(sbs[i]);
    CHECK_INT(count_dir("/proc/self/task"), before);
    hl_config_free(cfg);
}

/* ---- cost ---- */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_overhead(void)
{
    enum { N = 2000 };
    hl_config *plain_cfg = calls_config(false), *conf_cfg = calls_config(true);
    hl_sandbox *plain = must_sandbox("calls_guest", plain_cfg), *conf = must_sandbox("calls_guest", conf_cfg);
    static double tp[N], tc[N], thp[N], thc[N];
    hl_value r, a = hl_i32(1);
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        bad += hl_call(plain, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
        bad += hl_call(conf, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
    }
    for (int i = 0; i < N; i++) {
        double t0 = test_now_ms();
        bad += hl_call(plain, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
        double t1 = test_now_ms();
        bad += hl_call(conf, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
        double t2 = test_now_ms();
        bad += hl_call(conf, "HostEchoI32", HL_I32, &a, 1, &r) != HL_OK;
        double t3 = test_now_ms();
        bad += hl_call(plain, "HostEchoI32", HL_I32, &a, 1, &r) != HL_OK;
        double t4 = test_now_ms();
        tp[i] = t1 - t0, tc[i] = t2 - t1, thc[i] = t3 - t2, thp[i] = t4 - t3;
    }
    CHECK_INT(bad, 0);
    qsort(tp, N, sizeof tp[0], cmp_double);
    qsort(tc, N, sizeof tc[0], cmp_double);
    qsort(thp, N, sizeof thp[0], cmp_double);
    qsort(thc, N, sizeof thc[0], cmp_double);
    printf("     empty call (Nop), median of %d: unconfined %.1f us, confined %.1f us (+%.1f us); "
           "p99 %.1f / %.1f us\n",
           N, tp[N / 2] * 1e3, tc[N / 2] * 1e3, (tc[N / 2] - tp[N / 2]) * 1e3, tp[N * 99 / 100] * 1e3,
           tc[N * 99 / 100] * 1e3);
    printf("     call with one host call (HostEchoI32), median of %d: unconfined %.1f us, confined %.1f us "
           "(+%.1f us)\n",
           N, thp[N / 2] * 1e3, thc[N / 2] * 1e3, (thc[N / 2] - thp[N / 2]) * 1e3);
    /* sparse calls: 1 ms apart, so the worker has gone to sleep when each call comes */
    for (int i = 0; i < N / 4; i++) {
        double t0, t1, t2;
        usleep(1000);
        t0 = test_now_ms();
        bad += hl_call(plain, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
        t1 = test_now_ms();
        usleep(1000);
        t2 = test_now_ms();
        bad += hl_call(conf, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
        tp[i] = t1 - t0, tc[i] = test_now_ms() - t2;
    }
    CHECK_INT(bad, 0);
    qsort(tp, N / 4, sizeof tp[0], cmp_double);
    qsort(tc, N / 4, sizeof tc[0], cmp_double);
    printf("     empty call (Nop) 1 ms after the previous one, median of %d: unconfined %.1f us, confined %.1f us "
           "(+%.1f us)\n",
           N / 4, tp[N / 8] * 1e3, tc[N / 8] * 1e3, (tc[N / 8] - tp[N / 8]) * 1e3);
    /* back to back: blocks of calls on one sandbox, alternating between the two */
    for (int b = 0; b < 20; b++)
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < N / 20; i++) {
                double t0 = test_now_ms();
                bad += hl_call(k ? conf : plain, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
                (k ? tc : tp)[b * (N / 20) + i] = test_now_ms() - t0;
            }
    CHECK_INT(bad, 0);
    qsort(tp, N, sizeof tp[0], cmp_double);
    qsort(tc, N, sizeof tc[0], cmp_double);
    printf("     empty call (Nop) back to back, median of %d: unconfined %.1f us, confined %.1f us (+%.1f us)\n", N,
           tp[N / 2] * 1e3, tc[N / 2] * 1e3, (tc[N / 2] - tp[N / 2]) * 1e3);
    hl_sandbox_free(plain);
    hl_sandbox_free(conf);

    /* creation + first call (the filter is loaded then) + free */
    {
        enum { M = 20 };
        double cp[M], cc[M];
        for (int i = 0; i < M; i++)
            for (int k = 0; k < 2; k++) {
                double t0 = test_now_ms();
                hl_sandbox *sb = must_sandbox("calls_guest", k ? conf_cfg : plain_cfg);
                bad += hl_call(sb, "Nop", HL_VOID, NULL, 0, &r) != HL_OK;
                hl_sandbox_free(sb);
                (k ? cc : cp)[i] = test_now_ms() - t0;
            }
        CHECK_INT(bad, 0);
        qsort(cp, M, sizeof cp[0], cmp_double);
        qsort(cc, M, sizeof cc[0], cmp_double);
        printf("     create + first call + free, median of %d: unconfined %.0f us, confined %.0f us (+%.0f us)\n", M,
               cp[M / 2] * 1e3, cc[M / 2] * 1e3, (cc[M / 2] - cp[M / 2]) * 1e3);
    }
    hl_config_free(plain_cfg);
    hl_config_free(conf_cfg);
}

/* The guest's initialisation runs confined too: a host function it calls is on the worker. */
static pid_t init_tid;
static int init_open_rc;
static int init_hook(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    int fd = open("/etc/hostname", O_RDONLY);
    init_tid = gettid();
    init_open_rc = fd;
    if (fd >= 0) close(fd);
    *r = hl_i32(77);
    return 0;
}

static void test_init_confined(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = NULL;
    hl_value r;
    static const int need[] = { SYS_openat, SYS_close };
    CHECK_INT(hl_config_register_host_fn(cfg, "InitHook", HL_I32, NULL, 0, init_hook, NULL), HL_OK);
    CHECK_INT(hl_config_set_confinement(cfg, true), HL_OK);
    init_tid = 0;
    CHECK_INT(hl_sandbox_new_from_file(&sb, guest_path("init_guest"), cfg), HL_ERR_CANCELLED);
    CHECK(sb == NULL);
    CHECK_HAS(hl_last_error(NULL), "guest initialisation stopped: host function 'InitHook' made a system call "
                                   "that is not allowed: openat (257)");
    CHECK(init_tid != 0 && init_tid != gettid()); /* it ran on the worker, */
    CHECK_INT(init_open_rc, -1);                  /* and the file was not opened */
    CHECK_INT(hl_config_set_host_fn_syscalls(cfg, "InitHook", need, 2), HL_OK);
    CHECK_INT(hl_sandbox_new_from_file(&sb, guest_path("init_guest"), cfg), HL_OK);
    CHECK(init_open_rc >= 0);
    CHECK_INT(hl_call(sb, "FromInit", HL_I32, NULL, 0, &r), HL_OK);
    CHECK_INT(r.v.i32, 77);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

int main(void)
{
    test_init_confined();
    test_calls();
    test_default_print();
    test_violation();
    test_violation_outside();
    test_cancel();
    test_caller_unconfined();
    test_many();
    test_overhead();
    return check_exit("test_confine");
}
