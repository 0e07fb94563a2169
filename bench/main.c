/* hyperlight-bench - measures the cost of calls into hyperlight-c sandboxes against the floor
 * the hypervisor allows, prints a table and writes it as JSON under bench/results/.
 *
 * Rows (docs/benchmarks.md):
 *   floor        one bare VM exit round trip (KVM_RUN -> guest `out` -> back) of a minimal VM
 *                the benchmark builds itself through the library's internals, in the same CPU
 *                mode as a sandbox (native supervisor mode on kvm_pvm)
 *   empty call   hl_call(Empty) -> i32
 *   echo         hl_call(Echo, "hello") -> string
 *   host call    one guest -> host -> guest round trip (host function Nop() -> i32), timed
 *                between consecutive calls of Nop inside HostRoundTrip(n)
 *   call+restore hl_call(Empty) then hl_sandbox_restore to a snapshot taken after creation (extra row)
 *   compute      the loop of compute.h in the guest (Compute) and natively on the host
 *   create       hl_sandbox_new_from_file + hl_sandbox_free, and (extra row)
 *                hl_sandbox_new_from_snapshot + hl_sandbox_free
 * Snapshots (each against a floor measured here, on minimal VMs of the same shape):
 *   Dirty(n) + hl_sandbox_restore for n = 0, 1, 16, 256 pages, against exit + KVM_GET_DIRTY_LOG +
 *                copy of the pages (pages left writable, and re-protected each time)
 *   hl_snapshot_take after Dirty(16)
 *   new sandbox from a snapshot + first call: unpooled (floor: a fresh KVM VM, creation to
 *                first exit), pooled (floor: exit + dirty log), and a pooled one no caller used
 *                before (made and warmed by the pool's filler)
 *   hl_snapshot_load + new sandbox + first call
 *   fork+exec, posix_spawn and bwrap of a static binary, for comparison
 *   interrupt latency: hl_sandbox_interrupt to hl_call returning, guest spinning or in a host
 *                function
 *   resident memory per extra idle sandbox
 * Seccomp confinement (hl_config_set_confinement): the empty call and the host call round trip
 * on a confined sandbox of the same guest (its calls run on a worker thread under a seccomp
 * allowlist), each against the unconfined row measured in the same rounds
 * Host instructions per warm Echo("hello") call, counted by valgrind --tool=callgrind in a
 * re-run of this program (insns.c); --insns measures only that, and shows where they go.
 * All rows are measured in interleaved rounds so the noise of the shared cores hits each of
 * them alike. Afterwards, one counting pass reads the kvm tracepoints (kvm_exit,
 * kvm_userspace_exit, kvm_emulate_insn, ...) and the ioctl syscalls of this thread per call.
 *
 * This file: the options, the table of rows, and the driver (setup, warm-up, rounds, counting
 * pass, report, teardown). A row says how one of its samples is measured (op, sample or run,
 * bench.h); setup and teardown are per part, not per row, because rows share what they measure
 * (one snapshot serves eleven rows, one sandbox five) and because the order matters (the
 * process helper is forked before any VM exists). The parts: calls.c, snapshots.c, spawn.c,
 * intr.c, mem.c and insns.c; report.c prints and writes the results; stats.c, perf.c and
 * util.c are the tools; floor.c builds the floor VMs and is the one file that sees the
 * library's internals.
 *
 * usage: hyperlight-bench [--guest PATH] [--out DIR] [--rounds N] [--no-json] [--no-insns]
 *        hyperlight-bench --insns [--echo-guest PATH] [--insns-out DIR]
 *        hyperlight-bench --alloc [...]   the guest allocators compared (alloc.c)
 * (and the hidden mode valgrind runs: hyperlight-bench --insns-child N GUEST, insns.c) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

const uint32_t dirty_n[NDIRTY] = { 0, 1, 16, DIRTY_MAX_PAGES };

/* ---- the rows ---- */
row rows[NROWS] = {
    [R_FLOOR] = { .name = "floor_exit_round_trip",
                  .label = "floor: bare VM exit round trip",
                  .tag = "exit",
                  .op = op_floor,
                  .exits = EXITS_ONE,
                  .batch = BATCH,
                  .count_ops = COUNT_OPS },
    [R_EMPTY] = { .name = "empty_call",
                  .label = "empty call: Empty() -> i32",
                  .tag = "empty",
                  .op = op_empty,
                  .exits = EXITS_SB,
                  .batch = BATCH,
                  .count_ops = COUNT_OPS },
    [R_ECHO] = { .name = "echo_hello",
                 .label = "Echo(\"hello\") -> string",
                 .op = op_echo,
                 .exits = EXITS_SB,
                 .batch = BATCH,
                 .count_ops = COUNT_OPS },
    /* HOSTCALL_BATCH x (HOSTCALLS - 1) samples per round; counted: HostRoundTrip(COUNT_OPS) */
    [R_HOSTCALL] = { .name = "host_call_round_trip",
                     .label = "host call round trip (Nop)",
                     .tag = "hcall",
                     .run = run_hostcalls,
                     .count = count_hostcalls },
    [R_GUEST_COMPUTE] = { .name = "guest_compute",
                          .label = "compute loop, guest",
                          .op = op_guest_compute,
                          .exits = EXITS_SB,
                          .batch = 1,
                          .count_ops = 3 },
    [R_NATIVE_COMPUTE] = { .name = "native_compute",
                           .label = "compute loop, native",
                           .op = op_native_compute,
                           .exits = EXITS_ZERO,
                           .batch = 1,
                           .count_ops = 3 },
    [R_CALL_RESTORE] = { .name = "empty_call_restore",
                         .label = "empty call + hl_sandbox_restore",
                         .run = run_call_restore,
                         .op = op_call_restore,
                         .exits = EXITS_SBR,
                         .count_ops = COUNT_OPS },
    [R_CREATE] = { .name = "sandbox_create_free",
                   .label = "sandbox create + free",
                   .run = run_create,
                   .op = op_create,
                   .count_ops = 5 /* (also checks the register-ioctl counter: creation uses them) */ },
    [R_SNAP_CREATE] = { .name = "sandbox_from_snapshot_free",
                        .label = "sandbox from snapshot + free",
                        .op = op_snap_create,
                        .batch = CREATE_BATCH,
                        .count_ops = 5 },
    [R_SNAP_TAKE] = { .name = "snapshot_take_16",
                      .label = "hl_snapshot_take after Dirty(16)",
                      .floor = -1,
                      .sample = sample_take,
                      .batch = 20,
                      .count_ops = 20 },
    [R_FLOOR_VM] = { .name = "floor_fresh_vm_first_exit",
                     .label = "floor: fresh VM, create -> 1st exit",
                     .tag = "vm",
                     .floor = -1,
                     .sample = sample_fresh_vm,
                     .batch = 4,
                     .count_ops = 5 },
    [R_NEW_CALL] = { .name = "new_from_snapshot_first_call",
                     .label = "new from snapshot + 1st call",
                     .tag = "new",
                     .floor = R_FLOOR_VM,
                     .sample = sample_new_call,
                     .batch = 4,
                     .count_ops = 5 },
    [R_POOL_CALL] = { .name = "pool_get_first_call",
                      .label = "pool: hl_pool_get + 1st call",
                      .floor = R_DFLOOR_W + 0,
                      .sample = sample_pool_call,
                      .settle = settle_pool,
                      .batch = 100,
                      .count_ops = 100 },
    [R_POOL_PUT] = { .name = "pool_put_scrub",
                     .label = "pool: hl_pool_put (scrub)",
                     .floor = -1,
                     .sample = sample_pool_put,
                     .settle = settle_pool,
                     .batch = 0 /* samples come from R_POOL_CALL */,
                     .count_ops = 100 },
    [R_POOL_NOBG] = { .name = "pool_no_filler_get_first_call",
                      .label = "  same, pool without filler thread",
                      .floor = R_DFLOOR_W + 0,
                      .sample = sample_pool_nobg,
                      .batch = 100,
                      .count_ops = 100 },
    [R_POOL_FRESH] = { .name = "pool_get_unused_first_call",
                       .label = "pool: get unused (warmed) + 1st call",
                       .floor = R_DFLOOR_W + 0,
                       .sample = sample_pool_fresh,
                       .settle = settle_pool_fresh,
                       .batch = 3,
                       .count_ops = 3 },
    [R_LOAD_CALL] = { .name = "snapshot_load_new_first_call",
                      .label = "load file + new + 1st call",
                      .floor = R_FLOOR_VM,
                      .sample = sample_load,
                      .batch = 4,
                      .count_ops = 5 },
    /* the process rows are timed in the helper process: their counters are not read */
    [R_FORK_EXEC] = { .name = "fork_exec_static",
                      .label = "fork+exec static binary, wait",
                      .floor = R_NEW_CALL,
                      .sample = sample_process,
                      .batch = 10 },
    [R_SPAWN] = { .name = "posix_spawn_static",
                  .label = "posix_spawn static binary, wait",
                  .floor = R_NEW_CALL,
                  .sample = sample_process,
                  .batch = 10 },
    [R_BWRAP] = { .name = "bwrap_static",
                  .label = "bwrap --unshare-all static binary",
                  .floor = R_NEW_CALL,
                  .sample = sample_process,
                  .batch = 2 },
    [R_INTR_SPIN] = { .name = "interrupt_spinning_guest",
                      .label = "interrupt -> return, guest spinning",
                      .floor = R_FLOOR,
                      .sample = sample_intr_spin,
                      .batch = 10,
                      .count_ops = 10 },
    [R_INTR_HOSTFN] = { .name = "interrupt_in_host_function",
                        .label = "interrupt -> return, in host fn",
                        .floor = R_FLOOR,
                        .sample = sample_intr_hostfn,
                        .batch = 10,
                        .count_ops = 10 },
    /* as the unconfined rows, counted on both threads */
    [R_EMPTY_CONF] = { .name = "empty_call_confined",
                       .label = "empty call, confined sandbox",
                       .floor = R_EMPTY,
                       .op = op_empty_confined,
                       .count = count_confined,
                       .batch = BATCH },
    [R_HOSTCALL_CONF] = { .name = "host_call_round_trip_confined",
                          .label = "host call round trip, confined",
                          .floor = R_HOSTCALL,
                          .run = run_hostcalls,
                          .count = count_confined },
    [R_HOST_CLOCK] = { .name = "clock_gettime_host",
                       .label = "clock_gettime, host (per read)",
                       .tag = "hclock",
                       .floor = -1,
                       .sample = sample_host_clock,
                       .batch = 20 },
    [R_GUEST_CLOCK] = { .name = "clock_gettime_guest",
                        .label = "clock_gettime, guest (per read)",
                        .floor = R_HOST_CLOCK,
                        .sample = sample_guest_clock,
                        .batch = 20 },
};

/* Names and labels of the rows per dirty page count. */
static void rows_init(void)
{
    static char buf[3 * NDIRTY][3][64];
    for (int i = 0; i < NDIRTY; i++) {
        const unsigned n = dirty_n[i];
        row *w = &rows[R_DFLOOR_W + i], *p = &rows[R_DFLOOR_P + i], *d = &rows[R_DIRTY + i];
        snprintf(buf[i][0], 64, "floor_dirty_%u_writable", n);
        snprintf(buf[i][1], 64, "floor: exit+dirty log+copy %u pg", n);
        snprintf(buf[i][2], 64, "dlog%u", n);
        *w = (row){ .name = buf[i][0],
                    .label = buf[i][1],
                    .tag = buf[i][2],
                    .floor = R_FLOOR,
                    .sample = sample_dfloor_writable,
                    .batch = n >= 256 ? 100 : 200,
                    .count_ops = 100 };
        snprintf(buf[NDIRTY + i][0], 64, "floor_dirty_%u_reprotected", n);
        snprintf(buf[NDIRTY + i][1], 64, "  same, re-protected each time");
        snprintf(buf[NDIRTY + i][2], 64, "dlog%up", n);
        *p = (row){ .name = buf[NDIRTY + i][0],
                    .label = buf[NDIRTY + i][1],
                    .tag = buf[NDIRTY + i][2],
                    .floor = R_DFLOOR_W + i,
                    .sample = sample_dfloor_reprotected,
                    .batch = n >= 256  ? 10
                             : n >= 16 ? 50
                                       : 100,
                    .count_ops = n >= 256 ? 10 : 50 };
        snprintf(buf[2 * NDIRTY + i][0], 64, "dirty_%u_call_restore", n);
        snprintf(buf[2 * NDIRTY + i][1], 64, "Dirty(%u) + hl_sandbox_restore", n);
        *d = (row){ .name = buf[2 * NDIRTY + i][0],
                    .label = buf[2 * NDIRTY + i][1],
                    .floor = R_DFLOOR_W + i,
                    .sample = sample_dirty,
                    .batch = n >= 256 ? 100 : 200,
                    .count_ops = 100 };
    }
}

/* ---- the parts: set up in this order, torn down in the reverse ---- */
static const struct part {
    void (*setup)(bench *b);
    void (*warm)(bench *b); /* after every setup, in the same order */
    void (*teardown)(bench *b);
} parts[] = {
    { spawn_setup, NULL, spawn_teardown }, /* first, while this process is small and has no VM */
    { calls_setup, calls_warm, calls_teardown }, { snapshots_setup, snapshots_warm, snapshots_teardown },
    { intr_setup, NULL, intr_teardown },         { snapfile_setup, NULL, NULL },
};
#define NPARTS (int)(sizeof parts / sizeof parts[0])

/* ---- the driver ---- */
/* One batch of row r: adds its samples. */
static void run_batch(bench *b, int r)
{
    row *w = &rows[r];
    uint64_t t0;
    if (w->run) {
        w->run(b, r);
    } else if (w->op) {
        for (int i = 0; i < w->batch; i++) {
            t0 = now_ns();
            w->op(b);
            add_sample(&w->s, now_ns() - t0);
        }
    } else if (!w->err) {
        for (int i = 0; i < w->batch; i++) {
            span sp = { .keep = true };
            add_sample(&w->s, w->sample(b, r, &sp));
        }
    }
    if (w->settle && !w->err) w->settle(b);
}

/* A few samples of every sample row, untimed. */
static void warm_samples(bench *b)
{
    for (int r = 0; r < NROWS; r++) {
        span sp = { 0 };
        int n = rows[r].batch < 20 ? rows[r].batch : 20;
        if (!rows[r].sample || rows[r].err) continue;
        for (int k = 0; k < n; k++) rows[r].sample(b, r, &sp);
    }
}

/* The counting pass of an op row: count_ops calls between two counter reads. */
static void count_op(bench *b, counters *c, int r)
{
    row *w = &rows[r];
    hl_sandbox *sb = w->exits == EXITS_SB ? b->sb : w->exits == EXITS_SBR ? b->sbr : NULL;
    uint64_t a[NCTR], z[NCTR], ops = (uint64_t)w->count_ops, e0 = sb ? hl_sandbox_exit_count(sb) : 0;
    ctr_read(c, a);
    for (uint64_t i = 0; i < ops; i++) w->op(b);
    ctr_read(c, z);
    if (sb) w->exits_per_op = (double)(hl_sandbox_exit_count(sb) - e0) / (double)ops;
    else if (w->exits == EXITS_ONE) w->exits_per_op = 1; /* the floor, by construction: one KVM_RUN, one OUT */
    else if (w->exits == EXITS_ZERO) w->exits_per_op = 0;
    w->ctr = ctr_per_op(c, a, z, ops);
    w->have_ctr = c->ok;
}

/* The counting pass of a sample row: the counters over the timed parts only. */
static void count_samples(bench *b, counters *c, int r)
{
    row *w = &rows[r];
    span sp = { .c = c };
    uint64_t ops = (uint64_t)w->count_ops;
    if (w->err || !ops) return;
    for (uint64_t i = 0; i < ops; i++) w->sample(b, r, &sp);
    if (w->settle) w->settle(b);
    for (int i = 0; i < NCTR; i++) w->ctr.c[i] = c->ok && c->slot[i] >= 0 ? (double)sp.acc[i] / (double)ops : -1;
    w->have_ctr = c->ok;
    w->exits_per_op = sp.has_exits ? (double)sp.exits / (double)ops : -1;
}

/* Tracepoints and library exits per operation, every row after the timed rounds. */
static void counting_pass(bench *b)
{
    counters c, cw;
    ctr_open(&c, 0);
    if (b->worker_tid) ctr_open(&cw, b->worker_tid);
    else memset(&cw, 0, sizeof cw);
    for (int r = 0; r < NROWS; r++) {
        rows[r].exits_per_op = -1;
        if (rows[r].count) rows[r].count(b, &c, &cw, r);
        else if (rows[r].op) count_op(b, &c, r);
        else count_samples(b, &c, r);
    }
    if (b->worker_tid) ctr_close(&cw);
    ctr_close(&c);
    b->ctr_ok = c.ok;
}

/* Removes the temporary directory and what the parts left in it. */
static void cleanup_tmp(bench *b)
{
    char p[PATH_MAX + 300];
    DIR *d;
    struct dirent *e;
    if (!b->tmpdir[0] || !(d = opendir(b->tmpdir))) return;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", b->tmpdir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(b->tmpdir);
}

/* ---- options ---- */
typedef struct options {
    const char *out_dir, *insns_out;
    int rounds;
    bool json, insns, insns_only;
} options;

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--guest PATH] [--out DIR] [--rounds N] [--no-json] [--no-insns]\n"
            "       %s --insns [--echo-guest PATH] [--insns-out DIR]\n",
            argv0, argv0);
    exit(2);
}

static void parse_options(int argc, char **argv, options *o, bench *b)
{
    static char guest_buf[PATH_MAX], out_buf[PATH_MAX];
    *o = (options){ .rounds = DEFAULT_ROUNDS, .json = true, .insns = true };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--guest") == 0 && i + 1 < argc) b->guest = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) o->out_dir = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) o->rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-json") == 0) o->json = false;
        else if (strcmp(argv[i], "--no-insns") == 0) o->insns = false;
        else if (strcmp(argv[i], "--insns") == 0) o->insns_only = true;
        else if (strcmp(argv[i], "--echo-guest") == 0 && i + 1 < argc)
            snprintf(b->insns.guest, sizeof b->insns.guest, "%s", argv[++i]);
        else if (strcmp(argv[i], "--insns-out") == 0 && i + 1 < argc) o->insns_out = argv[++i];
        else usage(argv[0]);
    }
    if (o->rounds < 1) die("--rounds must be at least 1");
    if (!b->guest) {
        /* build/bin/hyperlight-bench -> build/tests/guests/bench_guest.elf */
        b->guest = exe_relative(guest_buf, sizeof guest_buf, "../tests/guests/bench_guest.elf")
                       ? guest_buf
                       : "build/tests/guests/bench_guest.elf";
    }
    if (!b->insns.guest[0]) {
        /* build/bin/hyperlight-bench -> build/guests/demo.elf (which has Echo) */
        char demo[PATH_MAX];
        if (!exe_relative(demo, sizeof demo, "../guests/demo.elf") || !realpath(demo, b->insns.guest))
            snprintf(b->insns.guest, sizeof b->insns.guest, "build/guests/demo.elf");
    }
    if (!o->out_dir) {
        struct stat st;
        if (stat("bench", &st) == 0 && S_ISDIR(st.st_mode)) o->out_dir = "bench/results";
        else if (exe_relative(out_buf, sizeof out_buf, "../../bench")) {
            strncat(out_buf, "/results", sizeof out_buf - strlen(out_buf) - 1);
            o->out_dir = out_buf;
        } else o->out_dir = "bench/results";
    }
}

/* --insns: only the host instructions per Echo call, and where they go. */
static int insns_only(bench *b, const options *o)
{
    insns_measure(b, o->insns_out ? o->insns_out : b->tmpdir);
    insns_print(&b->insns, true);
    if (o->insns_out && b->insns.ok)
        printf("callgrind files: %s/callgrind.echo.%d and .%d (callgrind_annotate reads them)\n", o->insns_out,
               INSNS_CALLS_FEW, INSNS_CALLS_MANY);
    return b->insns.ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    static bench b;
    options o;
    uint64_t t_start = now_ns();
    int rc = 0;

    if (argc > 1 && strcmp(argv[1], "--insns-child") == 0) return insns_child(argc, argv);
    if (argc > 1 && strcmp(argv[1], "--alloc") == 0) return alloc_main(argc, argv);
    parse_options(argc, argv, &o, &b);
    b.pvm = floor_kvm_is_pvm();
    snprintf(b.tmpdir, sizeof b.tmpdir, "/tmp/hyperlight-bench-XXXXXX");
    if (!mkdtemp(b.tmpdir)) die("mkdtemp: %s", strerror(errno));
    if (o.insns_only) {
        rc = insns_only(&b, &o);
        cleanup_tmp(&b);
        return rc;
    }
    rows_init();

    for (int i = 0; i < NPARTS; i++) parts[i].setup(&b);
    for (int i = 0; i < NPARTS; i++)
        if (parts[i].warm) parts[i].warm(&b);
    warm_samples(&b);
    /* timed rounds: every row each round, starting with a different one */
    for (int k = 0; k < o.rounds; k++)
        for (int j = 0; j < NROWS; j++) run_batch(&b, (k + j) % NROWS);
    counting_pass(&b);
    pools_free(&b); /* first: no filler thread at work during the memory figure */
    measure_memory(&b, &b.mem);
    if (o.insns) insns_measure(&b, o.insns_out ? o.insns_out : b.tmpdir);
    else snprintf(b.insns.err, sizeof b.insns.err, "switched off (--no-insns)");

    report(&b, o.rounds, o.out_dir, o.json);
    printf("total time: %.1f s\n", (double)(now_ns() - t_start) / 1e9);

    for (int i = NPARTS - 1; i >= 0; i--)
        if (parts[i].teardown) parts[i].teardown(&b);
    for (int r = 0; r < NROWS; r++) samples_free(&rows[r].s);
    cleanup_tmp(&b);
    return rc;
}
