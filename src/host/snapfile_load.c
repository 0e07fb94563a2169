/* snapfile_load.c - hl_snapshot_load: a snapshot from a snapshot file (docs/snapshots.md).
 *
 * The file is hostile. Loading is a sequence of steps, each of which checks what it reads
 * before the next uses it: open a regular file, read the header, check it (snapfile.c:
 * versions, checksum, layout, vCPU state, sizes), read and decode the function tables, then
 * map the memory image and verify its checksum. A file that passes is no more dangerous than
 * a hostile guest: its memory and registers are the guest's business. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "snapfile.h"

/* What a load has so far; load_free releases whatever it holds. */
typedef struct load {
    const char *path;
    int fd;
    uint64_t size;
    struct snap_header h;
    hl_layout lo;
    hl_cpu_state cpu;
    int nguest, nhost;
    hl_guestfn *guest;
    hl_hostfn *host;
    hl_memfile *file;
    hl_image img;
    hl_snapshot *snap;
} load;

static void load_free(load *l)
{
    hl_snapshot_free(l->snap);
    hl_image_free(&l->img);
    hl_memfile_unref(l->file);
    hl_guestfns_free(l->guest, l->nguest);
    free(l->host);
    if (l->fd >= 0) close(l->fd);
}

static hl_status no_memory(const load *l) { return snap_fail(l->path, HL_ERR_NO_MEMORY, "out of memory"); }

static hl_status open_file(load *l)
{
    struct stat st;
    l->fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block the open */
    if (l->fd < 0) return snap_fail(l->path, HL_ERR_IO, "cannot open: %s", strerror(errno));
    if (fstat(l->fd, &st) < 0) return snap_fail(l->path, HL_ERR_IO, "cannot stat: %s", strerror(errno));
    if (S_ISDIR(st.st_mode)) return snap_fail(l->path, HL_ERR_IO, "is a directory");
    if (!S_ISREG(st.st_mode)) return snap_fail(l->path, HL_ERR_IO, "not a regular file");
    l->size = (uint64_t)st.st_size;
    return HL_OK;
}

/* The header, as far as the file has one (the rest stays zero). */
static hl_status read_header(load *l)
{
    memset(&l->h, 0, sizeof l->h);
    if (hl_pread_full(l->fd, &l->h, l->size < SNAP_HEADER ? (size_t)l->size : SNAP_HEADER, 0) < 0)
        return snap_fail(l->path, HL_ERR_IO, "reading the header: %s", strerror(errno));
    return HL_OK;
}

/* ---- the function tables ---- */
/* What is wrong with function i of a table, which hl_r_sig refused (f: what it read). */
static void fn_fault(char *why, size_t wlen, const char *table, uint32_t i, const hl_sig *f, const hl_reader *r)
{
    int bad = 0;
    switch (hl_sig_check(f->name, f->ret, f->params, f->nparams, &bad)) {
    case HL_SIG_NAME: snprintf(why, wlen, "%s function %u: %s", table, i, r->why); break;
    case HL_SIG_NPARAMS:
        snprintf(why, wlen, "%s function '%s': %d parameters (at most %d)", table, f->name, f->nparams, HL_MAX_ARGS);
        break;
    case HL_SIG_RET:
        snprintf(why, wlen, "%s function '%s': invalid return type %d", table, f->name, (int)f->ret);
        break;
    case HL_SIG_PARAM:
        snprintf(why, wlen, "%s function '%s': invalid type %d for parameter %d", table, f->name, (int)f->params[bad],
                 bad);
        break;
    case HL_SIG_OK: /* a good start, then the end of the input */
        snprintf(why, wlen, "%s function '%s' runs past the end of the function tables", table, f->name);
        break;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Finds a duplicate among n names (sorts the pointers); returns it or NULL. */
static const char *duplicate(const char **names, int n)
{
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i])) return names[i];
    return NULL;
}

/* Keeps a decoded function in l's guest or host table; false if memory ran out. */
static bool keep_guest(load *l, const hl_sig *f)
{
    hl_guestfn *g = &l->guest[l->nguest];
    if (!(g->name = strdup(f->name))) return false;
    g->hidden = hl_sig_reserved(f->name);
    g->ret = f->ret;
    g->nparams = f->nparams;
    memcpy(g->params, f->params, sizeof g->params);
    l->nguest++;
    return true;
}

static bool keep_host(load *l, const hl_sig *f)
{
    hl_hostfn *h = &l->host[l->nhost++];
    memcpy(h->name, f->name, sizeof h->name);
    h->ret = f->ret;
    h->nparams = f->nparams;
    memcpy(h->params, f->params, sizeof h->params);
    return true;
}

/* Decodes n functions of table `table` ("guest" or "host") from r, each kept with keep. */
static hl_status read_table(load *l, hl_reader *r, const char *table, uint32_t n, bool (*keep)(load *, const hl_sig *))
{
    char why[HL_ERR_LEN];
    hl_sig f;
    for (uint32_t i = 0; i < n; i++) {
        if (!hl_r_sig(r, &f)) {
            fn_fault(why, sizeof why, table, i, &f, r);
            return snap_fail(l->path, HL_ERR_BAD_GUEST, "bad function table: %s", why);
        }
        if (!keep(l, &f)) return no_memory(l);
    }
    return HL_OK;
}

/* No name appears twice in either table. */
static hl_status distinct_names(load *l)
{
    const char **names = malloc(((size_t)l->nguest + l->nhost + 1) * sizeof *names);
    const char *dup, *table = "guest";
    if (!names) return no_memory(l);
    for (int i = 0; i < l->nguest; i++) names[i] = l->guest[i].name;
    if (!(dup = duplicate(names, l->nguest))) {
        table = "host";
        for (int i = 0; i < l->nhost; i++) names[i] = l->host[i].name;
        dup = duplicate(names, l->nhost);
    }
    free(names);
    if (dup)
        return snap_fail(l->path, HL_ERR_BAD_GUEST, "bad function table: %s function '%s' appears twice", table, dup);
    return HL_OK;
}

/* The guest table, then the host table, filling meta[0, len) exactly. */
static hl_status decode_tables(load *l, const uint8_t *meta, size_t len)
{
    const uint32_t ng = l->h.nguestfns, nh = l->h.nhostfns;
    hl_reader r;
    hl_status st;
    if (!(l->guest = calloc(ng ? ng : 1, sizeof *l->guest)) || (nh && !(l->host = calloc(nh, sizeof *l->host))))
        return no_memory(l);
    hl_r_init(&r, meta, len);
    if ((st = read_table(l, &r, "guest", ng, keep_guest)) || (st = read_table(l, &r, "host", nh, keep_host)))
        return st;
    if (r.pos != r.len)
        return snap_fail(l->path, HL_ERR_BAD_GUEST, "bad function table: %zu bytes after the function tables",
                         r.len - r.pos);
    return distinct_names(l);
}

/* The metadata and the padding up to the memory image (zeros), then the tables in it. */
static hl_status read_tables(load *l)
{
    const size_t len = (size_t)(l->h.meta_end - SNAP_HEADER), padded = (size_t)(l->h.mem_offset - SNAP_HEADER);
    uint8_t *meta = malloc(padded + 1);
    hl_status st;
    if (!meta) return no_memory(l);
    if (hl_pread_full(l->fd, meta, padded, SNAP_HEADER) < 0)
        st = snap_fail(l->path, HL_ERR_IO, "reading the function tables: %s", strerror(errno));
    else if (hl_checksum(meta, len) != l->h.meta_sum)
        st = snap_fail(l->path, HL_ERR_BAD_GUEST, "corrupt function tables (checksum mismatch)");
    else if (!snap_all_zero(meta + len, padded - len))
        st = snap_fail(l->path, HL_ERR_BAD_GUEST, "corrupt padding after the function tables (not zero)");
    else st = decode_tables(l, meta, len);
    free(meta);
    return st;
}

/* ---- the memory ---- */
struct sum_ctx {
    const uint8_t *view;
    uint64_t sum;
};

static hl_status sum_run(void *ctx, uint64_t page, uint64_t n, bool hole)
{
    struct sum_ctx *c = ctx;
    bool nz;
    c->sum = hole ? snap_sum_zero_pages(c->sum, n) : snap_sum_pages(c->sum, c->view + page * HL_PAGE, n, &nz);
    return HL_OK;
}

/* The file itself, mapped, is the snapshot's memory; checksummed before anything uses it. */
static hl_status map_memory(load *l)
{
    char err[HL_ERR_LEN];
    struct sum_ctx c;
    hl_status st;
    if (!(l->file = hl_memfile_new(l->fd, l->h.mem_offset))) return no_memory(l);
    l->fd = -1; /* the memory file owns it */
    if (hl_image_single(&l->img, l->file, l->lo.total / HL_PAGE) != HL_OK) return no_memory(l);
    if ((st = hl_snapshot_from_image(&l->snap, &l->lo, &l->img, err)) != HL_OK)
        return snap_fail(l->path, st, "%s", err);
    c = (struct sum_ctx){ .view = l->snap->view, .sum = HL_FNV_BASIS };
    snap_walk_file(l->file->fd, l->h.mem_offset, 0, l->lo.total / HL_PAGE, sum_run, &c);
    if (c.sum != l->h.mem_sum) return snap_fail(l->path, HL_ERR_BAD_GUEST, "corrupt memory image (checksum mismatch)");
    return HL_OK;
}

/* Hands the tables and the vCPU state to the snapshot, and the snapshot to the caller. */
static hl_snapshot *finish(load *l)
{
    hl_snapshot *s = l->snap;
    s->guestfns = l->guest;
    s->nguestfns = l->nguest;
    s->hostfns = l->host;
    s->nhostfns = l->nhost;
    s->generation = l->h.generation;
    s->has_cpu = true;
    s->cpu = l->cpu;
    l->snap = NULL;
    l->guest = NULL;
    l->host = NULL;
    l->nguest = l->nhost = 0;
    return s;
}

hl_status hl_snapshot_load(hl_snapshot **out, const char *path)
{
    load l = { .path = path, .fd = -1 };
    hl_status st;
    if (out) *out = NULL;
    if (!out || !path) return hl_thread_fail(HL_ERR_INVALID_ARG, "hl_snapshot_load: out and path are required");
    if ((st = open_file(&l)) || (st = read_header(&l)) || (st = snap_check_header(path, &l.h, l.size, &l.lo, &l.cpu)) ||
        (st = read_tables(&l)) || (st = map_memory(&l))) {
        load_free(&l);
        return st;
    }
    *out = finish(&l);
    load_free(&l); /* what is left: the load's reference to the memory file */
    hl_thread_clear();
    return HL_OK;
}
