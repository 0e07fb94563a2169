/* snapfile_bytes.h - a snapshot file's header as bytes, for the fuzzer (fuzz_snapfile.c) and
 * the seed generator (make_snapfile_seeds.c): field offsets (struct snap_header in
 * src/host/snapfile.c, docs/snapshots.md), little-endian accessors, and the checksums. */
#ifndef HL_SNAPFILE_BYTES_H
#define HL_SNAPFILE_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h" /* hl_checksum */

#define OFF_FORMAT 8
#define OFF_ABI 12
#define OFF_META_END 16
#define OFF_MEM_OFFSET 24
#define OFF_MEM_LENGTH 32
#define OFF_HEAP_SIZE 48
#define OFF_TOTAL 96
#define OFF_END 104
#define OFF_PT_END 112
#define OFF_NREGIONS 184
#define OFF_NGUEST 188
#define OFF_NHOST 192
#define OFF_NFILES 196
#define OFF_FILES 208 /* 8 x { u64 gpa, u64 size, char label[48] } */
#define FILE_SLOT 64
#define OFF_REGIONS 720 /* 40 x { u32 kind, u32 perm, u64 gpa, u64 size } */
#define REGION_SLOT 24
#define OFF_CPU 1680
#define OFF_META_SUM 2552
#define OFF_MEM_SUM 2560
#define OFF_HEADER_SUM 4088
#define HEADER 4096

static inline uint64_t get64(const uint8_t *b, size_t off)
{
    uint64_t v;
    memcpy(&v, b + off, 8);
    return v;
}
static inline uint32_t get32(const uint8_t *b, size_t off)
{
    uint32_t v;
    memcpy(&v, b + off, 4);
    return v;
}
static inline void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static inline void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }

/* Recomputes the three checksums of the file b[0, len) (at least a header) where the
 * lengths its header claims fit in len; the header's own always. */
static inline void snapfile_reseal(uint8_t *b, size_t len)
{
    uint64_t meta_end = get64(b, OFF_META_END), mem_off = get64(b, OFF_MEM_OFFSET), mem_len = get64(b, OFF_MEM_LENGTH);
    if (meta_end >= HEADER && meta_end <= len) put64(b, OFF_META_SUM, hl_checksum(b + HEADER, meta_end - HEADER));
    if (mem_off <= len && mem_len <= len - mem_off) put64(b, OFF_MEM_SUM, hl_checksum(b + mem_off, mem_len));
    put64(b, OFF_HEADER_SUM, hl_checksum(b, OFF_HEADER_SUM));
}

#endif
