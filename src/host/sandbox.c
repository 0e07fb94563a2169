/* sandbox.c - sandbox lifecycle, the call path and the handling of every VM exit.
 *
 * A call is one KVM_RUN per exit: the host pushes a CALL record on the input stack and runs
 * the vCPU, which resumes right after its previous `out` (the guest waits in its dispatch
 * loop); the guest answers with records on the output stack and one `out`. The host copies
 * the output stack, validates it whole, and only then acts on it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static __thread char tls_err[HL_ERR_LEN]; /* creation errors: there is no sandbox to hold them */

const char *hl_status_name(hl_status st)
{
    static const char *const names[] = {
        "HL_OK",         "HL_ERR_INVALID_ARG", "HL_ERR_NOT_FOUND", "HL_ERR_TYPE",
        "HL_ERR_GUEST",  "HL_ERR_ABORTED",     "HL_ERR_FAULT",     "HL_ERR_PROTOCOL",
        "HL_ERR_STATE",  "HL_ERR_NO_MEMORY",   "HL_ERR_HYPERVISOR", "HL_ERR_BAD_GUEST",
        "HL_ERR_IO",     "HL_ERR_CANCELLED",
    };
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "HL_ERR_?";
}

/* ---- guest memory gateway ---- */
uint8_t *hl_gpa_rw(hl_sandbox *sb, hl_gpa gpa, uint64_t len)
{
    if (gpa < sb->lo.ro_end || gpa > sb->lo.total || len > sb->lo.total - gpa) return NULL;
    return sb->slot1 + (gpa - sb->lo.ro_end);
}

const uint8_t *hl_gpa_ro(const hl_sandbox *sb, hl_gpa gpa, uint64_t len)
{
    if (gpa > sb->lo.total || len > sb->lo.total - gpa) return NULL;
    return sb->mem + gpa;
}

/* Host writes to guest memory bypass KVM's dirty log, so the host tracks them: the input
 * stack up to in_max; the output stack's top word and the meta page are always restored. */
static void put_top(hl_sandbox *sb, hl_gpa buf, uint64_t top)
{
    uint8_t *p = hl_gpa_rw(sb, buf, 8);
    memcpy(p, &top, 8);
    if (buf == sb->lo.input && top > sb->in_max) sb->in_max = top;
}

/* ---- failure helpers ---- */
static hl_status fail(hl_sandbox *sb, hl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hl_status fail(hl_sandbox *sb, hl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sb->err, sizeof sb->err, fmt, ap);
    va_end(ap);
    return st;
}

/* Ends the call in a state where the guest cannot continue. */
static hl_status poison(hl_sandbox *sb, hl_status st)
{
    sb->state = HL_STATE_POISONED;
    memcpy(sb->poison_why, sb->err, sizeof sb->poison_why); /* named by later refusals */
    return st;
}

static uint64_t guest_rip(hl_sandbox *sb)
{
    hl_vm_state vs;
    return hl_vm_state_get(&sb->vm, &vs) == HL_OK ? vs.rip : 0;
}

#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)

/* Exception names, Intel SDM Vol. 3A §6.3.1 table 6-1. */
static const char *exception_name(int v)
{
    switch (v) {
    case 1: return "debug exception (single step or breakpoint)";
    case 4: return "overflow (into)";
    case 5: return "bound range exceeded";
    case 7: return "device not available (x87/SSE disabled)";
    case 8: return "double fault";
    case 10: return "invalid TSS";
    case 11: return "segment not present";
    case 12: return "stack-segment fault";
    case 16: return "x87 floating-point error";
    case 17: return "alignment check";
    case 18: return "machine check";
    case 19: return "SIMD floating-point exception";
    case 21: return "control protection exception";
    default: return "exception";
    }
}

/* DIV or IDIV (F6/F7 with reg field 6 or 7), after optional prefixes (SDM Vol. 2A). */
static bool is_div(const uint8_t *p)
{
    int i = 0;
    while (i < 3 && (p[i] == 0x66 || p[i] == 0x67 || (p[i] & 0xf0) == 0x40)) i++;
    return (p[i] == 0xf6 || p[i] == 0xf7) && ((p[i + 1] >> 3) & 7) >= 6;
}

/* A page fault at cr2 with error code err (SDM Vol. 3A §4.7): name it from the layout. */
static hl_status describe_page_fault(hl_sandbox *sb, const hl_vm_state *vs, uint32_t err)
{
    const hl_region *d = hl_layout_find(&sb->lo, vs->cr2);
    unsigned long long a = vs->cr2, ip = vs->rip;
    const char *what = err & 0x10 ? "execution" : err & 2 ? "write" : "read";
    if (err & 4) /* U/S: the access came from ring 3, where a guest has no business */
        return fail(sb, HL_ERR_FAULT,
                    "guest fault: %s at 0x%llx in user mode (error code 0x%x): the guest switched to ring 3 "
                    "(sysret, iret or a far return), where it cannot run",
                    what, a, err);
    if (err & 0x10) {
        if (d && (d->perm & HL_PERM_X) && vs->cr3 == HL_PT_GPA && !(vs->cr4 & (CR4_SMEP | CR4_SMAP)))
            return fail(sb, HL_ERR_FAULT, "guest fault: instruction fetch fault (error code 0x%x) at 0x%llx (%s)", err,
                        a, hl_region_name(d->kind));
        if (d && (d->perm & HL_PERM_X))
            return fail(sb, HL_ERR_FAULT,
                        "guest fault: instruction fetch fault (error code 0x%x) at 0x%llx (%s) with the guest's own "
                        "paging setup (cr3 0x%llx, cr4 0x%llx%s)",
                        err, a, hl_region_name(d->kind), (unsigned long long)vs->cr3, (unsigned long long)vs->cr4,
                        vs->cr4 & CR4_SMEP ? ": SMEP forbids supervisor code in user pages" : "");
        return fail(sb, HL_ERR_FAULT, "guest fault: execution of non-executable memory at 0x%llx (%s)", a,
                    d ? hl_region_name(d->kind) : "unmapped");
    }
    if (d && d->kind == HL_RGN_GUARD)
        return fail(sb, HL_ERR_FAULT, "guest fault: stack overflow (%s of the stack guard page at 0x%llx), rip 0x%llx",
                    what, a, ip);
    if (!d || !d->perm)
        return fail(sb, HL_ERR_FAULT, "guest fault: %s %s at 0x%llx, rip 0x%llx",
                    a < HL_PAGE_SIZE ? "NULL pointer" : "unmapped memory", what, a, ip);
    if ((err & 2) && !(d->perm & HL_PERM_W))
        return fail(sb, HL_ERR_FAULT, "guest fault: write to read-only memory (%s) at 0x%llx, rip 0x%llx",
                    hl_region_name(d->kind), a, ip);
    return fail(sb, HL_ERR_FAULT, "guest fault: page fault (%s, error code 0x%x) at 0x%llx (%s), rip 0x%llx", what,
                err, a, hl_region_name(d->kind), ip);
}

/* Names the exception vs->exception (-1: none known) from the layout and the faulting
 * instruction. On kvm_pvm vs comes from KVM after a triple fault (every guest exception ends
 * there); on hardware KVM from the guest's own report (HL_PORT_FAULT), and the vector is
 * always known, or from a triple fault KVM raised itself and kept the registers of (shadow
 * paging: kvm_amd npt=0 sees every page fault, also one during a double fault's delivery). */
static hl_status describe_exception(hl_sandbox *sb, const hl_vm_state *vs, bool reported)
{
    const hl_region *r;
    unsigned long long ip = vs->rip;
    switch (vs->exception) {
    case 14: return describe_page_fault(sb, vs, vs->error_code);
    case 0: {
        /* vector 0 is also what KVM leaves when it raised the triple fault itself (e.g. the
         * guest loaded a CR3 outside its memory): believe a divide error only at a DIV/IDIV */
        const uint8_t *p = hl_gpa_ro(sb, vs->rip, 5);
        if (p && is_div(p)) return fail(sb, HL_ERR_FAULT, "guest fault: divide error at rip 0x%llx", ip);
        if (reported) return fail(sb, HL_ERR_FAULT, "guest fault: exception 0 (int $0?) at rip 0x%llx", ip);
        break;
    }
    case 3: /* a trap: rip is past the int3 */
        return fail(sb, HL_ERR_FAULT, "guest fault: breakpoint (int3) at rip 0x%llx", ip - 1);
    case 6: {
        const uint8_t *p = hl_gpa_ro(sb, vs->rip, 2);
        bool ud2 = p && p[0] == 0x0f && p[1] == 0x0b;
        return fail(sb, HL_ERR_FAULT, "guest fault: invalid instruction%s at rip 0x%llx", ud2 ? " (ud2)" : "", ip);
    }
    case 13:
        return fail(sb, HL_ERR_FAULT,
                    "guest fault: general protection fault (privileged instruction or non-canonical address) at "
                    "rip 0x%llx",
                    ip);
    case -1: break;
    case 8: /* from a shutdown: the double fault could not be delivered either, the guest's
             * handler never ran */
        if (!reported) break;
        /* fall through */
    default:
        return fail(sb, HL_ERR_FAULT, "guest fault: %s (exception %d, error code 0x%x) at rip 0x%llx",
                    exception_name(vs->exception), vs->exception, vs->error_code, ip);
    }
    if (vs->cr3 != HL_PT_GPA)
        return fail(sb, HL_ERR_FAULT,
                    "guest fault: triple fault at rip 0x%llx after the guest loaded its own page tables (cr3 0x%llx)", ip,
                    (unsigned long long)vs->cr3);
    /* No exception recorded, or a double fault that could not be delivered: infer from rip and cr2. */
    r = hl_layout_find(&sb->lo, vs->rip);
    if (!r || !(r->perm & HL_PERM_X))
        return fail(sb, HL_ERR_FAULT, "guest fault: execution of non-executable memory at 0x%llx (%s)", ip,
                    r ? hl_region_name(r->kind) : "unmapped");
    if (vs->exception == 8)
        return fail(sb, HL_ERR_FAULT,
                    "guest fault: triple fault at rip 0x%llx: a double fault the guest could not handle (its IDT, GDT "
                    "or exception stacks were unusable; cr2 0x%llx, cr4 0x%llx%s)",
                    ip, (unsigned long long)vs->cr2, (unsigned long long)vs->cr4,
                    vs->cr4 & CR4_SMAP   ? ": SMAP forbids supervisor data access to user pages, as every guest page is"
                    : vs->cr4 & CR4_SMEP ? ": SMEP forbids supervisor code in user pages, as every guest page is"
                                         : "");
    return fail(sb, HL_ERR_FAULT, "guest fault: triple fault at rip 0x%llx (cr2 0x%llx)", ip,
                (unsigned long long)vs->cr2);
}

/* KVM_EXIT_SHUTDOWN, a triple fault. On kvm_pvm every guest exception ends here and KVM still
 * knows which exception could not be delivered. On hardware KVM the guest handles its own
 * exceptions, so only a failure of that handling gets here (a broken IDT, a fault before it
 * was installed, a CR3 outside memory); KVM's AMD code then resets the vCPU, and the
 * registers it shows are the reset state, not the fault's. */
static hl_status describe_shutdown(hl_sandbox *sb)
{
    hl_vm_state vs;
    if (hl_vm_state_get(&sb->vm, &vs) != HL_OK)
        return poison(sb, hl_coredump_fault(sb, fail(sb, HL_ERR_FAULT, "guest fault: triple fault (registers unreadable)"),
                                            0));
    if (!sb->vm.pvm && vs.rip == 0xfff0 && !(vs.cr0 & 1)) {
        fail(sb, HL_ERR_FAULT,
             "guest fault: triple fault (an exception the guest could not handle: its IDT, its exception stacks "
             "or its page tables were unusable); KVM reset the vCPU, so the registers at the fault are lost");
        return poison(sb, hl_coredump_skip(sb, HL_ERR_FAULT, "the vCPU was reset, its registers at the fault are lost"));
    }
    return poison(sb, hl_coredump_fault(sb, describe_exception(sb, &vs, false), 0));
}

/* HL_PORT_FAULT: the guest caught a CPU exception and describes it in its meta page (hardware
 * KVM). The record is read once and only formatted: a guest can lie only about itself. */
static hl_status guest_fault(hl_sandbox *sb)
{
    struct hl_fault f;
    hl_vm_state vs;
    hl_status st;
    memcpy(&f, sb->mem + sb->lo.meta + offsetof(struct hl_meta, fault), sizeof f);
    if (f.vector > 31)
        return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest reported an exception with vector %llu (not 0..31)",
                               (unsigned long long)f.vector));
    hl_vm_state_synced(&sb->vm, &vs); /* the control registers, as KVM left them at this exit */
    vs.rip = f.rip;
    vs.rsp = f.rsp;
    vs.rflags = f.rflags;
    vs.cr2 = f.cr2;
    vs.rax = f.gpr[0];
    vs.exception = (int)f.vector;
    vs.error_code = (uint32_t)f.error_code;
    sb->fault = f;
    sb->have_fault = true; /* the core dump shows these registers, not the handler's */
    st = hl_coredump_fault(sb, describe_exception(sb, &vs, true), 0);
    sb->have_fault = false;
    return poison(sb, st);
}

/* KVM could not emulate an instruction the guest ran (e.g. int 0x80 on kvm_pvm). */
static hl_status describe_emulation_failure(hl_sandbox *sb)
{
    hl_vm_state vs;
    const uint8_t *p;
    if (hl_vm_state_get(&sb->vm, &vs) != HL_OK)
        return poison(sb, hl_coredump_fault(sb, fail(sb, HL_ERR_FAULT,
                                                     "guest fault: instruction the hypervisor cannot emulate"), SIGILL));
    p = hl_gpa_ro(sb, vs.rip, 2);
    return poison(sb, hl_coredump_fault(sb, fail(sb, HL_ERR_FAULT,
                           "guest fault: instruction the hypervisor cannot emulate at rip 0x%llx (bytes %02x %02x)",
                           (unsigned long long)vs.rip, p ? p[0] : 0, p ? p[1] : 0), SIGILL));
}

/* ---- output stack ---- */
/* Copies the guest's output stack, validates it, resets it. Returns the record count or -1. */
static int take_output(hl_sandbox *sb)
{
    const char *why;
    size_t where;
    uint64_t top;
    uint8_t *buf = hl_gpa_rw(sb, sb->lo.output, sb->lo.sizes.output);
    int n;
    memcpy(&top, buf, 8); /* read once: the guest's word is never read again */
    if (top < HL_BUF_EMPTY || top > sb->lo.sizes.output || top % 8) {
        fail(sb, HL_ERR_PROTOCOL, "guest output buffer corrupt: top 0x%llx outside 0x8..0x%llx or misaligned",
             (unsigned long long)top, (unsigned long long)sb->lo.sizes.output);
        return -1;
    }
    memcpy(sb->outcopy, buf, top);
    put_top(sb, sb->lo.output, HL_BUF_EMPTY);
    n = hl_stack_parse(sb->outcopy, top, sb->recs, sb->maxrecs, &why, &where);
    if (n < 0)
        fail(sb, HL_ERR_PROTOCOL, "guest output buffer corrupt: %s at offset 0x%zx", why, where);
    return n;
}

static bool over_output(hl_sandbox *sb)
{
    fail(sb, HL_ERR_CANCELLED, "guest call stopped: it printed and logged more than the limit of %llu bytes",
         (unsigned long long)sb->max_output);
    return false;
}

/* Delivers a PRINT or LOG record. Returns false (with the error set) if the record is bad. */
static bool deliver(hl_sandbox *sb, const hl_rec *rec)
{
    hl_reader r;
    hl_r_init(&r, rec->payload, rec->len);
    if (rec->kind == HL_REC_PRINT) {
        uint8_t stream = hl_r_u8(&r);
        if (r.why || (stream != 1 && stream != 2)) {
            fail(sb, HL_ERR_PROTOCOL, "guest print record at offset 0x%zx: bad stream", rec->offset);
            return false;
        }
        if ((sb->call_output += rec->len - 1) > sb->max_output) return over_output(sb);
        if (sb->print && rec->len > 1) sb->print(sb->print_user, stream, (const char *)rec->payload + 1, rec->len - 1);
        return true;
    }
    if (rec->kind == HL_REC_LOG) {
        hl_msg_log lg;
        char msg[HL_MAX_MESSAGE + 1];
        if (!hl_decode_log(&r, &lg)) {
            fail(sb, HL_ERR_PROTOCOL, "guest log record at offset 0x%zx malformed: %s", rec->offset, r.why);
            return false;
        }
        if ((sb->call_output += lg.msg_len) > sb->max_output) return over_output(sb);
        memcpy(msg, lg.msg, lg.msg_len);
        msg[lg.msg_len] = 0;
        if (sb->log) sb->log(sb->log_user, lg.level, msg, lg.file, lg.line);
        return true;
    }
    fail(sb, HL_ERR_PROTOCOL, "guest output buffer: unexpected record kind %u at offset 0x%zx",
         rec->kind, rec->offset);
    return false;
}

/* Delivers all records but the last; checks that the last one has kind `last_kind` (0: the
 * last is delivered too). Returns the last record or NULL with the error set. */
static const hl_rec *drain(hl_sandbox *sb, int n, int last_kind, const char *what)
{
    int upto = last_kind ? n - 1 : n;
    sb->drain_status = HL_ERR_PROTOCOL;
    for (int i = 0; i < upto; i++)
        if (!deliver(sb, &sb->recs[i])) {
            if (sb->call_output > sb->max_output) sb->drain_status = HL_ERR_CANCELLED;
            return NULL;
        }
    if (!last_kind) return sb->recs; /* non-NULL: success */
    if (n == 0 || sb->recs[n - 1].kind != last_kind) {
        static const char *const kinds[] = { "?", "CALL", "RESULT", "HOSTCALL", "LOG", "PRINT", "ABORT", "FUNCS" };
        fail(sb, HL_ERR_PROTOCOL, "guest signalled %s but the last record of its output buffer is not %s", what,
             kinds[last_kind]);
        return NULL;
    }
    return &sb->recs[n - 1];
}

/* ---- host-function calls ---- */
static const char *check_args(char *msg, size_t len, const char *kind, const char *name,
                              const hl_type *params, int nparams, const hl_value *args, int nargs)
{
    if (nargs != nparams) {
        snprintf(msg, len, "wrong number of arguments to %s function '%s': got %d, expected %d", kind,
                 name, nargs, nparams);
        return msg;
    }
    for (int i = 0; i < nargs; i++)
        if (args[i].type != params[i]) {
            snprintf(msg, len, "wrong type for argument %d of %s function '%s': expected %s, got %s", i,
                     kind, name, hl_type_name(params[i]), hl_type_name(args[i].type));
            return msg;
        }
    return NULL;
}

/* Host writes bypass KVM's dirty log: whatever a push into the input buffer wrote, even a
 * push that did not fit and failed, must be restored (in_max covers it). */
static void note_input_push(hl_sandbox *sb, const hl_push *ps)
{
    uint64_t end = ps->start + HL_REC_HEADER + ((ps->w.len + 7) & ~(size_t)7) + HL_REC_TRAILER;
    if (end > sb->lo.sizes.input) end = sb->lo.sizes.input;
    if (end > sb->in_max) sb->in_max = end;
}

/* Pushes a RESULT record above the CALL record on the input stack. */
static bool push_result(hl_sandbox *sb, bool ok, const hl_value *v, int32_t code, const char *msg)
{
    hl_push ps;
    size_t top;
    uint8_t *buf = hl_gpa_rw(sb, sb->lo.input, sb->lo.sizes.input);
    hl_push_begin(&ps, buf, sb->lo.sizes.input, sb->in_top, HL_REC_RESULT);
    if (ok)
        hl_encode_ok(&ps.w, v);
    else
        hl_encode_error(&ps.w, code, msg, strlen(msg));
    top = hl_push_end(&ps);
    note_input_push(sb, &ps);
    if (!top) return false;
    put_top(sb, sb->lo.input, top);
    return true;
}

static hl_status host_call(hl_sandbox *sb, const hl_rec *rec)
{
    hl_reader r;
    hl_msg_call call;
    const hl_hostfn *fn;
    char msg[HL_ERR_LEN];
    const char *bad;
    hl_host_call ctx;
    hl_value ret;
    int rc;
    bool pushed;

    hl_r_init(&r, rec->payload, rec->len);
    if (!hl_decode_call(&r, &call))
        return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest host-function call malformed: %s at byte %zu",
                               r.why, r.where));
    fn = hl_hostfn_find(sb->hostfns, sb->nhostfns, call.name);
    if (!fn) {
        snprintf(msg, sizeof msg, "host function '%s' not found", call.name);
        bad = msg;
    } else {
        bad = check_args(msg, sizeof msg, "host", call.name, fn->params, fn->nparams, call.args, call.argc);
        if (!bad && call.ret != fn->ret) {
            snprintf(msg, sizeof msg, "host function '%s' returns %s, not %s", call.name,
                     hl_type_name(fn->ret), hl_type_name(call.ret));
            bad = msg;
        }
    }
    if (bad) {
        pushed = push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, bad);
        goto out;
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.user = fn->user;
    ctx.sb = sb;
    memset(&ret, 0, sizeof ret);
    ret.type = fn->ret;
    rc = fn->fn(&ctx, call.args, call.argc, &ret);
    if (sb->confine && hl_confine_stopped(sb, call.name)) {
        /* it made a system call the confinement refused: sb->err says which */
        for (int i = 0; i < ctx.nallocs; i++) free(ctx.allocs[i]);
        free(ctx.allocs);
        return poison(sb, HL_ERR_CANCELLED);
    }
    if (rc != 0) {
        pushed = push_result(sb, false, NULL, rc, ctx.err[0] ? ctx.err : "host function failed");
    } else if (ret.type != fn->ret) {
        snprintf(msg, sizeof msg, "host function '%s' returned %s, but is registered as returning %s",
                 call.name, hl_type_name(ret.type), hl_type_name(fn->ret));
        pushed = push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
    } else if ((ret.type == HL_STRING || ret.type == HL_BYTES) && ret.v.buf.len &&
               (!ret.v.buf.ptr || (ret.type == HL_STRING && memchr(ret.v.buf.ptr, 0, ret.v.buf.len)))) {
        snprintf(msg, sizeof msg, "host function '%s' returned an invalid %s (%s)", call.name,
                 hl_type_name(ret.type), ret.v.buf.ptr ? "holds a NUL byte" : "NULL pointer with a length");
        pushed = push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
    } else {
        pushed = push_result(sb, true, &ret, 0, NULL);
        if (!pushed) {
            snprintf(msg, sizeof msg, "result of host function '%s' does not fit the input buffer (%llu bytes)",
                     call.name, (unsigned long long)sb->lo.sizes.input);
            pushed = push_result(sb, false, NULL, HL_GUEST_ERR_HOST_FN, msg);
        }
    }
    for (int i = 0; i < ctx.nallocs; i++) free(ctx.allocs[i]);
    free(ctx.allocs);
out:
    if (!pushed)
        return poison(sb, fail(sb, HL_ERR_NO_MEMORY, "no room in the input buffer for the result of host function '%s'",
                               call.name));
    return HL_OK;
}

/* ---- the run loop ---- */
enum { RUN_INIT, RUN_CALL };

/* Runs the guest until it finishes (DONE), then returns its final record in *last. */
/* What a run is, in messages: "guest initialisation" or "call to guest function 'NAME'"
 * (formatted only when a message needs it: the call path stays free of printf). */
#define WHAT_FMT "%s%s%s"
#define WHAT_ARGS(fn) (fn) ? "call to guest function '" : "guest initialisation", (fn) ? (fn) : "", (fn) ? "'" : ""

static hl_status cancelled(hl_sandbox *sb, const char *fn)
{
    if (hl_cancelled(sb) == HL_CANCEL_TIMEOUT)
        return poison(sb, fail(sb, HL_ERR_CANCELLED, WHAT_FMT " timed out after %llu ms", WHAT_ARGS(fn),
                               (unsigned long long)sb->timeout_ms));
    return poison(sb, fail(sb, HL_ERR_CANCELLED, WHAT_FMT " was interrupted (hl_sandbox_interrupt)", WHAT_ARGS(fn)));
}

static hl_status run(hl_sandbox *sb, int mode, const hl_rec **last, const char *fn)
{
    hl_exit ex;
    hl_status st;
    int n;
    for (;;) {
        hl_cancel_enter_guest(sb);
        st = hl_vm_run(&sb->vm, &ex, sb->err);
        hl_cancel_leave_guest(sb);
        if (st != HL_OK) return poison(sb, st);
        sb->exits++;
        /* The guest registers its virtual-IF page before its first exit; from then on the MSR
         * filter refuses to let it move the page (onto guest data, which kvm_pvm would then
         * write into). Before it, check where the page is: code that ran since could have
         * moved it already. */
        if (ex.kind == HL_EXIT_OUT && !sb->vm.vif_locked) {
            uint64_t vif = sb->lo.meta;
            if (sb->vm.pvm && (st = hl_vm_vif_gpa(&sb->vm, &vif, sb->err)) != HL_OK) return poison(sb, st);
            if (vif != sb->lo.meta)
                return poison(sb, fail(sb, HL_ERR_PROTOCOL,
                                       "guest moved its virtual-IF page to 0x%llx (it must stay at 0x%llx)",
                                       (unsigned long long)vif, (unsigned long long)sb->lo.meta));
            if ((st = hl_vm_lock_vif(&sb->vm, true, sb->err)) != HL_OK) return poison(sb, st);
        }
        switch (ex.kind) {
        case HL_EXIT_OUT:
            if (ex.port == HL_PORT_FAULT) return guest_fault(sb);
            if (ex.port != HL_PORT_DONE && ex.port != HL_PORT_HOSTCALL && ex.port != HL_PORT_ABORT &&
                ex.port != HL_PORT_FLUSH)
                return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest wrote to unknown I/O port 0x%x (rip 0x%llx)",
                                       ex.port, (unsigned long long)guest_rip(sb)));
            if ((n = take_output(sb)) < 0) return poison(sb, HL_ERR_PROTOCOL);
            if (ex.port == HL_PORT_FLUSH) {
                if (!drain(sb, n, 0, "FLUSH")) return poison(sb, sb->drain_status);
            } else if (ex.port == HL_PORT_HOSTCALL) {
                const hl_rec *rec = drain(sb, n, HL_REC_HOSTCALL, "HOSTCALL");
                if (!rec) return poison(sb, sb->drain_status);
                if (++sb->call_host_calls > sb->max_host_calls)
                    return poison(sb, fail(sb, HL_ERR_CANCELLED,
                                           WHAT_FMT " stopped: it made more than the limit of %llu host calls",
                                           WHAT_ARGS(fn),
                                           (unsigned long long)sb->max_host_calls));
                if ((st = host_call(sb, rec)) != HL_OK) return st;
                if (hl_cancelled(sb)) return cancelled(sb, fn); /* cancelled while the host function ran */
            } else if (ex.port == HL_PORT_ABORT) {
                const hl_rec *rec = drain(sb, n, HL_REC_ABORT, "ABORT");
                hl_reader r;
                hl_msg_abort ab;
                if (!rec) return poison(sb, sb->drain_status);
                hl_r_init(&r, rec->payload, rec->len);
                if (!hl_decode_abort(&r, &ab))
                    return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest abort record malformed: %s", r.why));
                sb->err_code = ab.code;
                return poison(sb, fail(sb, HL_ERR_ABORTED, "guest aborted with code %d: %.*s", ab.code,
                                       (int)ab.msg_len, ab.msg));
            } else {
                *last = drain(sb, n, mode == RUN_INIT ? HL_REC_FUNCS : HL_REC_RESULT,
                              "DONE");
                if (!*last) return poison(sb, sb->drain_status);
                return HL_OK;
            }
            break;
        case HL_EXIT_IN:
            return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest %s I/O port 0x%x (rip 0x%llx)",
                                   ex.is_write ? "used a string or narrow write on" : "read from", ex.port,
                                   (unsigned long long)guest_rip(sb)));
        case HL_EXIT_MMIO:
            return poison(sb, fail(sb, HL_ERR_FAULT,
                                   "guest fault: %s of unmapped or read-only guest-physical address "
                                   "0x%llx, rip 0x%llx",
                                   ex.is_write ? "write" : "read", (unsigned long long)ex.addr,
                                   (unsigned long long)guest_rip(sb)));
        case HL_EXIT_SHUTDOWN: return describe_shutdown(sb);
        case HL_EXIT_EMULATION: return describe_emulation_failure(sb);
        case HL_EXIT_HLT:
            return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest executed hlt (rip 0x%llx)",
                                   (unsigned long long)guest_rip(sb)));
        case HL_EXIT_INTR:
            if (!hl_cancel_spurious(sb)) return cancelled(sb, fn);
            break; /* a signal for this thread, not for us: resume */
        default:
            return poison(sb, fail(sb, HL_ERR_HYPERVISOR, "unexpected VM exit (KVM exit reason %u, rip 0x%llx)",
                                   ex.reason, (unsigned long long)guest_rip(sb)));
        }
    }
}

/* ---- guest function table ---- */
static hl_status read_funcs(hl_sandbox *sb, const hl_rec *rec)
{
    hl_reader r;
    unsigned count, nown = 0, nsdk = 0;
    hl_r_init(&r, rec->payload, rec->len);
    count = hl_r_u16(&r);
    if (!r.why && count > HL_MAX_FUNC_TABLE) hl_r_fail(&r, "too many functions");
    if (!r.why && !(sb->guestfns = calloc(count ? count : 1, sizeof *sb->guestfns)))
        return fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    for (unsigned i = 0; i < count && !r.why; i++) {
        hl_guestfn *f = &sb->guestfns[i];
        char name[HL_MAX_NAME + 1];
        if (!hl_r_name(&r, name)) break;
        f->ret = (hl_type)hl_r_u8(&r);
        f->nparams = hl_r_u8(&r);
        if (r.why) break;
        if ((unsigned)f->ret > HL_TYPE_MAX) hl_r_fail(&r, "invalid return type");
        if (f->nparams > HL_MAX_ARGS) hl_r_fail(&r, "too many parameters");
        for (int j = 0; j < f->nparams && !r.why; j++) {
            f->params[j] = (hl_type)hl_r_u8(&r);
            if (!r.why && (f->params[j] == HL_VOID || (unsigned)f->params[j] > HL_TYPE_MAX))
                hl_r_fail(&r, "invalid parameter type");
        }
        for (unsigned k = 0; k < i && !r.why; k++)
            if (strcmp(sb->guestfns[k].name, name) == 0) hl_r_fail(&r, "duplicate function name");
        f->hidden = strncmp(name, HL_RESERVED_PREFIX, strlen(HL_RESERVED_PREFIX)) == 0;
        if (!r.why && (f->hidden ? ++nsdk > HL_MAX_SDK_FUNCS : ++nown > HL_MAX_FUNCS))
            hl_r_fail(&r, "too many functions");
        if (r.why) break;
        if (!(f->name = strdup(name))) return fail(sb, HL_ERR_NO_MEMORY, "out of memory");
        sb->nguestfns++;
    }
    if (!hl_r_done(&r))
        return fail(sb, HL_ERR_PROTOCOL, "guest function table malformed: %s at byte %zu", r.why, r.where);
    return HL_OK;
}

static const hl_guestfn *find_guestfn(const hl_sandbox *sb, const char *name)
{
    for (int i = 0; i < sb->nguestfns; i++)
        if (strcmp(sb->guestfns[i].name, name) == 0) return &sb->guestfns[i];
    return NULL;
}

/* ---- creation ---- */
static hl_status track_init(hl_sandbox *sb, hl_track *t, uint32_t slot, hl_gpa gpa, hl_gpa end)
{
    uint64_t words;
    t->slot = slot;
    t->gpa = gpa;
    t->npages = (end - gpa) / HL_PAGE;
    words = (t->npages + 63) / 64;
    t->dirty = calloc(words ? words : 1, 8);
    t->tmp = calloc(words ? words : 1, 8);
    t->prev = calloc(words ? words : 1, 8);
    if (!t->dirty || !t->tmp || !t->prev) return fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    return HL_OK;
}

static void track_free(hl_track *t)
{
    free(t->dirty);
    free(t->tmp);
    free(t->prev);
}

/* Maps snap's image as sb's memory: [0, ro_end) shared read-only but the page tables, which
 * are private and writable like [ro_end, total) (the guest's own mappings never reach them;
 * KVM needs them writable for hardware page walks, see abi.h). */
hl_status hl_sandbox_map(hl_sandbox *sb, hl_snapshot *snap)
{
    hl_status st;
    uint64_t ro_pages = snap->lo.ro_end / HL_PAGE;
    sb->lo = snap->lo;
    if ((st = track_init(sb, &sb->rw, HL_SLOT_RW, sb->lo.ro_end, sb->lo.total)) ||
        (st = track_init(sb, &sb->pt, HL_SLOT_PT, HL_PT_GPA, sb->lo.pt_end)))
        return st;
    sb->mem = hl_reserve(sb->lo.total);
    if (!sb->mem)
        return fail(sb, HL_ERR_NO_MEMORY, "out of address space for guest memory of %llu bytes",
                    (unsigned long long)sb->lo.total);
    sb->slot1 = sb->mem + sb->lo.ro_end;
    if ((st = hl_image_map(&snap->img, sb->mem, 0, ro_pages, PROT_READ, MAP_SHARED, sb->err)) ||
        (st = hl_image_map(&snap->img, sb->mem, HL_PT_GPA / HL_PAGE, sb->pt.npages, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE, sb->err)) ||
        (st = hl_image_map(&snap->img, sb->mem, ro_pages, sb->rw.npages, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                           sb->err)))
        return st;
    hl_snapshot_ref(snap);
    sb->base = snap;
    sb->gen_counter = snap->generation;
    sb->in_max = HL_BUF_EMPTY;
    return HL_OK;
}

/* The memslots of sb's memory, for hl_vm_create. */
void hl_sandbox_vm_setup(const hl_sandbox *sb, hl_vm_setup *vs)
{
    vs->ro = sb->mem + HL_PEB_GPA;
    vs->ro_gpa = HL_PEB_GPA;
    vs->ro_size = sb->lo.ro_end - HL_PEB_GPA;
    vs->pt = sb->mem + HL_PT_GPA;
    vs->pt_size = sb->lo.pt_end - HL_PT_GPA;
    vs->rw = sb->slot1;
    vs->rw_gpa = sb->lo.ro_end;
    vs->rw_size = sb->lo.total - sb->lo.ro_end;
}

hl_status hl_sandbox_map_files(hl_sandbox *sb, hl_vm_setup *vs)
{
    for (int i = 0; i < sb->nfiles; i++) {
        uint64_t len = HL_ALIGN_UP(sb->files[i].size, HL_PAGE);
        void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, sb->files[i].fd, 0);
        if (p == MAP_FAILED)
            return fail(sb, HL_ERR_IO, "mapping file '%s': %s", sb->lo.sizes.file_label[i], strerror(errno));
        sb->file_host[i] = p;
        vs->file_gpa[i] = sb->lo.file_gpa[i];
        vs->file_host[i] = p;
        vs->file_len[i] = len;
    }
    vs->nfiles = sb->nfiles;
    return HL_OK;
}

/* Builds the guest's initial memory in a sealed memfd: the image the guest boots from. */
static hl_status boot_image(hl_sandbox *sb, const hl_elf *elf, const uint8_t *data, bool pvm,
                            const void *init_data, hl_snapshot **out)
{
    uint8_t *mem;
    hl_status st;
    uint64_t empty = HL_BUF_EMPTY;
    hl_memfile *file;
    hl_image img;
    int fd = memfd_create("hyperlight-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return fail(sb, HL_ERR_NO_MEMORY, "memfd_create: %s", strerror(errno));
    if (!(file = hl_memfile_new(fd, 0))) {
        close(fd);
        return fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    }
    if (ftruncate(fd, (off_t)sb->lo.total) < 0) {
        st = fail(sb, HL_ERR_NO_MEMORY, "ftruncate guest memory (%llu bytes): %s",
                  (unsigned long long)sb->lo.total, strerror(errno));
        goto out;
    }
    mem = mmap(NULL, sb->lo.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        st = fail(sb, HL_ERR_NO_MEMORY, "mmap guest memory: %s", strerror(errno));
        goto out;
    }
    hl_elf_load(elf, data, mem, sb->lo.total);
    st = hl_pt_build(&sb->lo, mem, sb->lo.total, sb->err);
    hl_layout_peb(&sb->lo, pvm, (struct hl_peb *)(mem + HL_PEB_GPA));
    memcpy(mem + sb->lo.input, &empty, 8);
    memcpy(mem + sb->lo.output, &empty, 8);
    if (sb->lo.sizes.init) memcpy(mem + sb->lo.init, init_data, sb->lo.sizes.init);
    munmap(mem, sb->lo.total);
    if (st != HL_OK) goto out;
    /* The image never changes again: seal it so no mapping can write it back. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        st = fail(sb, HL_ERR_NO_MEMORY, "sealing guest memory: %s", strerror(errno));
        goto out;
    }
    if ((st = hl_image_single(&img, file, sb->lo.total / HL_PAGE)) != HL_OK) {
        fail(sb, st, "out of memory");
        goto out;
    }
    st = hl_snapshot_from_image(out, &sb->lo, &img, sb->err);
out:
    hl_memfile_unref(file);
    return st;
}

/* The guest's initialisation: runs it to its first DONE; *(const hl_rec **)arg gets the
 * function table record. */
static hl_status init_job(hl_sandbox *sb, void *arg)
{
    hl_status st;
    sb->call_host_calls = sb->call_output = 0;
    if ((st = hl_cancel_begin(sb)) != HL_OK) return st;
    st = run(sb, RUN_INIT, (const hl_rec **)arg, NULL);
    hl_cancel_end(sb);
    return st;
}

/* Takes the host functions, print and log functions from cfg; allocates per-call buffers. */
hl_status hl_sandbox_adopt_config(hl_sandbox *sb, const hl_config *cfg)
{
    if (cfg->nhostfns) {
        sb->hostfns = malloc((size_t)cfg->nhostfns * sizeof *sb->hostfns);
        if (!sb->hostfns) return fail(sb, HL_ERR_NO_MEMORY, "out of memory");
        memcpy(sb->hostfns, cfg->hostfns, (size_t)cfg->nhostfns * sizeof *sb->hostfns);
        sb->nhostfns = cfg->nhostfns;
    }
    sb->print = cfg->print;
    sb->print_user = cfg->print_user;
    sb->log = cfg->log;
    sb->log_user = cfg->log_user;
    sb->maxrecs = (int)(sb->lo.sizes.output / (HL_REC_HEADER + HL_REC_TRAILER));
    sb->outcopy = malloc(sb->lo.sizes.output);
    sb->recs = malloc((size_t)sb->maxrecs * sizeof *sb->recs);
    if (!sb->outcopy || !sb->recs) return fail(sb, HL_ERR_NO_MEMORY, "out of memory");
    sb->timeout_ms = cfg->timeout_ms;
    sb->max_host_calls = cfg->max_host_calls;
    sb->max_output = cfg->max_output;
    memcpy(sb->core_dir, cfg->core_dir, sizeof sb->core_dir);
    hl_status st = hl_cancel_init(sb);
    return st != HL_OK ? st : hl_confine_start(sb, cfg); /* a confined sandbox's worker */
}

static hl_status create(hl_sandbox *sb, const uint8_t *data, size_t len, const hl_config *cfg)
{
    hl_elf elf;
    hl_status st;
    const hl_rec *last = NULL;
    bool pvm = hl_kvm_is_pvm();
    hl_vm_setup vs;

    hl_snapshot *boot = NULL;

    if ((st = hl_elf_parse(data, len, &elf, sb->err)) ||
        (st = hl_layout_build(&sb->lo, &elf, &cfg->sizes, sb->err)) ||
        (st = boot_image(sb, &elf, data, pvm, cfg->init_data, &boot)))
        return st;
    st = hl_sandbox_map(sb, boot);
    hl_snapshot_free(boot); /* sb holds its own reference */
    if (st != HL_OK) return st;
    if ((st = hl_sandbox_adopt_config(sb, cfg)) != HL_OK) return st;

    vs = (hl_vm_setup){ .cr3 = HL_PT_GPA, .rip = sb->lo.entry, .rsp = sb->lo.stack + sb->lo.sizes.scratch,
                        .rdi = HL_PEB_GPA };
    hl_sandbox_vm_setup(sb, &vs);
    if (!hl_files_dup(sb->files, cfg->files, cfg->sizes.nfiles))
        return fail(sb, HL_ERR_IO, "duplicating mapped file descriptors: %s", strerror(errno));
    sb->nfiles = cfg->sizes.nfiles;
    if ((st = hl_sandbox_map_files(sb, &vs)) || (st = hl_vm_create(&sb->vm, &vs, sb->err))) return st;
    sb->in_top = HL_BUF_EMPTY;
    /* a confined sandbox's guest runs only on its worker, initialisation included. The
     * initialisation has a time limit of its own, so that a guest that never finishes it
     * cannot hang the creation; calls then get the configuration's call limit. */
    sb->timeout_ms = cfg->init_timeout_ms;
    st = sb->confine ? hl_confine_run(sb, "guest initialisation", init_job, &last) : init_job(sb, &last);
    sb->timeout_ms = cfg->timeout_ms;
    if (st != HL_OK) {
        char why[HL_ERR_LEN];
        memcpy(why, sb->err, sizeof why);
        return fail(sb, st, "guest initialisation failed: %s", why);
    }
    if ((st = read_funcs(sb, last)) != HL_OK) return st;
    sb->state = HL_STATE_READY;
    return HL_OK;
}

hl_status hl_sandbox_new_from_memory(hl_sandbox **out, const void *elf, size_t len, const hl_config *cfg)
{
    hl_sandbox *sb;
    hl_status st;
    if (!out || !cfg || (!elf && len))
        return hl_errf(tls_err, HL_ERR_INVALID_ARG, "hl_sandbox_new: out and cfg are required");
    *out = NULL;
    if (!(sb = hl_sandbox_alloc())) return hl_errf(tls_err, HL_ERR_NO_MEMORY, "out of memory");
    st = create(sb, elf, len, cfg);
    return hl_sandbox_finish(out, sb, st);
}

hl_status hl_sandbox_new_from_file(hl_sandbox **out, const char *path, const hl_config *cfg)
{
    FILE *f;
    uint8_t *data = NULL;
    long size;
    struct stat stt;
    hl_status st;
    if (out) *out = NULL;
    if (!path) return hl_errf(tls_err, HL_ERR_INVALID_ARG, "hl_sandbox_new_from_file: path is NULL");
    f = fopen(path, "rb");
    if (!f) return hl_errf(tls_err, HL_ERR_IO, "cannot open guest '%s': %s", path, strerror(errno));
    if (fstat(fileno(f), &stt) < 0) {
        st = hl_errf(tls_err, HL_ERR_IO, "cannot read guest '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(stt.st_mode)) {
        st = hl_errf(tls_err, HL_ERR_IO, "cannot read guest '%s': not a regular file", path);
        goto done;
    }
    size = (long)stt.st_size;
    if ((uint64_t)size > (uint64_t)HL_ELF_MAX_SPAN * 2) {
        st = hl_errf(tls_err, HL_ERR_BAD_GUEST, "guest '%s' is too large (%ld bytes)", path, size);
        goto done;
    }
    data = malloc(size ? (size_t)size : 1);
    if (!data) {
        st = hl_errf(tls_err, HL_ERR_NO_MEMORY, "out of memory reading '%s'", path);
        goto done;
    }
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        st = hl_errf(tls_err, HL_ERR_IO, "cannot read guest '%s': short read", path);
        goto done;
    }
    st = hl_sandbox_new_from_memory(out, data, (size_t)size, cfg);
    if (st != HL_OK) {
        char why[HL_ERR_LEN];
        memcpy(why, tls_err, sizeof why);
        hl_errf(tls_err, st, "%s: %s", path, why);
    }
done:
    free(data);
    fclose(f);
    return st;
}

hl_sandbox *hl_sandbox_alloc(void)
{
    hl_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return NULL;
    sb->vm.vmfd = sb->vm.vcpufd = sb->vm.statsfd = -1;
    sb->emul_mark = -1;
    sb->state = HL_STATE_UNRECOVERABLE;
    return sb;
}

/* Ends a creation: on success hands sb out, else keeps its error for this thread and frees it. */
hl_status hl_sandbox_finish(hl_sandbox **out, hl_sandbox *sb, hl_status st)
{
    if (st != HL_OK) {
        memcpy(tls_err, sb->err, sizeof tls_err);
        hl_sandbox_free(sb);
        return st;
    }
    tls_err[0] = 0;
    *out = sb;
    return HL_OK;
}

hl_status hl_set_thread_error(hl_status st, const char *msg)
{
    snprintf(tls_err, sizeof tls_err, "%s", msg);
    return st;
}

void hl_sandbox_free(hl_sandbox *sb)
{
    if (!sb) return;
    hl_confine_stop(sb); /* first: the worker uses the vCPU */
    hl_cancel_fini(sb);
    hl_vm_destroy(&sb->vm);
    if (sb->mem) munmap(sb->mem, sb->lo.total);
    for (int i = 0; i < sb->nfiles; i++)
        if (sb->file_host[i]) munmap(sb->file_host[i], HL_ALIGN_UP(sb->files[i].size, HL_PAGE));
    hl_files_close(sb->files, sb->nfiles);
    hl_snapshot_free(sb->base);
    track_free(&sb->rw);
    track_free(&sb->pt);
    hl_guestfns_free(sb->guestfns, sb->nguestfns);
    free(sb->hostfns);
    free(sb->outcopy);
    free(sb->recs);
    free(sb->retmem);
    free(sb);
}

hl_state hl_sandbox_state(const hl_sandbox *sb) { return sb ? sb->state : HL_STATE_UNRECOVERABLE; }
const char *hl_last_error(const hl_sandbox *sb) { return sb ? sb->err : tls_err; }
hl_status hl_sandbox_set_timeout(hl_sandbox *sb, uint64_t ms)
{
    if (!sb) return HL_ERR_INVALID_ARG;
    sb->timeout_ms = ms;
    return HL_OK;
}

int hl_last_error_code(const hl_sandbox *sb) { return sb ? sb->err_code : 0; }
uint64_t hl_sandbox_exit_count(const hl_sandbox *sb) { return sb ? sb->exits : 0; }
uint64_t hl_sandbox_pt_repairs(const hl_sandbox *sb) { return sb ? sb->pt_repairs : 0; }

int hl_sandbox_fn_count(const hl_sandbox *sb)
{
    int n = 0;
    for (int i = 0; sb && i < sb->nguestfns; i++) n += !sb->guestfns[i].hidden;
    return n;
}

hl_status hl_sandbox_fn_info(const hl_sandbox *sb, int visible, const char **name, hl_type *ret,
                           const hl_type **params, int *nparams)
{
    int i = 0;
    if (!sb || visible < 0) return HL_ERR_INVALID_ARG;
    for (; i < sb->nguestfns; i++)
        if (!sb->guestfns[i].hidden && visible-- == 0) break;
    if (i >= sb->nguestfns) return HL_ERR_INVALID_ARG;
    if (name) *name = sb->guestfns[i].name;
    if (ret) *ret = sb->guestfns[i].ret;
    if (params) *params = sb->guestfns[i].params;
    if (nparams) *nparams = sb->guestfns[i].nparams;
    return HL_OK;
}

/* ---- calls ---- */
/* Copies a string/bytes return value into memory owned by sb. */
static hl_status keep_value(hl_sandbox *sb, hl_value *v)
{
    size_t need;
    if (v->type != HL_STRING && v->type != HL_BYTES) return HL_OK;
    need = v->v.buf.len + 1;
    if (need > sb->retcap) {
        uint8_t *p = realloc(sb->retmem, need);
        if (!p) return fail(sb, HL_ERR_NO_MEMORY, "out of memory for the return value");
        sb->retmem = p;
        sb->retcap = need;
    }
    if (v->v.buf.len) memcpy(sb->retmem, v->v.buf.ptr, v->v.buf.len);
    sb->retmem[v->v.buf.len] = 0;
    v->v.buf.ptr = sb->retmem;
    return HL_OK;
}

hl_status hl_call(hl_sandbox *sb, const char *name, hl_type ret_type, const hl_value *args, int nargs,
                  hl_value *ret)
{
    const hl_guestfn *fn;
    const hl_rec *last = NULL;
    char msg[HL_ERR_LEN];
    hl_push ps;
    size_t top;
    hl_reader r;
    hl_msg_result res;
    hl_status st;

    if (!sb) return HL_ERR_INVALID_ARG;
    /* a confined sandbox's calls run whole on its worker thread (confine.c) */
    if (sb->confine && !hl_confine_on_worker(sb)) return hl_confine_call(sb, name, ret_type, args, nargs, ret);
    sb->err_code = 0;
    if (sb->state != HL_STATE_READY)
        return fail(sb, HL_ERR_STATE, "sandbox is %s (after: %s)",
                    sb->state == HL_STATE_POISONED ? "poisoned" : "unrecoverable", sb->poison_why);
    if (!name || !ret || nargs < 0 || nargs > HL_MAX_ARGS || (nargs && !args))
        return fail(sb, HL_ERR_INVALID_ARG, "hl_call: name and ret are required and nargs must be 0..%d",
                    HL_MAX_ARGS);
    fn = find_guestfn(sb, name);
    if (!fn) return fail(sb, HL_ERR_NOT_FOUND, "guest function '%s' not found", name);
    if (check_args(msg, sizeof msg, "guest", name, fn->params, fn->nparams, args, nargs))
        return fail(sb, HL_ERR_TYPE, "%s", msg);
    if (ret_type != fn->ret)
        return fail(sb, HL_ERR_TYPE, "guest function '%s' returns %s, not %s", name, hl_type_name(fn->ret),
                    hl_type_name(ret_type));

    hl_push_begin(&ps, hl_gpa_rw(sb, sb->lo.input, sb->lo.sizes.input), sb->lo.sizes.input, HL_BUF_EMPTY,
                  HL_REC_CALL);
    hl_encode_call(&ps.w, name, ret_type, args, nargs);
    top = hl_push_end(&ps);
    note_input_push(sb, &ps);
    if (!top) {
        for (int i = 0; i < nargs; i++)
            if (args[i].type == HL_STRING && memchr(args[i].v.buf.ptr, 0, args[i].v.buf.len))
                return fail(sb, HL_ERR_INVALID_ARG, "argument %d of guest function '%s': string holds a NUL byte",
                            i, name);
        return fail(sb, HL_ERR_NO_MEMORY, "arguments of guest function '%s' do not fit the input buffer (%llu bytes)",
                    name, (unsigned long long)sb->lo.sizes.input);
    }
    put_top(sb, sb->lo.input, top);
    sb->in_top = top;

    sb->call_host_calls = sb->call_output = 0;
    if ((st = hl_cancel_begin(sb)) != HL_OK) return st;
    st = run(sb, RUN_CALL, &last, name);
    hl_cancel_end(sb);
    put_top(sb, sb->lo.input, HL_BUF_EMPTY);
    sb->in_top = HL_BUF_EMPTY;
    if (st != HL_OK) return st;

    hl_r_init(&r, last->payload, last->len);
    if (!hl_decode_result(&r, &res))
        return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest result for '%s' malformed: %s at byte %zu", name,
                               r.why, r.where));
    if (!res.ok) {
        sb->err_code = res.code;
        return fail(sb, HL_ERR_GUEST, "guest function '%s' failed with code %d: %.*s", name, res.code,
                    (int)res.msg_len, res.msg);
    }
    if (res.value.type != ret_type)
        return poison(sb, fail(sb, HL_ERR_PROTOCOL, "guest function '%s' returned %s, expected %s", name,
                               hl_type_name(res.value.type), hl_type_name(ret_type)));
    if ((st = keep_value(sb, &res.value)) != HL_OK) return st;
    *ret = res.value;
    sb->err[0] = 0;
    return HL_OK;
}
