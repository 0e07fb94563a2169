/* time.c - the guest's clocks, sleeps and entropy: clock_gettime and the functions built on
 * it, from the guest's own rdtsc and the clock block the host keeps in the meta page; and
 * getentropy and arc4random, a ChaCha20 stream keyed from the meta page's entropy block
 * (include/hyperlight/abi.h, docs/abi.md). No function here leaves the VM. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "chacha20.h"
#include "guest_internal.h"
#include "hyperlight_guest.h"

#ifndef CLOCK_PROCESS_CPUTIME_ID
#define CLOCK_PROCESS_CPUTIME_ID 2 /* picolibc's <time.h> value, hidden without _POSIX_CPUTIME (Makefile) */
#endif
#define NS_PER_SEC 1000000000ull
#define GETENTROPY_MAX 256 /* POSIX.1-2024 getentropy */

static volatile struct hl_meta *meta_page(void)
{
    const struct hl_peb *peb = hl_guest_peb();
    return peb ? (volatile struct hl_meta *)(uintptr_t)peb->meta_gpa : NULL;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* ---- clocks ---- */
enum which { REALTIME, MONOTONIC, PROCESS };

/* A consistent copy of the clock block: retried while the host is writing it (seq odd or
 * changed). The host writes only while the vCPU is stopped, so one pass is the rule. */
static void read_block(struct hl_clock *k)
{
    volatile struct hl_meta *m = meta_page();
    uint32_t seq;
    if (!m) {
        *k = (struct hl_clock){ .mode = HL_CLOCK_MODE_OFF };
        return;
    }
    do {
        seq = __atomic_load_n(&m->clock.seq, __ATOMIC_ACQUIRE);
        k->mode = m->clock.mode;
        k->tsc = m->clock.tsc;
        k->realtime_ns = m->clock.realtime_ns;
        k->monotonic_ns = m->clock.monotonic_ns;
        k->start_ns = m->clock.start_ns;
        k->mult = m->clock.mult;
        k->shift = m->clock.shift;
        k->tsc_hz = m->clock.tsc_hz;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((seq & 1) || seq != __atomic_load_n(&m->clock.seq, __ATOMIC_RELAXED));
}

/* The real monotonic clock never stands still or goes back: not where a restore
 * re-anchors it a little below what the TSC extrapolated, nor where the vCPU moves to a host
 * CPU whose TSC lags a few cycles (seen on kvm_pvm: two readings equal to the nanosecond).
 * Such a reading is the last one plus 1 ns. A guest restored to a snapshot gets back the
 * snapshot's last reading, which is below the new anchor. */
static uint64_t last_monotonic;

/* The clock (w) now in *ns; -1 with errno ENOSYS if the host gives no clock. */
static int now_ns(enum which w, uint64_t *ns)
{
    struct hl_clock k;
    uint64_t tsc, d = 0, base;
    read_block(&k);
    if (k.mode != HL_CLOCK_MODE_REAL && k.mode != HL_CLOCK_MODE_FROZEN) {
        errno = ENOSYS;
        return -1;
    }
    tsc = rdtsc();
    if (tsc > k.tsc && k.shift < 64) d = (uint64_t)(((unsigned __int128)(tsc - k.tsc) * k.mult) >> k.shift);
    base = w == REALTIME ? k.realtime_ns : k.monotonic_ns;
    *ns = base + d;
    if (w == REALTIME) return 0;
    if (k.mode == HL_CLOCK_MODE_REAL) {
        if (*ns <= last_monotonic) *ns = last_monotonic + 1;
        last_monotonic = *ns;
    }
    if (w == PROCESS) *ns = *ns > k.start_ns ? *ns - k.start_ns : 0;
    return 0;
}

static int which_clock(clockid_t id, enum which *w)
{
    switch (id) {
    case CLOCK_REALTIME: *w = REALTIME; return 0;
    case CLOCK_MONOTONIC: *w = MONOTONIC; return 0;
#ifdef CLOCK_MONOTONIC_RAW
    case CLOCK_MONOTONIC_RAW: *w = MONOTONIC; return 0;
#endif
#ifdef CLOCK_BOOTTIME
    case CLOCK_BOOTTIME: *w = MONOTONIC; return 0;
#endif
    /* one vCPU, one thread, never descheduled as far as the guest can tell */
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID: *w = PROCESS; return 0;
    default: errno = EINVAL; return -1;
    }
}

int clock_gettime(clockid_t id, struct timespec *tp)
{
    enum which w;
    uint64_t ns;
    if (which_clock(id, &w) < 0 || now_ns(w, &ns) < 0) return -1;
    if (tp) {
        tp->tv_sec = (time_t)(ns / NS_PER_SEC);
        tp->tv_nsec = (long)(ns % NS_PER_SEC);
    }
    return 0;
}

int clock_getres(clockid_t id, struct timespec *res)
{
    enum which w;
    struct hl_clock k;
    if (which_clock(id, &w) < 0) return -1;
    read_block(&k);
    if (k.mode != HL_CLOCK_MODE_REAL && k.mode != HL_CLOCK_MODE_FROZEN) {
        errno = ENOSYS;
        return -1;
    }
    /* a TSC tick is shorter than a nanosecond on every machine KVM runs on */
    if (res) *res = (struct timespec){ .tv_sec = 0, .tv_nsec = 1 };
    return 0;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    uint64_t ns;
    (void)tz; /* obsolete: no time zone */
    if (now_ns(REALTIME, &ns) < 0) return -1;
    if (tv) {
        tv->tv_sec = (time_t)(ns / NS_PER_SEC);
        tv->tv_usec = (suseconds_t)(ns % NS_PER_SEC / 1000);
    }
    return 0;
}

/* The process's time is the time since its sandbox was created, all of it user time; the
 * return value, the elapsed real time, is the same (picolibc's clock() adds the fields). */
clock_t times(struct tms *t)
{
    uint64_t ns;
    clock_t ticks;
    if (now_ns(PROCESS, &ns) < 0) return (clock_t)-1;
    ticks = (clock_t)(ns / (NS_PER_SEC / CLOCKS_PER_SEC));
    if (t) *t = (struct tms){ .tms_utime = ticks };
    return ticks;
}

int clock_settime(clockid_t id, const struct timespec *tp)
{
    (void)id, (void)tp;
    errno = EPERM; /* the host's clock is not the guest's to set */
    return -1;
}

/* ---- sleeps: spinning on the TSC (a guest has nothing else to do; the host's call time
 * limit still stops it) ---- */
static uint64_t ts_ns(const struct timespec *t)
{
    uint64_t s = (uint64_t)t->tv_sec;
    return s > (UINT64_MAX - (uint64_t)t->tv_nsec) / NS_PER_SEC ? UINT64_MAX : s * NS_PER_SEC + (uint64_t)t->tv_nsec;
}

/* POSIX: returns 0 or an error number (errno is left alone). Process and thread CPU-time
 * clocks cannot be slept on (EINVAL). */
int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem)
{
    enum which w;
    uint64_t now = 0, until;
    struct hl_clock k;
    int saved = errno;
    if (which_clock(id, &w) < 0 || w == PROCESS || !req || req->tv_nsec < 0 || req->tv_nsec >= (long)NS_PER_SEC ||
        req->tv_sec < 0) {
        errno = saved;
        return EINVAL;
    }
    read_block(&k);
    if (k.mode == HL_CLOCK_MODE_FROZEN) return 0; /* time stands still: so does the wait */
    if (now_ns(w, &now) < 0) {
        errno = saved;
        return ENOSYS;
    }
    until = flags & TIMER_ABSTIME ? ts_ns(req) : ts_ns(req) > UINT64_MAX - now ? UINT64_MAX : now + ts_ns(req);
    while (now < until) {
        __asm__ volatile("pause");
        now_ns(w, &now);
    }
    if (rem && !(flags & TIMER_ABSTIME)) *rem = (struct timespec){ 0 };
    return 0;
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    int e = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem);
    if (!e) return 0;
    errno = e;
    return -1;
}

int usleep(useconds_t us)
{
    struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
    return nanosleep(&ts, NULL);
}

unsigned sleep(unsigned s)
{
    struct timespec ts = { .tv_sec = s };
    return nanosleep(&ts, NULL) < 0 ? s : 0;
}

/* ---- entropy ---- */
/* The guest's generator: a ChaCha20 stream keyed from the entropy block's seed under the
 * block's epoch. Memory restored from a snapshot brings back the snapshot's generator, but
 * the host has written a new epoch and seed by then: the epoch check re-keys it before any
 * byte is handed out, so no two restores (and no two sandboxes) share a byte. */
static hl_chacha gen;
static uint64_t gen_epoch;
static uint8_t gen_buf[HL_CHACHA_BLOCK];
static size_t gen_have; /* unused bytes at the end of gen_buf */

static int entropy(void *out, size_t n)
{
    volatile struct hl_meta *m = meta_page();
    uint8_t *o = out, seed[HL_ENTROPY_SEED];
    uint64_t epoch = m ? m->entropy.epoch : 0;
    if (!epoch) return -1;
    if (epoch != gen_epoch) {
        for (size_t i = 0; i < sizeof seed; i++) seed[i] = m->entropy.seed[i];
        hl_chacha_init(&gen, seed);
        for (size_t i = 0; i < sizeof seed; i++) ((volatile uint8_t *)seed)[i] = 0;
        gen_epoch = epoch;
        gen_have = 0;
    }
    while (n) {
        size_t take;
        if (!gen_have) {
            hl_chacha_fill(&gen, gen_buf, sizeof gen_buf);
            hl_chacha_rekey(&gen); /* what was handed out cannot be recomputed from gen */
            gen_have = sizeof gen_buf;
        }
        take = n < gen_have ? n : gen_have;
        for (size_t i = 0; i < take; i++) {
            uint8_t *b = &gen_buf[sizeof gen_buf - gen_have + i];
            o[i] = *b;
            *b = 0;
        }
        gen_have -= take;
        o += take;
        n -= take;
    }
    return 0;
}

int getentropy(void *buf, size_t n)
{
    if (n > GETENTROPY_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (n && !buf) {
        errno = EFAULT;
        return -1;
    }
    if (entropy(buf, n) < 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* picolibc's arc4random keeps a generator of its own that a restore would bring back as it
 * was in the snapshot; these replace it. Without entropy from the host they abort the call. */
void arc4random_buf(void *buf, size_t n)
{
    if (entropy(buf, n) < 0) hl_abort(HL_GUEST_ERR_ABI, "arc4random: the host gave no entropy");
}

uint32_t arc4random(void)
{
    uint32_t v;
    arc4random_buf(&v, sizeof v);
    return v;
}

/* Uniform in [0, bound): rejects the values below 2^32 mod bound, which would make the
 * small residues more likely. */
uint32_t arc4random_uniform(uint32_t bound)
{
    uint32_t v, min;
    if (bound < 2) return 0;
    min = -bound % bound;
    do v = arc4random();
    while (v < min);
    return v % bound;
}
