/* pagetable.c - builds and walks the guest's 4-level x86-64 page tables (identity map).
 *
 * Every entry has U=1 at every level: kvm_pvm runs supervisor code natively only then
 * (docs/architecture.md); without CR4.SMEP/SMAP the U bit changes nothing else. A and D are
 * preset so the CPU never needs to write the tables. Permissions are set on the leaf entries
 * only: intermediate entries are P|W|U|A. Intel SDM Vol. 3A §4.5. */
#include <string.h>

#include "error.h"
#include "pagetable.h"

#define LEVEL_SHIFT(l) (12 + 9 * (l)) /* l = 0 (PT) .. 3 (PML4) */
#define IDX(va, l) (((va) >> LEVEL_SHIFT(l)) & 511)
#define TABLE_FLAGS (X86_PTE_P | X86_PTE_W | X86_PTE_U | X86_PTE_A)

/* Number of distinct tables at `level` (0 = PT) that the mapped regions touch. Regions are
 * sorted by address and disjoint, so a table shared with the previous region counts once. */
static uint64_t count_spans(const hl_layout *lo, int level)
{
    uint64_t n = 0, next = 0; /* next: first span index not yet counted */
    for (int i = 0; i < lo->nregions; i++) {
        const hl_region *r = &lo->regions[i];
        if (!r->perm || !r->size) continue;
        uint64_t first = r->gpa >> LEVEL_SHIFT(level + 1);
        uint64_t last = (r->gpa + r->size - 1) >> LEVEL_SHIFT(level + 1);
        if (first < next) first = next;
        if (first <= last) {
            n += last - first + 1;
            next = last + 1;
        }
    }
    return n;
}

uint64_t hl_pt_pages_needed(const hl_layout *lo)
{
    return 1 + count_spans(lo, 2) + count_spans(lo, 1) + count_spans(lo, 0);
}

hl_status hl_pt_build(hl_layout *lo, uint8_t *mem, size_t mem_len, char *err)
{
    hl_gpa next = HL_PT_GPA + HL_PAGE; /* PML4 at HL_PT_GPA */
    hl_gpa limit = HL_PT_GPA + hl_pt_pages_needed(lo) * HL_PAGE;
    if (limit > HL_PEB_GPA || limit > mem_len)
        return hl_errf(err, HL_ERR_INVALID_ARG, "page tables do not fit below the PEB");
    memset(mem + HL_PT_GPA, 0, limit - HL_PT_GPA);
    for (int i = 0; i < lo->nregions; i++) {
        const hl_region *r = &lo->regions[i];
        if (!r->perm) continue;
        uint64_t leaf = X86_PTE_P | X86_PTE_U | X86_PTE_A | X86_PTE_D;
        if (r->perm & HL_PERM_W) leaf |= X86_PTE_W;
        if (!(r->perm & HL_PERM_X)) leaf |= X86_PTE_NX;
        for (hl_gpa va = r->gpa; va < r->gpa + r->size; va += HL_PAGE) {
            hl_gpa table = HL_PT_GPA;
            for (int l = 3; l > 0; l--) {
                uint64_t *e = (uint64_t *)(mem + table) + IDX(va, l);
                if (!(*e & X86_PTE_P)) {
                    if (next >= limit) return hl_errf(err, HL_ERR_INVALID_ARG, "page-table space exhausted");
                    *e = next | TABLE_FLAGS;
                    next += HL_PAGE;
                }
                table = *e & X86_PTE_ADDR;
            }
            ((uint64_t *)(mem + table))[IDX(va, 0)] = va | leaf;
        }
    }
    lo->pt_end = limit;
    return HL_OK;
}

uint64_t hl_pt_walk(const uint8_t *mem, size_t mem_len, uint64_t gva)
{
    uint64_t table = HL_PT_GPA, e = 0, w = X86_PTE_W, u = X86_PTE_U, nx = 0;
    for (int l = 3; l >= 0; l--) {
        if (table + HL_PAGE > mem_len) return 0;
        memcpy(&e, mem + table + IDX(gva, l) * 8, 8);
        if (!(e & X86_PTE_P)) return 0;
        w &= e;
        u &= e;
        nx |= e & X86_PTE_NX;
        table = e & X86_PTE_ADDR;
    }
    return (e & ~(X86_PTE_W | X86_PTE_U | X86_PTE_NX)) | w | u | nx;
}
