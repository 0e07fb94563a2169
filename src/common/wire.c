/* wire.c - the boundary's byte formats: primitives, values, messages, record stacks. */
#include "wire.h"

#include <string.h>

/* ---- little-endian loads and stores ----
 * The format is little-endian whatever the machine (docs/abi.md). On a little-endian machine
 * a load or store is one unaligned move; __builtin_memcpy keeps it one move in the guest too,
 * which is built -ffreestanding (no builtin memcpy). */
/* Native-order loads (raw*), which are the format's on a little-endian machine. */
static inline uint32_t raw32(const uint8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
static inline uint64_t raw64(const uint8_t *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    return v;
}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint32_t ld32(const uint8_t *p) { return raw32(p); }
static inline uint64_t ld64(const uint8_t *p) { return raw64(p); }
static inline void st16(uint8_t *p, uint16_t v) { __builtin_memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }
#else
static inline uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static inline void st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void st32(uint8_t *p, uint32_t v)
{
    st16(p, (uint16_t)v);
    st16(p + 2, (uint16_t)(v >> 16));
}
static inline void st64(uint8_t *p, uint64_t v)
{
    st32(p, (uint32_t)v);
    st32(p + 4, (uint32_t)(v >> 32));
}
#endif

/* The host inlines the codec's helpers where they are used: there every instruction of a call
 * counts. The guest keeps one copy of each, so that its code stays as small as it was: its
 * first call on a new VM takes a fault for each code page it touches (docs/benchmarks.md). */
#if __STDC_HOSTED__
#define HOST_INLINE static inline __attribute__((always_inline))
#else
#define HOST_INLINE static __attribute__((noinline))
#endif

/* ---- short copies and NUL scans ----
 * The names and strings of calls are mostly a few bytes long, where a call to memcpy or
 * memchr costs more than the work. Up to 16 bytes take two word moves that overlap as
 * needed; anything longer goes to the library. Byte order does not matter here. */
#define ONES32 0x01010101u
#define ONES64 0x0101010101010101ull
/* Nonzero iff one of the word's bytes is 0 (exact: no false positives for the whole word). */
static inline bool zero_byte32(uint32_t v) { return ((v - ONES32) & ~v & (ONES32 << 7)) != 0; }
static inline bool zero_byte64(uint64_t v) { return ((v - ONES64) & ~v & (ONES64 << 7)) != 0; }

/* True if s[0, n) holds a 0 byte. */
HOST_INLINE bool has_nul(const void *src, size_t n)
{
    const uint8_t *s = src;
    if (n > 16) return memchr(s, 0, n) != NULL;
    if (n >= 8) return zero_byte64(raw64(s)) || zero_byte64(raw64(s + n - 8));
    if (n >= 4) return zero_byte32(raw32(s)) || zero_byte32(raw32(s + n - 4));
    return n && (!s[0] || !s[n / 2] || !s[n - 1]); /* n <= 3: every byte */
}

/* Copies src[0, n) to dst (the two do not overlap). */
HOST_INLINE void copy(void *to, const void *src, size_t n)
{
    uint8_t *dst = to;
    const uint8_t *s = src;
    if (n > 16) {
        memcpy(dst, s, n);
    } else if (n >= 8) {
        uint64_t a = raw64(s), b = raw64(s + n - 8);
        __builtin_memcpy(dst, &a, 8);
        __builtin_memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a = raw32(s), b = raw32(s + n - 4);
        __builtin_memcpy(dst, &a, 4);
        __builtin_memcpy(dst + n - 4, &b, 4);
    } else if (n) {
        dst[0] = s[0];
        dst[n / 2] = s[n / 2];
        dst[n - 1] = s[n - 1];
    }
}

/* ---- writer ---- */
/* Reserves the next n bytes: returns where to write them, or NULL (and marks the writer bad)
 * if they do not fit. A writer writes only below p + len, all of a field or nothing. */
static inline uint8_t *w_take(hl_writer *w, size_t n)
{
    uint8_t *p;
    if (w->bad || n > w->cap - w->len) {
        w->bad = true;
        return NULL;
    }
    p = w->p + w->len;
    w->len += n;
    return p;
}

void hl_w_mem(hl_writer *w, const void *src, size_t n)
{
    if (w->bad || n > w->cap - w->len) {
        w->bad = true;
        return;
    }
    if (n) copy(w->p + w->len, src, n);
    w->len += n;
}

void hl_w_u8(hl_writer *w, uint8_t v)
{
    uint8_t *p = w_take(w, 1);
    if (p) p[0] = v;
}
void hl_w_u16(hl_writer *w, uint16_t v)
{
    uint8_t *p = w_take(w, 2);
    if (p) st16(p, v);
}
void hl_w_u32(hl_writer *w, uint32_t v)
{
    uint8_t *p = w_take(w, 4);
    if (p) st32(p, v);
}
void hl_w_u64(hl_writer *w, uint64_t v)
{
    uint8_t *p = w_take(w, 8);
    if (p) st64(p, v);
}

void hl_w_name(hl_writer *w, const char *name, size_t n)
{
    uint8_t *p;
    if (n == 0 || n > HL_MAX_NAME || has_nul(name, n)) {
        w->bad = true;
        return;
    }
    if (!(p = w_take(w, 1 + n))) return;
    p[0] = (uint8_t)n;
    copy(p + 1, name, n);
}

/* One value, reserved whole. Inlined into the message encoders. */
HOST_INLINE void w_value(hl_writer *w, const hl_value *v)
{
    uint8_t *p;
    uint32_t u32;
    uint64_t u64;
    size_t n;
    switch (v->type) {
    case HL_VOID:
        if ((p = w_take(w, 1))) p[0] = HL_VOID;
        return;
    case HL_I32:
    case HL_U32:
    case HL_F32:
        __builtin_memcpy(&u32, &v->v, 4); /* u32, i32 and the f32's bits share the union's first bytes */
        if ((p = w_take(w, 5))) {
            p[0] = (uint8_t)v->type;
            st32(p + 1, u32);
        }
        return;
    case HL_I64:
    case HL_U64:
    case HL_F64:
        __builtin_memcpy(&u64, &v->v, 8);
        if ((p = w_take(w, 9))) {
            p[0] = (uint8_t)v->type;
            st64(p + 1, u64);
        }
        return;
    case HL_BOOL:
        if ((p = w_take(w, 2))) {
            p[0] = HL_BOOL;
            p[1] = v->v.b ? 1 : 0;
        }
        return;
    case HL_STRING:
    case HL_BYTES:
        n = v->v.buf.len;
        if (n > UINT32_MAX || (n && !v->v.buf.ptr) || (v->type == HL_STRING && has_nul(v->v.buf.ptr, n))) {
            w->bad = true;
            return;
        }
        /* type, length, the bytes and (for a string) the terminator, in one reservation */
        if (!(p = w_take(w, n + 5 + (v->type == HL_STRING)))) return; /* n <= UINT32_MAX: no wrap */
        p[0] = (uint8_t)v->type;
        st32(p + 1, (uint32_t)n);
        copy(p + 5, v->v.buf.ptr, n);
        if (v->type == HL_STRING) p[5 + n] = 0;
        return;
    default: w->bad = true; return;
    }
}

void hl_w_value(hl_writer *w, const hl_value *v) { w_value(w, v); }

/* ---- reader ---- */
void hl_r_fail(hl_reader *r, const char *why)
{
    if (!r->why) {
        r->why = why;
        r->where = r->pos;
    }
}

/* Returns the next n bytes and consumes them, or NULL (failing the reader) if fewer are
 * left. Every read goes through here: nothing reads beyond len. */
static inline const uint8_t *r_take(hl_reader *r, size_t n)
{
    const uint8_t *p;
    if (r->why) return NULL;
    if (n > r->len - r->pos) {
        hl_r_fail(r, "truncated");
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

const uint8_t *hl_r_mem(hl_reader *r, size_t n) { return r_take(r, n); }

static inline uint8_t r_u8(hl_reader *r)
{
    const uint8_t *b = r_take(r, 1);
    return b ? b[0] : 0;
}
static inline uint32_t r_u32(hl_reader *r)
{
    const uint8_t *b = r_take(r, 4);
    return b ? ld32(b) : 0;
}

uint8_t hl_r_u8(hl_reader *r) { return r_u8(r); }
uint16_t hl_r_u16(hl_reader *r)
{
    const uint8_t *b = r_take(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}
uint32_t hl_r_u32(hl_reader *r) { return r_u32(r); }
uint64_t hl_r_u64(hl_reader *r)
{
    const uint8_t *b = r_take(r, 8);
    return b ? ld64(b) : 0;
}

bool hl_r_name(hl_reader *r, char *out)
{
    size_t n = r_u8(r);
    const uint8_t *s;
    out[0] = 0;
    if (r->why) return false;
    if (n == 0) {
        hl_r_fail(r, "empty name");
        return false;
    }
    s = r_take(r, n);
    if (!s) return false;
    if (has_nul(s, n)) {
        hl_r_fail(r, "NUL byte in name");
        return false;
    }
    copy(out, s, n);
    out[n] = 0;
    return true;
}

/* Fails the reader with "truncated" after consuming the `used` bytes that were there. */
static bool __attribute__((noinline, cold)) r_truncated(hl_reader *r, size_t used)
{
    r->pos += used;
    hl_r_fail(r, "truncated");
    return false;
}

/* One value, with the bounds of the whole value checked against what is left up front. */
HOST_INLINE bool r_value(hl_reader *r, hl_value *out)
{
    const uint8_t *p;
    size_t left;
    uint32_t u32, n;
    uint64_t u64;
    uint8_t t;
    if (r->why) return false;
    left = r->len - r->pos;
    if (left < 1) return r_truncated(r, 0);
    p = r->p + r->pos;
    t = p[0];
    out->type = (hl_type)t;
    switch (t) {
    case HL_VOID:
        out->v.u64 = 0;
        r->pos += 1;
        return true;
    case HL_I32:
    case HL_U32:
    case HL_F32:
        if (left < 5) return r_truncated(r, 1);
        u32 = ld32(p + 1);
        __builtin_memcpy(&out->v, &u32, 4); /* the f32's bits too */
        r->pos += 5;
        return true;
    case HL_I64:
    case HL_U64:
    case HL_F64:
        if (left < 9) return r_truncated(r, 1);
        u64 = ld64(p + 1);
        __builtin_memcpy(&out->v, &u64, 8);
        r->pos += 9;
        return true;
    case HL_BOOL:
        if (left < 2) return r_truncated(r, 1);
        r->pos += 2;
        if (p[1] > 1) {
            hl_r_fail(r, "bool not 0 or 1");
            return false;
        }
        out->v.b = p[1] == 1;
        return true;
    case HL_STRING:
    case HL_BYTES:
        if (left < 5) return r_truncated(r, 1);
        n = ld32(p + 1);
        out->v.buf.len = n;
        out->v.buf.ptr = NULL;
        if (n > left - 5) return r_truncated(r, 5);
        out->v.buf.ptr = p + 5;
        if (t == HL_BYTES) {
            r->pos += 5 + (size_t)n;
            return true;
        }
        /* the terminator, and no NUL before it: the first NUL from the start is p[5 + n] */
        if (n == left - 5) return r_truncated(r, 5 + (size_t)n);
        r->pos += 6 + (size_t)n;
        if (p[5 + (size_t)n] != 0 || has_nul(p + 5, n)) {
            hl_r_fail(r, "string not NUL-terminated or holds a NUL byte");
            return false;
        }
        return true;
    default:
        r->pos += 1;
        hl_r_fail(r, "unknown value type");
        return false;
    }
}

bool hl_r_value(hl_reader *r, hl_value *out) { return r_value(r, out); }

bool hl_r_done(hl_reader *r)
{
    if (!r->why && r->pos != r->len) hl_r_fail(r, "trailing bytes");
    return r->why == NULL;
}

/* ---- messages ---- */
bool hl_decode_call(hl_reader *r, hl_msg_call *out)
{
    const uint8_t *p;
    if (!hl_r_name(r, out->name)) return false;
    if (!(p = r_take(r, 1))) return false;
    out->ret = (hl_type)p[0];
    if (!(p = r_take(r, 1))) return false;
    out->argc = p[0];
    if ((unsigned)out->ret > HL_TYPE_MAX) {
        hl_r_fail(r, "unknown return type");
        return false;
    }
    if (out->argc > HL_MAX_ARGS) {
        hl_r_fail(r, "too many arguments");
        return false;
    }
    for (int i = 0; i < out->argc; i++) {
        if (!r_value(r, &out->args[i])) return false;
        if (out->args[i].type == HL_VOID) {
            hl_r_fail(r, "void argument");
            return false;
        }
    }
    return hl_r_done(r);
}

static bool r_message(hl_reader *r, const char **msg, uint32_t *len)
{
    *len = r_u32(r);
    if (r->why) return false;
    if (*len > HL_MAX_MESSAGE) {
        hl_r_fail(r, "message longer than HL_MAX_MESSAGE");
        return false;
    }
    *msg = (const char *)r_take(r, *len);
    return r->why == NULL;
}

bool hl_decode_result(hl_reader *r, hl_msg_result *out)
{
    uint8_t ok;
    if (r->why) return false;
    if (r->pos == r->len) return r_truncated(r, 0);
    ok = r->p[r->pos++];
    out->ok = ok == 1;
    if (ok == 1) {
        if (!r_value(r, &out->value)) return false;
    } else if (ok == 0) {
        out->code = (int32_t)r_u32(r);
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
    out->level = r_u8(r);
    if (!r->why && out->level > HL_LOG_LEVEL_MAX) {
        r->pos--; /* report the level byte itself */
        hl_r_fail(r, "unknown log level");
        return false;
    }
    out->line = r_u32(r);
    flen = r_u8(r);
    f = r_take(r, flen);
    if (r->why) return false;
    if (has_nul(f, flen)) {
        hl_r_fail(r, "NUL byte in file name");
        return false;
    }
    copy(out->file, f, flen);
    out->file[flen] = 0;
    if (!r_message(r, &out->msg, &out->msg_len)) return false;
    return hl_r_done(r);
}

bool hl_decode_abort(hl_reader *r, hl_msg_abort *out)
{
    out->code = (int32_t)r_u32(r);
    if (!r_message(r, &out->msg, &out->msg_len)) return false;
    return hl_r_done(r);
}

void hl_encode_call(hl_writer *w, const char *name, hl_type ret, const hl_value *args, int argc)
{
    size_t n;
    uint8_t *p;
    if (argc < 0 || argc > HL_MAX_ARGS || (unsigned)ret > HL_TYPE_MAX) {
        w->bad = true;
        return;
    }
    /* strlen stops at the first NUL: the name holds none, as hl_w_name would check */
    n = strlen(name);
    if (n == 0 || n > HL_MAX_NAME) {
        w->bad = true;
        return;
    }
    if (!(p = w_take(w, 1 + n + 2))) return;
    p[0] = (uint8_t)n;
    copy(p + 1, name, n);
    p[1 + n] = (uint8_t)ret;
    p[2 + n] = (uint8_t)argc;
    for (int i = 0; i < argc; i++) {
        if (args[i].type == HL_VOID) { /* the decoder refuses void arguments */
            w->bad = true;
            return;
        }
        w_value(w, &args[i]);
    }
}

void hl_encode_ok(hl_writer *w, const hl_value *v)
{
    hl_w_u8(w, 1);
    w_value(w, v);
}

static void w_message(hl_writer *w, const char *msg, size_t len)
{
    uint8_t *p;
    if (len > HL_MAX_MESSAGE) len = HL_MAX_MESSAGE; /* truncate rather than fail */
    if (!(p = w_take(w, 4 + len))) return;
    st32(p, (uint32_t)len);
    copy(p + 4, msg, len);
}

void hl_encode_error(hl_writer *w, int32_t code, const char *msg, size_t msg_len)
{
    uint8_t *p = w_take(w, 5);
    if (!p) return;
    p[0] = 0;
    st32(p + 1, (uint32_t)code);
    w_message(w, msg, msg_len);
}

void hl_encode_abort(hl_writer *w, int32_t code, const char *msg, size_t msg_len)
{
    hl_w_u32(w, (uint32_t)code);
    w_message(w, msg, msg_len);
}

void hl_encode_log(hl_writer *w, int level, const char *file, uint32_t line, const char *msg, size_t msg_len)
{
    size_t flen = file ? strlen(file) : 0;
    uint8_t *p;
    if (level < 0 || level > HL_LOG_LEVEL_MAX) {
        w->bad = true;
        return;
    }
    if (flen > HL_MAX_NAME) file += flen - HL_MAX_NAME, flen = HL_MAX_NAME; /* keep the tail */
    if (!(p = w_take(w, 1 + 4 + 1 + flen))) return;
    p[0] = (uint8_t)level;
    st32(p + 1, line);
    p[5] = (uint8_t)flen;
    copy(p + 6, file, flen);
    w_message(w, msg, msg_len);
}

/* ---- record stacks ---- */
size_t hl_push_end(hl_push *ps)
{
    size_t len = ps->w.len, padded = (len + 7) & ~(size_t)7, end;
    uint8_t *h;
    if (ps->w.bad || padded > ps->w.cap || len > UINT32_MAX) return 0;
    h = ps->buf + ps->start;
    st64(h, (uint64_t)len | (uint64_t)ps->kind << 32); /* len, kind, reserved 0 */
    /* the padding: 8 zero bytes from the payload's end reach at most to the trailer's end,
     * and the trailer, stored next, overwrites what of them lies in it */
    st64(h + HL_REC_HEADER + len, 0);
    end = ps->start + HL_REC_HEADER + padded;
    st64(ps->buf + end, ps->start);
    return end + HL_REC_TRAILER;
}

/* Checks the record at offset `at` in buf[0, top); fills rec. Inlined into both callers:
 * the checks are the whole cost of a parse. */
static inline __attribute__((always_inline)) const char *check_rec(const uint8_t *buf, size_t at, size_t top, hl_rec *rec)
{
    uint64_t h;
    uint32_t len, tail;
    uint16_t kind;
    size_t padded;
    if (at % 8) return "misaligned record";
    if (top - at < HL_REC_HEADER + HL_REC_TRAILER) return "record header beyond top";
    h = ld64(buf + at); /* u32 len | u16 kind | u16 reserved */
    len = (uint32_t)h;
    kind = (uint16_t)(h >> 32);
    if (h >> 48) return "nonzero reserved header bytes";
    if (kind == 0 || kind > HL_REC_KIND_MAX) return "unknown record kind";
    padded = ((size_t)len + 7) & ~(size_t)7;
    if (padded > top - at - HL_REC_HEADER - HL_REC_TRAILER) return "record length beyond top";
    /* the padding is the top 8 - tail bytes of the payload's last 8-byte word */
    tail = len % 8;
    if (tail && ld64(buf + at + HL_REC_HEADER + padded - 8) >> (8 * tail)) return "nonzero padding";
    if (ld64(buf + at + HL_REC_HEADER + padded) != at) return "bad back pointer";
    rec->kind = kind;
    rec->len = len;
    rec->offset = at;
    rec->payload = buf + at + HL_REC_HEADER;
    return NULL;
}

int hl_stack_parse(const uint8_t *buf, size_t top, hl_rec *recs, int max, const char **why, size_t *where)
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

__attribute__((visibility("default"))) const char *hl_type_name(hl_type type)
{
    static const char *const names[] = { "void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes" };
    return type >= 0 && type <= HL_TYPE_MAX ? names[type] : "?";
}
