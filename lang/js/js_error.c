/* js_error.c - the JavaScript guest's errors: call failures with the exception as qjs prints
 * it, LastError's JSON, and the text buffer they are built in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight/lang.h"
#include "hyperlight_guest.h"
#include "js_guest.h"

/* LastError's text: malloc'd JSON, NULL for none. Guest memory, so a restore brings back
 * the snapshot's (none, unless a call failed before the snapshot). */
static char *last_error;

void js_buf_add(js_buf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void js_buf_str(js_buf *b, const char *s) { js_buf_add(b, s, strlen(s)); }

void js_buf_json(js_buf *b, const char *s, size_t n)
{
    js_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            js_buf_add(b, esc, 2);
        } else if (c == '\n') {
            js_buf_add(b, "\\n", 2);
        } else if (c == '\t') {
            js_buf_add(b, "\\t", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            js_buf_add(b, esc, 6);
        } else {
            js_buf_add(b, (const char *)&s[i], 1);
        }
    }
    js_buf_add(b, "\"", 1);
}

/* Replaces LastError with {"type","message","traceback"}. */
static void remember(const char *type, const char *message, const char *traceback)
{
    js_buf b = { 0 };
    js_buf_str(&b, "{\"type\":");
    js_buf_json(&b, type, strlen(type));
    js_buf_str(&b, ",\"message\":");
    js_buf_json(&b, message, strlen(message));
    js_buf_str(&b, ",\"traceback\":");
    js_buf_json(&b, traceback, strlen(traceback));
    js_buf_str(&b, "}");
    free(last_error);
    last_error = b.failed ? NULL : b.p;
    if (b.failed) free(b.p);
}

const char *js_last_error(void) { return last_error ? last_error : "{}"; }

int js_fail(int code, const char *fmt, ...)
{
    char msg[HL_MAX_MESSAGE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    remember("Error", msg, "");
    return hl_error(code, "%s", msg);
}

/* A property of ex as a C string ("" when absent or not convertible). */
static const char *prop_text(JSContext *ctx, JSValueConst ex, const char *name)
{
    JSValue v = JS_GetPropertyStr(ctx, ex, name);
    const char *s = NULL;
    if (JS_IsException(v)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
    } else if (!JS_IsUndefined(v)) {
        s = JS_ToCString(ctx, v);
        if (!s) JS_FreeValue(ctx, JS_GetException(ctx));
    }
    JS_FreeValue(ctx, v);
    return s;
}

/* QuickJS throws null when it has no memory left for the error object: null at the memory
 * limit is taken for that (a script's own `throw null` elsewhere stays null). */
static int out_of_memory(JSContext *ctx, JSValueConst ex)
{
    JSMemoryUsage u;
    if (!JS_IsNull(ex)) return 0;
    JS_ComputeMemoryUsage(JS_GetRuntime(ctx), &u);
    return u.malloc_limit > 0 && u.malloc_size + 64 * 1024 >= u.malloc_limit;
}

static int unhandled;

void js_note_unhandled(void) { unhandled = 1; }

int js_fail_exception(int code, const char *prefix)
{
    if (unhandled && !*prefix) prefix = "Possibly unhandled promise rejection: ";
    unhandled = 0;
    JSContext *ctx = js_ctx;
    JSValue ex = JS_GetException(ctx);
    int status;
    if (js_exit_pending(&status)) {
        JS_FreeValue(ctx, ex);
        js_exit_clear();
        char msg[32];
        snprintf(msg, sizeof msg, "exit %d", status);
        remember("exit", msg, "");
        return hl_error(HL_LANG_ERR_EXIT, "%s", msg);
    }
    int is_error = JS_IsError(ctx, ex);
    const char *text = out_of_memory(ctx, ex) ? NULL : JS_ToCString(ctx, ex);
    if (!text) JS_FreeValue(ctx, JS_GetException(ctx));
    const char *stack = is_error ? prop_text(ctx, ex, "stack") : NULL;
    const char *name = is_error ? prop_text(ctx, ex, "name") : NULL;
    const char *message = is_error ? prop_text(ctx, ex, "message") : NULL;
    /* An exception that cannot even be turned into text is the memory running out. */
    const char *shown = text ? text : "InternalError: out of memory";
    js_buf b = { 0 };
    js_buf_str(&b, prefix);
    js_buf_str(&b, shown);
    if (stack && *stack) {
        size_t n = strlen(stack);
        while (n && stack[n - 1] == '\n') n--;
        js_buf_add(&b, "\n", 1);
        js_buf_add(&b, stack, n);
    }
    const char *type = name ? name : (text ? "Error" : "InternalError");
    if (!is_error && text) type = JS_IsObject(ex) ? "object" : "value";
    remember(type, message ? message : text ? text : "out of memory", stack ? stack : "");
    int rc = b.failed ? hl_error(code, "%s%s", prefix, shown) : hl_error(code, "%s", b.p);
    free(b.p);
    JS_FreeCString(ctx, text);
    JS_FreeCString(ctx, stack);
    JS_FreeCString(ctx, name);
    JS_FreeCString(ctx, message);
    JS_FreeValue(ctx, ex);
    return rc;
}
