/* image.h - memory images (memory.c): guest memory as extents of files. */
#ifndef HL_IMAGE_H
#define HL_IMAGE_H

#include <stdint.h>
#include "base.h"
#include "hyperlight.h"

typedef struct hl_memfile {
    int fd;
    uint64_t offset; /* file offset of guest page 0 */
    int refs;
} hl_memfile;

typedef struct hl_extent {
    uint64_t first, count; /* guest pages */
    hl_memfile *file;
} hl_extent;

typedef struct hl_image {
    int n;
    hl_extent *ext; /* sorted, covering every page of the guest's memory */
} hl_image;

hl_memfile *hl_memfile_new(int fd, uint64_t offset);
void hl_memfile_ref(hl_memfile *f);
void hl_memfile_unref(hl_memfile *f);
hl_status hl_image_single(hl_image *img, hl_memfile *file, uint64_t pages);
/* out = parent, with the pages dirty_first + i for each bit i set in dirty taken from file. */
hl_status hl_image_derive(const hl_image *parent, const uint64_t *dirty, uint64_t dirty_first, uint64_t dirty_count,
                          hl_memfile *file, hl_image *out);
/* Maps pages [first, first + count) of img at base + first * page (MAP_FIXED | flags). */
hl_status hl_image_map(const hl_image *img, uint8_t *base, uint64_t first, uint64_t count, int prot, int flags,
                       char *err);
void hl_image_free(hl_image *img);
/* Reserves an inaccessible range of address space for mappings to replace. */
uint8_t *hl_reserve(uint64_t bytes);
uint64_t hl_checksum(const uint8_t *p, uint64_t len);
/* ---- checksums ----
 * hl_checksum (memory.c) is FNV-1a over 64-bit words, with these constants;
 * snapshot files (src/host/snapfile.c) compute it piecewise. */
#define HL_FNV_BASIS 0xcbf29ce484222325ull
#define HL_FNV_PRIME 0x100000001b3ull


#endif
