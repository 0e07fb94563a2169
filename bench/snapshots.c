/* snapshots.c - the snapshot rows: dirty floors and Dirty(n) + hl_sandbox_restore, hl_snapshot_take,
 * new sandboxes from a snapshot (unpooled, from pools with and without a filler thread, from a
 * snapshot file) and the fresh-VM floor they are compared with. One sample each; preparation
 * and clean-up untimed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

uint64_t sample_dfloor_writable(bench *b, int r, span *sp)
{
    span_begin(sp);
    dfloor_run(b->df[r - R_DFLOOR_W], false);
    return span_end(sp);
}

uint64_t sample_dfloor_reprotected(bench *b, int r, span *sp)
{
    span_begin(sp);
    dfloor_run(b->dfp[r - R_DFLOOR_P], true);
    return span_end(sp);
}

uint64_t sample_dirty(bench *b, int r, span *sp)
{
    const int i = r - R_DIRTY;
    hl_sandbox *sb = b->sbd[i];
    hl_value arg = hl_u32(dirty_n[i]), ret;
    uint64_t e0 = hl_sandbox_exit_count(sb), t, t1;
    hl_status st, st2;
    span_begin(sp);
    st = hl_call(sb, "Dirty", HL_I32, &arg, 1, &ret);
    t1 = now_ns();
    st2 = hl_sandbox_restore(sb, b->snapd[i]);
    t = span_end(sp);
    if (st != HL_OK) die("Dirty(%u): %s: %s", dirty_n[i], hl_status_name(st), hl_last_error(sb));
    if (st2 != HL_OK) die("hl_sandbox_restore: %s: %s", hl_status_name(st2), hl_last_error(sb));
    if (ret.v.i32 != (int32_t)dirty_n[i]) die("Dirty(%u) returned %d", dirty_n[i], ret.v.i32);
    if (sp->keep) add_sample(&b->dirty_restore[i], sp->t0 + t - t1);
    sp->exits += hl_sandbox_exit_count(sb) - e0;
    sp->has_exits = true;
    return t;
}

uint64_t sample_take(bench *b, int r, span *sp)
{
    hl_value arg = hl_u32(16), ret;
    hl_snapshot *s = NULL;
    hl_status st;
    uint64_t t;
    restore_or_die(b->sbt, b->snapt);
    call_on(b->sbt, "Dirty", &arg, 1, &ret);
    span_begin(sp);
    st = hl_snapshot_take(b->sbt, &s);
    t = span_end(sp);
    if (st != HL_OK) die("hl_snapshot_take: %s: %s", hl_status_name(st), hl_last_error(b->sbt));
    hl_snapshot_free(s);
    return t;
}

uint64_t sample_fresh_vm(bench *b, int r, span *sp) { return floor_fresh_vm(b->fresh, sp, &b->fresh_first_run); }

uint64_t sample_new_call(bench *b, int r, span *sp)
{
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_OK;
    uint64_t t, t1;
    span_begin(sp);
    st = hl_sandbox_new_from_snapshot(&sb, b->snap, b->cfg);
    t1 = now_ns();
    if (st == HL_OK) st2 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    t = span_end(sp);
    if (st != HL_OK) die("hl_sandbox_new_from_snapshot: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("Empty (new sandbox): %s: %s", hl_status_name(st2), hl_last_error(sb));
    if (sp->keep) add_sample(&b->new_first_call, sp->t0 + t - t1);
    sp->exits += hl_sandbox_exit_count(sb);
    sp->has_exits = true;
    hl_sandbox_free(sb);
    return t;
}

/* ---- pools ---- */
/* Waits (untimed) until the background filler has made the pool full again, so that no VM
 * creation runs on the other core during a timed part. */
static void pool_wait_full(hl_pool *p)
{
    uint64_t deadline = now_ns() + 10000000000ull;
    while (hl_pool_ready(p) < POOL_SIZE) {
        if (now_ns() > deadline) die("the pool's filler did not refill the pool within 10 s");
        sleep_ns(50000);
    }
}

/* After a batch of a pool row: a get that leaves the pool at half its size or less wakes the
 * filler, which then creates and warms a sandbox (and frees it if a put filled the pool
 * meanwhile) on the other core. Let that end before the next row runs. */
void settle_pool(bench *b) { sleep_ns(5000000); }

void settle_pool_fresh(bench *b)
{
    pool_wait_full(b->pool_fresh);
    sleep_ns(1000000);
}

/* Where a sandbox hl_pool_get returned from b->pool came from (e0: its exit count then): one
 * the benchmark put back (same pointer, same exit count as at that put), one created in
 * hl_pool_get because the pool was empty (it never ran: 0 exits), or one the filler made
 * (and warmed with hl.warm calls, so it has exits but never served a call of ours). */
static samples *pool_origin(bench *b, hl_sandbox *sb, uint64_t e0)
{
    unsigned n = b->pool_puts < 16 ? b->pool_puts : 16;
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (b->pool_puts - 1 - i) % 16;
        if (b->pool_put_log[k].sb == sb) return b->pool_put_log[k].exits == e0 ? &b->pool_warm : &b->pool_filler;
    }
    return e0 ? &b->pool_filler : &b->pool_cold;
}

/* put_only: time hl_pool_put alone (the counting pass of the scrub row); otherwise time
 * get + first call, and keep the put's time as a sample of the scrub row. */
static uint64_t sample_pool(bench *b, hl_pool *pool, span *sp, bool put_only)
{
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_OK;
    uint64_t t = 0, e0 = 0, t1, tg = 0;
    if (!put_only) span_begin(sp);
    st = hl_pool_get(pool, &sb);
    if (!put_only) tg = now_ns();
    if (st == HL_OK) e0 = hl_sandbox_exit_count(sb), st2 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    if (!put_only) t = span_end(sp);
    if (st != HL_OK) die("hl_pool_get: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("Empty (pooled sandbox): %s: %s", hl_status_name(st2), hl_last_error(sb));
    if (!put_only) {
        sp->exits += hl_sandbox_exit_count(sb) - e0;
        sp->has_exits = true;
        if (sp->keep && pool == b->pool) {
            samples *o = pool_origin(b, sb, e0);
            add_sample(o, t);
            if (o == &b->pool_filler) add_sample(&b->pool_filler_get, tg - sp->t0);
        }
    }
    if (pool == b->pool) { /* hl_pool_put may free sb (pool full): its address may come back */
        b->pool_put_log[b->pool_puts % 16].sb = sb;
        b->pool_put_log[b->pool_puts % 16].exits = hl_sandbox_exit_count(sb);
        b->pool_puts++;
    }
    if (put_only) span_begin(sp);
    t1 = now_ns();
    st = hl_pool_put(pool, sb);
    if (put_only) t = span_end(sp);
    else if (sp->keep && pool == b->pool) add_sample(&rows[R_POOL_PUT].s, now_ns() - t1);
    if (st != HL_OK) die("hl_pool_put: %s", hl_status_name(st));
    return t;
}

uint64_t sample_pool_call(bench *b, int r, span *sp) { return sample_pool(b, b->pool, sp, false); }

uint64_t sample_pool_put(bench *b, int r, span *sp) { return sample_pool(b, b->pool, sp, true); }

uint64_t sample_pool_nobg(bench *b, int r, span *sp) { return sample_pool(b, b->pool_nobg, sp, false); }

uint64_t sample_pool_fresh(bench *b, int r, span *sp)
{
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_OK;
    uint64_t t, e0 = 0;
    pool_wait_full(b->pool_fresh);
    span_begin(sp);
    st = hl_pool_get(b->pool_fresh, &sb);
    if (st == HL_OK) e0 = hl_sandbox_exit_count(sb), st2 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    t = span_end(sp);
    if (st != HL_OK) die("hl_pool_get: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("Empty (pooled sandbox): %s: %s", hl_status_name(st2), hl_last_error(sb));
    sp->exits += hl_sandbox_exit_count(sb) - e0;
    sp->has_exits = true;
    hl_sandbox_free(sb); /* never back into the pool: its next get is one the filler made (and warmed) */
    return t;
}

/* Pools go before the memory figure, so that no filler thread works then. */
void pools_free(bench *b)
{
    hl_pool *p[] = { b->pool, b->pool_fresh, b->pool_nobg };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i]) hl_pool_free(p[i]);
    b->pool = b->pool_fresh = b->pool_nobg = NULL;
}

/* ---- snapshot files ---- */
uint64_t sample_load(bench *b, int r, span *sp)
{
    hl_snapshot *s = NULL;
    hl_sandbox *sb = NULL;
    hl_value ret;
    hl_status st, st2 = HL_ERR_STATE, st3 = HL_ERR_STATE;
    uint64_t t, t1;
    span_begin(sp);
    st = hl_snapshot_load(&s, b->snapfile);
    t1 = now_ns();
    if (st == HL_OK) st2 = hl_sandbox_new_from_snapshot(&sb, s, b->cfg);
    if (st2 == HL_OK) st3 = hl_call(sb, "Empty", HL_I32, NULL, 0, &ret);
    t = span_end(sp);
    if (st != HL_OK) die("hl_snapshot_load: %s: %s", hl_status_name(st), hl_last_error(NULL));
    if (st2 != HL_OK) die("hl_sandbox_new_from_snapshot (loaded): %s: %s", hl_status_name(st2), hl_last_error(NULL));
    if (st3 != HL_OK) die("Empty (loaded snapshot): %s: %s", hl_status_name(st3), hl_last_error(sb));
    if (sp->keep) add_sample(&b->load_only, t1 - sp->t0);
    sp->exits += hl_sandbox_exit_count(sb);
    sp->has_exits = true;
    hl_sandbox_free(sb);
    hl_snapshot_free(s);
    return t;
}

/* The file the load row reads, written once by hl_snapshot_save; if that fails, the row says why. */
void snapfile_setup(bench *b)
{
    snprintf(b->snapfile, sizeof b->snapfile, "%s/snapshot.hls", b->tmpdir);
    if (hl_snapshot_save(b->snap, b->snapfile) != HL_OK) {
        char *msg;
        if (asprintf(&msg, "n/a: hl_snapshot_save failed: %s", hl_last_error(NULL)) < 0) die("out of memory");
        rows[R_LOAD_CALL].err = msg;
    }
}

/* ---- setup, warm-up, teardown ---- */
/* Sandboxes, each with its snapshot taken right after creation; the floors; the pools. */
void snapshots_setup(bench *b)
{
    for (int i = 0; i < NDIRTY; i++) {
        if (hl_sandbox_new_from_file(&b->sbd[i], b->guest, b->cfg) != HL_OK)
            die("cannot create a sandbox from %s: %s", b->guest, hl_last_error(NULL));
        if (hl_snapshot_take(b->sbd[i], &b->snapd[i]) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b->sbd[i]));
        if (!i) {
            b->slot1_size = floor_sandbox_rw_size(b->sbd[i]);
            b->pristine = mmap(NULL, b->slot1_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (b->pristine == MAP_FAILED) die("mmap: %s", strerror(errno));
            memset(b->pristine, 0, b->slot1_size); /* every page touched: a copy reads real pages */
        }
        b->df[i] = dfloor_create(dirty_n[i], b->slot1_size, b->pristine);
        b->dfp[i] = dfloor_create(dirty_n[i], b->slot1_size, b->pristine);
    }
    if (hl_sandbox_new_from_file(&b->sbt, b->guest, b->cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b->guest, hl_last_error(NULL));
    if (hl_snapshot_take(b->sbt, &b->snapt) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b->sbt));
    b->fresh = floor_prepare_fresh();
    if (hl_pool_new(&b->pool, b->snap, b->cfg, POOL_SIZE, true) != HL_OK ||
        hl_pool_new(&b->pool_fresh, b->snap, b->cfg, POOL_SIZE, true) != HL_OK ||
        hl_pool_new(&b->pool_nobg, b->snap, b->cfg, POOL_SIZE, false) != HL_OK)
        die("hl_pool_new: %s", hl_last_error(NULL));
}

void snapshots_warm(bench *b)
{
    pool_wait_full(b->pool);
    pool_wait_full(b->pool_fresh);
    pool_wait_full(b->pool_nobg);
}

void snapshots_teardown(bench *b)
{
    pools_free(b);
    floor_destroy(b->fresh);
    for (int i = 0; i < NDIRTY; i++) {
        dfloor_destroy(b->df[i]);
        dfloor_destroy(b->dfp[i]);
        hl_sandbox_free(b->sbd[i]);
        hl_snapshot_free(b->snapd[i]);
        samples_free(&b->dirty_restore[i]);
    }
    hl_sandbox_free(b->sbt);
    hl_snapshot_free(b->snapt);
    if (b->pristine) munmap(b->pristine, b->slot1_size);
    samples_free(&b->fresh_first_run);
    samples_free(&b->new_first_call);
    samples_free(&b->pool_warm);
    samples_free(&b->pool_filler);
    samples_free(&b->pool_cold);
    samples_free(&b->pool_filler_get);
    samples_free(&b->load_only);
}
