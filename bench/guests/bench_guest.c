/* bench_guest.c - the guest of hyperlight-bench (bench/main.c).
 *
 *   Empty() -> i32              returns 0 at once: the cost of a call and nothing else
 *   Echo(string) -> string      returns its argument
 *   HostRoundTrip(u32 n) -> u32 calls host function Nop() -> i32 n times; returns the sum
 *   Compute(u32 n) -> u64       bench_compute() of compute.h, n iterations
 *   Dirty(u32 n) -> i32         writes one byte in each of n distinct pages of a static (.bss)
 *                               arena of BENCH_DIRTY_MAX_PAGES pages; returns n
 *   Spin() -> i32               calls host function Spinning() once (so the host knows the guest
 *                               runs), then spins forever without a single exit: only
 *                               hl_sandbox_interrupt (or a time limit) ends the call
 *   CallSlow() -> i32           calls host function Slow() -> i32, which polls
 *                               hl_host_call_cancelled until the call is interrupted
 *   ClockReads(u32 n) -> u64    n clock_gettime(CLOCK_MONOTONIC) reads (no exit); returns the
 *                               sum of their nanoseconds fields */
#include <stdlib.h>
#include <time.h>

#include "../compute.h"
#include "hyperlight_guest.h"

static int empty(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_i32(0);
    return 0;
}

static int echo(const hl_value *args, int argc, hl_value *ret)
{
    *ret = args[0];
    return 0;
}

static int host_round_trip(const hl_value *args, int argc, hl_value *ret)
{
    uint32_t n = args[0].v.u32, sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        hl_value v;
        int rc = hl_call_host("Nop", HL_I32, NULL, 0, &v);
        if (rc != 0) return hl_error(rc, "Nop failed: %s", hl_host_error());
        sum += (uint32_t)v.v.i32;
    }
    *ret = hl_u32(sum);
    return 0;
}

/* Page-aligned so that page i of the arena is exactly one guest page. In .bss: the guest's
 * snapshot has it all zero, and a page becomes private to a sandbox when first written. */
static uint8_t arena[BENCH_DIRTY_MAX_PAGES * 4096] __attribute__((aligned(4096)));

static int dirty(const hl_value *args, int argc, hl_value *ret)
{
    uint32_t n = args[0].v.u32;
    volatile uint8_t *p = arena;
    if (n > BENCH_DIRTY_MAX_PAGES) return hl_error(1, "Dirty: at most %u pages", BENCH_DIRTY_MAX_PAGES);
    for (uint32_t i = 0; i < n; i++) p[(size_t)i * 4096] = (uint8_t)(p[(size_t)i * 4096] + 1);
    *ret = hl_i32((int32_t)n);
    return 0;
}

static int spin(const hl_value *args, int argc, hl_value *ret)
{
    hl_value v;
    int rc = hl_call_host("Spinning", HL_I32, NULL, 0, &v);
    if (rc != 0) return hl_error(rc, "Spinning failed: %s", hl_host_error());
    for (;;) __asm__ volatile("" ::: "memory"); /* no exit, ever */
}

static int call_slow(const hl_value *args, int argc, hl_value *ret)
{
    hl_value v;
    int rc = hl_call_host("Slow", HL_I32, NULL, 0, &v);
    if (rc != 0) return hl_error(rc, "Slow failed: %s", hl_host_error());
    *ret = v;
    return 0;
}

static int compute(const hl_value *args, int argc, hl_value *ret)
{
    uint64_t *tab = malloc(BENCH_TABLE_WORDS * sizeof *tab);
    if (!tab) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    *ret = hl_u64(bench_compute(tab, args[0].v.u32));
    free(tab);
    return 0;
}

static int clock_reads(const hl_value *args, int argc, hl_value *ret)
{
    struct timespec ts;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < args[0].v.u32; i++) {
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) return hl_error(1, "clock_gettime failed");
        sum += (uint64_t)ts.tv_nsec;
    }
    *ret = hl_u64(sum);
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("Empty", empty, HL_I32, 0);
    hl_guest_register("Echo", echo, HL_STRING, 1, HL_STRING);
    hl_guest_register("HostRoundTrip", host_round_trip, HL_U32, 1, HL_U32);
    hl_guest_register("Compute", compute, HL_U64, 1, HL_U32);
    hl_guest_register("Dirty", dirty, HL_I32, 1, HL_U32);
    hl_guest_register("Spin", spin, HL_I32, 0);
    hl_guest_register("CallSlow", call_slow, HL_I32, 0);
    hl_guest_register("ClockReads", clock_reads, HL_U64, 1, HL_U32);
}
