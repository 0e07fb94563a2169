/* compute.h - the benchmark's compute loop, compiled both into the guest (bench_guest.c) and
 * into the host benchmark (calls.c) so the two run the same source.
 *
 * A xorshift64 generator drives read-modify-writes at pseudo-random indexes of a table of
 * BENCH_TABLE_WORDS u64 (32 KiB, fits L1/L2): every iteration depends on the previous one
 * through the generator and through the table, so the compiler can neither vectorise nor
 * shorten it, and the result is a checksum both sides must agree on. About 2-3 ns per
 * iteration on our machines. */
#ifndef BENCH_COMPUTE_H
#define BENCH_COMPUTE_H

#include <stdint.h>

#define BENCH_TABLE_WORDS 4096u /* power of two */

/* Pages of the guest's Dirty() arena: the most pages one call can dirty (call + restore rows
 * dirty 0, 1, 16 and 256 of them). Shared so the host's floor VM gets an arena as large. */
#define BENCH_DIRTY_MAX_PAGES 256u

/* noipa: no inlining or constant propagation, so host and guest get the same machine code. */
__attribute__((noipa)) static uint64_t bench_compute(uint64_t *tab, uint32_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;
    for (uint32_t i = 0; i < BENCH_TABLE_WORDS; i++) tab[i] = (uint64_t)i * 0xbf58476d1ce4e5b9ull;
    for (uint32_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t *p = &tab[(x ^ acc) & (BENCH_TABLE_WORDS - 1)];
        uint64_t v = (*p ^ x) * 0xff51afd7ed558ccdull;
        *p = v ^ (v >> 29);
        acc += *p >> 3;
    }
    return acc;
}

#endif
