/* serve.h - what the files of `hyperlight serve` share (docs/serve.md): main.c (options,
 * start, signals), http.c (routes, limits, auth, access log), exec.c (pools and guest
 * calls), convert.c (JSON and guest values), metrics.c (counters, /metrics). */
#ifndef HL_SERVE_H
#define HL_SERVE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "hyperlight.h"

#define SERVE_NAME_MAX 64

/* Warm sandboxes of one language, handler or C guest, all in one snapshot's state. */
struct pool {
    char name[SERVE_NAME_MAX]; /* "lua", a handler's or a guest's name */
    const char *lang;          /* "lua", "javascript", "python", or "c" */
    hl_snapshot *snap;
    hl_pool *pool;
    atomic_int in_use;
};

struct lang {
    const char *name, *alias, *ext, *guest; /* "javascript", "js", ".js", "javascript.elf" */
};
extern const struct lang serve_langs[];
#define SERVE_NLANGS 3
const struct lang *serve_lang_by_name(const char *s);

struct guest_fn {
    char *name;
    hl_type ret, params[HL_MAX_ARGS];
    int nparams;
};

/* A C guest of /v1/call (--guest NAME=PATH). */
struct guest {
    struct pool p;
    struct guest_fn *fns;
    int nfns;
};

/* A handler of /v1/handlers (--handler NAME=FILE): FILE Load'ed into its language's guest. */
struct handler {
    char name[SERVE_NAME_MAX], *path;
    const struct lang *lang;
    struct pool p;
};

/* The handlers in use; SIGHUP makes a new set, and the old one goes with its last request. */
struct handler_set {
    struct handler *h;
    int n, refs;
};

/* What a guest call gave. */
struct outcome {
    hl_status st;
    const char *kind; /* NULL on success, else "script", "syntax", "timeout", ... */
    char *message;    /* the error's text (malloc'd) */
    json_t *detail;   /* LastError's {"type", "message", "traceback"}, or NULL */
    json_t *value;    /* the result as JSON (NULL: none) */
    char *out[2];     /* stdout, stderr (malloc'd, NUL-terminated) */
    size_t len[2];
    int exit_status; /* kind "exit": the status the script exited with */
    int code;        /* the guest's error code (hl_last_error_code) */
    double ms;
};

struct metrics;

struct server {
    /* options */
    const char *listen, *token_file, *access_log, *guest_dir;
    int threads, queue, queue_timeout_ms, grace_ms;
    unsigned long long timeout_ms, max_timeout_ms, max_body, max_output;
    bool no_auth;
    char lang_list[128];
    struct pool_size {
        char name[SERVE_NAME_MAX];
        int size;
    } sizes[64];
    int nsizes, default_size;
    const char *handler_specs[64], *guest_specs[64];
    int nhandler_specs, nguest_specs;

    hl_config *cfg;
    struct pool langs[SERVE_NLANGS];
    bool have_lang[SERVE_NLANGS];
    struct guest guests[64];
    int nguests;
    struct handler_set *handlers;
    pthread_mutex_t lock; /* handlers, admission */
    struct waiter {       /* a request waiting for a slot (http.c: admit) */
        struct waiter *next;
        pthread_cond_t cond;
        bool granted;
    } * head, *tail;
    int running, waiting;
    char **tokens;
    int ntokens;
    FILE *log;
    pthread_mutex_t log_lock;
    struct metrics *m;
    atomic_int draining, connections, requests;
    atomic_ullong restores, restore_failures, faults, timeouts;
};

/* exec.c */
bool name_ok(const char *s, size_t n);
int pool_size_for(const struct server *s, const char *name, const char *lang);
bool pool_open(struct pool *p, const char *name, const char *lang, hl_snapshot *snap, const hl_config *cfg, int size);
void pool_close(struct pool *p);
bool langs_open(struct server *s);
bool guest_open(struct server *s, const char *spec);
struct handler_set *handlers_load(struct server *s);
void handler_set_unref(struct server *s, struct handler_set *hs);
struct handler_set *handler_set_ref(struct server *s);
void exec_lang(struct server *s, struct pool *p, const char *fn, const hl_value *args, int nargs, bool json_result,
               unsigned long long timeout_ms, struct outcome *o);
void exec_call(struct server *s, struct guest *g, const struct guest_fn *fn, const hl_value *args,
               unsigned long long timeout_ms, struct outcome *o);
void outcome_free(struct outcome *o);
void print_capture(void *user, int stream, const char *data, size_t len);

/* convert.c */
const char *json_to_value(json_t *j, hl_type t, hl_value *v, unsigned char **mem);
json_t *value_to_json(const hl_value *v);
char *read_file(const char *path, size_t *len);

/* metrics.c */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
void metrics_request(struct metrics *m, const char *route, int status, const char *lang, double ms);
void metrics_reject(struct metrics *m, const char *reason);
char *metrics_render(struct server *s, size_t *len);

/* http.c */
struct MHD_Daemon *http_start(struct server *s);
void http_drain(struct server *s, struct MHD_Daemon *d);
void access_log(struct server *s, const char *method, const char *url, int status, const char *lang, double ms,
                size_t bytes);

#endif
