/* hyperlight/value.h - typed values passed between host and guest (shared by both APIs). */
#ifndef HYPERLIGHT_VALUE_H
#define HYPERLIGHT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"

/* HL_API marks the functions libhyperlight exports: default visibility while the library
 * itself is built (HL_BUILDING_LIBRARY), empty for everyone else. */
#ifndef HL_API
#if defined(HL_BUILDING_LIBRARY)
#define HL_API __attribute__((visibility("default")))
#else
#define HL_API
#endif
#endif

/* A typed value. For HL_STRING, `str` is NUL-terminated and `len` excludes the NUL; for
 * HL_BYTES, `buf`/`len` describe the bytes. Who owns the pointed-to memory is said by the
 * function that hands the value over. */
typedef struct hl_value {
    hl_type type;
    union {
        int32_t i32;
        uint32_t u32;
        int64_t i64;
        uint64_t u64;
        float f32;
        double f64;
        bool b;
        struct {
            const void *ptr; /* const char * for HL_STRING */
            size_t len;
        } buf;
    } v;
} hl_value;

static inline hl_value hl_i32(int32_t x)
{
    hl_value r;
    r.type = HL_I32;
    r.v.i32 = x;
    return r;
}
static inline hl_value hl_u32(uint32_t x)
{
    hl_value r;
    r.type = HL_U32;
    r.v.u32 = x;
    return r;
}
static inline hl_value hl_i64(int64_t x)
{
    hl_value r;
    r.type = HL_I64;
    r.v.i64 = x;
    return r;
}
static inline hl_value hl_u64(uint64_t x)
{
    hl_value r;
    r.type = HL_U64;
    r.v.u64 = x;
    return r;
}
static inline hl_value hl_f32(float x)
{
    hl_value r;
    r.type = HL_F32;
    r.v.f32 = x;
    return r;
}
static inline hl_value hl_f64(double x)
{
    hl_value r;
    r.type = HL_F64;
    r.v.f64 = x;
    return r;
}
static inline hl_value hl_bool(bool x)
{
    hl_value r;
    r.type = HL_BOOL;
    r.v.b = x;
    return r;
}
static inline hl_value hl_void(void)
{
    hl_value r;
    r.type = HL_VOID;
    r.v.u64 = 0;
    return r;
}
/* s must be NUL-terminated. */
static inline hl_value hl_str(const char *s)
{
    hl_value r;
    size_t n = 0;
    while (s[n]) n++;
    r.type = HL_STRING;
    r.v.buf.ptr = s;
    r.v.buf.len = n;
    return r;
}
static inline hl_value hl_bytes(const void *p, size_t n)
{
    hl_value r;
    r.type = HL_BYTES;
    r.v.buf.ptr = p;
    r.v.buf.len = n;
    return r;
}
static inline const char *hl_value_str(const hl_value *v) { return (const char *)v->v.buf.ptr; }

/* "i32", "string", ...; "?" for an invalid type. */
HL_API const char *hl_type_name(hl_type type);

#endif
