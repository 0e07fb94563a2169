/* snapfile.h - the snapshot file format (docs/snapshots.md), private to snapfile.c (the
 * header, its checks, checksums, the page walk), snapfile_save.c and snapfile_load.c.
 *
 * All integers are little-endian (the library is x86-64 only); every field has a fixed size.
 * A file is one header page, the function tables (metadata), zeros to the next page, and the
 * memory image: guest-physical [0, total), its zero pages holes. */
#ifndef HL_SNAPFILE_H
#define HL_SNAPFILE_H

#include <stdarg.h>

#include "elfload.h"
#include "error.h"
#include "image.h"
#include "io.h"
#include "layout.h"
#include "pagetable.h"
#include "snapshot.h"
#include "vm.h"
#include "wire.h"

#define SNAP_FORMAT 1u
#define SNAP_HEADER 4096u                               /* the header page; the metadata follows it */
#define SNAP_REGIONS 40                                 /* region slots in the header */
#define SNAP_FILES 8                                    /* mapped-file slots in the header */
#define SNAP_LABEL 48                                   /* bytes of a mapped file's label slot (NUL-terminated) */
#define SNAP_MAX_HOSTFNS 4096                           /* host functions a snapshot file may record */
#define SNAP_FN_MAX (1 + HL_MAX_NAME + 2 + HL_MAX_ARGS) /* bytes of one encoded function */
#define SNAP_FN_MIN 4                                   /* ... and the fewest: a one-byte name, no parameters */

struct snap_region {
    uint32_t kind, perm;
    uint64_t gpa, size;
};

struct snap_file {
    uint64_t gpa, size;
    char label[SNAP_LABEL];
};

struct snap_header {
    char magic[8];       /*    0: HL_SNAPSHOT_MAGIC */
    uint32_t format;     /*    8: SNAP_FORMAT */
    uint32_t abi;        /*   12: HL_ABI_VERSION */
    uint64_t meta_end;   /*   16: header + metadata length (metadata = [4096, meta_end)) */
    uint64_t mem_offset; /*   24: file offset of guest page 0 = meta_end rounded up to a page */
    uint64_t mem_length; /*   32: = total */
    uint64_t generation; /*   40 */
    uint64_t heap_size, scratch_size, input_size, output_size, init_size; /* 48 */
    uint64_t ro_end, total, end, pt_end, entry;                           /* 88 */
    uint64_t meta, heap, guard, stack, input, output, init;               /* 128 */
    uint32_t nregions;                                                    /*  184 */
    uint32_t nguestfns;                                                   /*  188 */
    uint32_t nhostfns;                                                    /*  192 */
    uint32_t nfiles;                                                      /*  196 */
    uint32_t flags;                                                       /*  200: 0 */
    uint32_t zero;                                                        /*  204: 0 */
    struct snap_file files[SNAP_FILES];                                   /*  208: unused slots are zero */
    struct snap_region regions[SNAP_REGIONS];                             /*  720: unused slots are zero */
    uint8_t cpu[sizeof(hl_cpu_state)];                                    /* 1680: kvm_regs, kvm_sregs, kvm_fpu */
    uint64_t meta_sum;                                                    /* 2552: hl_checksum of the metadata */
    uint64_t mem_sum;                         /* 2560: hl_checksum of the memory image [0, total) */
    uint8_t reserved[SNAP_HEADER - 2568 - 8]; /* zero */
    uint64_t header_sum;                      /* 4088: hl_checksum of bytes [0, 4088) */
};
_Static_assert(sizeof(struct snap_header) == SNAP_HEADER, "header is one page");
_Static_assert(offsetof(struct snap_header, nregions) == 184, "nregions offset");
_Static_assert(offsetof(struct snap_header, files) == 208, "files offset");
_Static_assert(offsetof(struct snap_header, regions) == 720, "regions offset");
_Static_assert(offsetof(struct snap_header, cpu) == 1680, "cpu offset");
_Static_assert(offsetof(struct snap_header, meta_sum) == 2552, "meta_sum offset");
_Static_assert(offsetof(struct snap_header, header_sum) == 4088, "header_sum offset");
/* These are part of the file format: a change needs a new format version. */
_Static_assert(sizeof(hl_cpu_state) == 872, "hl_cpu_state");
/* The header describes layouts with at most SNAP_FILES mapped files (fewer than a sandbox may
 * map: snapshot files refuse sandboxes with mapped files, check_savable in snapfile_save.c,
 * and keep the file slots for the format's sake), so at most this many regions. */
#define SNAP_MAX_REGIONS (HL_MAX_REGIONS - HL_MAX_FILES + SNAP_FILES)
_Static_assert(SNAP_MAX_REGIONS <= SNAP_REGIONS, "region table");
_Static_assert(SNAP_FILES <= HL_MAX_FILES && HL_FILE_LABEL_MAX + 1 <= SNAP_LABEL, "mapped files");
_Static_assert(sizeof HL_SNAPSHOT_MAGIC - 1 == sizeof((struct snap_header *)0)->magic, "magic");

/* Sets the calling thread's error to "snapshot file 'PATH': ..." and returns st. */
hl_status snap_fail(const char *path, hl_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether the n bytes at p are all zero. */
bool snap_all_zero(const void *p, size_t n);

/* Writes lo's layout (sizes, addresses, regions, mapped files) into h. */
void snap_put_layout(struct snap_header *h, const hl_layout *lo);
/* Checks the header of a file of size bytes (h holds its first min(size, 4096) bytes, the
 * rest zero), everything loading checks before it reads the function tables, in the order
 * of docs/snapshots.md; fills lo and cpu from it. HL_OK, or the thread's error set. */
hl_status snap_check_header(const char *path, const struct snap_header *h, uint64_t size, hl_layout *lo,
                            hl_cpu_state *cpu);

/* ---- checksums: hl_checksum in pieces, without reading holes ---- */
/* Continues hash h over n pages at p; *nonzero says whether any byte was nonzero. */
uint64_t snap_sum_pages(uint64_t h, const uint8_t *p, uint64_t n, bool *nonzero);
/* Continues hash h over n zero pages (one multiplication per page run). */
uint64_t snap_sum_zero_pages(uint64_t h, uint64_t n);

/* Calls fn for runs of the n pages whose first is at file offset off (page-aligned) of fd,
 * page numbers counted from `page`, in order, each run marked as a hole (reads as zeros) or
 * as data. Filesystems may report zeros as data, never data as a hole; without SEEK_DATA
 * everything is data. Stops at the first run fn fails. */
typedef hl_status (*snap_run_fn)(void *ctx, uint64_t page, uint64_t n, bool hole);
hl_status snap_walk_file(int fd, uint64_t off, uint64_t page, uint64_t n, snap_run_fn fn, void *ctx);

#endif
