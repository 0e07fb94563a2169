/* snapfile_save.c - hl_snapshot_save: a snapshot to a snapshot file (docs/snapshots.md).
 *
 * Three steps: build the header and the function tables in memory; write the memory image
 * into a temporary file beside the target (page by page in guest order, reading only data
 * pages and writing only nonzero ones, so that zero pages stay holes), then the header;
 * commit (fsync, rename over the target, fsync the directory). A reader sees the old file
 * or the new one, never a mix; a failure removes the temporary file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "snapfile.h"

/* What a save has so far; save_free releases it (and removes the temporary file). */
typedef struct save {
    const hl_snapshot *snap;
    const char *path;
    uint8_t *buf; /* header and metadata: the file's first meta_end bytes */
    size_t meta_end;
    char *tmp; /* the temporary file, while it is ours to remove */
    int fd;
    /* writing the memory */
    uint64_t sum;
    uint64_t run_first, run_n; /* nonzero pages waiting to be written */
    int err;                   /* errno of a failed write */
} save;

static void save_free(save *s)
{
    if (s->fd >= 0) close(s->fd);
    if (s->tmp) unlink(s->tmp);
    free(s->tmp);
    free(s->buf);
}

static struct snap_header *header(const save *s) { return (struct snap_header *)s->buf; }

/* What a snapshot file cannot hold. */
static hl_status check_savable(const hl_snapshot *snap, const char *path)
{
    const hl_layout *lo = &snap->lo;
    if (!snap->has_cpu) return snap_fail(path, HL_ERR_INVALID_ARG, "the snapshot has no vCPU state");
    /* First: the header's region table has no room for the regions of mapped files. */
    if (snap->nfiles || lo->sizes.nfiles)
        return snap_fail(path, HL_ERR_INVALID_ARG,
                         "the snapshot maps %d host file%s, which a snapshot file cannot hold (they are not part of "
                         "its memory)",
                         lo->sizes.nfiles, lo->sizes.nfiles == 1 ? "" : "s");
    if (snap->nguestfns < 0 || snap->nguestfns > HL_MAX_FUNC_TABLE || snap->nhostfns < 0 ||
        snap->nhostfns > SNAP_MAX_HOSTFNS || lo->nregions > SNAP_REGIONS)
        return snap_fail(path, HL_ERR_INVALID_ARG, "the snapshot has %d guest and %d host functions (at most %d and %d)",
                         snap->nguestfns, snap->nhostfns, HL_MAX_FUNC_TABLE, SNAP_MAX_HOSTFNS);
    return HL_OK;
}

/* The function tables: the guest's, then the host's, each a run of signatures. */
static hl_status put_tables(const hl_snapshot *snap, const char *path, hl_writer *w)
{
    for (int i = 0; i < snap->nguestfns; i++) {
        const hl_guestfn *f = &snap->guestfns[i];
        hl_w_sig(w, f->name, f->ret, f->params, f->nparams);
        if (w->bad) return snap_fail(path, HL_ERR_INVALID_ARG, "guest function %d has an invalid signature", i);
    }
    for (int i = 0; i < snap->nhostfns; i++) {
        const hl_hostfn *f = &snap->hostfns[i];
        hl_w_sig(w, f->name, f->ret, f->params, f->nparams);
        if (w->bad) return snap_fail(path, HL_ERR_INVALID_ARG, "host function %d has an invalid signature", i);
    }
    return HL_OK;
}

/* The header and the metadata, in one buffer; all but the memory and header checksums. */
static hl_status build_header(save *s)
{
    const hl_snapshot *snap = s->snap;
    const size_t cap = (size_t)(snap->nguestfns + snap->nhostfns) * SNAP_FN_MAX;
    struct snap_header *h;
    hl_writer w;
    hl_status st;
    if (!(s->buf = calloc(1, SNAP_HEADER + cap + 1))) return snap_fail(s->path, HL_ERR_NO_MEMORY, "out of memory");
    hl_w_init(&w, s->buf + SNAP_HEADER, cap);
    if ((st = put_tables(snap, s->path, &w)) != HL_OK) return st;
    s->meta_end = SNAP_HEADER + w.len;
    h = header(s);
    memcpy(h->magic, HL_SNAPSHOT_MAGIC, sizeof h->magic);
    h->format = SNAP_FORMAT;
    h->abi = HL_ABI_VERSION;
    h->meta_end = s->meta_end;
    h->mem_offset = HL_ALIGN_UP(s->meta_end, HL_PAGE);
    h->mem_length = snap->lo.total;
    h->generation = snap->generation;
    snap_put_layout(h, &snap->lo);
    h->nguestfns = (uint32_t)snap->nguestfns;
    h->nhostfns = (uint32_t)snap->nhostfns;
    memcpy(h->cpu, &snap->cpu, sizeof h->cpu);
    h->meta_sum = hl_checksum(s->buf + SNAP_HEADER, w.len);
    return HL_OK;
}

/* A new file with a temporary name in the target's directory, sized: every page a hole. */
static hl_status create_temp(save *s)
{
    static unsigned seq; /* threads saving to one path do not collide */
    const struct snap_header *h = header(s);
    if (asprintf(&s->tmp, "%s.tmp-%ld.%u", s->path, (long)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED)) < 0) {
        s->tmp = NULL;
        return snap_fail(s->path, HL_ERR_NO_MEMORY, "out of memory");
    }
    s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (s->fd < 0) {
        hl_status st = snap_fail(s->path, HL_ERR_IO, "cannot create '%s': %s", s->tmp, strerror(errno));
        free(s->tmp);
        s->tmp = NULL; /* not ours to unlink */
        return st;
    }
    if (ftruncate(s->fd, (off_t)(h->mem_offset + h->mem_length)) < 0)
        return snap_fail(s->path, HL_ERR_IO, "sizing '%s': %s", s->tmp, strerror(errno));
    return HL_OK;
}

/* ---- the memory ---- */
static hl_status flush_run(save *s)
{
    const uint64_t at = header(s)->mem_offset + s->run_first * HL_PAGE;
    if (hl_pwrite_full(s->fd, s->snap->view + s->run_first * HL_PAGE, s->run_n * HL_PAGE, (off_t)at) < 0) {
        s->err = errno;
        return HL_ERR_IO;
    }
    s->run_n = 0;
    return HL_OK;
}

/* Folds n pages from page on into the checksum; queues the nonzero ones for writing. */
static hl_status save_run(void *ctx, uint64_t page, uint64_t n, bool hole)
{
    save *s = ctx;
    if (hole) {
        s->sum = snap_sum_zero_pages(s->sum, n);
        return s->run_n ? flush_run(s) : HL_OK;
    }
    for (uint64_t p = page; p < page + n; p++) {
        bool nz;
        s->sum = snap_sum_pages(s->sum, s->snap->view + p * HL_PAGE, 1, &nz);
        if (nz && s->run_n && s->run_first + s->run_n == p) {
            s->run_n++;
            continue;
        }
        if (s->run_n && flush_run(s) != HL_OK) return HL_ERR_IO;
        if (nz) {
            s->run_first = p;
            s->run_n = 1;
        }
    }
    return HL_OK;
}

/* Every file of the image, in guest order (holes stay holes), then the header. */
static hl_status write_memory(save *s)
{
    struct snap_header *h = header(s);
    hl_status st = HL_OK;
    s->sum = HL_FNV_BASIS;
    for (int i = 0; i < s->snap->img.n && st == HL_OK; i++) {
        const hl_extent *e = &s->snap->img.ext[i];
        st = snap_walk_file(e->file->fd, e->file->offset + e->first * HL_PAGE, e->first, e->count, save_run, s);
    }
    if (st == HL_OK && s->run_n) st = flush_run(s);
    if (st != HL_OK) return snap_fail(s->path, HL_ERR_IO, "writing '%s': %s", s->tmp, strerror(s->err));
    h->mem_sum = s->sum;
    h->header_sum = hl_checksum(s->buf, offsetof(struct snap_header, header_sum));
    if (hl_pwrite_full(s->fd, s->buf, s->meta_end, 0) < 0)
        return snap_fail(s->path, HL_ERR_IO, "writing '%s': %s", s->tmp, strerror(errno));
    return HL_OK;
}

/* Makes the file durable under its name. */
static hl_status commit(save *s)
{
    int fd = s->fd;
    if (fsync(fd) < 0) return snap_fail(s->path, HL_ERR_IO, "fsync '%s': %s", s->tmp, strerror(errno));
    s->fd = -1;
    if (close(fd) < 0) return snap_fail(s->path, HL_ERR_IO, "closing '%s': %s", s->tmp, strerror(errno));
    if (rename(s->tmp, s->path) < 0)
        return snap_fail(s->path, HL_ERR_IO, "renaming '%s' to it: %s", s->tmp, strerror(errno));
    free(s->tmp);
    s->tmp = NULL;
    hl_sync_dir(s->path); /* the rename is done: a failure here cannot undo it */
    return HL_OK;
}

hl_status hl_snapshot_save(const hl_snapshot *snap, const char *path)
{
    save s = { .snap = snap, .path = path, .fd = -1 };
    hl_status st;
    if (!snap || !path || !*path)
        return hl_thread_fail(HL_ERR_INVALID_ARG, "hl_snapshot_save: snapshot and path are required");
    if ((st = check_savable(snap, path)) || (st = build_header(&s)) || (st = create_temp(&s)) ||
        (st = write_memory(&s)) || (st = commit(&s))) {
        save_free(&s);
        return st;
    }
    save_free(&s);
    hl_thread_clear();
    return HL_OK;
}
