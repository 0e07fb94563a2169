/* fuzz_wire.c - libFuzzer harness for the record-stack parser and the message decoders.
 *
 * Build and run (new corpus entries go to the first directory, seeds are read from the second):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/common \
 *       tests/fuzz/fuzz_wire.c src/common/wire.c -o /tmp/fuzz_wire
 *   mkdir -p /tmp/fuzz_wire_corpus
 *   /tmp/fuzz_wire -max_total_time=60 /tmp/fuzz_wire_corpus tests/fuzz/corpus/wire/
 *
 * The input is a whole buffer as the host sees it: its first 8 bytes are the stack's `top`
 * (little-endian), reduced into [0, size] so that parsing stays inside the input. Then:
 *   - hl_stack_parse: on success every record lies inside [8, top), records tile it exactly,
 *     and parsing again with room for one record less fails with "too many records";
 *   - the parsed records pushed again with hl_push_begin/hl_push_end rebuild the stack;
 *   - hl_stack_peek: agrees with the last parsed record; any record it returns is in bounds;
 *   - each parsed record's payload goes, from a heap copy of exactly its length (so ASan sees
 *     any read past the payload), to the decoder for its kind; whatever decodes is re-encoded,
 *     which must reproduce the payload byte for byte (the format is canonical), must not fit
 *     one byte less, and must decode again to the same message; a function table (FUNCS)
 *     decodes only to valid signatures with distinct names within the table's limits;
 *   - strings and names made of the input's bytes are refused, by the encoders and decoders
 *     alike, exactly when they hold a 0 byte, and are otherwise copied exactly.
 * Any violated property aborts, which libFuzzer reports as a crash. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define MAX_RECS 64

#define ASSERT(c)                                                                     \
    do {                                                                              \
        if (!(c)) {                                                                   \
            fprintf(stderr, "fuzz_wire.c:%d: property violated: %s\n", __LINE__, #c); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A heap copy of exactly n bytes; for n == 0 ASan still returns a (poisoned) block. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n);
    ASSERT(d != NULL);
    if (n) memcpy(d, p, n);
    return d;
}

static bool value_same(const hl_value *a, const hl_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case HL_VOID: return true;
    case HL_I32:
    case HL_U32: return a->v.u32 == b->v.u32;
    case HL_I64:
    case HL_U64: return a->v.u64 == b->v.u64;
    case HL_F32: return memcmp(&a->v.f32, &b->v.f32, 4) == 0;
    case HL_F64: return memcmp(&a->v.f64, &b->v.f64, 8) == 0;
    case HL_BOOL: return a->v.b == b->v.b;
    case HL_STRING:
    case HL_BYTES:
        return a->v.buf.len == b->v.buf.len &&
               (a->v.buf.len == 0 || memcmp(a->v.buf.ptr, b->v.buf.ptr, a->v.buf.len) == 0);
    default: return false;
    }
}

/* A record returned by parse or peek lies inside buf[8, top) and is well formed. */
static void check_rec(const uint8_t *buf, size_t top, const hl_rec *r)
{
    ASSERT(r->offset >= HL_BUF_EMPTY && r->offset % 8 == 0 && r->offset < top);
    ASSERT(r->kind >= 1 && r->kind <= HL_REC_KIND_MAX);
    ASSERT(hl_rec_size(r->len) <= top - r->offset);
    ASSERT(r->payload == buf + r->offset + HL_REC_HEADER);
    ASSERT(buf[r->offset + 6] == 0 && buf[r->offset + 7] == 0);
    ASSERT(ld64(buf + r->offset + hl_rec_size(r->len) - HL_REC_TRAILER) == r->offset);
}

/* Runs enc into a writer of exactly n bytes (must succeed and reproduce want) and of n - 1
 * bytes (must fail). Returns the heap copy of the encoding. */
typedef void (*enc_fn)(hl_writer *w, const void *msg);
static uint8_t *reencode(enc_fn enc, const void *msg, const uint8_t *want, size_t n)
{
    uint8_t *e = malloc(n ? n : 1);
    hl_writer w;
    ASSERT(e);
    hl_w_init(&w, e, n);
    enc(&w, msg);
    ASSERT(!w.bad);
    ASSERT(w.len == n);
    ASSERT(n == 0 || memcmp(e, want, n) == 0);
    if (n > 0) {
        uint8_t *less = malloc(n - 1 ? n - 1 : 1);
        ASSERT(less);
        hl_w_init(&w, less, n - 1);
        enc(&w, msg);
        ASSERT(w.bad);
        free(less);
    }
    return e;
}

static void enc_call(hl_writer *w, const void *m)
{
    const hl_msg_call *c = m;
    hl_encode_call(w, c->name, c->ret, c->args, c->argc);
}
static void enc_result(hl_writer *w, const void *m)
{
    const hl_msg_result *r = m;
    if (r->ok) hl_encode_ok(w, &r->value);
    else hl_encode_error(w, r->code, r->msg, r->msg_len);
}
static void enc_log(hl_writer *w, const void *m)
{
    const hl_msg_log *l = m;
    hl_encode_log(w, l->level, l->file, l->line, l->msg, l->msg_len);
}
static void enc_abort(hl_writer *w, const void *m)
{
    const hl_msg_abort *a = m;
    hl_encode_abort(w, a->code, a->msg, a->msg_len);
}

/* A decoded function table (FUNCS). */
typedef struct funcs {
    int n;
    hl_sig sigs[HL_MAX_FUNC_TABLE];
} funcs;
static funcs g_funcs, g_funcs2;

static const char *keep_sig(void *ctx, unsigned i, unsigned count, const hl_sig *sig)
{
    funcs *f = ctx;
    ASSERT((int)i == f->n && count <= HL_MAX_FUNC_TABLE && i < count);
    f->sigs[f->n++] = *sig;
    return NULL;
}
static hl_sig_ref sig_at(const void *ctx, int i)
{
    const hl_sig *s = &((const funcs *)ctx)->sigs[i];
    return (hl_sig_ref){ .name = s->name, .ret = s->ret, .nparams = s->nparams, .params = s->params };
}
static void enc_funcs(hl_writer *w, const void *m)
{
    const funcs *f = m;
    hl_encode_funcs(w, f->n, sig_at, f);
}

static void check_reader(const hl_reader *r, bool ok, size_t len)
{
    ASSERT(ok == (r->why == NULL));
    ASSERT(r->pos <= len);
    ASSERT(r->where <= len);
    if (ok) ASSERT(r->pos == len);
}

/* Decodes one payload (from p, exactly len bytes) by kind and round-trips what decodes. */
static void decode_payload(uint16_t kind, const uint8_t *p, size_t len)
{
    hl_reader r;
    bool ok;
    hl_r_init(&r, p, len);
    switch (kind) {
    case HL_REC_CALL:
    case HL_REC_HOSTCALL: {
        hl_msg_call c, c2;
        ok = hl_decode_call(&r, &c);
        check_reader(&r, ok, len);
        if (!ok) break;
        ASSERT(c.argc >= 0 && c.argc <= HL_MAX_ARGS);
        ASSERT((unsigned)c.ret <= HL_TYPE_MAX);
        ASSERT(strlen(c.name) >= 1 && strlen(c.name) <= HL_MAX_NAME);
        for (int i = 0; i < c.argc; i++) {
            const hl_value *v = &c.args[i];
            ASSERT(v->type > HL_VOID && v->type <= HL_TYPE_MAX);
            if (v->type == HL_STRING || v->type == HL_BYTES) {
                const uint8_t *s = v->v.buf.ptr;
                ASSERT(s >= p && s <= p + len && v->v.buf.len <= (size_t)(p + len - s));
                if (v->type == HL_STRING) {
                    ASSERT(s + v->v.buf.len < p + len && s[v->v.buf.len] == 0);
                    ASSERT(!memchr(s, 0, v->v.buf.len));
                }
            }
            if (v->type == HL_BOOL) {
                uint8_t raw;
                memcpy(&raw, &v->v.b, 1);
                ASSERT(raw == 0 || raw == 1);
            }
        }
        uint8_t *e = reencode(enc_call, &c, p, len);
        hl_reader r2;
        hl_r_init(&r2, e, len);
        ASSERT(hl_decode_call(&r2, &c2));
        ASSERT(strcmp(c.name, c2.name) == 0);
        ASSERT(c.ret == c2.ret);
        ASSERT(c.argc == c2.argc);
        for (int i = 0; i < c.argc; i++) ASSERT(value_same(&c.args[i], &c2.args[i]));
        free(e);
        break;
    }
    case HL_REC_RESULT: {
        hl_msg_result m, m2;
        ok = hl_decode_result(&r, &m);
        check_reader(&r, ok, len);
        if (!ok) break;
        if (!m.ok)
            ASSERT(m.msg_len <= HL_MAX_MESSAGE && m.msg >= (const char *)p && m.msg + m.msg_len <= (const char *)p + len);
        uint8_t *e = reencode(enc_result, &m, p, len);
        hl_reader r2;
        hl_r_init(&r2, e, len);
        ASSERT(hl_decode_result(&r2, &m2));
        ASSERT(m.ok == m2.ok);
        if (m.ok) {
            ASSERT(value_same(&m.value, &m2.value));
        } else {
            ASSERT(m.code == m2.code && m.msg_len == m2.msg_len);
            ASSERT(memcmp(m.msg, m2.msg, m.msg_len) == 0);
        }
        free(e);
        break;
    }
    case HL_REC_LOG: {
        hl_msg_log m, m2;
        ok = hl_decode_log(&r, &m);
        check_reader(&r, ok, len);
        if (!ok) break;
        ASSERT(m.level >= 0 && m.level <= HL_LOG_LEVEL_MAX);
        ASSERT(strlen(m.file) <= HL_MAX_NAME);
        ASSERT(m.msg_len <= HL_MAX_MESSAGE && m.msg >= (const char *)p && m.msg + m.msg_len <= (const char *)p + len);
        uint8_t *e = reencode(enc_log, &m, p, len);
        hl_reader r2;
        hl_r_init(&r2, e, len);
        ASSERT(hl_decode_log(&r2, &m2));
        ASSERT(m.level == m2.level && m.line == m2.line && strcmp(m.file, m2.file) == 0);
        ASSERT(m.msg_len == m2.msg_len && memcmp(m.msg, m2.msg, m.msg_len) == 0);
        free(e);
        break;
    }
    case HL_REC_ABORT: {
        hl_msg_abort m, m2;
        ok = hl_decode_abort(&r, &m);
        check_reader(&r, ok, len);
        if (!ok) break;
        ASSERT(m.msg_len <= HL_MAX_MESSAGE && m.msg >= (const char *)p && m.msg + m.msg_len <= (const char *)p + len);
        uint8_t *e = reencode(enc_abort, &m, p, len);
        hl_reader r2;
        hl_r_init(&r2, e, len);
        ASSERT(hl_decode_abort(&r2, &m2));
        ASSERT(m.code == m2.code && m.msg_len == m2.msg_len);
        ASSERT(memcmp(m.msg, m2.msg, m.msg_len) == 0);
        free(e);
        break;
    }
    case HL_REC_FUNCS: {
        int nsdk = 0;
        g_funcs.n = g_funcs2.n = 0;
        ok = hl_decode_funcs(&r, keep_sig, &g_funcs);
        check_reader(&r, ok, len);
        if (!ok) break;
        ASSERT(g_funcs.n == (p[0] | p[1] << 8));
        for (int i = 0; i < g_funcs.n; i++) {
            const hl_sig *f = &g_funcs.sigs[i];
            ASSERT(hl_sig_valid(f->name, f->ret, f->params, f->nparams));
            for (int j = f->nparams; j < HL_MAX_ARGS; j++) ASSERT(f->params[j] == HL_VOID);
            for (int j = 0; j < i; j++) ASSERT(strcmp(g_funcs.sigs[j].name, f->name) != 0);
            nsdk += hl_sig_reserved(f->name);
        }
        ASSERT(nsdk <= HL_MAX_SDK_FUNCS && g_funcs.n - nsdk <= HL_MAX_FUNCS);
        uint8_t *e = reencode(enc_funcs, &g_funcs, p, len);
        hl_reader r2;
        hl_r_init(&r2, e, len);
        ASSERT(hl_decode_funcs(&r2, keep_sig, &g_funcs2));
        ASSERT(g_funcs2.n == g_funcs.n);
        for (int i = 0; i < g_funcs.n; i++) {
            const hl_sig *a = &g_funcs.sigs[i], *b = &g_funcs2.sigs[i];
            ASSERT(!strcmp(a->name, b->name) && a->ret == b->ret && a->nparams == b->nparams);
            ASSERT(!memcmp(a->params, b->params, sizeof a->params));
        }
        free(e);
        break;
    }
    default: break; /* PRINT has no decoder in wire.c */
    }
}

/* The NUL checks and copies of strings and names, against memchr and memcmp: s[0, n) (a heap
 * block of exactly n bytes) as a string and as a name is accepted by the encoder iff it holds
 * no 0 byte, encodes to exactly its bytes, and the decoder refuses the same bytes written by
 * hand iff they hold a 0 byte. */
static void check_strings(const uint8_t *p, size_t n)
{
    uint8_t *s = dup_exact(p, n);
    bool nul = n && memchr(s, 0, n) != NULL;
    hl_value v, out;
    hl_writer w;
    hl_reader r;
    uint8_t *e = malloc(6 + n);
    ASSERT(e);
    v.type = HL_STRING;
    v.v.buf.ptr = s;
    v.v.buf.len = n;
    hl_w_init(&w, e, 6 + n);
    hl_w_value(&w, &v);
    ASSERT(w.bad == nul);
    if (!nul) ASSERT(w.len == 6 + n && e[0] == HL_STRING && memcmp(e + 5, s, n) == 0 && e[5 + n] == 0);
    e[0] = HL_STRING;
    e[1] = (uint8_t)n;
    e[2] = (uint8_t)(n >> 8);
    e[3] = e[4] = 0;
    memcpy(e + 5, s, n);
    e[5 + n] = 0;
    hl_r_init(&r, e, 6 + n);
    ASSERT(hl_r_value(&r, &out) == !nul);
    if (nul) ASSERT(strcmp(r.why, "string not NUL-terminated or holds a NUL byte") == 0);
    else ASSERT(out.v.buf.len == n && out.v.buf.ptr == e + 5 && hl_r_done(&r));
    v.type = HL_BYTES; /* bytes may hold anything */
    hl_w_init(&w, e, 5 + n);
    hl_w_value(&w, &v);
    ASSERT(!w.bad && w.len == 5 + n && memcmp(e + 5, s, n) == 0);
    if (n >= 1 && n <= HL_MAX_NAME) {
        char name[HL_MAX_NAME + 1];
        hl_w_init(&w, e, 1 + n);
        hl_w_name(&w, (const char *)s, n);
        ASSERT(w.bad == nul);
        e[0] = (uint8_t)n;
        memcpy(e + 1, s, n);
        hl_r_init(&r, e, 1 + n);
        ASSERT(hl_r_name(&r, name) == !nul);
        if (!nul) ASSERT(strlen(name) == n && memcmp(name, s, n) == 0);
    }
    free(e);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the input after its first byte as a string and a name: up to 300 bytes of it, and a
     * prefix of up to 40 that the first byte chooses */
    if (size > 0) {
        check_strings(data + 1, size - 1 > 300 ? 300 : size - 1);
        if (data[0] % 41 < size - 1) check_strings(data + 1, data[0] % 41);
    }

    if (size < 8) return 0;
    uint64_t top64 = ld64(data);
    if (top64 > size) top64 %= (uint64_t)size + 1;
    size_t top = (size_t)top64;

    /* parse: the record array is exactly MAX_RECS long so ASan catches an overrun */
    hl_rec *recs = malloc(sizeof(hl_rec) * MAX_RECS);
    const char *why = NULL;
    size_t where = 0;
    int n = hl_stack_parse(data, top, recs, MAX_RECS, &why, &where);
    ASSERT(n >= -1 && n <= MAX_RECS);
    if (n < 0) {
        ASSERT(why != NULL);
        ASSERT(where < top || where == 0);
    } else {
        ASSERT(why == NULL);
        size_t at = HL_BUF_EMPTY;
        for (int i = 0; i < n; i++) {
            check_rec(data, top, &recs[i]);
            ASSERT(recs[i].offset == at);
            at += hl_rec_size(recs[i].len);
        }
        ASSERT(at == top);
        if (n > 0) {
            /* room for one record less: fails exactly at the last record */
            hl_rec *few = malloc(sizeof(hl_rec) * (size_t)n);
            const char *why2;
            size_t where2;
            ASSERT(hl_stack_parse(data, top, few, n - 1, &why2, &where2) == -1);
            ASSERT(why2 && strcmp(why2, "too many records") == 0);
            ASSERT(where2 == recs[n - 1].offset);
            free(few);
        }
    }

    /* rebuild a parsed stack with hl_push_begin/hl_push_end into a buffer of exactly top
     * bytes: same layout, byte for byte, except pad bytes (which the push zeroes and parse
     * does not inspect) */
    if (n > 0) {
        uint8_t *copy = malloc(top);
        size_t t = HL_BUF_EMPTY;
        ASSERT(copy);
        memset(copy, 0, HL_BUF_EMPTY);
        for (int i = 0; i < n; i++) {
            hl_push ps;
            ASSERT(hl_push_begin(&ps, copy, top, t, recs[i].kind));
            hl_w_mem(&ps.w, recs[i].payload, recs[i].len);
            t = hl_push_end(&ps);
            ASSERT(t == recs[i].offset + hl_rec_size(recs[i].len));
            size_t at = recs[i].offset, pad_at = at + HL_REC_HEADER + recs[i].len;
            size_t trailer = at + hl_rec_size(recs[i].len) - HL_REC_TRAILER;
            ASSERT(memcmp(copy + at, data + at, pad_at - at) == 0);
            for (size_t j = pad_at; j < trailer; j++) ASSERT(copy[j] == 0);
            ASSERT(memcmp(copy + trailer, data + trailer, HL_REC_TRAILER) == 0);
        }
        ASSERT(t == top);
        free(copy);
    }

    /* peek */
    hl_rec top_rec;
    const char *pwhy = NULL;
    bool peeked = hl_stack_peek(data, top, &top_rec, &pwhy);
    if (peeked) {
        ASSERT(pwhy == NULL);
        check_rec(data, top, &top_rec);
        ASSERT(top_rec.offset + hl_rec_size(top_rec.len) == top);
    } else {
        ASSERT(pwhy != NULL);
    }
    if (n > 0) {
        ASSERT(peeked);
        ASSERT(top_rec.offset == recs[n - 1].offset && top_rec.len == recs[n - 1].len &&
               top_rec.kind == recs[n - 1].kind);
    }
    if (n == 0) ASSERT(!peeked && strcmp(pwhy, "stack empty") == 0);

    /* decode every parsed record, and the peeked one when parse failed */
    for (int i = 0; i < n; i++) {
        uint8_t *copy = dup_exact(recs[i].payload, recs[i].len);
        decode_payload(recs[i].kind, copy, recs[i].len);
        free(copy);
    }
    if (n < 0 && peeked) {
        uint8_t *copy = dup_exact(top_rec.payload, top_rec.len);
        decode_payload(top_rec.kind, copy, top_rec.len);
        free(copy);
    }
    free(recs);
    return 0;
}
