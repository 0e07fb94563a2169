/* snapfile.c - snapshot files (docs/snapshots.md): the header, what loading checks of it,
 * and the checksum arithmetic and page walk that saving and loading share. hl_snapshot_save
 * is in snapfile_save.c, hl_snapshot_load in snapfile_load.c; the format in snapfile.h.
 *
 * A file's memory image lies page-aligned in it, laid out like guest-physical memory, so
 * that loading maps it: the loaded snapshot's image is one extent of the file itself, and
 * processes loading the same file share its pages in the page cache. Zero pages are holes
 * on disk and are never read: both directions walk the files with SEEK_DATA/SEEK_HOLE and
 * account for a hole in the checksum arithmetically (FNV-1a over a zero word is one
 * multiplication).
 *
 * Loading treats the file as hostile: every field is checked before it is used. The layout
 * in particular is rebuilt with hl_layout_build from the header's guest image regions and
 * sizes, and must be that layout exactly. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "snapfile.h"

hl_status snap_fail(const char *path, hl_status st, const char *fmt, ...)
{
    char msg[HL_ERR_LEN];
    va_list ap;
    int n = snprintf(msg, sizeof msg, "snapshot file '%.200s': ", path); /* < 230 bytes */
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    return hl_set_thread_error(st, msg);
}

/* ---- checksums ---- */
static uint64_t pow64(uint64_t b, uint64_t e)
{
    uint64_t r = 1;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return r;
}

uint64_t snap_sum_pages(uint64_t h, const uint8_t *p, uint64_t n, bool *nonzero)
{
    uint64_t any = 0, w;
    for (uint64_t i = 0; i < n * HL_PAGE; i += 8) {
        memcpy(&w, p + i, 8);
        any |= w;
        h = (h ^ w) * HL_FNV_PRIME;
    }
    *nonzero = any != 0;
    return h;
}

/* h ^ 0 = h, so each zero word multiplies by the prime. */
uint64_t snap_sum_zero_pages(uint64_t h, uint64_t n) { return h * pow64(pow64(HL_FNV_PRIME, HL_PAGE / 8), n); }

/* ---- the page walk ---- */
hl_status snap_walk_file(int fd, uint64_t off, uint64_t page, uint64_t n, snap_run_fn fn, void *ctx)
{
    uint64_t pos = off, end = off + n * HL_PAGE, data, hole;
    hl_status st;
    while (pos < end) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0 && errno != ENXIO) return fn(ctx, page + (pos - off) / HL_PAGE, (end - pos) / HL_PAGE, false);
        data = d < 0 || (uint64_t)d > end ? end : HL_ALIGN_DOWN((uint64_t)d, HL_PAGE);
        if (data > pos) {
            if ((st = fn(ctx, page + (pos - off) / HL_PAGE, (data - pos) / HL_PAGE, true)) != HL_OK) return st;
            pos = data;
        }
        if (pos >= end) break;
        off_t h = lseek(fd, (off_t)pos, SEEK_HOLE);
        hole = h < 0 || (uint64_t)h > end ? end : HL_ALIGN_UP((uint64_t)h, HL_PAGE);
        if (hole <= pos) hole = pos + HL_PAGE;
        if (hole > end) hole = end;
        if ((st = fn(ctx, page + (pos - off) / HL_PAGE, (hole - pos) / HL_PAGE, false)) != HL_OK) return st;
        pos = hole;
    }
    return HL_OK;
}

/* ---- the layout, both ways ---- */
void snap_put_layout(struct snap_header *h, const hl_layout *lo)
{
    h->heap_size = lo->sizes.heap;
    h->scratch_size = lo->sizes.scratch;
    h->input_size = lo->sizes.input;
    h->output_size = lo->sizes.output;
    h->init_size = lo->sizes.init;
    h->ro_end = lo->ro_end;
    h->total = lo->total;
    h->end = lo->end;
    h->pt_end = lo->pt_end;
    h->entry = lo->entry;
    h->meta = lo->meta;
    h->heap = lo->heap;
    h->guard = lo->guard;
    h->stack = lo->stack;
    h->input = lo->input;
    h->output = lo->output;
    h->init = lo->init;
    h->nfiles = (uint32_t)lo->sizes.nfiles;
    for (int i = 0; i < lo->sizes.nfiles; i++) {
        h->files[i].gpa = lo->file_gpa[i];
        h->files[i].size = lo->sizes.file_size[i];
        strncpy(h->files[i].label, lo->sizes.file_label[i], HL_FILE_LABEL_MAX); /* zero-padded */
    }
    h->nregions = (uint32_t)lo->nregions;
    for (int i = 0; i < lo->nregions; i++)
        h->regions[i] = (struct snap_region){ .kind = (uint32_t)lo->regions[i].kind, .perm = lo->regions[i].perm,
                                              .gpa = lo->regions[i].gpa, .size = lo->regions[i].size };
}

#define BAD(...) (snprintf(why, wlen, __VA_ARGS__), why)

bool snap_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) any |= b[i];
    return !any;
}

static bool is_elf_kind(uint32_t k) { return k == HL_RGN_CODE || k == HL_RGN_RODATA || k == HL_RGN_DATA; }

static unsigned kind_perm(uint32_t k)
{
    switch (k) {
    case HL_RGN_PEB: case HL_RGN_RODATA: case HL_RGN_INPUT: case HL_RGN_INIT: case HL_RGN_FILE: return HL_PERM_R;
    case HL_RGN_CODE: return HL_PERM_R | HL_PERM_X;
    case HL_RGN_GUARD: return 0;
    default: return HL_PERM_R | HL_PERM_W;
    }
}

/* Rebuilds the layout from the header and checks that it is one hl_layout_build could have
 * made: the PEB, 1..16 ascending ELF regions in the image area (read-only before writable),
 * then meta, heap, guard, stack, input, output and the optional init data back to back (the
 * memory image ends there), then each mapped file after an unmapped page; sizes inside the
 * bounds of hyperlight.h. Returns NULL or what is wrong (in why). */
static const char *check_layout(const struct snap_header *h, hl_layout *lo, char *why, size_t wlen)
{
    uint64_t at = HL_IMAGE_BASE, first_w = 0, elf_end, init_pages = HL_ALIGN_UP(h->init_size, HL_PAGE);
    int nelf, ncode = 0, k = 0;
    struct { int kind; uint64_t size; const uint64_t *gpa; } tail[7 + SNAP_FILES];
    bool seen_w = false;

    memset(lo, 0, sizeof *lo);
    if (h->heap_size < HL_HEAP_MIN || h->heap_size > HL_HEAP_MAX || h->heap_size % HL_PAGE)
        return BAD("heap size %llu outside %u..%u or not whole pages", (unsigned long long)h->heap_size, HL_HEAP_MIN,
                   HL_HEAP_MAX);
    if (h->scratch_size < HL_SCRATCH_MIN || h->scratch_size > HL_SCRATCH_MAX || h->scratch_size % HL_PAGE)
        return BAD("scratch size %llu outside %u..%u or not whole pages", (unsigned long long)h->scratch_size,
                   HL_SCRATCH_MIN, HL_SCRATCH_MAX);
    if (h->input_size < HL_BUFFER_MIN || h->input_size > HL_BUFFER_MAX || h->input_size % HL_PAGE ||
        h->output_size < HL_BUFFER_MIN || h->output_size > HL_BUFFER_MAX || h->output_size % HL_PAGE)
        return BAD("buffer sizes %llu/%llu outside %u..%u or not whole pages", (unsigned long long)h->input_size,
                   (unsigned long long)h->output_size, HL_BUFFER_MIN, HL_BUFFER_MAX);
    if (h->init_size > SNAP_SIZE_MAX) return BAD("init data size %llu too large", (unsigned long long)h->init_size);
    if (h->nfiles > HL_MAX_FILES) return BAD("%u mapped files (at most %d)", h->nfiles, HL_MAX_FILES);
    for (uint32_t i = 0; i < SNAP_FILES; i++) {
        const struct snap_file *f = &h->files[i];
        const char *nul = memchr(f->label, 0, sizeof f->label);
        bool zero = true;
        if (i >= h->nfiles) {
            for (size_t j = 0; j < sizeof *f; j++) zero = zero && !((const uint8_t *)f)[j];
            if (!zero) return BAD("unused mapped-file slot %u is not zero", i);
            continue;
        }
        if (f->size == 0 || f->size > SNAP_SIZE_MAX)
            return BAD("mapped file %u has size %llu (1..%llu)", i, (unsigned long long)f->size, SNAP_SIZE_MAX);
        if (!nul || nul - f->label > HL_FILE_LABEL_MAX) return BAD("mapped file %u: label not terminated", i);
        for (const char *c = nul; c < f->label + sizeof f->label; c++) zero = zero && !*c;
        if (!zero) return BAD("mapped file %u: bytes after the label's end are not zero", i);
    }
    if (h->nregions > HL_MAX_REGIONS) return BAD("%u regions (at most %d)", h->nregions, HL_MAX_REGIONS);
    for (uint32_t i = h->nregions; i < SNAP_REGIONS; i++)
        if (h->regions[i].kind || h->regions[i].perm || h->regions[i].gpa || h->regions[i].size)
            return BAD("unused region slot %u is not zero", i);
    for (uint32_t i = 0; i < h->nregions; i++) {
        const struct snap_region *r = &h->regions[i];
        if (r->kind > HL_RGN_FILE) return BAD("region %u has invalid kind %u", i, r->kind);
        if (r->perm != kind_perm(r->kind))
            return BAD("region %u (%s) has permissions %u, not %u", i, hl_region_name((int)r->kind), r->perm,
                       kind_perm(r->kind));
        if (r->gpa % HL_PAGE || r->size % HL_PAGE || r->size == 0 || r->size > SNAP_SIZE_MAX ||
            r->gpa > 64 * SNAP_SIZE_MAX)
            return BAD("region %u (%s) at 0x%llx+0x%llx is not whole pages in range", i, hl_region_name((int)r->kind),
                       (unsigned long long)r->gpa, (unsigned long long)r->size);
        lo->regions[i] = (hl_region){ .kind = (int)r->kind, .gpa = r->gpa, .size = r->size, .perm = r->perm };
    }
    lo->nregions = (int)h->nregions;

    /* what follows the image, in order */
    tail[k++] = (typeof(tail[0])){ HL_RGN_META, HL_PAGE, &h->meta };
    tail[k++] = (typeof(tail[0])){ HL_RGN_HEAP, h->heap_size, &h->heap };
    tail[k++] = (typeof(tail[0])){ HL_RGN_GUARD, HL_PAGE, &h->guard };
    tail[k++] = (typeof(tail[0])){ HL_RGN_STACK, h->scratch_size, &h->stack };
    tail[k++] = (typeof(tail[0])){ HL_RGN_INPUT, h->input_size, &h->input };
    tail[k++] = (typeof(tail[0])){ HL_RGN_OUTPUT, h->output_size, &h->output };
    if (init_pages) tail[k++] = (typeof(tail[0])){ HL_RGN_INIT, init_pages, &h->init };
    else if (h->init) return BAD("init data address 0x%llx without init data", (unsigned long long)h->init);
    for (uint32_t i = 0; i < h->nfiles; i++)
        tail[k++] = (typeof(tail[0])){ HL_RGN_FILE, HL_ALIGN_UP(h->files[i].size, HL_PAGE), &h->files[i].gpa };
    nelf = (int)h->nregions - 1 - k;
    if (nelf < 1 || nelf > HL_ELF_MAX_SEGS)
        return BAD("%u regions: %d for the guest image (1..%d)", h->nregions, nelf, HL_ELF_MAX_SEGS);

    if (h->regions[0].kind != HL_RGN_PEB || h->regions[0].gpa != HL_PEB_GPA || h->regions[0].size != HL_PAGE)
        return BAD("region 0 is not the PEB page at 0x%x", HL_PEB_GPA);
    for (int i = 1; i <= nelf; i++) {
        const struct snap_region *r = &h->regions[i];
        if (!is_elf_kind(r->kind))
            return BAD("region %d (%s) where a guest image region belongs", i, hl_region_name((int)r->kind));
        if (r->gpa < at)
            return BAD("region %d at 0x%llx overlaps the one before or lies below the image base", i,
                       (unsigned long long)r->gpa);
        if (r->gpa + r->size > (uint64_t)HL_IMAGE_BASE + HL_ELF_MAX_SPAN) return BAD("region %d ends beyond the image area", i);
        if (r->kind == HL_RGN_DATA) {
            if (!seen_w) first_w = r->gpa;
            seen_w = true;
        } else if (seen_w) {
            return BAD("read-only region %d follows a writable one", i);
        }
        ncode += r->kind == HL_RGN_CODE;
        at = r->gpa + r->size;
    }
    if (!ncode) return BAD("no code region");
    elf_end = at;
    if (h->ro_end != (seen_w ? first_w : elf_end))
        return BAD("ro_end 0x%llx is not the start of the writable image (0x%llx)", (unsigned long long)h->ro_end,
                   (unsigned long long)(seen_w ? first_w : elf_end));
    for (int j = 0; j < k; j++) {
        const struct snap_region *r = &h->regions[nelf + 1 + j];
        if (tail[j].kind == HL_RGN_FILE) {
            if (j == 0 || tail[j - 1].kind != HL_RGN_FILE) { /* the memory image ends before the files */
                if (h->total != at)
                    return BAD("total 0x%llx is not the end of the memory image (0x%llx)", (unsigned long long)h->total,
                               (unsigned long long)at);
            }
            at += HL_PAGE;
        }
        if ((int)r->kind != tail[j].kind || r->gpa != at || r->size != tail[j].size || *tail[j].gpa != at)
            return BAD("region %d (%s) is not the %s at 0x%llx+0x%llx", nelf + 1 + j, hl_region_name((int)r->kind),
                       hl_region_name(tail[j].kind), (unsigned long long)at, (unsigned long long)tail[j].size);
        at += tail[j].size;
    }
    if (!h->nfiles && h->total != at)
        return BAD("total 0x%llx is not the end of the memory image (0x%llx)", (unsigned long long)h->total,
                   (unsigned long long)at);
    if (h->end != at)
        return BAD("end 0x%llx is not the end of the last region (0x%llx)", (unsigned long long)h->end,
                   (unsigned long long)at);
    lo->sizes.heap = h->heap_size;
    lo->sizes.scratch = h->scratch_size;
    lo->sizes.input = h->input_size;
    lo->sizes.output = h->output_size;
    lo->sizes.init = h->init_size;
    lo->sizes.nfiles = (int)h->nfiles;
    for (uint32_t i = 0; i < h->nfiles; i++) {
        lo->sizes.file_size[i] = h->files[i].size;
        memcpy(lo->sizes.file_label[i], h->files[i].label, HL_FILE_LABEL_MAX + 1);
        lo->file_gpa[i] = h->files[i].gpa;
    }
    lo->ro_end = h->ro_end;
    lo->total = h->total;
    lo->end = h->end;
    lo->entry = h->entry;
    lo->meta = h->meta;
    lo->heap = h->heap;
    lo->guard = h->guard;
    lo->stack = h->stack;
    lo->input = h->input;
    lo->output = h->output;
    lo->init = h->init;
    if (hl_pt_pages_needed(lo) > HL_PT_MAX_PAGES || h->pt_end != HL_PT_GPA + hl_pt_pages_needed(lo) * HL_PAGE)
        return BAD("page-table end 0x%llx is not 0x%llx", (unsigned long long)h->pt_end,
                   (unsigned long long)(HL_PT_GPA + hl_pt_pages_needed(lo) * HL_PAGE));
    lo->pt_end = h->pt_end;
    {
        const hl_region *e = hl_layout_find(lo, h->entry);
        if (!e || e->kind != HL_RGN_CODE)
            return BAD("entry point 0x%llx is not in code", (unsigned long long)h->entry);
    }
    return NULL;
}

/* The vCPU must be where the host left it: in long mode on the host's page tables, rip in
 * code, rsp in the stack. */
static const char *check_cpu(const hl_layout *lo, const hl_cpu_state *cpu, char *why, size_t wlen)
{
    struct kvm_sregs sr;
    uint64_t rip = cpu->regs[HL_REG_RIP], rsp = cpu->regs[HL_REG_RSP];
    const hl_region *r = hl_layout_find(lo, rip);
    _Static_assert(sizeof sr == sizeof cpu->sregs, "kvm_sregs");
    memcpy(&sr, cpu->sregs, sizeof sr);
    if (!r || !(r->perm & HL_PERM_X))
        return BAD("rip 0x%llx is not in executable memory", (unsigned long long)rip);
    if (rsp < lo->stack || rsp > lo->stack + lo->sizes.scratch)
        return BAD("rsp 0x%llx is not in the stack 0x%llx..0x%llx", (unsigned long long)rsp,
                   (unsigned long long)lo->stack, (unsigned long long)(lo->stack + lo->sizes.scratch));
    if (sr.cr3 != HL_PT_GPA || (sr.cr0 & 0x80000001u) != 0x80000001u || !(sr.efer & (1u << 10)))
        return BAD("not in long mode on the host's page tables (cr0 0x%llx, cr3 0x%llx, efer 0x%llx)",
                   (unsigned long long)sr.cr0, (unsigned long long)sr.cr3, (unsigned long long)sr.efer);
    return NULL;
}
#undef BAD

hl_status snap_check_header(const char *path, const struct snap_header *h, uint64_t size, hl_layout *lo,
                            hl_cpu_state *cpu)
{
    const uint64_t nfns = (uint64_t)h->nguestfns + h->nhostfns, meta_len = h->meta_end - SNAP_HEADER;
    const uint64_t mem_end = h->mem_offset + h->mem_length; /* both bounded once checked: no overflow */
    char why[HL_ERR_LEN];
#define REFUSE(...) return snap_fail(path, HL_ERR_BAD_GUEST, __VA_ARGS__)
    if (size == 0) REFUSE("empty file");
    if (memcmp(h->magic, HL_SNAPSHOT_MAGIC, size < 8 ? (size_t)size : 8)) REFUSE("not a hyperlight snapshot (bad magic)");
    if (size >= 12 && h->format != SNAP_FORMAT)
        REFUSE("format version %u, but this library reads version %u", h->format, SNAP_FORMAT);
    if (size >= 16 && h->abi != HL_ABI_VERSION)
        REFUSE("made for guest ABI version %u, but this library implements version %u", h->abi, HL_ABI_VERSION);
    if (size < SNAP_HEADER)
        REFUSE("truncated: %llu bytes, but the header alone is %u", (unsigned long long)size, SNAP_HEADER);
    if (hl_checksum((const uint8_t *)h, offsetof(struct snap_header, header_sum)) != h->header_sum)
        REFUSE("corrupt header (checksum mismatch)");
    if (!snap_all_zero(h->reserved, sizeof h->reserved) || h->flags || h->zero)
        REFUSE("corrupt header (reserved fields are not zero)");
    if (h->nguestfns > HL_MAX_FUNC_TABLE || h->nhostfns > SNAP_MAX_HOSTFNS)
        REFUSE("%u guest and %u host functions (at most %d and %d)", h->nguestfns, h->nhostfns, HL_MAX_FUNC_TABLE,
               SNAP_MAX_HOSTFNS);
    if (h->meta_end < SNAP_HEADER || meta_len > nfns * SNAP_FN_MAX || meta_len < nfns * SNAP_FN_MIN)
        REFUSE("metadata length %llu does not fit %llu functions", (unsigned long long)meta_len,
               (unsigned long long)nfns);
    if (h->mem_offset != HL_ALIGN_UP(h->meta_end, HL_PAGE))
        REFUSE("memory offset 0x%llx is not the first page after the metadata (0x%llx)",
               (unsigned long long)h->mem_offset, (unsigned long long)HL_ALIGN_UP(h->meta_end, HL_PAGE));
    if (check_layout(h, lo, why, sizeof why)) REFUSE("bad layout: %s", why);
    /* described, but their contents are not in the file (see hl_snapshot_save) */
    if (lo->sizes.nfiles) REFUSE("maps %d host files, which snapshot files do not support", lo->sizes.nfiles);
    if (h->mem_length != lo->total)
        REFUSE("memory length 0x%llx is not the layout's total 0x%llx", (unsigned long long)h->mem_length,
               (unsigned long long)lo->total);
    memcpy(cpu, h->cpu, sizeof *cpu);
    if (check_cpu(lo, cpu, why, sizeof why)) REFUSE("bad vCPU state: %s", why);
    if (size < mem_end)
        REFUSE("truncated: %llu bytes, but the %s ends at %llu", (unsigned long long)size,
               size < h->meta_end ? "metadata" : "memory image",
               (unsigned long long)(size < h->meta_end ? h->meta_end : mem_end));
    if (size > mem_end) REFUSE("unexpected data after the memory image (%llu bytes)", (unsigned long long)(size - mem_end));
#undef REFUSE
    return HL_OK;
}
