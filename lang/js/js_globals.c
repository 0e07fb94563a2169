/* js_globals.c - the globals the JavaScript guest adds to QuickJS: console and print (to the
 * sandbox's stdout and stderr), host (the embedder's host functions, checked against their
 * signatures), and the helpers the protocol needs (inspect, JSON without NaN). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hyperlight_guest.h"
#include "js_guest.h"

/* The guest's helpers, written in JavaScript: a function of the C functions it needs that
 * returns [inspect, jsonReplacer, host]. Our own code (docs/languages.md describes what the
 * inspect shows). */
static const char prelude[] =
    "(function (callHost, hasHost) {\n"
    "  'use strict';\n"
    "  const ident = /^[A-Za-z_$][A-Za-z0-9_$]*$/;\n"
    "  function key(k) { return ident.test(k) ? k : JSON.stringify(k); }\n"
    "  function list(open, parts, close) {\n"
    "    return parts.length ? open + ' ' + parts.join(', ') + ' ' + close : open + close;\n"
    "  }\n"
    "  function inspect(v, seen, depth) {\n"
    "    switch (typeof v) {\n"
    "    case 'string': return JSON.stringify(v);\n"
    "    case 'bigint': return v + 'n';\n"
    "    case 'symbol': return String(v);\n"
    "    case 'function': return '[Function' + (v.name ? ' ' + v.name : '') + ']';\n"
    "    case 'number': return Object.is(v, -0) ? '-0' : String(v);\n"
    "    case 'object': break;\n"
    "    default: return String(v);\n"
    "    }\n"
    "    if (v === null) return 'null';\n"
    "    if (seen.includes(v)) return '[Circular]';\n"
    "    if (v instanceof Error) return String(v);\n"
    "    if (v instanceof RegExp) return String(v);\n"
    "    if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();\n"
    "    if (v instanceof Promise) return 'Promise {}';\n"
    "    const isArr = Array.isArray(v), isView = ArrayBuffer.isView(v) && !(v instanceof DataView);\n"
    "    if (depth > 4) return isArr ? '[Array]' : '[Object]';\n"
    "    seen.push(v);\n"
    "    try {\n"
    "      const parts = [];\n"
    "      const sub = (x) => inspect(x, seen, depth + 1);\n"
    "      if (isArr || isView) {\n"
    "        const n = Math.min(v.length, 100);\n"
    "        for (let i = 0; i < n; i++) parts.push(i in v ? sub(v[i]) : '<empty>');\n"
    "        if (v.length > n) parts.push('... ' + (v.length - n) + ' more items');\n"
    "        const pre = isArr ? '' : v.constructor.name + '(' + v.length + ') ';\n"
    "        return pre + list('[', parts, ']');\n"
    "      }\n"
    "      if (v instanceof Map) {\n"
    "        for (const [k, x] of v) parts.push(sub(k) + ' => ' + sub(x));\n"
    "        return 'Map(' + v.size + ') ' + list('{', parts, '}');\n"
    "      }\n"
    "      if (v instanceof Set) {\n"
    "        for (const x of v) parts.push(sub(x));\n"
    "        return 'Set(' + v.size + ') ' + list('{', parts, '}');\n"
    "      }\n"
    "      for (const k of Object.keys(v)) parts.push(key(k) + ': ' + sub(v[k]));\n"
    "      return list('{', parts, '}');\n"
    "    } finally {\n"
    "      seen.pop();\n"
    "    }\n"
    "  }\n"
    "  function replacer(k, v) {\n"
    "    if (typeof v === 'number' && !isFinite(v))\n"
    "      throw new TypeError(String(v) + ' has no JSON form');\n"
    "    return v;\n"
    "  }\n"
    "  const fns = new Map();\n"
    "  function hostFn(name) {\n"
    "    let f = fns.get(name);\n"
    "    if (!f) {\n"
    "      f = { [name]: function (...args) { return callHost(name, args); } }[name];\n"
    "      fns.set(name, f);\n"
    "    }\n"
    "    return f;\n"
    "  }\n"
    "  const host = new Proxy({}, {\n"
    "    get(t, k) { return typeof k === 'string' ? hostFn(k) : undefined; },\n"
    "    has(t, k) { return typeof k === 'string' && hasHost(k); },\n"
    "    set() { throw new TypeError('host is read-only'); },\n"
    "    defineProperty() { throw new TypeError('host is read-only'); },\n"
    "  });\n"
    "  return [(v) => inspect(v, [], 0), replacer, host];\n"
    "})\n";

static JSValue inspect_fn, replacer_fn;

static const char *type_names[] = { "void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes" };

/* ---- console and print ---- */

/* print / console.*: the arguments separated by spaces, strings as they are, other values
 * inspected; one line to fd (magic: 1 stdout, 2 stderr). */
static JSValue js_print(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv, int fd)
{
    js_buf b = { 0 };
    for (int i = 0; i < argc; i++) {
        const char *s = JS_IsString(argv[i]) ? JS_ToCString(ctx, argv[i]) : js_inspect(ctx, argv[i]);
        if (!s) {
            free(b.p);
            return JS_EXCEPTION;
        }
        if (i) js_buf_add(&b, " ", 1);
        js_buf_str(&b, s);
        JS_FreeCString(ctx, s);
    }
    js_buf_add(&b, "\n", 1);
    if (b.failed) {
        free(b.p);
        return JS_ThrowOutOfMemory(ctx);
    }
    write(fd, b.p, b.len);
    free(b.p);
    return JS_UNDEFINED;
}

/* ---- host functions ---- */

/* What a value is, for messages: its typeof, with null and arrays told apart. */
static const char *js_kind(JSContext *ctx, JSValueConst v)
{
    if (JS_IsNull(v)) return "null";
    if (JS_IsString(v)) return "string";
    if (JS_IsNumber(v)) return "number";
    if (JS_IsBool(v)) return "boolean";
    if (JS_IsBigInt(ctx, v)) return "bigint";
    if (JS_IsUndefined(v)) return "undefined";
    if (JS_IsSymbol(v)) return "symbol";
    if (JS_IsFunction(ctx, v)) return "function";
    if (JS_IsArray(ctx, v) > 0) return "array";
    return "object";
}

static JSValue bad_arg(JSContext *ctx, const char *name, int i, hl_type t, JSValueConst v)
{
    return JS_ThrowTypeError(ctx, "host.%s: argument %d must be %s, got %s", name, i + 1, type_names[t],
                             js_kind(ctx, v));
}

/* An integer argument of type t in [lo, hi] (numbers that are integers, or BigInts). */
static int int_arg(JSContext *ctx, JSValueConst v, hl_type t, const char *name, int i, hl_value *out)
{
    static const double lo[] = { 0, -2147483648.0, 0, -9223372036854775808.0, 0 };
    static const double hi[] = { 0, 2147483647.0, 4294967295.0, 9223372036854775807.0, 18446744073709551615.0 };
    double d;
    if (JS_IsBigInt(ctx, v)) {
        /* JS_ToBigInt64 wraps modulo 2^64: the value fits when it prints the same. */
        int64_t s;
        char want[32];
        if (JS_ToBigInt64(ctx, &s, v)) return -1;
        const char *txt = JS_ToCString(ctx, v);
        if (!txt) return -1;
        if (t == HL_U64) snprintf(want, sizeof want, "%llu", (unsigned long long)s);
        else snprintf(want, sizeof want, "%lld", (long long)s);
        int exact = strcmp(txt, want) == 0;
        JS_FreeCString(ctx, txt);
        if (!exact || (t <= HL_U32 && ((double)s < lo[t] || (double)s > hi[t]))) goto range;
        out->v.i64 = s;
        if (t == HL_I32) out->v.i32 = (int32_t)s;
        if (t == HL_U32) out->v.u32 = (uint32_t)s;
        return 0;
    }
    if (!JS_IsNumber(v)) {
        bad_arg(ctx, name, i, t, v);
        return -1;
    }
    JS_ToFloat64(ctx, &d, v);
    if (d != floor(d) || d < lo[t] || d > hi[t] || (t >= HL_I64 && d == hi[t])) goto range;
    if (t == HL_I32) out->v.i32 = (int32_t)d;
    if (t == HL_U32) out->v.u32 = (uint32_t)d;
    if (t == HL_I64) out->v.i64 = (int64_t)d;
    if (t == HL_U64) out->v.u64 = (uint64_t)d;
    return 0;
range:;
    const char *s = JS_ToCString(ctx, v);
    JS_ThrowRangeError(ctx, "host.%s: argument %d must be %s, got %s%s", name, i + 1, type_names[t], s ? s : "?",
                       JS_IsBigInt(ctx, v) ? "n" : "");
    JS_FreeCString(ctx, s);
    return -1;
}

/* Converts argument i to type t; strings are JS_FreeCString'd by the caller (cstr[i]). */
static int to_arg(JSContext *ctx, JSValueConst v, hl_type t, const char *name, int i, hl_value *out, const char **cstr)
{
    out->type = t;
    switch (t) {
    case HL_I32:
    case HL_U32:
    case HL_I64:
    case HL_U64: return int_arg(ctx, v, t, name, i, out);
    case HL_F32:
    case HL_F64: {
        double d;
        if (!JS_IsNumber(v)) break;
        JS_ToFloat64(ctx, &d, v);
        if (t == HL_F32) out->v.f32 = (float)d;
        else out->v.f64 = d;
        return 0;
    }
    case HL_BOOL:
        if (!JS_IsBool(v)) break;
        out->v.b = JS_ToBool(ctx, v);
        return 0;
    case HL_STRING: {
        size_t n;
        if (!JS_IsString(v)) break;
        *cstr = JS_ToCStringLen(ctx, &n, v);
        if (!*cstr) return -1;
        if (strlen(*cstr) != n) {
            JS_ThrowTypeError(ctx, "host.%s: argument %d must be string, got a string with a NUL character", name,
                              i + 1);
            return -1;
        }
        out->v.buf.ptr = *cstr;
        out->v.buf.len = n;
        return 0;
    }
    case HL_BYTES: {
        size_t off = 0, n = 0, per = 1;
        uint8_t *p;
        JSValue ab = JS_GetTypedArrayBuffer(ctx, v, &off, &n, &per);
        if (JS_IsException(ab)) {
            JS_FreeValue(ctx, JS_GetException(ctx));
            p = JS_GetArrayBuffer(ctx, &n, v);
            if (!p) {
                JS_FreeValue(ctx, JS_GetException(ctx));
                break;
            }
            off = 0;
        } else {
            size_t total;
            p = JS_GetArrayBuffer(ctx, &total, ab);
            JS_FreeValue(ctx, ab);
            if (!p) return -1;
        }
        out->v.buf.ptr = p + off;
        out->v.buf.len = n;
        return 0;
    }
    default: break;
    }
    bad_arg(ctx, name, i, t, v);
    return -1;
}

/* The host function's result as a JS value (64-bit integers beyond 2^53 as BigInt). */
static JSValue from_ret(JSContext *ctx, hl_value *r)
{
    JSValue v = JS_UNDEFINED;
    switch (r->type) {
    case HL_I32: v = JS_NewInt32(ctx, r->v.i32); break;
    case HL_U32: v = JS_NewUint32(ctx, r->v.u32); break;
    case HL_I64:
        v = (r->v.i64 > -(1LL << 53) && r->v.i64 < (1LL << 53)) ? JS_NewInt64(ctx, r->v.i64)
                                                                : JS_NewBigInt64(ctx, r->v.i64);
        break;
    case HL_U64:
        v = r->v.u64 < (1ULL << 53) ? JS_NewInt64(ctx, (int64_t)r->v.u64) : JS_NewBigUint64(ctx, r->v.u64);
        break;
    case HL_F32: v = JS_NewFloat64(ctx, r->v.f32); break;
    case HL_F64: v = JS_NewFloat64(ctx, r->v.f64); break;
    case HL_BOOL: v = JS_NewBool(ctx, r->v.b); break;
    case HL_STRING: v = JS_NewStringLen(ctx, r->v.buf.ptr, r->v.buf.len); break;
    case HL_BYTES: {
        JSValue ab = JS_NewArrayBufferCopy(ctx, r->v.buf.ptr, r->v.buf.len);
        if (JS_IsException(ab)) return ab;
        v = JS_NewTypedArray(ctx, 1, (JSValueConst *)&ab, JS_TYPED_ARRAY_UINT8);
        JS_FreeValue(ctx, ab);
        break;
    }
    default: break;
    }
    return v;
}

/* Throws a plain Error with the message. */
static void throw_error(JSContext *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void throw_error(JSContext *ctx, const char *fmt, ...)
{
    char msg[HL_MAX_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    JSValue e = JS_NewError(ctx);
    if (JS_IsException(e)) return;
    JS_DefinePropertyValueStr(ctx, e, "message", JS_NewString(ctx, msg), JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
    JS_Throw(ctx, e);
}

static const hl_host_fn_info *find_host_fn(JSContext *ctx, const char *name)
{
    if (hl_host_fn_count() < 0) {
        JS_ThrowInternalError(ctx, "host: the host function table cannot be read: %s", hl_host_error());
        return NULL;
    }
    const hl_host_fn_info *f = hl_host_fn_lookup(name);
    if (!f) JS_ThrowTypeError(ctx, "host.%s: no such host function", name);
    return f;
}

/* callHost(name, args): checks args against the signature, calls, converts the result. */
static JSValue js_call_host(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *name = JS_ToCString(ctx, argv[0]);
    JSValue res = JS_EXCEPTION, args[HL_MAX_ARGS];
    const char *cstr[HL_MAX_ARGS] = { 0 };
    hl_value vals[HL_MAX_ARGS], ret;
    int64_t n = 0, got = 0;
    if (!name) return JS_EXCEPTION;
    const hl_host_fn_info *f = find_host_fn(ctx, name);
    if (!f) goto out;
    JSValue len = JS_GetPropertyStr(ctx, argv[1], "length");
    int bad = JS_ToInt64(ctx, &n, len);
    JS_FreeValue(ctx, len);
    if (bad) goto out;
    if (n != f->nparams) {
        JS_ThrowTypeError(ctx, "host.%s: expected %d argument%s, got %d", name, f->nparams, f->nparams == 1 ? "" : "s",
                          (int)n);
        goto out;
    }
    for (; got < n; got++) {
        args[got] = JS_GetPropertyUint32(ctx, argv[1], (uint32_t)got);
        if (to_arg(ctx, args[got], f->params[got], name, (int)got, &vals[got], &cstr[got])) {
            got++;
            goto out;
        }
    }
    memset(&ret, 0, sizeof ret);
    if (hl_call_host(name, f->ret, vals, (int)n, &ret) != 0) {
        throw_error(ctx, "host.%s: %s", name, hl_host_error());
        goto out;
    }
    res = from_ret(ctx, &ret);
    hl_value_free(&ret);
out:
    for (int64_t i = 0; i < got; i++) {
        JS_FreeCString(ctx, cstr[i]);
        JS_FreeValue(ctx, args[i]);
    }
    JS_FreeCString(ctx, name);
    return res;
}

/* hasHost(name): whether the host has a function of that name. */
static JSValue js_has_host(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    const char *name = JS_ToCString(ctx, argv[0]);
    if (!name) return JS_EXCEPTION;
    int has = hl_host_fn_count() >= 0 && hl_host_fn_lookup(name) != NULL;
    JS_FreeCString(ctx, name);
    return JS_NewBool(ctx, has);
}

/* ---- the module std: exit and gc, as in qjs ---- */

static int exit_pending, exit_status;

int js_exit_pending(int *status)
{
    *status = exit_status;
    return exit_pending;
}

void js_exit_clear(void) { exit_pending = 0; }

/* std.exit(n): ends the script with status n through an error no catch stops; the call
 * fails with HL_LANG_ERR_EXIT. */
static JSValue js_std_exit(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    int32_t n = 0;
    if (argc > 0 && JS_ToInt32(ctx, &n, argv[0])) return JS_EXCEPTION;
    exit_pending = 1;
    exit_status = n;
    JSValue e = JS_NewError(ctx);
    if (JS_IsException(e)) return e;
    JS_SetUncatchableError(ctx, e, 1);
    return JS_Throw(ctx, e);
}

static JSValue js_std_gc(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv)
{
    JS_RunGC(JS_GetRuntime(ctx));
    return JS_UNDEFINED;
}

static const JSCFunctionListEntry std_funcs[] = {
    JS_CFUNC_DEF("exit", 1, js_std_exit),
    JS_CFUNC_DEF("gc", 0, js_std_gc),
};

static int std_init(JSContext *ctx, JSModuleDef *m)
{
    return JS_SetModuleExportList(ctx, m, std_funcs, sizeof std_funcs / sizeof std_funcs[0]);
}

/* ---- setup and the protocol's helpers ---- */

static int set_global_fn(JSContext *ctx, JSValueConst obj, const char *name, int fd)
{
    return JS_SetPropertyStr(ctx, obj, name, JS_NewCFunctionMagic(ctx, js_print, name, 1, JS_CFUNC_generic_magic, fd));
}

int js_globals_init(JSContext *ctx)
{
    JSValue global = JS_GetGlobalObject(ctx), console = JS_NewObject(ctx);
    JSValue mk = JS_Eval(ctx, prelude, sizeof prelude - 1, "<hyperlight>", JS_EVAL_TYPE_GLOBAL);
    JSValue fns[2] = { JS_NewCFunction(ctx, js_call_host, "callHost", 2),
                       JS_NewCFunction(ctx, js_has_host, "hasHost", 1) };
    JSValue r = JS_IsException(mk) ? JS_EXCEPTION : JS_Call(ctx, mk, JS_UNDEFINED, 2, (JSValueConst *)fns);
    int rc = -1;
    if (JS_IsException(r)) goto out;
    inspect_fn = JS_GetPropertyUint32(ctx, r, 0);
    replacer_fn = JS_GetPropertyUint32(ctx, r, 1);
    if (JS_SetPropertyStr(ctx, global, "host", JS_GetPropertyUint32(ctx, r, 2)) < 0) goto out;
    if (set_global_fn(ctx, console, "log", 1) < 0 || set_global_fn(ctx, console, "info", 1) < 0 ||
        set_global_fn(ctx, console, "debug", 1) < 0 || set_global_fn(ctx, console, "error", 2) < 0 ||
        set_global_fn(ctx, console, "warn", 2) < 0 || set_global_fn(ctx, global, "print", 1) < 0)
        goto out;
    if (JS_SetPropertyStr(ctx, global, "console", JS_DupValue(ctx, console)) < 0) goto out;
    if (JS_SetPropertyStr(ctx, global, "scriptArgs", JS_NewArray(ctx)) < 0) goto out;
    JSModuleDef *std = JS_NewCModule(ctx, "std", std_init);
    if (!std || JS_AddModuleExportList(ctx, std, std_funcs, sizeof std_funcs / sizeof std_funcs[0]) < 0) goto out;
    rc = 0;
out:
    JS_FreeValue(ctx, r);
    JS_FreeValue(ctx, mk);
    JS_FreeValue(ctx, fns[0]);
    JS_FreeValue(ctx, fns[1]);
    JS_FreeValue(ctx, console);
    JS_FreeValue(ctx, global);
    return rc;
}

const char *js_inspect(JSContext *ctx, JSValueConst v)
{
    JSValue s = JS_Call(ctx, inspect_fn, JS_UNDEFINED, 1, &v);
    if (JS_IsException(s)) return NULL;
    const char *r = JS_ToCString(ctx, s);
    JS_FreeValue(ctx, s);
    return r;
}

char *js_to_json(JSContext *ctx, JSValueConst v, char **why)
{
    const char *kind = JS_IsUndefined(v)       ? "undefined"
                       : JS_IsFunction(ctx, v) ? "a function"
                       : JS_IsSymbol(v)        ? "a symbol"
                                               : NULL;
    char *res = NULL;
    *why = NULL;
    if (kind) {
        *why = strdup(kind);
        return NULL;
    }
    JSValue s = JS_JSONStringify(ctx, v, replacer_fn, JS_UNDEFINED);
    if (JS_IsException(s)) {
        JSValue ex = JS_GetException(ctx);
        const char *t = JS_ToCString(ctx, ex);
        *why = strdup(t ? t : "InternalError: out of memory");
        JS_FreeCString(ctx, t);
        JS_FreeValue(ctx, ex);
        return NULL;
    }
    if (JS_IsUndefined(s)) {
        *why = strdup("undefined");
        return NULL;
    }
    size_t n;
    const char *t = JS_ToCStringLen(ctx, &n, s);
    if (t) res = strndup(t, n);
    if (!res) *why = strdup("InternalError: out of memory");
    JS_FreeCString(ctx, t);
    JS_FreeValue(ctx, s);
    return res;
}
