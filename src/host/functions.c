/* functions.c - the guest's and the host's function tables: lookup, argument checks,
 * reading the guest's table (hostile input), and listing it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "functions.h"
#include "sandbox.h"

const hl_hostfn *hl_hostfn_find(const hl_hostfn *fns, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(fns[i].name, name) == 0) return &fns[i];
    return NULL;
}

const hl_guestfn *hl_guestfn_find(const hl_guestfn *fns, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(fns[i].name, name) == 0) return &fns[i];
    return NULL;
}

const char *hl_args_check(char *msg, size_t len, const char *kind, const char *name, const hl_type *params,
                          int nparams, const hl_value *args, int nargs)
{
    if (nargs != nparams) {
        snprintf(msg, len, "wrong number of arguments to %s function '%s': got %d, expected %d", kind, name, nargs,
                 nparams);
        return msg;
    }
    for (int i = 0; i < nargs; i++)
        if (args[i].type != params[i]) {
            snprintf(msg, len, "wrong type for argument %d of %s function '%s': expected %s, got %s", i, kind, name,
                     hl_type_name(params[i]), hl_type_name(args[i].type));
            return msg;
        }
    return NULL;
}

void hl_guestfns_free(hl_guestfn *fns, int n)
{
    for (int i = 0; i < n; i++) free(fns[i].name);
    free(fns);
}

hl_status hl_guestfns_copy(hl_guestfn **dst, const hl_guestfn *src, int n)
{
    *dst = calloc(n ? (size_t)n : 1, sizeof **dst);
    if (!*dst) return HL_ERR_NO_MEMORY;
    for (int i = 0; i < n; i++) {
        (*dst)[i] = src[i];
        if (!((*dst)[i].name = strdup(src[i].name))) {
            hl_guestfns_free(*dst, i);
            *dst = NULL;
            return HL_ERR_NO_MEMORY;
        }
    }
    return HL_OK;
}

static const char no_memory[] = "out of memory"; /* keep's refusal, told apart by its address */

typedef struct guestfns_out {
    hl_guestfn **fns;
    int *n;
} guestfns_out;

/* Keeps guest function (i) of (count), which hl_decode_funcs has checked; the table is
 * allocated with the first. */
static const char *keep(void *ctx, unsigned i, unsigned count, const hl_sig *sig)
{
    guestfns_out *o = ctx;
    hl_guestfn *f;
    if (i == 0 && !(*o->fns = calloc(count, sizeof **o->fns))) return no_memory;
    f = &(*o->fns)[i];
    if (!(f->name = strdup(sig->name))) return no_memory;
    f->hidden = hl_sig_reserved(sig->name);
    f->ret = sig->ret;
    f->nparams = sig->nparams;
    memcpy(f->params, sig->params, sizeof f->params);
    ++*o->n;
    return NULL;
}

hl_status hl_guestfns_read(const hl_rec *rec, hl_guestfn **fns, int *n, char *err)
{
    guestfns_out o = { fns, n };
    hl_reader r;
    hl_r_init(&r, rec->payload, rec->len);
    if (hl_decode_funcs(&r, keep, &o)) return HL_OK;
    if (r.why == no_memory) return hl_errf(err, HL_ERR_NO_MEMORY, "out of memory");
    return hl_errf(err, HL_ERR_PROTOCOL, "guest function table malformed: %s at byte %zu", r.why, r.where);
}

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

char *hl_signature_format(char *buf, size_t len, const char *name, hl_type ret, const hl_type *params, int nparams)
{
    size_t at = 0;
    int n;
    if (!buf || !len) return buf;
    buf[0] = 0;
    n = snprintf(buf, len, "%s(", name);
    for (int i = 0; n >= 0 && (at += (size_t)n) < len && i < nparams; i++)
        n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", hl_type_name(params[i]));
    if (at < len) snprintf(buf + at, len - at, ") -> %s", hl_type_name(ret));
    return buf;
}
