/* test_layout.c - unit tests for src/host/layout.c: regions, the two-slot split, the PEB,
 * hl_layout_find and hl_region_name. No VM.
 *
 * Build and run: make build/tests/unit/test_layout && build/tests/unit/test_layout */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

typedef struct seg_spec {
    uint64_t vaddr, memsz;
    uint32_t flags; /* HL_SEG_* */
} seg_spec;

/* What hl_elf_parse would produce for these segments (ascending, not sharing pages). */
static hl_elf make_elf(const seg_spec *s, int n, uint64_t entry)
{
    hl_elf e;
    bool seen_w = false;
    memset(&e, 0, sizeof e);
    e.entry = entry;
    e.abi_version = HL_ABI_VERSION;
    for (int i = 0; i < n; i++) {
        e.seg[i] = (hl_segment){ .vaddr = s[i].vaddr, .memsz = s[i].memsz, .flags = s[i].flags };
        if ((s[i].flags & HL_SEG_W) && !seen_w) {
            e.ro_end = HL_ALIGN_DOWN(s[i].vaddr, HL_PAGE);
            seen_w = true;
        }
    }
    e.nseg = n;
    e.end = HL_ALIGN_UP(s[n - 1].vaddr + s[n - 1].memsz, HL_PAGE);
    if (!seen_w) e.ro_end = e.end;
    return e;
}

static bool aligned(uint64_t x) { return (x & (HL_PAGE - 1)) == 0; }

/* Checks one configuration: the region list, the slot split, find, the PEB. */
static void check_layout(const char *name, const hl_elf *elf, hl_sizes sz)
{
    hl_layout lo;
    char err[HL_ERR_LEN] = "";
    hl_status st = hl_layout_build(&lo, elf, &sz, err);
    int n, bad = 0;

    CHECK_INT(st, HL_OK);
    if (st != HL_OK) {
        fprintf(stderr, "  [%s] hl_layout_build: %s\n", name, err);
        return;
    }
    n = lo.nregions;
    CHECK_INT(n, 1 + elf->nseg + 6);
    CHECK_INT(lo.sizes.heap, sz.heap);
    CHECK_INT(lo.sizes.scratch, sz.scratch);
    CHECK_INT(lo.sizes.input, sz.input);
    CHECK_INT(lo.sizes.output, sz.output);
    CHECK_INT(lo.entry, elf->entry);
    CHECK_INT(lo.ro_end, elf->ro_end);

    /* Sorted, page-aligned, non-empty, non-overlapping, inside [0x1000, total). */
    for (int i = 0; i < n; i++) {
        const hl_region *r = &lo.regions[i];
        if (!aligned(r->gpa) || !aligned(r->size) || r->size == 0 || r->gpa < HL_PEB_GPA ||
            r->gpa + r->size > lo.total || (i > 0 && r->gpa < lo.regions[i - 1].gpa + lo.regions[i - 1].size)) {
            bad++;
            fprintf(stderr, "  [%s] region %d (%s) at 0x%llx size 0x%llx: misplaced\n", name, i,
                    hl_region_name(r->kind), (unsigned long long)r->gpa, (unsigned long long)r->size);
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(lo.regions[n - 1].gpa + lo.regions[n - 1].size, lo.total);

    /* Kinds, permissions and addresses, region by region. */
    CHECK_INT(lo.regions[0].kind, HL_RGN_PEB);
    CHECK_INT(lo.regions[0].gpa, HL_PEB_GPA);
    CHECK_INT(lo.regions[0].size, HL_PAGE);
    CHECK_INT(lo.regions[0].perm, HL_PERM_R);
    for (int i = 0; i < elf->nseg; i++) {
        const hl_region *r = &lo.regions[1 + i];
        const hl_segment *s = &elf->seg[i];
        int kind = (s->flags & HL_SEG_X) ? HL_RGN_CODE : (s->flags & HL_SEG_W) ? HL_RGN_DATA : HL_RGN_RODATA;
        unsigned perm = HL_PERM_R | ((s->flags & HL_SEG_X) ? HL_PERM_X : 0) | ((s->flags & HL_SEG_W) ? HL_PERM_W : 0);
        CHECK_INT(r->kind, kind);
        CHECK_INT(r->perm, perm);
        CHECK_INT(r->gpa, HL_ALIGN_DOWN(s->vaddr, HL_PAGE));
        CHECK_INT(r->gpa + r->size, HL_ALIGN_UP(s->vaddr + s->memsz, HL_PAGE));
    }
    {
        static const int kinds[6] = { HL_RGN_META, HL_RGN_HEAP, HL_RGN_GUARD, HL_RGN_STACK, HL_RGN_INPUT, HL_RGN_OUTPUT };
        static const unsigned perms[6] = {
            HL_PERM_R | HL_PERM_W, HL_PERM_R | HL_PERM_W, 0, HL_PERM_R | HL_PERM_W, HL_PERM_R, HL_PERM_R | HL_PERM_W
        };
        const hl_gpa gpas[6] = { lo.meta, lo.heap, lo.guard, lo.stack, lo.input, lo.output };
        const uint64_t sizes[6] = { HL_PAGE, sz.heap, HL_PAGE, sz.scratch, sz.input, sz.output };
        hl_gpa at = elf->end;
        for (int k = 0; k < 6; k++) {
            const hl_region *r = &lo.regions[1 + elf->nseg + k];
            CHECK_INT(r->kind, kinds[k]);
            CHECK_INT(r->perm, perms[k]);
            CHECK_INT(r->gpa, at);
            CHECK_INT(gpas[k], at);
            CHECK_INT(r->size, sizes[k]);
            at += sizes[k];
        }
        CHECK_INT(lo.total, at);
    }

    /* Slot split: slot 0 = [0, ro_end) is read-only, everything writable is in slot 1. */
    CHECK(aligned(lo.ro_end));
    CHECK(lo.ro_end >= HL_IMAGE_BASE && lo.ro_end < lo.total);
    CHECK(lo.pt_end > HL_PT_GPA && lo.pt_end <= HL_PEB_GPA && aligned(lo.pt_end));
    CHECK_INT(lo.pt_end, HL_PT_GPA + hl_pt_pages_needed(&lo) * HL_PAGE);
    bad = 0;
    for (int i = 0; i < n; i++) {
        const hl_region *r = &lo.regions[i];
        if ((r->perm & HL_PERM_W) && r->gpa < lo.ro_end) bad++;
        if (r->gpa < lo.ro_end && ((r->perm & HL_PERM_W) || r->gpa + r->size > lo.ro_end)) bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(lo.meta >= lo.ro_end);

    /* hl_layout_find: start, last byte and one past each region. */
    CHECK(hl_layout_find(&lo, 0) == NULL);
    CHECK(hl_layout_find(&lo, HL_PEB_GPA - 1) == NULL);
    CHECK(hl_layout_find(&lo, HL_PT_GPA) == NULL);
    CHECK(hl_layout_find(&lo, HL_PEB_GPA - 1) == NULL);
    CHECK(hl_layout_find(&lo, HL_PEB_GPA + HL_PAGE - 1)->kind == HL_RGN_PEB);
    CHECK(hl_layout_find(&lo, lo.total) == NULL);
    CHECK(hl_layout_find(&lo, UINT64_MAX) == NULL);
    CHECK(hl_layout_find(&lo, UINT64_MAX - HL_PAGE) == NULL);
    bad = 0;
    for (int i = 0; i < n; i++) {
        const hl_region *r = &lo.regions[i];
        const hl_region *next = i + 1 < n && lo.regions[i + 1].gpa == r->gpa + r->size ? &lo.regions[i + 1] : NULL;
        if (hl_layout_find(&lo, r->gpa) != r) bad++;
        if (hl_layout_find(&lo, r->gpa + r->size / 2) != r) bad++;
        if (hl_layout_find(&lo, r->gpa + r->size - 1) != r) bad++;
        if (hl_layout_find(&lo, r->gpa + r->size) != next) bad++;
        if (i > 0 && lo.regions[i - 1].gpa + lo.regions[i - 1].size < r->gpa && hl_layout_find(&lo, r->gpa - 1) != NULL)
            bad++;
    }
    CHECK_INT(bad, 0);
    CHECK(hl_layout_find(&lo, lo.guard) != NULL && hl_layout_find(&lo, lo.guard)->kind == HL_RGN_GUARD);
    CHECK(hl_layout_find(&lo, lo.entry) != NULL && hl_layout_find(&lo, lo.entry)->kind == HL_RGN_CODE);

    /* PEB, without and with kvm_pvm. Garbage first: every byte must be written. */
    for (int pvm = 0; pvm < 2; pvm++) {
        struct hl_peb peb;
        memset(&peb, 0xee, sizeof peb);
        hl_layout_peb(&lo, pvm, &peb);
        CHECK_INT(peb.magic, HL_PEB_MAGIC);
        CHECK_INT(peb.magic, 0x4250484c);
        CHECK_INT(peb.abi_version, HL_ABI_VERSION);
        CHECK_INT(peb.flags, pvm ? HL_PEB_FLAG_PVM : 0);
        CHECK_INT(peb.meta_gpa, lo.meta);
        CHECK_INT(peb.heap_gpa, lo.heap);
        CHECK_INT(peb.heap_size, sz.heap);
        CHECK_INT(peb.stack_gpa, lo.stack);
        CHECK_INT(peb.stack_size, sz.scratch);
        CHECK_INT(peb.input_gpa, lo.input);
        CHECK_INT(peb.input_size, sz.input);
        CHECK_INT(peb.output_gpa, lo.output);
        CHECK_INT(peb.output_size, sz.output);
        CHECK_INT(peb.init_data_gpa, 0);
        CHECK_INT(peb.init_data_size, 0);
        CHECK_INT(peb.nfiles, 0);
        /* The stack's guard page is right below it, unmapped. */
        CHECK(hl_layout_find(&lo, peb.stack_gpa - 1) && hl_layout_find(&lo, peb.stack_gpa - 1)->perm == 0);
        /* The PEB fits its page and the meta page holds struct hl_meta. */
        CHECK(sizeof peb <= HL_PAGE);
        CHECK(sizeof(struct hl_meta) <= HL_PAGE);
    }
}

static const seg_spec DEMO[] = {
    { 0x200000, 0x53ea, HL_SEG_R | HL_SEG_X },
    { 0x206000, 0xf0c, HL_SEG_R },
    { 0x207000, 0x38b4, HL_SEG_R | HL_SEG_W },
};

int main(void)
{
    const hl_sizes dflt = {
        .heap = HL_HEAP_DEFAULT, .scratch = HL_SCRATCH_DEFAULT, .input = HL_BUFFER_DEFAULT, .output = HL_BUFFER_DEFAULT
    };
    const hl_sizes min = {
        .heap = HL_HEAP_MIN, .scratch = HL_SCRATCH_MIN, .input = HL_BUFFER_MIN, .output = HL_BUFFER_MIN
    };
    const hl_sizes max = {
        .heap = HL_HEAP_MAX, .scratch = HL_SCRATCH_MAX, .input = HL_BUFFER_MAX, .output = HL_BUFFER_MAX
    };
    hl_elf demo = make_elf(DEMO, 3, 0x200000);

    check_layout("demo, default sizes", &demo, dflt);
    check_layout("demo, minimum sizes", &demo, min);
    check_layout("demo, maximum sizes", &demo, max);
    {
        static const seg_spec s[] = { { 0x200000, 0x1000, HL_SEG_R | HL_SEG_X } };
        hl_elf e = make_elf(s, 1, 0x200000);
        check_layout("one code segment", &e, dflt);
    }
    {
        static const seg_spec s[] = { { 0x200000, 0x1800, HL_SEG_R | HL_SEG_X }, { 0x203000, 0x100, HL_SEG_R } };
        hl_elf e = make_elf(s, 2, 0x200100);
        check_layout("code and rodata, no data", &e, min);
    }
    {
        /* Gaps between segments; data starting mid-page. */
        static const seg_spec s[] = { { 0x200000, 0x1000, HL_SEG_R | HL_SEG_X },
                                      { 0x300000, 0x1000, HL_SEG_R },
                                      { 0x400800, 0x1000, HL_SEG_R | HL_SEG_W },
                                      { 0x500000, 0x3000, HL_SEG_R | HL_SEG_W } };
        hl_elf e = make_elf(s, 4, 0x200000);
        CHECK_INT(e.ro_end, 0x400000);
        check_layout("4 segments with gaps", &e, dflt);
    }
    {
        seg_spec s[HL_ELF_MAX_SEGS];
        for (int i = 0; i < HL_ELF_MAX_SEGS; i++)
            s[i] = (seg_spec){ 0x200000 + (uint64_t)i * 0x2000, 0x1000,
                               i < 4   ? HL_SEG_R | HL_SEG_X
                               : i < 9 ? HL_SEG_R
                                       : HL_SEG_R | HL_SEG_W };
        hl_elf e = make_elf(s, HL_ELF_MAX_SEGS, 0x202000);
        check_layout("16 segments", &e, dflt);
    }

    /* Too much memory for the page-table area. */
    {
        hl_layout lo;
        char err[HL_ERR_LEN] = "";
        hl_sizes big = {
            .heap = 1024 * MiB, .scratch = 1024 * MiB, .input = HL_BUFFER_DEFAULT, .output = HL_BUFFER_DEFAULT
        };
        CHECK_INT(hl_layout_build(&lo, &demo, &big, err), HL_ERR_INVALID_ARG);
        CHECK_HAS(err, "page-table pages");
        CHECK_HAS(err, "guest memory of 2");
        big.heap = 2048 * MiB; /* one size alone beyond what any layout allows */
        CHECK_INT(hl_layout_build(&lo, &demo, &big, err), HL_ERR_INVALID_ARG);
        CHECK_STR(err, "memory sizes must be page multiples of at most 1 GiB each");
    }
    /* Sizes whose sum wraps around 2^64 must be refused, not laid out in a wrapped space
     * (the configuration setters cap sizes, so only a direct caller can pass these). */
    {
        hl_layout lo;
        char err[HL_ERR_LEN] = "";
        hl_sizes wrap = dflt;
        wrap.heap = 0 - (demo.end + HL_PAGE); /* heap ends exactly at 2^64: guard at 0 */
        CHECK(hl_layout_build(&lo, &demo, &wrap, err) != HL_OK);
        wrap = dflt;
        CHECK_INT(hl_layout_build(&lo, &demo, &wrap, err), HL_OK);
        wrap.output = 0 - lo.output + 0x100000; /* lo.total would wrap to 1 MiB */
        CHECK(hl_layout_build(&lo, &demo, &wrap, err) != HL_OK);
        wrap = dflt;
        CHECK_INT(hl_layout_build(&lo, &demo, &wrap, err), HL_OK);
        wrap.heap = 0 - lo.heap + HL_PAGE; /* the guard page would land at 0x1000 */
        CHECK(hl_layout_build(&lo, &demo, &wrap, err) != HL_OK);
    }

    /* Region names. */
    CHECK_STR(hl_region_name(HL_RGN_PEB), "PEB");
    CHECK_STR(hl_region_name(HL_RGN_CODE), "code");
    CHECK_STR(hl_region_name(HL_RGN_RODATA), "read-only data");
    CHECK_STR(hl_region_name(HL_RGN_DATA), "data");
    CHECK_STR(hl_region_name(HL_RGN_META), "meta");
    CHECK_STR(hl_region_name(HL_RGN_HEAP), "heap");
    CHECK_STR(hl_region_name(HL_RGN_GUARD), "stack guard");
    CHECK_STR(hl_region_name(HL_RGN_STACK), "stack");
    CHECK_STR(hl_region_name(HL_RGN_INPUT), "input buffer");
    CHECK_STR(hl_region_name(HL_RGN_OUTPUT), "output buffer");
    CHECK_STR(hl_region_name(HL_RGN_INIT), "init data");
    CHECK_STR(hl_region_name(HL_RGN_FILE), "mapped file");
    CHECK_STR(hl_region_name(HL_RGN_FILE + 1), "?");
    CHECK_STR(hl_region_name(-1), "?");
    CHECK_STR(hl_region_name(INT_MAX), "?");
    CHECK_STR(hl_region_name(INT_MIN), "?");
    return check_exit("test_layout");
}
