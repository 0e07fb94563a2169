/* hostfns.c - the table of the embedder's host functions, as the guest sees it
 * (hl_host_fn_count, hl_host_fn_at, hl_host_fn_lookup): asked of the host with the SDK's
 * HL_HOSTFN_TABLE call, at most once per guest call. A table kept longer could describe
 * another sandbox's configuration: after a restore, or in a sandbox made from a snapshot. */
#include <stdlib.h>
#include <string.h>

#include "guest_internal.h"
#include "hyperlight_guest.h"
#include "wire.h"

static hl_host_fn_info *table;
static char *names; /* table[i].name points in here */
static int ntable = -1;
static uint64_t table_call = UINT64_MAX; /* hl_guest_call_seq when the table was read */

struct fill {
    hl_host_fn_info *out;
    char *names;
    size_t used;
};

static const char *take(void *ctx, unsigned i, unsigned count, const hl_sig *sig)
{
    struct fill *f = ctx;
    size_t n = strlen(sig->name) + 1;
    (void)count;
    memcpy(f->names + f->used, sig->name, n);
    f->out[i].name = f->names + f->used;
    f->out[i].ret = sig->ret;
    f->out[i].nparams = sig->nparams;
    memcpy(f->out[i].params, sig->params, sizeof sig->params);
    f->used += n;
    return NULL;
}

static void forget(void)
{
    free(table);
    free(names);
    table = NULL;
    names = NULL;
    ntable = -1;
}

/* Reads the table from the host unless this guest call already did. */
static int load(void)
{
    hl_value raw;
    hl_reader r;
    unsigned count;
    struct fill f;
    int rc;

    if (table_call == hl_guest_call_seq && ntable >= 0) return 0;
    forget();
    if ((rc = hl_call_host(HL_HOSTFN_TABLE, HL_BYTES, NULL, 0, &raw)) != 0) return rc;
    hl_r_init(&r, raw.v.buf.ptr, raw.v.buf.len);
    count = hl_r_u16(&r);
    table = calloc(count ? count : 1, sizeof *table);
    names = malloc(raw.v.buf.len + count + 1); /* each name's bytes, plus its NUL */
    f = (struct fill){ table, names, 0 };
    hl_r_init(&r, raw.v.buf.ptr, raw.v.buf.len);
    if (!table || !names || !hl_decode_funcs(&r, take, &f)) {
        hl_value_free(&raw);
        forget();
        return HL_GUEST_ERR_ABI;
    }
    hl_value_free(&raw);
    ntable = (int)count;
    table_call = hl_guest_call_seq;
    return 0;
}

int hl_host_fn_count(void) { return load() == 0 ? ntable : -1; }

const hl_host_fn_info *hl_host_fn_at(int i)
{
    if (load() != 0 || i < 0 || i >= ntable) return NULL;
    return &table[i];
}

const hl_host_fn_info *hl_host_fn_lookup(const char *name)
{
    if (!name || load() != 0) return NULL;
    for (int i = 0; i < ntable; i++)
        if (strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}
