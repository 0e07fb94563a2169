/* python_guest.c - the Python guest (build/guests/python.elf): MicroPython serving the
 * language-guest protocol (include/hyperlight/lang.h, docs/languages.md): Run, Eval, Repl,
 * Load, Handle and LastError, all in one __main__ module whose state lasts until a restore. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hyperlight/lang.h"
#include "hyperlight_guest.h"
#include "lang/python/hlpy_json.h"
#include "lang/python/mpy_port.h"
#include "py/compile.h"
#include "py/gc.h"
#include "py/objstr.h"
#include "py/repl.h"
#include "py/runtime.h"

#define HLPY_ABORT 70 /* hl_abort code of a broken interpreter (nlr_jump_fail, assert) */

extern const mp_obj_module_t hlpy_host_module;

/* An interpreter wants a deeper stack and a bigger heap than the SDK's defaults. */
HL_GUEST_DEFAULTS(1u << 20, 48u << 20);

/* The last failed call's error, in malloc memory (it must outlive the GC heap's churn), and
 * the snapshot generation it belongs to: after a restore LastError is {} again. */
static struct {
    char *type, *message, *traceback;
    uint64_t generation;
    bool set;
} last_error;
static uint64_t seen_generation;
static vstr_t *repl_out; /* Repl's capture of what the REPL shows, or NULL */

void hlpy_fatal(const char *what) { hl_abort(HLPY_ABORT, "%s", what); }

/* picolibc's assert() ends here: a broken interpreter invariant poisons the sandbox. */
void __assert_func(const char *file, int line, const char *func, const char *expr)
{
    hl_abort(HLPY_ABORT, "MicroPython: assertion \"%s\" failed: %s:%d (%s)", expr, file, line, func ? func : "?");
}

/* Called at the start of every guest function: a sandbox restored from a snapshot reseeds
 * random (the generator's state is part of the snapshot, so every copy would repeat it). */
static void enter(void)
{
    uint64_t g = hl_guest_generation();
    if (g == seen_generation) return;
    seen_generation = g;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t random = mp_import_name(MP_QSTR_random, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
        mp_call_function_0(mp_load_attr(random, MP_QSTR_seed));
        nlr_pop();
    }
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

/* A traceback longer than keep bytes (deep recursion prints one line per frame) keeps its
 * first and last keep / 2 bytes, so it fits: TB_KEEP for LastError (the default output
 * buffer), MSG_KEEP for the call's message (HL_MAX_MESSAGE, where the SDK cuts it), which
 * then still ends with the exception. */
#define TB_KEEP (32u << 10)
#define MSG_KEEP (HL_MAX_MESSAGE - 128)

static char *dup_traceback(const char *tb, size_t n, size_t keep)
{
    if (n <= keep) return dup_n(tb, n);
    char *d = malloc(keep + 96);
    if (!d) return NULL;
    size_t half = keep / 2;
    int k = snprintf(d, keep + 96, "%.*s\n  [... %zu bytes of traceback left out ...]\n", (int)half, tb, n - 2 * half);
    memcpy(d + k, tb + n - half, half);
    d[k + half] = 0;
    return d;
}

static int record_error(int code, const char *type, const char *message, size_t mlen, const char *tb, size_t tlen)
{
    free(last_error.type), free(last_error.message), free(last_error.traceback);
    last_error.type = dup_n(type, strlen(type));
    last_error.message = dup_n(message, mlen);
    last_error.traceback = dup_traceback(tb, tlen, TB_KEEP);
    last_error.generation = hl_guest_generation();
    last_error.set = true;
    if (tlen <= MSG_KEEP) return hl_error(code, "%.*s", (int)tlen, tb);
    char *short_tb = dup_traceback(tb, tlen, MSG_KEEP);
    int rc = hl_error(code, "%s", short_tb ? short_tb : "(no memory for the traceback)");
    free(short_tb);
    return rc;
}

/* Fails the call with exception exc: the message is the traceback as MicroPython prints it.
 * It is formatted into fixed buffers outside the GC heap, which may be full (a MemoryError);
 * one that does not fit is the exception's type and message alone. */
static int fail_exc(int code, mp_obj_t exc)
{
    static char tb_buf[1u << 20], msg_buf[HL_MAX_MESSAGE];
    vstr_t tb, msg;
    vstr_init_fixed_buf(&tb, sizeof tb_buf, tb_buf);
    vstr_init_fixed_buf(&msg, sizeof msg_buf, msg_buf);
    const char *type = qstr_str(mp_obj_get_type(exc)->name);
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        hlpy_exc_format(exc, &tb, &msg);
        nlr_pop();
    } else {
        int n = snprintf(tb_buf, sizeof tb_buf, "%s: %.*s", type, (int)msg.len, msg.buf);
        return record_error(code, type, msg.buf, msg.len, tb_buf, (size_t)n);
    }
    return record_error(code, type, msg.buf, msg.len, tb.buf, tb.len);
}

/* A failure that is no Python exception (no handler, bad arguments): "Type: message". */
static int fail_text(int code, const char *type, const char *fmt, const char *arg)
{
    char msg[512], tb[600];
    int n = snprintf(msg, sizeof msg, fmt, arg);
    int t = snprintf(tb, sizeof tb, "%s: %s", type, msg);
    return record_error(code, type, msg, (size_t)n, tb, (size_t)t);
}

static bool is_syntax_error(mp_obj_t exc)
{
    return mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(mp_obj_get_type(exc)), MP_OBJ_FROM_PTR(&mp_type_SyntaxError));
}

/* Fails the call with exception exc raised by running code: sys.exit(N) (SystemExit) is
 * HL_LANG_ERR_EXIT with the message "exit N", anything else HL_LANG_ERR_SCRIPT. */
static int fail_run(mp_obj_t exc)
{
    int code;
    if (!hlpy_system_exit(exc, &code)) return fail_exc(HL_LANG_ERR_SCRIPT, exc);
    char msg[24], tb[32];
    int n = snprintf(msg, sizeof msg, "%d", code), t = snprintf(tb, sizeof tb, "exit %d", code);
    return record_error(HL_LANG_ERR_EXIT, "SystemExit", msg, (size_t)n, tb, (size_t)t);
}

/* Compiles src as kind (a SyntaxError is HL_LANG_ERR_SYNTAX), then runs it: 0 with *out its
 * value, or the failed call's code. */
static int exec_code(const char *src, size_t len, const char *name, mp_parse_input_kind_t kind, mp_obj_t *out)
{
    nlr_buf_t nlr;
    mp_obj_t fun;
    if (nlr_push(&nlr) == 0) {
        fun = hlpy_compile(src, len, name, kind);
        nlr_pop();
    } else {
        mp_obj_t exc = MP_OBJ_FROM_PTR(nlr.ret_val);
        return fail_exc(is_syntax_error(exc) ? HL_LANG_ERR_SYNTAX : HL_LANG_ERR_SCRIPT, exc);
    }
    if (nlr_push(&nlr) == 0) {
        *out = mp_call_function_0(fun);
        nlr_pop();
        return 0;
    }
    return fail_run(MP_OBJ_FROM_PTR(nlr.ret_val));
}

/* Sets *ret to a copy of the len bytes at s as the call's string result. */
static int ret_string(hl_value *ret, const char *s, size_t len)
{
    char *p = hl_ret_alloc(len + 1);
    if (!p) return fail_text(HL_LANG_ERR_SCRIPT, "MemoryError", "result of %s bytes", "many");
    memcpy(p, s, len);
    p[len] = 0;
    ret->type = HL_STRING;
    ret->v.buf.ptr = p;
    ret->v.buf.len = len;
    return 0;
}

/* Sets *ret to value as JSON text; no JSON form is HL_LANG_ERR_NOT_JSON. */
static int ret_json(hl_value *ret, mp_obj_t value)
{
    vstr_t v;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        vstr_init(&v, 64);
        hlpy_json_encode(&v, value);
        nlr_pop();
    } else {
        return fail_exc(hlpy_json_failed ? HL_LANG_ERR_NOT_JSON : HL_LANG_ERR_SCRIPT, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return ret_string(ret, v.buf, v.len);
}

static void set_main_file(const char *name)
{
    mp_obj_dict_store(MP_OBJ_FROM_PTR(mp_globals_get()), MP_OBJ_NEW_QSTR(MP_QSTR___file__),
                      mp_obj_new_str(name, strlen(name)));
}

/* Run(code, name, argv_json): sys.argv = [name] + argv, then the code as __main__. */
static int fn_run(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t argv = hlpy_json_decode(a[2].v.buf.ptr, a[2].v.buf.len);
        bool ok = mp_obj_is_type(argv, &mp_type_list);
        size_t n = 0;
        mp_obj_t *items;
        if (ok) mp_obj_list_get(argv, &n, &items);
        for (size_t i = 0; ok && i < n; i++) ok = mp_obj_is_str(items[i]);
        if (!ok) mp_raise_TypeError(MP_ERROR_TEXT("argv_json must be a JSON array of strings"));
        hlpy_set_argv(a[1].v.buf.ptr, argv);
        set_main_file(a[1].v.buf.ptr);
        nlr_pop();
    } else {
        return fail_exc(HL_LANG_ERR_NOT_JSON, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    mp_obj_t out;
    return exec_code(a[0].v.buf.ptr, a[0].v.buf.len, a[1].v.buf.ptr, MP_PARSE_FILE_INPUT, &out);
}

/* Load(code, name): like Run without arguments, to define handlers before a snapshot. */
static int fn_load(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    mp_obj_t out;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        set_main_file(a[1].v.buf.ptr);
        nlr_pop();
    } else {
        return fail_exc(HL_LANG_ERR_SCRIPT, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return exec_code(a[0].v.buf.ptr, a[0].v.buf.len, a[1].v.buf.ptr, MP_PARSE_FILE_INPUT, &out);
}

/* Eval(code): an expression's value as JSON; code that does not compile as an expression
 * runs as statements and gives null. */
static int fn_eval(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    const char *src = a[0].v.buf.ptr;
    size_t len = a[0].v.buf.len;
    mp_obj_t fun = MP_OBJ_NULL, out;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        fun = hlpy_compile(src, len, "<eval>", MP_PARSE_EVAL_INPUT);
        nlr_pop();
    }
    if (fun == MP_OBJ_NULL) {
        int rc = exec_code(src, len, "<eval>", MP_PARSE_FILE_INPUT, &out);
        return rc ? rc : ret_json(ret, mp_const_none);
    }
    if (nlr_push(&nlr) == 0) {
        out = mp_call_function_0(fun);
        nlr_pop();
    } else {
        return fail_run(MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return ret_json(ret, out);
}

/* What the REPL shows for an expression statement: its repr (None shows nothing), captured
 * for Repl's result; "_" is the last value shown, as in MicroPython's REPL. */
static mp_obj_t repl_print(mp_obj_t o)
{
    if (o == mp_const_none) return mp_const_none;
    if (repl_out) {
        mp_print_t p = { repl_out, (mp_print_strn_t)vstr_add_strn };
        if (repl_out->len) vstr_add_char(repl_out, '\n');
        mp_obj_print_helper(&p, o, PRINT_REPR);
    } else { /* compile(..., "single") outside Repl: printed, as MicroPython does */
        mp_obj_print_helper(&mp_plat_print, o, PRINT_REPR);
        mp_print_str(&mp_plat_print, "\n");
    }
    mp_obj_dict_store(MP_OBJ_FROM_PTR(MP_STATE_VM(mp_module_builtins_override_dict)), MP_OBJ_NEW_QSTR(MP_QSTR__), o);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(repl_print_obj, repl_print);

/* Repl(line): one line of an interactive session (single-input mode, as the REPL compiles). */
static int fn_repl(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    /* The REPL's own rule (py/repl.c): open brackets or quotes, a trailing backslash, or a
     * compound statement not yet ended by an empty line ask for more input. */
    if (mp_repl_continue_with_input(a[0].v.buf.ptr)) return hl_error(HL_LANG_ERR_INCOMPLETE, "incomplete input");
    vstr_t out;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        vstr_init(&out, 64);
        nlr_pop();
    } else {
        return fail_exc(HL_LANG_ERR_SCRIPT, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    repl_out = &out;
    mp_obj_t value;
    int rc = exec_code(a[0].v.buf.ptr, a[0].v.buf.len, "<stdin>", MP_PARSE_SINGLE_INPUT, &value);
    repl_out = NULL;
    if (rc) return rc;
    return ret_string(ret, out.buf, out.len);
}

/* Handle(handler, event_json): handler(json.loads(event_json)) as JSON. */
static int fn_handle(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    const char *name = a[0].v.buf.ptr;
    qstr q = qstr_find_strn(name, a[0].v.buf.len);
    mp_map_elem_t *e = q ? mp_map_lookup(&mp_globals_get()->map, MP_OBJ_NEW_QSTR(q), MP_MAP_LOOKUP) : NULL;
    if (!e) return fail_text(HL_LANG_ERR_NO_HANDLER, "NameError", "no global function '%s'", name);
    if (!mp_obj_is_callable(e->value))
        return fail_text(HL_LANG_ERR_NO_HANDLER, "TypeError", "global '%s' is not a function", name);
    mp_obj_t event, out;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        event = hlpy_json_decode(a[1].v.buf.ptr, a[1].v.buf.len);
        nlr_pop();
    } else {
        return fail_exc(hlpy_json_failed ? HL_LANG_ERR_NOT_JSON : HL_LANG_ERR_SCRIPT, MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    if (nlr_push(&nlr) == 0) {
        out = mp_call_function_1(e->value, event);
        nlr_pop();
    } else {
        return fail_run(MP_OBJ_FROM_PTR(nlr.ret_val));
    }
    return ret_json(ret, out);
}

static void vstr_json_str(vstr_t *v, const char *key, const char *s)
{
    mp_print_t p = { v, (mp_print_strn_t)vstr_add_strn };
    mp_str_print_json(&p, (const byte *)key, strlen(key));
    vstr_add_str(v, ": ");
    mp_str_print_json(&p, (const byte *)(s ? s : ""), s ? strlen(s) : 0);
}

/* LastError(): {"type", "message", "traceback"} of the last failed call, {} if none since
 * the last restore. */
static int fn_last_error(const hl_value *a, int argc, hl_value *ret)
{
    enter();
    if (!last_error.set || last_error.generation != hl_guest_generation()) return ret_string(ret, "{}", 2);
    vstr_t v;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        vstr_init(&v, 256);
        vstr_add_char(&v, '{');
        vstr_json_str(&v, "type", last_error.type);
        vstr_add_str(&v, ", ");
        vstr_json_str(&v, "message", last_error.message);
        vstr_add_str(&v, ", ");
        vstr_json_str(&v, "traceback", last_error.traceback);
        vstr_add_char(&v, '}');
        nlr_pop();
    } else {
        return hl_error(HL_LANG_ERR_SCRIPT, "MemoryError: no memory for LastError");
    }
    return ret_string(ret, v.buf, v.len);
}

/* The GC heap is most of the guest heap, taken once; the rest stays for the C library
 * (result buffers, host-call values). The stack limit leaves a margin below MicroPython's
 * checks for the C code between them and for the SDK's exception handling. */
void hl_guest_main(void)
{
    const struct hl_peb *peb = hl_guest_peb();
    size_t heap = peb->heap_size, reserve = heap / 8 > (512u << 10) ? heap / 8 : (512u << 10);
    if (reserve > heap / 2) reserve = heap / 2;
    size_t gc_size = heap - reserve;
    /* sbrk, not malloc: picolibc's malloc zero-fills what it returns, which touches every
     * page of the GC heap at start-up (about 60 ms for 28 MiB on kvm_pvm); the GC needs no
     * zeroed memory and touches a page when it first uses it. */
    void *gc_heap = sbrk((intptr_t)gc_size);
    if (gc_heap == (void *)-1) gc_heap = malloc(gc_size); /* an allocator that owns sbrk */
    if (!gc_heap) hl_abort(HLPY_ABORT, "python: cannot allocate a %zu-byte GC heap", gc_size);
    uintptr_t lo, hi;
    hl_guest_stack_bounds(&lo, &hi);
    size_t stack = hi - lo, margin = stack / 4 < (64u << 10) ? stack / 4 : (64u << 10);
    hlpy_init(gc_heap, gc_size, (void *)hi, stack - margin, MP_OBJ_FROM_PTR(&hlpy_host_module));
    mp_obj_dict_store(MP_OBJ_FROM_PTR(MP_STATE_VM(mp_module_builtins_override_dict)),
                      MP_OBJ_NEW_QSTR(MP_QSTR___repl_print__), MP_OBJ_FROM_PTR(&repl_print_obj));
    seen_generation = hl_guest_generation();

    hl_guest_register(HL_LANG_FN_RUN, fn_run, HL_VOID, 3, HL_STRING, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_EVAL, fn_eval, HL_STRING, 1, HL_STRING);
    hl_guest_register(HL_LANG_FN_REPL, fn_repl, HL_STRING, 1, HL_STRING);
    hl_guest_register(HL_LANG_FN_LOAD, fn_load, HL_VOID, 2, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_HANDLE, fn_handle, HL_STRING, 2, HL_STRING, HL_STRING);
    hl_guest_register(HL_LANG_FN_LAST_ERROR, fn_last_error, HL_STRING, 0);
}
