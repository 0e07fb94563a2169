/* runtime.c - the guest side of the boundary: function table, dispatch loop, host calls,
 * output records (results, logs, prints, aborts).
 *
 * The guest leaves the VM only through `out` on the ports of abi.h, and as rarely as it
 * can: logs and prints accumulate in the output stack and travel with the next exit; only a
 * full output stack costs an extra (FLUSH) exit. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_internal.h"
#include "hyperlight_guest.h"
#include "wire.h"

/* Everything an ordinary call reads or writes lives in one page (.data.hl_hot comes first in
 * the data segment, hyperlight_guest.ld): on kvm_pvm each page a new VM's first call touches
 * costs a fault of ~20 µs. */
#define HOT __attribute__((section(".data.hl_hot")))
#define STR_(x) #x
#define STR(x) STR_(x) /* a constant's value as a string literal */
static const struct hl_peb *peb HOT;
static struct hl_meta *meta HOT;
static uint8_t *in_buf HOT, *out_buf HOT;
static size_t in_size HOT, out_size HOT;

/* ---- guest function table ---- */
typedef struct gfn {
    const char *name;
    hl_guest_fn fn;
    hl_type ret;
    int argc;
    hl_type params[HL_MAX_ARGS];
} gfn;
static gfn fns_static[32] HOT; /* most guests fit here: dispatch then touches no heap page */
static gfn *fns HOT = fns_static;
static int nfns HOT, capfns HOT = 32;
static int nsdk; /* of them the SDK's own (HL_RESERVED_PREFIX): not counted in HL_MAX_FUNCS */
static char reg_error[128];
#define REG_NAME_SHOWN 64 /* bytes of a refused name that reg_error echoes: the reason must fit */

/* ---- per-call state ---- */
static char err_msg[HL_MAX_MESSAGE + 1];
static char host_err[HL_MAX_MESSAGE + 1];
static char fmt_buf[HL_MAX_MESSAGE + 1];
static void *ret_allocs[16] HOT;
static int nret_allocs HOT;
static bool err_set HOT; /* err_msg holds this call's message (written only on errors) */

/* pending stdout/stderr bytes, pushed as one PRINT record */
static char pbuf[1024];
static size_t plen HOT;
static int pstream HOT = 1;

static inline void port_out(uint16_t port)
{
    /* The memory clobber orders the buffer writes before the exit and makes the compiler
     * re-read the buffers (which the host changed) after it. */
    __asm__ volatile("outl %0, %1" : : "a"(0u), "Nd"(port) : "memory");
}

/* Signals DONE and waits there for the next call: the host's next KVM_RUN resumes right
 * after the `out`, and so does every sandbox restored to (or made from) a snapshot taken
 * while it waited. On kvm_pvm with a host that enables protection keys the guest's wrpkru
 * takes effect natively and KVM keeps PKRU in the vCPU, which a restore of the registers
 * does not reload: so the first thing after the `out` is PKRU = 0 (allow every key), before
 * any memory access (a PKRU left denying key 0 would fault the next call's first push).
 * `pku` sits in a register, restored with the others. SDM Vol. 3A §4.6.2. */
static inline void wait_for_call(uint64_t pku)
{
    uint32_t a = 0, d = HL_PORT_DONE;
    __asm__ volatile("outl %%eax, %%dx\n\t"
                     "test %2, %2\n\t"
                     "jz 1f\n\t"
                     "xor %%eax, %%eax\n\t"
                     "xor %%edx, %%edx\n\t"
                     "xor %%ecx, %%ecx\n\t"
                     "wrpkru\n"
                     "1:"
                     : "+a"(a), "+d"(d)
                     : "r"(pku)
                     : "rcx", "memory");
}

/* Whether wrpkru works here: CPUID.(7,0):ECX.OSPKE, CR4.PKE as this guest runs under. */
static uint64_t have_pkru(void)
{
    uint32_t a = 0, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    if (a < 7) return 0;
    a = 7, c = 0;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return c >> 4 & 1;
}

static uint64_t ld_top(const uint8_t *buf)
{
    uint64_t t;
    memcpy(&t, buf, 8);
    return t;
}

/* Pushes one record on the output stack; when it does not fit, hands the stack to the host
 * (FLUSH exit) and tries once more. Returns false if it cannot fit even an empty stack. */
typedef void (*encode_fn)(hl_writer *w, const void *ctx);
static bool push(uint16_t kind, encode_fn enc, const void *ctx)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        hl_push ps;
        uint64_t top = ld_top(out_buf), end;
        if (hl_push_begin(&ps, out_buf, out_size, top, kind)) {
            enc(&ps.w, ctx);
            if ((end = hl_push_end(&ps)) != 0) {
                memcpy(out_buf, &end, 8);
                return true;
            }
        }
        if (top == HL_BUF_EMPTY) return false;
        port_out(HL_PORT_FLUSH);
    }
    return false;
}

struct bytes_ctx {
    uint8_t stream;
    const void *p;
    size_t n;
};
static void enc_print(hl_writer *w, const void *c)
{
    const struct bytes_ctx *b = c;
    hl_w_u8(w, b->stream);
    hl_w_mem(w, b->p, b->n);
}

void hl_guest_print_flush(void)
{
    struct bytes_ctx b = { (uint8_t)pstream, pbuf, plen };
    if (!plen) return;
    plen = 0; /* first: push may exit, and nothing may print twice */
    push(HL_REC_PRINT, enc_print, &b);
}

void hl_guest_print_char(int stream, char c)
{
    if (plen && stream != pstream) hl_guest_print_flush();
    pstream = stream;
    pbuf[plen++] = c;
    if (plen == sizeof pbuf) hl_guest_print_flush();
}

void hl_guest_print(int stream, const void *p, size_t n)
{
    const char *s = p;
    for (size_t i = 0; i < n; i++) hl_guest_print_char(stream, s[i]);
}

/* ---- abort ---- */
struct msg_ctx {
    int32_t code;
    const char *msg;
};
static void enc_abort(hl_writer *w, const void *c)
{
    const struct msg_ctx *m = c;
    hl_encode_abort(w, m->code, m->msg, strlen(m->msg));
}

static __attribute__((noreturn)) void abort_msg(int code, const char *msg)
{
    struct msg_ctx m = { code, msg };
    hl_guest_print_flush();
    if (!push(HL_REC_ABORT, enc_abort, &m)) {
        m.msg = "(abort message did not fit the output buffer)";
        push(HL_REC_ABORT, enc_abort, &m);
    }
    for (;;) port_out(HL_PORT_ABORT); /* the host never resumes an aborted guest */
}

void hl_abort(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fmt_buf, sizeof fmt_buf, fmt, ap);
    va_end(ap);
    abort_msg(code, fmt_buf);
}

/* ---- logging ---- */
struct log_ctx {
    int level;
    const char *file;
    uint32_t line;
    const char *msg;
};
static void enc_log(hl_writer *w, const void *c)
{
    const struct log_ctx *l = c;
    hl_encode_log(w, l->level, l->file, l->line, l->msg, strlen(l->msg));
}

void hl_log(int level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    struct log_ctx l = { level < 0                  ? 0
                         : level > HL_LOG_LEVEL_MAX ? HL_LOG_LEVEL_MAX
                                                    : level,
                         file, (uint32_t)line, fmt_buf };
    va_start(ap, fmt);
    vsnprintf(fmt_buf, sizeof fmt_buf, fmt, ap);
    va_end(ap);
    hl_guest_print_flush();
    push(HL_REC_LOG, enc_log, &l);
}

/* ---- registration ---- */
/* hl.warm: does nothing. A host pool calls it to fault in a new VM's hot pages before the
 * VM is handed out (the host hides names starting with "hl."). */
static int warm(const hl_value *args, int argc, hl_value *ret)
{
    (void)args, (void)argc;
    *ret = hl_void();
    return 0;
}

/* Keeps the first refusal for the host: the name (cut with "..." if long), then the whole
 * reason. Returns -1. */
static int reg_fail(const char *name, size_t len, const char *why)
{
    if (reg_error[0]) return -1;
    if (!name) name = "(null)", len = 6;
    snprintf(reg_error, sizeof reg_error, "%.*s%s: %s", len > REG_NAME_SHOWN ? REG_NAME_SHOWN : (int)len, name,
             len > REG_NAME_SHOWN ? "..." : "", why);
    return -1;
}

int hl_guest_register(const char *name, hl_guest_fn fn, hl_type ret, int argc, ...)
{
    va_list ap;
    gfn *f;
    size_t len = name ? strlen(name) : 0;
    const char *bad = NULL;
    bool sdk = len && hl_sig_reserved(name);
    if (len == 0) bad = "missing or empty name";
    else if (len > HL_MAX_NAME) bad = "name longer than " STR(HL_MAX_NAME) " bytes";
    else if (!fn) bad = "NULL function";
    else if (sdk && fn != warm) bad = "names starting with 'hl.' are reserved";
    else if (argc < 0 || argc > HL_MAX_ARGS) bad = "too many parameters";
    else if ((unsigned)ret > HL_TYPE_MAX) bad = "invalid return type";
    else if (sdk ? nsdk == HL_MAX_SDK_FUNCS : nfns - nsdk == HL_MAX_FUNCS)
        bad = sdk ? "too many SDK functions" : "too many functions (at most " STR(HL_MAX_FUNCS) ")";
    for (int i = 0; !bad && i < nfns; i++)
        if (strcmp(fns[i].name, name) == 0) bad = "duplicate name";
    if (!bad && nfns == capfns) {
        int cap = capfns * 2;
        gfn *n = malloc((size_t)cap * sizeof *n);
        if (!n) {
            bad = "out of memory";
        } else {
            memcpy(n, fns, (size_t)nfns * sizeof *n);
            if (fns != fns_static) free(fns);
            fns = n, capfns = cap;
        }
    }
    if (bad) return reg_fail(name, len, bad);
    f = &fns[nfns];
    f->name = name;
    f->fn = fn;
    f->ret = ret;
    f->argc = argc;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        int t = va_arg(ap, int);
        if (t == HL_VOID || t < 0 || t > HL_TYPE_MAX) bad = "invalid parameter type";
        f->params[i] = (hl_type)t;
    }
    va_end(ap);
    if (bad) return reg_fail(name, len, bad);
    nfns++;
    nsdk += sdk;
    return 0;
}

static hl_sig_ref fn_at(const void *ctx, int i)
{
    (void)ctx;
    return (hl_sig_ref){ .name = fns[i].name, .ret = fns[i].ret, .nparams = fns[i].argc, .params = fns[i].params };
}

static void enc_funcs(hl_writer *w, const void *c) { hl_encode_funcs(w, nfns, fn_at, c); }

/* ---- results ---- */
int hl_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_set = true;
    return code ? code : -1;
}

void *hl_ret_alloc(size_t bytes)
{
    void *p;
    if (nret_allocs == (int)(sizeof ret_allocs / sizeof ret_allocs[0])) return NULL;
    p = malloc(bytes ? bytes : 1);
    if (p) ret_allocs[nret_allocs++] = p;
    return p;
}

static void enc_ok(hl_writer *w, const void *c) { hl_encode_ok(w, c); }
static void enc_err(hl_writer *w, const void *c)
{
    const struct msg_ctx *m = c;
    hl_encode_error(w, m->code, m->msg, strlen(m->msg));
}

static void send_error(int code, const char *msg)
{
    struct msg_ctx m = { code, msg };
    if (!push(HL_REC_RESULT, enc_err, &m))
        abort_msg(HL_GUEST_ERR_OUTPUT_FULL, "error result does not fit the output buffer");
}

static void send_ok(const char *name, const hl_value *v)
{
    hl_guest_print_flush();
    if (push(HL_REC_RESULT, enc_ok, v)) return;
    snprintf(err_msg, sizeof err_msg,
             "return value of guest function '%s' (%zu bytes) does not fit the output buffer (%zu bytes)", name,
             (v->type == HL_STRING || v->type == HL_BYTES) ? v->v.buf.len : (size_t)8, out_size);
    send_error(HL_GUEST_ERR_OUTPUT_FULL, err_msg);
}

uint64_t hl_guest_call_seq;

static void dispatch(void)
{
    static hl_msg_call call HOT;
    uint64_t top = ld_top(in_buf);
    hl_rec rec;
    const char *why = NULL;
    hl_reader r;
    const gfn *f = NULL;
    hl_value ret;
    int rc;

    hl_scrub_fpu();
    if (top > in_size || !hl_stack_peek(in_buf, top, &rec, &why) || rec.kind != HL_REC_CALL)
        abort_msg(HL_GUEST_ERR_ABI, why ? why : "input buffer holds no call");
    hl_r_init(&r, rec.payload, rec.len);
    if (!hl_decode_call(&r, &call)) abort_msg(HL_GUEST_ERR_ABI, "malformed call record");
    for (int i = 0; i < nfns && !f; i++)
        if (strcmp(fns[i].name, call.name) == 0) f = &fns[i];
    if (!f) {
        snprintf(err_msg, sizeof err_msg, "guest function '%s' not found", call.name);
        send_error(HL_GUEST_ERR_UNKNOWN_FUNCTION, err_msg);
        return;
    }
    /* The host checked the signature already; a second check costs nothing. */
    bool ok = call.argc == f->argc && call.ret == f->ret;
    for (int i = 0; ok && i < call.argc; i++) ok = call.args[i].type == f->params[i];
    if (!ok) {
        snprintf(err_msg, sizeof err_msg, "call to guest function '%s' does not match its signature", f->name);
        send_error(HL_GUEST_ERR_BAD_CALL, err_msg);
        return;
    }
    memset(&ret, 0, sizeof ret);
    ret.type = f->ret;
    err_set = false;
    hl_guest_call_seq++;
    rc = f->fn(call.args, call.argc, &ret);
    hl_guest_print_flush();
    if (rc != 0) {
        send_error(rc, err_set ? err_msg : "guest function failed");
    } else if (ret.type != f->ret) {
        snprintf(err_msg, sizeof err_msg, "guest function '%s' returned %s, but is registered as returning %s",
                 f->name, hl_type_name(ret.type), hl_type_name(f->ret));
        send_error(HL_GUEST_ERR_BAD_CALL, err_msg);
    } else {
        send_ok(f->name, &ret);
    }
    for (int i = 0; i < nret_allocs; i++) free(ret_allocs[i]);
    nret_allocs = 0;
}

/* ---- host calls ---- */
struct call_ctx {
    const char *name;
    hl_type ret;
    const hl_value *args;
    int nargs;
};
static void enc_call(hl_writer *w, const void *c)
{
    const struct call_ctx *k = c;
    hl_encode_call(w, k->name, k->ret, k->args, k->nargs);
}

const char *hl_host_error(void) { return host_err; }

void hl_value_free(hl_value *v)
{
    if (v && (v->type == HL_STRING || v->type == HL_BYTES)) {
        free((void *)v->v.buf.ptr);
        v->v.buf.ptr = NULL;
        v->v.buf.len = 0;
    }
}

int hl_call_host(const char *name, hl_type ret_type, const hl_value *args, int nargs, hl_value *ret)
{
    struct call_ctx k = { name, ret_type, args, nargs };
    uint64_t top;
    hl_rec rec;
    hl_reader r;
    hl_msg_result res;
    const char *why = NULL;
    host_err[0] = 0;
    if (!name || !ret || nargs < 0 || nargs > HL_MAX_ARGS || (nargs && !args)) {
        snprintf(host_err, sizeof host_err, "hl_call_host: invalid arguments");
        return HL_GUEST_ERR_HOST_FN;
    }
    hl_guest_print_flush();
    if (!push(HL_REC_HOSTCALL, enc_call, &k)) {
        snprintf(host_err, sizeof host_err, "call of host function '%s' is invalid or does not fit the output buffer",
                 name);
        return HL_GUEST_ERR_HOST_FN;
    }
    port_out(HL_PORT_HOSTCALL);
    top = ld_top(in_buf);
    if (top > in_size || !hl_stack_peek(in_buf, top, &rec, &why) || rec.kind != HL_REC_RESULT)
        abort_msg(HL_GUEST_ERR_ABI, "no result from the host after a host call");
    hl_r_init(&r, rec.payload, rec.len);
    if (!hl_decode_result(&r, &res)) abort_msg(HL_GUEST_ERR_ABI, "malformed host result");
    if (!res.ok) {
        size_t n = res.msg_len < HL_MAX_MESSAGE ? res.msg_len : HL_MAX_MESSAGE;
        memcpy(host_err, res.msg, n);
        host_err[n] = 0;
        return res.code ? res.code : HL_GUEST_ERR_HOST_FN;
    }
    if (res.value.type != ret_type) abort_msg(HL_GUEST_ERR_ABI, "host result has the wrong type");
    *ret = res.value;
    if (ret_type == HL_STRING || ret_type == HL_BYTES) {
        char *p = malloc(res.value.v.buf.len + 1);
        if (!p) {
            snprintf(host_err, sizeof host_err, "out of memory for the result of host function '%s'", name);
            return HL_GUEST_ERR_OUT_OF_MEMORY;
        }
        memcpy(p, res.value.v.buf.ptr, res.value.v.buf.len);
        p[res.value.v.buf.len] = 0;
        ret->v.buf.ptr = p;
    }
    return 0;
}

/* ---- start ---- */
const struct hl_peb *hl_guest_peb(void) { return peb; }

const void *hl_guest_init_data(size_t *len)
{
    if (len) *len = peb->init_data_size;
    return peb->init_data_size ? (const void *)(uintptr_t)peb->init_data_gpa : NULL;
}

const void *hl_guest_file(const char *label, size_t *len)
{
    for (uint64_t i = 0; label && i < peb->nfiles && i < HL_MAX_FILES; i++)
        if (strcmp(peb->files[i].label, label) == 0) {
            if (len) *len = peb->files[i].size;
            return (const void *)(uintptr_t)peb->files[i].gpa;
        }
    if (len) *len = 0;
    return NULL;
}
void hl_guest_stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    if (lo) *lo = (uintptr_t)peb->stack_gpa;
    if (hi) *hi = (uintptr_t)(peb->stack_gpa + peb->stack_size);
}
uint64_t hl_guest_generation(void) { return meta ? meta->generation : 0; }

extern char hl_resume[];
extern void (*__init_array_start[])(void) __attribute__((weak));
extern void (*__init_array_end[])(void) __attribute__((weak));

__attribute__((noreturn)) void hl_guest_start(const struct hl_peb *p)
{
    peb = p;
    if (p->magic != HL_PEB_MAGIC || p->abi_version != HL_ABI_VERSION)
        for (;;) port_out(HL_PORT_ABORT); /* cannot even trust the buffers: the host reports it */
    meta = (struct hl_meta *)(uintptr_t)p->meta_gpa;
    if (!(p->flags & HL_PEB_FLAG_PVM)) hl_exc_install(meta); /* before anything can fault */
    in_buf = (uint8_t *)(uintptr_t)p->input_gpa;
    in_size = p->input_size;
    out_buf = (uint8_t *)(uintptr_t)p->output_gpa;
    out_size = p->output_size;
    meta->resume_gva = (uint64_t)(uintptr_t)hl_resume;
    hl_guest_heap_init((void *)(uintptr_t)p->heap_gpa, p->heap_size);
    for (void (**f)(void) = __init_array_start; f && f < __init_array_end; f++) (*f)();
    hl_guest_register(HL_WARM_FN, warm, HL_VOID, 0);
    hl_guest_main();
    if (reg_error[0]) hl_abort(HL_GUEST_ERR_ABI, "guest function registration failed: %s", reg_error);
    hl_guest_print_flush();
    if (!push(HL_REC_FUNCS, enc_funcs, NULL))
        abort_msg(HL_GUEST_ERR_OUTPUT_FULL, "function table does not fit the output buffer");
    uint64_t pku = have_pkru();
    for (;;) {
        wait_for_call(pku);
        dispatch();
    }
}
