/* intr.c - interrupt latency: another thread calls hl_sandbox_interrupt while the guest spins
 * (Spin) or while a host function works (CallSlow -> Slow); one sample is the time from that
 * call to hl_call returning. Also the host functions Spinning and Slow. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "bench.h"

static int spinning_flag, slow_flag; /* set by Spinning and Slow when the guest reaches them */

/* Spin() calls it once before it starts spinning: tells the interrupting thread to get ready. */
int host_spinning(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    __atomic_store_n(&spinning_flag, 1, __ATOMIC_RELEASE);
    *ret = hl_i32(0);
    return 0;
}

/* A host function that works until its call is interrupted, polling hl_host_call_cancelled. */
int host_slow(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    uint64_t deadline = now_ns() + (uint64_t)INTR_TIMEOUT_MS * 1000000u;
    __atomic_store_n(&slow_flag, 1, __ATOMIC_RELEASE);
    while (!hl_host_call_cancelled(call))
        if (now_ns() > deadline) return hl_host_call_error(call, 1, "Slow: never interrupted");
    *ret = hl_i32(0);
    return 0;
}

typedef struct intr_arg {
    hl_sandbox *sb;
    int *flag;         /* set by the host function the guest reaches first */
    uint64_t delay_ns; /* then wait this long, so the guest (or host function) is well in */
    uint64_t t0;       /* when hl_sandbox_interrupt was called; 0 if it never was */
} intr_arg;

static void *interrupter(void *p)
{
    intr_arg *a = p;
    uint64_t deadline = now_ns() + (uint64_t)INTR_TIMEOUT_MS * 1000000u;
    while (!__atomic_load_n(a->flag, __ATOMIC_ACQUIRE)) {
        if (now_ns() > deadline) return NULL;
        sleep_ns(10000);
    }
    sleep_ns(a->delay_ns);
    a->t0 = now_ns();
    hl_sandbox_interrupt(a->sb);
    return NULL;
}

/* spin: Spin() (a guest spinning without exits); else CallSlow() (inside host function Slow). */
static uint64_t sample_interrupt(bench *b, bool spin, span *sp)
{
    intr_arg a = { b->sbi, spin ? &spinning_flag : &slow_flag, spin ? SPIN_DELAY_NS : SLOW_DELAY_NS, 0 };
    hl_value ret;
    hl_status st;
    pthread_t th;
    uint64_t t1, e0 = hl_sandbox_exit_count(b->sbi);
    int e;
    __atomic_store_n(a.flag, 0, __ATOMIC_RELEASE);
    if ((e = pthread_create(&th, NULL, interrupter, &a)) != 0) die("pthread_create: %s", strerror(e));
    span_begin(sp); /* the counters cover the whole call: the interrupt comes from another thread */
    st = hl_call(b->sbi, spin ? "Spin" : "CallSlow", HL_I32, NULL, 0, &ret);
    t1 = now_ns();
    span_end(sp);
    pthread_join(th, NULL);
    if (st != HL_ERR_CANCELLED || !a.t0 || !strstr(hl_last_error(b->sbi), "interrupted"))
        die("%s: expected an interrupted call, got %s: %s", spin ? "Spin" : "CallSlow", hl_status_name(st),
            hl_last_error(b->sbi));
    sp->exits += hl_sandbox_exit_count(b->sbi) - e0;
    sp->has_exits = true;
    restore_or_die(b->sbi, b->snap);
    return t1 - a.t0;
}

uint64_t sample_intr_spin(bench *b, int r, span *sp) { return sample_interrupt(b, true, sp); }

uint64_t sample_intr_hostfn(bench *b, int r, span *sp) { return sample_interrupt(b, false, sp); }

void intr_setup(bench *b)
{
    if (hl_sandbox_new_from_snapshot(&b->sbi, b->snap, b->cfg) != HL_OK)
        die("hl_sandbox_new_from_snapshot: %s", hl_last_error(NULL));
    hl_sandbox_set_timeout(b->sbi, INTR_TIMEOUT_MS); /* a guard: an interrupt that never lands fails the run */
}

void intr_teardown(bench *b) { hl_sandbox_free(b->sbi); }
