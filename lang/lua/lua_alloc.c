/* lua_alloc.c - the Lua guest's allocator: small blocks (the bulk of Lua's: strings, tables,
 * closures, call frames) come from per-size free lists carved out of 64 KiB slabs, larger
 * ones from malloc. picolibc's malloc keeps one address-ordered free list that every malloc
 * and free walks, so freeing a deep recursion's 200,000 call frames took over a minute; here
 * a small malloc or free is a list push or pop. Lua passes the old size of every block, so
 * the blocks need no header. Slabs are never given back (the heap of a sandbox only grows). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lua_guest.h"

#define GRAIN 16u                  /* size classes are multiples of 16 bytes */
#define SMALL_MAX 512u             /* larger blocks go to malloc */
#define NCLASS (SMALL_MAX / GRAIN) /* 32 classes: 16, 32, ..., 512 */
#define SLAB (64u << 10)

struct freeblock {
    struct freeblock *next;
};

static struct freeblock *free_list[NCLASS];
static char *slab_cur, *slab_end;

static unsigned class_of(size_t n) { return (unsigned)((n + GRAIN - 1) / GRAIN) - 1; }

static void *small_alloc(unsigned c)
{
    size_t size = (size_t)(c + 1) * GRAIN;
    struct freeblock *b = free_list[c];
    if (b) {
        free_list[c] = b->next;
        return b;
    }
    if ((size_t)(slab_end - slab_cur) < size) {
        /* The rest of the old slab is lost (at most 511 bytes of 64 KiB). */
        char *s = malloc(SLAB);
        if (!s) return NULL;
        slab_cur = s, slab_end = s + SLAB;
    }
    slab_cur += size;
    return slab_cur - size;
}

static void small_free(void *p, unsigned c)
{
    struct freeblock *b = p;
    b->next = free_list[c];
    free_list[c] = b;
}

void *hl_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    void *np;
    (void)ud;
    if (!ptr) osize = 0; /* then osize is the kind of object, not a size */
    if (nsize == 0) {
        if (ptr && osize <= SMALL_MAX) small_free(ptr, class_of(osize));
        else free(ptr);
        return NULL;
    }
    if (ptr && osize > SMALL_MAX && nsize > SMALL_MAX) return realloc(ptr, nsize);
    if (ptr && osize <= SMALL_MAX && nsize <= SMALL_MAX && class_of(osize) == class_of(nsize)) return ptr;
    np = nsize <= SMALL_MAX ? small_alloc(class_of(nsize)) : malloc(nsize);
    if (!np) return NULL; /* Lua's "not enough memory"; the old block stays valid */
    if (ptr) {
        memcpy(np, ptr, osize < nsize ? osize : nsize);
        if (osize <= SMALL_MAX) small_free(ptr, class_of(osize));
        else free(ptr);
    }
    return np;
}
