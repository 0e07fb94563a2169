/* test_threads.c - sandboxes and threads against real KVM: 50 threads, each with its own
 * sandbox (all alive at once) made from one shared configuration, making calls with
 * thread-specific arguments, guest errors, host calls and prints (callbacks must run on
 * the calling thread); per-thread creation errors; a sandbox moving between threads; and
 * everything released afterwards (file descriptors back to where they were).
 * Guest: tests/guests/calls_guest.c. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define GUEST "calls_guest"
#define THREADS 50
#define CALLS 20

/* Callbacks record into thread-local state: if one ran on another thread than the one
 * calling hl_call, the caller's counts would be wrong. */
static __thread long tls_dots, tls_foreign, tls_host_calls;
static int print_user, host_user;

static void on_print(void *user, int stream, const char *data, size_t len)
{
    if (user != &print_user || stream != 1) tls_foreign++;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '.') tls_dots++;
        else tls_foreign++;
    }
}

static int host_i32(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    if (hl_host_call_user(c) != &host_user) return hl_host_call_error(c, 77, "wrong user");
    tls_host_calls++;
    *r = hl_i32(~a[0].v.i32);
    return 0;
}

typedef struct worker {
    int id;
    const hl_config *cfg;
    pthread_barrier_t *barrier;
    int failures;
    int calls_ok;
    char first[512]; /* first failure */
} worker;

static void wfail(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wfail(worker *w, const char *fmt, ...)
{
    if (!w->failures++) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first, sizeof w->first, fmt, ap);
        va_end(ap);
    }
}

static void *work(void *arg)
{
    worker *w = arg;
    hl_sandbox *sb = NULL;
    hl_value r, a[2];
    char missing[64], want[160], s[64];
    hl_status st;
    const int id = w->id;

    /* a failed creation: the error belongs to this thread */
    snprintf(missing, sizeof missing, "/nonexistent/thread-%d.elf", id);
    if (hl_sandbox_new_from_file(&sb, missing, w->cfg) != HL_ERR_IO) wfail(w, "missing guest not HL_ERR_IO");
    snprintf(want, sizeof want, "cannot open guest '%s': No such file or directory", missing);

    pthread_barrier_wait(w->barrier); /* every thread failed once; now all create at once */
    if (strcmp(hl_last_error(NULL), want) != 0)
        wfail(w, "creation error '%s' is not this thread's", hl_last_error(NULL));
    st = hl_sandbox_new_from_file(&sb, guest_path(GUEST), w->cfg);
    if (st != HL_OK) {
        wfail(w, "creation: %s: %s", hl_status_name(st), hl_last_error(NULL));
        pthread_barrier_wait(w->barrier);
        pthread_barrier_wait(w->barrier);
        return NULL;
    }
    if (hl_last_error(NULL)[0]) wfail(w, "creation error not cleared: %s", hl_last_error(NULL));
    pthread_barrier_wait(w->barrier); /* all sandboxes alive */

    for (int i = 0; i < CALLS; i++) {
        int32_t x = id * 100000 + i * 1000;
        a[0] = hl_i32(id);
        a[1] = hl_i32(i * 1000);
        memset(&r, 0, sizeof r);
        if ((st = hl_call(sb, "Add", HL_I32, a, 2, &r)) != HL_OK || r.v.i32 != id + i * 1000)
            wfail(w, "Add(%d, %d): %s %d", id, i * 1000, hl_status_name(st), r.v.i32);
        else w->calls_ok++;

        snprintf(s, sizeof s, "thread %d call %d \xe2\x98\x83", id, i);
        a[0] = hl_str(s);
        memset(&r, 0, sizeof r);
        if ((st = hl_call(sb, "EchoString", HL_STRING, a, 1, &r)) != HL_OK || !r.v.buf.ptr ||
            strcmp(hl_value_str(&r), s) != 0)
            wfail(w, "EchoString(%s): %s", s, hl_status_name(st));
        else w->calls_ok++;

        memset(&r, 0, sizeof r);
        if ((st = hl_call(sb, "Counter", HL_U64, NULL, 0, &r)) != HL_OK || r.v.u64 != (uint64_t)i + 1)
            wfail(w, "Counter call %d: %s %llu", i, hl_status_name(st), (unsigned long long)r.v.u64);
        else w->calls_ok++;

        a[0] = hl_i32(x);
        memset(&r, 0, sizeof r);
        if ((st = hl_call(sb, "HostEchoI32", HL_I32, a, 1, &r)) != HL_OK || r.v.i32 != ~x)
            wfail(w, "HostEchoI32(%d): %s %s", x, hl_status_name(st), hl_last_error(sb));
        else w->calls_ok++;

        /* id+1 dots printed, a string of i bytes returned */
        a[0] = hl_u32((uint32_t)id + 1);
        a[1] = hl_u32((uint32_t)i);
        memset(&r, 0, sizeof r);
        if ((st = hl_call(sb, "PrintThenRet", HL_STRING, a, 2, &r)) != HL_OK || r.v.buf.len != (size_t)i)
            wfail(w, "PrintThenRet: %s", hl_status_name(st));
        else w->calls_ok++;

        /* a guest error, with a thread-specific code and message */
        snprintf(s, sizeof s, "thread %d failed at %d", id, i);
        a[0] = hl_i32(id + 1);
        a[1] = hl_str(s);
        snprintf(want, sizeof want, "guest function 'Fail' failed with code %d: %s", id + 1, s);
        if ((st = hl_call(sb, "Fail", HL_I32, a, 2, &r)) != HL_ERR_GUEST || hl_last_error_code(sb) != id + 1 ||
            strcmp(hl_last_error(sb), want) != 0 || hl_sandbox_state(sb) != HL_STATE_READY)
            wfail(w, "Fail: %s %d '%s'", hl_status_name(st), hl_last_error_code(sb), hl_last_error(sb));
        else w->calls_ok++;
    }
    if (tls_dots != (long)CALLS * (id + 1)) wfail(w, "print callback: %ld dots, want %d", tls_dots, CALLS * (id + 1));
    if (tls_foreign) wfail(w, "print callback: %ld foreign bytes", tls_foreign);
    if (tls_host_calls != CALLS)
        wfail(w, "host function ran %ld times on this thread, want %d", tls_host_calls, CALLS);

    pthread_barrier_wait(w->barrier); /* all done before any is freed */
    hl_sandbox_free(sb);
    return NULL;
}


static void test_many_threads(const hl_config *cfg, int fds0)
{
    static worker w[THREADS];
    pthread_t t[THREADS];
    pthread_barrier_t barrier;
    int started = 0, ok_calls = 0, failed = 0, fds_alive;

    /* the main thread takes part in the three barriers of the workers */
    pthread_barrier_init(&barrier, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){ .id = i, .cfg = cfg, .barrier = &barrier };
        if (pthread_create(&t[i], NULL, work, &w[i]) != 0) break;
        started++;
    }
    CHECK_INT(started, THREADS);
    if (started != THREADS) {
        fprintf(stderr, "cannot start %d threads\n", THREADS);
        exit(1); /* the others wait at the barrier forever */
    }
    pthread_barrier_wait(&barrier); /* all failed a creation once */
    pthread_barrier_wait(&barrier); /* all sandboxes alive */
    fds_alive = test_count_fds();
    pthread_barrier_wait(&barrier); /* all done calling */
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    /* each live sandbox holds at least its VM and vCPU descriptors (so the check that they
     * are all released at the end means something) */
    CHECK(fds_alive >= fds0 + 2 * THREADS);
    for (int i = 0; i < THREADS; i++) {
        ok_calls += w[i].calls_ok;
        if (w[i].failures) {
            failed++;
            if (failed <= 5) fprintf(stderr, "thread %d: %d failures, first: %s\n", i, w[i].failures, w[i].first);
        }
    }
    CHECK_INT(failed, 0);
    CHECK_INT(ok_calls, THREADS * CALLS * 6);
}

/* ---- one sandbox, several threads (one at a time) ---- */
typedef struct hop {
    hl_sandbox *sb;
    const hl_config *cfg;
    int ncalls;
    uint64_t last; /* last Counter value */
    hl_status st;
    long host_calls, dots;
    bool create;   /* create the sandbox on this thread */
    bool abort_it; /* abort the guest on this thread */
} hop;

static void *hop_work(void *arg)
{
    hop *h = arg;
    hl_value r, a;
    h->st = HL_OK;
    if (h->create && (h->st = hl_sandbox_new_from_file(&h->sb, guest_path(GUEST), h->cfg)) != HL_OK) return NULL;
    for (int i = 0; i < h->ncalls && h->st == HL_OK; i++) {
        memset(&r, 0, sizeof r);
        h->st = hl_call(h->sb, "Counter", HL_U64, NULL, 0, &r);
        h->last = r.v.u64;
    }
    if (h->st == HL_OK && h->ncalls) {
        a = hl_i32(5);
        h->st = hl_call(h->sb, "HostEchoI32", HL_I32, &a, 1, &r);
        if (h->st == HL_OK && r.v.i32 != ~5) h->st = HL_ERR_PROTOCOL;
        hl_value two[2] = { hl_u32(3), hl_u32(0) };
        if (h->st == HL_OK) h->st = hl_call(h->sb, "PrintThenRet", HL_STRING, two, 2, &r);
    }
    if (h->abort_it) {
        hl_value ab[2] = { hl_i32(9), hl_str("moved") };
        h->st = hl_call(h->sb, "Abort", HL_VOID, ab, 2, &r);
    }
    h->host_calls = tls_host_calls;
    h->dots = tls_dots;
    return NULL;
}

static void run_hop(hop *h)
{
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, hop_work, h), 0);
    pthread_join(t, NULL);
}

static void test_moving(const hl_config *cfg)
{
    hl_value r;
    hl_sandbox *sb = must_sandbox(GUEST, cfg);
    long main_host = tls_host_calls, main_dots = tls_dots;

    hop a = { .sb = sb, .ncalls = 5 };
    run_hop(&a);
    CHECK_INT(a.st, HL_OK);
    CHECK_INT(a.last, 5);
    CHECK_INT(a.host_calls, 1); /* the host function ran on thread a */
    CHECK_INT(a.dots, 3);       /* and so did the print callback */
    hop b = { .sb = sb, .ncalls = 1 };
    run_hop(&b);
    CHECK_INT(b.st, HL_OK);
    CHECK_INT(b.last, 6);
    CHECK_INT(b.host_calls, 1);
    memset(&r, 0, sizeof r);
    CHECK_INT(hl_call(sb, "Counter", HL_U64, NULL, 0, &r), HL_OK);
    CHECK_INT(r.v.u64, 7);
    CHECK_INT(tls_host_calls, main_host); /* nothing ran on the main thread by mistake */
    CHECK_INT(tls_dots, main_dots);

    /* poisoned on one thread, still poisoned on the next */
    hop c = { .sb = sb, .abort_it = true };
    run_hop(&c);
    CHECK_INT(c.st, HL_ERR_ABORTED);
    hop d = { .sb = sb, .ncalls = 1 };
    run_hop(&d);
    CHECK_INT(d.st, HL_ERR_STATE);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_STR(hl_last_error(sb), "sandbox is poisoned (after: guest aborted with code 9: moved)");
    hl_sandbox_free(sb);

    /* created on a thread that has ended, used and freed on this one */
    hop e = { .cfg = cfg, .create = true, .ncalls = 2 };
    run_hop(&e);
    CHECK_INT(e.st, HL_OK);
    CHECK_INT(e.last, 2);
    CHECK(e.sb != NULL);
    if (e.sb) {
        memset(&r, 0, sizeof r);
        CHECK_INT(hl_call(e.sb, "Counter", HL_U64, NULL, 0, &r), HL_OK);
        CHECK_INT(r.v.u64, 3);
        hl_sandbox_free(e.sb);
    }
}

/* ---- signals: a signal that interrupts KVM_RUN is not the guest's business; the call
 * resumes and completes ---- */
static volatile sig_atomic_t sig_count;
static volatile int sig_done;
static void on_signal(int sig) { sig_count++; }

typedef struct sig_job {
    hl_sandbox *sb;
    int calls, ok;
    hl_status st;
    char err[256];
} sig_job;

static void *sig_work(void *arg)
{
    sig_job *j = arg;
    uint64_t first = 0;
    for (int i = 0; i < j->calls; i++) {
        hl_value r, a = hl_u32(4096); /* 256 KiB of output per call: a few flush exits */
        memset(&r, 0, sizeof r);
        j->st = hl_call(j->sb, "PrintMany", HL_U64, &a, 1, &r);
        if (j->st != HL_OK) {
            snprintf(j->err, sizeof j->err, "%s: %s", hl_status_name(j->st), hl_last_error(j->sb));
            break;
        }
        if (i == 0) first = r.v.u64;
        if (r.v.u64 == first && r.v.u64 != 0) j->ok++;
    }
    sig_done = 1;
    return NULL;
}

static void test_signals(void)
{
    struct sigaction sa, old;
    pthread_t t;
    sig_job j = { .calls = 40 };
    long sent = 0;
    hl_config *quiet = hl_config_new();

    hl_config_set_print(quiet, NULL, NULL);
    j.sb = must_sandbox(GUEST, quiet);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: KVM_RUN returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    sig_done = 0;
    CHECK_INT(pthread_create(&t, NULL, sig_work, &j), 0);
    while (!sig_done) {
        pthread_kill(t, SIGUSR1);
        sent++;
        usleep(50);
    }
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    if (j.err[0]) fprintf(stderr, "signals: %s\n", j.err);
    CHECK_INT(j.st, HL_OK);
    CHECK_INT(j.ok, j.calls);
    CHECK(sig_count > 10); /* the signals did arrive, many during calls */
    CHECK_INT(hl_sandbox_state(j.sb), HL_STATE_READY);
    hl_sandbox_free(j.sb);
    hl_config_free(quiet);
    (void)sent;
}

int main(void)
{
    hl_config *cfg = hl_config_new();
    hl_type p1[1] = { HL_I32 };
    int fds0, fds1;
    hl_sandbox *sb;

    hl_config_set_print(cfg, on_print, &print_user);
    /* 50 guests initialising at once on 2 cores: under QEMU's software emulation (hwkvm) on
     * a busy machine some took longer than the default 10 s; the test is not about that time */
    CHECK_INT(hl_config_set_init_timeout(cfg, 120000), HL_OK);
    CHECK_INT(hl_config_register_host_fn(cfg, "HostI32", HL_I32, p1, 1, host_i32, &host_user), HL_OK);
    /* one sandbox made and freed first, so lazily created process state is not counted */
    sb = must_sandbox(GUEST, cfg);
    hl_sandbox_free(sb);
    CHECK_STR(hl_last_error(NULL), "");
    fds0 = test_count_fds();

    test_many_threads(cfg, fds0);
    test_signals();
    CHECK_STR(hl_last_error(NULL), ""); /* the threads' creation errors stayed theirs */
    test_moving(cfg);

    fds1 = test_count_fds();
    CHECK_INT(fds1, fds0); /* every sandbox released its memfd and KVM descriptors */
    hl_config_free(cfg);
    return check_exit("test_threads");
}
