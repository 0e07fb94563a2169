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
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "snapfile.h"

hl_status snap_fail(const char *path, hl_status st, const char *fmt, ...)
{
    char msg[HL_ERR_LEN];
    va_list ap;
    int n = snprintf(msg, sizeof msg, "snapshot file '%.200s': ", path); /* < 230 bytes */
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    return hl_thread_fail(st, "%s", msg);
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
        h->regions[i] = (struct snap_region){ .kind = (uint32_t)lo->regions[i].kind,
                                              .perm = lo->regions[i].perm,
                                              .gpa = lo->regions[i].gpa,
                                              .size = lo->regions[i].size };
}

#define BAD(...) (snprintf(why, wlen, __VA_ARGS__), why)

bool snap_all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) any |= b[i];
    return !any;
}

/* The sizes a configuration can have (hyperlight.h), and the mapped-file slots, each
 * encoded one way only. Fills s. */
static const char *header_sizes(const struct snap_header *h, hl_sizes *s, char *why, size_t wlen)
{
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
    if (h->init_size > HL_INIT_DATA_MAX)
        return BAD("init data size %llu above %u", (unsigned long long)h->init_size, HL_INIT_DATA_MAX);
    if (h->nfiles > SNAP_FILES) return BAD("%u mapped files (at most %d)", h->nfiles, SNAP_FILES);
    memset(s, 0, sizeof *s);
    for (uint32_t i = 0; i < SNAP_FILES; i++) {
        const struct snap_file *f = &h->files[i];
        const char *nul = memchr(f->label, 0, sizeof f->label);
        if (i >= h->nfiles && !snap_all_zero(f, sizeof *f)) return BAD("unused mapped-file slot %u is not zero", i);
        if (i >= h->nfiles) continue;
        if (!nul || nul - f->label > HL_FILE_LABEL_MAX) return BAD("mapped file %u: label not terminated", i);
        if (!snap_all_zero(nul, (size_t)(f->label + sizeof f->label - nul)))
            return BAD("mapped file %u: bytes after the label's end are not zero", i);
        s->file_size[i] = f->size;
        memcpy(s->file_label[i], f->label, HL_FILE_LABEL_MAX + 1);
    }
    s->heap = h->heap_size;
    s->scratch = h->scratch_size;
    s->input = h->input_size;
    s->output = h->output_size;
    s->init = h->init_size;
    s->nfiles = (int)h->nfiles;
    return NULL;
}

static bool is_elf_kind(uint32_t k) { return k == HL_RGN_CODE || k == HL_RGN_RODATA || k == HL_RGN_DATA; }

/* The segment flags that make hl_layout_build give a region this kind and its permissions. */
static uint32_t seg_flags(uint32_t kind)
{
    return HL_SEG_R | (kind == HL_RGN_CODE ? HL_SEG_X : 0) | (kind == HL_RGN_DATA ? HL_SEG_W : 0);
}

/* The guest image: the regions after the PEB with a kind an ELF segment gives, made into the
 * hl_elf they came from, with the rules elf.c holds segments to: 1..HL_ELF_MAX_SEGS of them,
 * whole pages inside the image area, ascending without overlap, read-only before writable,
 * some code, and the entry point in code. */
static const char *header_elf(const struct snap_header *h, hl_elf *elf, char *why, size_t wlen)
{
    const uint64_t limit = (uint64_t)HL_IMAGE_BASE + HL_ELF_MAX_SPAN;
    uint64_t at = HL_IMAGE_BASE;
    bool seen_w = false, code = false;
    memset(elf, 0, sizeof *elf);
    for (uint32_t i = 1; i < h->nregions && is_elf_kind(h->regions[i].kind); i++) {
        const struct snap_region *r = &h->regions[i];
        if (elf->nseg == HL_ELF_MAX_SEGS) return BAD("more than %d guest image regions", HL_ELF_MAX_SEGS);
        if (r->gpa % HL_PAGE || r->size % HL_PAGE || r->size == 0)
            return BAD("region %u (%s) at 0x%llx+0x%llx is not whole pages", i, hl_region_name((int)r->kind),
                       (unsigned long long)r->gpa, (unsigned long long)r->size);
        if (r->gpa < at)
            return BAD("region %u at 0x%llx overlaps the one before or lies below the image base", i,
                       (unsigned long long)r->gpa);
        if (r->gpa > limit || r->size > limit - r->gpa) return BAD("region %u ends beyond the image area", i);
        if (r->kind != HL_RGN_DATA && seen_w) return BAD("read-only region %u follows a writable one", i);
        if (r->kind == HL_RGN_DATA && !seen_w) elf->ro_end = r->gpa;
        seen_w |= r->kind == HL_RGN_DATA;
        code |= r->kind == HL_RGN_CODE;
        elf->seg[elf->nseg++] = (hl_segment){ .vaddr = r->gpa, .memsz = r->size, .flags = seg_flags(r->kind) };
        at = r->gpa + r->size;
    }
    if (!code) return BAD("no code region");
    elf->end = at;
    if (!seen_w) elf->ro_end = at;
    elf->entry = h->entry;
    for (int i = 0; i < elf->nseg; i++)
        if ((elf->seg[i].flags & HL_SEG_X) && h->entry - elf->seg[i].vaddr < elf->seg[i].memsz) return NULL;
    return BAD("entry point 0x%llx is not in code", (unsigned long long)h->entry);
}

/* The header's layout, field by field, against the one hl_layout_build made. */
static const char *same_layout(const struct snap_header *h, const hl_layout *lo, char *why, size_t wlen)
{
    const struct {
        const char *name;
        uint64_t file, built;
    } f[] = { { "ro_end", h->ro_end, lo->ro_end }, { "total", h->total, lo->total },
              { "end", h->end, lo->end },          { "page-table end", h->pt_end, lo->pt_end },
              { "meta", h->meta, lo->meta },       { "heap", h->heap, lo->heap },
              { "guard", h->guard, lo->guard },    { "stack", h->stack, lo->stack },
              { "input", h->input, lo->input },    { "output", h->output, lo->output },
              { "init", h->init, lo->init } };
    for (uint32_t i = 0; i < h->nregions && i < (uint32_t)lo->nregions; i++) {
        const struct snap_region *r = &h->regions[i];
        const hl_region *b = &lo->regions[i];
        if (r->kind != (uint32_t)b->kind || r->perm != b->perm || r->gpa != b->gpa || r->size != b->size)
            return BAD("region %u (%s at 0x%llx+0x%llx, permissions %u) is not the %s at 0x%llx+0x%llx "
                       "(permissions %u)",
                       i, hl_region_name((int)r->kind), (unsigned long long)r->gpa, (unsigned long long)r->size, r->perm,
                       hl_region_name(b->kind), (unsigned long long)b->gpa, (unsigned long long)b->size, b->perm);
    }
    if (h->nregions != (uint32_t)lo->nregions)
        return BAD("%u regions, but this image and these sizes make %d", h->nregions, lo->nregions);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].file != f[i].built)
            return BAD("%s 0x%llx is not 0x%llx", f[i].name, (unsigned long long)f[i].file,
                       (unsigned long long)f[i].built);
    for (int i = 0; i < lo->sizes.nfiles; i++)
        if (h->files[i].gpa != lo->file_gpa[i])
            return BAD("mapped file %d at 0x%llx is not at 0x%llx", i, (unsigned long long)h->files[i].gpa,
                       (unsigned long long)lo->file_gpa[i]);
    return NULL;
}

/* The layout must be the one hl_layout_build makes of the header's guest image and sizes.
 * Returns NULL (lo filled) or what is wrong (in why). */
static const char *check_layout(const struct snap_header *h, hl_layout *lo, char *why, size_t wlen)
{
    char err[HL_ERR_LEN];
    hl_sizes sizes;
    hl_elf elf;
    const char *bad;
    if (h->nregions > SNAP_MAX_REGIONS) return BAD("%u regions (at most %d)", h->nregions, SNAP_MAX_REGIONS);
    for (uint32_t i = h->nregions; i < SNAP_REGIONS; i++)
        if (!snap_all_zero(&h->regions[i], sizeof h->regions[i])) return BAD("unused region slot %u is not zero", i);
    if ((bad = header_sizes(h, &sizes, why, wlen)) || (bad = header_elf(h, &elf, why, wlen))) return bad;
    if (hl_layout_build(lo, &elf, &sizes, err) != HL_OK) return BAD("%s", err);
    return same_layout(h, lo, why, wlen);
}

/* The vCPU must be where the host left it: in long mode on the host's page tables, rip in
 * code, rsp in the stack. */
static const char *check_cpu(const hl_layout *lo, const hl_cpu_state *cpu, char *why, size_t wlen)
{
    hl_core_regs sr;
    uint64_t rip = cpu->regs[HL_REG_RIP], rsp = cpu->regs[HL_REG_RSP];
    const hl_region *r = hl_layout_find(lo, rip);
    hl_cpu_core_regs(cpu, NULL, &sr);
    if (!r || !(r->perm & HL_PERM_X)) return BAD("rip 0x%llx is not in executable memory", (unsigned long long)rip);
    if (rsp < lo->stack || rsp > lo->stack + lo->sizes.scratch)
        return BAD("rsp 0x%llx is not in the stack 0x%llx..0x%llx", (unsigned long long)rsp,
                   (unsigned long long)lo->stack, (unsigned long long)(lo->stack + lo->sizes.scratch));
    if (sr.cr3 != HL_PT_GPA || !hl_cpu_long_mode(cpu))
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
    if (memcmp(h->magic, HL_SNAPSHOT_MAGIC, size < 8 ? (size_t)size : 8))
        REFUSE("not a hyperlight snapshot (bad magic)");
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
    if (size > mem_end)
        REFUSE("unexpected data after the memory image (%llu bytes)", (unsigned long long)(size - mem_end));
#undef REFUSE
    return HL_OK;
}
