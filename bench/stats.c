/* stats.c - sample arrays and their nearest-rank statistics. */
#include <stdlib.h>

#include "stats.h"
#include "util.h"

void add_sample(samples *s, uint64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        if (!(s->v = realloc(s->v, s->cap * sizeof *s->v))) die("out of memory");
    }
    s->v[s->n++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

stats compute_stats(samples *s)
{
    stats st = { 0 };
    double sum = 0;
    if (!s->n) return st;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    st.median = s->v[(s->n - 1) / 2];
    size_t r99 = (size_t)((s->n * 99 + 99) / 100); /* ceil(0.99 n) */
    st.p99 = s->v[(r99 ? r99 : 1) - 1];
    st.min = s->v[0];
    st.max = s->v[s->n - 1];
    for (size_t i = 0; i < s->n; i++) sum += (double)s->v[i];
    st.mean = sum / (double)s->n;
    return st;
}

void samples_free(samples *s)
{
    free(s->v);
    *s = (samples){ 0 };
}
