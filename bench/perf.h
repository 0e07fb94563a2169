/* perf.h - the kvm tracepoint and syscall counters of one thread (perf_event_open; needs root or
 * kernel.perf_event_paranoid <= 1), and spans: the timed part of one sample with its counts. */
#ifndef BENCH_PERF_H
#define BENCH_PERF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

enum { C_EXIT, C_UEXIT, C_PIO, C_EMUL, C_PF, C_SPTE, C_IOCTL, C_RUN, C_REGIO, C_SYSCALL, NCTR };
extern const char *const ctr_name[NCTR]; /* the JSON names */

typedef struct counters {
    int fd[NCTR];
    int slot[NCTR]; /* position in the group read, -1 if the event could not be opened */
    int nopen;
    bool ok;
} counters;

typedef struct counts {
    double c[NCTR]; /* per operation; negative: not available */
} counts;

/* The counters of thread tid (0: the calling thread; else another thread of this process,
 * such as a confined sandbox's worker). */
void ctr_open(counters *c, pid_t tid);
void ctr_close(counters *c);
/* Raw totals, one group read (one syscall). */
void ctr_read(const counters *c, uint64_t out[NCTR]);
/* Counter totals of this thread plus those of another thread (cw: a group opened on its thread
 * id), read so that neither group counts the other's reads: cw, c before; c, cw after
 * (ctr_per_op then removes the one read c counts, as for one group). */
void ctr_read_both(const counters *c, const counters *cw, uint64_t out[NCTR], bool after);
/* (b - a) / ops, without the syscall of the second read. */
counts ctr_per_op(const counters *c, const uint64_t a[NCTR], const uint64_t b[NCTR], uint64_t ops);

/* A timed part of one sample, and (in the counting pass) the counter deltas over it, summed
 * over the samples of a row: preparation and clean-up around it are neither timed nor
 * counted. */
typedef struct span {
    counters *c; /* NULL: timing only */
    bool keep;   /* timed rounds: keep the sub-samples (parts of a sample) */
    uint64_t t0;
    uint64_t a[NCTR];
    uint64_t acc[NCTR];
    uint64_t exits; /* hl_sandbox_exit_count deltas in the timed parts */
    bool has_exits;
} span;

static inline void span_begin(span *s)
{
    if (s->c && s->c->ok) ctr_read(s->c, s->a);
    s->t0 = now_ns();
}

/* Returns the time since span_begin. */
static inline uint64_t span_end(span *s)
{
    uint64_t t = now_ns() - s->t0;
    if (s->c && s->c->ok) {
        uint64_t z[NCTR];
        ctr_read(s->c, z);
        for (int i = 0; i < NCTR; i++) s->acc[i] += z[i] - s->a[i];
        if (s->acc[C_SYSCALL]) s->acc[C_SYSCALL]--; /* the second read counted itself */
    }
    return t;
}

#endif
