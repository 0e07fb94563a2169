/* exec.c - the warm pools of `hyperlight serve` and the guest calls made from them: a
 * sandbox is taken from its pool for one request and put back, which restores it to the
 * pool's snapshot, so no request sees what another left. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hyperlight/lang.h"
#include "serve.h"

const struct lang serve_langs[SERVE_NLANGS] = {
    { "lua", NULL, ".lua", "lua.elf" },
    { "javascript", "js", ".js", "javascript.elf" },
    { "python", "py", ".py", "python.elf" },
};

const struct lang *serve_lang_by_name(const char *s)
{
    for (int i = 0; i < SERVE_NLANGS; i++)
        if (!strcmp(s, serve_langs[i].name) || (serve_langs[i].alias && !strcmp(s, serve_langs[i].alias)))
            return &serve_langs[i];
    return NULL;
}

/* What the guest prints during the call this thread makes: the print function of every
 * sandbox appends here (calls run on the requesting thread: no confinement). */
struct capture {
    char *buf[2];
    size_t len[2], cap[2];
};
static _Thread_local struct capture *current;

void print_capture(void *user, int stream, const char *data, size_t len)
{
    struct capture *c = current;
    int i = stream == 2 ? 1 : 0;
    (void)user;
    if (!c) return;
    if (c->len[i] + len + 1 > c->cap[i]) {
        size_t cap = c->cap[i] ? c->cap[i] : 4096;
        char *nb;
        while (cap < c->len[i] + len + 1) cap *= 2;
        if (!(nb = realloc(c->buf[i], cap))) return;
        c->buf[i] = nb, c->cap[i] = cap;
    }
    memcpy(c->buf[i] + c->len[i], data, len);
    c->len[i] += len;
    c->buf[i][c->len[i]] = 0;
}

/* A handler's or guest's name: 1..63 of [A-Za-z0-9_.-] (it is part of URLs and metric labels). */
bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= SERVE_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i])) return false;
    return true;
}

int pool_size_for(const struct server *s, const char *name, const char *lang)
{
    for (int i = 0; i < s->nsizes; i++)
        if (!strcmp(s->sizes[i].name, name)) return s->sizes[i].size;
    for (int i = 0; lang && i < s->nsizes; i++)
        if (!strcmp(s->sizes[i].name, lang)) return s->sizes[i].size;
    return s->default_size;
}

bool pool_open(struct pool *p, const char *name, const char *lang, hl_snapshot *snap, const hl_config *cfg, int size)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->lang = lang;
    p->snap = snap;
    atomic_store(&p->in_use, 0);
    /* All made now, no filler thread: the pool is a free list of `size` (a put keeps what a
     * get took), and a server that cannot make them should not start. */
    if (hl_pool_new(&p->pool, snap, cfg, size, false) != HL_OK) {
        fprintf(stderr, "hyperlight serve: pool %s: %s\n", name, hl_last_error(NULL));
        return false;
    }
    return true;
}

void pool_close(struct pool *p)
{
    hl_pool_free(p->pool);
    hl_snapshot_free(p->snap);
    p->pool = NULL, p->snap = NULL;
}

/* The path of a language's guest: --guest-dir, $HYPERLIGHT_GUEST_DIR, or next to this
 * program: ../guests (the build tree), else ../lib/hyperlight/guests (an installation). */
static void lang_guest_path(const struct server *s, const struct lang *l, char *out, size_t len)
{
    static const char *const rel[] = { "../guests", "../lib/hyperlight/guests" };
    const char *env = getenv("HYPERLIGHT_GUEST_DIR");
    char exe[PATH_MAX], *slash;
    ssize_t n;
    int w = -1;
    if (s->guest_dir) {
        w = snprintf(out, len, "%s/%s", s->guest_dir, l->guest);
    } else if (env && *env) {
        w = snprintf(out, len, "%s/%s", env, l->guest);
    } else if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
        exe[n] = 0;
        if ((slash = strrchr(exe, '/'))) *slash = 0;
        for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
            w = snprintf(out, len, "%s/%s/%s", exe, rel[i], l->guest);
            if (w >= 0 && (size_t)w < len && access(out, R_OK) == 0) break;
        }
    }
    if (w < 0 || (size_t)w >= len) out[0] = 0; /* too long: no such file */
}

/* A snapshot of a fresh sandbox of the guest at path (a snapshot file is loaded as it is). */
static hl_snapshot *boot(const hl_config *cfg, const char *path)
{
    hl_sandbox *sb;
    hl_snapshot *snap = NULL;
    char magic[8] = { 0 };
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hyperlight serve: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    bool is_snap = fread(magic, 1, 8, f) == 8 && !memcmp(magic, HL_SNAPSHOT_MAGIC, 8);
    fclose(f);
    if (is_snap) {
        if (hl_snapshot_load(&snap, path) != HL_OK)
            fprintf(stderr, "hyperlight serve: %s: %s\n", path, hl_last_error(NULL));
        return snap;
    }
    if (hl_sandbox_new_from_file(&sb, path, cfg) != HL_OK) {
        fprintf(stderr, "hyperlight serve: %s: %s\n", path, hl_last_error(NULL));
        return NULL;
    }
    if (hl_snapshot_take(sb, &snap) != HL_OK) fprintf(stderr, "hyperlight serve: %s: %s\n", path, hl_last_error(sb));
    hl_sandbox_free(sb);
    return snap;
}

/* Boots the languages of --lang (default: those whose guest exists), one pool each. */
bool langs_open(struct server *s)
{
    for (int i = 0; i < SERVE_NLANGS; i++) {
        const struct lang *l = &serve_langs[i];
        char path[PATH_MAX], list[sizeof s->lang_list + 2], key[SERVE_NAME_MAX + 2];
        hl_snapshot *snap;
        bool asked;
        snprintf(list, sizeof list, ",%s,", s->lang_list);
        snprintf(key, sizeof key, ",%s,", l->name);
        asked = strstr(list, key) || (snprintf(key, sizeof key, ",%s,", l->alias ? l->alias : "-"), strstr(list, key));
        lang_guest_path(s, l, path, sizeof path);
        if (!s->lang_list[0] && access(path, R_OK) != 0) continue;
        if (s->lang_list[0] && !asked) continue;
        if (!(snap = boot(s->cfg, path))) return false;
        if (!pool_open(&s->langs[i], l->name, l->name, snap, s->cfg, pool_size_for(s, l->name, NULL))) return false;
        s->have_lang[i] = true;
    }
    return true;
}

/* --guest NAME=PATH: a pool, and the guest's function table copied for /v1/call. */
bool guest_open(struct server *s, const char *spec)
{
    const char *eq = strchr(spec, '=');
    struct guest *g = &s->guests[s->nguests];
    hl_sandbox *sb;
    hl_snapshot *snap;
    if (!eq || !name_ok(spec, (size_t)(eq - spec)) || !eq[1]) {
        fprintf(stderr, "hyperlight serve: --guest wants NAME=PATH (NAME of A-Z a-z 0-9 _ . -), not '%s'\n", spec);
        return false;
    }
    char name[SERVE_NAME_MAX];
    snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    if (!(snap = boot(s->cfg, eq + 1))) return false;
    if (hl_sandbox_new_from_snapshot(&sb, snap, s->cfg) != HL_OK) {
        fprintf(stderr, "hyperlight serve: %s: %s\n", eq + 1, hl_last_error(NULL));
        hl_snapshot_free(snap);
        return false;
    }
    g->nfns = hl_sandbox_fn_count(sb);
    g->fns = calloc((size_t)g->nfns + 1, sizeof *g->fns);
    for (int i = 0; g->fns && i < g->nfns; i++) {
        const char *fname;
        const hl_type *params;
        hl_sandbox_fn_info(sb, i, &fname, &g->fns[i].ret, &params, &g->fns[i].nparams);
        g->fns[i].name = strdup(fname);
        memcpy(g->fns[i].params, params, (size_t)g->fns[i].nparams * sizeof *params);
    }
    hl_sandbox_free(sb);
    if (!g->fns || !pool_open(&g->p, name, "c", snap, s->cfg, pool_size_for(s, name, "c"))) return false;
    s->nguests++;
    return true;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The kind of a failed call, from its status, guest code and message. */
static const char *failure_kind(hl_sandbox *sb, hl_status st, bool lang)
{
    const char *msg = hl_last_error(sb);
    switch (st) {
    case HL_ERR_GUEST:
        if (!lang) return "guest"; /* a C guest's own code: not the language guests' */
        switch (hl_last_error_code(sb)) {
        case HL_LANG_ERR_SCRIPT: return "script";
        case HL_LANG_ERR_NOT_JSON: return "not_json";
        case HL_LANG_ERR_NO_HANDLER: return "no_handler";
        case HL_LANG_ERR_SYNTAX: return "syntax";
        case HL_LANG_ERR_EXIT: return "exit";
        default: return "guest";
        }
    case HL_ERR_CANCELLED:
        if (strstr(msg, "timed out after")) return "timeout";
        if (strstr(msg, "more than the limit")) return "output_limit";
        return "cancelled";
    case HL_ERR_FAULT:
    case HL_ERR_ABORTED:
    case HL_ERR_PROTOCOL: return "guest_fault";
    case HL_ERR_TYPE: return "type";
    case HL_ERR_TOO_LARGE: return "too_large";
    default: return "internal";
    }
}

/* Records why the call on sb failed into o: the kind, the message (the language's own for
 * a script error), and for a language error LastError's structured form. */
static void failed(struct server *s, hl_sandbox *sb, hl_status st, bool lang, struct outcome *o)
{
    hl_value r;
    o->kind = failure_kind(sb, st, lang);
    o->code = hl_last_error_code(sb);
    o->message =
        strdup(st == HL_ERR_GUEST && *hl_last_guest_message(sb) ? hl_last_guest_message(sb) : hl_last_error(sb));
    if (!strcmp(o->kind, "exit")) sscanf(o->message, "exit %d", &o->exit_status);
    if (!strcmp(o->kind, "timeout")) atomic_fetch_add(&s->timeouts, 1);
    if (!strcmp(o->kind, "guest_fault")) atomic_fetch_add(&s->faults, 1);
    if (lang && st == HL_ERR_GUEST && hl_last_error_code(sb) != HL_LANG_ERR_EXIT &&
        hl_call(sb, HL_LANG_FN_LAST_ERROR, HL_STRING, NULL, 0, &r) == HL_OK) {
        json_t *d = json_loads(hl_value_str(&r), 0, NULL);
        if (json_is_object(d) && json_object_size(d)) o->detail = d;
        else json_decref(d);
    }
}

/* Takes a sandbox of p, runs fn, puts it back (restored). */
static hl_sandbox *take(struct server *s, struct pool *p, unsigned long long timeout_ms, struct outcome *o)
{
    hl_sandbox *sb;
    if ((o->st = hl_pool_get(p->pool, &sb)) != HL_OK) {
        o->kind = "internal";
        o->message = strdup(hl_last_error(NULL));
        return NULL;
    }
    atomic_fetch_add(&p->in_use, 1);
    hl_sandbox_set_timeout(sb, timeout_ms);
    (void)s;
    return sb;
}

static void give_back(struct server *s, struct pool *p, hl_sandbox *sb)
{
    atomic_fetch_add(&s->restores, 1);
    if (hl_pool_put(p->pool, sb) != HL_OK) atomic_fetch_add(&s->restore_failures, 1);
    atomic_fetch_sub(&p->in_use, 1);
}

void exec_lang(struct server *s, struct pool *p, const char *fn, const hl_value *args, int nargs, bool json_result,
               unsigned long long timeout_ms, struct outcome *o)
{
    struct capture cap = { 0 };
    double t0 = now_ms();
    hl_value r;
    hl_sandbox *sb = take(s, p, timeout_ms, o);
    if (!sb) return;
    current = &cap;
    o->st = hl_call(sb, fn, json_result ? HL_STRING : HL_VOID, args, nargs, &r);
    if (o->st == HL_OK && json_result) {
        json_error_t e;
        if (!(o->value = json_loads(hl_value_str(&r), JSON_DECODE_ANY, &e))) {
            o->kind = "not_json";
            o->message = strdup("the guest returned a value that is not JSON");
        }
    } else if (o->st != HL_OK) {
        failed(s, sb, o->st, true, o);
    }
    current = NULL;
    give_back(s, p, sb);
    for (int i = 0; i < 2; i++) {
        o->out[i] = cap.buf[i] ? cap.buf[i] : strdup("");
        o->len[i] = cap.len[i];
    }
    o->ms = now_ms() - t0;
}

void exec_call(struct server *s, struct guest *g, const struct guest_fn *fn, const hl_value *args,
               unsigned long long timeout_ms, struct outcome *o)
{
    struct capture cap = { 0 };
    double t0 = now_ms();
    hl_value r;
    hl_sandbox *sb = take(s, &g->p, timeout_ms, o);
    if (!sb) return;
    current = &cap;
    o->st = hl_call(sb, fn->name, fn->ret, args, fn->nparams, &r);
    current = NULL;
    if (o->st == HL_OK) o->value = value_to_json(&r); /* before the restore: strings live in sb */
    else failed(s, sb, o->st, false, o);
    give_back(s, &g->p, sb);
    free(cap.buf[0]);
    free(cap.buf[1]);
    o->ms = now_ms() - t0;
}

void outcome_free(struct outcome *o)
{
    free(o->message);
    free(o->out[0]);
    free(o->out[1]);
    json_decref(o->detail);
    json_decref(o->value);
}
