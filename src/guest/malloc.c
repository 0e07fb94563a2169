/* malloc.c - the guest heap: size-class caches for small blocks over a two-level segregated
 * fit (TLSF) allocator, every operation O(1); replaces picolibc's nano-malloc (why and how
 * much faster: docs/guest.md, "The heap").
 *
 * Every block starts with one header word, and the caller's pointer follows it, 16-aligned.
 * Block sizes are multiples of 16 (at least 32) and count the header, so blocks start at
 * 8 mod 16. The header holds the size, three flags and a magic number that free() checks.
 * A free block also holds its list links after the header and its size in its last word
 * (the footer), which the next block finds through its PREV_FREE flag to merge backwards.
 *
 * TLSF (M. Masmano et al., "TLSF: a new dynamic memory allocator for real-time systems",
 * ECRTS 2004): free blocks sit in lists by size, FL = power of two, SL = 16 steps within it,
 * and two bitmaps find the first non-empty list that fits in a few instructions.
 * Small blocks (up to SMALL_MAX bytes) are not merged when freed: they go on a LIFO cache of
 * their exact size, from which malloc takes them back; they stay BUSY for TLSF, so a
 * neighbour never merges with them. When TLSF cannot serve a request, the caches are
 * emptied into it (merging) once before the heap grows through sbrk.
 *
 * Nothing is zeroed but by calloc. Single-threaded, like the guest. The host unit test
 * (tests/unit/test_malloc.c) compiles this file with the public names renamed. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hyperlight_guest.h"

#define HDR 8u                /* the header word */
#define MIN_BLOCK 32u         /* header, two links, footer */
#define SMALL_MAX 1024u       /* largest block size with a cache */
#define GROW_MIN (64u * 1024) /* sbrk step */
#define MAX_REQUEST ((size_t)1 << 46)

#define F_BUSY 1u      /* allocated, or in a small cache */
#define F_PREV_FREE 2u /* the block before is free in TLSF: its footer is valid */
#define F_CACHED 4u    /* in a small cache */
#define MAGIC ((uint64_t)0xA11Cu << 48)
#define MAGIC_MASK ((uint64_t)0xFFFFu << 48)
#define SIZE_MASK (~MAGIC_MASK & ~(uint64_t)15)

#define SL_LOG 4
#define SL_COUNT (1u << SL_LOG)
#define LINEAR 256u /* below it the lists are exact: one per 16 bytes */
#define FL_COUNT 41 /* up to sizes of 2^48 */

typedef struct blk {
    uint64_t head;
    struct blk *next, *prev; /* only while free in TLSF (next also while cached) */
} blk;

static struct {
    uint64_t fl_map;
    uint32_t sl_map[FL_COUNT];
    blk *lists[FL_COUNT][SL_COUNT];
    blk *cache[SMALL_MAX / 16 + 1];
    size_t cached;                        /* bytes in the caches */
    size_t free_bytes, nfree, heap_bytes; /* free in TLSF, free blocks, from sbrk: for mallinfo */
    uintptr_t lo, hi;                     /* every block lies in [lo, hi) */
    uintptr_t top;                        /* end of the last region; its sentinel header is at top - HDR */
} H;

static size_t bsize(const blk *b) { return (size_t)(b->head & SIZE_MASK); }
static blk *next_phys(const blk *b) { return (blk *)((char *)b + bsize(b)); }
static void set_footer(blk *b) { *(uint64_t *)((char *)b + bsize(b) - HDR) = bsize(b); }
static void set_size(blk *b, size_t s) { b->head = (b->head & ~SIZE_MASK) | s; }

__attribute__((noreturn, cold)) static void corrupt(const char *what, const void *p)
{
    hl_abort(HL_GUEST_ERR_HEAP, "malloc: %s (%p)", what, p);
}

/* ---- TLSF lists ---- */
static void mapping(size_t s, unsigned *fl, unsigned *sl)
{
    if (s < LINEAR) {
        *fl = 0;
        *sl = (unsigned)(s >> 4);
    } else {
        unsigned f = 63u - (unsigned)__builtin_clzll(s);
        *fl = f - 7;
        *sl = (unsigned)(s >> (f - SL_LOG)) & (SL_COUNT - 1);
    }
}

static void insert(blk *b)
{
    unsigned fl, sl;
    mapping(bsize(b), &fl, &sl);
    blk *h = H.lists[fl][sl];
    b->next = h;
    b->prev = NULL;
    if (h) h->prev = b;
    H.lists[fl][sl] = b;
    H.free_bytes += bsize(b);
    H.nfree++;
    H.fl_map |= 1ull << fl;
    H.sl_map[fl] |= 1u << sl;
}

static void unlink_free(blk *b)
{
    unsigned fl, sl;
    mapping(bsize(b), &fl, &sl);
    H.free_bytes -= bsize(b);
    H.nfree--;
    if (b->next) b->next->prev = b->prev;
    if (b->prev) b->prev->next = b->next;
    else if (H.lists[fl][sl] == b) {
        H.lists[fl][sl] = b->next;
        if (!b->next) {
            H.sl_map[fl] &= ~(1u << sl);
            if (!H.sl_map[fl]) H.fl_map &= ~(1ull << fl);
        }
    } else corrupt("free list corrupted", b);
}

/* The first free block of at least s bytes, or NULL. Rounding s up to the next list's
 * start makes every block of the list found fit: no walk. */
static blk *find(size_t s)
{
    if (s >= LINEAR) s += ((size_t)1 << (63 - __builtin_clzll(s) - SL_LOG)) - 1;
    unsigned fl, sl;
    mapping(s, &fl, &sl);
    if (fl >= FL_COUNT) return NULL;
    uint32_t slm = H.sl_map[fl] & (~0u << sl);
    if (!slm) {
        uint64_t flm = fl + 1 < FL_COUNT ? H.fl_map & (~0ull << (fl + 1)) : 0;
        if (!flm) return NULL;
        fl = (unsigned)__builtin_ctzll(flm);
        slm = H.sl_map[fl];
    }
    return H.lists[fl][__builtin_ctz(slm)];
}

/* ---- blocks ---- */

/* Gives the busy block b back to TLSF, merged with free neighbours. */
static void release(blk *b)
{
    size_t s = bsize(b);
    if (b->head & F_PREV_FREE) {
        uint64_t ps = *(uint64_t *)((char *)b - HDR);
        blk *p = (blk *)((char *)b - ps);
        if ((uintptr_t)p < H.lo || (p->head & (MAGIC_MASK | F_BUSY)) != MAGIC || bsize(p) != ps)
            corrupt("heap corrupted before block", (char *)b + HDR);
        unlink_free(p);
        s += ps;
        b = p;
    }
    blk *n = (blk *)((char *)b + s);
    if (!(n->head & F_BUSY)) {
        if ((n->head & MAGIC_MASK) != MAGIC) corrupt("heap corrupted after block", (char *)b + HDR);
        unlink_free(n);
        s += bsize(n);
    }
    b->head = MAGIC | s; /* the block before is busy: free neighbours are always merged */
    set_footer(b);
    next_phys(b)->head |= F_PREV_FREE;
    insert(b);
}

/* Cuts the busy block b to s bytes; the rest, if it can be a block, goes back to TLSF. */
static void trim(blk *b, size_t s)
{
    size_t have = bsize(b);
    if (have - s < MIN_BLOCK) return;
    set_size(b, s);
    blk *t = next_phys(b);
    t->head = MAGIC | (have - s) | F_BUSY;
    release(t);
}

static blk *take(size_t s)
{
    blk *b = find(s);
    if (!b) return NULL;
    unlink_free(b);
    b->head |= F_BUSY;
    next_phys(b)->head &= ~(uint64_t)F_PREV_FREE;
    trim(b, s);
    return b;
}

/* Empties the small caches into TLSF. */
static void flush(void)
{
    for (size_t c = 0; c <= SMALL_MAX / 16; c++) {
        for (blk *b = H.cache[c], *nx; b; b = nx) {
            nx = b->next;
            b->head &= ~(uint64_t)F_CACHED;
            release(b);
        }
        H.cache[c] = NULL;
    }
    H.cached = 0;
}

/* Adds at least s bytes from sbrk to TLSF; false when sbrk has none. */
static int grow(size_t s)
{
    size_t want = (s + HDR + MIN_BLOCK + GROW_MIN - 1) & ~(size_t)(GROW_MIN - 1);
    char *p = sbrk((ptrdiff_t)want);
    if (p == (char *)-1) { /* the last bytes: as few as the free block at the top needs */
        blk *end = (blk *)(H.top - HDR);
        size_t top = H.top && (end->head & F_PREV_FREE) ? *(uint64_t *)((char *)end - HDR) : 0;
        want = ((top < s ? s - top : 0) + HDR + MIN_BLOCK + 15) & ~(size_t)15;
        p = sbrk((ptrdiff_t)want);
        if (p == (char *)-1) return 0;
    }
    blk *b;
    uintptr_t end = ((uintptr_t)p + want) & ~(uintptr_t)15;
    if (H.top && (uintptr_t)p == H.top) { /* contiguous: the old sentinel heads the new block */
        b = (blk *)(H.top - HDR);
        b->head = MAGIC | (end - H.top) | F_BUSY | (b->head & F_PREV_FREE);
    } else {
        uintptr_t a = (((uintptr_t)p + HDR + 15) & ~(uintptr_t)15) - HDR;
        if (end - a < MIN_BLOCK + HDR) return 0;
        b = (blk *)a;
        b->head = MAGIC | (end - HDR - a) | F_BUSY;
        if (!H.lo || a < H.lo) H.lo = a;
    }
    ((blk *)(end - HDR))->head = MAGIC | F_BUSY; /* sentinel: size 0, never merged */
    H.top = end;
    H.heap_bytes += want;
    if (end > H.hi) H.hi = end;
    release(b);
    return 1;
}

/* The free block that ends the last region, when it has s bytes: find() skips a block of
 * the same list as s, which right after grow() is often the one that fits. */
static blk *take_top(size_t s)
{
    blk *end = (blk *)(H.top - HDR);
    if (!H.top || !(end->head & F_PREV_FREE)) return NULL;
    blk *b = (blk *)((char *)end - *(uint64_t *)((char *)end - HDR));
    if (bsize(b) < s) return NULL;
    unlink_free(b);
    b->head |= F_BUSY;
    end->head &= ~(uint64_t)F_PREV_FREE;
    trim(b, s);
    return b;
}

/* A busy block of at least s bytes, or NULL with errno ENOMEM. */
static blk *get(size_t s)
{
    blk *b;
    if ((b = take(s)) || (b = take_top(s))) return b;
    if (H.cached) {
        flush();
        if ((b = take(s)) || (b = take_top(s))) return b;
    }
    if (grow(s) && ((b = take(s)) || (b = take_top(s)))) return b;
    errno = ENOMEM;
    return NULL;
}

static size_t block_for(size_t n)
{
    size_t s = (n + HDR + 15) & ~(size_t)15;
    return s < MIN_BLOCK ? MIN_BLOCK : s;
}

/* The block of a pointer the caller passes in; aborts the guest when it is none. */
static blk *owner(void *p, const char *fn)
{
    blk *b = (blk *)((char *)p - HDR);
    if (((uintptr_t)p & 15) || (uintptr_t)b < H.lo || (uintptr_t)p >= H.hi)
        hl_abort(HL_GUEST_ERR_HEAP, "%s(%p): not a pointer from malloc", fn, p);
    uint64_t h = b->head;
    if ((h & MAGIC_MASK) != MAGIC || (uintptr_t)b + bsize(b) > H.hi || bsize(b) < MIN_BLOCK)
        hl_abort(HL_GUEST_ERR_HEAP, "%s(%p): not a block from malloc, or its header was overwritten", fn, p);
    if ((h & (F_BUSY | F_CACHED)) != F_BUSY)
        hl_abort(HL_GUEST_ERR_HEAP, "%s(%p): block already freed (double free?)", fn, p);
    return b;
}

/* ---- the C library's interface ---- */
void *malloc(size_t n)
{
    if (n > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    size_t s = block_for(n);
    blk *b;
    if (s <= SMALL_MAX && (b = H.cache[s >> 4])) {
        H.cache[s >> 4] = b->next;
        H.cached -= s;
        b->head &= ~(uint64_t)F_CACHED;
        return (char *)b + HDR;
    }
    b = get(s);
    return b ? (char *)b + HDR : NULL;
}

void free(void *p)
{
    if (!p) return;
    blk *b = owner(p, "free");
    size_t s = bsize(b);
    if (s <= SMALL_MAX) {
        b->head |= F_CACHED;
        b->next = H.cache[s >> 4];
        H.cache[s >> 4] = b;
        H.cached += s;
        return;
    }
    release(b);
}

void *calloc(size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p) return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    blk *b = owner(p, "realloc");
    if (n > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    size_t s = block_for(n), have = bsize(b);
    if (s > have) { /* grow into a free successor, in place */
        blk *nx = next_phys(b);
        if (!(nx->head & F_BUSY) && have + bsize(nx) >= s) {
            unlink_free(nx);
            set_size(b, have + bsize(nx));
            next_phys(b)->head &= ~(uint64_t)F_PREV_FREE;
            have = bsize(b);
        }
    }
    if (s <= have) {
        trim(b, s);
        return p;
    }
    void *q = malloc(n);
    if (!q) return NULL;
    memcpy(q, p, have - HDR);
    free(p);
    return q;
}

void *reallocarray(void *p, size_t nmemb, size_t size)
{
    size_t n;
    if (__builtin_mul_overflow(nmemb, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    if (align & (align - 1)) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 16) return malloc(n);
    if (n > MAX_REQUEST || align > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    size_t s = block_for(n);
    blk *b = get(s + align + MIN_BLOCK);
    if (!b) return NULL;
    uintptr_t p = (uintptr_t)b + HDR;
    if (p & (align - 1)) { /* free a leading block of at least MIN_BLOCK bytes */
        uintptr_t a = (p + MIN_BLOCK + align - 1) & ~(uintptr_t)(align - 1);
        blk *nb = (blk *)(a - HDR);
        size_t lead = (uintptr_t)nb - (uintptr_t)b;
        nb->head = MAGIC | (bsize(b) - lead) | F_BUSY;
        set_size(b, lead);
        release(b);
        b = nb;
    }
    trim(b, s);
    return (char *)b + HDR;
}

void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    int saved = errno;
    void *p = memalign(align, n);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

void *valloc(size_t n) { return memalign(4096, n); }

void *pvalloc(size_t n)
{
    if (n > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    return memalign(4096, (n + 4095) & ~(size_t)4095);
}

size_t malloc_usable_size(void *p) { return p ? bsize(owner(p, "malloc_usable_size")) - HDR : 0; }

void cfree(void *p) { free(p); }

/* What the heap holds now; fields this allocator has no such thing for are zero. */
struct mallinfo mallinfo(void)
{
    struct mallinfo m = { 0 };
    blk *end = (blk *)(H.top - HDR);
    m.arena = H.heap_bytes;
    m.ordblks = H.nfree;
    m.fordblks = H.free_bytes + H.cached;
    m.uordblks = m.arena - m.fordblks;
    if (H.top && (end->head & F_PREV_FREE)) m.keepcost = *(uint64_t *)((char *)end - HDR);
    return m;
}

void malloc_stats(void)
{
    struct mallinfo m = mallinfo();
    fprintf(stderr, "heap: %zu bytes from sbrk, %zu in use, %zu free (%zu cached small)\n", (size_t)m.arena,
            (size_t)m.uordblks, (size_t)m.fordblks, H.cached);
}

/* No tunables, and nothing is given back to sbrk. */
int mallopt(int param, int value)
{
    (void)param, (void)value;
    return 0;
}

int malloc_trim(size_t pad)
{
    (void)pad;
    return 0;
}
