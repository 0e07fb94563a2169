/* alloc_stress.h - a randomized stress of a malloc family with exact content checks, shared by
 * the allocator's host unit test (tests/unit/test_malloc.c) and the sandbox test's guest
 * (tests/guests/alloc_guest.c). Deterministic for a seed: the same operations in the same
 * order on every platform, so both sides expect the same results.
 *
 * AS_MALLOC, AS_FREE, AS_CALLOC, AS_REALLOC, AS_MEMALIGN and AS_USABLE name the functions
 * under test (default: the C library's). alloc_stress() returns the number of failed checks
 * and describes the first in as_first_failure. */
#ifndef HL_ALLOC_STRESS_H
#define HL_ALLOC_STRESS_H

#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AS_MALLOC
#define AS_MALLOC malloc
#define AS_FREE free
#define AS_CALLOC calloc
#define AS_REALLOC realloc
#define AS_MEMALIGN memalign
#define AS_USABLE malloc_usable_size
#endif

#define AS_SLOTS 512

typedef struct as_slot {
    uint8_t *p;
    size_t n;
    uint32_t tag; /* the fill pattern's seed */
} as_slot;

static char as_first_failure[160];
static as_slot as_slots[AS_SLOTS];

static uint64_t as_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint8_t as_byte(uint32_t tag, size_t i) { return (uint8_t)((tag * 2654435761u) >> 24 ^ (i * 131u) ^ (i >> 8)); }

static void as_fill(as_slot *s, size_t from)
{
    for (size_t i = from; i < s->n; i++) s->p[i] = as_byte(s->tag, i);
}

static int as_fail(int *fails, const char *what, size_t op, size_t n)
{
    if (!(*fails)++) snprintf(as_first_failure, sizeof as_first_failure, "op %zu: %s (n=%zu)", op, what, n);
    return 0;
}

/* Does slot s still hold its pattern in its first n bytes? */
static int as_intact(const as_slot *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s->p[i] != as_byte(s->tag, i)) return 0;
    return 1;
}

/* 70% up to 512 bytes, 25% up to 8 KiB, 5% up to 256 KiB (the interpreter mix of the
 * allocator benchmark, bench/alloc_work.h). */
static size_t as_size(uint64_t *r)
{
    uint64_t x = as_rand(r), k = x % 100;
    if (k < 70) return (size_t)(x >> 8) % 513;
    if (k < 95) return 513 + (size_t)(x >> 8) % 7680;
    return 8193 + (size_t)(x >> 8) % (256 * 1024 - 8192);
}

static void as_new(as_slot *s, uint64_t *r, size_t op, int *fails)
{
    size_t n = as_size(r), align = 16;
    unsigned how = (unsigned)(as_rand(r) % 8);
    s->n = n;
    s->tag = (uint32_t)as_rand(r);
    if (how == 0) {
        s->p = AS_CALLOC(1, n);
        for (size_t i = 0; s->p && i < n; i++)
            if (s->p[i]) {
                as_fail(fails, "calloc memory not zero", op, n);
                break;
            }
    } else if (how == 1) {
        align = (size_t)32 << (as_rand(r) % 8); /* 32 .. 4096 */
        s->p = AS_MEMALIGN(align, n);
    } else if (how == 2) {
        s->p = AS_REALLOC(NULL, n);
    } else {
        s->p = AS_MALLOC(n);
    }
    if (!s->p) {
        as_fail(fails, "allocation failed", op, n);
        s->n = 0;
        return;
    }
    if ((uintptr_t)s->p % align) as_fail(fails, "misaligned", op, n);
    if (AS_USABLE(s->p) < n) as_fail(fails, "usable size below request", op, n);
    as_fill(s, 0);
}

/* ops random operations on AS_SLOTS slots, then frees everything. */
static int alloc_stress(uint64_t seed, size_t ops)
{
    uint64_t r = seed | 1;
    int fails = 0;
    as_first_failure[0] = 0;
    memset(as_slots, 0, sizeof as_slots);
    for (size_t op = 0; op < ops; op++) {
        as_slot *s = &as_slots[as_rand(&r) % AS_SLOTS];
        if (!s->p) {
            as_new(s, &r, op, &fails);
            continue;
        }
        if (!as_intact(s, s->n)) as_fail(&fails, "content changed", op, s->n);
        if (as_rand(&r) % 2) {
            AS_FREE(s->p);
            s->p = NULL;
            continue;
        }
        size_t n = 1 + (as_rand(&r) % 4 ? s->n + (size_t)(as_rand(&r) % 2048) : as_size(&r));
        uint8_t *q = AS_REALLOC(s->p, n);
        if (!q) {
            as_fail(&fails, "realloc failed", op, n);
            continue;
        }
        s->p = q;
        if (!as_intact(s, n < s->n ? n : s->n)) as_fail(&fails, "realloc lost content", op, n);
        if ((uintptr_t)q % 16) as_fail(&fails, "realloc misaligned", op, n);
        size_t old = s->n;
        s->n = n;
        as_fill(s, n < old ? n : old);
    }
    for (size_t i = 0; i < AS_SLOTS; i++) {
        if (as_slots[i].p && !as_intact(&as_slots[i], as_slots[i].n))
            as_fail(&fails, "content changed at the end", ops, as_slots[i].n);
        AS_FREE(as_slots[i].p);
        as_slots[i].p = NULL;
    }
    return fails;
}

#endif
