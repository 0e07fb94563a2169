/* util.h - what every part of the benchmark uses: fatal errors, the clock, finding files. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Prints "hyperlight-bench: <message>" to stderr and exits with 1. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ns(uint64_t ns);

/* Path next to the executable: <exe dir>/<rel>, if it exists. */
bool exe_relative(char *out, size_t len, const char *rel);
/* Finds prog in $PATH; false if absent. */
bool find_in_path(const char *prog, char *out, size_t len);

#endif
