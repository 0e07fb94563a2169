/* wire_sig.c - function signatures and the FUNCS record (docs/abi.md): the one codec and
 * the one set of validity rules for the guest's function table, used by the guest SDK, the
 * host and snapshot files. Part of the wire codec (wire.h); freestanding like wire.c. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

/* ---- function signatures and the FUNCS record ---- */
static bool ret_type_ok(int t) { return t >= 0 && t <= HL_TYPE_MAX; }
static bool param_type_ok(int t) { return t > HL_VOID && t <= HL_TYPE_MAX; }

hl_sig_fault hl_sig_check(const char *name, hl_type ret, const hl_type *params, int nparams, int *bad_param)
{
    size_t len = 0;
    while (name && len <= HL_MAX_NAME && name[len]) len++;
    if (len == 0 || len > HL_MAX_NAME) return HL_SIG_NAME;
    if (nparams < 0 || nparams > HL_MAX_ARGS || (nparams && !params)) return HL_SIG_NPARAMS;
    if (!ret_type_ok((int)ret)) return HL_SIG_RET;
    for (int i = 0; i < nparams; i++)
        if (!param_type_ok((int)params[i])) {
            if (bad_param) *bad_param = i;
            return HL_SIG_PARAM;
        }
    return HL_SIG_OK;
}

bool hl_sig_valid(const char *name, hl_type ret, const hl_type *params, int nparams)
{
    return hl_sig_check(name, ret, params, nparams, NULL) == HL_SIG_OK;
}

bool hl_sig_reserved(const char *name)
{
    return strncmp(name, HL_RESERVED_PREFIX, sizeof HL_RESERVED_PREFIX - 1) == 0;
}

void hl_w_sig(hl_writer *w, const char *name, hl_type ret, const hl_type *params, int nparams)
{
    if (!hl_sig_valid(name, ret, params, nparams)) {
        w->bad = true;
        return;
    }
    hl_w_name(w, name, strlen(name));
    hl_w_u8(w, (uint8_t)ret);
    hl_w_u8(w, (uint8_t)nparams);
    for (int i = 0; i < nparams; i++) hl_w_u8(w, (uint8_t)params[i]);
}

bool hl_r_sig(hl_reader *r, hl_sig *out)
{
    uint8_t ret, n;
    out->ret = HL_VOID;
    out->nparams = 0;
    memset(out->params, 0, sizeof out->params);
    if (!hl_r_name(r, out->name)) return false;
    ret = hl_r_u8(r);
    n = hl_r_u8(r);
    if (r->why) return false;
    out->ret = (hl_type)ret;
    if (!ret_type_ok(ret)) {
        hl_r_fail(r, "invalid return type");
        return false;
    }
    out->nparams = n;
    if (n > HL_MAX_ARGS) {
        hl_r_fail(r, "too many parameters");
        return false;
    }
    for (int i = 0; i < n; i++) {
        uint8_t t = hl_r_u8(r);
        if (r->why) {
            out->nparams = i; /* the ones read */
            return false;
        }
        out->params[i] = (hl_type)t;
        if (!param_type_ok(t)) {
            out->nparams = i + 1;
            hl_r_fail(r, "invalid parameter type");
            return false;
        }
    }
    return true;
}

void hl_encode_funcs(hl_writer *w, int n, hl_sig_at at, const void *ctx)
{
    int nsdk = 0;
    if (n < 0 || n > HL_MAX_FUNC_TABLE) {
        w->bad = true;
        return;
    }
    hl_w_u16(w, (uint16_t)n);
    for (int i = 0; i < n && !w->bad; i++) {
        hl_sig_ref f = at(ctx, i);
        hl_w_sig(w, f.name, f.ret, f.params, f.nparams);
        if (!w->bad) nsdk += hl_sig_reserved(f.name);
    }
    if (nsdk > HL_MAX_SDK_FUNCS || n - nsdk > HL_MAX_FUNCS) w->bad = true;
}

/* Whether one of the signatures in p[at, end), which hl_r_sig has accepted (so they are well
 * formed), is called name. Checking against the input needs no copy of the names. */
static bool named_before(const uint8_t *p, size_t at, size_t end, const char *name)
{
    size_t n = strlen(name);
    while (at < end) {
        size_t len = p[at];
        if (len == n && memcmp(p + at + 1, name, n) == 0) return true;
        at += 1 + len + 2 + p[at + 1 + len + 1];
    }
    return false;
}

bool hl_decode_funcs(hl_reader *r, hl_sig_take take, void *ctx)
{
    unsigned count = hl_r_u16(r), nown = 0, nsdk = 0;
    size_t first = r->pos;
    const char *why;
    hl_sig sig;
    if (!r->why && count > HL_MAX_FUNC_TABLE) hl_r_fail(r, "too many functions");
    for (unsigned i = 0; i < count && !r->why; i++) {
        size_t at = r->pos;
        if (!hl_r_sig(r, &sig)) break;
        if (named_before(r->p, first, at, sig.name)) hl_r_fail(r, "duplicate function name");
        else if (hl_sig_reserved(sig.name) ? ++nsdk > HL_MAX_SDK_FUNCS : ++nown > HL_MAX_FUNCS)
            hl_r_fail(r, "too many functions");
        else if (take && (why = take(ctx, i, count, &sig))) hl_r_fail(r, why);
    }
    return hl_r_done(r);
}
