/* clock.c - the guest's clock and entropy blocks in its meta page (clock.h). */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <x86intrin.h>

#include "clock.h"
#include "hyperlight.h"

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

hl_status hl_clock_start(hl_clock_src *c, const hl_vm *vm, int mode, char *err)
{
    uint8_t key[HL_CHACHA_KEY];
    size_t got = 0;
    while (got < sizeof key) {
        ssize_t n = getrandom(key + got, sizeof key - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return hl_errf(err, HL_ERR_SYSTEM, "getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    hl_chacha_init(&c->rng, key);
    explicit_bzero(key, sizeof key);
    hl_vm_tsc(vm, &c->tsc_hz, &c->tsc_offset);
    /* 10^9 * 2^32 / hz in 128 bits: below 2^64 for any TSC faster than 0.25 Hz */
    c->mult = c->tsc_hz ? (uint64_t)(((unsigned __int128)1000000000u << HL_CLOCK_SHIFT) / c->tsc_hz) : 0;
    c->mode = mode == HL_CLOCK_FROZEN              ? HL_CLOCK_MODE_FROZEN
              : mode == HL_CLOCK_OFF || !c->tsc_hz ? HL_CLOCK_MODE_OFF
                                                   : HL_CLOCK_MODE_REAL;
    c->start_ns = c->mode == HL_CLOCK_MODE_FROZEN ? HL_FROZEN_MONOTONIC_NS : now_ns(CLOCK_MONOTONIC);
    return HL_OK;
}

/* The guest's TSC and the host's two clocks at one instant: the host's TSC is read on both
 * sides of the clocks and the middle taken. */
static void sample(const hl_clock_src *c, struct hl_clock *k)
{
    uint64_t t0 = __rdtsc(), real = now_ns(CLOCK_REALTIME), mono = now_ns(CLOCK_MONOTONIC), t1 = __rdtsc();
    k->tsc = t0 + (t1 - t0) / 2 + (uint64_t)c->tsc_offset;
    k->realtime_ns = real;
    k->monotonic_ns = mono;
}

void hl_clock_write(hl_clock_src *c, struct hl_meta *meta)
{
    struct hl_clock k = { .mode = c->mode, .start_ns = c->start_ns, .shift = HL_CLOCK_SHIFT };
    struct hl_entropy e;
    uint32_t seq;
    if (c->mode == HL_CLOCK_MODE_REAL) {
        sample(c, &k);
        k.mult = c->mult;
        k.tsc_hz = c->tsc_hz;
    } else if (c->mode == HL_CLOCK_MODE_FROZEN) {
        k.realtime_ns = HL_FROZEN_REALTIME_NS;
        k.monotonic_ns = HL_FROZEN_MONOTONIC_NS;
    }
    do hl_chacha_fill(&c->rng, &e, sizeof e);
    while (e.epoch == 0);
    /* The vCPU is stopped, so no guest reads the block meanwhile; seq still tells a reader
     * on another vCPU (none today) that it is being written. */
    memcpy(&seq, &meta->clock.seq, sizeof seq);
    k.seq = (seq | 1) + 1;
    __atomic_store_n(&meta->clock.seq, seq | 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy((uint8_t *)&meta->clock + sizeof seq, (uint8_t *)&k + sizeof seq, sizeof k - sizeof seq);
    memcpy(&meta->entropy, &e, sizeof e);
    __atomic_store_n(&meta->clock.seq, k.seq, __ATOMIC_RELEASE);
    explicit_bzero(&e, sizeof e);
}
