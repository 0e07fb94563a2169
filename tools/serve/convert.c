/* convert.c - JSON values to and from guest values for /v1/call (docs/serve.md "Types"):
 * integers and floats as JSON numbers (u64 and i64 also as decimal strings, for values JSON
 * numbers lose), bool as true/false, string as a string, bytes as a base64 string. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Decodes standard base64 (with padding) into a malloc'd buffer; NULL if s is not base64. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_len)
{
    unsigned char *out;
    size_t o = 0;
    if (n % 4) return NULL;
    if (!(out = malloc(n / 4 * 3 + 1))) return NULL;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0, pad++;
                continue;
            }
            if (pad || (v[k] = b64val(s[i + k])) < 0) goto bad;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2) out[o++] = (unsigned char)(w >> 8);
        if (pad < 1) out[o++] = (unsigned char)w;
    }
    *out_len = o;
    return out;
bad:
    free(out);
    return NULL;
}

static json_t *b64_encode(const unsigned char *p, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    json_t *j;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out[o++] = b64[w >> 18 & 63];
        out[o++] = b64[w >> 12 & 63];
        out[o++] = i + 1 < n ? b64[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64[w & 63] : '=';
    }
    j = json_stringn(out, o);
    free(out);
    return j;
}

/* An integer from a JSON integer or a decimal string: false if it is neither. */
static bool json_int(json_t *j, bool is_unsigned, long long *s, unsigned long long *u)
{
    char *end;
    const char *t;
    if (json_is_integer(j)) {
        *s = json_integer_value(j);
        *u = (unsigned long long)*s;
        return !is_unsigned || *s >= 0;
    }
    if (!json_is_string(j) || !*(t = json_string_value(j))) return false;
    errno = 0;
    if (is_unsigned) {
        if (t[0] == '-') return false;
        *u = strtoull(t, &end, 10);
    } else {
        *s = strtoll(t, &end, 10);
    }
    return !*end && !errno;
}

/* Converts j to a value of type t into *v (bytes into *mem, which the caller frees).
 * Returns NULL or what is wrong, e.g. "expected i32". */
const char *json_to_value(json_t *j, hl_type t, hl_value *v, unsigned char **mem)
{
    long long s = 0;
    unsigned long long u = 0;
    size_t n;
    switch (t) {
    case HL_I32:
        if (!json_is_integer(j) || json_integer_value(j) < INT32_MIN || json_integer_value(j) > INT32_MAX)
            return "expected i32 (an integer from -2147483648 to 2147483647)";
        *v = hl_i32((int32_t)json_integer_value(j));
        return NULL;
    case HL_U32:
        if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > UINT32_MAX)
            return "expected u32 (an integer from 0 to 4294967295)";
        *v = hl_u32((uint32_t)json_integer_value(j));
        return NULL;
    case HL_I64:
        if (!json_int(j, false, &s, &u)) return "expected i64 (an integer, or a decimal string)";
        *v = hl_i64(s);
        return NULL;
    case HL_U64:
        if (!json_int(j, true, &s, &u)) return "expected u64 (a non-negative integer, or a decimal string)";
        *v = hl_u64(u);
        return NULL;
    case HL_F32:
    case HL_F64:
        if (!json_is_number(j)) return t == HL_F32 ? "expected f32 (a number)" : "expected f64 (a number)";
        *v = t == HL_F32 ? hl_f32((float)json_number_value(j)) : hl_f64(json_number_value(j));
        return NULL;
    case HL_BOOL:
        if (!json_is_boolean(j)) return "expected bool (true or false)";
        *v = hl_bool(json_is_true(j));
        return NULL;
    case HL_STRING:
        if (!json_is_string(j) || strlen(json_string_value(j)) != json_string_length(j))
            return "expected string (without NUL characters)";
        *v = hl_str(json_string_value(j));
        return NULL;
    case HL_BYTES:
        if (!json_is_string(j) || !(*mem = b64_decode(json_string_value(j), json_string_length(j), &n)))
            return "expected bytes (a base64 string)";
        *v = hl_bytes(*mem, n);
        return NULL;
    default: return "unsupported parameter type";
    }
}

/* The JSON form of a guest's return value (NULL: void becomes JSON null; a float that is
 * not finite becomes null too, JSON has no NaN or infinity). */
json_t *value_to_json(const hl_value *v)
{
    char num[32];
    switch (v->type) {
    case HL_I32: return json_integer(v->v.i32);
    case HL_U32: return json_integer(v->v.u32);
    case HL_I64: return json_integer(v->v.i64);
    case HL_U64:
        if (v->v.u64 <= INT64_MAX) return json_integer((json_int_t)v->v.u64);
        snprintf(num, sizeof num, "%" PRIu64, v->v.u64);
        return json_string(num);
    case HL_F32: return isfinite(v->v.f32) ? json_real(v->v.f32) : json_null();
    case HL_F64: return isfinite(v->v.f64) ? json_real(v->v.f64) : json_null();
    case HL_BOOL: return json_boolean(v->v.b);
    case HL_STRING: return json_stringn(v->v.buf.ptr, v->v.buf.len);
    case HL_BYTES: return b64_encode(v->v.buf.ptr, v->v.buf.len);
    default: return json_null();
    }
}

/* All of the file at path, NUL-terminated (free it); NULL if it cannot be read. */
char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = 0;
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}
