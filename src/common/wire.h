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

void hl_w_init(hl_writer *w, void *p, size_t cap);
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

void hl_r_init(hl_reader *r, const void *p, size_t len);
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
    hl_value value;   /* when ok */
    int32_t code;     /* when !ok */
    const char *msg;  /* when !ok: not NUL-terminated, msg_len bytes */
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
void hl_encode_log(hl_writer *w, int level, const char *file, uint32_t line, const char *msg,
                   size_t msg_len);

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
bool hl_push_begin(hl_push *ps, uint8_t *buf, size_t size, size_t top, uint16_t kind);
/* Returns the new top, or 0 if the payload did not fit (the buffer is then unchanged below
 * the old top, and the old top remains valid). */
size_t hl_push_end(hl_push *ps);

/* Parses the stack in buf[0, top): validates every record (length, kind, padding, back
 * pointer) and that they tile [8, top) exactly. Fills up to max records in order.
 * Returns the record count, or -1 with *why and *where describing the first defect. */
int hl_stack_parse(const uint8_t *buf, size_t top, hl_rec *recs, int max, const char **why,
                   size_t *where);

/* Finds the top record of the stack buf[0, top) by its back pointer, with the same checks
 * as hl_stack_parse for that one record. Returns false with *why on a defect. */
bool hl_stack_peek(const uint8_t *buf, size_t top, hl_rec *rec, const char **why);

/* ---- checksums ----
 * hl_checksum (src/host/memory.c) is FNV-1a over 64-bit words, with these constants;
 * snapshot files (src/host/snapfile.c) compute it piecewise. */
#define HL_FNV_BASIS 0xcbf29ce484222325ull
#define HL_FNV_PRIME 0x100000001b3ull

#endif
