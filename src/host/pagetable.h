/* pagetable.h - the guest's page tables (pagetable.c): build and walk. */
#ifndef HL_PAGETABLE_H
#define HL_PAGETABLE_H

#include <stddef.h>
#include "layout.h"
#include "x86_64.h"


/* Builds 4-level page tables mapping every region of lo with its permissions into mem
 * (guest-physical [0, mem_len)), starting at HL_PT_GPA; sets lo->pt_end. Identity map. */
hl_status hl_pt_build(hl_layout *lo, uint8_t *mem, size_t mem_len, char *err);
/* Page-table pages the regions of lo need. */
uint64_t hl_pt_pages_needed(const hl_layout *lo);
/* Walks the tables in mem for gva; returns the leaf PTE with the U/W/NX bits combined from
 * all levels (W only if every level has W; NX if any has NX), or 0 if not present. */
uint64_t hl_pt_walk(const uint8_t *mem, size_t mem_len, uint64_t gva);

#endif
