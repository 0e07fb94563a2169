/* hostcall.c - the guest's calls of host functions: lookup, checks, the callback, and the
 * RESULT the guest gets; and the context (hl_host_call_*) a host function works with. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "cancel.h"
#include "confine.h"
#include "error.h"
#include "hostcall.h"

/* Pushes a RESULT record above the CALL record on the input stack. */
static bool push_result(hl_sandbox *sb, bool ok, const hl_value *v, int32_t code, const char *msg)
{
    hl_push ps;
    size_t top;
    uint8_t *buf = hl_gpa_rw(sb, sb->lo.input, sb->lo.sizes.input);
    hl_push_begin(&ps, buf, sb->lo.sizes.input, sb->in_top, HL_REC_RESULT);
    if (ok) hl_encode_ok(&ps.w, v);
    else hl_encode_error(&ps.w, code, msg, strlen(msg));
    top = hl_push_end(&ps);
    hl_input_note(sb, &ps);
    if (!top) return false;
    hl_stack_set_top(sb, sb->lo.input, top);
    return true;
}

/* Why the guest's call (call) of (fn) (NULL: not registered) cannot be made, or NULL. */
static const char *refusal(const hl_hostfn *fn, const hl_msg_call *call, char *msg, size_t len)
{
    if (!fn) {
        snprintf(msg, len, "host function '%s' not found", call->name);
        return msg;
    }
    if (hl_args_check(msg, len, "host", call->name, fn->params, fn->nparams, call->args, call->argc)) return msg;
    if (call->ret != fn->ret) {
        snprintf(msg, len, "host function '%s' returns %s, not %s", call->name, hl_type_name(fn->ret),
                 hl_type_name(call->ret));
        return msg;
    }
    return NULL;
}

/* Why the value (ret) host function (fn) returned cannot go to the guest, or NULL. */
static const char *bad_return(const hl_hostfn *fn, const hl_value *ret, char *msg, size_t len)
{
    if (ret->type != fn->ret) {
        snprintf(msg, len, "host function '%s' returned %s, but is registered as returning %s", fn->name,
                 hl_type_name(ret->type), hl_type_name(fn->ret));
        return msg;
    }
    if ((ret->type == HL_STRING || ret->type == HL_BYTES) && ret->v.buf.len &&
        (!ret->v.buf.ptr || (ret->type == HL_STRING && memchr(ret->v.buf.ptr, 0, ret->v.buf.len)))) {
        snprintf(msg, len, "host function '%s' returned an invalid %s (%s)", fn->name, hl_type_name(ret->type),
                 ret->v.buf.ptr ? "holds a NUL byte" : "NULL pointer with a length");
        return msg;
    }
    return NULL;
}

static void free_allocs(hl_host_call *ctx)
{
    for (int i = 0; i < ctx->nallocs; i++) free(ctx->allocs[i]);
    free(ctx->allocs);
}

/* Calls (fn) and pushes what it returned; false if not even an error fits the input buffer.
 * *stopped: the confinement refused a system call the function made (sb->err says which). */
static bool call_and_answer(hl_sandbox *sb, const hl_hostfn *fn, const hl_msg_call *call, hl_host_call *ctx, char *msg,
                            size_t len, bool *stopped)
{
    hl_value ret;
    int rc;
    const char *bad;
    memset(&ret, 0, sizeof ret);
    ret.type = fn->ret;
    rc = fn->fn(ctx, call->args, call->argc, &ret);
    if ((*stopped = sb->confine && hl_confine_stopped(sb, call->name))) return true;
    if (rc != 0) return push_result(sb, false, NULL, rc, ctx->err[0] ? ctx->err : "host function failed");
    if ((bad = bad_return(fn, &ret, msg, len))) return push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, bad);
    if (push_result(sb, true, &ret, 0, NULL)) return true;
    snprintf(msg, len, "result of host function '%s' does not fit the input buffer (%llu bytes)", call->name,
             (unsigned long long)sb->lo.sizes.input);
    return push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
}

static hl_sig_ref hostfn_at(const void *ctx, int i)
{
    const hl_hostfn *f = &((const hl_hostfn *)ctx)[i];
    return (hl_sig_ref){ f->name, f->ret, f->nparams, f->params };
}

/* Answers the SDK's HL_HOSTFN_TABLE call: the sandbox's host functions as a FUNCS payload.
 * What cannot be answered (a malformed request, a table the codec or the input buffer cannot
 * hold) is the guest's error, not the sandbox's. false: not even an error fits. */
static bool serve_table(hl_sandbox *sb, const hl_msg_call *call, char *msg, size_t len)
{
    hl_writer w;
    size_t cap = 2 + (size_t)sb->nhostfns * (2 + HL_MAX_NAME + 2 + HL_MAX_ARGS);
    uint8_t *buf;
    bool pushed;
    if (call->argc != 0 || call->ret != HL_BYTES) {
        snprintf(msg, len, "host function '%s' takes no arguments and returns bytes", call->name);
        return push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
    }
    if (!(buf = malloc(cap))) return push_result(sb, false, NULL, HL_GUEST_ERR_OUT_OF_MEMORY, "host out of memory");
    hl_w_init(&w, buf, cap);
    hl_encode_funcs(&w, sb->nhostfns, hostfn_at, sb->hostfns);
    if (w.bad) {
        free(buf);
        snprintf(msg, len, "the host's %d functions are more than a guest can be told about (%d)", sb->nhostfns,
                 HL_MAX_FUNCS);
        return push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
    }
    pushed = push_result(sb, true, &(hl_value){ .type = HL_BYTES, .v.buf = { buf, w.len } }, 0, NULL);
    free(buf);
    if (pushed) return true;
    snprintf(msg, len, "the table of host functions (%zu bytes) does not fit the input buffer (%llu bytes)", w.len,
             (unsigned long long)sb->lo.sizes.input);
    return push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
}

hl_status hl_host_call_serve(hl_sandbox *sb, const hl_rec *rec)
{
    hl_reader r;
    hl_msg_call call;
    const hl_hostfn *fn;
    char msg[HL_ERR_LEN];
    const char *bad;
    hl_host_call ctx;
    bool pushed, stopped = false;

    hl_r_init(&r, rec->payload, rec->len);
    if (!hl_decode_call(&r, &call))
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest host-function call malformed: %s at byte %zu", r.why,
                                     r.where));
    fn = hl_hostfn_find(sb->hostfns, sb->nhostfns, call.name);
    if (!fn && strcmp(call.name, HL_HOSTFN_TABLE) == 0) {
        pushed = serve_table(sb, &call, msg, sizeof msg);
    } else if ((bad = refusal(fn, &call, msg, sizeof msg))) {
        pushed = push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, bad);
    } else {
        memset(&ctx, 0, sizeof ctx);
        ctx.user = fn->user;
        ctx.sb = sb;
        pushed = call_and_answer(sb, fn, &call, &ctx, msg, sizeof msg, &stopped);
        free_allocs(&ctx);
        if (stopped) return hl_poison(sb, HL_ERR_CANCELLED);
    }
    if (!pushed)
        return hl_poison(sb, hl_fail(sb, HL_ERR_TOO_LARGE,
                                     "no room in the input buffer for the result of host function '%s'", call.name));
    return HL_OK;
}

/* ---- the context of one host-function call ---- */
void *hl_host_call_user(hl_host_call *call) { return call ? call->user : NULL; }

bool hl_host_call_cancelled(hl_host_call *call) { return call && call->sb && hl_cancelled(call->sb) != 0; }

void *hl_host_call_alloc(hl_host_call *call, size_t bytes)
{
    void *p;
    if (!call) return NULL;
    if (call->nallocs == call->capallocs) {
        int cap = call->capallocs ? call->capallocs * 2 : 4;
        void **n = realloc(call->allocs, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        call->allocs = n;
        call->capallocs = cap;
    }
    p = malloc(bytes ? bytes : 1);
    if (p) call->allocs[call->nallocs++] = p;
    return p;
}

int hl_host_call_error(hl_host_call *call, int code, const char *fmt, ...)
{
    va_list ap;
    if (code == 0) code = -1;
    if (!call) return code;
    va_start(ap, fmt);
    vsnprintf(call->err, sizeof call->err, fmt, ap);
    va_end(ap);
    call->err_code = code;
    return code;
}
