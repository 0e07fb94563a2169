/* routes.c - the /v1 routes of `hyperlight serve`: run code in a language guest, call a
 * loaded handler, call a C guest's function (docs/serve.md has each request and response). */
#include <stdlib.h>
#include <string.h>

#include "hyperlight/lang.h"
#include "serve_http.h"

/* The request's body as JSON; NULL after replying 400 with the parser's message and
 * position (*sent holds the reply's result). */
static json_t *parse_body(struct exchange *x, size_t flags, enum MHD_Result *sent)
{
    json_error_t e;
    json_t *j = json_loadb(x->req->body ? x->req->body : "", x->req->len, flags | JSON_REJECT_DUPLICATES, &e);
    if (j) return j;
    *sent =
        reply_json(x, 400,
                   json_pack("{s:{s:s, s:o, s:i, s:i, s:i}}", "error", "kind", "bad_json", "message",
                             jstr(e.text, strlen(e.text)), "line", e.line, "column", e.column, "position", e.position));
    return NULL;
}

/* The "error" object of a failed outcome. */
static json_t *error_object(const struct outcome *o)
{
    json_t *e = json_pack("{s:s, s:o}", "kind", o->kind, "message",
                          jstr(o->message ? o->message : "", o->message ? strlen(o->message) : 0));
    if (o->detail) {
        json_t *t = json_object_get(o->detail, "type"), *tb = json_object_get(o->detail, "traceback");
        if (json_is_string(t)) json_object_set(e, "type", t);
        if (json_is_string(tb)) json_object_set(e, "traceback", tb);
    }
    if (!strcmp(o->kind, "exit")) json_object_set_new(e, "exit_status", json_integer(o->exit_status));
    if (!strcmp(o->kind, "guest")) json_object_set_new(e, "code", json_integer(o->code));
    return e;
}

/* The status for a failed handler or guest call. */
static int failure_status(const struct outcome *o)
{
    if (!strcmp(o->kind, "timeout")) return 504;
    if (!strcmp(o->kind, "guest_fault")) return 502;
    if (!strcmp(o->kind, "type")) return 400;
    return 500;
}

/* The time limit of this request: ?timeout_ms=N (or the body's), within --max-timeout. */
static const char *request_timeout(struct exchange *x, json_t *field, unsigned long long *ms)
{
    const char *q = MHD_lookup_connection_value(x->c, MHD_GET_ARGUMENT_KIND, "timeout_ms");
    long long v;
    char *end;
    *ms = x->s->timeout_ms;
    if (field) {
        if (!json_is_integer(field)) return "timeout_ms must be an integer";
        v = json_integer_value(field);
    } else if (q) {
        v = strtoll(q, &end, 10);
        if (!*q || *end) return "timeout_ms must be an integer";
    } else {
        return NULL;
    }
    if (v < 1 || (unsigned long long)v > x->s->max_timeout_ms) return "timeout_ms out of range";
    *ms = (unsigned long long)v;
    return NULL;
}

static enum MHD_Result run_reply(struct exchange *x, struct outcome *o, bool eval)
{
    json_t *r;
    if (o->kind && !strcmp(o->kind, "internal")) return reply_error(x, 500, "internal", "%s", o->message);
    r = json_pack("{s:o, s:o, s:o, s:f}", "stdout", jstr(o->out[0], o->len[0]), "stderr", jstr(o->out[1], o->len[1]),
                  "value", eval && o->value ? json_incref(o->value) : json_null(), "duration_ms", o->ms);
    if (o->kind && !(!strcmp(o->kind, "exit") && o->exit_status == 0))
        json_object_set_new(r, "error", error_object(o));
    return reply_json(x, 200, r);
}

enum MHD_Result route_run(struct exchange *x)
{
    enum MHD_Result sent;
    json_t *j = parse_body(x, 0, &sent), *v;
    const char *key, *why = NULL, *code;
    const struct lang *l;
    unsigned long long ms;
    struct outcome o = { 0 };
    bool eval = false;
    char field[96];
    int rc;
    if (!j) return sent;
    if (!json_is_object(j)) why = "the body must be a JSON object";
    json_object_foreach(j, key, v) if (!why && strcmp(key, "language") && strcmp(key, "code") &&
                                       strcmp(key, "timeout_ms") && strcmp(key, "eval") && strcmp(key, "stdin"))
    {
        snprintf(field, sizeof field, "unknown field '%.40s'", key);
        why = field;
    }
    if (!why && !json_is_string(json_object_get(j, "language"))) why = "language must be a string";
    if (!why &&
        (!json_is_string(v = json_object_get(j, "code")) || strlen(json_string_value(v)) != json_string_length(v)))
        why = "code must be a string (without NUL characters)";
    if (!why && (v = json_object_get(j, "eval")) && !json_is_boolean(v)) why = "eval must be true or false";
    if (!why && json_object_get(j, "stdin"))
        why = "stdin is not supported: the language guests have no standard input";
    if (!why) why = request_timeout(x, json_object_get(j, "timeout_ms"), &ms);
    if (why) {
        rc = reply_error(x, 400, "bad_request", "%s", why);
        json_decref(j);
        return rc;
    }
    l = serve_lang_by_name(json_string_value(json_object_get(j, "language")));
    if (!l || !x->s->have_lang[l - serve_langs]) {
        rc = reply_error(x, 404, "not_found", "language '%s' is not served here",
                         json_string_value(json_object_get(j, "language")));
        json_decref(j);
        return rc;
    }
    x->lang = l->name;
    eval = json_is_true(json_object_get(j, "eval"));
    code = json_string_value(json_object_get(j, "code"));
    if ((rc = admit(x->s)) != 0) {
        json_decref(j);
        return reply_error(x, rc, rc == 429 ? "overloaded" : "queue_timeout",
                           rc == 429 ? "too many requests are waiting" : "no sandbox was free in time");
    }
    hl_value a[3] = { hl_str(code), hl_str("request"), hl_str("[]") };
    exec_lang(x->s, &x->s->langs[l - serve_langs], eval ? HL_LANG_FN_EVAL : HL_LANG_FN_RUN, a, eval ? 1 : 3, eval, ms,
              &o);
    release(x->s);
    rc = run_reply(x, &o, eval);
    outcome_free(&o);
    json_decref(j);
    return rc;
}

/* The reply of a handler or guest call: its value, or the error with failure_status. */
static enum MHD_Result value_reply(struct exchange *x, struct outcome *o, bool bare)
{
    json_t *r;
    if (!o->kind && bare) return reply_json(x, 200, json_incref(o->value));
    if (!o->kind) return reply_json(x, 200, json_pack("{s:O, s:f}", "result", o->value, "duration_ms", o->ms));
    r = json_pack("{s:o, s:f}", "error", error_object(o), "duration_ms", o->ms);
    return reply_json(x, failure_status(o), r);
}

enum MHD_Result route_handler(struct exchange *x, const char *name)
{
    struct handler_set *hs = handler_set_ref(x->s);
    struct handler *h = NULL;
    enum MHD_Result sent;
    unsigned long long ms;
    struct outcome o = { 0 };
    json_t *event;
    char *text;
    const char *why;
    int rc;
    for (int i = 0; hs && i < hs->n; i++)
        if (!strcmp(hs->h[i].name, name)) h = &hs->h[i];
    if (!h) {
        handler_set_unref(x->s, hs);
        return reply_error(x, 404, "not_found", "no handler '%s'", name);
    }
    x->lang = h->lang->name;
    if (!(event = parse_body(x, JSON_DECODE_ANY, &sent))) {
        handler_set_unref(x->s, hs);
        return sent;
    }
    text = json_dumps(event, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(event);
    if ((why = request_timeout(x, NULL, &ms)) || !text) {
        sent = reply_error(x, 400, "bad_request", "%s", why ? why : "out of memory");
    } else if ((rc = admit(x->s)) != 0) {
        sent = reply_error(x, rc, rc == 429 ? "overloaded" : "queue_timeout",
                           rc == 429 ? "too many requests are waiting" : "no sandbox was free in time");
    } else {
        hl_value a[2] = { hl_str(h->name), hl_str(text) };
        exec_lang(x->s, &h->p, HL_LANG_FN_HANDLE, a, 2, true, ms, &o);
        release(x->s);
        sent = value_reply(x, &o, true);
        outcome_free(&o);
    }
    free(text);
    handler_set_unref(x->s, hs);
    return sent;
}

/* Converts the JSON array args to the parameters of fn; NULL or what is wrong (in msg). */
static const char *call_args(const struct guest_fn *fn, json_t *args, hl_value *v, unsigned char **mem, char *msg,
                             size_t len)
{
    char sig[512];
    if (!json_is_array(args)) return "the body must be a JSON array of the arguments";
    if ((int)json_array_size(args) != fn->nparams) {
        snprintf(msg, len, "%s takes %d argument%s, got %zu",
                 hl_signature_format(sig, sizeof sig, fn->name, fn->ret, fn->params, fn->nparams), fn->nparams,
                 fn->nparams == 1 ? "" : "s", json_array_size(args));
        return msg;
    }
    for (int i = 0; i < fn->nparams; i++) {
        const char *why = json_to_value(json_array_get(args, (size_t)i), fn->params[i], &v[i], &mem[i]);
        if (why) {
            snprintf(msg, len, "argument %d: %s", i + 1, why);
            return msg;
        }
    }
    return NULL;
}

enum MHD_Result route_call(struct exchange *x, const char *path)
{
    const char *slash = strchr(path, '/'), *why;
    struct guest *g = NULL;
    const struct guest_fn *fn = NULL;
    hl_value v[HL_MAX_ARGS];
    unsigned char *mem[HL_MAX_ARGS] = { 0 };
    char msg[768];
    enum MHD_Result sent;
    unsigned long long ms;
    struct outcome o = { 0 };
    json_t *args;
    int rc;
    x->lang = "c";
    for (int i = 0; slash && i < x->s->nguests; i++)
        if (strlen(x->s->guests[i].p.name) == (size_t)(slash - path) &&
            !strncmp(x->s->guests[i].p.name, path, (size_t)(slash - path)))
            g = &x->s->guests[i];
    if (!g)
        return reply_error(x, 404, "not_found", "no guest '%.*s'", (int)(slash ? slash - path : (long)strlen(path)),
                           path);
    for (int i = 0; i < g->nfns; i++)
        if (!strcmp(g->fns[i].name, slash + 1)) fn = &g->fns[i];
    if (!fn) return reply_error(x, 404, "not_found", "guest '%s' has no function '%s'", g->p.name, slash + 1);
    if (!(args = parse_body(x, 0, &sent))) return sent;
    if ((why = call_args(fn, args, v, mem, msg, sizeof msg))) {
        sent = reply_error(x, 400, "type", "%s", why);
    } else if ((why = request_timeout(x, NULL, &ms))) {
        sent = reply_error(x, 400, "bad_request", "%s", why);
    } else if ((rc = admit(x->s)) != 0) {
        sent = reply_error(x, rc, rc == 429 ? "overloaded" : "queue_timeout",
                           rc == 429 ? "too many requests are waiting" : "no sandbox was free in time");
    } else {
        exec_call(x->s, g, fn, v, ms, &o);
        release(x->s);
        sent = value_reply(x, &o, false);
        outcome_free(&o);
    }
    for (int i = 0; i < HL_MAX_ARGS; i++) free(mem[i]);
    json_decref(args);
    return sent;
}
