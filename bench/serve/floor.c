/* floor.c - the floor of `hyperlight serve` (bench/serve/run.sh): what one request costs when
 * it is nothing but a pooled sandbox, one guest call and its restore, on one core.
 *
 * hyperlight-serve-floor [-d SECONDS] GUEST.elf [FUNCTION]
 * takes a sandbox made from GUEST (a pool of 1 made up front, as the server's are) and for
 * SECONDS (default 10) loops hl_pool_get, hl_call, hl_pool_put. FUNCTION is Add (Add(40, 2),
 * the demo guest) or Eval (Eval("1+1"), a language guest). Prints one line:
 *   floor FUNCTION calls N s S calls/s R cpu_us/call U calls/cpu_s C
 * where cpu_us/call is the process's user + system time (getrusage) per call. */
#define _GNU_SOURCE
#include <hyperlight.h>
#include <hyperlight/lang.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* The server captures what a guest prints; here nothing prints, and what would is dropped. */
static void drop_print(void *user, int stream, const char *data, size_t len) {}

/* One request's worth of guest work: Add(40, 2) or Eval("1+1"). */
static hl_status one_call(hl_sandbox *sb, bool eval)
{
    hl_value r;
    if (eval) {
        hl_value a[] = { hl_str("1+1") };
        return hl_call(sb, HL_LANG_FN_EVAL, HL_STRING, a, 1, &r);
    }
    hl_value a[] = { hl_i32(40), hl_i32(2) };
    hl_status st = hl_call(sb, "Add", HL_I32, a, 2, &r);
    if (st == HL_OK && r.v.i32 != 42) {
        fprintf(stderr, "hyperlight-serve-floor: Add(40, 2) returned %d\n", (int)r.v.i32);
        return HL_ERR_GUEST;
    }
    return st;
}

/* Loops get, call, put for seconds; the count in *calls, the wall and CPU time in *wall, *cpu. */
static int run(hl_pool *pool, bool eval, double seconds, long *calls, double *wall, double *cpu)
{
    double t0 = now_s(), c0 = cpu_s(), t = t0;
    long n = 0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 64; i++, n++) { /* the clock read once per 64 calls */
            hl_sandbox *sb;
            hl_status st = hl_pool_get(pool, &sb);
            if (st != HL_OK) {
                fprintf(stderr, "hyperlight-serve-floor: hl_pool_get: %s\n", hl_last_error(NULL));
                return 1;
            }
            st = one_call(sb, eval);
            if (st != HL_OK) fprintf(stderr, "hyperlight-serve-floor: call: %s\n", hl_last_error(sb));
            if (hl_pool_put(pool, sb) != HL_OK || st != HL_OK) {
                fprintf(stderr, "hyperlight-serve-floor: hl_pool_put or the call failed\n");
                return 1;
            }
        }
        t = now_s();
    }
    *calls = n, *wall = t - t0, *cpu = cpu_s() - c0;
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 10, wall, cpu;
    const char *fn;
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = NULL;
    hl_snapshot *snap = NULL;
    hl_pool *pool = NULL;
    long calls;
    int opt, rc = 1;
    while ((opt = getopt(argc, argv, "d:")) != -1) {
        if (opt != 'd' || (seconds = atof(optarg)) <= 0) {
            fprintf(stderr, "usage: hyperlight-serve-floor [-d SECONDS] GUEST.elf [Add|Eval]\n");
            hl_config_free(cfg);
            return 2;
        }
    }
    if (optind >= argc || !cfg) {
        fprintf(stderr, "usage: hyperlight-serve-floor [-d SECONDS] GUEST.elf [Add|Eval]\n");
        hl_config_free(cfg);
        return 2;
    }
    fn = optind + 1 < argc ? argv[optind + 1] : "Add";
    if (strcmp(fn, "Add") && strcmp(fn, HL_LANG_FN_EVAL)) {
        fprintf(stderr, "hyperlight-serve-floor: FUNCTION is Add or Eval, not %s\n", fn);
        goto fail;
    }
    hl_config_set_print(cfg, drop_print, NULL);
    if (hl_sandbox_new_from_file(&sb, argv[optind], cfg) != HL_OK) {
        fprintf(stderr, "hyperlight-serve-floor: %s: %s\n", argv[optind], hl_last_error(NULL));
        goto fail;
    }
    if (hl_snapshot_take(sb, &snap) != HL_OK) {
        fprintf(stderr, "hyperlight-serve-floor: hl_snapshot_take: %s\n", hl_last_error(sb));
        goto fail;
    }
    if (hl_pool_new(&pool, snap, cfg, 1, false) != HL_OK) {
        fprintf(stderr, "hyperlight-serve-floor: hl_pool_new: %s\n", hl_last_error(NULL));
        goto fail;
    }
    if (run(pool, !strcmp(fn, HL_LANG_FN_EVAL), seconds, &calls, &wall, &cpu)) goto fail;
    printf("floor %s calls %ld s %.2f calls/s %.0f cpu_us/call %.2f calls/cpu_s %.0f\n", fn, calls, wall,
           (double)calls / wall, cpu * 1e6 / (double)calls, (double)calls / cpu);
    rc = 0;
fail:
    hl_pool_free(pool);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return rc;
}
