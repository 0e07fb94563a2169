/* echo_loop.c - the C side of python/bench/bench.py: N calls of Echo("hello") on one sandbox
 * of GUEST, each timed with CLOCK_MONOTONIC; prints the nanoseconds of every call, one a line
 * (per-call times: their median is robust to the preemptions of a loaded machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hyperlight.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_value arg = hl_str("hello"), ret;
    int n = argc > 2 ? atoi(argv[2]) : 5000;
    double *t;
    if (argc < 2 || n <= 0 || !(t = malloc((size_t)n * sizeof *t))) {
        fprintf(stderr, "usage: echo_loop GUEST [N]\n");
        return 2;
    }
    if (!cfg || hl_sandbox_new_from_file(&sb, argv[1], cfg) != HL_OK) {
        fprintf(stderr, "echo_loop: %s\n", hl_last_error(NULL));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        double t0 = now_ns();
        if (hl_call(sb, "Echo", HL_STRING, &arg, 1, &ret) != HL_OK || ret.v.buf.len != 5 ||
            memcmp(ret.v.buf.ptr, "hello", 5) != 0) {
            fprintf(stderr, "echo_loop: Echo failed: %s\n", hl_last_error(sb));
            return 1;
        }
        t[i] = now_ns() - t0;
    }
    for (int i = 0; i < n; i++) printf("%.0f\n", t[i]);
    free(t);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
    return 0;
}
