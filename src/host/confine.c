/* confine.c - opt-in seccomp confinement of the thread that runs a sandbox's guest calls
 * (docs/confinement.md).
 *
 * A seccomp filter cannot be removed from a thread, so a confined sandbox gets a worker
 * thread of its own, started when the sandbox is created. The first call loads the filter
 * on it (the vCPU's file descriptor, which the filter names, exists only then); from then on
 * the executor (call.c) hands every run of the guest, host-function callbacks included, to
 * the worker and waits for it. The guest therefore only ever runs on the confined thread,
 * and the thread that called hl_call is never confined.
 *
 * The filter's default action is SECCOMP_RET_TRAP: a system call outside the allowlist is not
 * executed; the kernel sends SIGSYS to the worker. Our handler records the call, makes it
 * return -EPERM, and cancels the guest call; the host function goes on (it sees EPERM) and,
 * when it returns, the call fails with HL_ERR_CANCELLED naming the host function and the
 * system call, and the sandbox is Poisoned.
 *
 * Hand-off: two futex words, req (bumped by the caller per job, and to quit) and done (set
 * by the worker to the req it finished). One sandbox is used by one thread at a time, so
 * there is at most one job. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h> /* sched_getcpu */
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "call.h"
#include "io.h"
#include "cancel.h"
#include "confine.h"
#include "error.h"
#include "sandbox.h"

#define REQ_QUIT 0x80000000u
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a SIGSYS from a seccomp filter (asm-generic/siginfo.h) */
#endif

struct hl_confine {
    hl_sandbox *sb;
    pthread_t thread;
    uint32_t req;                          /* futex word: job number (low 31 bits) | REQ_QUIT */
    uint32_t done;                         /* futex word: the job number the worker finished last */
    uint32_t worker_sleeps, caller_sleeps; /* the side is (about to be) in FUTEX_WAIT */
    int worker_cpu, caller_cpu;            /* where each side ran last (sched_getcpu) */
    bool dead;                             /* the worker thread ended on its own (a host function ended it) */
    bool loaded;                           /* the filter is installed on the worker */
    int filter_fd;                         /* the vCPU fd the filter allows ioctls on */
    bool stdout_print;                     /* the default print function is in use: write(1) is allowed */
    hl_syscall_set allow;                  /* declared by the embedder: host functions and hl_config_allow_syscalls */
    /* the job: job(sb, job_arg), running guest function fn (NULL: the initialisation) */
    hl_status (*job)(hl_sandbox *, void *);
    void *job_arg;
    const char *fn;
    hl_status st;
    /* violations of the current job (written by the SIGSYS handler on the worker) */
    bool in_job;
    int violations;
    int violation_nr;        /* the first one's number ... */
    uint32_t violation_arch; /* ... and architecture (AUDIT_ARCH_*) */
    bool reported;           /* host_call turned the violation into the call's error */
};

/* The worker's own structure on a worker thread, else NULL (read by the SIGSYS handler). */
static __thread hl_confine *tls_worker;

static pthread_once_t sigsys_once = PTHREAD_ONCE_INIT;
static int sigsys_errno;
static struct sigaction old_sigsys;

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* How long a side polls before it sleeps: the caller for the end of the call, the worker
 * for the next call. Waking a thread that sleeps on an idle CPU costs tens of microseconds
 * in a VM (measured: ~35 µs per wake-up on kvm_pvm), twice per call; polling for a while
 * avoids both for short calls and back-to-back calls. It only pays when the other side runs
 * on another CPU: when both share one (a busy machine), polling would just delay the other
 * side, so each side publishes its CPU and the other polls only if they differ. Polling
 * uses `pause`, not sched_yield, which hands the CPU to other processes for a whole time
 * slice (measured: ~2 % of calls took 4 ms). */
#define SPIN_NS 100000u

/* Waits until *word differs from old: polls for up to spin_ns if the other side last ran
 * on another CPU (*other_cpu), then sleeps on the futex, saying so in *sleeps so that
 * post() wakes it. Returns the value seen (old again after the timeout). */
static uint32_t wait_change(uint32_t *word, uint32_t old, uint32_t *sleeps, uint64_t spin_ns,
                            const struct timespec *timeout, const int *other_cpu)
{
    uint32_t v;
    if (spin_ns && __atomic_load_n(other_cpu, __ATOMIC_RELAXED) != sched_getcpu()) {
        uint64_t t0 = mono_ns();
        for (unsigned i = 1;; i++) {
            if ((v = __atomic_load_n(word, __ATOMIC_ACQUIRE)) != old) return v;
            __builtin_ia32_pause();
            if (i % 32 == 0 && mono_ns() - t0 > spin_ns) break;
        }
    }
    __atomic_store_n(sleeps, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(word, __ATOMIC_SEQ_CST) == old) futex(word, FUTEX_WAIT_PRIVATE, old, timeout);
    __atomic_store_n(sleeps, 0, __ATOMIC_RELAXED);
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

/* Sets *word to v and wakes its waiter if it sleeps. */
static void post(uint32_t *word, uint32_t v, uint32_t *sleeps)
{
    __atomic_store_n(word, v, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(sleeps, __ATOMIC_SEQ_CST)) futex(word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* ---- SIGSYS ---- */
/* A SIGSYS that is not ours goes where it went before the library installed its handler. */
static void chain_sigsys(int sig, siginfo_t *si, void *uc)
{
    if (old_sigsys.sa_flags & SA_SIGINFO) {
        if (old_sigsys.sa_sigaction) old_sigsys.sa_sigaction(sig, si, uc);
    } else if (old_sigsys.sa_handler == SIG_DFL) {
        /* the default action (terminate with a core dump) once this handler returns */
        signal(SIGSYS, SIG_DFL);
        raise(SIGSYS);
    } else if (old_sigsys.sa_handler != SIG_IGN) {
        old_sigsys.sa_handler(sig);
    }
}

/* Runs on the worker when its filter refused a system call. Async-signal-safe: only
 * stores to memory (and the kick, which is a store to kvm_run). */
static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
    hl_confine *c = tls_worker;
    ucontext_t *uc = ucv;
    if (!c || si->si_code != SYS_SECCOMP) {
        chain_sigsys(sig, si, ucv);
        return;
    }
    if (c->violations++ == 0) {
        c->violation_nr = si->si_syscall;
        c->violation_arch = si->si_arch;
    }
    uc->uc_mcontext.gregs[REG_RAX] = -EPERM; /* the refused call returns -1 / EPERM */
    if (c->in_job) {
        /* Cancel the guest call: a host function sees hl_host_call_cancelled(), and the guest
         * does not run again (its next KVM_RUN returns at once). */
        hl_cancel_async(c->sb, c->sb->call_seq, HL_CANCEL_CONFINE);
    }
}

static void install_sigsys(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, &old_sigsys) < 0) sigsys_errno = errno;
}

/* ---- the filter ---- */
static const char *syscall_name(int nr, char *buf, size_t len)
{
    char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    snprintf(buf, len, "%s", s ? s : "unknown system call");
    free(s);
    return buf;
}

/* "openat (257)" for the first refused call; "open (5, i386)" for another architecture's
 * (int 0x80). libseccomp's architecture tokens are the AUDIT_ARCH_* values. */
static const char *describe(const hl_confine *c, char *buf, size_t len)
{
    char *s;
    if (c->violation_arch == SCMP_ARCH_X86_64) {
        char name[48];
        snprintf(buf, len, "%s (%d)", syscall_name(c->violation_nr, name, sizeof name), c->violation_nr);
        return buf;
    }
    s = seccomp_syscall_resolve_num_arch(c->violation_arch, c->violation_nr);
    snprintf(buf, len, "%s (%d, %s)", s ? s : "unknown system call", c->violation_nr,
             c->violation_arch == SCMP_ARCH_X86 ? "i386" : "another architecture");
    free(s);
    return buf;
}

static bool set_has(const hl_syscall_set *s, int nr)
{
    return nr >= 0 && nr < HL_SYSCALL_LIMIT && (s->bits[nr / 64] >> (nr % 64) & 1);
}

/* Builds the allowlist (docs/confinement.md lists and explains each entry) and loads it on
 * the calling thread, the worker. */
static hl_status load_filter(hl_confine *c, char *err)
{
    static const int plain[] = {
        SCMP_SYS(futex),           SCMP_SYS(rt_sigreturn),  SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(restart_syscall), SCMP_SYS(exit),          SCMP_SYS(gettid),
        SCMP_SYS(timer_create),    SCMP_SYS(timer_settime), SCMP_SYS(timer_delete),
        SCMP_SYS(clock_gettime),   SCMP_SYS(brk),           SCMP_SYS(munmap),
        SCMP_SYS(mremap),          SCMP_SYS(getcpu),        SCMP_SYS(sigaltstack),
    };
    static const int advice[] = { MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP };
    hl_vm_ioctl ioctls[16];
    int nioctls = hl_vm_confine_ioctls(c->sb->vm, ioctls, 16), rc = 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) return hl_errf(err, HL_ERR_SYSTEM, "confinement: seccomp_init failed");
    /* another architecture's system calls (int 0x80, x32): refused like any other */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
    /* the backend's own list: the run path's requests on the VM's descriptors */
    for (int i = 0; !rc && i < nioctls; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 2,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (unsigned)ioctls[i].fd),
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i].request));
    for (size_t i = 0; !rc && i < sizeof plain / sizeof plain[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
    /* memory for malloc: anonymous, never executable */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 2, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
                              SCMP_A3(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, MAP_ANONYMOUS));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    for (size_t i = 0; !rc && i < sizeof advice / sizeof advice[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(madvise), 1, SCMP_A2(SCMP_CMP_EQ, (unsigned)advice[i]));
    /* abort() in a host function: SIGABRT to this process, as without confinement */
    if (!rc) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getpid), 0);
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (unsigned)getpid()),
                              SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, SIGABRT));
    if (!rc && c->stdout_print)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, 1));
    for (int nr = 0; !rc && nr < HL_SYSCALL_LIMIT; nr++)
        if (set_has(&c->allow, nr)) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    if (rc) {
        seccomp_release(ctx);
        return hl_errf(err, HL_ERR_SYSTEM, "confinement: building the seccomp filter: %s", strerror(-rc));
    }
    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc) return hl_errf(err, HL_ERR_SYSTEM, "confinement: loading the seccomp filter: %s", strerror(-rc));
    c->loaded = true;
    c->filter_fd = nioctls ? ioctls[0].fd : -1;
    return HL_OK;
}

/* ---- the worker ---- */
/* After the call: a refused system call that host_call did not report (made outside a host
 * function) still fails the call. */
static hl_status after_call(hl_confine *c, hl_status st)
{
    hl_sandbox *sb = c->sb;
    char what[96];
    if (!c->violations || c->reported) return st;
    hl_fail(sb, HL_ERR_CANCELLED,
            HL_WHAT_FMT " stopped: a system call that is not allowed was made outside host functions (by the "
                        "print or log function, or by the library): %s",
            HL_WHAT_ARGS(c->fn), describe(c, what, sizeof what));
    return hl_poison(sb, HL_ERR_CANCELLED);
}

static void run_job(hl_confine *c)
{
    hl_sandbox *sb = c->sb;
    if (!c->loaded && (c->st = load_filter(c, sb->err)) != HL_OK) return;
    hl_vm_ioctl first;
    if (hl_vm_confine_ioctls(sb->vm, &first, 1) != 1 || first.fd != c->filter_fd) {
        c->st = hl_fail(sb, HL_ERR_HYPERVISOR, "confinement: the vCPU changed since the filter was loaded");
        return;
    }
    c->violations = 0;
    c->reported = false;
    c->in_job = true;
    c->st = c->job(sb, c->job_arg);
    c->in_job = false;
    c->st = after_call(c, c->st);
}

static void *worker_main(void *arg)
{
    hl_confine *c = arg;
    uint32_t seen = 0;
    sigset_t mask;
    /* Only the library's signals reach the worker: HL_SIGNAL (interrupts, time limits) and
     * SIGSYS; the synchronous ones are delivered regardless. Others go to other threads, so
     * no handler of the embedder runs under the filter. */
    sigfillset(&mask);
    sigdelset(&mask, HL_SIGNAL);
    sigdelset(&mask, SIGSYS);
    sigdelset(&mask, SIGSEGV);
    sigdelset(&mask, SIGBUS);
    sigdelset(&mask, SIGFPE);
    sigdelset(&mask, SIGILL);
    sigdelset(&mask, SIGTRAP);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    free(malloc(64)); /* malloc sets up this thread's arena and cache now, unconfined */
    tls_worker = c;
    for (;;) {
        uint32_t r = wait_change(&c->req, seen, &c->worker_sleeps, SPIN_NS, NULL, &c->caller_cpu);
        if (r == seen) continue;
        if (r & REQ_QUIT) break;
        seen = r;
        __atomic_store_n(&c->worker_cpu, sched_getcpu(), __ATOMIC_RELAXED);
        run_job(c);
        post(&c->done, r, &c->caller_sleeps);
    }
    /* tls_worker stays set: a refused call in glibc's thread exit returns EPERM, harmlessly */
    return NULL;
}

/* ---- the caller's side ---- */
/* Like the default print (config.c), without stdio's buffer for the guest's bytes: the
 * stream's first use would fstat() it, which the filter does not allow. Flushing stdout
 * first keeps the order of what the embedder printed before. */
static void confined_print(void *user, int stream, const char *data, size_t len)
{
    (void)user, (void)stream;
    fflush(stdout);
    hl_write_full(1, data, len);
}

hl_status hl_confine_start(hl_sandbox *sb, const hl_config *cfg)
{
    hl_confine *c;
    int rc;
    if (!cfg->confine) return HL_OK;
    if (cfg->core_dir[0])
        return hl_fail(sb, HL_ERR_INVALID_ARG,
                       "confinement cannot be combined with crash dumps (hl_config_set_core_dir): a dump "
                       "writes a file from the confined thread");
    pthread_once(&sigsys_once, install_sigsys);
    if (sigsys_errno)
        return hl_fail(sb, HL_ERR_SYSTEM, "confinement: installing the SIGSYS handler: %s", strerror(sigsys_errno));
    if (!(c = calloc(1, sizeof *c))) return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    c->sb = sb;
    c->filter_fd = -1;
    c->allow = cfg->allow;
    for (int i = 0; i < sb->nhostfns; i++)
        for (int w = 0; w < HL_SYSCALL_LIMIT / 64; w++) c->allow.bits[w] |= sb->hostfns[i].syscalls.bits[w];
    if (sb->print == hl_default_print) {
        sb->print = confined_print;
        c->stdout_print = true;
    }
    if ((rc = pthread_create(&c->thread, NULL, worker_main, c)) != 0) {
        free(c);
        return hl_fail(sb, HL_ERR_SYSTEM, "confinement: creating the worker thread: %s", strerror(rc));
    }
    pthread_setname_np(c->thread, "hl-confine"); /* as ps and /proc/PID/task/TID/comm show it */
    sb->confine = c;
    return HL_OK;
}

void hl_confine_stop(hl_sandbox *sb)
{
    hl_confine *c = sb->confine;
    if (!c) return;
    if (!c->dead) {
        __atomic_or_fetch(&c->req, REQ_QUIT, __ATOMIC_SEQ_CST);
        futex(&c->req, FUTEX_WAKE_PRIVATE, 1, NULL);
        pthread_join(c->thread, NULL);
    }
    free(c);
    sb->confine = NULL;
}

/* Hands the job set up in c to the worker and waits for it. */
static hl_status submit(hl_sandbox *sb, hl_confine *c)
{
    uint32_t r;
    if (c->dead) return hl_refuse(sb);
    r = (__atomic_load_n(&c->req, __ATOMIC_RELAXED) + 1) & ~REQ_QUIT;
    __atomic_store_n(&c->caller_cpu, sched_getcpu(), __ATOMIC_RELAXED);
    post(&c->req, r, &c->worker_sleeps);
    for (;;) {
        /* A host function may end the worker thread itself (pthread_exit, or exit() whose
         * exit_group the filter refuses, after which glibc ends the thread): look every
         * 100 ms whether it still exists rather than wait forever. */
        struct timespec tick = { 0, 100 * 1000 * 1000 };
        uint32_t d = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
        if (d == r) return c->st;
        if (wait_change(&c->done, d, &c->caller_sleeps, SPIN_NS, &tick, &c->worker_cpu) == d &&
            pthread_tryjoin_np(c->thread, NULL) == 0) {
            char sc[96], why[160] = "";
            c->dead = true;
            hl_cancel_end(sb); /* nothing runs any more: interrupts must not signal the gone thread */
            if (c->violations)
                snprintf(why, sizeof why, "; first refused system call: %s", describe(c, sc, sizeof sc));
            hl_fail(sb, HL_ERR_CANCELLED,
                    HL_WHAT_FMT " stopped: the confined worker thread ended during the call (a host function ended "
                                "it)%s",
                    HL_WHAT_ARGS(c->fn), why);
            return hl_unrecoverable(sb, HL_ERR_CANCELLED);
        }
    }
}

hl_status hl_confine_run(hl_sandbox *sb, const char *fn, hl_status (*job)(hl_sandbox *, void *), void *arg)
{
    hl_confine *c = sb->confine;
    c->job = job;
    c->job_arg = arg;
    c->fn = fn;
    return submit(sb, c);
}

bool hl_confine_stopped(hl_sandbox *sb, const char *hostfn)
{
    hl_confine *c = sb->confine;
    char what[96];
    if (!c || !c->violations || c->reported || tls_worker != c) return false;
    c->reported = true;
    hl_fail(sb, HL_ERR_CANCELLED, HL_WHAT_FMT " stopped: host function '%s' made a system call that is not allowed: %s",
            HL_WHAT_ARGS(c->fn), hostfn, describe(c, what, sizeof what));
    return true;
}

bool hl_syscall_valid(int nr)
{
    char *name = nr >= 0 && nr < HL_SYSCALL_LIMIT ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr) : NULL;
    bool ok = name != NULL;
    free(name);
    return ok;
}
