/* bench_guest.c - the guest of hyperlight-bench (bench/hyperlight-bench.c).
 *
 *   Empty() -> i32              returns 0 at once: the cost of a call and nothing else
 *   Echo(string) -> string      returns its argument
 *   HostRoundTrip(u32 n) -> u32 calls host function Nop() -> i32 n times; returns the sum
 *   Compute(u32 n) -> u64       bench_compute() of compute.h, n iterations */
#include <stdlib.h>

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
        int rc = hl_call_host("Nop", HL_I32, &v, NULL, 0);
        if (rc != 0) return hl_error(rc, "Nop failed: %s", hl_host_error());
        sum += (uint32_t)v.v.i32;
    }
    *ret = hl_u32(sum);
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

void hl_guest_main(void)
{
    hl_guest_register("Empty", empty, HL_I32, 0);
    hl_guest_register("Echo", echo, HL_STRING, 1, HL_STRING);
    hl_guest_register("HostRoundTrip", host_round_trip, HL_U32, 1, HL_U32);
    hl_guest_register("Compute", compute, HL_U64, 1, HL_U32);
}
