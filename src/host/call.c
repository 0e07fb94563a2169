/* call.c - the call path: hl_call, the run loop, and what the guest writes back.
 *
 * A call is one KVM_RUN per exit: the host pushes a CALL record on the input stack and runs
 * the vCPU, which resumes right after its previous `out` (the guest waits in its dispatch
 * loop); the guest answers with records on the output stack and one `out`. The host copies
 * the output stack, validates it whole, and only then acts on it.
 *
 * One executor runs the guest: exec() runs a job (the guest's initialisation, or a call
 * whose CALL record is already pushed) on the calling thread, or on the sandbox's confined
 * worker (confine.c). Arguments are checked and encoded, and results decoded, on the
 * caller's thread either way; only the VM and the host functions run on the worker. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "call.h"
#include "cancel.h"
#include "confine.h"
#include "error.h"
#include "fault.h"
#include "hostcall.h"

enum { RUN_INIT, RUN_CALL };

void hl_stack_set_top(hl_sandbox *sb, hl_gpa buf, uint64_t top)
{
    uint8_t *p = hl_gpa_rw(sb, buf, 8);
    memcpy(p, &top, 8);
    if (buf == sb->lo.input && top > sb->in_max) sb->in_max = top;
}

/* Host writes bypass KVM's dirty log: whatever a push into the input buffer wrote, even a
 * push that did not fit and failed, must be restored (in_max covers it). */
void hl_input_note(hl_sandbox *sb, const hl_push *ps)
{
    uint64_t end = ps->start + HL_REC_HEADER + ((ps->w.len + 7) & ~(size_t)7) + HL_REC_TRAILER;
    if (end > sb->lo.sizes.input) end = sb->lo.sizes.input;
    if (end > sb->in_max) sb->in_max = end;
}

/* ---- the output stack ---- */
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
        hl_fail(sb, HL_ERR_PROTOCOL, "guest output buffer corrupt: top 0x%llx outside 0x8..0x%llx or misaligned",
                (unsigned long long)top, (unsigned long long)sb->lo.sizes.output);
        return -1;
    }
    memcpy(sb->outcopy, buf, top);
    hl_stack_set_top(sb, sb->lo.output, HL_BUF_EMPTY);
    n = hl_stack_parse(sb->outcopy, top, sb->recs, sb->maxrecs, &why, &where);
    if (n < 0) hl_fail(sb, HL_ERR_PROTOCOL, "guest output buffer corrupt: %s at offset 0x%zx", why, where);
    return n;
}

static hl_status over_output(hl_sandbox *sb)
{
    return hl_fail(sb, HL_ERR_CANCELLED, "guest call stopped: it printed and logged more than the limit of %llu bytes",
                   (unsigned long long)sb->max_output);
}

/* Delivers a PRINT or LOG record to the embedder's functions. */
static hl_status deliver(hl_sandbox *sb, const hl_rec *rec)
{
    hl_reader r;
    hl_r_init(&r, rec->payload, rec->len);
    if (rec->kind == HL_REC_PRINT) {
        uint8_t stream = hl_r_u8(&r);
        if (r.why || (stream != 1 && stream != 2))
            return hl_fail(sb, HL_ERR_PROTOCOL, "guest print record at offset 0x%zx: bad stream", rec->offset);
        if ((sb->call_output += rec->len - 1) > sb->max_output) return over_output(sb);
        if (sb->print && rec->len > 1) sb->print(sb->print_user, stream, (const char *)rec->payload + 1, rec->len - 1);
        return HL_OK;
    }
    if (rec->kind == HL_REC_LOG) {
        hl_msg_log lg;
        char msg[HL_MAX_MESSAGE + 1];
        if (!hl_decode_log(&r, &lg))
            return hl_fail(sb, HL_ERR_PROTOCOL, "guest log record at offset 0x%zx malformed: %s", rec->offset, r.why);
        if ((sb->call_output += lg.msg_len) > sb->max_output) return over_output(sb);
        memcpy(msg, lg.msg, lg.msg_len);
        msg[lg.msg_len] = 0;
        if (sb->log) sb->log(sb->log_user, lg.level, msg, lg.file, lg.line);
        return HL_OK;
    }
    return hl_fail(sb, HL_ERR_PROTOCOL, "guest output buffer: unexpected record kind %u at offset 0x%zx", rec->kind,
                   rec->offset);
}

/* Delivers all (n) records but the last and checks that the last one has kind (last_kind),
 * which *last then points at; with last_kind 0, delivers them all. (what) names the port. */
static hl_status drain(hl_sandbox *sb, int n, int last_kind, const char *what, const hl_rec **last)
{
    static const char *const kinds[] = { "?", "CALL", "RESULT", "HOSTCALL", "LOG", "PRINT", "ABORT", "FUNCS" };
    hl_status st;
    int upto = last_kind ? n - 1 : n;
    for (int i = 0; i < upto; i++)
        if ((st = deliver(sb, &sb->recs[i])) != HL_OK) return st;
    if (!last_kind) return HL_OK;
    if (n == 0 || sb->recs[n - 1].kind != last_kind)
        return hl_fail(sb, HL_ERR_PROTOCOL, "guest signalled %s but the last record of its output buffer is not %s",
                       what, kinds[last_kind]);
    *last = &sb->recs[n - 1];
    return HL_OK;
}

/* ---- the run loop ---- */
static hl_status cancelled(hl_sandbox *sb, const char *fn)
{
    if (hl_cancelled(sb) == HL_CANCEL_TIMEOUT)
        return hl_poison(sb, hl_fail(sb, HL_ERR_CANCELLED, HL_WHAT_FMT " timed out after %llu ms", HL_WHAT_ARGS(fn),
                                     (unsigned long long)sb->timeout_ms));
    return hl_poison(sb, hl_fail(sb, HL_ERR_CANCELLED, HL_WHAT_FMT " was interrupted (hl_sandbox_interrupt)",
                                 HL_WHAT_ARGS(fn)));
}

/* The guest registers its virtual-IF page before its first exit; from then on the MSR
 * filter refuses to let it move the page (onto guest data, which kvm_pvm would then write
 * into). Before it, check where the page is: code that ran since could have moved it. */
static hl_status lock_vif(hl_sandbox *sb)
{
    uint64_t vif = sb->lo.meta;
    hl_status st;
    if (hl_vm_is_pvm(sb->vm) && (st = hl_vm_vif_gpa(sb->vm, &vif, sb->err)) != HL_OK) return hl_poison(sb, st);
    if (vif != sb->lo.meta)
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL,
                                     "guest moved its virtual-IF page to 0x%llx (it must stay at 0x%llx)",
                                     (unsigned long long)vif, (unsigned long long)sb->lo.meta));
    if ((st = hl_vm_lock_vif(sb->vm, true, sb->err)) != HL_OK) return hl_poison(sb, st);
    return HL_OK;
}

static hl_status on_abort(hl_sandbox *sb, int n)
{
    const hl_rec *rec = NULL;
    hl_reader r;
    hl_msg_abort ab;
    hl_status st = drain(sb, n, HL_REC_ABORT, "ABORT", &rec);
    if (st != HL_OK) return hl_poison(sb, st);
    hl_r_init(&r, rec->payload, rec->len);
    if (!hl_decode_abort(&r, &ab))
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest abort record malformed: %s", r.why));
    sb->err_code = ab.code;
    sb->err_msg_at = (size_t)snprintf(NULL, 0, "guest aborted with code %d: ", ab.code);
    return hl_poison(sb,
                     hl_fail(sb, HL_ERR_ABORTED, "guest aborted with code %d: %.*s", ab.code, (int)ab.msg_len, ab.msg));
}

static hl_status on_hostcall(hl_sandbox *sb, int n, const char *fn)
{
    const hl_rec *rec = NULL;
    hl_status st = drain(sb, n, HL_REC_HOSTCALL, "HOSTCALL", &rec);
    if (st != HL_OK) return hl_poison(sb, st);
    if (++sb->call_host_calls > sb->max_host_calls)
        return hl_poison(sb, hl_fail(sb, HL_ERR_CANCELLED,
                                     HL_WHAT_FMT " stopped: it made more than the limit of %llu host calls",
                                     HL_WHAT_ARGS(fn), (unsigned long long)sb->max_host_calls));
    if ((st = hl_host_call_serve(sb, rec)) != HL_OK) return st;
    if (hl_cancelled(sb)) return cancelled(sb, fn); /* cancelled while the host function ran */
    return HL_OK;
}

/* An `out` to one of the guest's ports. *done is set when the guest finished (DONE), with
 * its last record in *last. */
static hl_status on_out(hl_sandbox *sb, const hl_exit *ex, int mode, const char *fn, const hl_rec **last, bool *done)
{
    hl_status st;
    int n;
    if (ex->port == HL_PORT_FAULT) return hl_fault_reported(sb);
    if (ex->port != HL_PORT_DONE && ex->port != HL_PORT_HOSTCALL && ex->port != HL_PORT_ABORT &&
        ex->port != HL_PORT_FLUSH)
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest wrote to unknown I/O port 0x%x (rip 0x%llx)",
                                     ex->port, (unsigned long long)hl_guest_rip(sb)));
    if ((n = take_output(sb)) < 0) return hl_poison(sb, HL_ERR_PROTOCOL);
    switch (ex->port) {
    case HL_PORT_FLUSH: return (st = drain(sb, n, 0, "FLUSH", NULL)) == HL_OK ? HL_OK : hl_poison(sb, st);
    case HL_PORT_HOSTCALL: return on_hostcall(sb, n, fn);
    case HL_PORT_ABORT: return on_abort(sb, n);
    default:
        *done = true;
        st = drain(sb, n, mode == RUN_INIT ? HL_REC_FUNCS : HL_REC_RESULT, "DONE", last);
        return st == HL_OK ? HL_OK : hl_poison(sb, st);
    }
}

/* Every other exit ends the call: the guest did something it must not. */
static hl_status on_other_exit(hl_sandbox *sb, const hl_exit *ex)
{
    switch (ex->kind) {
    case HL_EXIT_IN:
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest %s I/O port 0x%x (rip 0x%llx)",
                                     ex->is_write ? "used a string or narrow write on" : "read from", ex->port,
                                     (unsigned long long)hl_guest_rip(sb)));
    case HL_EXIT_MMIO:
        return hl_poison(sb, hl_fail(sb, HL_ERR_FAULT,
                                     "guest fault: %s of unmapped or read-only guest-physical address 0x%llx, rip 0x%llx",
                                     ex->is_write ? "write" : "read", (unsigned long long)ex->addr,
                                     (unsigned long long)hl_guest_rip(sb)));
    case HL_EXIT_SHUTDOWN: return hl_fault_shutdown(sb);
    case HL_EXIT_EMULATION: return hl_fault_emulation(sb);
    case HL_EXIT_HLT:
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest executed hlt (rip 0x%llx)",
                                     (unsigned long long)hl_guest_rip(sb)));
    default:
        return hl_poison(sb, hl_fail(sb, HL_ERR_HYPERVISOR, "unexpected VM exit (KVM exit reason %u, rip 0x%llx)",
                                     ex->reason, (unsigned long long)hl_guest_rip(sb)));
    }
}

/* Runs the guest until it finishes (DONE), then returns its final record in *last. */
static hl_status run(hl_sandbox *sb, int mode, const hl_rec **last, const char *fn)
{
    hl_exit ex;
    hl_status st;
    bool done = false;
    for (;;) {
        hl_cancel_enter_guest(sb);
        st = hl_vm_run(sb->vm, &ex, sb->err);
        hl_cancel_leave_guest(sb);
        if (st != HL_OK) return hl_poison(sb, st);
        sb->exits++;
        if (ex.kind == HL_EXIT_OUT && !hl_vm_vif_locked(sb->vm) && (st = lock_vif(sb)) != HL_OK) return st;
        if (ex.kind == HL_EXIT_OUT) {
            if ((st = on_out(sb, &ex, mode, fn, last, &done)) != HL_OK || done) return st;
        } else if (ex.kind == HL_EXIT_INTR) {
            if (!hl_cancel_spurious(sb)) return cancelled(sb, fn);
            /* else a signal for this thread, not for us: resume */
        } else {
            return on_other_exit(sb, &ex);
        }
    }
}

/* ---- the executor ---- */
typedef struct job {
    int mode;
    const char *fn;
    const hl_rec *last;
} job;

static hl_status run_job(hl_sandbox *sb, void *arg)
{
    job *j = arg;
    hl_status st;
    sb->call_host_calls = sb->call_output = 0;
    if ((st = hl_cancel_begin(sb)) != HL_OK) return st;
    st = run(sb, j->mode, &j->last, j->fn);
    hl_cancel_end(sb);
    return st;
}

/* Runs the job on (sb)'s confined worker, or on this thread. */
static hl_status exec(hl_sandbox *sb, job *j)
{
    return sb->confine ? hl_confine_run(sb, j->fn, run_job, j) : run_job(sb, j);
}

hl_status hl_call_init(hl_sandbox *sb)
{
    job j = { RUN_INIT, NULL, NULL };
    hl_status st = exec(sb, &j);
    if (st != HL_OK) return hl_errprefix(sb->err, st, "guest initialisation failed");
    return hl_guestfns_read(j.last, &sb->guestfns, &sb->nguestfns, sb->err);
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
        if (!p) return hl_fail(sb, HL_ERR_NO_MEMORY, "out of memory for the return value");
        sb->retmem = p;
        sb->retcap = need;
    }
    if (v->v.buf.len) memcpy(sb->retmem, v->v.buf.ptr, v->v.buf.len);
    sb->retmem[v->v.buf.len] = 0;
    v->v.buf.ptr = sb->retmem;
    return HL_OK;
}

/* Checks a call against the guest's signature of (name). */
static hl_status check_call(hl_sandbox *sb, const char *name, hl_type ret_type, const hl_value *args, int nargs)
{
    char msg[HL_ERR_LEN];
    const hl_guestfn *fn;
    if (!name || nargs < 0 || nargs > HL_MAX_ARGS || (nargs && !args))
        return hl_fail(sb, HL_ERR_INVALID_ARG, "hl_call: name and ret are required and nargs must be 0..%d",
                       HL_MAX_ARGS);
    if (!(fn = sb->last_fn) || strcmp(fn->name, name) != 0) {
        if (!(fn = hl_guestfn_find(sb->guestfns, sb->nguestfns, name)))
            return hl_fail(sb, HL_ERR_NOT_FOUND, "guest function '%s' not found", name);
        sb->last_fn = fn;
    }
    bool match = nargs == fn->nparams;
    for (int i = 0; match && i < nargs; i++) match = args[i].type == fn->params[i];
    if (!match && hl_args_check(msg, sizeof msg, "guest", name, fn->params, fn->nparams, args, nargs))
        return hl_fail(sb, HL_ERR_TYPE, "%s", msg);
    if (ret_type != fn->ret)
        return hl_fail(sb, HL_ERR_TYPE, "guest function '%s' returns %s, not %s", name, hl_type_name(fn->ret),
                       hl_type_name(ret_type));
    return HL_OK;
}

/* Pushes the CALL record on the input stack. */
static hl_status push_call(hl_sandbox *sb, const char *name, hl_type ret_type, const hl_value *args, int nargs)
{
    hl_push ps;
    size_t top;
    hl_push_begin(&ps, hl_gpa_rw(sb, sb->lo.input, sb->lo.sizes.input), sb->lo.sizes.input, HL_BUF_EMPTY, HL_REC_CALL);
    hl_encode_call(&ps.w, name, ret_type, args, nargs);
    top = hl_push_end(&ps);
    hl_input_note(sb, &ps);
    if (!top) {
        for (int i = 0; i < nargs; i++)
            if (args[i].type == HL_STRING && memchr(args[i].v.buf.ptr, 0, args[i].v.buf.len))
                return hl_fail(sb, HL_ERR_INVALID_ARG, "argument %d of guest function '%s': string holds a NUL byte",
                               i, name);
        return hl_fail(sb, HL_ERR_TOO_LARGE,
                       "arguments of guest function '%s' do not fit the input buffer (%llu "
                       "bytes)",
                       name, (unsigned long long)sb->lo.sizes.input);
    }
    hl_stack_set_top(sb, sb->lo.input, top);
    sb->in_top = top;
    return HL_OK;
}

/* Decodes the guest's RESULT record into *ret. */
static hl_status take_result(hl_sandbox *sb, const hl_rec *last, const char *name, hl_type ret_type, hl_value *ret)
{
    hl_reader r;
    hl_msg_result res;
    hl_status st;
    hl_r_init(&r, last->payload, last->len);
    if (!hl_decode_result(&r, &res))
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest result for '%s' malformed: %s at byte %zu", name,
                                     r.why, r.where));
    if (!res.ok) {
        sb->err_code = res.code;
        sb->err_msg_at = (size_t)snprintf(NULL, 0, "guest function '%s' failed with code %d: ", name, res.code);
        return hl_fail(sb, HL_ERR_GUEST, "guest function '%s' failed with code %d: %.*s", name, res.code,
                       (int)res.msg_len, res.msg);
    }
    if (res.value.type != ret_type)
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest function '%s' returned %s, expected %s", name,
                                     hl_type_name(res.value.type), hl_type_name(ret_type)));
    if ((st = keep_value(sb, &res.value)) != HL_OK) return st;
    *ret = res.value;
    return HL_OK;
}

hl_status hl_call(hl_sandbox *sb, const char *name, hl_type ret_type, const hl_value *args, int nargs, hl_value *ret)
{
    job j = { RUN_CALL, name, NULL };
    hl_status st;
    if (!sb) return HL_ERR_INVALID_ARG;
    sb->err_code = 0;
    if (sb->state != HL_STATE_READY) return hl_refuse(sb);
    if (!ret)
        return hl_fail(sb, HL_ERR_INVALID_ARG, "hl_call: name and ret are required and nargs must be 0..%d",
                       HL_MAX_ARGS);
    if ((st = check_call(sb, name, ret_type, args, nargs)) != HL_OK || (st = push_call(sb, name, ret_type, args, nargs)))
        return st;
    st = exec(sb, &j);
    hl_stack_set_top(sb, sb->lo.input, HL_BUF_EMPTY);
    sb->in_top = HL_BUF_EMPTY;
    if (st != HL_OK || (st = take_result(sb, j.last, name, ret_type, ret)) != HL_OK) return st;
    sb->err[0] = 0;
    return HL_OK;
}
