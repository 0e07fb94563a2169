/* layout.h - the guest's memory layout (layout.c): where each region goes. */
#ifndef HL_LAYOUT_H
#define HL_LAYOUT_H

#include <stdbool.h>
#include "base.h"
#include "elfload.h"

enum hl_region_kind {
    HL_RGN_PEB,
    HL_RGN_CODE,
    HL_RGN_RODATA,
    HL_RGN_DATA,
    HL_RGN_META,
    HL_RGN_HEAP,
    HL_RGN_GUARD,
    HL_RGN_STACK,
    HL_RGN_INPUT,
    HL_RGN_OUTPUT,
    HL_RGN_INIT,
    HL_RGN_FILE,
};
#define HL_PERM_R 1u
#define HL_PERM_W 2u
#define HL_PERM_X 4u

typedef struct hl_region {
    int kind;
    hl_gpa gpa;
    uint64_t size; /* bytes, page multiple */
    unsigned perm; /* HL_PERM_*, 0 = not mapped */
} hl_region;

#define HL_MAX_REGIONS (HL_ELF_MAX_SEGS + 12 + HL_MAX_FILES)

typedef struct hl_sizes {
    uint64_t heap, scratch, input, output;
    uint64_t init; /* init data, bytes (its region is page-rounded) */
    int nfiles;
    uint64_t file_size[HL_MAX_FILES]; /* bytes of each mapped file */
    char file_label[HL_MAX_FILES][HL_FILE_LABEL_MAX + 1];
} hl_sizes;

typedef struct hl_layout {
    hl_sizes sizes;
    hl_gpa ro_end; /* read-only slot [HL_PEB_GPA, ro_end), writable slot [ro_end, total) */
    hl_gpa total;  /* end of the memory image */
    hl_gpa end;    /* end of everything mapped: mapped files follow the image */
    hl_gpa pt_end; /* page tables occupy [HL_PT_GPA, pt_end) */
    hl_gpa entry;
    hl_gpa meta, heap, guard, stack, input, output, init;
    hl_gpa file_gpa[HL_MAX_FILES]; /* each in a memslot of its own (HL_SLOT_FILE0 + i) */
    int nregions;
    hl_region regions[HL_MAX_REGIONS];
} hl_layout;

hl_status hl_layout_build(hl_layout *lo, const hl_elf *elf, const hl_sizes *sizes, char *err);
const hl_region *hl_layout_find(const hl_layout *lo, hl_gpa gpa);
const char *hl_region_name(int kind);
/* Writes the PEB for lo into p (a struct hl_peb). */
void hl_layout_peb(const hl_layout *lo, bool pvm, struct hl_peb *peb);

#endif
