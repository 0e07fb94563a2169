/* wire.h - encoder/decoder for the boundary's record stacks and messages (docs/abi.md).
 *
 * Compiled into both the host library and the guest SDK; freestanding (memcpy/memset only).
 * Every decoder treats its input as hostile: bounds are checked before each read, and a
 * decoder that fails returns a reason string and the offset where it stopped. */
#ifndef HL_WIRE_H
#define HL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight/abi.h"
#include "hyperlight/value.h"

/* ---- primitive writer / reader over a byte range ---- */
typedef struct hl_writer {
    uint8_t *p;
    size_t cap, len;
    bool bad; /* set once a write did not fit; later writes are dropped */
} hl_writer;

static inline void hl_w_init(hl_writer *w, void *p, size_t cap)
{
    w->p = (uint8_t *)p;
    w->cap = cap;
    w->len = 0;
    w->bad = false;
}
void hl_w_u8(hl_writer *w, uint8_t v);
void hl_w_u16(hl_writer *w, uint16_t v);
void hl_w_u32(hl_writer *w, uint32_t v);
void hl_w_u64(hl_writer *w, uint64_t v);
void hl_w_mem(hl_writer *w, const void *src, size_t n);
/* u8 length + bytes; marks the writer bad if n is 0 or above HL_MAX_NAME. */
void hl_w_name(hl_writer *w, const char *name, size_t n);
/* Encodes one value; marks the writer bad on an invalid type or a string holding a NUL. */
void hl_w_value(hl_writer *w, const hl_value *v);

typedef struct hl_reader {
    const uint8_t *p;
    size_t len, pos;
    const char *why; /* first failure, NULL while all reads succeeded */
    size_t where;    /* offset of that failure */
} hl_reader;

static inline void hl_r_init(hl_reader *r, const void *p, size_t len)
{
    r->p = (const uint8_t *)p;
    r->len = len;
    r->pos = 0;
    r->why = NULL;
    r->where = 0;
}
uint8_t hl_r_u8(hl_reader *r);
uint16_t hl_r_u16(hl_reader *r);
uint32_t hl_r_u32(hl_reader *r);
uint64_t hl_r_u64(hl_reader *r);
/* Returns a pointer to the next n bytes inside the input, or NULL (and fails the reader). */
const uint8_t *hl_r_mem(hl_reader *r, size_t n);
/* Reads a name into out (NUL-terminated, HL_MAX_NAME + 1 bytes). */
bool hl_r_name(hl_reader *r, char *out);
/* Decodes one value; strings and bytes point into the reader's input. */
bool hl_r_value(hl_reader *r, hl_value *out);
void hl_r_fail(hl_reader *r, const char *why);
/* True if the reader consumed its input exactly and saw no error (else sets why). */
bool hl_r_done(hl_reader *r);

/* ---- messages ---- */
typedef struct hl_msg_call {
    char name[HL_MAX_NAME + 1];
    hl_type ret;
    int argc;
    hl_value args[HL_MAX_ARGS];
} hl_msg_call;

typedef struct hl_msg_result {
    bool ok;
    hl_value value;  /* when ok */
    int32_t code;    /* when !ok */
    const char *msg; /* when !ok: not NUL-terminated, msg_len bytes */
    uint32_t msg_len;
} hl_msg_result;

typedef struct hl_msg_log {
    int level;
    uint32_t line;
    char file[HL_MAX_NAME + 1];
    const char *msg;
    uint32_t msg_len;
} hl_msg_log;

typedef struct hl_msg_abort {
    int32_t code;
    const char *msg;
    uint32_t msg_len;
} hl_msg_abort;

bool hl_decode_call(hl_reader *r, hl_msg_call *out);
bool hl_decode_result(hl_reader *r, hl_msg_result *out);
bool hl_decode_log(hl_reader *r, hl_msg_log *out);
bool hl_decode_abort(hl_reader *r, hl_msg_abort *out);

void hl_encode_call(hl_writer *w, const char *name, hl_type ret, const hl_value *args, int argc);
void hl_encode_ok(hl_writer *w, const hl_value *v);
void hl_encode_error(hl_writer *w, int32_t code, const char *msg, size_t msg_len);
void hl_encode_abort(hl_writer *w, int32_t code, const char *msg, size_t msg_len);
void hl_encode_log(hl_writer *w, int level, const char *file, uint32_t line, const char *msg, size_t msg_len);

/* ---- record stacks ---- */
typedef struct hl_rec {
    uint16_t kind;
    uint32_t len;
    size_t offset;          /* of the record header within the buffer */
    const uint8_t *payload; /* points into the parsed buffer */
} hl_rec;

/* Bytes a record with a payload of len bytes occupies. */
static inline size_t hl_rec_size(size_t len) { return HL_REC_HEADER + ((len + 7) & ~(size_t)7) + HL_REC_TRAILER; }

/* Starts a record of `kind` at offset top of buf (size bytes). The payload is written with
 * the returned writer (`w`), then hl_push_end seals it. */
typedef struct hl_push {
    uint8_t *buf;
    size_t size, start;
    uint16_t kind;
    hl_writer w;
} hl_push;
static inline bool hl_push_begin(hl_push *ps, uint8_t *buf, size_t size, size_t top, uint16_t kind)
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
/* Returns the new top, or 0 if the payload did not fit (the buffer is then unchanged below
 * the old top, and the old top remains valid). */
size_t hl_push_end(hl_push *ps);

/* Parses the stack in buf[0, top): validates every record (length, kind, padding, back
 * pointer) and that they tile [8, top) exactly. Fills up to max records in order.
 * Returns the record count, or -1 with *why and *where describing the first defect. */
int hl_stack_parse(const uint8_t *buf, size_t top, hl_rec *recs, int max, const char **why, size_t *where);

/* Finds the top record of the stack buf[0, top) by its back pointer, with the same checks
 * as hl_stack_parse for that one record. Returns false with *why on a defect. */
bool hl_stack_peek(const uint8_t *buf, size_t top, hl_rec *rec, const char **why);


/* ---- function signatures and the FUNCS record ----
 * A signature is what a function table says of one function: its name (1..HL_MAX_NAME
 * bytes, no NUL), its return type (any type, void included) and 0..HL_MAX_ARGS parameter
 * types (not void). On the wire:
 *     u8 name_len | name | u8 return type | u8 nparams | nparams x u8 type
 * The FUNCS record (docs/abi.md) is a u16 count and that many signatures; snapshot files
 * (src/host/snapfile*.c) store their tables as bare runs of signatures. */
typedef struct hl_sig {
    char name[HL_MAX_NAME + 1];
    hl_type ret;
    int nparams;
    hl_type params[HL_MAX_ARGS];
} hl_sig;

/* The first rule a signature breaks, in the order hl_sig_check tries them. */
typedef enum hl_sig_fault {
    HL_SIG_OK,
    HL_SIG_NAME,    /* NULL, empty or longer than HL_MAX_NAME */
    HL_SIG_NPARAMS, /* nparams outside 0..HL_MAX_ARGS, or params NULL with nparams > 0 */
    HL_SIG_RET,     /* return type outside 0..HL_TYPE_MAX */
    HL_SIG_PARAM,   /* a parameter type void or above HL_TYPE_MAX */
} hl_sig_fault;

/* Checks a signature (name NUL-terminated). For HL_SIG_PARAM, *bad_param (if not NULL) is
 * the index of the first bad parameter. */
hl_sig_fault hl_sig_check(const char *name, hl_type ret, const hl_type *params, int nparams, int *bad_param);
bool hl_sig_valid(const char *name, hl_type ret, const hl_type *params, int nparams);
/* True for the names the SDK keeps for itself (HL_RESERVED_PREFIX...). */
bool hl_sig_reserved(const char *name);

/* Encodes one signature; marks the writer bad if it is not valid. */
void hl_w_sig(hl_writer *w, const char *name, hl_type ret, const hl_type *params, int nparams);
/* Decodes one signature into out (its unused parameter slots HL_VOID), checking it byte by
 * byte: the name as hl_r_name does, then "invalid return type", "too many parameters",
 * "invalid parameter type" (the reader stops right after the offending byte). On failure
 * out holds what was read before it, so hl_sig_check(out) names the rule that failed; it
 * says HL_SIG_NAME when the name itself was bad or cut short, and HL_SIG_OK when the input
 * ended after the name ("truncated"). */
bool hl_r_sig(hl_reader *r, hl_sig *out);

/* A signature to encode, pointing into the caller's table: function i of ctx's. */
typedef struct hl_sig_ref {
    const char *name;
    hl_type ret;
    int nparams;
    const hl_type *params;
} hl_sig_ref;
typedef hl_sig_ref (*hl_sig_at)(const void *ctx, int i);

/* Encodes a FUNCS payload of n functions. Marks the writer bad on an invalid signature or a
 * table that holds too many (more than HL_MAX_FUNC_TABLE, or more than HL_MAX_FUNCS of the
 * guest's own or HL_MAX_SDK_FUNCS reserved ones). Distinct names are the caller's to keep
 * (hl_guest_register does); the decoder refuses a duplicate. */
void hl_encode_funcs(hl_writer *w, int n, hl_sig_at at, const void *ctx);

/* Receives function i of the count a FUNCS record declares, once it passed every check.
 * Returns NULL to go on, or a reason to stop with (the decoder fails the reader with it). */
typedef const char *(*hl_sig_take)(void *ctx, unsigned i, unsigned count, const hl_sig *sig);
/* Decodes a FUNCS payload, handing each function to take (if not NULL) in order. Refuses,
 * in the reader: "too many functions" (a count above HL_MAX_FUNC_TABLE, or more than
 * HL_MAX_FUNCS of the guest's own or HL_MAX_SDK_FUNCS reserved names), whatever hl_r_sig
 * refuses, "duplicate function name", and "trailing bytes". */
bool hl_decode_funcs(hl_reader *r, hl_sig_take take, void *ctx);


#endif
