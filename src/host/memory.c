/* memory.c - guest memory images: immutable files of pages, composed page-wise into
 * mappings.
 *
 * An image says, for every guest page, which file holds it. A sandbox made from an ELF has
 * one file (a sealed memfd). A snapshot stores only the pages that changed since its parent
 * in a new sparse file and shares every other page with its ancestors: its image is its
 * parent's with those pages redirected. Every file is laid out like guest-physical memory
 * (page p at file offset `offset + p * 4096`), so neighbouring pages of one file always
 * merge into one extent and one mmap. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "image.h"

hl_memfile *hl_memfile_new(int fd, uint64_t offset)
{
    hl_memfile *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->fd = fd;
    f->offset = offset;
    f->refs = 1;
    return f;
}

void hl_memfile_ref(hl_memfile *f) { __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED); }

void hl_memfile_unref(hl_memfile *f)
{
    if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(f->fd);
        free(f);
    }
}

void hl_image_free(hl_image *img)
{
    for (int i = 0; i < img->n; i++) hl_memfile_unref(img->ext[i].file);
    free(img->ext);
    img->ext = NULL;
    img->n = 0;
}

hl_status hl_image_single(hl_image *img, hl_memfile *file, uint64_t pages)
{
    img->ext = malloc(sizeof *img->ext);
    if (!img->ext) return HL_ERR_NO_MEMORY;
    img->n = 1;
    img->ext[0] = (hl_extent){ .first = 0, .count = pages, .file = file };
    hl_memfile_ref(file);
    return HL_OK;
}

static bool bit(const uint64_t *bm, uint64_t i) { return bm[i / 64] >> (i % 64) & 1; }

static hl_status push_extent(hl_image *img, int *cap, uint64_t first, uint64_t count, hl_memfile *file)
{
    if (img->n && img->ext[img->n - 1].file == file && img->ext[img->n - 1].first + img->ext[img->n - 1].count == first) {
        img->ext[img->n - 1].count += count;
        return HL_OK;
    }
    if (img->n == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        hl_extent *e = realloc(img->ext, (size_t)ncap * sizeof *e);
        if (!e) return HL_ERR_NO_MEMORY;
        img->ext = e;
        *cap = ncap;
    }
    img->ext[img->n++] = (hl_extent){ .first = first, .count = count, .file = file };
    hl_memfile_ref(file);
    return HL_OK;
}

hl_status hl_image_derive(const hl_image *parent, const uint64_t *dirty, uint64_t dirty_first, uint64_t dirty_count,
                          hl_memfile *file, hl_image *out)
{
    int cap = 0;
    hl_status st = HL_OK;
    out->n = 0;
    out->ext = NULL;
    for (int i = 0; i < parent->n && st == HL_OK; i++) {
        const hl_extent *e = &parent->ext[i];
        uint64_t p = e->first, end = e->first + e->count;
        while (p < end && st == HL_OK) {
            /* the run of pages from p that are all dirty, or all clean */
            bool d = p >= dirty_first && p - dirty_first < dirty_count && bit(dirty, p - dirty_first);
            uint64_t q = p + 1;
            while (q < end && (q >= dirty_first && q - dirty_first < dirty_count && bit(dirty, q - dirty_first)) == d)
                q++;
            st = push_extent(out, &cap, p, q - p, d ? file : e->file);
            p = q;
        }
    }
    if (st != HL_OK) hl_image_free(out);
    return st;
}

hl_status hl_image_map(const hl_image *img, uint8_t *base, uint64_t first, uint64_t count, int prot, int flags, char *err)
{
    uint64_t end = first + count;
    for (int i = 0; i < img->n; i++) {
        const hl_extent *e = &img->ext[i];
        uint64_t a = e->first > first ? e->first : first;
        uint64_t b = e->first + e->count < end ? e->first + e->count : end;
        if (a >= b) continue;
        if (mmap(base + a * HL_PAGE, (b - a) * HL_PAGE, prot, flags | MAP_FIXED, e->file->fd,
                 (off_t)(e->file->offset + a * HL_PAGE)) == MAP_FAILED)
            return hl_errf(err, HL_ERR_NO_MEMORY, "mapping guest pages 0x%llx..0x%llx: %s", (unsigned long long)a,
                           (unsigned long long)b, strerror(errno));
    }
    return HL_OK;
}

uint8_t *hl_reserve(uint64_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

uint64_t hl_checksum(const uint8_t *p, uint64_t len)
{
    /* FNV-1a over 64-bit words (then bytes): fast, and good enough to detect corruption
     * and tell images apart; not a cryptographic digest. */
    uint64_t h = HL_FNV_BASIS, i = 0, w;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * HL_FNV_PRIME;
    }
    for (; i < len; i++) h = (h ^ p[i]) * HL_FNV_PRIME;
    return h;
}
