/* interrupt.h - what the cancellation tests share: host functions Noop and Slow (which polls
 * hl_host_call_cancelled), and a call interrupted from another thread. */
#ifndef HL_TEST_INTERRUPT_H
#define HL_TEST_INTERRUPT_H

#include <pthread.h>
#include <unistd.h>

#include "harness.h"

static int slow_saw_cancel; /* Slow saw its call cancelled */

static int host_noop(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(0);
    return 0;
}

/* Slow() -> i32: waits up to 5 s, or until its call is cancelled. */
static int host_slow(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    double t0 = test_now_ms();
    while (test_now_ms() - t0 < 5000) {
        if (hl_host_call_cancelled(c)) {
            slow_saw_cancel = 1;
            break;
        }
        usleep(1000);
    }
    *r = hl_i32(1);
    return 0;
}

struct later {
    hl_sandbox *sb;
    int delay_ms;
    double sent;
};

static void *interrupt_later(void *p)
{
    struct later *l = p;
    usleep((useconds_t)l->delay_ms * 1000);
    l->sent = test_now_ms();
    hl_sandbox_interrupt(l->sb);
    return NULL;
}

/* Calls fn in sb, interrupting it from another thread after delay_ms; returns the status
 * and sets *latency to the time from the interrupt to the call's return. */
static hl_status call_interrupted(hl_sandbox *sb, const char *fn, hl_type rt, int delay_ms, double *latency)
{
    pthread_t th;
    struct later l = { sb, delay_ms, 0 };
    hl_value r;
    hl_status st;
    pthread_create(&th, NULL, interrupt_later, &l);
    st = hl_call(sb, fn, rt, NULL, 0, &r);
    *latency = test_now_ms() - l.sent;
    pthread_join(th, NULL);
    return st;
}

#endif
