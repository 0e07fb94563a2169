/* js_guest.h - what the JavaScript guest's files share: the one interpreter, text buffers,
 * error reporting and the globals (console, print, host) the guest adds. */
#ifndef HL_JS_GUEST_H
#define HL_JS_GUEST_H

#include <stddef.h>

#include "quickjs.h"

/* The guest's one runtime and context, created by hl_guest_main. */
extern JSRuntime *js_rt;
extern JSContext *js_ctx;

/* A growing text buffer: p is malloc'd and NUL-terminated once anything was added; failed
 * is set (and nothing more is added) once an allocation failed. */
typedef struct js_buf {
    char *p;
    size_t len, cap;
    int failed;
} js_buf;
/* The text, or NULL when an allocation failed. */
#define JS_BUF_TEXT(b) ((b)->failed ? NULL : (b)->p ? (b)->p : "")
void js_buf_add(js_buf *b, const char *s, size_t n);
void js_buf_str(js_buf *b, const char *s);
/* Appends s as a JSON string literal (quotes and escapes). */
void js_buf_json(js_buf *b, const char *s, size_t n);

/* Takes the pending exception, remembers it for LastError and fails the current call with
 * code and "prefix" + the exception as qjs prints it (toString, then the stack). */
int js_fail_exception(int code, const char *prefix);
/* The next js_fail_exception's exception is an unhandled promise rejection (its message
 * then starts "Possibly unhandled promise rejection: ", as qjs prints it). */
void js_note_unhandled(void);
/* Fails the current call with code and a message of ours; LastError gets type "Error". */
int js_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* LastError's JSON ("{}" when no call failed since the last restore). */
const char *js_last_error(void);

/* std.exit(n) was called (its uncatchable error is unwinding): 1 and *status = n, else 0. */
int js_exit_pending(int *status);
void js_exit_clear(void);

/* Adds console, print and host to the global object, the module std (exit, gc), and
 * compiles the guest's JavaScript helpers. Returns 0, or -1 with a JS exception pending. */
int js_globals_init(JSContext *ctx);
/* The value as the REPL shows it (strings quoted, objects inspected); NULL with an exception
 * pending on failure. JS_FreeCString the result. */
const char *js_inspect(JSContext *ctx, JSValueConst v);
/* JSON text of v (JSON.stringify, where NaN and Infinity have no JSON form either): a
 * malloc'd string, or NULL with *why set to a malloc'd reason. */
char *js_to_json(JSContext *ctx, JSValueConst v, char **why);

#endif
