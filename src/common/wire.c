/* wire.c - the boundary's byte formats: primitives, values, messages, record stacks. */
#include "wire.h"

#include <string.h>

/* ---- writer ---- */
void hl_w_init(hl_writer *w, void *p, size_t cap)
{
    w->p = p;
    w->cap = cap;
    w->len = 0;
    w->bad = false;
}

void hl_w_mem(hl_writer *w, const void *src, size_t n)
{
    if (w->bad || n > w->cap - w->len) {
        w->bad = true;
        return;
    }
    if (n) memcpy(w->p + w->len, src, n);
    w->len += n;
}

/* Little-endian stores, spelled out so the format does not depend on the host's order. */
static void w_le(hl_writer *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    hl_w_mem(w, b, (size_t)n);
}
void hl_w_u8(hl_writer *w, uint8_t v) { w_le(w, v, 1); }
void hl_w_u16(hl_writer *w, uint16_t v) { w_le(w, v, 2); }
void hl_w_u32(hl_writer *w, uint32_t v) { w_le(w, v, 4); }
void hl_w_u64(hl_writer *w, uint64_t v) { w_le(w, v, 8); }

void hl_w_name(hl_writer *w, const char *name, size_t n)
{
    if (n == 0 || n > HL_MAX_NAME || memchr(name, 0, n)) {
        w->bad = true;
        return;
    }
    hl_w_u8(w, (uint8_t)n);
    hl_w_mem(w, name, n);
}

void hl_w_value(hl_writer *w, const hl_value *v)
{
    uint32_t u32;
    uint64_t u64;
    hl_w_u8(w, (uint8_t)v->type);
    switch (v->type) {
    case HL_VOID: break;
    case HL_I32:
    case HL_U32: hl_w_u32(w, v->v.u32); break;
    case HL_I64:
    case HL_U64: hl_w_u64(w, v->v.u64); break;
    case HL_F32:
        memcpy(&u32, &v->v.f32, 4);
        hl_w_u32(w, u32);
        break;
    case HL_F64:
        memcpy(&u64, &v->v.f64, 8);
        hl_w_u64(w, u64);
        break;
    case HL_BOOL: hl_w_u8(w, v->v.b ? 1 : 0); break;
    case HL_STRING:
    case HL_BYTES:
        if (v->v.buf.len > UINT32_MAX || (v->v.buf.len && !v->v.buf.ptr) ||
            (v->type == HL_STRING && v->v.buf.len && memchr(v->v.buf.ptr, 0, v->v.buf.len))) {
            w->bad = true;
            return;
        }
        hl_w_u32(w, (uint32_t)v->v.buf.len);
        hl_w_mem(w, v->v.buf.ptr, v->v.buf.len);
        if (v->type == HL_STRING) hl_w_u8(w, 0);
        break;
    default: w->bad = true; break;
    }
}

/* ---- reader ---- */
void hl_r_init(hl_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->why = NULL;
    r->where = 0;
}

void hl_r_fail(hl_reader *r, const char *why)
{
    if (!r->why) {
        r->why = why;
        r->where = r->pos;
    }
}

const uint8_t *hl_r_mem(hl_reader *r, size_t n)
{
    if (r->why) return NULL;
    if (n > r->len - r->pos) {
        hl_r_fail(r, "truncated");
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static uint64_t r_le(hl_reader *r, int n)
{
    const uint8_t *b = hl_r_mem(r, (size_t)n);
    uint64_t v = 0;
    if (!b) return 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}
uint8_t hl_r_u8(hl_reader *r) { return (uint8_t)r_le(r, 1); }
uint16_t hl_r_u16(hl_reader *r) { return (uint16_t)r_le(r, 2); }
uint32_t hl_r_u32(hl_reader *r) { return (uint32_t)r_le(r, 4); }
uint64_t hl_r_u64(hl_reader *r) { return r_le(r, 8); }

bool hl_r_name(hl_reader *r, char *out)
{
    size_t n = hl_r_u8(r);
    const uint8_t *s;
    out[0] = 0;
    if (r->why) return false;
    if (n == 0) {
        hl_r_fail(r, "empty name");
        return false;
    }
    s = hl_r_mem(r, n);
    if (!s) return false;
    if (memchr(s, 0, n)) {
        hl_r_fail(r, "NUL byte in name");
        return false;
    }
    memcpy(out, s, n);
    out[n] = 0;
    return true;
}

bool hl_r_value(hl_reader *r, hl_value *out)
{
    uint32_t u32, n;
    uint64_t u64;
    uint8_t t = hl_r_u8(r);
    if (r->why) return false;
    out->type = (hl_type)t;
    switch (t) {
    case HL_VOID: out->v.u64 = 0; break;
    case HL_I32:
    case HL_U32: out->v.u32 = hl_r_u32(r); break;
    case HL_I64:
    case HL_U64: out->v.u64 = hl_r_u64(r); break;
    case HL_F32:
        u32 = hl_r_u32(r);
        memcpy(&out->v.f32, &u32, 4);
        break;
    case HL_F64:
        u64 = hl_r_u64(r);
        memcpy(&out->v.f64, &u64, 8);
        break;
    case HL_BOOL:
        t = hl_r_u8(r);
        if (!r->why && t > 1) {
            hl_r_fail(r, "bool not 0 or 1");
            return false;
        }
        out->v.b = t == 1;
        break;
    case HL_STRING:
    case HL_BYTES:
        n = hl_r_u32(r);
        out->v.buf.len = n;
        out->v.buf.ptr = hl_r_mem(r, n);
        if (r->why) return false;
        if (t == HL_STRING) {
            const uint8_t *nul = hl_r_mem(r, 1);
            if (!nul) return false;
            if (*nul != 0 || memchr(out->v.buf.ptr, 0, n)) {
                hl_r_fail(r, "string not NUL-terminated or holds a NUL byte");
                return false;
            }
            out->v.buf.ptr = (const char *)out->v.buf.ptr; /* points at a terminated string */
        }
        break;
    default: hl_r_fail(r, "unknown value type"); return false;
    }
    return r->why == NULL;
}

bool hl_r_done(hl_reader *r)
{
    if (!r->why && r->pos != r->len) hl_r_fail(r, "trailing bytes");
    return r->why == NULL;
}

/* ---- messages ---- */
bool hl_decode_call(hl_reader *r, hl_msg_call *out)
{
    if (!hl_r_name(r, out->name)) return false;
    out->ret = (hl_type)hl_r_u8(r);
    out->argc = hl_r_u8(r);
    if (r->why) return false;
    if ((unsigned)out->ret > HL_TYPE_MAX) {
        hl_r_fail(r, "unknown return type");
        return false;
    }
    if (out->argc > HL_MAX_ARGS) {
        hl_r_fail(r, "too many arguments");
        return false;
    }
    for (int i = 0; i < out->argc; i++) {
        if (!hl_r_value(r, &out->args[i])) return false;
        if (out->args[i].type == HL_VOID) {
            hl_r_fail(r, "void argument");
            return false;
        }
    }
    return hl_r_done(r);
}

static bool r_message(hl_reader *r, const char **msg, uint32_t *len)
{
    *len = hl_r_u32(r);
    if (r->why) return false;
    if (*len > HL_MAX_MESSAGE) {
        hl_r_fail(r, "message longer than HL_MAX_MESSAGE");
        return false;
    }
    *msg = (const char *)hl_r_mem(r, *len);
    return r->why == NULL;
}

bool hl_decode_result(hl_reader *r, hl_msg_result *out)
{
    uint8_t ok = hl_r_u8(r);
    if (r->why) return false;
    out->ok = ok == 1;
    if (ok == 1) {
        if (!hl_r_value(r, &out->value)) return false;
    } else if (ok == 0) {
        out->code = (int32_t)hl_r_u32(r);
        if (!r_message(r, &out->msg, &out->msg_len)) return false;
    } else {
        hl_r_fail(r, "result flag not 0 or 1");
        return false;
    }
    return hl_r_done(r);
}

bool hl_decode_log(hl_reader *r, hl_msg_log *out)
{
    uint8_t flen;
    const uint8_t *f;
    out->level = hl_r_u8(r);
    if (!r->why && out->level > HL_LOG_LEVEL_MAX) {
        r->pos--; /* report the level byte itself */
        hl_r_fail(r, "unknown log level");
        return false;
    }
    out->line = hl_r_u32(r);
    flen = hl_r_u8(r);
    f = hl_r_mem(r, flen);
    if (r->why) return false;
    if (memchr(f, 0, flen)) {
        hl_r_fail(r, "NUL byte in file name");
        return false;
    }
    memcpy(out->file, f, flen);
    out->file[flen] = 0;
    if (!r_message(r, &out->msg, &out->msg_len)) return false;
    return hl_r_done(r);
}

bool hl_decode_abort(hl_reader *r, hl_msg_abort *out)
{
    out->code = (int32_t)hl_r_u32(r);
    if (!r_message(r, &out->msg, &out->msg_len)) return false;
    return hl_r_done(r);
}

void hl_encode_call(hl_writer *w, const char *name, hl_type ret, const hl_value *args, int argc)
{
    if (argc < 0 || argc > HL_MAX_ARGS || (unsigned)ret > HL_TYPE_MAX) {
        w->bad = true;
        return;
    }
    for (int i = 0; i < argc; i++)
        if (args[i].type == HL_VOID) w->bad = true; /* the decoder refuses void arguments */
    hl_w_name(w, name, strlen(name));
    hl_w_u8(w, (uint8_t)ret);
    hl_w_u8(w, (uint8_t)argc);
    for (int i = 0; i < argc; i++) hl_w_value(w, &args[i]);
}

void hl_encode_ok(hl_writer *w, const hl_value *v)
{
    hl_w_u8(w, 1);
    hl_w_value(w, v);
}

static void w_message(hl_writer *w, const char *msg, size_t len)
{
    if (len > HL_MAX_MESSAGE) len = HL_MAX_MESSAGE; /* truncate rather than fail */
    hl_w_u32(w, (uint32_t)len);
    hl_w_mem(w, msg, len);
}

void hl_encode_error(hl_writer *w, int32_t code, const char *msg, size_t msg_len)
{
    hl_w_u8(w, 0);
    hl_w_u32(w, (uint32_t)code);
    w_message(w, msg, msg_len);
}

void hl_encode_abort(hl_writer *w, int32_t code, const char *msg, size_t msg_len)
{
    hl_w_u32(w, (uint32_t)code);
    w_message(w, msg, msg_len);
}

void hl_encode_log(hl_writer *w, int level, const char *file, uint32_t line, const char *msg,
                   size_t msg_len)
{
    size_t flen = file ? strlen(file) : 0;
    if (level < 0 || level > HL_LOG_LEVEL_MAX) {
        w->bad = true;
        return;
    }
    if (flen > HL_MAX_NAME) file += flen - HL_MAX_NAME, flen = HL_MAX_NAME; /* keep the tail */
    hl_w_u8(w, (uint8_t)level);
    hl_w_u32(w, line);
    hl_w_u8(w, (uint8_t)flen);
    hl_w_mem(w, file, flen);
    w_message(w, msg, msg_len);
}

/* ---- record stacks ---- */
static uint64_t ld64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

bool hl_push_begin(hl_push *ps, uint8_t *buf, size_t size, size_t top, uint16_t kind)
{
    ps->buf = buf;
    ps->size = size;
    ps->start = top;
    ps->kind = kind;
    if (top < HL_BUF_EMPTY || top % 8 || top > size || size - top < HL_REC_HEADER + HL_REC_TRAILER) {
        hl_w_init(&ps->w, buf, 0);
        ps->w.bad = true;
        return false;
    }
    hl_w_init(&ps->w, buf + top + HL_REC_HEADER, size - top - HL_REC_HEADER - HL_REC_TRAILER);
    return true;
}

size_t hl_push_end(hl_push *ps)
{
    size_t len = ps->w.len, padded = (len + 7) & ~(size_t)7, end;
    uint8_t *h;
    if (ps->w.bad || padded > ps->w.cap || len > UINT32_MAX) return 0;
    h = ps->buf + ps->start;
    for (int i = 0; i < 4; i++) h[i] = (uint8_t)(len >> (8 * i));
    h[4] = (uint8_t)ps->kind;
    h[5] = (uint8_t)(ps->kind >> 8);
    h[6] = h[7] = 0;
    memset(h + HL_REC_HEADER + len, 0, padded - len);
    end = ps->start + HL_REC_HEADER + padded;
    st64(ps->buf + end, ps->start);
    return end + HL_REC_TRAILER;
}

/* Checks the record at offset `at` in buf[0, top); fills rec. */
static const char *check_rec(const uint8_t *buf, size_t at, size_t top, hl_rec *rec)
{
    uint32_t len;
    uint16_t kind;
    size_t padded;
    if (at % 8) return "misaligned record";
    if (top - at < HL_REC_HEADER + HL_REC_TRAILER) return "record header beyond top";
    len = (uint32_t)buf[at] | (uint32_t)buf[at + 1] << 8 | (uint32_t)buf[at + 2] << 16 |
          (uint32_t)buf[at + 3] << 24;
    kind = (uint16_t)(buf[at + 4] | buf[at + 5] << 8);
    if (buf[at + 6] || buf[at + 7]) return "nonzero reserved header bytes";
    if (kind == 0 || kind > HL_REC_KIND_MAX) return "unknown record kind";
    padded = ((size_t)len + 7) & ~(size_t)7;
    if (padded > top - at - HL_REC_HEADER - HL_REC_TRAILER) return "record length beyond top";
    for (size_t i = len; i < padded; i++)
        if (buf[at + HL_REC_HEADER + i]) return "nonzero padding";
    if (ld64(buf + at + HL_REC_HEADER + padded) != at) return "bad back pointer";
    rec->kind = kind;
    rec->len = len;
    rec->offset = at;
    rec->payload = buf + at + HL_REC_HEADER;
    return NULL;
}

int hl_stack_parse(const uint8_t *buf, size_t top, hl_rec *recs, int max, const char **why,
                   size_t *where)
{
    size_t at = HL_BUF_EMPTY;
    int n = 0;
    *why = NULL;
    *where = 0;
    if (top < HL_BUF_EMPTY || top % 8) {
        *why = "stack top out of range or misaligned";
        return -1;
    }
    while (at < top) {
        hl_rec rec;
        const char *e = check_rec(buf, at, top, &rec);
        if (!e && n >= max) e = "too many records";
        if (e) {
            *why = e;
            *where = at;
            return -1;
        }
        recs[n++] = rec;
        at += hl_rec_size(rec.len);
    }
    return n;
}

bool hl_stack_peek(const uint8_t *buf, size_t top, hl_rec *rec, const char **why)
{
    uint64_t start;
    if (top < HL_BUF_EMPTY + HL_REC_HEADER + HL_REC_TRAILER || top % 8) {
        *why = top == HL_BUF_EMPTY ? "stack empty" : "stack top out of range or misaligned";
        return false;
    }
    start = ld64(buf + top - HL_REC_TRAILER);
    if (start < HL_BUF_EMPTY || start > top - HL_REC_HEADER - HL_REC_TRAILER) {
        *why = "bad back pointer";
        return false;
    }
    *why = check_rec(buf, (size_t)start, top, rec);
    if (!*why && start + hl_rec_size(rec->len) != top) *why = "record does not end at top";
    return *why == NULL;
}

__attribute__((visibility("default"))) const char *hl_type_name(int type)
{
    static const char *const names[] = { "void", "i32", "u32", "i64",    "u64",
                                         "f32",  "f64", "bool", "string", "bytes" };
    return type >= 0 && type <= HL_TYPE_MAX ? names[type] : "?";
}

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
        if (named_before(r->p, first, at, sig.name))
            hl_r_fail(r, "duplicate function name");
        else if (hl_sig_reserved(sig.name) ? ++nsdk > HL_MAX_SDK_FUNCS : ++nown > HL_MAX_FUNCS)
            hl_r_fail(r, "too many functions");
        else if (take && (why = take(ctx, i, count, &sig)))
            hl_r_fail(r, why);
    }
    return hl_r_done(r);
}
