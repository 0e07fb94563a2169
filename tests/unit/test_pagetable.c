/* test_pagetable.c - unit tests for src/host/pagetable.c (and the layout it maps), no VM.
 *
 * For a set of configurations (synthetic ELF images with 1..16 segments, sizes from the
 * minimum to beyond the configuration maximum, segments across 2 MiB boundaries, a heap
 * across the 1 GiB boundary) this builds the layout and the page tables and checks them
 * two ways:
 *   - every page from 0 to past the end of guest memory, plus a few far addresses, with
 *     hl_pt_walk and with this file's own 4-level walk: a page inside a mapped region maps to
 *     itself with exactly P|U|A|D, W iff the region has HL_PERM_W, NX iff it lacks HL_PERM_X;
 *     every other page (NULL page, page tables, gaps, stack guard, above lo.total) is absent;
 *   - the whole table tree, entry by entry: intermediate entries are exactly P|W|U|A and point
 *     at distinct pages inside [HL_PT_GPA, lo.pt_end); every leaf lies in a mapped region;
 *     the number of leaves is the number of mapped pages; the number of table pages is
 *     hl_pt_pages_needed() and (pt_end - HL_PT_GPA) / 4096.
 * The buffer is calloc'd (lo.total bytes; virtual memory only, pages are touched lazily) and
 * its low 4 MiB filled with garbage first, so stale bytes in the table area would show.
 *
 * Build and run: make build/tests/unit/test_pagetable && build/tests/unit/test_pagetable */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

#define TABLE_BITS (X86_PTE_P | X86_PTE_W | X86_PTE_U | X86_PTE_A)
#define LEAF_BITS (X86_PTE_P | X86_PTE_U | X86_PTE_A | X86_PTE_D)

/* ---- synthetic ELF images ------------------------------------------------------------- */

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
        e.seg[i] =
            (hl_segment){ .vaddr = s[i].vaddr, .memsz = s[i].memsz, .offset = 0, .filesz = 0, .flags = s[i].flags };
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

/* ---- the test's own view of the tables -------------------------------------------------- */

static int bad;         /* violations in the current configuration */
static const char *cur; /* its name */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    if (bad++ >= 10) return; /* print the first few only */
    fprintf(stderr, "  [%s] ", cur);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint64_t rd64(const uint8_t *mem, uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, mem + gpa, 8);
    return v;
}

/* Region of lo holding va (independent of hl_layout_find), or NULL. */
static const hl_region *region_of(const hl_layout *lo, uint64_t va)
{
    for (int i = 0; i < lo->nregions; i++)
        if (va >= lo->regions[i].gpa && va < lo->regions[i].gpa + lo->regions[i].size) return &lo->regions[i];
    return NULL;
}

/* The leaf entry a page at va must have, or 0 if it must not be mapped. */
static uint64_t expected_leaf(const hl_layout *lo, uint64_t va)
{
    const hl_region *r = region_of(lo, va);
    uint64_t e;
    if (!r || !r->perm) return 0;
    e = (va & X86_PTE_ADDR) | LEAF_BITS;
    if (r->perm & HL_PERM_W) e |= X86_PTE_W;
    if (!(r->perm & HL_PERM_X)) e |= X86_PTE_NX;
    return e;
}

static bool table_ok(const hl_layout *lo, uint64_t e)
{
    uint64_t a = e & X86_PTE_ADDR;
    return (e & ~X86_PTE_ADDR) == TABLE_BITS && a >= HL_PT_GPA && a < lo->pt_end;
}

/* Walks the 4 levels for va like the CPU does; checks every intermediate entry on the way.
 * Returns the leaf entry, or 0 if some level is not present. */
static uint64_t my_walk(const uint8_t *mem, const hl_layout *lo, uint64_t va)
{
    uint64_t table = HL_PT_GPA;
    for (int level = 3; level >= 0; level--) {
        uint64_t e = rd64(mem, table + ((va >> (12 + 9 * level)) & 511) * 8);
        if (!(e & X86_PTE_P)) return 0;
        if (level == 0) return e;
        if (!table_ok(lo, e)) {
            note("va 0x%llx: level-%d entry 0x%llx is not P|W|U|A into the table area", (unsigned long long)va, level,
                 (unsigned long long)e);
            return 0;
        }
        table = e & X86_PTE_ADDR;
    }
    return 0;
}

/* Enumerates the whole tree from the PML4. Counts table pages (each must be referenced once)
 * and leaves (each must be one the layout asks for). */
static void check_tree(const uint8_t *mem, const hl_layout *lo, uint64_t *tables, uint64_t *leaves)
{
    static bool used[HL_PT_MAX_PAGES];
    memset(used, 0, sizeof used);
    used[0] = true; /* the PML4 */
    *tables = 1;
    *leaves = 0;
    for (uint64_t i4 = 0; i4 < 512; i4++) {
        uint64_t e4 = rd64(mem, HL_PT_GPA + i4 * 8);
        if (!(e4 & X86_PTE_P)) {
            if (e4)
                note("PML4[%llu] = 0x%llx: not present but not zero", (unsigned long long)i4, (unsigned long long)e4);
            continue;
        }
        uint64_t t3 = e4 & X86_PTE_ADDR;
        if (!table_ok(lo, e4) || used[(t3 - HL_PT_GPA) / HL_PAGE]) {
            note("PML4[%llu] = 0x%llx: bad or shared table entry", (unsigned long long)i4, (unsigned long long)e4);
            continue;
        }
        used[(t3 - HL_PT_GPA) / HL_PAGE] = true;
        ++*tables;
        for (uint64_t i3 = 0; i3 < 512; i3++) {
            uint64_t e3 = rd64(mem, t3 + i3 * 8);
            if (!(e3 & X86_PTE_P)) {
                if (e3) note("PDPT entry 0x%llx not present but not zero", (unsigned long long)e3);
                continue;
            }
            uint64_t t2 = e3 & X86_PTE_ADDR;
            if (!table_ok(lo, e3) || used[(t2 - HL_PT_GPA) / HL_PAGE]) {
                note("PDPT[%llu][%llu] = 0x%llx: bad or shared table entry (huge page?)", (unsigned long long)i4,
                     (unsigned long long)i3, (unsigned long long)e3);
                continue;
            }
            used[(t2 - HL_PT_GPA) / HL_PAGE] = true;
            ++*tables;
            for (uint64_t i2 = 0; i2 < 512; i2++) {
                uint64_t e2 = rd64(mem, t2 + i2 * 8);
                if (!(e2 & X86_PTE_P)) {
                    if (e2) note("PD entry 0x%llx not present but not zero", (unsigned long long)e2);
                    continue;
                }
                uint64_t t1 = e2 & X86_PTE_ADDR;
                if (!table_ok(lo, e2) || used[(t1 - HL_PT_GPA) / HL_PAGE]) {
                    note("PD[%llu][%llu][%llu] = 0x%llx: bad or shared table entry (huge page?)",
                         (unsigned long long)i4, (unsigned long long)i3, (unsigned long long)i2, (unsigned long long)e2);
                    continue;
                }
                used[(t1 - HL_PT_GPA) / HL_PAGE] = true;
                ++*tables;
                for (uint64_t i1 = 0; i1 < 512; i1++) {
                    uint64_t e1 = rd64(mem, t1 + i1 * 8);
                    uint64_t va = i4 << 39 | i3 << 30 | i2 << 21 | i1 << 12;
                    if (i4 >= 256) va |= 0xffff000000000000ull; /* canonical upper half */
                    if (!(e1 & X86_PTE_P)) {
                        if (e1)
                            note("PTE for 0x%llx = 0x%llx: not present but not zero", (unsigned long long)va,
                                 (unsigned long long)e1);
                        continue;
                    }
                    ++*leaves;
                    uint64_t want = expected_leaf(lo, va);
                    if (e1 != want)
                        note("tree: PTE for 0x%llx = 0x%llx, want 0x%llx", (unsigned long long)va,
                             (unsigned long long)e1, (unsigned long long)want);
                }
            }
        }
    }
}

/* ---- one configuration ------------------------------------------------------------------ */

static uint64_t mapped_pages(const hl_layout *lo)
{
    uint64_t n = 0;
    for (int i = 0; i < lo->nregions; i++)
        if (lo->regions[i].perm) n += lo->regions[i].size / HL_PAGE;
    return n;
}

static bool has_region_across(const hl_layout *lo, uint64_t boundary)
{
    for (int i = 0; i < lo->nregions; i++)
        if (lo->regions[i].perm && lo->regions[i].gpa < boundary && lo->regions[i].gpa + lo->regions[i].size > boundary)
            return true;
    return false;
}

/* Builds and checks everything for one configuration. Returns the number of table pages. */
static uint64_t check_config(const char *name, const hl_elf *elf, hl_sizes sz)
{
    hl_layout lo;
    char err[HL_ERR_LEN] = "";
    uint8_t *mem;
    uint64_t tables = 0, leaves = 0, scan_end, pt_end;
    hl_status st;

    cur = name;
    bad = 0;
    st = hl_layout_build(&lo, elf, &sz, err);
    CHECK_INT(st, HL_OK);
    if (st != HL_OK) {
        fprintf(stderr, "  [%s] hl_layout_build: %s\n", name, err);
        return 0;
    }
    pt_end = lo.pt_end;
    CHECK_INT(pt_end, HL_PT_GPA + hl_pt_pages_needed(&lo) * HL_PAGE);
    CHECK(pt_end <= HL_PEB_GPA);

    mem = calloc(1, lo.total);
    CHECK(mem != NULL);
    if (!mem) return 0;
    memset(mem, 0xa5, lo.total < 4 * MiB ? lo.total : 4 * MiB);

    /* Too small a buffer is refused. */
    st = hl_pt_build(&lo, mem, pt_end - 1, err);
    CHECK_INT(st, HL_ERR_INVALID_ARG);
    CHECK_HAS(err, "page tables do not fit");
    memset(mem, 0xa5, lo.total < 4 * MiB ? lo.total : 4 * MiB);

    st = hl_pt_build(&lo, mem, lo.total, err);
    CHECK_INT(st, HL_OK);
    if (st != HL_OK) {
        fprintf(stderr, "  [%s] hl_pt_build: %s\n", name, err);
        free(mem);
        return 0;
    }
    CHECK_INT(lo.pt_end, pt_end);
    /* hl_pt_build writes only its own area. */
    CHECK_INT(mem[0], 0xa5);
    CHECK_INT(mem[HL_PT_GPA - 1], 0xa5);
    if (pt_end < HL_PEB_GPA) CHECK_INT(mem[pt_end], 0xa5);
    CHECK_INT(mem[HL_PEB_GPA], 0xa5);

    /* Every page from 0 up to 2 MiB past the last page table's reach. */
    scan_end = HL_ALIGN_UP(lo.total, 2 * MiB) + 2 * MiB;
    for (uint64_t va = 0; va < scan_end; va += HL_PAGE) {
        uint64_t want = expected_leaf(&lo, va);
        uint64_t got = hl_pt_walk(mem, lo.total, va);
        uint64_t mine = my_walk(mem, &lo, va);
        if (got != want)
            note("hl_pt_walk(0x%llx) = 0x%llx, want 0x%llx", (unsigned long long)va, (unsigned long long)got,
                 (unsigned long long)want);
        if (mine != want)
            note("own walk(0x%llx) = 0x%llx, want 0x%llx", (unsigned long long)va, (unsigned long long)mine,
                 (unsigned long long)want);
        if (want && hl_pt_walk(mem, lo.total, va + 0xabc) != want)
            note("hl_pt_walk(0x%llx + 0xabc) differs from the page start", (unsigned long long)va);
    }
    {
        static const uint64_t far[] = {
            1 * GiB, 2 * GiB, 512 * GiB, 0x7ffffffff000ull, 0xffff800000000000ull, 0xfffffffffffff000ull
        };
        for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
            if (far[i] < scan_end) continue;
            if (hl_pt_walk(mem, lo.total, far[i]) || my_walk(mem, &lo, far[i]))
                note("far address 0x%llx is mapped", (unsigned long long)far[i]);
        }
    }
    CHECK_INT(bad, 0);

    /* Named spot checks (the scan covered them; these make a failure readable). */
    CHECK_INT(hl_pt_walk(mem, lo.total, 0), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, 0xfff), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, HL_PT_GPA), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, pt_end - 1), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, HL_PEB_GPA - 1), 0);
    CHECK(hl_pt_walk(mem, lo.total, HL_PEB_GPA) != 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.guard), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.guard + HL_PAGE - 1), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.total), 0);
    CHECK_INT(hl_pt_walk(mem, lo.total, HL_PEB_GPA), HL_PEB_GPA | LEAF_BITS | X86_PTE_NX);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.entry) & (X86_PTE_P | X86_PTE_NX | X86_PTE_W), X86_PTE_P);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.stack) & (X86_PTE_P | X86_PTE_NX | X86_PTE_W),
              X86_PTE_P | X86_PTE_NX | X86_PTE_W);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.total - 1) & (X86_PTE_P | X86_PTE_W), X86_PTE_P | X86_PTE_W);
    CHECK_INT(hl_pt_walk(mem, lo.total, lo.input) & (X86_PTE_P | X86_PTE_NX | X86_PTE_W), X86_PTE_P | X86_PTE_NX);
    /* A walk must not read outside the buffer it is given. */
    CHECK_INT(hl_pt_walk(mem, HL_PT_GPA, lo.stack), 0);
    CHECK_INT(hl_pt_walk(mem, HL_PT_GPA + HL_PAGE, lo.stack), 0);

    /* The whole tree. */
    bad = 0;
    check_tree(mem, &lo, &tables, &leaves);
    CHECK_INT(bad, 0);
    CHECK_INT(leaves, mapped_pages(&lo));
    CHECK_INT(tables, hl_pt_pages_needed(&lo));
    CHECK_INT(tables, (pt_end - HL_PT_GPA) / HL_PAGE);
    if (tables != hl_pt_pages_needed(&lo))
        fprintf(stderr, "  [%s] %llu table pages used, hl_pt_pages_needed says %llu\n", name,
                (unsigned long long)tables, (unsigned long long)hl_pt_pages_needed(&lo));

    free(mem);
    return tables;
}

/* ---- configurations ------------------------------------------------------------------- */

static const hl_sizes SZ_DEFAULT = {
    .heap = HL_HEAP_DEFAULT, .scratch = HL_SCRATCH_DEFAULT, .input = HL_BUFFER_DEFAULT, .output = HL_BUFFER_DEFAULT
};
static const hl_sizes SZ_MIN = {
    .heap = HL_HEAP_MIN, .scratch = HL_SCRATCH_MIN, .input = HL_BUFFER_MIN, .output = HL_BUFFER_MIN
};
static const hl_sizes SZ_MAX = {
    .heap = HL_HEAP_MAX, .scratch = HL_SCRATCH_MAX, .input = HL_BUFFER_MAX, .output = HL_BUFFER_MAX
};

/* Like the demo guest: code R+X, rodata R, data+bss RW. */
static const seg_spec DEMO[] = {
    { 0x200000, 0x53ea, HL_SEG_R | HL_SEG_X },
    { 0x206000, 0xf0c, HL_SEG_R },
    { 0x207000, 0x38b4, HL_SEG_R | HL_SEG_W },
};

int main(void)
{
    hl_elf demo = make_elf(DEMO, 3, 0x200000);

    check_config("demo, default sizes", &demo, SZ_DEFAULT);
    check_config("demo, minimum sizes", &demo, SZ_MIN);
    check_config("demo, maximum sizes (heap 256 MiB)", &demo, SZ_MAX);
    check_config("demo, odd sizes", &demo,
                 (hl_sizes){ .heap = 3 * MiB + 4 * KiB,
                             .scratch = 2 * MiB - 4 * KiB,
                             .input = 20 * KiB,
                             .output = 2 * MiB + 8 * KiB });
    {
        static const seg_spec one[] = { { 0x200000, 0x1234, HL_SEG_R | HL_SEG_X } };
        hl_elf e = make_elf(one, 1, 0x200010);
        CHECK_INT(e.ro_end, e.end);
        check_config("1 segment R+X, no writable segment", &e, SZ_DEFAULT);
    }
    {
        static const seg_spec two[] = { { 0x200000, 0x3000, HL_SEG_R | HL_SEG_X },
                                        { 0x203000, 0x10, HL_SEG_R | HL_SEG_W } };
        hl_elf e = make_elf(two, 2, 0x200000);
        check_config("2 segments R+X, RW", &e, SZ_DEFAULT);
    }
    {
        static const seg_spec two[] = { { 0x200000, 0x2000, HL_SEG_R | HL_SEG_X }, { 0x202000, 0x5000, HL_SEG_R } };
        hl_elf e = make_elf(two, 2, 0x200000);
        check_config("2 segments R+X, R (no writable segment)", &e, SZ_MIN);
    }
    {
        /* Each segment crosses a 2 MiB boundary; the first starts mid-page. */
        static const seg_spec s[] = { { 0x3fe123, 0x3000, HL_SEG_R | HL_SEG_X },
                                      { 0x5ff000, 0x2000, HL_SEG_R },
                                      { 0x7ff800, 0x1000, HL_SEG_R | HL_SEG_W } };
        hl_elf e = make_elf(s, 3, 0x3fe123);
        hl_layout lo;
        char err[HL_ERR_LEN];
        CHECK_INT(hl_layout_build(&lo, &e, &SZ_DEFAULT, err), HL_OK);
        CHECK(has_region_across(&lo, 4 * MiB));
        CHECK(has_region_across(&lo, 6 * MiB));
        CHECK(has_region_across(&lo, 8 * MiB));
        check_config("segments across 2 MiB boundaries, gaps between", &e, SZ_DEFAULT);
    }
    {
        /* The image spans at most 512 MiB above HL_IMAGE_BASE, so no segment can reach
         * 1 GiB; a sparse image with a heap beyond the configuration maximum puts the heap
         * across the 1 GiB boundary (two page directories). */
        static const seg_spec s[] = { { 0x200000, 0x1000, HL_SEG_R | HL_SEG_X },
                                      { 0x10000000, 0x1000, HL_SEG_R },
                                      { 0x201ff000, 0x1000, HL_SEG_R | HL_SEG_W } };
        hl_elf e = make_elf(s, 3, 0x200000);
        hl_sizes sz = { .heap = 600 * MiB, .scratch = 64 * KiB, .input = 16 * KiB, .output = 16 * KiB };
        hl_layout lo;
        char err[HL_ERR_LEN];
        CHECK_INT(e.end, HL_IMAGE_BASE + HL_ELF_MAX_SPAN);
        CHECK_INT(hl_layout_build(&lo, &e, &sz, err), HL_OK);
        CHECK(has_region_across(&lo, 1 * GiB));
        check_config("sparse image at the span limit, heap across 1 GiB", &e, sz);
    }
    {
        /* HL_ELF_MAX_SEGS one-page segments, each in its own 2 MiB page table. */
        seg_spec s[HL_ELF_MAX_SEGS];
        for (int i = 0; i < HL_ELF_MAX_SEGS; i++)
            s[i] = (seg_spec){ 0x200000 + (uint64_t)i * 0x201000, 0x800,
                               i == 0  ? HL_SEG_R | HL_SEG_X
                               : i < 8 ? HL_SEG_R
                                       : HL_SEG_R | HL_SEG_W };
        hl_elf e = make_elf(s, HL_ELF_MAX_SEGS, 0x200000);
        check_config("16 one-page segments, 2 MiB apart", &e, SZ_MIN);
    }
    {
        /* The largest heap whose tables fit exactly below the PEB: pt_end == HL_PEB_GPA.
         * One more 2 MiB needs one more page table and is refused. */
        hl_layout lo;
        char err[HL_ERR_LEN] = "";
        hl_sizes sz = SZ_MIN;
        uint64_t best = 0;
        for (uint64_t h = 2 * MiB; h < 2 * GiB; h += 2 * MiB) {
            sz.heap = h;
            if (hl_layout_build(&lo, &demo, &sz, err) != HL_OK) break;
            best = h;
        }
        CHECK(best > 0);
        sz.heap = best;
        CHECK_INT(hl_layout_build(&lo, &demo, &sz, err), HL_OK);
        CHECK_INT(hl_pt_pages_needed(&lo), HL_PT_MAX_PAGES);
        CHECK_INT(lo.pt_end, HL_PEB_GPA);
        CHECK_INT(check_config("heap filling the page-table area", &demo, sz), HL_PT_MAX_PAGES);

        sz.heap = best + 2 * MiB;
        err[0] = 0;
        CHECK_INT(hl_layout_build(&lo, &demo, &sz, err), HL_ERR_INVALID_ARG);
        CHECK_HAS(err, "page-table pages");
        CHECK_INT(hl_pt_pages_needed(&lo), HL_PT_MAX_PAGES + 1);

        sz.heap = 4 * GiB; /* refused before any table is counted */
        err[0] = 0;
        CHECK_INT(hl_layout_build(&lo, &demo, &sz, err), HL_ERR_INVALID_ARG);
        CHECK_STR(err, "memory sizes must be page multiples of at most 1 GiB each");
    }
    return check_exit("test_pagetable");
}
