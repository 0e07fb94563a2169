/* snapfile.c - snapshot files: hl_snapshot_save and hl_snapshot_load (docs/snapshots.md).
 *
 * A file is one header page, the function tables, and the memory image at a page-aligned
 * offset, laid out like guest-physical memory so that loading maps it: the loaded snapshot's
 * image is one extent of the file itself, and processes loading the same file share its
 * pages in the page cache. Zero pages are holes on disk and are never read: both directions
 * walk the files with SEEK_DATA/SEEK_HOLE and account for a hole in the checksum
 * arithmetically (FNV-1a over a zero word is one multiplication).
 *
 * Loading treats the file as hostile: every field is checked before it is used, and the
 * memory is checksummed before the snapshot is handed out. A file that passes is then no
 * more dangerous than a hostile guest (its memory and registers are the guest's business). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* ---- the format (all integers little-endian; the library is x86-64 only) ---- */
#define SNAP_FORMAT 1u
#define SNAP_HEADER 4096u            /* the header page; the metadata follows it */
#define SNAP_REGIONS 40              /* region slots in the header */
#define SNAP_FILES 8                 /* mapped-file slots in the header */
#define SNAP_LABEL 48                /* bytes of a mapped file's label slot (NUL-terminated) */
#define SNAP_MAX_HOSTFNS 4096        /* host functions a snapshot file may record */
#define SNAP_FN_MAX (1 + HL_MAX_NAME + 2 + HL_MAX_ARGS) /* bytes of one encoded function */
#define SNAP_SIZE_MAX (1ull << 30)   /* any one size or region; keeps every sum exact */

struct snap_region {
    uint32_t kind, perm;
    uint64_t gpa, size;
};

struct snap_file {
    uint64_t gpa, size;
    char label[SNAP_LABEL];
};

struct snap_header {
    char magic[8];        /*    0: HL_SNAPSHOT_MAGIC */
    uint32_t format;      /*    8: SNAP_FORMAT */
    uint32_t abi;         /*   12: HL_ABI_VERSION */
    uint64_t meta_end;    /*   16: header + metadata length (metadata = [4096, meta_end)) */
    uint64_t mem_offset;  /*   24: file offset of guest page 0 = meta_end rounded up to a page */
    uint64_t mem_length;  /*   32: = total */
    uint64_t generation;  /*   40 */
    uint64_t heap_size, scratch_size, input_size, output_size, init_size; /* 48 */
    uint64_t ro_end, total, end, pt_end, entry;                           /* 88 */
    uint64_t meta, heap, guard, stack, input, output, init;               /* 128 */
    uint32_t nregions;    /*  184 */
    uint32_t nguestfns;   /*  188 */
    uint32_t nhostfns;    /*  192 */
    uint32_t nfiles;      /*  196 */
    uint32_t flags;       /*  200: 0 */
    uint32_t zero;        /*  204: 0 */
    struct snap_file files[SNAP_FILES];       /*  208: unused slots are zero */
    struct snap_region regions[SNAP_REGIONS]; /*  720: unused slots are zero */
    uint8_t cpu[sizeof(hl_cpu_state)];        /* 1680: kvm_regs, kvm_sregs, kvm_fpu */
    uint64_t meta_sum;    /* 2552: hl_checksum of the metadata */
    uint64_t mem_sum;     /* 2560: hl_checksum of the memory image [0, total) */
    uint8_t reserved[SNAP_HEADER - 2568 - 8]; /* zero */
    uint64_t header_sum;  /* 4088: hl_checksum of bytes [0, 4088) */
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
_Static_assert(HL_MAX_REGIONS <= SNAP_REGIONS, "region table");
_Static_assert(HL_MAX_FILES <= SNAP_FILES && HL_FILE_LABEL_MAX + 1 <= SNAP_LABEL, "mapped files");
_Static_assert(sizeof HL_SNAPSHOT_MAGIC - 1 == sizeof ((struct snap_header *)0)->magic, "magic");

/* ---- checksums: hl_checksum (FNV-1a over 64-bit words) in pieces ---- */
static uint64_t pow64(uint64_t b, uint64_t e)
{
    uint64_t r = 1;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return r;
}

/* Continues hash h over n pages at p; returns whether any byte is nonzero in *nonzero. */
static uint64_t sum_pages(uint64_t h, const uint8_t *p, uint64_t n, bool *nonzero)
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

/* n zero pages: h ^ 0 = h, so each word multiplies by the prime. */
static uint64_t sum_zero_pages(uint64_t h, uint64_t n)
{
    return h * pow64(pow64(HL_FNV_PRIME, HL_PAGE / 8), n);
}

/* Calls fn for runs of the n pages whose first is at file offset off (page-aligned) of fd,
 * in order, each run marked as a hole (reads as zeros) or as data. Filesystems may report
 * zeros as data, never data as a hole; without SEEK_DATA everything is data. */
typedef hl_status (*run_fn)(void *ctx, uint64_t page, uint64_t n, bool hole);

static hl_status walk_file(int fd, uint64_t off, uint64_t page, uint64_t n, run_fn fn, void *ctx)
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

static hl_status fail(const char *path, hl_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static hl_status fail(const char *path, hl_status st, const char *fmt, ...)
{
    char msg[HL_ERR_LEN];
    va_list ap;
    int n = snprintf(msg, sizeof msg, "snapshot file '%.200s': ", path); /* < 230 bytes */
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    return hl_set_thread_error(st, msg);
}

/* ---- metadata: the function tables ---- */
static size_t put_fn(uint8_t *p, const char *name, hl_type ret, const hl_type *params, int nparams)
{
    size_t len = strlen(name), at = 0;
    p[at++] = (uint8_t)len;
    memcpy(p + at, name, len);
    at += len;
    p[at++] = (uint8_t)ret;
    p[at++] = (uint8_t)nparams;
    for (int i = 0; i < nparams; i++) p[at++] = (uint8_t)params[i];
    return at;
}

static bool fn_ok(const char *name, hl_type ret, const hl_type *params, int nparams)
{
    size_t len = strlen(name);
    if (len == 0 || len > HL_MAX_NAME || (unsigned)ret > HL_TYPE_MAX || nparams < 0 || nparams > HL_MAX_ARGS)
        return false;
    for (int i = 0; i < nparams; i++)
        if (params[i] == HL_VOID || (unsigned)params[i] > HL_TYPE_MAX) return false;
    return true;
}

typedef struct meta_reader {
    const uint8_t *p;
    size_t len, at;
    char why[200];
} meta_reader;

/* Reads one function; false with r->why set if malformed. */
static bool get_fn(meta_reader *r, const char *table, uint32_t i, char name[HL_MAX_NAME + 1], hl_type *ret,
                   hl_type params[HL_MAX_ARGS], int *nparams)
{
    size_t len;
    if (r->at >= r->len) goto short_;
    len = r->p[r->at++];
    if (len == 0) {
        snprintf(r->why, sizeof r->why, "%s function %u has an empty name", table, i);
        return false;
    }
    if (r->len - r->at < len + 2) goto short_;
    memcpy(name, r->p + r->at, len);
    name[len] = 0;
    r->at += len;
    if (memchr(name, 0, len)) {
        snprintf(r->why, sizeof r->why, "%s function %u: name holds a NUL byte", table, i);
        return false;
    }
    *ret = (hl_type)r->p[r->at++];
    *nparams = r->p[r->at++];
    if ((unsigned)*ret > HL_TYPE_MAX) {
        snprintf(r->why, sizeof r->why, "%s function '%s': invalid return type %u", table, name, (unsigned)*ret);
        return false;
    }
    if (*nparams > HL_MAX_ARGS) {
        snprintf(r->why, sizeof r->why, "%s function '%s': %d parameters (at most %d)", table, name, *nparams,
                 HL_MAX_ARGS);
        return false;
    }
    if (r->len - r->at < (size_t)*nparams) goto short_;
    for (int j = 0; j < *nparams; j++) {
        params[j] = (hl_type)r->p[r->at++];
        if (params[j] == HL_VOID || (unsigned)params[j] > HL_TYPE_MAX) {
            snprintf(r->why, sizeof r->why, "%s function '%s': invalid type %u for parameter %d", table, name,
                     (unsigned)params[j], j);
            return false;
        }
    }
    return true;
short_:
    snprintf(r->why, sizeof r->why, "%s function %u runs past the end of the function tables", table, i);
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Finds a duplicate among n names (sorted copy of the pointers); returns it or NULL. */
static const char *duplicate(const char **names, uint32_t n)
{
    qsort(names, n, sizeof *names, cmp_str);
    for (uint32_t i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i])) return names[i];
    return NULL;
}

/* ---- save ---- */
struct save_ctx {
    const hl_snapshot *snap;
    int fd;
    uint64_t mem_offset, sum;
    uint64_t run_first, run_n; /* nonzero pages waiting to be written */
    uint64_t written;          /* pages written */
    int err;
};

static hl_status flush_run(struct save_ctx *c)
{
    const uint8_t *src = c->snap->view + c->run_first * HL_PAGE;
    uint64_t len = c->run_n * HL_PAGE, done = 0;
    while (done < len) {
        uint64_t chunk = len - done > (64u << 20) ? (64u << 20) : len - done;
        ssize_t w = pwrite(c->fd, src + done, chunk, (off_t)(c->mem_offset + c->run_first * HL_PAGE + done));
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            c->err = w < 0 ? errno : EIO;
            return HL_ERR_IO;
        }
        done += (uint64_t)w;
    }
    c->written += c->run_n;
    c->run_n = 0;
    return HL_OK;
}

static hl_status save_run(void *ctx, uint64_t page, uint64_t n, bool hole)
{
    struct save_ctx *c = ctx;
    if (hole) {
        c->sum = sum_zero_pages(c->sum, n);
        return c->run_n ? flush_run(c) : HL_OK;
    }
    for (uint64_t p = page; p < page + n; p++) {
        bool nz;
        c->sum = sum_pages(c->sum, c->snap->view + p * HL_PAGE, 1, &nz);
        if (!nz) {
            if (c->run_n && flush_run(c) != HL_OK) return HL_ERR_IO;
        } else if (c->run_n && c->run_first + c->run_n == p) {
            c->run_n++;
        } else {
            if (c->run_n && flush_run(c) != HL_OK) return HL_ERR_IO;
            c->run_first = p;
            c->run_n = 1;
        }
    }
    return HL_OK;
}

static hl_status write_all(int fd, const void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const uint8_t *)buf + done, len - done, off + (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return HL_ERR_IO;
        }
        done += (size_t)w;
    }
    return HL_OK;
}

/* fsyncs the directory holding path, so that the rename itself is durable. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd;
    if (!copy) return;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

hl_status hl_snapshot_save(const hl_snapshot *snap, const char *path)
{
    static unsigned seq;
    struct snap_header *h = NULL;
    const hl_layout *lo;
    uint8_t *buf = NULL;
    char *tmp = NULL;
    size_t meta_len = 0, at;
    struct save_ctx c;
    hl_status st;
    int fd = -1;

    if (!snap || !path || !*path)
        return hl_set_thread_error(HL_ERR_INVALID_ARG, "hl_snapshot_save: snapshot and path are required");
    lo = &snap->lo;
    if (!snap->has_cpu) return fail(path, HL_ERR_INVALID_ARG, "the snapshot has no vCPU state");
    if (snap->nguestfns < 0 || snap->nguestfns > HL_MAX_FUNC_TABLE || snap->nhostfns < 0 ||
        snap->nhostfns > SNAP_MAX_HOSTFNS || lo->nregions > SNAP_REGIONS || lo->sizes.nfiles < 0 ||
        lo->sizes.nfiles > SNAP_FILES)
        return fail(path, HL_ERR_INVALID_ARG, "the snapshot has %d guest and %d host functions (at most %d and %d)",
                    snap->nguestfns, snap->nhostfns, HL_MAX_FUNC_TABLE, SNAP_MAX_HOSTFNS);
    if (snap->nfiles || lo->sizes.nfiles)
        return fail(path, HL_ERR_INVALID_ARG,
                    "the snapshot maps %d host file%s, which a snapshot file cannot hold (they are not part of "
                    "its memory)", lo->sizes.nfiles, lo->sizes.nfiles == 1 ? "" : "s");
    for (int i = 0; i < snap->nguestfns; i++) {
        const hl_guestfn *f = &snap->guestfns[i];
        if (!fn_ok(f->name, f->ret, f->params, f->nparams))
            return fail(path, HL_ERR_INVALID_ARG, "guest function %d has an invalid signature", i);
    }
    for (int i = 0; i < snap->nhostfns; i++) {
        const hl_hostfn *f = &snap->hostfns[i];
        if (!fn_ok(f->name, f->ret, f->params, f->nparams))
            return fail(path, HL_ERR_INVALID_ARG, "host function %d has an invalid signature", i);
    }

    /* header and metadata, in one buffer */
    meta_len = (size_t)(snap->nguestfns + snap->nhostfns) * SNAP_FN_MAX;
    if (!(buf = calloc(1, SNAP_HEADER + meta_len + 1)))
        return fail(path, HL_ERR_NO_MEMORY, "out of memory");
    at = SNAP_HEADER;
    for (int i = 0; i < snap->nguestfns; i++) {
        const hl_guestfn *f = &snap->guestfns[i];
        at += put_fn(buf + at, f->name, f->ret, f->params, f->nparams);
    }
    for (int i = 0; i < snap->nhostfns; i++) {
        const hl_hostfn *f = &snap->hostfns[i];
        at += put_fn(buf + at, f->name, f->ret, f->params, f->nparams);
    }
    h = (struct snap_header *)buf;
    memcpy(h->magic, HL_SNAPSHOT_MAGIC, 8);
    h->format = SNAP_FORMAT;
    h->abi = HL_ABI_VERSION;
    h->meta_end = at;
    h->mem_offset = HL_ALIGN_UP(at, HL_PAGE);
    h->mem_length = lo->total;
    h->generation = snap->generation;
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
    h->nregions = (uint32_t)lo->nregions;
    h->nfiles = (uint32_t)lo->sizes.nfiles;
    for (int i = 0; i < lo->sizes.nfiles; i++) {
        h->files[i].gpa = lo->file_gpa[i];
        h->files[i].size = lo->sizes.file_size[i];
        strncpy(h->files[i].label, lo->sizes.file_label[i], HL_FILE_LABEL_MAX); /* zero-padded */
    }
    h->nguestfns = (uint32_t)snap->nguestfns;
    h->nhostfns = (uint32_t)snap->nhostfns;
    for (int i = 0; i < lo->nregions; i++)
        h->regions[i] = (struct snap_region){ .kind = (uint32_t)lo->regions[i].kind, .perm = lo->regions[i].perm,
                                              .gpa = lo->regions[i].gpa, .size = lo->regions[i].size };
    memcpy(h->cpu, &snap->cpu, sizeof h->cpu);
    h->meta_sum = hl_checksum(buf + SNAP_HEADER, at - SNAP_HEADER);

    /* the file: a temporary name in the same directory, renamed over path when complete */
    if (asprintf(&tmp, "%s.tmp-%ld.%u", path, (long)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED)) < 0) {
        tmp = NULL;
        st = fail(path, HL_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        st = fail(path, HL_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        tmp = NULL; /* not ours to unlink */
        goto out;
    }
    if (ftruncate(fd, (off_t)(h->mem_offset + lo->total)) < 0) {
        st = fail(path, HL_ERR_IO, "sizing '%s': %s", tmp, strerror(errno));
        goto out;
    }
    /* memory: every file of the image, page by page in guest order; holes stay holes */
    c = (struct save_ctx){ .snap = snap, .fd = fd, .mem_offset = h->mem_offset, .sum = HL_FNV_BASIS };
    st = HL_OK;
    for (int i = 0; i < snap->img.n && st == HL_OK; i++) {
        const hl_extent *e = &snap->img.ext[i];
        st = walk_file(e->file->fd, e->file->offset + e->first * HL_PAGE, e->first, e->count, save_run, &c);
    }
    if (st == HL_OK && c.run_n) st = flush_run(&c);
    if (st != HL_OK) {
        st = fail(path, HL_ERR_IO, "writing '%s': %s", tmp, strerror(c.err));
        goto out;
    }
    h->mem_sum = c.sum;
    h->header_sum = hl_checksum(buf, offsetof(struct snap_header, header_sum));
    if (write_all(fd, buf, at, 0) != HL_OK) {
        st = fail(path, HL_ERR_IO, "writing '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) < 0) {
        st = fail(path, HL_ERR_IO, "fsync '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        st = fail(path, HL_ERR_IO, "closing '%s': %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        st = fail(path, HL_ERR_IO, "renaming '%s' to it: %s", tmp, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    sync_dir(path);
    st = hl_set_thread_error(HL_OK, "");
out:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(buf);
    return st;
}

/* ---- load ---- */
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
#define BAD(...) (snprintf(why, wlen, __VA_ARGS__), why)
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
#undef BAD
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
        return snprintf(why, wlen, "rip 0x%llx is not in executable memory", (unsigned long long)rip), why;
    if (rsp < lo->stack || rsp > lo->stack + lo->sizes.scratch)
        return snprintf(why, wlen, "rsp 0x%llx is not in the stack 0x%llx..0x%llx", (unsigned long long)rsp,
                        (unsigned long long)lo->stack, (unsigned long long)(lo->stack + lo->sizes.scratch)), why;
    if (sr.cr3 != HL_PT_GPA || (sr.cr0 & 0x80000001u) != 0x80000001u || !(sr.efer & (1u << 10)))
        return snprintf(why, wlen, "not in long mode on the host's page tables (cr0 0x%llx, cr3 0x%llx, efer 0x%llx)",
                        (unsigned long long)sr.cr0, (unsigned long long)sr.cr3, (unsigned long long)sr.efer), why;
    return NULL;
}

static bool read_all(int fd, void *buf, size_t len, off_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, off + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO; /* the file shrank under us */
            return false;
        }
        done += (size_t)r;
    }
    return true;
}

/* The function tables, parsed from the metadata before they are attached to a snapshot. */
typedef struct fn_tables {
    int nguest, nhost;
    hl_guestfn *guest;
    hl_hostfn *host;
} fn_tables;

static void tables_free(fn_tables *t)
{
    hl_guestfns_free(t->guest, t->nguest);
    free(t->host);
    memset(t, 0, sizeof *t);
}

/* Parses the metadata into t. Returns NULL or what is wrong (*oom if memory ran out). */
static const char *parse_meta(const struct snap_header *h, const uint8_t *meta, size_t len, fn_tables *t,
                              char *why, size_t wlen, bool *oom)
{
    meta_reader r = { .p = meta, .len = len };
    const char **names = NULL;
    const char *dup;
    char name[HL_MAX_NAME + 1];
    hl_type ret, params[HL_MAX_ARGS];
    int np;

    *oom = false;
    memset(t, 0, sizeof *t);
    if (!(t->guest = calloc(h->nguestfns ? h->nguestfns : 1, sizeof *t->guest)) ||
        (h->nhostfns && !(t->host = calloc(h->nhostfns, sizeof *t->host))) ||
        !(names = malloc(((size_t)h->nguestfns + h->nhostfns + 1) * sizeof *names)))
        goto oom;
    for (uint32_t i = 0; i < h->nguestfns; i++) {
        hl_guestfn *f = &t->guest[i];
        if (!get_fn(&r, "guest", i, name, &ret, params, &np)) goto bad;
        if (!(f->name = strdup(name))) goto oom;
        f->hidden = strncmp(name, HL_RESERVED_PREFIX, strlen(HL_RESERVED_PREFIX)) == 0;
        t->nguest++;
        f->ret = ret;
        f->nparams = np;
        memcpy(f->params, params, (size_t)np * sizeof *params);
        names[i] = f->name;
    }
    for (uint32_t i = 0; i < h->nhostfns; i++) {
        hl_hostfn *f = &t->host[i];
        if (!get_fn(&r, "host", i, f->name, &f->ret, f->params, &f->nparams)) goto bad;
        t->nhost++;
    }
    if (r.at != r.len) {
        snprintf(r.why, sizeof r.why, "%zu bytes after the function tables", r.len - r.at);
        goto bad;
    }
    if ((dup = duplicate(names, h->nguestfns))) {
        snprintf(r.why, sizeof r.why, "guest function '%s' appears twice", dup);
        goto bad;
    }
    for (uint32_t i = 0; i < h->nhostfns; i++) names[i] = t->host[i].name;
    if ((dup = duplicate(names, h->nhostfns))) {
        snprintf(r.why, sizeof r.why, "host function '%s' appears twice", dup);
        goto bad;
    }
    free(names);
    return NULL;
oom:
    free(names);
    tables_free(t);
    *oom = true;
    return "out of memory";
bad:
    free(names);
    tables_free(t);
    snprintf(why, wlen, "bad function table: %s", r.why);
    return why;
}

struct sum_ctx {
    const uint8_t *view;
    uint64_t sum;
};

static hl_status sum_run(void *ctx, uint64_t page, uint64_t n, bool hole)
{
    struct sum_ctx *c = ctx;
    bool nz;
    c->sum = hole ? sum_zero_pages(c->sum, n) : sum_pages(c->sum, c->view + page * HL_PAGE, n, &nz);
    return HL_OK;
}

hl_status hl_snapshot_load(hl_snapshot **out, const char *path)
{
    struct snap_header h;
    struct stat stt;
    hl_layout lo;
    hl_cpu_state cpu;
    hl_snapshot *s = NULL;
    hl_memfile *file = NULL;
    hl_image img = { 0, NULL };
    uint8_t *meta = NULL;
    char why[HL_ERR_LEN], err[HL_ERR_LEN];
    const char *bad;
    uint64_t size, end, meta_len;
    fn_tables tables = { 0, 0, NULL, NULL };
    hl_status st;
    bool oom;
    int fd;

    if (out) *out = NULL;
    if (!out || !path) return hl_set_thread_error(HL_ERR_INVALID_ARG, "hl_snapshot_load: out and path are required");
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the open */
    if (fd < 0) return fail(path, HL_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(fd, &stt) < 0) {
        st = fail(path, HL_ERR_IO, "cannot stat: %s", strerror(errno));
        goto fail_fd;
    }
    if (S_ISDIR(stt.st_mode)) {
        st = fail(path, HL_ERR_IO, "is a directory");
        goto fail_fd;
    }
    if (!S_ISREG(stt.st_mode)) {
        st = fail(path, HL_ERR_IO, "not a regular file");
        goto fail_fd;
    }
    size = (uint64_t)stt.st_size;
    if (size == 0) {
        st = fail(path, HL_ERR_BAD_GUEST, "empty file");
        goto fail_fd;
    }

    /* the header: magic and versions first, then its checksum, then every field */
    memset(&h, 0, sizeof h);
    if (!read_all(fd, &h, size < SNAP_HEADER ? (size_t)size : SNAP_HEADER, 0)) {
        st = fail(path, HL_ERR_IO, "reading the header: %s", strerror(errno));
        goto fail_fd;
    }
    if (memcmp(h.magic, HL_SNAPSHOT_MAGIC, size < 8 ? (size_t)size : 8) != 0) {
        st = fail(path, HL_ERR_BAD_GUEST, "not a hyperlight snapshot (bad magic)");
        goto fail_fd;
    }
    if (size >= 12 && h.format != SNAP_FORMAT) {
        st = fail(path, HL_ERR_BAD_GUEST, "format version %u, but this library reads version %u", h.format, SNAP_FORMAT);
        goto fail_fd;
    }
    if (size >= 16 && h.abi != HL_ABI_VERSION) {
        st = fail(path, HL_ERR_BAD_GUEST, "made for guest ABI version %u, but this library implements version %u",
                  h.abi, HL_ABI_VERSION);
        goto fail_fd;
    }
    if (size < SNAP_HEADER) {
        st = fail(path, HL_ERR_BAD_GUEST, "truncated: %llu bytes, but the header alone is %u", (unsigned long long)size,
                  SNAP_HEADER);
        goto fail_fd;
    }
    if (hl_checksum((const uint8_t *)&h, offsetof(struct snap_header, header_sum)) != h.header_sum) {
        st = fail(path, HL_ERR_BAD_GUEST, "corrupt header (checksum mismatch)");
        goto fail_fd;
    }
    {
        uint8_t any = 0;
        for (size_t i = 0; i < sizeof h.reserved; i++) any |= h.reserved[i];
        if (any || h.flags || h.zero) {
            st = fail(path, HL_ERR_BAD_GUEST, "corrupt header (reserved fields are not zero)");
            goto fail_fd;
        }
    }
    if (h.nguestfns > HL_MAX_FUNC_TABLE || h.nhostfns > SNAP_MAX_HOSTFNS) {
        st = fail(path, HL_ERR_BAD_GUEST, "%u guest and %u host functions (at most %d and %d)", h.nguestfns,
                  h.nhostfns, HL_MAX_FUNC_TABLE, SNAP_MAX_HOSTFNS);
        goto fail_fd;
    }
    meta_len = h.meta_end - SNAP_HEADER;
    if (h.meta_end < SNAP_HEADER || meta_len > (uint64_t)(h.nguestfns + h.nhostfns) * SNAP_FN_MAX ||
        meta_len < (uint64_t)(h.nguestfns + h.nhostfns) * 4) {
        st = fail(path, HL_ERR_BAD_GUEST, "metadata length %llu does not fit %u functions",
                  (unsigned long long)(h.meta_end - SNAP_HEADER), h.nguestfns + h.nhostfns);
        goto fail_fd;
    }
    if (h.mem_offset != HL_ALIGN_UP(h.meta_end, HL_PAGE)) {
        st = fail(path, HL_ERR_BAD_GUEST, "memory offset 0x%llx is not the first page after the metadata (0x%llx)",
                  (unsigned long long)h.mem_offset, (unsigned long long)HL_ALIGN_UP(h.meta_end, HL_PAGE));
        goto fail_fd;
    }
    if ((bad = check_layout(&h, &lo, why, sizeof why))) {
        st = fail(path, HL_ERR_BAD_GUEST, "bad layout: %s", bad);
        goto fail_fd;
    }
    if (lo.sizes.nfiles) { /* described, but their contents are not in the file (see hl_snapshot_save) */
        st = fail(path, HL_ERR_BAD_GUEST, "maps %d host files, which snapshot files do not support", lo.sizes.nfiles);
        goto fail_fd;
    }
    if (h.mem_length != lo.total) {
        st = fail(path, HL_ERR_BAD_GUEST, "memory length 0x%llx is not the layout's total 0x%llx",
                  (unsigned long long)h.mem_length, (unsigned long long)lo.total);
        goto fail_fd;
    }
    memcpy(&cpu, h.cpu, sizeof cpu);
    if ((bad = check_cpu(&lo, &cpu, why, sizeof why))) {
        st = fail(path, HL_ERR_BAD_GUEST, "bad vCPU state: %s", bad);
        goto fail_fd;
    }
    end = h.mem_offset + h.mem_length; /* both bounded above: no overflow */
    if (size < end) {
        st = fail(path, HL_ERR_BAD_GUEST, "truncated: %llu bytes, but the %s ends at %llu", (unsigned long long)size,
                  size < h.meta_end ? "metadata" : "memory image",
                  (unsigned long long)(size < h.meta_end ? h.meta_end : end));
        goto fail_fd;
    }
    if (size > end) {
        st = fail(path, HL_ERR_BAD_GUEST, "unexpected data after the memory image (%llu bytes)",
                  (unsigned long long)(size - end));
        goto fail_fd;
    }

    /* the function tables, and the padding up to the memory (zeros) */
    if (!(meta = malloc((size_t)(h.mem_offset - SNAP_HEADER) + 1))) {
        st = fail(path, HL_ERR_NO_MEMORY, "out of memory");
        goto fail_fd;
    }
    if (!read_all(fd, meta, (size_t)(h.mem_offset - SNAP_HEADER), SNAP_HEADER)) {
        st = fail(path, HL_ERR_IO, "reading the function tables: %s", strerror(errno));
        goto fail_fd;
    }
    if (hl_checksum(meta, meta_len) != h.meta_sum) {
        st = fail(path, HL_ERR_BAD_GUEST, "corrupt function tables (checksum mismatch)");
        goto fail_fd;
    }
    for (uint64_t i = meta_len; i < h.mem_offset - SNAP_HEADER; i++)
        if (meta[i]) {
            st = fail(path, HL_ERR_BAD_GUEST, "corrupt padding after the function tables (not zero)");
            goto fail_fd;
        }
    if ((bad = parse_meta(&h, meta, (size_t)meta_len, &tables, why, sizeof why, &oom))) {
        st = fail(path, oom ? HL_ERR_NO_MEMORY : HL_ERR_BAD_GUEST, "%s", bad);
        goto fail_fd;
    }

    /* the memory: the file itself, mapped; checksummed before anything uses it */
    if (!(file = hl_memfile_new(fd, h.mem_offset))) {
        st = fail(path, HL_ERR_NO_MEMORY, "out of memory");
        goto fail_fd;
    }
    fd = -1; /* file owns it */
    if (hl_image_single(&img, file, lo.total / HL_PAGE) != HL_OK) {
        st = fail(path, HL_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    if ((st = hl_snapshot_from_image(&s, &lo, &img, err)) != HL_OK) {
        st = fail(path, st, "%s", err);
        goto fail;
    }
    {
        struct sum_ctx c = { .view = s->view, .sum = HL_FNV_BASIS };
        walk_file(file->fd, h.mem_offset, 0, lo.total / HL_PAGE, sum_run, &c);
        if (c.sum != h.mem_sum) {
            st = fail(path, HL_ERR_BAD_GUEST, "corrupt memory image (checksum mismatch)");
            goto fail;
        }
    }
    s->guestfns = tables.guest;
    s->nguestfns = tables.nguest;
    s->hostfns = tables.host;
    s->nhostfns = tables.nhost;
    s->generation = h.generation;
    s->has_cpu = true;
    s->cpu = cpu;
    hl_memfile_unref(file);
    free(meta);
    *out = s;
    return hl_set_thread_error(HL_OK, "");
fail:
    hl_snapshot_free(s);
    hl_image_free(&img);
    hl_memfile_unref(file);
fail_fd:
    tables_free(&tables);
    free(meta);
    if (fd >= 0) close(fd);
    return st;
}
