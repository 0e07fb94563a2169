/* http.c - the HTTP side of `hyperlight serve` on libmicrohttpd (a thread per connection):
 * routes, body and concurrency limits, bearer-token authentication, JSON responses, the
 * access log, and the drain on SIGTERM. docs/serve.md describes every route. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "serve_http.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* s as a JSON string; bytes that are not UTF-8 become U+FFFD (JSON text is UTF-8). */
json_t *jstr(const char *p, size_t n)
{
    json_t *j = json_stringn(p, n);
    char *fixed, *o;
    if (j || !(o = fixed = malloc(n * 3 + 1))) return j;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = k && i + k <= n;
        for (size_t m = 1; ok && m < k; m++) ok = ((unsigned char)p[i + m] >> 6) == 2;
        if (ok && k > 1) { /* json_stringn still refuses overlong forms and surrogates: check them too */
            json_t *t = json_stringn(p + i, k);
            ok = t != NULL;
            json_decref(t);
        }
        if (ok) {
            memcpy(o, p + i, k);
            o += k, i += k;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3, i++;
        }
    }
    j = json_stringn(fixed, (size_t)(o - fixed));
    free(fixed);
    return j;
}

void access_log(struct server *s, const char *method, const char *url, int status, const char *lang, double ms,
                size_t bytes)
{
    struct timespec ts;
    struct tm tm;
    char when[40], *line;
    json_t *j;
    if (!s->log) return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + 19, sizeof when - 19, ".%03ldZ", ts.tv_nsec / 1000000);
    j = json_pack("{s:s, s:s, s:o, s:i, s:s, s:f, s:I}", "time", when, "method", method, "path", jstr(url, strlen(url)),
                  "status", status, "language", lang, "duration_ms", ms, "bytes", (json_int_t)bytes);
    if (j && (line = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9)))) {
        pthread_mutex_lock(&s->log_lock);
        fprintf(s->log, "%s\n", line);
        fflush(s->log);
        pthread_mutex_unlock(&s->log_lock);
        free(line);
    }
    json_decref(j);
}

/* Sends body with status, counts it in the metrics and writes its access-log line. */
enum MHD_Result reply(struct exchange *x, int status, const char *type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ok;
    double ms = now_ms() - x->req->t0;
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 429 || status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (status == 405) MHD_add_response_header(r, "Allow", x->allow);
    if (atomic_load(&x->s->draining)) MHD_add_response_header(r, "Connection", "close");
    ok = MHD_queue_response(x->c, (unsigned)status, r);
    MHD_destroy_response(r);
    metrics_request(x->s->m, x->route, status, x->lang, ms);
    access_log(x->s, x->method, x->url, status, x->lang, ms, len);
    return ok;
}

enum MHD_Result reply_json(struct exchange *x, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!text) return reply(x, 500, "text/plain", strdup("out of memory\n"), 14);
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (withnl) withnl[n++] = '\n', withnl[n] = 0, text = withnl;
    return reply(x, status, "application/json", text, n);
}

/* {"error": {"kind": kind, "message": message}} with status. */
enum MHD_Result reply_error(struct exchange *x, int status, const char *kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_json(x, status, json_pack("{s:{s:s, s:o}}", "error", "kind", kind, "message", jstr(msg, strlen(msg))));
}

/* Waits for a free execution slot (--threads), in a queue of at most --queue requests for
 * at most --queue-timeout ms. The queue is first come, first served: a freed slot goes
 * straight to the oldest waiter, so a new request never overtakes one that waits. Returns
 * 0, or the status to refuse the request with. */
int admit(struct server *s)
{
    struct waiter w = { .next = NULL, .granted = false };
    struct timespec until;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += s->queue_timeout_ms / 1000;
    until.tv_nsec += (long)(s->queue_timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_mutex_lock(&s->lock);
    if (s->running < s->threads && !s->head) {
        s->running++;
    } else if (s->waiting >= s->queue) {
        rc = 429;
    } else {
        pthread_cond_init(&w.cond, NULL);
        *(s->head ? &s->tail->next : &s->head) = &w;
        s->tail = &w;
        s->waiting++;
        while (!w.granted && rc == 0)
            if (pthread_cond_timedwait(&w.cond, &s->lock, &until) == ETIMEDOUT && !w.granted) rc = 503;
        if (!w.granted) { /* timed out: leave the queue */
            struct waiter **p = &s->head, *prev = NULL;
            while (*p != &w) prev = *p, p = &(*p)->next;
            *p = w.next;
            if (s->tail == &w) s->tail = prev;
            s->waiting--;
        }
        pthread_cond_destroy(&w.cond);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc) metrics_reject(s->m, rc == 429 ? "queue_full" : "queue_timeout");
    return rc;
}

/* Gives the slot to the oldest waiter, or frees it. */
void release(struct server *s)
{
    struct waiter *w;
    pthread_mutex_lock(&s->lock);
    if ((w = s->head)) {
        if (!(s->head = w->next)) s->tail = NULL;
        s->waiting--;
        w->granted = true;
        pthread_cond_signal(&w->cond);
    } else {
        s->running--;
    }
    pthread_mutex_unlock(&s->lock);
}

/* True if the request carries one of the --token-file tokens (compared in constant time). */
static bool authorized(struct server *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    bool ok = false;
    if (s->no_auth) return true;
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    size_t n = strlen(h);
    for (int i = 0; i < s->ntokens; i++) {
        const char *t = s->tokens[i];
        size_t m = strlen(t);
        unsigned char diff = n != m;
        for (size_t k = 0; k < m; k++) diff |= (unsigned char)(t[k] ^ h[k < n ? k : 0]);
        ok |= !diff;
    }
    return ok;
}

static enum MHD_Result route(struct exchange *x)
{
    const char *u = x->url;
    bool post = !strcmp(x->method, "POST"), get = !strcmp(x->method, "GET") || !strcmp(x->method, "HEAD");
    bool v1 = !strncmp(u, "/v1/", 4);
    x->allow = v1 ? "POST" : "GET, HEAD";
    x->route = !strcmp(u, "/v1/run")              ? "/v1/run"
               : !strncmp(u, "/v1/handlers/", 13) ? "/v1/handlers"
               : !strncmp(u, "/v1/call/", 9)      ? "/v1/call"
               : !strcmp(u, "/metrics")           ? "/metrics"
               : !strcmp(u, "/healthz")           ? "/healthz"
               : !strcmp(u, "/readyz")            ? "/readyz"
                                                  : "other";
    if (!strcmp(x->route, "other")) return reply_error(x, 404, "not_found", "no route %s", u);
    if (!strcmp(x->route, "/healthz") && get) return reply_json(x, 200, json_pack("{s:s}", "status", "ok"));
    if (!strcmp(x->route, "/readyz") && get) {
        bool draining = atomic_load(&x->s->draining);
        return reply_json(x, draining ? 503 : 200, json_pack("{s:s}", "status", draining ? "draining" : "ready"));
    }
    if (v1 ? !post : !get) return reply_error(x, 405, "method_not_allowed", "%s does not take %s", u, x->method);
    if (!authorized(x->s, x->c)) {
        metrics_reject(x->s->m, "unauthorized");
        return reply_error(x, 401, "unauthorized", "a valid bearer token is required");
    }
    if (!strcmp(x->route, "/metrics")) {
        size_t n;
        char *text = metrics_render(x->s, &n);
        if (!text) return reply_error(x, 500, "internal", "out of memory");
        return reply(x, 200, "text/plain; version=0.0.4; charset=utf-8", text, n);
    }
    if (x->req->too_big) {
        metrics_reject(x->s->m, "body_too_large");
        return reply_error(x, 413, "too_large", "the request body is larger than the limit of %llu bytes",
                           x->s->max_body);
    }
    if (!strcmp(x->route, "/v1/run")) return route_run(x);
    if (!strcmp(x->route, "/v1/handlers")) return route_handler(x, u + 13);
    return route_call(x, u + 9);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    struct server *s = cls;
    struct request *req = *con_cls;
    struct exchange x = { .s = s, .c = c, .url = url, .method = method, .lang = "" };
    (void)version;
    if (!req) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!(req = calloc(1, sizeof *req))) return MHD_NO;
        req->t0 = now_ms();
        *con_cls = req;
        atomic_fetch_add(&s->requests, 1);
        if (cl && strtoull(cl, NULL, 10) > s->max_body) req->too_big = true;
        return MHD_YES;
    }
    x.req = req;
    if (*size) {
        if (!req->too_big && req->len + *size > s->max_body) {
            req->too_big = true;
            free(req->body);
            req->body = NULL, req->len = 0;
        }
        if (!req->too_big) {
            if (req->len + *size + 1 > req->cap) {
                size_t cap = req->cap ? req->cap : 4096;
                while (cap < req->len + *size + 1) cap *= 2;
                char *nb = realloc(req->body, cap);
                if (!nb) return MHD_NO;
                req->body = nb, req->cap = cap;
            }
            memcpy(req->body + req->len, data, *size);
            req->len += *size;
            req->body[req->len] = 0;
        }
        *size = 0;
        return MHD_YES;
    }
    return route(&x);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct request *req = *con_cls;
    (void)c, (void)toe;
    if (!req) return;
    free(req->body);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&s->requests, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sock_ctx, enum MHD_ConnectionNotificationCode toe)
{
    struct server *s = cls;
    const union MHD_ConnectionInfo *ci;
    int one = 1;
    (void)sock_ctx;
    atomic_fetch_add(&s->connections, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    /* Answers are small and go at once: without this, Nagle's algorithm holds one back
     * until the client's delayed ACK (up to 200 ms) on a keep-alive connection. */
    if (toe == MHD_CONNECTION_NOTIFY_STARTED && (ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD)))
        setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct MHD_Daemon *http_start(struct server *s)
{
    char host[256];
    const char *colon = strrchr(s->listen, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    struct MHD_Daemon *d;
    int rc;
    if (!colon || colon == s->listen || (size_t)(colon - s->listen) >= sizeof host) {
        fprintf(stderr, "hyperlight serve: --listen wants HOST:PORT, not '%s'\n", s->listen);
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - s->listen), s->listen);
    if (host[0] == '[' && host[strlen(host) - 1] == ']')
        memmove(host, host + 1, strlen(host)), host[strlen(host) - 1] = 0;
    if ((rc = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
        fprintf(stderr, "hyperlight serve: --listen %s: %s\n", s->listen, gai_strerror(rc));
        return NULL;
    }
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                             MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                         0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)(s->threads + s->queue + 64), MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                         MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) fprintf(stderr, "hyperlight serve: cannot listen on %s: %s\n", s->listen, strerror(errno));
    return d;
}

/* Stops accepting, serves the connections already accepted (those in the listen queue
 * too), waits up to --grace ms for every connection to end, then stops the daemon. */
void http_drain(struct server *s, struct MHD_Daemon *d)
{
    MHD_socket fd;
    double until;
    atomic_store(&s->draining, 1);
    fd = MHD_quiesce_daemon(d);
    if (fd != MHD_INVALID_SOCKET) {
        struct sockaddr_storage a;
        socklen_t alen = sizeof a;
        int cfd;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        while ((cfd = accept4(fd, (struct sockaddr *)&a, &alen, SOCK_CLOEXEC)) >= 0 || errno == EINTR) {
            if (cfd >= 0 && MHD_add_connection(d, cfd, (struct sockaddr *)&a, alen) != MHD_YES) close(cfd);
            alen = sizeof a;
        }
        close(fd);
    }
    /* Every open connection ends, or none has a request for 1 s (an idle keep-alive
     * connection has nothing to finish), or the grace time is over. */
    until = now_ms() + s->grace_ms;
    for (double idle_since = now_ms(); atomic_load(&s->connections) > 0 && now_ms() < until; usleep(5000)) {
        if (atomic_load(&s->requests) > 0) idle_since = now_ms();
        else if (now_ms() - idle_since > 1000) break;
    }
    MHD_stop_daemon(d);
}
