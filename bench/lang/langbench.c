/* hyperlight-lang-bench - the language guests against their floors and their native builds.
 *
 * For each language (lua, javascript, python), in one run:
 *   eval 1+1        Eval("1+1") in a Ready sandbox, against the bare VM exit round trip (the
 *                   floor, bench/floor.c) measured in the same interleaved rounds
 *   run + restore   Run of a one-line script, then hl_sandbox_restore
 *   handler 1 KiB   Handle("echo", a 1 KiB JSON event) + restore, after Load of the handler
 *   workloads       bench/lang/scripts/{fib,objects,strings,json_rt}.<ext>: Run in the guest
 *                   (timed around hl_call, restore between runs), against the same interpreter
 *                   built natively from the same source (build/native/<lang>), timed as a
 *                   process minus the same process running an empty script; the best of
 *                   --reps runs each
 *   process         `hyperlight run hello.<ext>` as a whole process against the native
 *                   interpreter, Debian's (lua5.4, python3), and each under bwrap
 *   memory          resident memory per extra idle sandbox made from one snapshot
 * The table goes to stdout and, as JSON, to bench/results/<time>-lang.json.
 *
 * usage: hyperlight-lang-bench [--lang NAME]... [--reps N] [--out DIR] [--no-json] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../floor.h"
#include "../stats.h"
#include "../util.h"
#include "hyperlight.h"
#include "hyperlight/lang.h"

extern char **environ;

#define MAXROWS 64
#define WARM_BATCH 200
#define WARM_ROUNDS 15
#define MEM_N 20

struct lang {
    const char *name, *ext, *guest, *native, *debian, *one_line, *handler, *eval_1p1;
    size_t heap; /* 0: the guest's own default (the objects workload needs more than Lua's and
                  * QuickJS's 32 MiB) */
};
static const struct lang langs[] = {
    { "lua", "lua", "lua.elf", "native/lua", "/usr/bin/lua5.4", "x = 1 + 1", "function echo(e) return e end", "1+1",
      64 << 20 },
    { "javascript", "js", "javascript.elf", "native/qjs", NULL, "var x = 1 + 1;", "function echo(e) { return e; }",
      "1+1", 64 << 20 },
    { "python", "py", "python.elf", "native/micropython", "/usr/bin/python3", "x = 1 + 1",
      "def echo(e):\n    return e\n", "1+1", 0 },
};
#define NLANGS (int)(sizeof langs / sizeof *langs)
static const char *const workloads[] = { "fib", "objects", "strings", "json_rt" };
#define NWORK (int)(sizeof workloads / sizeof *workloads)

typedef struct result {
    char lang[16], name[48];
    double value, floor, ratio; /* value and floor in µs; ratio = value / floor (or as the row says) */
    const char *unit, *ratio_of, *target;
} result;
static result res[MAXROWS];
static int nres;

static char build_dir[4096], src_dir[4096];
static int reps = 3;

static void add(const char *lang, const char *name, double v, double floor, const char *ratio_of, const char *target)
{
    result *r = &res[nres++];
    snprintf(r->lang, sizeof r->lang, "%s", lang);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->value = v;
    r->floor = floor;
    r->ratio = floor > 0 ? v / floor : 0;
    r->unit = "us";
    r->ratio_of = ratio_of;
    r->target = target;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

static void must(hl_sandbox *sb, hl_status st, const char *what)
{
    if (st != HL_OK) die("%s: %s", what, hl_last_error(sb));
}

static hl_status run_code(hl_sandbox *sb, const char *code)
{
    hl_value a[3] = { hl_str(code), hl_str("bench"), hl_str("[]") }, r;
    return hl_call(sb, HL_LANG_FN_RUN, HL_VOID, a, 3, &r);
}

static double median_us(samples *s) { return compute_stats(s).median / 1000.0; }
static double min_us(samples *s) { return compute_stats(s).min / 1000.0; }

/* The warm rows: eval, run + restore, handler + restore, each against the floor measured in
 * the same rounds. */
static void warm_rows(const struct lang *l, hl_sandbox *sb, hl_snapshot *snap, floor_vm *fl)
{
    samples fs = { 0 }, ev = { 0 }, rr = { 0 }, hr = { 0 };
    char event[1100];
    hl_value a[2], r;
    int n = snprintf(event, sizeof event, "{\"id\":42,\"user\":\"someone@example.com\",\"items\":[");
    for (int i = 0; n < 1000; i++)
        n += snprintf(event + n, sizeof event - (size_t)n, "%s{\"sku\":%d,\"qty\":%d}", i ? "," : "", 1000 + i, i % 5);
    snprintf(event + n, sizeof event - (size_t)n, "],\"note\":\"x\"}");
    for (int round = 0; round < WARM_ROUNDS; round++) {
        for (int i = 0; i < WARM_BATCH; i++) {
            uint64_t t = now_ns();
            floor_exit(fl);
            add_sample(&fs, now_ns() - t);
        }
        for (int i = 0; i < WARM_BATCH; i++) {
            uint64_t t;
            a[0] = hl_str(l->eval_1p1);
            t = now_ns();
            must(sb, hl_call(sb, HL_LANG_FN_EVAL, HL_STRING, a, 1, &r), "Eval");
            add_sample(&ev, now_ns() - t);
            if (round == 0 && i == 0 && strcmp(hl_value_str(&r), "2") != 0) die("Eval(1+1) gave %s", hl_value_str(&r));
        }
        for (int i = 0; i < WARM_BATCH / 4; i++) {
            uint64_t t = now_ns();
            must(sb, run_code(sb, l->one_line), "Run");
            must(sb, hl_sandbox_restore(sb, snap), "restore");
            add_sample(&rr, now_ns() - t);
        }
        for (int i = 0; i < WARM_BATCH / 4; i++) {
            uint64_t t;
            a[0] = hl_str("echo"), a[1] = hl_str(event);
            t = now_ns();
            must(sb, hl_call(sb, HL_LANG_FN_HANDLE, HL_STRING, a, 2, &r), "Handle");
            must(sb, hl_sandbox_restore(sb, snap), "restore");
            add_sample(&hr, now_ns() - t);
        }
    }
    double f = median_us(&fs);
    add(l->name, "eval 1+1, Ready sandbox", median_us(&ev), f, "floor", "<= 1.2");
    add(l->name, "run + restore", median_us(&rr), f, "floor", "<= 1.3");
    add(l->name, "handler, 1 KiB event + restore", median_us(&hr), f, "floor", "-");
    samples_free(&fs), samples_free(&ev), samples_free(&rr), samples_free(&hr);
}

/* Runs argv as a process with stdout and stderr to /dev/null; returns its wall time in ns. */
static uint64_t time_process(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status, e;
    uint64_t t;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    t = now_ns();
    if ((e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ)) != 0) die("spawn %s: %s", argv[0], strerror(e));
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid: %s", strerror(errno));
    t = now_ns() - t;
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s %s failed (status %d)", argv[0], argv[1] ? argv[1] : "", status);
    return t;
}

static double best_process_us(char *const argv[], int n)
{
    samples s = { 0 };
    for (int i = 0; i < n; i++) add_sample(&s, time_process(argv));
    double v = min_us(&s);
    samples_free(&s);
    return v;
}

static double median_process_us(char *const argv[], int n)
{
    samples s = { 0 };
    for (int i = 0; i < n; i++) add_sample(&s, time_process(argv));
    double v = median_us(&s);
    samples_free(&s);
    return v;
}

/* Guest speed against the native build of the same interpreter, one workload. */
static void workload_row(const struct lang *l, hl_sandbox *sb, hl_snapshot *snap, const char *w, const char *native,
                         double native_empty)
{
    char path[8192], label[64];
    char *code;
    samples g = { 0 };
    snprintf(path, sizeof path, "%s/bench/lang/scripts/%s.%s", src_dir, w, l->ext);
    if (!(code = slurp(path))) die("cannot read %s", path);
    for (int i = 0; i < reps; i++) {
        uint64_t t = now_ns();
        must(sb, run_code(sb, code), w);
        add_sample(&g, now_ns() - t);
        must(sb, hl_sandbox_restore(sb, snap), "restore");
    }
    snprintf(label, sizeof label, "%s: native / guest", w);
    if (native) {
        char *argv[] = { (char *)native, path, NULL };
        double nt = best_process_us(argv, reps) - native_empty;
        /* ratio = native time / guest time: >= 0.95 means the guest runs at >= 95% of native speed */
        add(l->name, label, min_us(&g), 0, "native", ">= 0.95");
        res[nres - 1].floor = nt;
        res[nres - 1].ratio = nt / min_us(&g);
    } else {
        add(l->name, label, min_us(&g), 0, "native (not built)", ">= 0.95");
    }
    samples_free(&g);
    free(code);
}

static bool executable(const char *p) { return p && access(p, X_OK) == 0; }

static void process_rows(const struct lang *l, const char *native, const char *bwrap)
{
    char cli[8192], hello[8192], label[96];
    snprintf(cli, sizeof cli, "%s/bin/hyperlight", build_dir);
    snprintf(hello, sizeof hello, "%s/bench/lang/scripts/hello.%s", src_dir, l->ext);
    char *run[] = { cli, "run", hello, NULL };
    time_process(run); /* fills the snapshot cache */
    double ours = median_process_us(run, 20);
    add(l->name, "process: hyperlight run hello", ours, 0, "-", "-");
    const char *others[2] = { native, l->debian };
    const char *names[2] = { "native", "debian" };
    for (int k = 0; k < 2; k++) {
        if (!executable(others[k])) continue;
        char *argv[] = { (char *)others[k], hello, NULL };
        char *bw[] = { (char *)bwrap,   "--ro-bind",       "/",   "/", "--dev", "/dev",
                       "--unshare-all", (char *)others[k], hello, NULL };
        double t = median_process_us(argv, 20);
        snprintf(label, sizeof label, "process: %s %s (ours / it)", names[k], strrchr(others[k], '/') + 1);
        add(l->name, label, t, 0, "-", k == 0 ? "<= 2.0" : "-");
        res[nres - 1].floor = t, res[nres - 1].value = ours, res[nres - 1].ratio = ours / t;
        if (executable(bwrap)) {
            double b = median_process_us(bw, 10);
            snprintf(label, sizeof label, "process: bwrap %s (ours / it)", strrchr(others[k], '/') + 1);
            add(l->name, label, b, 0, "-", "< 1.0");
            res[nres - 1].floor = b, res[nres - 1].value = ours, res[nres - 1].ratio = ours / b;
        }
    }
}

static double rss_kib(const char *key)
{
    char line[256];
    double v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = strtod(line + strlen(key), NULL);
    fclose(f);
    return v;
}

static void memory_row(const struct lang *l, hl_snapshot *snap, hl_config *cfg)
{
    hl_sandbox *sb[MEM_N + 1];
    hl_value a, r;
    double before = 0;
    for (int i = 0; i <= MEM_N; i++) {
        if (i == 1) before = rss_kib("VmRSS:");
        must(NULL, hl_sandbox_new_from_snapshot(&sb[i], snap, cfg), "new from snapshot");
        a = hl_str(l->eval_1p1);
        must(sb[i], hl_call(sb[i], HL_LANG_FN_EVAL, HL_STRING, &a, 1, &r), "Eval");
    }
    add(l->name, "memory per idle sandbox (KiB, VmRSS)", (rss_kib("VmRSS:") - before) / MEM_N, 256, "256 KiB", "<= 1.0");
    res[nres - 1].unit = "KiB";
    for (int i = 0; i <= MEM_N; i++) hl_sandbox_free(sb[i]);
}

static void print_silent(void *u, int s, const char *d, size_t n) { (void)u, (void)s, (void)d, (void)n; }

static void bench_lang(const struct lang *l, floor_vm *fl, const char *bwrap)
{
    char guest[8192], native[8192], empty[8192];
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_snapshot *snap;
    hl_value a[2], r;
    snprintf(guest, sizeof guest, "%s/guests/%s", build_dir, l->guest);
    snprintf(native, sizeof native, "%s/%s", build_dir, l->native);
    if (access(guest, R_OK) != 0) {
        printf("%-11s guest %s not built: no rows\n", l->name, guest);
        hl_config_free(cfg);
        return;
    }
    hl_config_set_print(cfg, print_silent, NULL);
    if (l->heap) hl_config_set_heap_size(cfg, l->heap);
    must(NULL, hl_sandbox_new_from_file(&sb, guest, cfg), guest);
    a[0] = hl_str(l->handler), a[1] = hl_str("handlers");
    must(sb, hl_call(sb, HL_LANG_FN_LOAD, HL_VOID, a, 2, &r), "Load");
    must(sb, hl_snapshot_take(sb, &snap), "snapshot");
    warm_rows(l, sb, snap, fl);
    bool have_native = executable(native);
    double native_empty = 0;
    if (have_native) {
        snprintf(empty, sizeof empty, "%s/bench/lang/scripts/empty.%s", src_dir, l->ext);
        char *argv[] = { native, empty, NULL };
        native_empty = best_process_us(argv, 10);
    }
    for (int w = 0; w < NWORK; w++) workload_row(l, sb, snap, workloads[w], have_native ? native : NULL, native_empty);
    memory_row(l, snap, cfg);
    hl_sandbox_free(sb);
    hl_snapshot_free(snap);
    hl_config_free(cfg);
    process_rows(l, have_native ? native : NULL, bwrap);
}

static void report(FILE *f, bool json)
{
    if (json) fprintf(f, "{\n  \"rows\": [\n");
    else printf("\n%-11s %-42s %12s %12s %8s  %s\n", "language", "row", "value", "vs", "ratio", "target");
    for (int i = 0; i < nres; i++) {
        result *r = &res[i];
        if (json)
            fprintf(f,
                    "    {\"language\": \"%s\", \"row\": \"%s\", \"value\": %.2f, \"unit\": \"%s\", \"against\": \"%s\", \"against_value\": %.2f, \"ratio\": %.3f, \"target\": \"%s\"}%s\n",
                    r->lang, r->name, r->value, r->unit, r->ratio_of, r->floor, r->ratio, r->target,
                    i + 1 < nres ? "," : "");
        else
            printf("%-11s %-42s %10.1f %s %10.1f %8.3f  %s (%s)\n", r->lang, r->name, r->value, r->unit, r->floor,
                   r->ratio, r->target, r->ratio_of);
    }
    if (json) fprintf(f, "  ]\n}\n");
}

int main(int argc, char **argv)
{
    const char *only[NLANGS] = { 0 }, *out = NULL;
    int nonly = 0;
    bool json = true;
    char bwrap[4096] = "", exe[2048], path[8192];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lang") && i + 1 < argc && nonly < NLANGS) only[nonly++] = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--no-json")) json = false;
        else die("usage: hyperlight-lang-bench [--lang NAME]... [--reps N] [--out DIR] [--no-json]");
    }
    if (reps < 1) reps = 1;
    /* <build>/bin/hyperlight-lang-bench; the sources are the build directory's parent */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) die("readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(build_dir, sizeof build_dir, "%s/..", exe);
    snprintf(src_dir, sizeof src_dir, "%s/../..", exe);
    find_in_path("bwrap", bwrap, sizeof bwrap);
    floor_vm *fl = floor_create();
    for (int i = 0; i < NLANGS; i++) {
        bool want = nonly == 0;
        for (int k = 0; k < nonly; k++) want |= !strcmp(only[k], langs[i].name);
        if (want) bench_lang(&langs[i], fl, bwrap);
    }
    floor_destroy(fl);
    report(stdout, false);
    if (json) {
        char stamp[32];
        time_t t = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", gmtime(&t));
        snprintf(path, sizeof path, "%s/%s-lang.json", out ? out : "bench/results", stamp);
        FILE *f = fopen(path, "w");
        if (!f) die("cannot write %s: %s", path, strerror(errno));
        report(f, true);
        fclose(f);
        printf("\nwritten: %s\n", path);
    }
    return 0;
}
