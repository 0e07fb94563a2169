/* javascript_guest.c - the JavaScript guest (build/guests/javascript.elf): one QuickJS
 * runtime and context serving the language-guest protocol (include/hyperlight/lang.h,
 * docs/languages.md): Run, Eval, Repl, Load, Handle, LastError. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hyperlight/lang.h"
#include "hyperlight_guest.h"
#include "js_guest.h"

/* An interpreter wants more than the host's defaults: 1 MiB of stack (QuickJS's own default
 * limit), 32 MiB of heap. The embedder's sizes win. */
HL_GUEST_DEFAULTS(1 << 20, 32 << 20);

JSRuntime *js_rt;
JSContext *js_ctx;

/* The snapshot generation Math.random was last seeded in: memory restored from a snapshot
 * brings back the snapshot's random state, so each new generation seeds again. */
static uint64_t seeded_generation = UINT64_MAX;

static int take_rejections(int throw_first);

/* At every call's entry: QuickJS's stack limit from the current stack pointer down to the
 * stack's low end (the PEB) minus a margin for the C code below QuickJS's checks (printf,
 * the SDK, its exception handling), so deep recursion is "InternalError: stack overflow". */
static void enter(void)
{
    uintptr_t lo, hi;
    hl_guest_stack_bounds(&lo, &hi);
    uintptr_t margin = (hi - lo) / 4 < 64 * 1024 ? (hi - lo) / 4 : 64 * 1024;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0), low = lo + margin;
    js_exit_clear();
    take_rejections(0);
    JS_UpdateStackTop(js_rt);
    JS_SetMaxStackSize(js_rt, sp > low + 4096 ? sp - low : 4096);
    if (js_ctx && hl_guest_generation() != seeded_generation) {
        seeded_generation = hl_guest_generation();
        JS_ReseedRandom(js_ctx);
    }
}

/* Promises rejected with no handler yet (the host's rejection tracker): qjs treats one left
 * unhandled once the jobs ran as the script's error. The promise being settled (a module's,
 * an async eval's, a handler's result) is watched, not tracked. */
#define MAX_REJECTIONS 16
static JSValue rejected[MAX_REJECTIONS], reasons[MAX_REJECTIONS];
static int nrejected;
static JSValue watched;

static void track_rejection(JSContext *ctx, JSValueConst promise, JSValueConst reason, JS_BOOL handled, void *opaque)
{
    int i;
    if (JS_VALUE_GET_PTR(promise) == JS_VALUE_GET_PTR(watched)) return;
    for (i = 0; i < nrejected && JS_VALUE_GET_PTR(rejected[i]) != JS_VALUE_GET_PTR(promise); i++) {
    }
    if (handled && i < nrejected) {
        JS_FreeValue(ctx, rejected[i]);
        JS_FreeValue(ctx, reasons[i]);
        nrejected--;
        rejected[i] = rejected[nrejected];
        reasons[i] = reasons[nrejected];
    } else if (!handled && i == nrejected && nrejected < MAX_REJECTIONS) {
        rejected[nrejected] = JS_DupValue(ctx, promise);
        reasons[nrejected++] = JS_DupValue(ctx, reason);
    }
}

/* Forgets the tracked rejections; with throw_first, throws the first one's reason (and
 * returns -1) if there is one. */
static int take_rejections(int throw_first)
{
    int rc = 0;
    for (int i = 0; i < nrejected; i++) {
        if (i == 0 && throw_first) {
            js_note_unhandled();
            JS_Throw(js_ctx, JS_DupValue(js_ctx, reasons[0]));
            rc = -1;
        }
        JS_FreeValue(js_ctx, rejected[i]);
        JS_FreeValue(js_ctx, reasons[i]);
    }
    nrejected = 0;
    return rc;
}

/* Runs queued promise jobs until none is left. Returns 0, or -1 with the failing job's
 * exception pending, or once a job called std.exit (a promise callback's error, even that
 * one, only rejects its promise). */
static int drain_jobs(void)
{
    JSContext *c;
    int r, status;
    while ((r = JS_ExecutePendingJob(js_rt, &c)) > 0)
        if (js_exit_pending(&status)) return -1;
    return r < 0 ? -1 : 0;
}

/* drain_jobs, then a rejection left unhandled is the error. */
static int run_jobs(void)
{
    if (drain_jobs()) return -1;
    return take_rejections(1);
}

/* The settled value of p once the jobs ran: the fulfilled value (a new reference), or
 * JS_EXCEPTION with the rejection (or a never-settled error) pending. Takes p. */
static JSValue settle(JSValue p)
{
    track_rejection(js_ctx, p, JS_UNDEFINED, 1, NULL); /* if it was rejected already */
    watched = p;
    int failed = drain_jobs();
    watched = JS_UNDEFINED;
    if (failed) {
        take_rejections(0);
        JS_FreeValue(js_ctx, p);
        return JS_EXCEPTION;
    }
    /* A rejection of p is the error (the promises it went through, an imported module's
     * evaluation, were rejected with it and are not reported again). */
    JSPromiseStateEnum st = JS_PromiseState(js_ctx, p);
    JSValue r = JS_UNDEFINED;
    if (st == JS_PROMISE_REJECTED) {
        take_rejections(0);
        r = JS_Throw(js_ctx, JS_PromiseResult(js_ctx, p));
    } else if (take_rejections(1)) {
        r = JS_EXCEPTION;
    } else if (st == JS_PROMISE_FULFILLED) {
        r = JS_PromiseResult(js_ctx, p);
    } else {
        r = JS_ThrowInternalError(js_ctx, "the promise never settled (nothing left to run)");
    }
    JS_FreeValue(js_ctx, p);
    return r;
}

/* Compiles code as script (or module) name: the function, or JS_EXCEPTION with the parse
 * error pending. */
static JSValue compile(const char *code, const char *name, int flags)
{
    return JS_Eval(js_ctx, code, strlen(code), name, flags | JS_EVAL_FLAG_COMPILE_ONLY);
}

/* The protocol's code for the pending compile error: a SyntaxError is the parser's; anything
 * else (a module's import that cannot be loaded, out of memory) is the script's. */
static int compile_error_code(void)
{
    JSValue ex = JS_GetException(js_ctx), global = JS_GetGlobalObject(js_ctx);
    JSValue ctor = JS_GetPropertyStr(js_ctx, global, "SyntaxError");
    int syntax = JS_IsObject(ex) && JS_IsInstanceOf(js_ctx, ex, ctor) > 0;
    JS_FreeValue(js_ctx, ctor);
    JS_FreeValue(js_ctx, global);
    JS_Throw(js_ctx, ex);
    return syntax ? HL_LANG_ERR_SYNTAX : HL_LANG_ERR_SCRIPT;
}

/* Compiles and runs code; a module's promise is settled. Returns the completion value, or
 * JS_EXCEPTION with *code the protocol's error code. */
static JSValue run_code(const char *code, const char *name, int flags, int *err)
{
    JSValue fn = compile(code, name, flags);
    if (JS_IsException(fn)) {
        *err = compile_error_code();
        return fn;
    }
    *err = HL_LANG_ERR_SCRIPT;
    JSValue v = JS_EvalFunction(js_ctx, fn);
    if (JS_IsException(v)) return v;
    if ((flags & JS_EVAL_TYPE_MASK) == JS_EVAL_TYPE_MODULE || (flags & JS_EVAL_FLAG_ASYNC)) return settle(v);
    if (run_jobs()) {
        JS_FreeValue(js_ctx, v);
        return JS_EXCEPTION;
    }
    return v;
}

/* Sets scriptArgs to [name, ...argv] (as qjs: the script's name, then its arguments). */
static int set_script_args(const char *name, const char *argv_json)
{
    JSValue a = JS_ParseJSON(js_ctx, argv_json, strlen(argv_json), "<argv>");
    int64_t n = 0;
    if (JS_IsException(a)) return js_fail_exception(HL_LANG_ERR_NOT_JSON, "Run: argv_json is not valid JSON: ");
    int ok = JS_IsArray(js_ctx, a) > 0;
    JSValue len = JS_GetPropertyStr(js_ctx, a, "length");
    ok = ok && JS_ToInt64(js_ctx, &n, len) == 0;
    for (int64_t i = 0; ok && i < n; i++) {
        JSValue s = JS_GetPropertyUint32(js_ctx, a, (uint32_t)i);
        ok = JS_IsString(s);
        JS_FreeValue(js_ctx, s);
    }
    if (!ok) {
        JS_FreeValue(js_ctx, a);
        return js_fail(HL_LANG_ERR_NOT_JSON, "Run: argv_json must be a JSON array of strings");
    }
    JSValue args = JS_NewArray(js_ctx);
    JS_SetPropertyUint32(js_ctx, args, 0, JS_NewString(js_ctx, name));
    for (int64_t i = 0; i < n; i++)
        JS_SetPropertyUint32(js_ctx, args, (uint32_t)i + 1, JS_GetPropertyUint32(js_ctx, a, (uint32_t)i));
    JS_FreeValue(js_ctx, a);
    JSValue global = JS_GetGlobalObject(js_ctx);
    int r = JS_SetPropertyStr(js_ctx, global, "scriptArgs", args);
    JS_FreeValue(js_ctx, global);
    return r < 0 ? js_fail_exception(HL_LANG_ERR_SCRIPT, "") : 0;
}

/* A module's flags when name ends in .mjs or the code uses import/export (as qjs decides). */
static int script_flags(const char *code, const char *name)
{
    size_t n = strlen(name);
    int module = (n > 4 && strcmp(name + n - 4, ".mjs") == 0) || JS_DetectModule(code, strlen(code));
    return module ? JS_EVAL_TYPE_MODULE : JS_EVAL_TYPE_GLOBAL;
}

/* Run(code, name, argv_json) -> void */
static int fn_run(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    const char *code = a[0].v.buf.ptr, *name = a[1].v.buf.ptr, *argv_json = a[2].v.buf.ptr;
    int rc = set_script_args(name, *argv_json ? argv_json : "[]"), err;
    if (rc) return rc;
    JSValue v = run_code(code, name, script_flags(code, name), &err);
    if (JS_IsException(v)) return js_fail_exception(err, "");
    JS_FreeValue(js_ctx, v);
    return 0;
}

/* Load(code, name) -> void: the same as Run without arguments. */
static int fn_load(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    const char *code = a[0].v.buf.ptr, *name = a[1].v.buf.ptr;
    int err;
    JSValue v = run_code(code, name, script_flags(code, name), &err);
    if (JS_IsException(v)) return js_fail_exception(err, "");
    JS_FreeValue(js_ctx, v);
    return 0;
}

/* Sets *ret to a copy of text in result memory. */
static int ret_string(hl_value *ret, const char *text, size_t n)
{
    char *p = hl_ret_alloc(n + 1);
    if (!p) return js_fail(HL_LANG_ERR_SCRIPT, "InternalError: out of memory (result of %zu bytes)", n);
    memcpy(p, text, n + 1);
    ret->type = HL_STRING;
    ret->v.buf.ptr = p;
    ret->v.buf.len = n;
    return 0;
}

/* Returns v's JSON as *ret (takes v), or fails with HL_LANG_ERR_NOT_JSON and what. */
static int ret_json(JSValue v, hl_value *ret, const char *what)
{
    char *why, *json = js_to_json(js_ctx, v, &why);
    JS_FreeValue(js_ctx, v);
    if (!json) {
        int rc = js_fail(HL_LANG_ERR_NOT_JSON, "%s has no JSON form: %s", what, why ? why : "out of memory");
        free(why);
        return rc;
    }
    int rc = ret_string(ret, json, strlen(json));
    free(json);
    return rc;
}

/* Eval(code) -> string: the completion value of code as a global script, as JSON. */
static int fn_eval(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    int err;
    JSValue v = run_code(a[0].v.buf.ptr, "<eval>", JS_EVAL_TYPE_GLOBAL, &err);
    if (JS_IsException(v)) return js_fail_exception(err, "");
    return ret_json(v, ret, "Eval: the value");
}

/* Whether the pending SyntaxError is at the end of code (or at a template literal or a
 * comment that runs to the end): more lines could complete the statement. */
static int incomplete(const char *code)
{
    JSValue ex = JS_GetException(js_ctx);
    JSValue l = JS_GetPropertyStr(js_ctx, ex, "lineNumber"), c = JS_GetPropertyStr(js_ctx, ex, "columnNumber");
    int32_t line = 0, col = 0;
    if (JS_ToInt32(js_ctx, &line, l) || JS_ToInt32(js_ctx, &col, c)) JS_FreeValue(js_ctx, JS_GetException(js_ctx));
    JS_FreeValue(js_ctx, l);
    JS_FreeValue(js_ctx, c);
    JS_Throw(js_ctx, ex);
    const char *p = code;
    for (int32_t i = 1; i < line && p; i++)
        if ((p = strchr(p, '\n'))) p++;
    if (!p || line < 1 || col < 1) return 0;
    for (int32_t i = 1; i < col && *p && *p != '\n'; i++) p++;
    if (*p == '`' || (p[0] == '/' && p[1] == '*')) return 1;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return *p == 0;
}

/* Repl(line) -> string: the line's value as the REPL shows it ("" for undefined). The line
 * may use await (as in qjs's REPL); a line that stops inside a statement fails with
 * HL_LANG_ERR_INCOMPLETE (the REPL sends it again with the next line). */
static int fn_repl(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    int err;
    JSValue r = run_code(a[0].v.buf.ptr, "<repl>", JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_ASYNC, &err);
    if (JS_IsException(r) && err == HL_LANG_ERR_SYNTAX && incomplete(a[0].v.buf.ptr)) err = HL_LANG_ERR_INCOMPLETE;
    if (JS_IsException(r)) return js_fail_exception(err, "");
    /* An async eval fulfils with {value: completion value}. */
    JSValue v = JS_GetPropertyStr(js_ctx, r, "value");
    JS_FreeValue(js_ctx, r);
    if (JS_IsException(v)) return js_fail_exception(HL_LANG_ERR_SCRIPT, "");
    if (JS_IsUndefined(v)) return ret_string(ret, "", 0);
    const char *s = js_inspect(js_ctx, v);
    JS_FreeValue(js_ctx, v);
    if (!s) return js_fail_exception(HL_LANG_ERR_SCRIPT, "");
    int rc = ret_string(ret, s, strlen(s));
    JS_FreeCString(js_ctx, s);
    return rc;
}

/* Handle(handler, event_json) -> string: calls the global function handler with the parsed
 * event; a returned promise is settled; the result as JSON. */
static int fn_handle(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    const char *name = a[0].v.buf.ptr, *event = a[1].v.buf.ptr;
    char what[HL_MAX_NAME + 64];
    JSValue global = JS_GetGlobalObject(js_ctx), fn = JS_GetPropertyStr(js_ctx, global, name);
    JS_FreeValue(js_ctx, global);
    if (JS_IsException(fn)) return js_fail_exception(HL_LANG_ERR_SCRIPT, "");
    if (!JS_IsFunction(js_ctx, fn)) {
        JS_FreeValue(js_ctx, fn);
        return js_fail(HL_LANG_ERR_NO_HANDLER, "Handle: no global function '%s'", name);
    }
    JSValue ev = JS_ParseJSON(js_ctx, event, strlen(event), "<event>");
    if (JS_IsException(ev)) {
        JS_FreeValue(js_ctx, fn);
        return js_fail_exception(HL_LANG_ERR_NOT_JSON, "Handle: the event is not valid JSON: ");
    }
    JSValue r = JS_Call(js_ctx, fn, JS_UNDEFINED, 1, (JSValueConst *)&ev);
    JS_FreeValue(js_ctx, fn);
    JS_FreeValue(js_ctx, ev);
    if (!JS_IsException(r) && JS_PromiseState(js_ctx, r) != (JSPromiseStateEnum)-1) r = settle(r);
    else if (!JS_IsException(r) && run_jobs()) {
        JS_FreeValue(js_ctx, r);
        r = JS_EXCEPTION;
    }
    if (JS_IsException(r)) return js_fail_exception(HL_LANG_ERR_SCRIPT, "");
    snprintf(what, sizeof what, "Handle: the result of '%s'", name);
    return ret_json(r, ret, what);
}

/* LastError() -> string */
static int fn_last_error(const hl_value *a, int argc, hl_value *ret)
{
    const char *e = js_last_error();
    return ret_string(ret, e, strlen(e));
}

/* ---- ES modules from mapped files ---- */

/* Reads the file name (a path the SDK's open resolves: a mapped file's label) as a module. */
static JSModuleDef *load_module(JSContext *ctx, const char *name, void *opaque)
{
    js_buf b = { 0 };
    char chunk[4096];
    ssize_t n = 0;
    int fd = open(name, O_RDONLY);
    if (fd >= 0) {
        while ((n = read(fd, chunk, sizeof chunk)) > 0) js_buf_add(&b, chunk, (size_t)n);
        close(fd);
    }
    if (fd < 0 || n < 0 || b.failed) {
        int e = fd < 0 || n < 0 ? errno : ENOMEM;
        free(b.p);
        JS_ThrowReferenceError(ctx, "could not load module '%s': %s", name, strerror(e));
        return NULL;
    }
    const char *text = JS_BUF_TEXT(&b);
    JSValue fn = JS_Eval(ctx, text, b.len, name, JS_EVAL_TYPE_MODULE | JS_EVAL_FLAG_COMPILE_ONLY);
    free(b.p);
    if (JS_IsException(fn)) return NULL;
    JSModuleDef *m = JS_VALUE_GET_PTR(fn);
    JS_FreeValue(ctx, fn);
    return m;
}

void hl_guest_main(void)
{
    const struct hl_peb *peb = hl_guest_peb();
    js_rt = JS_NewRuntime();
    if (!js_rt) hl_abort(HL_LANG_ERR_SCRIPT, "JavaScript guest: cannot create the QuickJS runtime");
    /* A little under the heap, so running out is JavaScript's "out of memory" while the
     * guest's own C code still has room. */
    size_t reserve = peb->heap_size / 8 > 256 * 1024 ? peb->heap_size / 8 : 256 * 1024;
    JS_SetMemoryLimit(js_rt, peb->heap_size > 2 * reserve ? peb->heap_size - reserve : peb->heap_size / 2);
    enter();
    js_ctx = JS_NewContext(js_rt);
    if (!js_ctx) hl_abort(HL_LANG_ERR_SCRIPT, "JavaScript guest: cannot create the QuickJS context (heap too small?)");
    JS_SetModuleLoaderFunc(js_rt, NULL, load_module, NULL);
    JS_SetHostPromiseRejectionTracker(js_rt, track_rejection, NULL);
    if (js_globals_init(js_ctx)) {
        js_fail_exception(HL_LANG_ERR_SCRIPT, "");
        hl_abort(HL_LANG_ERR_SCRIPT, "JavaScript guest: cannot set up the globals: %s", js_last_error());
    }
    enter();
    hl_guest_register(HL_LANG_FN_RUN, fn_run, HL_VOID, 3, HL_STRING, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_EVAL, fn_eval, HL_STRING, 1, HL_STRING);
    hl_guest_register(HL_LANG_FN_REPL, fn_repl, HL_STRING, 1, HL_STRING);
    hl_guest_register(HL_LANG_FN_LOAD, fn_load, HL_VOID, 2, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_HANDLE, fn_handle, HL_STRING, 2, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_LAST_ERROR, fn_last_error, HL_STRING, 0);
}
