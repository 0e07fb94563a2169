/* alloc_work.h - the allocator benchmark's workloads (bench/alloc.c), compiled both into the
 * guests (bench/guests/alloc_bench.c, linked with each allocator) and into the host benchmark
 * (with glibc's malloc), so every allocator runs the same source.
 *
 *   alloc_mix(ops, seed)   what an interpreter's heap sees: ALLOC_SLOTS live blocks; each
 *                          operation replaces a random one: 89% a small block of 16-512 bytes,
 *                          10% a realloc growing the block by half (up to 64 KiB), 1% a large
 *                          block of 64 KiB - 1 MiB
 *   alloc_build(n)         Lua's pattern: n small objects (16-96 bytes) are built, then all
 *                          freed in a scattered order (a collector's sweep)
 * Each touches the first and last byte of every block (the cost measured is the allocator's,
 * not the program's) and returns a checksum of what it read back, 0 on an allocation failure. */
#ifndef BENCH_ALLOC_WORK_H
#define BENCH_ALLOC_WORK_H

#include <stdint.h>
#include <stdlib.h>

#define ALLOC_SLOTS 4096u

static uint64_t alloc_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t alloc_touch(unsigned char *p, size_t n, uint64_t x)
{
    p[0] = (unsigned char)x;
    p[n - 1] = (unsigned char)(x >> 8);
    return p[0] + p[n - 1];
}

__attribute__((noipa)) static uint64_t alloc_mix(uint32_t ops, uint32_t seed)
{
    static unsigned char *slot[ALLOC_SLOTS];
    static size_t len[ALLOC_SLOTS];
    uint64_t r = 0x9e3779b97f4a7c15ull ^ seed, sum = 0;
    int ok = 1;
    for (uint32_t i = 0; i < ops && ok; i++) {
        uint64_t x = alloc_rand(&r);
        uint32_t k = (uint32_t)(x % 100), s = (uint32_t)(x >> 20) % ALLOC_SLOTS;
        size_t n;
        if (k < 10 && slot[s] && len[s] < 65536) { /* realloc growth (else a small block) */
            n = len[s] + len[s] / 2 + 16;
            unsigned char *q = realloc(slot[s], n);
            if (!q) break;
            slot[s] = q;
        } else {
            n = k == 10 ? 65536 + (size_t)(x >> 32) % (960u << 10) : 16 + (size_t)(x >> 32) % 497;
            free(slot[s]);
            slot[s] = malloc(n);
            ok = slot[s] != NULL;
            if (!ok) break;
        }
        len[s] = n;
        sum += alloc_touch(slot[s], n, x);
    }
    for (uint32_t s = 0; s < ALLOC_SLOTS; s++) {
        free(slot[s]);
        slot[s] = NULL;
    }
    return ok ? sum : 0;
}

__attribute__((noipa)) static uint64_t alloc_build(uint32_t n)
{
    unsigned char **obj = malloc((size_t)n * sizeof *obj);
    uint64_t r = 0x2545f4914f6cdd1dull, sum = 0;
    if (!obj) return 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t sz = 16 + (size_t)(alloc_rand(&r) % 81);
        if (!(obj[i] = malloc(sz))) {
            for (uint32_t j = 0; j < i; j++) free(obj[j]);
            free(obj);
            return 0;
        }
        sum += alloc_touch(obj[i], sz, r);
    }
    /* the sweep: a stride coprime with n visits every object once, far from the last */
    uint32_t stride = 7919;
    for (;;) {
        uint32_t a = n, b = stride;
        while (b) {
            uint32_t t = a % b;
            a = b;
            b = t;
        }
        if (a == 1) break;
        stride++;
    }
    for (uint64_t i = 0, j = 0; i < n; i++, j = (j + stride) % n) free(obj[j]);
    free(obj);
    return sum;
}

#endif
