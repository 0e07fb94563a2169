/* alloc_bench.c - the guest of the allocator benchmark (hyperlight-bench --alloc, bench/alloc.c).
 * Built three times: with the SDK's allocator, and with picolibc's nano-malloc and full malloc
 * linked in front of it (bench/build-malloc-variants.sh, the Makefile).
 *
 *   AllocMix(u32 ops, u32 seed) -> u64   alloc_mix() of alloc_work.h
 *   AllocBuild(u32 n) -> u64             alloc_build() of alloc_work.h */
#include "../alloc_work.h"
#include "hyperlight_guest.h"

static int mix(const hl_value *args, int argc, hl_value *ret)
{
    uint64_t sum = alloc_mix(args[0].v.u32, args[1].v.u32);
    if (!sum) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "AllocMix: out of memory");
    *ret = hl_u64(sum);
    return 0;
}

static int build(const hl_value *args, int argc, hl_value *ret)
{
    uint64_t sum = alloc_build(args[0].v.u32);
    if (!sum) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "AllocBuild: out of memory");
    *ret = hl_u64(sum);
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("AllocMix", mix, HL_U64, 2, HL_U32, HL_U32);
    hl_guest_register("AllocBuild", build, HL_U64, 1, HL_U32);
}
