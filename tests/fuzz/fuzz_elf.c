/* fuzz_elf.c - libFuzzer harness for the guest ELF loader and what is built from its output.
 *
 * Build and run (new corpus entries go to the first directory, seeds are read from the second):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/common -Isrc/host \
 *       tests/fuzz/fuzz_elf.c src/host/elf.c src/host/layout.c src/host/pagetable.c \
 *       src/host/hostfn.c src/common/wire.c -o /tmp/fuzz_elf
 *   mkdir -p /tmp/fuzz_elf_corpus
 *   /tmp/fuzz_elf -max_total_time=60 /tmp/fuzz_elf_corpus tests/fuzz/corpus/elf/
 *
 * The input is a whole ELF file. Then:
 *   - hl_elf_parse: fails with HL_ERR_BAD_GUEST and a "guest ELF: " message, or succeeds with
 *     a description that obeys every rule the loader promises (1..16 segments, inside the
 *     image area and the file, ascending without sharing pages, no W+X, read-only before
 *     writable, ro_end/end page-aligned and consistent, entry inside an executable segment);
 *   - hl_layout_build with the default sizes always succeeds for a valid ELF (the image area
 *     is small enough), and its regions are sorted, page-aligned, disjoint, and every
 *     writable one lies in slot 1 (>= ro_end);
 *   - if the guest memory is at most 64 MiB: hl_elf_load and hl_pt_build into a heap block of
 *     exactly lo.total bytes; the segments hold the file bytes and zeros; every page of guest
 *     memory (and the page above) walks to exactly what its region allows; the PEB is written.
 * Any violated property aborts, which libFuzzer reports as a crash. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MEM_CAP (64ull << 20)

#define ASSERT(c)                                                                    \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "fuzz_elf.c:%d: property violated: %s\n", __LINE__, #c); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static bool aligned(uint64_t x) { return (x & (HL_PAGE - 1)) == 0; }

static void check_elf(const hl_elf *elf, size_t size)
{
    uint64_t prev_end = HL_IMAGE_BASE;
    bool seen_w = false, entry_ok = false;
    ASSERT(elf->nseg >= 1 && elf->nseg <= HL_ELF_MAX_SEGS);
    ASSERT(elf->abi_version == HL_ABI_VERSION);
    for (int i = 0; i < elf->nseg; i++) {
        const hl_segment *s = &elf->seg[i];
        ASSERT(s->memsz > 0 && s->filesz <= s->memsz);
        ASSERT(s->offset <= size && s->filesz <= size - s->offset);
        ASSERT(s->vaddr >= HL_IMAGE_BASE && s->memsz <= (uint64_t)HL_IMAGE_BASE + HL_ELF_MAX_SPAN - s->vaddr);
        ASSERT(HL_ALIGN_DOWN(s->vaddr, HL_PAGE) >= prev_end);
        ASSERT((s->flags & ~7u) == 0);
        ASSERT(!((s->flags & HL_SEG_W) && (s->flags & HL_SEG_X)));
        if (s->flags & HL_SEG_W) {
            if (!seen_w) ASSERT(elf->ro_end == HL_ALIGN_DOWN(s->vaddr, HL_PAGE));
            seen_w = true;
        } else {
            ASSERT(!seen_w);
            ASSERT(HL_ALIGN_UP(s->vaddr + s->memsz, HL_PAGE) <= elf->ro_end);
        }
        if ((s->flags & HL_SEG_X) && elf->entry >= s->vaddr && elf->entry - s->vaddr < s->memsz) entry_ok = true;
        prev_end = HL_ALIGN_UP(s->vaddr + s->memsz, HL_PAGE);
    }
    ASSERT(entry_ok);
    ASSERT(elf->end == prev_end);
    ASSERT(aligned(elf->ro_end) && elf->ro_end <= elf->end && elf->ro_end >= HL_IMAGE_BASE);
    if (!seen_w) ASSERT(elf->ro_end == elf->end);
}

static void check_layout(const hl_layout *lo, const hl_elf *elf, const hl_sizes *sz)
{
    ASSERT(lo->nregions == 1 + elf->nseg + 6);
    ASSERT(lo->ro_end == elf->ro_end && lo->entry == elf->entry && lo->meta == elf->end);
    ASSERT(lo->pt_end > HL_PT_GPA && lo->pt_end <= HL_PEB_GPA && aligned(lo->pt_end));
    ASSERT(lo->pt_end == HL_PT_GPA + hl_pt_pages_needed(lo) * HL_PAGE);
    ASSERT(lo->total == lo->output + sz->output);
    for (int i = 0; i < lo->nregions; i++) {
        const hl_region *r = &lo->regions[i];
        ASSERT(aligned(r->gpa) && aligned(r->size) && r->size > 0);
        ASSERT(r->gpa >= HL_PEB_GPA && r->gpa + r->size <= lo->total);
        if (i) ASSERT(r->gpa >= lo->regions[i - 1].gpa + lo->regions[i - 1].size);
        if (r->perm & HL_PERM_W) ASSERT(r->gpa >= lo->ro_end);
        if (r->gpa < lo->ro_end) ASSERT(r->gpa + r->size <= lo->ro_end);
        if (r->gpa >= HL_IMAGE_BASE) ASSERT(r->gpa >= lo->pt_end);
        ASSERT(hl_layout_find(lo, r->gpa) == r && hl_layout_find(lo, r->gpa + r->size - 1) == r);
    }
}

/* What a walk of va must return: identity leaf with the region's permissions, or 0. */
static uint64_t expected(const hl_layout *lo, uint64_t va)
{
    const hl_region *r = hl_layout_find(lo, va);
    uint64_t e;
    if (!r || !r->perm) return 0;
    e = (va & X86_PTE_ADDR) | X86_PTE_P | X86_PTE_U | X86_PTE_A | X86_PTE_D;
    if (r->perm & HL_PERM_W) e |= X86_PTE_W;
    if (!(r->perm & HL_PERM_X)) e |= X86_PTE_NX;
    return e;
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hl_elf elf;
    hl_layout lo;
    hl_sizes sz = {
        .heap = HL_HEAP_DEFAULT, .scratch = HL_SCRATCH_DEFAULT, .input = HL_BUFFER_DEFAULT, .output = HL_BUFFER_DEFAULT
    };
    char err[HL_ERR_LEN];
    hl_status st;
    uint8_t *mem;
    struct hl_peb peb;

    memset(err, 0, sizeof err);
    st = hl_elf_parse(data, size, &elf, err);
    ASSERT(memchr(err, 0, sizeof err) != NULL);
    if (st != HL_OK) {
        ASSERT(st == HL_ERR_BAD_GUEST);
        ASSERT(strncmp(err, "guest ELF: ", 11) == 0);
        return 0;
    }
    check_elf(&elf, size);

    st = hl_layout_build(&lo, &elf, &sz, err);
    ASSERT(st == HL_OK);
    check_layout(&lo, &elf, &sz);
    if (lo.total > MEM_CAP) return 0;

    mem = malloc(lo.total); /* exactly: ASan sees any access beyond guest memory */
    ASSERT(mem != NULL);
    memset(mem, 0x5a, lo.total);
    hl_elf_load(&elf, data, mem, lo.total);
    st = hl_pt_build(&lo, mem, lo.total, err);
    ASSERT(st == HL_OK);
    hl_layout_peb(&lo, true, (struct hl_peb *)(mem + HL_PEB_GPA));

    /* Segment contents (the page tables live below the image, so they cannot clobber it). */
    for (int i = 0; i < elf.nseg; i++) {
        const hl_segment *s = &elf.seg[i];
        ASSERT(memcmp(mem + s->vaddr, data + s->offset, s->filesz) == 0);
        ASSERT(all_zero(mem + s->vaddr + s->filesz, s->memsz - s->filesz));
    }
    memcpy(&peb, mem + HL_PEB_GPA, sizeof peb);
    ASSERT(peb.magic == HL_PEB_MAGIC && peb.flags == HL_PEB_FLAG_PVM && peb.heap_gpa == lo.heap &&
           peb.output_gpa + peb.output_size == lo.total);

    /* Every page of guest memory, and the one above it. */
    for (uint64_t va = 0; va <= lo.total; va += HL_PAGE) ASSERT(hl_pt_walk(mem, lo.total, va) == expected(&lo, va));
    ASSERT((hl_pt_walk(mem, lo.total, lo.entry) & (X86_PTE_P | X86_PTE_NX)) == X86_PTE_P);
    free(mem);
    return 0;
}
