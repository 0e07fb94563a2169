/* calls.c - the call rows: the bare exit floor, empty call, Echo, host call round trip (timed
 * inside the guest's loop by the host function Nop), call + restore, compute in the guest and
 * natively, sandbox creation, the same calls on a seccomp-confined sandbox, and clock_gettime
 * on the host and in the guest. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "compute.h"

_Static_assert(DIRTY_MAX_PAGES == BENCH_DIRTY_MAX_PAGES, "bench.h's DIRTY_MAX_PAGES is compute.h's arena");

/* ---- the host function Nop: timestamps each call, so one round trip is one sample ---- */
static struct {
    uint64_t t[HOSTCALLS + 1];
    int n;
    bool on;
    bool want_tid; /* record the thread Nop runs on (once, at setup: a confined sandbox's worker) */
    pid_t tid;
} nop_log;

static int host_nop(hl_host_call *call, const hl_value *args, int nargs, hl_value *ret)
{
    if (nop_log.on && nop_log.n < (int)(sizeof nop_log.t / sizeof nop_log.t[0])) nop_log.t[nop_log.n++] = now_ns();
    if (nop_log.want_tid) nop_log.tid = (pid_t)syscall(SYS_gettid); /* gettid: on the confined allowlist */
    *ret = hl_i32(1);
    return 0;
}

/* The benchmark's host functions: Nop, and Spinning and Slow for the interrupt rows (intr.c). */
static bool register_fns(hl_config *cfg)
{
    hl_type none[1] = { HL_VOID };
    return hl_config_register_host_fn(cfg, "Nop", HL_I32, none, 0, host_nop, NULL) == HL_OK &&
           hl_config_register_host_fn(cfg, "Spinning", HL_I32, none, 0, host_spinning, NULL) == HL_OK &&
           hl_config_register_host_fn(cfg, "Slow", HL_I32, none, 0, host_slow, NULL) == HL_OK;
}

/* ---- calls ---- */
/* sb: b->sb, or b->sbc (the confined sandbox: b->cfgc made it) */
static void call_or_die(const bench *b, hl_sandbox *sb, const char *name, hl_type rt, const hl_value *args, int nargs,
                        hl_value *ret)
{
    hl_status st = hl_call(sb, name, rt, args, nargs, ret);
    if (st != HL_OK)
        die("%s%s: %s: %s", name, sb == b->sbc ? " (confined sandbox)" : "", hl_status_name(st), hl_last_error(sb));
}

void call_on(hl_sandbox *sb, const char *name, const hl_value *args, int nargs, hl_value *ret)
{
    hl_status st = hl_call(sb, name, HL_I32, args, nargs, ret);
    if (st != HL_OK) die("%s: %s: %s", name, hl_status_name(st), hl_last_error(sb));
}

void restore_or_die(hl_sandbox *sb, hl_snapshot *snap)
{
    hl_status st = hl_sandbox_restore(sb, snap);
    if (st != HL_OK) die("hl_sandbox_restore: %s: %s", hl_status_name(st), hl_last_error(sb));
}

void op_floor(bench *b) { floor_exit(b->fl); }

static void empty_on(bench *b, hl_sandbox *sb)
{
    hl_value ret;
    call_or_die(b, sb, "Empty", HL_I32, NULL, 0, &ret);
}

void op_empty(bench *b) { empty_on(b, b->sb); }

void op_empty_confined(bench *b) { empty_on(b, b->sbc); }

void op_echo(bench *b)
{
    static const hl_value arg = { .type = HL_STRING, .v.buf = { "hello", 5 } };
    hl_value ret;
    call_or_die(b, b->sb, "Echo", HL_STRING, &arg, 1, &ret);
    if (ret.v.buf.len != 5 || memcmp(ret.v.buf.ptr, "hello", 5) != 0) die("Echo returned a wrong string");
}

static void hostcalls(bench *b, hl_sandbox *sb, uint32_t n)
{
    hl_value arg = hl_u32(n), ret;
    call_or_die(b, sb, "HostRoundTrip", HL_U32, &arg, 1, &ret);
    if (ret.v.u32 != n) die("HostRoundTrip(%u) returned %u", n, ret.v.u32);
}

void op_guest_compute(bench *b)
{
    hl_value arg = hl_u32(COMPUTE_N), ret;
    call_or_die(b, b->sb, "Compute", HL_U64, &arg, 1, &ret);
    if (ret.v.u64 != b->compute_check) die("guest Compute returned a wrong checksum");
}

void op_native_compute(bench *b)
{
    if (bench_compute(b->tab, COMPUTE_N) != b->compute_check) die("native compute returned a wrong checksum");
}

/* An empty call on sbr, then hl_sandbox_restore of sbr to snap; returns the restore's time. */
static uint64_t call_restore(bench *b)
{
    hl_value ret;
    hl_status st = hl_call(b->sbr, "Empty", HL_I32, NULL, 0, &ret);
    uint64_t t0;
    if (st != HL_OK) die("Empty (restored sandbox): %s: %s", hl_status_name(st), hl_last_error(b->sbr));
    t0 = now_ns();
    if ((st = hl_sandbox_restore(b->sbr, b->snap)) != HL_OK)
        die("hl_sandbox_restore: %s: %s", hl_status_name(st), hl_last_error(b->sbr));
    return now_ns() - t0;
}

void op_call_restore(bench *b) { call_restore(b); }

void op_snap_create(bench *b)
{
    hl_sandbox *sb = NULL;
    if (hl_sandbox_new_from_snapshot(&sb, b->snap, b->cfg) != HL_OK)
        die("cannot create a sandbox from a snapshot: %s", hl_last_error(NULL));
    hl_sandbox_free(sb);
}

/* Creates and frees a sandbox; returns the time hl_sandbox_free took. */
static uint64_t create(bench *b)
{
    hl_sandbox *sb = NULL;
    uint64_t t0;
    if (hl_sandbox_new_from_file(&sb, b->guest, b->cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b->guest, hl_last_error(NULL));
    t0 = now_ns();
    hl_sandbox_free(sb);
    return now_ns() - t0;
}

void op_create(bench *b) { create(b); }

/* ---- the rows that time more than one operation per sample, or keep a part ---- */
void run_hostcalls(bench *b, int r)
{
    /* confined: Nop runs on sbc's worker thread, which runs the whole call; the hand-off
     * (futex words, confine.c) happens only at the start and the end of the call */
    hl_sandbox *sb = r == R_HOSTCALL ? b->sb : b->sbc;
    uint64_t t0, t1;
    for (int i = 0; i < HOSTCALL_BATCH; i++) {
        nop_log.n = 0;
        nop_log.on = true;
        t0 = now_ns();
        hostcalls(b, sb, HOSTCALLS);
        t1 = now_ns();
        nop_log.on = false;
        add_sample(r == R_HOSTCALL ? &b->hostcall_total : &b->hostcall_total_conf, t1 - t0);
        /* Between two consecutive Nop calls: return to the guest, the guest's loop
         * iteration, its next exit, the host's dispatch = one round trip. */
        for (int k = 1; k < nop_log.n; k++) add_sample(&rows[r].s, nop_log.t[k] - nop_log.t[k - 1]);
    }
}

void run_call_restore(bench *b, int r)
{
    for (int i = 0; i < BATCH; i++) {
        uint64_t t0 = now_ns(), tr;
        tr = call_restore(b);
        add_sample(&rows[r].s, now_ns() - t0);
        add_sample(&b->restore_only, tr);
    }
}

void run_create(bench *b, int r)
{
    for (int i = 0; i < CREATE_BATCH; i++) {
        uint64_t t0 = now_ns(), tf;
        tf = create(b);
        add_sample(&rows[r].s, now_ns() - t0);
        add_sample(&b->free_only, tf);
    }
}

/* ---- counting ---- */
/* HostRoundTrip(COUNT_OPS) minus HostRoundTrip(0): what COUNT_OPS host calls add. */
void count_hostcalls(bench *b, counters *c, counters *cw, int r)
{
    uint64_t a[NCTR], z[NCTR], a0[NCTR], z0[NCTR], e0, e1, e2, ops = COUNT_OPS;
    e0 = hl_sandbox_exit_count(b->sb);
    ctr_read(c, a0);
    hostcalls(b, b->sb, 0);
    ctr_read(c, z0);
    e1 = hl_sandbox_exit_count(b->sb);
    ctr_read(c, a);
    hostcalls(b, b->sb, COUNT_OPS);
    ctr_read(c, z);
    e2 = hl_sandbox_exit_count(b->sb);
    for (int i = 0; i < NCTR; i++) a[i] += z0[i] - a0[i];
    a[C_SYSCALL]--; /* both deltas counted one counter read: they cancelled already */
    rows[r].exits_per_op = (double)((e2 - e1) - (e1 - e0)) / (double)ops;
    rows[r].ctr = ctr_per_op(c, a, z, ops);
    rows[r].have_ctr = c->ok;
}

/* The confined rows: empty calls, or HostRoundTrip(COUNT_OPS) minus HostRoundTrip(0), on sbc;
 * the counts of both threads (the caller waits, the worker runs the vCPU and Nop). */
void count_confined(bench *b, counters *c, counters *cw, int r)
{
    uint64_t a[NCTR], z[NCTR], ops = COUNT_OPS, e0 = hl_sandbox_exit_count(b->sbc), e1;
    rows[r].have_ctr = c->ok && cw->ok;
    if (r == R_EMPTY_CONF) {
        ctr_read_both(c, cw, a, false);
        for (uint64_t i = 0; i < ops; i++) op_empty_confined(b);
        ctr_read_both(c, cw, z, true);
        rows[r].exits_per_op = (double)(hl_sandbox_exit_count(b->sbc) - e0) / (double)ops;
    } else {
        uint64_t a0[NCTR], z0[NCTR];
        ctr_read_both(c, cw, a0, false);
        hostcalls(b, b->sbc, 0);
        ctr_read_both(c, cw, z0, true);
        e1 = hl_sandbox_exit_count(b->sbc);
        ctr_read_both(c, cw, a, false);
        hostcalls(b, b->sbc, COUNT_OPS);
        ctr_read_both(c, cw, z, true);
        for (int i = 0; i < NCTR; i++) a[i] += z0[i] - a0[i];
        a[C_SYSCALL]--; /* as for R_HOSTCALL: the two deltas' counter reads cancel */
        rows[r].exits_per_op = (double)((hl_sandbox_exit_count(b->sbc) - e1) - (e1 - e0)) / (double)ops;
    }
    if (rows[r].have_ctr) rows[r].ctr = ctr_per_op(c, a, z, ops);
}

/* ---- setup, warm-up, teardown ---- */
void calls_setup(bench *b)
{
    if (!(b->cfg = hl_config_new())) die("out of memory");
    if (!register_fns(b->cfg)) die("registering host functions: %s", hl_config_error(b->cfg));
    if (hl_sandbox_new_from_file(&b->sb, b->guest, b->cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b->guest, hl_last_error(NULL));
    /* the confined sandbox: the same guest and host functions, calls on a seccomp-confined
     * worker thread (Nop needs no system call beyond the base allowlist) */
    if (!(b->cfgc = hl_config_new())) die("out of memory");
    if (!register_fns(b->cfgc) || hl_config_set_confinement(b->cfgc, true) != HL_OK)
        die("confined configuration: %s", hl_config_error(b->cfgc));
    if (hl_sandbox_new_from_file(&b->sbc, b->guest, b->cfgc) != HL_OK)
        die("cannot create a confined sandbox from %s: %s", b->guest, hl_last_error(NULL));
    if (hl_sandbox_new_from_file(&b->sbr, b->guest, b->cfg) != HL_OK)
        die("cannot create a sandbox from %s: %s", b->guest, hl_last_error(NULL));
    if (hl_snapshot_take(b->sbr, &b->snap) != HL_OK) die("hl_snapshot_take: %s", hl_last_error(b->sbr));
    b->fl = floor_create();
    if (!(b->tab = malloc(BENCH_TABLE_WORDS * sizeof *b->tab))) die("out of memory");
    b->compute_check = bench_compute(b->tab, COMPUTE_N);
}

/* First exits (the VIF wrmsr), page faults in guest and host memory. */
void calls_warm(bench *b)
{
    hl_value ret;
    for (int i = 0; i < 200; i++) floor_exit(b->fl);
    for (int i = 0; i < 200; i++) op_empty(b), op_echo(b), op_empty_confined(b);
    hostcalls(b, b->sb, 200);
    nop_log.want_tid = true; /* the confined sandbox's first call loads its filter */
    hostcalls(b, b->sbc, 200);
    nop_log.want_tid = false;
    if (nop_log.tid == (pid_t)syscall(SYS_gettid)) die("the confined sandbox has no worker thread");
    b->worker_tid = nop_log.tid;
    for (int i = 0; i < 2; i++) {
        op_guest_compute(b);
        op_native_compute(b);
        op_create(b);
        op_snap_create(b);
    }
    for (int i = 0; i < 200; i++) op_call_restore(b);
    call_or_die(b, b->sb, "Empty", HL_I32, NULL, 0, &ret);
}

void calls_teardown(bench *b)
{
    floor_destroy(b->fl);
    hl_sandbox_free(b->sbc);
    hl_config_free(b->cfgc);
    hl_sandbox_free(b->sb);
    hl_sandbox_free(b->sbr);
    hl_snapshot_free(b->snap);
    hl_config_free(b->cfg);
    free(b->tab);
    samples_free(&b->hostcall_total);
    samples_free(&b->hostcall_total_conf);
    samples_free(&b->free_only);
    samples_free(&b->restore_only);
}

/* CLOCK_READS reads of CLOCK_MONOTONIC on the host, per read. */
uint64_t sample_host_clock(bench *b, int r, span *sp)
{
    struct timespec ts;
    uint64_t t, sum = 0;
    (void)b, (void)r;
    span_begin(sp);
    for (int i = 0; i < CLOCK_READS; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sum += (uint64_t)ts.tv_nsec;
    }
    t = span_end(sp);
    if (!sum) die("host clock_gettime gave only zeros");
    return t / CLOCK_READS;
}

/* The same in the guest: a call of ClockReads(CLOCK_READS) minus one of ClockReads(0), per
 * read (one exit per call, none per read). */
uint64_t sample_guest_clock(bench *b, int r, span *sp)
{
    hl_value n = hl_u32(CLOCK_READS), z = hl_u32(0), ret;
    uint64_t t0, t1, t2;
    (void)r;
    (void)sp;
    t0 = now_ns();
    call_or_die(b, b->sb, "ClockReads", HL_U64, &z, 1, &ret);
    t1 = now_ns();
    call_or_die(b, b->sb, "ClockReads", HL_U64, &n, 1, &ret);
    t2 = now_ns();
    if (!ret.v.u64) die("guest clock_gettime gave only zeros");
    return t2 - t1 > t1 - t0 ? (t2 - t1 - (t1 - t0)) / CLOCK_READS : 0;
}
