/* alloc.c - hyperlight-bench --alloc: the guest allocators compared on the workloads of
 * alloc_work.h, run in real guests (bench/guests/alloc_bench.c linked with the SDK's
 * allocator, picolibc's full malloc and picolibc's nano-malloc) and natively on the host with
 * glibc's malloc and with ours (alloc_native.c). Prints a table and writes it to <out>/alloc-<UTC time>.txt.
 *
 * Each workload is called once in a fresh sandbox (first: includes the guest's first writes
 * to its heap pages), then `runs` times more in the same sandbox (warm: the allocator's own
 * cost); the table shows the first call and the median and minimum of the warm ones, as
 * wall time of hl_call. Every run must return the checksum the host computed.
 *
 * usage: hyperlight-bench --alloc [--mix-ops N] [--build-n N] [--runs N] [--slow-runs N]
 *                                 [--out DIR]
 * --slow-runs: warm runs of nano-malloc (its AllocBuild takes about a minute). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc_work.h"
#include "bench.h"
#include "hyperlight.h"
#include "util.h"

#define MAX_RUNS 32
#define HEAP (128u << 20)

enum { W_MIX, W_BUILD, NWORK };
enum { A_OURS, A_FULL, A_NANO, A_HOST, A_HOST_OURS, NALLOC };

static const char *const alloc_names[NALLOC] = { "SDK (ours)", "picolibc full", "picolibc nano", "host glibc",
                                                 "host, ours" };
static const char *const guest_files[NALLOC] = { "alloc_bench.elf", "alloc_bench_full.elf", "alloc_bench_nano.elf",
                                                 NULL, NULL };

typedef struct result {
    double first_ms, med_ms, min_ms;
    int runs;
} result;

typedef struct alloc_opts {
    uint32_t mix_ops, build_n;
    int runs, slow_runs;
    const char *out_dir;
} alloc_opts;

static double ms_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e6; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(result *r, double *warm, int n)
{
    qsort(warm, (size_t)n, sizeof *warm, cmp_double);
    r->runs = n;
    r->min_ms = n ? warm[0] : 0;
    r->med_ms = n ? (n % 2 ? warm[n / 2] : (warm[n / 2 - 1] + warm[n / 2]) / 2) : 0;
}

/* The workload natively, with glibc's allocator or (ours) with the SDK's (alloc_native.c). */
static uint64_t host_work(int w, bool ours, const alloc_opts *o)
{
    if (ours) return w == W_MIX ? alloc_native_mix(o->mix_ops, 1) : alloc_native_build(o->build_n);
    return w == W_MIX ? alloc_mix(o->mix_ops, 1) : alloc_build(o->build_n);
}

static void run_host(int w, bool ours, const alloc_opts *o, uint64_t *want, result *r)
{
    double warm[MAX_RUNS];
    uint64_t t0 = now_ns(), first = host_work(w, ours, o);
    r->first_ms = ms_since(t0);
    if (ours && first != *want) die("alloc: the SDK allocator's checksum on the host differs from glibc's");
    *want = first;
    for (int i = 0; i < o->runs; i++) {
        t0 = now_ns();
        if (host_work(w, ours, o) != *want) die("alloc: host checksum differs between runs");
        warm[i] = ms_since(t0);
    }
    summarize(r, warm, o->runs);
}

static void run_guest(const char *path, int w, int runs, const alloc_opts *o, uint64_t want, result *r)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    if (!cfg || hl_config_set_heap_size(cfg, HEAP) != HL_OK) die("alloc: configuration failed");
    if (hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) die("alloc: %s: %s", path, hl_last_error(NULL));
    hl_config_free(cfg);
    hl_value args[2] = { hl_u32(w == W_MIX ? o->mix_ops : o->build_n), hl_u32(1) };
    const char *fn = w == W_MIX ? "AllocMix" : "AllocBuild";
    double warm[MAX_RUNS];
    for (int i = -1; i < runs; i++) {
        hl_value ret;
        uint64_t t0 = now_ns();
        if (hl_call(sb, fn, HL_U64, args, w == W_MIX ? 2 : 1, &ret) != HL_OK)
            die("alloc: %s in %s: %s", fn, path, hl_last_error(sb));
        double ms = ms_since(t0);
        if (ret.v.u64 != want)
            die("alloc: %s in %s returned checksum %llu, the host %llu", fn, path, (unsigned long long)ret.v.u64,
                (unsigned long long)want);
        if (i < 0) r->first_ms = ms;
        else warm[i] = ms;
    }
    hl_sandbox_free(sb);
    summarize(r, warm, runs);
}

static void print_table(FILE *f, const alloc_opts *o, result res[NWORK][NALLOC])
{
    static const char *const wname[NWORK] = { "mix", "build+free" };
    fprintf(f,
            "allocator benchmark (bench/alloc_work.h): mix = %u operations on %u slots (89%% small 16-512 B, "
            "10%% realloc growth, 1%% large 64 KiB-1 MiB); build+free = %u objects of 16-96 B, then all freed "
            "scattered. Guest heap %u MiB. ms of wall time per call.\n",
            o->mix_ops, ALLOC_SLOTS, o->build_n, HEAP >> 20);
    fprintf(f, "%-11s %-14s %10s %10s %10s %5s %9s\n", "workload", "allocator", "first", "warm med", "warm min",
            "runs", "vs ours");
    for (int w = 0; w < NWORK; w++)
        for (int a = 0; a < NALLOC; a++) {
            const result *r = &res[w][a];
            fprintf(f, "%-11s %-14s %10.2f ", wname[w], alloc_names[a], r->first_ms);
            if (r->runs) /* vs ours: warm medians; without warm runs the first calls */
                fprintf(f, "%10.2f %10.2f %5d %8.2fx\n", r->med_ms, r->min_ms, r->runs,
                        r->med_ms / res[w][A_OURS].med_ms);
            else fprintf(f, "%10s %10s %5d %8.2fx\n", "-", "-", 0, r->first_ms / res[w][A_OURS].first_ms);
        }
}

static void parse(int argc, char **argv, alloc_opts *o)
{
    *o = (alloc_opts){ .mix_ops = 1000000, .build_n = 200000, .runs = 5, .slow_runs = 1, .out_dir = NULL };
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("alloc: %s needs a value", argv[i]);
        if (strcmp(argv[i], "--mix-ops") == 0) o->mix_ops = (uint32_t)strtoul(v, NULL, 0);
        else if (strcmp(argv[i], "--build-n") == 0) o->build_n = (uint32_t)strtoul(v, NULL, 0);
        else if (strcmp(argv[i], "--runs") == 0) o->runs = atoi(v);
        else if (strcmp(argv[i], "--slow-runs") == 0) o->slow_runs = atoi(v);
        else if (strcmp(argv[i], "--out") == 0) o->out_dir = v;
        else die("alloc: unknown option %s", argv[i]);
        i++;
    }
    if (o->runs < 1 || o->runs > MAX_RUNS || o->slow_runs < 0 || o->slow_runs > MAX_RUNS)
        die("alloc: --runs and --slow-runs: 1..%d and 0..%d", MAX_RUNS, MAX_RUNS);
    if (!o->mix_ops || !o->build_n) die("alloc: --mix-ops and --build-n must be positive");
}

int alloc_main(int argc, char **argv)
{
    alloc_opts o;
    static result res[NWORK][NALLOC];
    parse(argc, argv, &o);
    for (int w = 0; w < NWORK; w++) {
        uint64_t want = 0;
        run_host(w, false, &o, &want, &res[w][A_HOST]);
        run_host(w, true, &o, &want, &res[w][A_HOST_OURS]);
        for (int a = 0; a < A_HOST; a++) {
            char rel[64], path[4096];
            snprintf(rel, sizeof rel, "../tests/guests/%s", guest_files[a]);
            if (!exe_relative(path, sizeof path, rel)) die("alloc: %s not found (make bench-alloc builds it)", rel);
            int runs = a == A_NANO ? o.slow_runs : o.runs;
            fprintf(stderr, "alloc: %s, %s ...\n", w == W_MIX ? "mix" : "build+free", alloc_names[a]);
            run_guest(path, w, runs, &o, want, &res[w][a]);
        }
    }
    print_table(stdout, &o, res);
    char dir[4096], file[4200], stamp[32];
    if (o.out_dir) snprintf(dir, sizeof dir, "%s", o.out_dir);
    else if (exe_relative(dir, sizeof dir, "../../bench")) strncat(dir, "/results", sizeof dir - strlen(dir) - 1);
    else snprintf(dir, sizeof dir, "bench/results");
    time_t t = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&t));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) die("alloc: cannot create %s: %s", dir, strerror(errno));
    char real[PATH_MAX];
    if (realpath(dir, real)) snprintf(dir, sizeof dir, "%s", real);
    snprintf(file, sizeof file, "%s/alloc-%s.txt", dir, stamp);
    FILE *f = fopen(file, "w");
    if (!f) die("alloc: cannot write %s: %s", file, strerror(errno));
    print_table(f, &o, res);
    fclose(f);
    printf("written: %s\n", file);
    return 0;
}
