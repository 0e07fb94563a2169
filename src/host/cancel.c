/* cancel.c - stopping a running guest: hl_sandbox_interrupt from any thread, and per-call
 * time limits.
 *
 * Mechanism (KVM API, "immediate_exit"): set kvm_run->immediate_exit, then signal the
 * thread running the vCPU. A thread inside KVM_RUN leaves it with EINTR; a thread about to
 * enter it finds immediate_exit set and returns at once. Each call has a sequence number;
 * an interrupt cancels only the call whose number it read, so an interrupt that arrives
 * when no call runs, or after its call ended, never cancels a later call.
 *
 * The signal (HL_SIGNAL) gets a handler installed once per process, without SA_RESTART so
 * KVM_RUN is not restarted. It is sent only while the vCPU thread is inside KVM_RUN, never
 * while a host function runs, so host functions do not see spurious EINTRs. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cancel.h"
#include "error.h"
#include "sandbox.h"

#define RUNNING 1ull
#define IN_GUEST 2ull
#define SEQ_SHIFT 2

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_errno;
/* The sandbox whose call runs on this thread: the timer's signal lands on this thread. */
static __thread hl_sandbox *tls_running;

/* A later call's number is never replaced by an earlier one's. */
void hl_cancel_async(hl_sandbox *sb, uint64_t seq, int why)
{
    uint64_t cur = __atomic_load_n(&sb->cancel_seq, __ATOMIC_SEQ_CST);
    if (cur > seq) return; /* a stale cancel of an earlier call: neither its reason nor a kick */
    if (cur < seq) __atomic_store_n(&sb->cancel_why, why, __ATOMIC_SEQ_CST); /* the first cancel names it */
    while (cur < seq &&
           !__atomic_compare_exchange_n(&sb->cancel_seq, &cur, seq, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    if (cur <= seq) hl_vm_kick(sb->vm, true);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    hl_sandbox *sb = tls_running;
    /* A time limit expired: the timer's signal is delivered to the thread running the call. */
    if (si->si_code == SI_TIMER && sb && si->si_value.sival_ptr == sb)
        hl_cancel_async(sb, sb->call_seq, HL_CANCEL_TIMEOUT);
    /* otherwise an interrupt's kick: its work was done before the signal was sent */
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: KVM_RUN must return EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(HL_SIGNAL, &sa, NULL) < 0) handler_errno = errno;
}

hl_status hl_cancel_init(hl_sandbox *sb)
{
    pthread_once(&handler_once, install_handler);
    if (handler_errno)
        return hl_fail(sb, HL_ERR_SYSTEM, "installing the interrupt signal handler: %s", strerror(handler_errno));
    return HL_OK;
}

void hl_cancel_fini(hl_sandbox *sb)
{
    if (sb->has_timer) timer_delete(sb->timer);
    sb->has_timer = false;
}

/* Arms the per-call time limit on the calling thread. */
static hl_status arm_timer(hl_sandbox *sb, uint64_t ms)
{
    struct sigevent sev;
    struct itimerspec its;
    if (!sb->has_timer || sb->timer_tid != gettid()) {
        if (sb->has_timer) timer_delete(sb->timer);
        sb->has_timer = false;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = HL_SIGNAL;
        sev._sigev_un._tid = gettid();
        sev.sigev_value.sival_ptr = sb;
        if (timer_create(CLOCK_MONOTONIC, &sev, &sb->timer) < 0)
            return hl_fail(sb, HL_ERR_SYSTEM, "timer_create: %s", strerror(errno));
        sb->has_timer = true;
        sb->timer_tid = gettid();
    }
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(ms / 1000);
    its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    if (timer_settime(sb->timer, 0, &its, NULL) < 0)
        return hl_fail(sb, HL_ERR_SYSTEM, "timer_settime: %s", strerror(errno));
    return HL_OK;
}

hl_status hl_cancel_begin(hl_sandbox *sb)
{
    uint64_t seq = sb->call_seq + 1;
    hl_status st;
    sb->call_seq = seq;
    sb->tid = pthread_self();
    tls_running = sb;
    __atomic_store_n(&sb->run_word, seq << SEQ_SHIFT | RUNNING, __ATOMIC_SEQ_CST);
    if (sb->timeout_ms && (st = arm_timer(sb, sb->timeout_ms)) != HL_OK) {
        hl_cancel_end(sb);
        return st;
    }
    return HL_OK;
}

void hl_cancel_end(hl_sandbox *sb)
{
    if (sb->timeout_ms && sb->has_timer) {
        struct itimerspec off;
        memset(&off, 0, sizeof off);
        timer_settime(sb->timer, 0, &off, NULL);
    }
    __atomic_store_n(&sb->run_word, sb->call_seq << SEQ_SHIFT, __ATOMIC_SEQ_CST);
    tls_running = NULL;
    hl_vm_kick(sb->vm, false);
}

void hl_cancel_enter_guest(hl_sandbox *sb)
{
    __atomic_store_n(&sb->run_word, sb->call_seq << SEQ_SHIFT | RUNNING | IN_GUEST, __ATOMIC_SEQ_CST);
}

void hl_cancel_leave_guest(hl_sandbox *sb)
{
    __atomic_store_n(&sb->run_word, sb->call_seq << SEQ_SHIFT | RUNNING, __ATOMIC_SEQ_CST);
}

int hl_cancelled(hl_sandbox *sb)
{
    if (__atomic_load_n(&sb->cancel_seq, __ATOMIC_SEQ_CST) != sb->call_seq) return 0;
    return __atomic_load_n(&sb->cancel_why, __ATOMIC_SEQ_CST);
}

bool hl_cancel_spurious(hl_sandbox *sb)
{
    /* KVM_RUN returned EINTR for a call nobody cancelled (a stale kick from an interrupt
     * that lost the race with the end of an earlier call, or an unrelated signal): clear the
     * kick, then look again, in case a real interrupt set it in between. */
    if (hl_cancelled(sb)) return false;
    hl_vm_kick(sb->vm, false);
    return !hl_cancelled(sb);
}

void hl_sandbox_interrupt(hl_sandbox *sb)
{
    uint64_t w;
    if (!sb) return;
    w = __atomic_load_n(&sb->run_word, __ATOMIC_SEQ_CST);
    if (!(w & RUNNING)) return; /* nothing runs: nothing to cancel, now or later */
    hl_cancel_async(sb, w >> SEQ_SHIFT, HL_CANCEL_INTERRUPT);
    w = __atomic_load_n(&sb->run_word, __ATOMIC_SEQ_CST);
    if ((w & IN_GUEST) && (w >> SEQ_SHIFT) == sb->cancel_seq) pthread_kill(sb->tid, HL_SIGNAL);
}
