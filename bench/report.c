/* report.c - the results: statistics and ratios of the rows, the targets, the printed table
 * with its notes, and the JSON file (docs/benchmarks.md describes both). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

typedef struct target {
    const char *name, *desc;
    double value, limit;
    bool at_most; /* value must be <= limit (else >=) */
    bool known, pass;
    double margin; /* rounding margin for whole-number counts */
} target;

#define MAX_TARGETS (4 + NDIRTY + 4)

typedef struct rep {
    bench *b;
    int rounds;
    stats hct, fst, rst; /* HostRoundTrip(HOSTCALLS), hl_sandbox_free alone, hl_sandbox_restore alone */
    double amortised;    /* (HostRoundTrip(n) - empty call) / n */
    double speed;        /* native / guest compute */
    target t[MAX_TARGETS];
    int nt;
    char machine[512], when[64], fname[96], source[128];
} rep;

/* ---- machine description ---- */
static void machine_desc(char *buf, size_t len)
{
    char model[256] = "unknown CPU", line[512];
    struct utsname u;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    p += 1 + (p[1] == ' ');
                    p[strcspn(p, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", p);
                }
                break;
            }
        fclose(f);
    }
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    snprintf(buf, len, "%s, %ld CPUs, Linux %s (%s)", model, sysconf(_SC_NPROCESSORS_ONLN), u.release, u.nodename);
}

/* `git describe` of the working directory's repository, if there is one: the library's
 * version being measured ("-dirty": with uncommitted changes). */
static void source_desc(char *buf, size_t len)
{
    FILE *p = popen("git describe --always --dirty 2>/dev/null", "r");
    snprintf(buf, len, "unknown");
    if (!p) return;
    if (fgets(buf, (int)len, p)) buf[strcspn(buf, "\n")] = 0;
    else snprintf(buf, len, "unknown");
    pclose(p);
}

/* ---- statistics, ratios, targets ---- */
static void finish_rows(rep *R)
{
    bench *b = R->b;
    for (int r = 0; r < NROWS; r++) rows[r].st = compute_stats(&rows[r].s);
    R->hct = compute_stats(&b->hostcall_total);
    R->fst = compute_stats(&b->free_only);
    R->rst = compute_stats(&b->restore_only);
    const double floor_med = (double)rows[R_FLOOR].st.median;
    for (int r = R_FLOOR; r <= R_CALL_RESTORE; r++) {
        rows[r].ratio = (double)rows[r].st.median / floor_med;
        rows[r].ratio_of = "median / floor median";
    }
    rows[R_GUEST_COMPUTE].ratio = (double)rows[R_GUEST_COMPUTE].st.median / (double)rows[R_NATIVE_COMPUTE].st.median;
    rows[R_GUEST_COMPUTE].ratio_of = "guest median / native median";
    rows[R_NATIVE_COMPUTE].ratio = 1;
    rows[R_NATIVE_COMPUTE].ratio_of = "guest median / native median";
    for (int r = R_DFLOOR_W; r < NROWS; r++) {
        static char of[NROWS][96];
        row *w = &rows[r];
        if (w->err || w->floor < 0 || rows[w->floor].err || !w->st.median || !rows[w->floor].st.median) continue;
        w->ratio = (double)w->st.median / (double)rows[w->floor].st.median;
        snprintf(of[r], sizeof of[r], "median / %s median", rows[w->floor].name);
        w->ratio_of = of[r];
    }
    R->amortised = ((double)R->hct.median - (double)rows[R_EMPTY].st.median) / HOSTCALLS;
    R->speed = (double)rows[R_NATIVE_COMPUTE].st.median / (double)rows[R_GUEST_COMPUTE].st.median;
}

static void make_targets(rep *R)
{
    const bench *b = R->b;
    const row *e = &rows[R_EMPTY];
    target *t = R->t;
    double regio = -1;
    for (int r = R_EMPTY; r <= R_HOSTCALL; r++)
        if (rows[r].have_ctr && rows[r].ctr.c[C_REGIO] >= 0 && rows[r].ctr.c[C_REGIO] > regio)
            regio = rows[r].ctr.c[C_REGIO];
    const double rss_user = b->mem.per[M_RSS_ANON] > -0.5e9 && b->mem.per[M_RSS_FILE] > -0.5e9
                                ? b->mem.per[M_RSS_ANON] + b->mem.per[M_RSS_FILE]
                                : -1;
    static char tname[NDIRTY][64], tdesc[NDIRTY][160];
    int nt = 0;
    t[nt++] = (target){ "empty_call_vs_floor",
                        "empty call median <= 1.3 x floor median",
                        rows[R_EMPTY].ratio,
                        TARGET_EMPTY_VS_FLOOR,
                        true,
                        true,
                        false,
                        0 };
    t[nt++] = (target){ "guest_compute_speed",
                        "guest compute speed (native time / guest time) >= 0.9",
                        R->speed,
                        TARGET_COMPUTE_SPEED,
                        false,
                        true,
                        false,
                        0 };
    t[nt++] = (target){ "exits_per_empty_call",
                        "one VM exit per call (kvm:kvm_userspace_exit per empty call)",
                        e->have_ctr && e->ctr.c[C_UEXIT] >= 0 ? e->ctr.c[C_UEXIT] : e->exits_per_op,
                        1.0,
                        true,
                        true,
                        false,
                        0.005 };
    t[nt++] = (target){ "register_ioctls_per_call",
                        "no vCPU register ioctl on the call path (KVM_GET/SET_REGS, SREGS, FPU, MSRS, ... per call "
                        "or host call: the most of the empty call, Echo and host call rows)",
                        regio,
                        0.0,
                        true,
                        regio >= 0,
                        false,
                        0.005 };
    for (int i = 0; i < NDIRTY; i++) {
        const row *d = &rows[R_DIRTY + i];
        snprintf(tname[i], sizeof tname[i], "call_restore_dirty_%u_vs_floor", dirty_n[i]);
        snprintf(tdesc[i], sizeof tdesc[i],
                 "Dirty(%u) + hl_sandbox_restore median <= 1.3 x its floor (exit + dirty log + copy of %u pages, "
                 "pages left writable)",
                 dirty_n[i], dirty_n[i]);
        t[nt++] = (target){ tname[i], tdesc[i], d->ratio, TARGET_RESTORE_VS_FLOOR, true, d->ratio > 0, false, 0 };
    }
    t[nt++] = (target){ "pooled_new_sandbox_first_call_us",
                        "hl_pool_get + first call median <= 50 us (absolute; its floor is in the table)",
                        (double)rows[R_POOL_CALL].st.median / 1e3,
                        TARGET_POOLED_NEW_CALL_US,
                        true,
                        rows[R_POOL_CALL].st.median > 0,
                        false,
                        0 };
    t[nt++] = (target){ "unpooled_new_sandbox_first_call_vs_fresh_vm",
                        "hl_sandbox_new_from_snapshot + first call median <= 1.2 x fresh KVM VM creation to first "
                        "exit",
                        rows[R_NEW_CALL].ratio,
                        TARGET_UNPOOLED_VS_FRESH_VM,
                        true,
                        rows[R_NEW_CALL].ratio > 0,
                        false,
                        0 };
    t[nt++] = (target){ "rss_per_idle_sandbox_kib",
                        "resident memory (RssAnon + RssFile) per extra idle sandbox <= 128 KiB",
                        rss_user,
                        TARGET_RSS_PER_SANDBOX_KIB,
                        true,
                        rss_user > -0.5,
                        false,
                        0 };
    t[nt++] = (target){ "host_insns_per_echo_call",
                        "host instructions per warm Echo(\"hello\") call <= 1200 (valgrind --tool=callgrind: "
                        "(1100 calls - 100 calls) / 1000)",
                        b->insns.per_call,
                        TARGET_INSNS_PER_ECHO,
                        true,
                        b->insns.ok,
                        false,
                        0 };
    for (int i = 0; i < nt; i++)
        if (t[i].known) t[i].pass = t[i].at_most ? t[i].value <= t[i].limit + t[i].margin : t[i].value >= t[i].limit;
    R->nt = nt;
}

/* ---- JSON ---- */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x)
{
    if (x < 0) fputs("null", f);
    else fprintf(f, "%.4g", x);
}

/* The pooled row's extra fields: where each get's sandbox came from. */
static void json_pool_extra(FILE *f, const bench *b)
{
    const double all = (double)(b->pool_warm.n + b->pool_filler.n + b->pool_cold.n);
    fprintf(f, ", \"never_ran_fraction\": %.3f, \"filler_made_fraction\": %.3f, \"returned_fraction\": %.3f",
            (double)b->pool_cold.n / all, (double)b->pool_filler.n / all, (double)b->pool_warm.n / all);
    if (b->pool_cold.n)
        fprintf(f, ", \"never_ran_median_ns\": %" PRIu64, compute_stats((samples *)&b->pool_cold).median);
    if (b->pool_filler.n)
        fprintf(f, ", \"filler_made_median_ns\": %" PRIu64 ", \"filler_made_get_median_ns\": %" PRIu64,
                compute_stats((samples *)&b->pool_filler).median, compute_stats((samples *)&b->pool_filler_get).median);
    if (b->pool_warm.n)
        fprintf(f, ", \"returned_median_ns\": %" PRIu64, compute_stats((samples *)&b->pool_warm).median);
}

static void json_row_extra(FILE *f, int r, const rep *R)
{
    const bench *b = R->b;
    if (r == R_HOSTCALL) fprintf(f, ", \"amortised_ns\": %.0f", R->amortised);
    if (r == R_CREATE) fprintf(f, ", \"free_median_ns\": %" PRIu64, R->fst.median);
    if (r == R_CALL_RESTORE)
        fprintf(f, ", \"restore_median_ns\": %" PRIu64 ", \"restore_p99_ns\": %" PRIu64, R->rst.median, R->rst.p99);
    if (r == R_GUEST_COMPUTE && rows[R_GUEST_COMPUTE].st.median)
        fprintf(f, ", \"speed_vs_native\": %.3f",
                (double)rows[R_NATIVE_COMPUTE].st.median / (double)rows[R_GUEST_COMPUTE].st.median);
    if (r >= R_DFLOOR_W && r < R_DIRTY + NDIRTY)
        fprintf(f, ", \"dirty_pages\": %u", dirty_n[(r - R_DFLOOR_W) % NDIRTY]);
    if (r >= R_DFLOOR_W && r < R_DFLOOR_P)
        fprintf(f, ", \"pages_copied_per_restore\": %" PRIu64, dfloor_copied(b->df[r - R_DFLOOR_W]));
    if (r >= R_DIRTY && r < R_DIRTY + NDIRTY) {
        int i = r - R_DIRTY;
        stats rs = compute_stats((samples *)&b->dirty_restore[i]);
        const row *p = &rows[R_DFLOOR_P + i];
        fprintf(f, ", \"restore_median_ns\": %" PRIu64, rs.median);
        if (p->st.median && rows[r].st.median)
            fprintf(f, ", \"ratio_vs_reprotected_floor\": %.3f", (double)rows[r].st.median / (double)p->st.median);
        if (rows[R_DFLOOR_W + i].st.mean > 0)
            fprintf(f, ", \"mean_ratio\": %.3f", rows[r].st.mean / rows[R_DFLOOR_W + i].st.mean);
    }
    if (r == R_FLOOR_VM)
        fprintf(f, ", \"first_run_median_ns\": %" PRIu64, compute_stats((samples *)&b->fresh_first_run).median);
    if (r == R_POOL_CALL && b->pool_warm.n + b->pool_filler.n + b->pool_cold.n) json_pool_extra(f, b);
    if ((r == R_EMPTY_CONF || r == R_HOSTCALL_CONF) && rows[rows[r].floor].st.median) {
        const row *u = &rows[rows[r].floor];
        fprintf(f, ", \"unconfined_median_ns\": %" PRIu64 ", \"diff_ns\": %" PRId64 ", \"mean_diff_ns\": %.0f",
                u->st.median, (int64_t)rows[r].st.median - (int64_t)u->st.median, rows[r].st.mean - u->st.mean);
    }
    if (r == R_HOSTCALL_CONF && b->hostcall_total_conf.n && rows[R_EMPTY_CONF].st.median) {
        stats h = compute_stats((samples *)&b->hostcall_total_conf);
        fprintf(f, ", \"host_round_trip_call_median_ns\": %" PRIu64 ", \"amortised_ns\": %.0f", h.median,
                ((double)h.median - (double)rows[R_EMPTY_CONF].st.median) / HOSTCALLS);
    }
    if (r == R_NEW_CALL)
        fprintf(f, ", \"first_call_median_ns\": %" PRIu64, compute_stats((samples *)&b->new_first_call).median);
    if (r == R_LOAD_CALL && b->load_only.n)
        fprintf(f, ", \"load_median_ns\": %" PRIu64, compute_stats((samples *)&b->load_only).median);
    if (r == R_FORK_EXEC || r == R_SPAWN || r == R_BWRAP) {
        fprintf(f, ", \"binary\": ");
        json_str(f, b->static_bin);
        fprintf(f, ", \"binary_made_by\": ");
        json_str(f, b->static_how ? b->static_how : "");
    }
}

static void json_row(FILE *f, int r, const rep *R)
{
    const row *w = &rows[r];
    if (w->err) {
        fprintf(f, "    {\"name\": \"%s\", \"iterations\": 0, \"median_ns\": null, \"error\": ", w->name);
        json_str(f, w->err);
        fprintf(f, "}%s\n", r + 1 < NROWS ? "," : "");
        return;
    }
    fprintf(f,
            "    {\"name\": \"%s\", \"iterations\": %zu, \"median_ns\": %" PRIu64 ", \"p99_ns\": %" PRIu64
            ", \"min_ns\": %" PRIu64 ", \"mean_ns\": %.0f",
            w->name, w->s.n, w->st.median, w->st.p99, w->st.min, w->st.mean);
    if (w->ratio > 0) {
        fprintf(f, ", \"ratio\": %.3f, \"ratio_of\": ", w->ratio);
        json_str(f, w->ratio_of);
    }
    json_row_extra(f, r, R);
    if (w->exits_per_op >= 0) fprintf(f, ", \"exits_per_call\": %.3f", w->exits_per_op);
    if (w->have_ctr) {
        fprintf(f, ", \"per_call\": {");
        for (int i = 0; i < NCTR; i++) {
            fprintf(f, "%s\"%s\": ", i ? ", " : "", ctr_name[i]);
            json_num(f, w->ctr.c[i]);
        }
        fputc('}', f);
    }
    fprintf(f, "}%s\n", r + 1 < NROWS ? "," : "");
}

static void json_insns(FILE *f, const insns_res *m)
{
    fprintf(f, "  \"host_insns_per_echo_call\": {\"tool\": \"valgrind --tool=callgrind\", \"guest\": ");
    json_str(f, m->guest);
    fprintf(f, ", \"calls\": [%d, %d]", INSNS_CALLS_FEW, INSNS_CALLS_MANY);
    if (!m->ok) {
        fprintf(f, ", \"value\": null, \"error\": ");
        json_str(f, m->err);
        fprintf(f, "},\n");
        return;
    }
    fprintf(f, ", \"totals\": [%" PRIu64 ", %" PRIu64 "], \"value\": %.1f, \"top_self\": [", m->total[0], m->total[1],
            m->per_call);
    for (int i = 0; i < m->ntop; i++) {
        fprintf(f, "%s{\"function\": ", i ? ", " : "");
        json_str(f, m->top[i].name);
        fprintf(f, ", \"per_call\": %.1f}", m->top[i].per_call);
    }
    fprintf(f, "], \"other_per_call\": %.1f},\n", m->top_other);
}

static void write_json(const char *path, const rep *R)
{
    const bench *b = R->b;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "hyperlight-bench: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "{\n  \"date\": ");
    json_str(f, R->when);
    fprintf(f, ",\n  \"machine\": ");
    json_str(f, R->machine);
    fprintf(f, ",\n  \"kvm\": \"%s\",\n  \"source\": ", b->pvm ? "kvm_pvm" : "kvm");
    json_str(f, R->source);
    fprintf(f, ",\n  \"guest\": ");
    json_str(f, b->guest);
    fprintf(f, ",\n  \"compute_iterations\": %u,\n  \"host_calls_per_call\": %d,\n  \"rows\": [\n", COMPUTE_N,
            HOSTCALLS);
    for (int r = 0; r < NROWS; r++) json_row(f, r, R);
    fprintf(f, "  ],\n  \"memory_per_idle_sandbox\": {\"sandboxes\": %d", b->mem.n);
    for (int i = 0; i < NMEM; i++) {
        fprintf(f, ", \"%s\": ", mem_json_name(i));
        if (b->mem.per[i] > -0.5e9) fprintf(f, "%.1f", b->mem.per[i]);
        else fputs("null", f);
    }
    fprintf(f, "},\n");
    json_insns(f, &b->insns);
    fprintf(f, "  \"targets\": {\n");
    for (int i = 0; i < R->nt; i++) {
        const target *t = &R->t[i];
        fprintf(f, "    \"%s\": {\"description\": ", t->name);
        json_str(f, t->desc);
        fprintf(f, ", \"value\": ");
        if (t->known) fprintf(f, "%.3f", t->value);
        else fputs("null", f);
        fprintf(f, ", \"limit\": %.3f, \"pass\": %s}%s\n", t->limit,
                !t->known ? "null"
                : t->pass ? "true"
                          : "false",
                i + 1 < R->nt ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    if (fclose(f) != 0) fprintf(stderr, "hyperlight-bench: writing %s failed: %s\n", path, strerror(errno));
}

/* ---- the table ---- */
static void fmt_ns(char *buf, size_t len, double ns)
{
    if (ns >= 1e7) snprintf(buf, len, "%.2f ms", ns / 1e6);
    else if (ns >= 1e4) snprintf(buf, len, "%.1f us", ns / 1e3);
    else snprintf(buf, len, "%.0f ns", ns);
}

static void fmt_ctr(char *buf, size_t len, const row *w, int i)
{
    if (!w->have_ctr || w->ctr.c[i] < 0) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f", w->ctr.c[i]);
}

#define LABEL_W 36

static void print_row(int r)
{
    const row *w = &rows[r];
    char med[32], p99[32], ratio[32], ex[16], cc[7][16];
    static const int col[7] = { C_UEXIT, C_EMUL, C_SPTE, C_IOCTL, C_RUN, C_REGIO, C_SYSCALL };
    if (w->err) {
        printf("%-*s %s\n", LABEL_W, w->label, w->err);
        return;
    }
    fmt_ns(med, sizeof med, (double)w->st.median);
    fmt_ns(p99, sizeof p99, (double)w->st.p99);
    if (w->ratio > 0 && r >= R_DFLOOR_W && w->floor >= 0)
        snprintf(ratio, sizeof ratio, "%.2fx %s", w->ratio, rows[w->floor].tag);
    else if (w->ratio > 0) snprintf(ratio, sizeof ratio, "%.2fx", w->ratio);
    else snprintf(ratio, sizeof ratio, "-");
    if (w->exits_per_op >= 0) snprintf(ex, sizeof ex, "%.2f", w->exits_per_op);
    else snprintf(ex, sizeof ex, "-");
    for (int i = 0; i < 7; i++) fmt_ctr(cc[i], sizeof cc[i], w, col[i]);
    printf("%-*s %6zu %10s %10s %12s | %5s %5s %5s %6s %5s %5s %5s %5s\n", LABEL_W, w->label, w->s.n, med, p99, ratio,
           ex, cc[0], cc[1], cc[2], cc[3], cc[4], cc[5], cc[6]);
}

static void print_section(const char *title) { printf("-- %s\n", title); }

static void print_table(const rep *R)
{
    const bench *b = R->b;
    printf("hyperlight-bench  %s (source %s)\nmachine: %s\nhypervisor: %s (%s)\nguest: %s\n", R->when, R->source,
           R->machine, b->pvm ? "kvm_pvm" : "kvm", b->pvm ? "guest in native supervisor mode" : "hardware KVM",
           b->guest);
    printf("rounds: %d, interleaved; compute loop: %u iterations; host calls per HostRoundTrip: %d\n\n", R->rounds,
           COMPUTE_N, HOSTCALLS);
    printf("%-*s %6s %10s %10s %12s | %5s %5s %5s %6s %5s %5s %5s %5s\n", LABEL_W, "", "", "", "", "", "exits", "kvm",
           "kvm", "kvm", "", "", "reg", "");
    printf("%-*s %6s %10s %10s %12s | %5s %5s %5s %6s %5s %5s %5s %5s\n", LABEL_W, "row", "iters", "median", "p99",
           "ratio", "(lib)", "uexit", "emul", "spte", "ioctl", "RUN", "ioctl", "sysc");
    print_section("calls (ratio: median / bare exit floor; compute: guest / native)");
    for (int r = 0; r < R_DFLOOR_W; r++) print_row(r);
    print_section("call + restore, guest writing n pages (ratio to the floor in the tag column; dlogN = floor for "
                  "N pages, writable)");
    for (int i = 0; i < NDIRTY; i++) {
        print_row(R_DFLOOR_W + i);
        print_row(R_DFLOOR_P + i);
        print_row(R_DIRTY + i);
    }
    print_section("snapshots, new sandboxes (vm = fresh VM floor; dlog0 = pooled floor: exit + dirty log)");
    for (int r = R_SNAP_TAKE; r <= R_LOAD_CALL; r++) print_row(r);
    print_section("processes, for comparison (ratio: / new from snapshot + 1st call)");
    for (int r = R_FORK_EXEC; r <= R_BWRAP; r++) print_row(r);
    print_section("interrupt latency: hl_sandbox_interrupt -> hl_call returns (ratio: / bare exit)");
    for (int r = R_INTR_SPIN; r <= R_INTR_HOSTFN; r++) print_row(r);
    print_section("seccomp confinement: the same calls on a confined sandbox (ratio: / the unconfined row)");
    for (int r = R_EMPTY_CONF; r <= R_HOSTCALL_CONF; r++) print_row(r);
    print_section("clocks: clock_gettime(CLOCK_MONOTONIC) per read, 10000 reads a sample (guest: in one call, no "
                  "exit per read; ratio: / the host's)");
    for (int r = R_HOST_CLOCK; r <= R_GUEST_CLOCK; r++) print_row(r);
}

/* ---- the notes after the table ---- */
static void print_call_notes(const rep *R)
{
    char a[32], m[32], fm[32];
    printf("\nCounts per call (host call: per host call; new rows: per sample, timed part only),\n"
           "from a separate counting pass: exits (lib) = hl_sandbox_exit_count; kvm_*: kvm tracepoints\n"
           "(emul 1.00 = only the exiting OUT is emulated: the guest runs natively; spte = kvm_mmu_spte_requested:\n"
           "guest page mappings KVM installed, i.e. guest page faults); ioctl, RUN (KVM_RUN),\n"
           "reg ioctl (vCPU register ioctls) and sysc (all syscalls): this thread's. kvm:kvm_exit per empty call: ");
    if (rows[R_EMPTY].have_ctr && rows[R_EMPTY].ctr.c[C_EXIT] >= 0)
        printf("%.2f%s\n", rows[R_EMPTY].ctr.c[C_EXIT],
               R->b->pvm && rows[R_EMPTY].ctr.c[C_EXIT] == 0 ? " (kvm_pvm does not fire this tracepoint)" : "");
    else printf("-\n");
    fmt_ns(a, sizeof a, R->amortised);
    fmt_ns(m, sizeof m, (double)R->hct.median);
    printf("host call, amortised: (HostRoundTrip(%d) %s - empty call) / %d = %s per host call\n", HOSTCALLS, m,
           HOSTCALLS, a);
    printf("guest compute speed: native / guest = %.3f\n", R->speed);
    fmt_ns(fm, sizeof fm, (double)R->fst.median);
    printf("sandbox create + free: hl_sandbox_free alone %s (median)\n", fm);
    fmt_ns(fm, sizeof fm, (double)R->rst.median);
    printf("empty call + hl_sandbox_restore: hl_sandbox_restore alone %s (median)\n", fm);
}

static void print_snapshot_notes(bench *b)
{
    char fm[32], fr[32], nc[32];
    for (int i = 0; i < NDIRTY; i++) {
        stats ds = compute_stats(&b->dirty_restore[i]);
        const row *d = &rows[R_DIRTY + i], *p = &rows[R_DFLOOR_P + i];
        fmt_ns(fm, sizeof fm, (double)ds.median);
        const row *w = &rows[R_DFLOOR_W + i];
        printf("Dirty(%u) + hl_sandbox_restore: hl_sandbox_restore alone %s; %.2fx the re-protected floor; means: %.2fx the "
               "writable floor's; floor copies %" PRIu64 " pages per restore\n",
               dirty_n[i], fm, p->st.median ? (double)d->st.median / (double)p->st.median : 0.0,
               w->st.mean > 0 ? d->st.mean / w->st.mean : 0.0, dfloor_copied(b->df[i]));
    }
    stats fs = compute_stats(&b->fresh_first_run), nfc = compute_stats(&b->new_first_call);
    fmt_ns(fr, sizeof fr, (double)fs.median);
    fmt_ns(nc, sizeof nc, (double)nfc.median);
    printf("fresh VM floor: the first KVM_RUN alone %s; new from snapshot + 1st call: the 1st call alone %s\n", fr, nc);
    if (b->pool_warm.n + b->pool_filler.n + b->pool_cold.n) {
        char wm[32], fm2[32], cm[32], gm[32];
        const double all = (double)(b->pool_warm.n + b->pool_filler.n + b->pool_cold.n);
        fmt_ns(wm, sizeof wm, (double)compute_stats(&b->pool_warm).median);
        fmt_ns(fm2, sizeof fm2, (double)compute_stats(&b->pool_filler).median);
        fmt_ns(cm, sizeof cm, (double)compute_stats(&b->pool_cold).median);
        fmt_ns(gm, sizeof gm, (double)compute_stats(&b->pool_filler_get).median);
        printf("pool get + 1st call: %.0f%% of the gets returned a sandbox that never ran (created in "
               "hl_pool_get, pool empty): median %s; %.0f%% one the filler made and warmed: %s (hl_pool_get "
               "alone %s); %.0f%% one returned by hl_pool_put: %s\n",
               100.0 * (double)b->pool_cold.n / all, b->pool_cold.n ? cm : "-", 100.0 * (double)b->pool_filler.n / all,
               b->pool_filler.n ? fm2 : "-", b->pool_filler.n ? gm : "-", 100.0 * (double)b->pool_warm.n / all,
               b->pool_warm.n ? wm : "-");
    }
    if (b->load_only.n) {
        fmt_ns(fm, sizeof fm, (double)compute_stats(&b->load_only).median);
        printf("load file + new + 1st call: hl_snapshot_load alone %s (file in the page cache)\n", fm);
    }
    if (!rows[R_FORK_EXEC].err) printf("static binary: %s, %s\n", b->static_bin, b->static_how);
}

static void print_confined_notes(const rep *R)
{
    const bench *b = R->b;
    const row *ec = &rows[R_EMPTY_CONF], *eu = &rows[R_EMPTY], *hc = &rows[R_HOSTCALL_CONF], *hu = &rows[R_HOSTCALL];
    stats hcc = compute_stats((samples *)&b->hostcall_total_conf);
    char m1[32], m2[32], p1[32], p2[32], t1[32], t2[32];
    fmt_ns(m1, sizeof m1, (double)ec->st.median);
    fmt_ns(m2, sizeof m2, (double)eu->st.median);
    fmt_ns(p1, sizeof p1, (double)ec->st.p99);
    fmt_ns(p2, sizeof p2, (double)eu->st.p99);
    printf("seccomp confinement, empty call: confined %s, unconfined %s (medians): %.3fx, %+.2f us; "
           "means %.3fx, %+.2f us; p99 %s / %s\n",
           m1, m2, ec->ratio, ((double)ec->st.median - (double)eu->st.median) / 1e3,
           eu->st.mean > 0 ? ec->st.mean / eu->st.mean : 0.0, (ec->st.mean - eu->st.mean) / 1e3, p1, p2);
    fmt_ns(m1, sizeof m1, (double)hc->st.median);
    fmt_ns(m2, sizeof m2, (double)hu->st.median);
    fmt_ns(t1, sizeof t1, (double)hcc.median);
    fmt_ns(t2, sizeof t2, (double)R->hct.median);
    printf("seccomp confinement, host call round trip: confined %s, unconfined %s: %.3fx, %+.2f us; "
           "HostRoundTrip(%d): confined %s, unconfined %s (%+.1f us per call)\n",
           m1, m2, hc->ratio, ((double)hc->st.median - (double)hu->st.median) / 1e3, HOSTCALLS, t1, t2,
           ((double)hcc.median - (double)R->hct.median) / 1e3);
    if (!b->worker_tid) printf("  (the worker thread's id is unknown: the confined rows count this thread only)\n");
}

static void print_memory(const memres *m)
{
    printf("\nmemory per extra idle sandbox (%d sandboxes from one snapshot, one call each), KiB:\n", m->n);
    printf("  process: RssAnon %.1f  RssFile %.1f  RssShmem %.1f  (VmRSS %.1f)   Pss %.1f (anon %.1f, file %.1f, "
           "shmem %.1f)\n",
           m->per[M_RSS_ANON], m->per[M_RSS_FILE], m->per[M_RSS_SHMEM], m->per[M_VM_RSS], m->per[M_PSS],
           m->per[M_PSS_ANON], m->per[M_PSS_FILE], m->per[M_PSS_SHMEM]);
    printf("  kernel (system-wide /proc/meminfo, noisy): Slab %.1f (unreclaimable %.1f)  PageTables %.1f  "
           "SecPageTables %.1f  KernelStack %.1f\n",
           m->per[M_SLAB], m->per[M_SUNRECLAIM], m->per[M_PAGETABLES], m->per[M_SECPAGETABLES], m->per[M_KSTACK]);
}

static void print_targets(const rep *R)
{
    printf("\ntargets:\n");
    for (int i = 0; i < R->nt; i++) {
        const target *t = &R->t[i];
        if (t->known)
            printf("  %-4s %-44s %.3f %s %.3f  (%s)\n", t->pass ? "PASS" : "FAIL", t->name, t->value,
                   t->at_most ? "<=" : ">=", t->limit, t->desc);
        else printf("  %-4s %-44s (%s: not measurable here)\n", "?", t->name, t->desc);
    }
}

void report(bench *b, int rounds, const char *out_dir, bool json)
{
    static rep R;
    time_t now = time(NULL);
    struct tm tm;
    R.b = b;
    R.rounds = rounds;
    finish_rows(&R);
    make_targets(&R);
    gmtime_r(&now, &tm);
    strftime(R.when, sizeof R.when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(R.fname, sizeof R.fname, "%Y%m%dT%H%M%SZ.json", &tm);
    machine_desc(R.machine, sizeof R.machine);
    source_desc(R.source, sizeof R.source);

    print_table(&R);
    print_call_notes(&R);
    print_snapshot_notes(b);
    print_confined_notes(&R);
    print_memory(&b->mem);
    printf("\n");
    insns_print(&b->insns, false);
    if (!b->ctr_ok)
        printf("note: tracepoint counters unavailable (perf_event_open needs root or perf_event_paranoid <= 1)\n");
    print_targets(&R);
    if (json) {
        char path[PATH_MAX + 128];
        if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
            fprintf(stderr, "hyperlight-bench: cannot create %s: %s\n", out_dir, strerror(errno));
        snprintf(path, sizeof path, "%s/%s", out_dir, R.fname);
        write_json(path, &R);
        printf("\nwrote %s", path);
        snprintf(path, sizeof path, "%s/latest.json", out_dir);
        write_json(path, &R);
        printf(" and %s\n", path);
    }
}
