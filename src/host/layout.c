/* layout.c - where each part of a sandbox's memory goes in guest-physical space.
 *
 *   0x0000 .. 0x1000   unmapped (NULL guard)
 *   0x1000 .. pt_end   page tables (not mapped into the guest)     } page-table memslot
 *   HL_PEB_GPA         PEB (read-only), the page below the image   } read-only memslot
 *   HL_IMAGE_BASE ..   ELF code and read-only data                 }
 *   ro_end ..          ELF data and bss                            } writable memslot
 *                      meta page, heap, guard (unmapped), stack, input buffer, output buffer
 * The read-only memslot never changes after creation, so it can be shared; everything the
 * guest may write lies in the writable one. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "layout.h"
#include "pagetable.h"

_Static_assert(sizeof(struct hl_peb) <= HL_PAGE_SIZE, "the PEB must fit its page");

const char *hl_region_name(int kind)
{
    static const char *const names[] = { "PEB",          "code",          "read-only data", "data",
                                         "meta",         "heap",          "stack guard",    "stack",
                                         "input buffer", "output buffer", "init data",      "mapped file" };
    return kind >= 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : "?";
}

static void add(hl_layout *lo, int kind, hl_gpa gpa, uint64_t size, unsigned perm)
{
    lo->regions[lo->nregions++] = (hl_region){ .kind = kind, .gpa = gpa, .size = size, .perm = perm };
}

hl_status hl_layout_build(hl_layout *lo, const hl_elf *elf, const hl_sizes *sizes, char *err)
{
    hl_gpa at;
    const uint64_t each_max = 1ull << 30; /* far above the API's limits; keeps sums exact */
    memset(lo, 0, sizeof *lo);
    if (sizes->heap > each_max || sizes->scratch > each_max || sizes->input > each_max || sizes->output > each_max ||
        (sizes->heap | sizes->scratch | sizes->input | sizes->output) % HL_PAGE)
        return hl_errf(err, HL_ERR_INVALID_ARG, "memory sizes must be page multiples of at most 1 GiB each");
    if (sizes->init > each_max || sizes->nfiles < 0 || sizes->nfiles > HL_MAX_FILES)
        return hl_errf(err, HL_ERR_INVALID_ARG, "init data or mapped files out of range");
    for (int i = 0; i < sizes->nfiles; i++)
        if (sizes->file_size[i] > each_max)
            return hl_errf(err, HL_ERR_INVALID_ARG, "mapped file '%s' is larger than 1 GiB", sizes->file_label[i]);
    lo->sizes = *sizes;
    lo->entry = elf->entry;
    lo->ro_end = elf->ro_end;
    add(lo, HL_RGN_PEB, HL_PEB_GPA, HL_PAGE, HL_PERM_R);
    for (int i = 0; i < elf->nseg; i++) {
        const hl_segment *s = &elf->seg[i];
        hl_gpa lo_pg = HL_ALIGN_DOWN(s->vaddr, HL_PAGE);
        uint64_t size = HL_ALIGN_UP(s->vaddr + s->memsz, HL_PAGE) - lo_pg;
        int kind = (s->flags & HL_SEG_X) ? HL_RGN_CODE : (s->flags & HL_SEG_W) ? HL_RGN_DATA : HL_RGN_RODATA;
        unsigned perm = HL_PERM_R | ((s->flags & HL_SEG_X) ? HL_PERM_X : 0) | ((s->flags & HL_SEG_W) ? HL_PERM_W : 0);
        add(lo, kind, lo_pg, size, perm);
    }
    at = elf->end;
    lo->meta = at;
    add(lo, HL_RGN_META, at, HL_PAGE, HL_PERM_R | HL_PERM_W);
    at += HL_PAGE;
    lo->heap = at;
    add(lo, HL_RGN_HEAP, at, sizes->heap, HL_PERM_R | HL_PERM_W);
    at += sizes->heap;
    lo->guard = at;
    add(lo, HL_RGN_GUARD, at, HL_PAGE, 0);
    at += HL_PAGE;
    lo->stack = at;
    add(lo, HL_RGN_STACK, at, sizes->scratch, HL_PERM_R | HL_PERM_W);
    at += sizes->scratch;
    lo->input = at;
    /* The guest only reads its input: the host keeps the authoritative stack top. */
    add(lo, HL_RGN_INPUT, at, sizes->input, HL_PERM_R);
    at += sizes->input;
    lo->output = at;
    add(lo, HL_RGN_OUTPUT, at, sizes->output, HL_PERM_R | HL_PERM_W);
    at += sizes->output;
    if (sizes->init) {
        lo->init = at;
        add(lo, HL_RGN_INIT, at, HL_ALIGN_UP(sizes->init, HL_PAGE), HL_PERM_R);
        at += HL_ALIGN_UP(sizes->init, HL_PAGE);
    }
    lo->total = at;
    for (int i = 0; i < sizes->nfiles; i++) {
        at += HL_PAGE;        /* an unmapped page between neighbours catches overruns */
        lo->file_gpa[i] = at; /* an empty file has no region: its address is not mapped */
        if (sizes->file_size[i]) add(lo, HL_RGN_FILE, at, HL_ALIGN_UP(sizes->file_size[i], HL_PAGE), HL_PERM_R);
        at += HL_ALIGN_UP(sizes->file_size[i], HL_PAGE);
    }
    lo->end = at;
    if (hl_pt_pages_needed(lo) > HL_PT_MAX_PAGES)
        return hl_errf(err, HL_ERR_INVALID_ARG,
                       "guest memory of %llu MiB needs %llu page-table pages, more than the %u "
                       "that fit below the PEB",
                       (unsigned long long)(lo->total >> 20), (unsigned long long)hl_pt_pages_needed(lo),
                       (unsigned)HL_PT_MAX_PAGES);
    lo->pt_end = HL_PT_GPA + hl_pt_pages_needed(lo) * HL_PAGE;
    return HL_OK;
}

const hl_region *hl_layout_find(const hl_layout *lo, hl_gpa gpa)
{
    for (int i = 0; i < lo->nregions; i++)
        if (gpa >= lo->regions[i].gpa && gpa - lo->regions[i].gpa < lo->regions[i].size) return &lo->regions[i];
    return NULL;
}

void hl_layout_peb(const hl_layout *lo, bool pvm, struct hl_peb *peb)
{
    memset(peb, 0, sizeof *peb);
    peb->magic = HL_PEB_MAGIC;
    peb->abi_version = HL_ABI_VERSION;
    peb->flags = pvm ? HL_PEB_FLAG_PVM : 0;
    peb->meta_gpa = lo->meta;
    peb->heap_gpa = lo->heap;
    peb->heap_size = lo->sizes.heap;
    peb->stack_gpa = lo->stack;
    peb->stack_size = lo->sizes.scratch;
    peb->input_gpa = lo->input;
    peb->input_size = lo->sizes.input;
    peb->output_gpa = lo->output;
    peb->output_size = lo->sizes.output;
    peb->init_data_gpa = lo->init;
    peb->init_data_size = lo->sizes.init;
    peb->nfiles = (uint64_t)lo->sizes.nfiles;
    for (int i = 0; i < lo->sizes.nfiles; i++) {
        peb->files[i].gpa = lo->file_gpa[i];
        peb->files[i].size = lo->sizes.file_size[i];
        memcpy(peb->files[i].label, lo->sizes.file_label[i], sizeof peb->files[i].label);
    }
}
