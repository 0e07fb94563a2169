/* metrics.c - the counters of `hyperlight serve` and GET /metrics in the Prometheus text
 * exposition format (version 0.0.4): requests by route, status and language, latency
 * histograms by route, pool sizes, restores, guest faults, timeouts, rejected requests. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const double bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBOUNDS (int)(sizeof bounds / sizeof *bounds)
#define MAX_SERIES 512
#define MAX_ROUTES 16

struct series {
    char route[24], lang[SERVE_NAME_MAX];
    int status;
    unsigned long long n;
};

struct histogram {
    char route[24];
    unsigned long long buckets[NBOUNDS + 1], count;
    double sum;
};

struct reject {
    const char *reason;
    unsigned long long n;
};

struct metrics {
    pthread_mutex_t lock;
    struct series s[MAX_SERIES];
    int ns;
    struct histogram h[MAX_ROUTES];
    int nh;
    struct reject r[8];
    int nr;
};

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(struct metrics *m)
{
    if (m) pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_request(struct metrics *m, const char *route, int status, const char *lang, double ms)
{
    int i;
    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->ns; i++)
        if (m->s[i].status == status && !strcmp(m->s[i].route, route) && !strcmp(m->s[i].lang, lang)) break;
    if (i == m->ns && m->ns < MAX_SERIES) {
        snprintf(m->s[i].route, sizeof m->s[i].route, "%s", route);
        snprintf(m->s[i].lang, sizeof m->s[i].lang, "%s", lang);
        m->s[i].status = status;
        m->ns++;
    }
    if (i < m->ns) m->s[i].n++;
    for (i = 0; i < m->nh; i++)
        if (!strcmp(m->h[i].route, route)) break;
    if (i == m->nh && m->nh < MAX_ROUTES) snprintf(m->h[m->nh++].route, sizeof m->h[i].route, "%s", route);
    if (i < m->nh) {
        struct histogram *h = &m->h[i];
        int b = 0;
        while (b < NBOUNDS && ms / 1e3 > bounds[b]) b++;
        h->buckets[b]++;
        h->count++;
        h->sum += ms / 1e3;
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_reject(struct metrics *m, const char *reason)
{
    int i;
    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->nr; i++)
        if (!strcmp(m->r[i].reason, reason)) break;
    if (i == m->nr && m->nr < (int)(sizeof m->r / sizeof *m->r)) m->r[m->nr++].reason = reason;
    if (i < m->nr) m->r[i].n++;
    pthread_mutex_unlock(&m->lock);
}

struct text {
    char *buf;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (t->buf && t->len + (size_t)n < t->cap) break;
        size_t cap = t->cap ? t->cap * 2 : 8192;
        while (cap < t->len + (size_t)n + 1) cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) return;
        t->buf = nb, t->cap = cap;
    }
    t->len += (size_t)n;
}

static void pool_gauges(struct text *t, const char *metric, struct server *s, bool ready, struct handler_set *hs)
{
    for (int i = 0; i < SERVE_NLANGS; i++)
        if (s->have_lang[i])
            put(t, "%s{pool=\"%s\",kind=\"language\"} %d\n", metric, s->langs[i].name,
                ready ? hl_pool_ready(s->langs[i].pool) : atomic_load(&s->langs[i].in_use));
    for (int i = 0; hs && i < hs->n; i++)
        put(t, "%s{pool=\"%s\",kind=\"handler\"} %d\n", metric, hs->h[i].name,
            ready ? hl_pool_ready(hs->h[i].p.pool) : atomic_load(&hs->h[i].p.in_use));
    for (int i = 0; i < s->nguests; i++)
        put(t, "%s{pool=\"%s\",kind=\"guest\"} %d\n", metric, s->guests[i].p.name,
            ready ? hl_pool_ready(s->guests[i].p.pool) : atomic_load(&s->guests[i].p.in_use));
}

static void counter(struct text *t, const char *name, const char *help, unsigned long long v)
{
    put(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

char *metrics_render(struct server *s, size_t *len)
{
    struct metrics *m = s->m;
    struct text t = { 0 };
    struct handler_set *hs = handler_set_ref(s);
    pthread_mutex_lock(&m->lock);
    put(&t, "# HELP hyperlight_requests_total HTTP requests answered, by route, status and language.\n"
            "# TYPE hyperlight_requests_total counter\n");
    for (int i = 0; i < m->ns; i++)
        put(&t, "hyperlight_requests_total{route=\"%s\",status=\"%d\",language=\"%s\"} %llu\n", m->s[i].route,
            m->s[i].status, m->s[i].lang, m->s[i].n);
    put(&t, "# HELP hyperlight_request_duration_seconds Time from request to response, by route.\n"
            "# TYPE hyperlight_request_duration_seconds histogram\n");
    for (int i = 0; i < m->nh; i++) {
        unsigned long long cum = 0;
        for (int b = 0; b < NBOUNDS; b++) {
            cum += m->h[i].buckets[b];
            put(&t, "hyperlight_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", m->h[i].route,
                bounds[b], cum);
        }
        put(&t, "hyperlight_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", m->h[i].route,
            m->h[i].count);
        put(&t, "hyperlight_request_duration_seconds_sum{route=\"%s\"} %.6f\n", m->h[i].route, m->h[i].sum);
        put(&t, "hyperlight_request_duration_seconds_count{route=\"%s\"} %llu\n", m->h[i].route, m->h[i].count);
    }
    put(&t, "# HELP hyperlight_rejected_total Requests refused before they ran, by reason.\n"
            "# TYPE hyperlight_rejected_total counter\n");
    for (int i = 0; i < m->nr; i++)
        put(&t, "hyperlight_rejected_total{reason=\"%s\"} %llu\n", m->r[i].reason, m->r[i].n);
    pthread_mutex_unlock(&m->lock);
    put(&t, "# HELP hyperlight_pool_ready Sandboxes ready in a pool.\n# TYPE hyperlight_pool_ready gauge\n");
    pool_gauges(&t, "hyperlight_pool_ready", s, true, hs);
    put(&t, "# HELP hyperlight_pool_in_use Sandboxes of a pool serving a request.\n"
            "# TYPE hyperlight_pool_in_use gauge\n");
    pool_gauges(&t, "hyperlight_pool_in_use", s, false, hs);
    handler_set_unref(s, hs);
    counter(&t, "hyperlight_restores_total", "Sandboxes restored to their pool's snapshot after a request.",
            atomic_load(&s->restores));
    counter(&t, "hyperlight_restore_failures_total", "Restores that failed (the sandbox was replaced).",
            atomic_load(&s->restore_failures));
    counter(&t, "hyperlight_guest_faults_total", "Guest calls that ended in a fault, abort or protocol error.",
            atomic_load(&s->faults));
    counter(&t, "hyperlight_timeouts_total", "Guest calls stopped at their time limit.", atomic_load(&s->timeouts));
    put(&t,
        "# HELP hyperlight_inflight_requests Requests being served now.\n"
        "# TYPE hyperlight_inflight_requests gauge\nhyperlight_inflight_requests %d\n",
        atomic_load(&s->requests));
    *len = t.len;
    return t.buf;
}
