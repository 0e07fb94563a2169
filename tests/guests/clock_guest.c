/* clock_guest.c - guest for the clock and entropy tests (tests/integration/test_clock.c):
 * each function reads one clock, sleep or entropy source of the SDK (src/guest/time.c) and
 * returns what it got, or fails with errno as its code. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "hyperlight_guest.h"

static int fail_errno(const char *what) { return hl_error(errno, "%s: errno %d", what, errno); }

/* Now(clock id): clock_gettime in ns. */
static int now(const hl_value *a, int n, hl_value *r)
{
    struct timespec ts;
    (void)n;
    if (clock_gettime((clockid_t)a[0].v.u32, &ts) < 0) return fail_errno("clock_gettime");
    *r = hl_i64((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return 0;
}

/* Res(clock id): clock_getres in ns. */
static int res(const hl_value *a, int n, hl_value *r)
{
    struct timespec ts;
    (void)n;
    if (clock_getres((clockid_t)a[0].v.u32, &ts) < 0) return fail_errno("clock_getres");
    *r = hl_i64((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return 0;
}

static int rdtsc_fn(const hl_value *a, int n, hl_value *r)
{
    uint32_t lo, hi;
    (void)a, (void)n;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    *r = hl_u64((uint64_t)hi << 32 | lo);
    return 0;
}

/* MonoLoop(count): reads CLOCK_MONOTONIC count times; fails if one reading is not above the
 * one before; returns the last minus the first (ns). */
static int mono_loop(const hl_value *a, int n, hl_value *r)
{
    struct timespec ts;
    int64_t first = 0, prev = 0;
    (void)n;
    for (uint32_t i = 0; i < a[0].v.u32; i++) {
        int64_t t;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) return fail_errno("clock_gettime");
        t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        if (i == 0) first = t;
        else if (t <= prev) return hl_error(1, "reading %u: %lld after %lld", i, (long long)t, (long long)prev);
        prev = t;
    }
    *r = hl_i64(prev - first);
    return 0;
}

/* Agree(): time(), gettimeofday and clock_gettime(CLOCK_REALTIME), each read between two
 * readings of the next: fails if one lies outside; returns time(). */
static int agree(const hl_value *a, int n, hl_value *r)
{
    struct timespec t0, t1;
    struct timeval tv;
    time_t t;
    int64_t ns0, ns1, us;
    (void)a, (void)n;
    if (clock_gettime(CLOCK_REALTIME, &t0) < 0) return fail_errno("clock_gettime");
    if (gettimeofday(&tv, NULL) < 0) return fail_errno("gettimeofday");
    t = time(NULL);
    if (t == (time_t)-1) return fail_errno("time");
    if (clock_gettime(CLOCK_REALTIME, &t1) < 0) return fail_errno("clock_gettime");
    ns0 = (int64_t)t0.tv_sec * 1000000000 + t0.tv_nsec;
    ns1 = (int64_t)t1.tv_sec * 1000000000 + t1.tv_nsec;
    us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    if (us < ns0 / 1000 || us > ns1 / 1000)
        return hl_error(1, "gettimeofday %lld us outside [%lld, %lld] ns", (long long)us, (long long)ns0,
                        (long long)ns1);
    if (t < t0.tv_sec || t > t1.tv_sec)
        return hl_error(2, "time %lld outside [%lld, %lld] s", (long long)t, (long long)t0.tv_sec, (long long)t1.tv_sec);
    *r = hl_i64((int64_t)t);
    return 0;
}

/* TimeOf(): time(NULL), -1 included. */
static int time_of(const hl_value *a, int n, hl_value *r)
{
    (void)a, (void)n;
    *r = hl_i64((int64_t)time(NULL));
    return 0;
}

/* Clock(): clock() as a signed number ((clock_t)-1 gives -1), after checking that times()
 * agrees with it. */
static int clock_fn(const hl_value *a, int n, hl_value *r)
{
    struct tms t;
    clock_t c = clock(), e = times(&t), c2 = clock();
    (void)a, (void)n;
    if (c != (clock_t)-1 && (t.tms_utime < c || t.tms_utime > c2 || e != t.tms_utime))
        return hl_error(1, "times() %lld (utime %lld) outside clock() [%lld, %lld]", (long long)e,
                        (long long)t.tms_utime, (long long)c, (long long)c2);
    *r = hl_i64(c == (clock_t)-1 ? -1 : (int64_t)c);
    return 0;
}

/* Entropy(n): n bytes of getentropy. */
static int entropy_fn(const hl_value *a, int n, hl_value *r)
{
    static uint8_t buf[512];
    uint32_t len = a[0].v.u32;
    (void)n;
    if (len > sizeof buf) return hl_error(1, "at most %zu bytes", sizeof buf);
    if (getentropy(buf, len) < 0) return fail_errno("getentropy");
    *r = hl_bytes(buf, len);
    return 0;
}

/* Random(): 16 bytes of arc4random_buf, then 4 of arc4random, then arc4random_uniform(10). */
static int random_fn(const hl_value *a, int n, hl_value *r)
{
    static uint8_t buf[24];
    uint32_t v, u = arc4random_uniform(10);
    (void)a, (void)n;
    arc4random_buf(buf, 16);
    v = arc4random();
    memcpy(buf + 16, &v, 4);
    memcpy(buf + 20, &u, 4);
    if (u >= 10) return hl_error(1, "arc4random_uniform(10) gave %u", u);
    *r = hl_bytes(buf, sizeof buf);
    return 0;
}

/* Sleep(sec, nsec): nanosleep. */
static int sleep_fn(const hl_value *a, int n, hl_value *r)
{
    struct timespec ts = { .tv_sec = (time_t)a[0].v.i64, .tv_nsec = (long)a[1].v.i64 };
    (void)n;
    if (nanosleep(&ts, NULL) < 0) return fail_errno("nanosleep");
    *r = hl_i32(0);
    return 0;
}

/* USleep(us): usleep. */
static int usleep_fn(const hl_value *a, int n, hl_value *r)
{
    (void)n;
    if (usleep((useconds_t)a[0].v.u32) < 0) return fail_errno("usleep");
    *r = hl_i32(0);
    return 0;
}

/* SleepAbs(clock id, ms): clock_nanosleep on that clock with TIMER_ABSTIME to ms past its
 * now; returns the nanoseconds it moved, or fails with the function's result as code. */
static int sleep_abs(const hl_value *a, int n, hl_value *r)
{
    struct timespec t0, until, t1;
    int e;
    (void)n;
    if (clock_gettime((clockid_t)a[0].v.u32, &t0) < 0) return fail_errno("clock_gettime");
    until = t0;
    until.tv_nsec += (long)a[1].v.u32 * 1000000;
    until.tv_sec += until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    if ((e = clock_nanosleep((clockid_t)a[0].v.u32, TIMER_ABSTIME, &until, NULL)) != 0)
        return hl_error(e, "clock_nanosleep: %d", e);
    if (clock_gettime((clockid_t)a[0].v.u32, &t1) < 0) return fail_errno("clock_gettime");
    *r = hl_i64((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec));
    return 0;
}

/* SetTime(): clock_settime(CLOCK_REALTIME) of the epoch. */
static int set_time(const hl_value *a, int n, hl_value *r)
{
    struct timespec t = { 0 };
    (void)a, (void)n;
    if (clock_settime(CLOCK_REALTIME, &t) < 0) return fail_errno("clock_settime");
    *r = hl_i32(0);
    return 0;
}

void hl_guest_main(void)
{
    /* used before any snapshot: a restored generator must still give fresh bytes */
    uint8_t warm[16];
    (void)getentropy(warm, sizeof warm);
    (void)arc4random();
    hl_guest_register("Now", now, HL_I64, 1, HL_U32);
    hl_guest_register("Res", res, HL_I64, 1, HL_U32);
    hl_guest_register("Rdtsc", rdtsc_fn, HL_U64, 0);
    hl_guest_register("MonoLoop", mono_loop, HL_I64, 1, HL_U32);
    hl_guest_register("Agree", agree, HL_I64, 0);
    hl_guest_register("TimeOf", time_of, HL_I64, 0);
    hl_guest_register("Clock", clock_fn, HL_I64, 0);
    hl_guest_register("Entropy", entropy_fn, HL_BYTES, 1, HL_U32);
    hl_guest_register("Random", random_fn, HL_BYTES, 0);
    hl_guest_register("Sleep", sleep_fn, HL_I32, 2, HL_I64, HL_I64);
    hl_guest_register("USleep", usleep_fn, HL_I32, 1, HL_U32);
    hl_guest_register("SleepAbs", sleep_abs, HL_I64, 2, HL_U32, HL_U32);
    hl_guest_register("SetTime", set_time, HL_I32, 0);
}
