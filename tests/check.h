/* check.h - the assertion macros every test program uses. A failed check prints where and
 * what, counts, and the test goes on; main returns check_exit() (nonzero on any failure). */
#ifndef HL_CHECK_H
#define HL_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_INT(got, want)                                                                    \
    do {                                                                                        \
        long long g_ = (long long)(got), w_ = (long long)(want);                                \
        check_count++;                                                                          \
        if (g_ != w_) {                                                                         \
            check_failures++;                                                                   \
            fprintf(stderr, "%s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_); \
        }                                                                                       \
    } while (0)

#define CHECK_STR(got, want)                                                                                        \
    do {                                                                                                            \
        const char *g_ = (got), *w_ = (want);                                                                       \
        check_count++;                                                                                              \
        if (!g_ || strcmp(g_, w_) != 0) {                                                                           \
            check_failures++;                                                                                       \
            fprintf(stderr, "%s:%d: %s = \"%s\",\n    want \"%s\"\n", __FILE__, __LINE__, #got, g_ ? g_ : "(null)", \
                    w_);                                                                                            \
        }                                                                                                           \
    } while (0)

/* got contains want */
#define CHECK_HAS(got, want)                                                                                \
    do {                                                                                                    \
        const char *g_ = (got), *w_ = (want);                                                               \
        check_count++;                                                                                      \
        if (!g_ || !strstr(g_, w_)) {                                                                       \
            check_failures++;                                                                               \
            fprintf(stderr, "%s:%d: %s = \"%s\",\n    does not contain \"%s\"\n", __FILE__, __LINE__, #got, \
                    g_ ? g_ : "(null)", w_);                                                                \
        }                                                                                                   \
    } while (0)

static inline int check_exit(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "FAIL %s: %d of %d checks failed\n", name, check_failures, check_count);
        return 1;
    }
    printf("ok   %s: %d checks\n", name, check_count);
    return 0;
}

#endif
