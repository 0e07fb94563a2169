/* test_calls.c - guest calls against real KVM: round trips of every type and of the largest
 * values the buffers hold, host calls of every type, every error the call path reports
 * (exact status, code, message and sandbox state afterwards), configuration limits, the
 * guest's function table, static guest state and many sandboxes in one process.
 * Guest: tests/guests/calls_guest.c. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define GUEST "calls_guest"
#define DEF_BUF ((size_t)HL_BUFFER_DEFAULT) /* 262144 */

/* Calls and checks HL_OK, printing the library's error if not. *out is zeroed first so a
 * failed call leaves a value no check accepts by accident. */
#define CALL_OK(sb, name, rt, args, n, out)                                                                             \
    do {                                                                                                                \
        hl_status st_;                                                                                                  \
        memset((out), 0, sizeof *(out));                                                                                \
        st_ = hl_call((sb), (name), (rt), (args), (n), (out));                                                          \
        if (st_ != HL_OK)                                                                                               \
            fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, (name), hl_status_name(st_), hl_last_error(sb)); \
        CHECK_INT(st_, HL_OK);                                                                                          \
        CHECK_INT((out)->type, (rt));                                                                                   \
    } while (0)

static bool bytes_eq(const hl_value *v, const void *want, size_t n)
{
    if (v->v.buf.len != n) return false;
    if (n == 0) return v->v.buf.ptr != NULL;
    return v->v.buf.ptr && memcmp(v->v.buf.ptr, want, n) == 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static float f32_from(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double f64_from(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}
static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* ---- host functions the guest calls ---- */
static int host_calls; /* incremented by every host function: proves the host ran */
static uint32_t last_f32_bits;
static uint64_t last_f64_bits;
static int void_calls;
static int multi_marker;

static int h_i32(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    *r = hl_i32(~a[0].v.i32);
    return 0;
}
static int h_u32(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    *r = hl_u32(~a[0].v.u32);
    return 0;
}
static int h_i64(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    *r = hl_i64(~a[0].v.i64);
    return 0;
}
static int h_u64(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    *r = hl_u64(~a[0].v.u64);
    return 0;
}
/* Floats come back unchanged (bit for bit); the host records what it saw. */
static int h_f32(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    last_f32_bits = f32_bits(a[0].v.f32);
    *r = a[0];
    return 0;
}
static int h_f64(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    last_f64_bits = f64_bits(a[0].v.f64);
    *r = a[0];
    return 0;
}
static int h_bool(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    *r = hl_bool(!a[0].v.b);
    return 0;
}
/* "host<" s ">" */
static int h_string(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = a[0].v.buf.len + 7;
    char *s = hl_host_call_alloc(c, len);
    host_calls++;
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    snprintf(s, len, "host<%s>", hl_value_str(&a[0]));
    *r = hl_str(s);
    return 0;
}
/* every byte XOR 0xff */
static int h_bytes(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = a[0].v.buf.len;
    unsigned char *s = hl_host_call_alloc(c, len);
    const unsigned char *in = a[0].v.buf.ptr;
    host_calls++;
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    for (size_t i = 0; i < len; i++) s[i] = in[i] ^ 0xff;
    *r = hl_bytes(s, len);
    return 0;
}
static int h_void(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    void_calls++;
    return 0;
}
/* HostMulti(i32, string, f64, bytes, bool) -> "i32|string|f64 bits|bytes len:fnv|bool" */
static int h_multi(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    char *s = hl_host_call_alloc(c, 256 + a[1].v.buf.len);
    host_calls++;
    if (hl_host_call_user(c) != &multi_marker) return hl_host_call_error(c, 98, "wrong user pointer");
    if (n != 5) return hl_host_call_error(c, 97, "nargs %d", n);
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    snprintf(s, 256 + a[1].v.buf.len, "%d|%s|%016llx|%zu:%016llx|%d", (int)a[0].v.i32, hl_value_str(&a[1]),
             (unsigned long long)f64_bits(a[2].v.f64), a[3].v.buf.len,
             (unsigned long long)fnv(FNV_INIT, a[3].v.buf.ptr, a[3].v.buf.len), (int)a[4].v.b);
    *r = hl_str(s);
    return 0;
}
/* HostMixed16: the 16 arguments described exactly as the guest's Mixed16 does */
static int h_mixed16(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    size_t len = 512 + a[7].v.buf.len + a[10].v.buf.len;
    char *s = hl_host_call_alloc(c, len);
    host_calls++;
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    snprintf(s, len, "%d|%u|%lld|%llu|%08lx|%016llx|%d|%s|%u:%016llx|%d|%s|%llu|%d|%lld|%u:%016llx|%u|argc=%d",
             (int)a[0].v.i32, (unsigned)a[1].v.u32, (long long)a[2].v.i64, (unsigned long long)a[3].v.u64,
             (unsigned long)f32_bits(a[4].v.f32), (unsigned long long)f64_bits(a[5].v.f64), (int)a[6].v.b,
             hl_value_str(&a[7]), (unsigned)a[8].v.buf.len,
             (unsigned long long)fnv(FNV_INIT, a[8].v.buf.ptr, a[8].v.buf.len), (int)a[9].v.i32, hl_value_str(&a[10]),
             (unsigned long long)a[11].v.u64, (int)a[12].v.b, (long long)a[13].v.i64, (unsigned)a[14].v.buf.len,
             (unsigned long long)fnv(FNV_INIT, a[14].v.buf.ptr, a[14].v.buf.len), (unsigned)a[15].v.u32, n);
    *r = hl_str(s);
    return 0;
}
static int h_fail(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    return hl_host_call_error(c, a[0].v.i32, "host says no to %d", (int)a[0].v.i32);
}
static int h_wrong_ret(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    *r = hl_str("oops");
    return 0;
}
static int h_raw_fail(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    return 5;
}
/* HostFail for test_long_messages: an error message of HL_MAX_MESSAGE bytes */
static char long_msg[HL_MAX_MESSAGE + 1];
static int h_long_fail(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    return hl_host_call_error(c, a[0].v.i32, "%s", long_msg);
}
/* HostBig(u32 n) -> n bytes (i*31+7)&0xff */
static int h_big(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    uint32_t len = a[0].v.u32;
    unsigned char *s = hl_host_call_alloc(c, len);
    host_calls++;
    if (!s) return hl_host_call_error(c, 99, "alloc failed");
    for (uint32_t i = 0; i < len; i++) s[i] = (unsigned char)(i * 31 + 7);
    *r = hl_bytes(s, len);
    return 0;
}
/* A string result holding a NUL byte: invalid, the guest must be told so. */
static int h_nul_string(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    host_calls++;
    r->type = HL_STRING;
    r->v.buf.ptr = "a\0b";
    r->v.buf.len = 3;
    return 0;
}
static int h_plus1000(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(a[0].v.i32 + 1000);
    return 0;
}
static int h_plus2000(hl_host_call *c, const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(a[0].v.i32 + 2000);
    return 0;
}

/* Print callback that collects everything (used where guests print). */
static char printed[4096];
static size_t nprinted;
static void collect_print(void *user, int stream, const char *data, size_t len)
{
    if (len > sizeof printed - 1 - nprinted) len = sizeof printed - 1 - nprinted;
    memcpy(printed + nprinted, data, len);
    nprinted += len;
    printed[nprinted] = 0;
}

static void reg(hl_config *cfg, const char *name, hl_type ret, hl_host_fn fn, void *user, int n, ...)
{
    hl_type p[HL_MAX_ARGS];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) p[i] = (hl_type)va_arg(ap, int);
    va_end(ap);
    if (hl_config_register_host_fn(cfg, name, ret, p, n, fn, user) != HL_OK) {
        fprintf(stderr, "cannot register %s: %s\n", name, hl_config_error(cfg));
        exit(1);
    }
}

static hl_config *full_config(void)
{
    hl_config *cfg = hl_config_new();
    if (!cfg) exit(1);
    reg(cfg, "HostI32", HL_I32, h_i32, NULL, 1, HL_I32);
    reg(cfg, "HostU32", HL_U32, h_u32, NULL, 1, HL_U32);
    reg(cfg, "HostI64", HL_I64, h_i64, NULL, 1, HL_I64);
    reg(cfg, "HostU64", HL_U64, h_u64, NULL, 1, HL_U64);
    reg(cfg, "HostF32", HL_F32, h_f32, NULL, 1, HL_F32);
    reg(cfg, "HostF64", HL_F64, h_f64, NULL, 1, HL_F64);
    reg(cfg, "HostBool", HL_BOOL, h_bool, NULL, 1, HL_BOOL);
    reg(cfg, "HostString", HL_STRING, h_string, NULL, 1, HL_STRING);
    reg(cfg, "HostBytes", HL_BYTES, h_bytes, NULL, 1, HL_BYTES);
    reg(cfg, "HostVoid", HL_VOID, h_void, NULL, 0);
    reg(cfg, "HostMulti", HL_STRING, h_multi, &multi_marker, 5, HL_I32, HL_STRING, HL_F64, HL_BYTES, HL_BOOL);
    reg(cfg, "HostFail", HL_I32, h_fail, NULL, 1, HL_I32);
    reg(cfg, "HostWrongRet", HL_I32, h_wrong_ret, NULL, 0);
    reg(cfg, "HostRawFail", HL_I32, h_raw_fail, NULL, 0);
    reg(cfg, "HostBig", HL_BYTES, h_big, NULL, 1, HL_U32);
    reg(cfg, "HostNulString", HL_STRING, h_nul_string, NULL, 0);
    reg(cfg, "HostMixed16", HL_STRING, h_mixed16, NULL, 16, HL_I32, HL_U32, HL_I64, HL_U64, HL_F32, HL_F64, HL_BOOL,
        HL_STRING, HL_BYTES, HL_I32, HL_STRING, HL_U64, HL_BOOL, HL_I64, HL_BYTES, HL_U32);
    hl_config_set_print(cfg, collect_print, NULL);
    return cfg;
}

/* ---- round trips ---- */
static void test_scalars(hl_sandbox *sb)
{
    hl_value r, a;
    const int32_t i32s[] = { 0, 1, -1, INT32_MIN, INT32_MAX };
    const uint32_t u32s[] = { 0, 1, 0x80000000u, UINT32_MAX };
    const int64_t i64s[] = { 0, -1, INT64_MIN, INT64_MAX, -1234567890123456789ll };
    const uint64_t u64s[] = { 0, 1, 0x8000000000000000ull, UINT64_MAX };
    /* qNaN, sNaN with payload, negative NaN with payload, +inf, -inf, +0, -0, smallest
     * denormal, FLT_MAX, 1.5 */
    const uint32_t f32s[] = { 0x7fc00000u, 0x7f800001u, 0xffc12345u, 0x7f800000u, 0xff800000u,
                              0x00000000u, 0x80000000u, 0x00000001u, 0x7f7fffffu, 0x3fc00000u };
    const uint64_t f64s[] = { 0x7ff8000000000000ull, 0x7ff0000000000001ull, 0xfff8000000000badull,
                              0x7ff0000000000000ull, 0xfff0000000000000ull, 0x0000000000000000ull,
                              0x8000000000000000ull, 0x0000000000000001ull, 0x7fefffffffffffffull,
                              0xbff8000000000000ull };

    for (size_t i = 0; i < sizeof i32s / sizeof *i32s; i++) {
        a = hl_i32(i32s[i]);
        CALL_OK(sb, "EchoI32", HL_I32, &a, 1, &r);
        CHECK_INT(r.v.i32, i32s[i]);
    }
    for (size_t i = 0; i < sizeof u32s / sizeof *u32s; i++) {
        a = hl_u32(u32s[i]);
        CALL_OK(sb, "EchoU32", HL_U32, &a, 1, &r);
        CHECK(r.v.u32 == u32s[i]);
    }
    for (size_t i = 0; i < sizeof i64s / sizeof *i64s; i++) {
        a = hl_i64(i64s[i]);
        CALL_OK(sb, "EchoI64", HL_I64, &a, 1, &r);
        CHECK(r.v.i64 == i64s[i]);
    }
    for (size_t i = 0; i < sizeof u64s / sizeof *u64s; i++) {
        a = hl_u64(u64s[i]);
        CALL_OK(sb, "EchoU64", HL_U64, &a, 1, &r);
        CHECK(r.v.u64 == u64s[i]);
    }
    for (size_t i = 0; i < sizeof f32s / sizeof *f32s; i++) {
        float want = f32_from(f32s[i]);
        a = hl_f32(want);
        CALL_OK(sb, "EchoF32", HL_F32, &a, 1, &r);
        if (memcmp(&r.v.f32, &want, 4) != 0) fprintf(stderr, "EchoF32 %08x -> %08x\n", f32s[i], f32_bits(r.v.f32));
        CHECK(memcmp(&r.v.f32, &want, 4) == 0);
    }
    for (size_t i = 0; i < sizeof f64s / sizeof *f64s; i++) {
        double want = f64_from(f64s[i]);
        a = hl_f64(want);
        CALL_OK(sb, "EchoF64", HL_F64, &a, 1, &r);
        if (memcmp(&r.v.f64, &want, 8) != 0)
            fprintf(stderr, "EchoF64 %016llx -> %016llx\n", (unsigned long long)f64s[i],
                    (unsigned long long)f64_bits(r.v.f64));
        CHECK(memcmp(&r.v.f64, &want, 8) == 0);
    }
    /* semantic checks on top of the bit checks */
    a = hl_f64(-0.0);
    CALL_OK(sb, "EchoF64", HL_F64, &a, 1, &r);
    CHECK(r.v.f64 == 0.0 && signbit(r.v.f64));
    a = hl_f32(-INFINITY);
    CALL_OK(sb, "EchoF32", HL_F32, &a, 1, &r);
    CHECK(isinf(r.v.f32) && r.v.f32 < 0);
    a = hl_f64(NAN);
    CALL_OK(sb, "EchoF64", HL_F64, &a, 1, &r);
    CHECK(isnan(r.v.f64));

    a = hl_bool(true);
    CALL_OK(sb, "EchoBool", HL_BOOL, &a, 1, &r);
    CHECK(r.v.b == true);
    a = hl_bool(false);
    CALL_OK(sb, "EchoBool", HL_BOOL, &a, 1, &r);
    CHECK(r.v.b == false);

    CALL_OK(sb, "Nop", HL_VOID, NULL, 0, &r);
    hl_value two[2] = { hl_i32(40), hl_i32(2) };
    CALL_OK(sb, "Add", HL_I32, two, 2, &r);
    CHECK_INT(r.v.i32, 42);
    two[0] = hl_i32(INT32_MAX), two[1] = hl_i32(1);
    CALL_OK(sb, "Add", HL_I32, two, 2, &r);
    CHECK_INT(r.v.i32, INT32_MIN);
}

static void test_strings_bytes(hl_sandbox *sb)
{
    hl_value r, a;
    static const char uni[] = "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x8e\x89"; /* "héllo ☃ 🎉" */
    static const unsigned char zeros[] = { 0, 1, 0, 0, 255, 0, 0 };
    char *big;

    CHECK_INT(strlen(uni), 15);
    a = hl_str("");
    CALL_OK(sb, "EchoString", HL_STRING, &a, 1, &r);
    CHECK_INT(r.v.buf.len, 0);
    CHECK_STR(hl_value_str(&r), "");
    a = hl_str(uni);
    CALL_OK(sb, "EchoString", HL_STRING, &a, 1, &r);
    CHECK_INT(r.v.buf.len, 15);
    CHECK_STR(hl_value_str(&r), "héllo ☃ 🎉");

    a = hl_bytes(NULL, 0);
    CALL_OK(sb, "EchoBytes", HL_BYTES, &a, 1, &r);
    CHECK_INT(r.v.buf.len, 0);
    a = hl_bytes(zeros, sizeof zeros);
    CALL_OK(sb, "EchoBytes", HL_BYTES, &a, 1, &r);
    CHECK(bytes_eq(&r, zeros, sizeof zeros));

    /* A string holding a NUL byte is refused before the guest runs. */
    a.type = HL_STRING;
    a.v.buf.ptr = "a\0b";
    a.v.buf.len = 3;
    CHECK_INT(hl_call(sb, "EchoString", HL_STRING, &a, 1, &r), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(sb), "argument 0 of guest function 'EchoString': string holds a NUL byte");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    /* The largest bytes argument that fits the 256 KiB input buffer: the buffer's 8-byte
     * top, the record's 8-byte header and 8-byte trailer leave 262120 bytes of payload;
     * a CALL of "EchoBytes" spends 1 (name length) + 9 (name) + 1 (return type) + 1 (argc)
     * + 1 (type) + 4 (length) = 17 of them: 262103 bytes of data. */
    const size_t max = DEF_BUF - 8 - 16 - 17;
    CHECK_INT(max, 262103);
    unsigned char *buf = malloc(max + 1);
    for (size_t i = 0; i < max + 1; i++) buf[i] = (unsigned char)(i * 13 + 1);
    a = hl_bytes(buf, max);
    CALL_OK(sb, "EchoBytes", HL_BYTES, &a, 1, &r);
    CHECK(bytes_eq(&r, buf, max));
    a = hl_bytes(buf, max + 1);
    memset(&r, 0, sizeof r);
    CHECK_INT(hl_call(sb, "EchoBytes", HL_BYTES, &a, 1, &r), HL_ERR_TOO_LARGE);
    CHECK_STR(hl_last_error(sb), "arguments of guest function 'EchoBytes' do not fit the input buffer (262144 bytes)");
    CHECK_INT(hl_last_error_code(sb), 0);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    /* the sandbox still works, with the largest argument again */
    a = hl_bytes(buf, max);
    CALL_OK(sb, "EchoBytes", HL_BYTES, &a, 1, &r);
    CHECK(bytes_eq(&r, buf, max));
    CHECK_STR(hl_last_error(sb), "");

    /* Strings: "EchoString" is one byte longer and a string carries a terminating NUL. */
    const size_t smax = DEF_BUF - 8 - 16 - 19;
    big = malloc(smax + 2);
    for (size_t i = 0; i < smax + 1; i++) big[i] = (char)('A' + i % 26);
    big[smax] = 0;
    a = hl_str(big);
    CALL_OK(sb, "EchoString", HL_STRING, &a, 1, &r);
    CHECK_INT(r.v.buf.len, smax);
    CHECK(r.v.buf.ptr && memcmp(r.v.buf.ptr, big, smax) == 0 && hl_value_str(&r)[smax] == 0);
    big[smax] = 'X';
    big[smax + 1] = 0;
    a = hl_str(big);
    CHECK_INT(hl_call(sb, "EchoString", HL_STRING, &a, 1, &r), HL_ERR_TOO_LARGE);
    CHECK_STR(hl_last_error(sb), "arguments of guest function 'EchoString' do not fit the input buffer (262144 bytes)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    free(big);

    /* Return values: the output buffer holds the same 262120 bytes of payload; a RESULT
     * spends 1 (ok) + 1 (type) + 4 (length) on bytes, and one more (the NUL) on a string. */
    const size_t rmax = DEF_BUF - 8 - 16 - 6;
    a = hl_u32((uint32_t)rmax);
    CALL_OK(sb, "MaxBytes", HL_BYTES, &a, 1, &r);
    CHECK_INT(r.v.buf.len, rmax);
    {
        bool ok = r.v.buf.len == rmax;
        for (size_t i = 0; ok && i < rmax; i++)
            ok = ((const unsigned char *)r.v.buf.ptr)[i] == (unsigned char)(i * 7 + 3);
        CHECK(ok);
    }
    a = hl_u32((uint32_t)rmax + 1);
    CHECK_INT(hl_call(sb, "MaxBytes", HL_BYTES, &a, 1, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_OUTPUT_FULL);
    CHECK_STR(hl_last_error(sb), "guest function 'MaxBytes' failed with code -5: return value of guest function "
                                 "'MaxBytes' (262115 bytes) does not fit the output buffer (262144 bytes)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    a = hl_u32((uint32_t)rmax - 1);
    CALL_OK(sb, "RetString", HL_STRING, &a, 1, &r);
    CHECK_INT(r.v.buf.len, rmax - 1);
    CHECK_INT(strlen(hl_value_str(&r) ? hl_value_str(&r) : ""), rmax - 1);
    CHECK(r.v.buf.ptr && hl_value_str(&r)[0] == 'a' && hl_value_str(&r)[rmax - 2] == (char)('a' + (rmax - 2) % 26));
    a = hl_u32((uint32_t)rmax);
    CHECK_INT(hl_call(sb, "RetString", HL_STRING, &a, 1, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_OUTPUT_FULL);
    CHECK_STR(hl_last_error(sb), "guest function 'RetString' failed with code -5: return value of guest function "
                                 "'RetString' (262114 bytes) does not fit the output buffer (262144 bytes)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    a = hl_u32(3);
    CALL_OK(sb, "RetString", HL_STRING, &a, 1, &r);
    CHECK_STR(hl_value_str(&r), "abc");
    free(buf);
}

static void test_mixed(hl_sandbox *sb)
{
    hl_value r;
    static const unsigned char b1[] = { 1, 0, 2 };
    hl_value a[16] = { hl_i32(INT32_MIN), hl_u32(UINT32_MAX),
                       hl_i64(INT64_MIN), hl_u64(UINT64_MAX),
                       hl_f32(-0.0f),     hl_f64(f64_from(0x7ff8000000000badull)),
                       hl_bool(true),     hl_str("h\xc3\xa9llo"),
                       hl_bytes(b1, 3),   hl_i32(-7),
                       hl_str(""),        hl_u64(12345678901234ull),
                       hl_bool(false),    hl_i64(-2),
                       hl_bytes(NULL, 0), hl_u32(16) };
    char want[512];
    snprintf(want, sizeof want,
             "-2147483648|4294967295|-9223372036854775808|18446744073709551615|80000000|7ff8000000000bad|1|"
             "h\xc3\xa9llo|3:%016llx|-7||12345678901234|0|-2|0:%016llx|16|argc=16",
             (unsigned long long)fnv(FNV_INIT, b1, 3), (unsigned long long)FNV_INIT);
    CALL_OK(sb, "Mixed16", HL_STRING, a, 16, &r);
    CHECK_STR(hl_value_str(&r), want);
    /* the same 16 arguments through the guest to a host function and back */
    CALL_OK(sb, "HostMixed16", HL_STRING, a, 16, &r);
    CHECK_STR(hl_value_str(&r), want);
    /* 17 arguments: refused before anything else */
    hl_value a17[17];
    memcpy(a17, a, sizeof a);
    a17[16] = hl_i32(0);
    CHECK_INT(hl_call(sb, "Mixed16", HL_STRING, a17, 17, &r), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(sb), "hl_call: name and ret are required and nargs must be 0..16");
    /* the 15th argument of the wrong type */
    a[14] = hl_str("x");
    CHECK_INT(hl_call(sb, "Mixed16", HL_STRING, a, 16, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "wrong type for argument 14 of guest function 'Mixed16': expected bytes, got string");
}

static void test_host_calls(hl_sandbox *sb)
{
    hl_value r, a;
    int before = host_calls;

    a = hl_i32(INT32_MIN);
    CALL_OK(sb, "HostEchoI32", HL_I32, &a, 1, &r);
    CHECK_INT(r.v.i32, INT32_MAX);
    a = hl_i32(5);
    CALL_OK(sb, "HostEchoI32", HL_I32, &a, 1, &r);
    CHECK_INT(r.v.i32, -6);
    a = hl_u32(0);
    CALL_OK(sb, "HostEchoU32", HL_U32, &a, 1, &r);
    CHECK(r.v.u32 == UINT32_MAX);
    a = hl_i64(INT64_MAX);
    CALL_OK(sb, "HostEchoI64", HL_I64, &a, 1, &r);
    CHECK(r.v.i64 == INT64_MIN);
    a = hl_u64(0x0123456789abcdefull);
    CALL_OK(sb, "HostEchoU64", HL_U64, &a, 1, &r);
    CHECK(r.v.u64 == 0xfedcba9876543210ull);
    a = hl_f32(f32_from(0x7f800001u)); /* signalling NaN */
    CALL_OK(sb, "HostEchoF32", HL_F32, &a, 1, &r);
    CHECK(last_f32_bits == 0x7f800001u);
    CHECK(f32_bits(r.v.f32) == 0x7f800001u);
    a = hl_f32(-0.0f);
    CALL_OK(sb, "HostEchoF32", HL_F32, &a, 1, &r);
    CHECK(last_f32_bits == 0x80000000u && f32_bits(r.v.f32) == 0x80000000u);
    a = hl_f64(f64_from(0xfff8000000000badull));
    CALL_OK(sb, "HostEchoF64", HL_F64, &a, 1, &r);
    CHECK(last_f64_bits == 0xfff8000000000badull);
    CHECK(f64_bits(r.v.f64) == 0xfff8000000000badull);
    a = hl_f64(-INFINITY);
    CALL_OK(sb, "HostEchoF64", HL_F64, &a, 1, &r);
    CHECK(f64_bits(r.v.f64) == 0xfff0000000000000ull);
    a = hl_bool(true);
    CALL_OK(sb, "HostEchoBool", HL_BOOL, &a, 1, &r);
    CHECK(r.v.b == false);
    a = hl_bool(false);
    CALL_OK(sb, "HostEchoBool", HL_BOOL, &a, 1, &r);
    CHECK(r.v.b == true);
    a = hl_str("h\xc3\xa9llo \xe2\x98\x83");
    CALL_OK(sb, "HostEchoString", HL_STRING, &a, 1, &r);
    CHECK_STR(hl_value_str(&r), "host<héllo ☃>");
    a = hl_str("");
    CALL_OK(sb, "HostEchoString", HL_STRING, &a, 1, &r);
    CHECK_STR(hl_value_str(&r), "host<>");
    {
        static const unsigned char in[] = { 0, 0xff, 0x0f, 0 };
        static const unsigned char out[] = { 0xff, 0, 0xf0, 0xff };
        a = hl_bytes(in, sizeof in);
        CALL_OK(sb, "HostEchoBytes", HL_BYTES, &a, 1, &r);
        CHECK(bytes_eq(&r, out, sizeof out));
        a = hl_bytes(NULL, 0);
        CALL_OK(sb, "HostEchoBytes", HL_BYTES, &a, 1, &r);
        CHECK_INT(r.v.buf.len, 0);
    }
    void_calls = 0;
    CALL_OK(sb, "HostEchoVoid", HL_I32, NULL, 0, &r);
    CHECK_INT(r.v.i32, 2);
    CHECK_INT(void_calls, 2);
    {
        static const unsigned char b[] = { 9, 8, 7 };
        hl_value m[5] = { hl_i32(-3), hl_str("s\xc3\xa9"), hl_f64(1.5), hl_bytes(b, 3), hl_bool(true) };
        char want[128];
        snprintf(want, sizeof want, "-3|s\xc3\xa9|3ff8000000000000|3:%016llx|1",
                 (unsigned long long)fnv(FNV_INIT, b, 3));
        CALL_OK(sb, "HostMulti", HL_STRING, m, 5, &r);
        CHECK_STR(hl_value_str(&r), want);
    }
    CHECK_INT(host_calls - before, 18);

    /* A large host result: "HostBigSum" leaves a 40-byte CALL record (48 with the top) on
     * the input stack; the RESULT's header and trailer (16) and 1 (ok) + 1 (type) + 4
     * (length) leave 262144 - 48 - 16 - 6 = 262074 bytes for the data. */
    {
        const uint32_t hmax = 262074;
        unsigned char *exp = malloc(hmax + 1);
        char want[64];
        for (uint32_t i = 0; i <= hmax; i++) exp[i] = (unsigned char)(i * 31 + 7);
        snprintf(want, sizeof want, "len=%u fnv=%016llx", hmax, (unsigned long long)fnv(FNV_INIT, exp, hmax));
        a = hl_u32(hmax);
        CALL_OK(sb, "HostBigSum", HL_STRING, &a, 1, &r);
        CHECK_STR(hl_value_str(&r), want);
        a = hl_u32(hmax + 1);
        CHECK_INT(hl_call(sb, "HostBigSum", HL_STRING, &a, 1, &r), HL_ERR_GUEST);
        CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_HOST_FN);
        CHECK_STR(hl_last_error(sb), "guest function 'HostBigSum' failed with code -4: HostBig: result of host "
                                     "function 'HostBig' does not fit the input buffer (262144 bytes)");
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
        free(exp);
    }

    /* Host-function errors reach the guest with their code and message; the sandbox stays Ready. */
    a = hl_i32(1234);
    CALL_OK(sb, "CallHostFail", HL_STRING, &a, 1, &r);
    CHECK_STR(hl_value_str(&r), "rc=1234 err=host says no to 1234");
    a = hl_i32(-77);
    CALL_OK(sb, "CallHostFail", HL_STRING, &a, 1, &r);
    CHECK_STR(hl_value_str(&r), "rc=-77 err=host says no to -77");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    /* Host calls the host refuses: the guest sees HL_GUEST_ERR_HOST_FN and why. */
    static const char *const bad[] = {
        "rc=-4 err=host function 'NoSuchHostFn' not found",
        "rc=-4 err=wrong type for argument 0 of host function 'HostI32': expected i32, got string",
        "rc=-4 err=wrong number of arguments to host function 'HostI32': got 0, expected 1",
        "rc=-4 err=host function 'HostI32' returns i32, not string",
        "rc=-4 err=host function 'HostWrongRet' returned string, but is registered as returning i32",
        "rc=5 err=host function failed",
        "rc=-4 err=result of host function 'HostBig' does not fit the input buffer (262144 bytes)",
        "rc=0 i32=-42",
        NULL, /* 8: below */
        "rc=-4 err=hl_call_host: invalid arguments",
    };
    for (int mode = 0; mode < 10; mode++) {
        if (!bad[mode]) continue;
        a = hl_i32(mode);
        CALL_OK(sb, "CallHostBad", HL_STRING, &a, 1, &r);
        CHECK_STR(hl_value_str(&r), bad[mode]);
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    }
    /* A host function whose string result holds a NUL byte: refused (like such an argument
     * of hl_call), and the guest is told why, not that 3 bytes do not fit 256 KiB. */
    a = hl_i32(8);
    CALL_OK(sb, "CallHostBad", HL_STRING, &a, 1, &r);
    CHECK_HAS(hl_value_str(&r), "rc=-4 err=");
    CHECK_HAS(hl_value_str(&r), "NUL");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
}

static void test_call_errors(hl_sandbox *sb)
{
    hl_value r, a, two[2];

    memset(&r, 0, sizeof r);
    CHECK_INT(hl_call(sb, "Nope", HL_I32, NULL, 0, &r), HL_ERR_NOT_FOUND);
    CHECK_STR(hl_last_error(sb), "guest function 'Nope' not found");
    CHECK_INT(hl_last_error_code(sb), 0);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_INT(hl_call(sb, "add", HL_I32, NULL, 0, &r), HL_ERR_NOT_FOUND); /* names are case-sensitive */
    CHECK_STR(hl_last_error(sb), "guest function 'add' not found");

    a = hl_i32(1);
    CHECK_INT(hl_call(sb, "Add", HL_I32, &a, 1, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "wrong number of arguments to guest function 'Add': got 1, expected 2");
    CHECK_INT(hl_call(sb, "Nop", HL_VOID, &a, 1, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "wrong number of arguments to guest function 'Nop': got 1, expected 0");
    two[0] = hl_i32(1), two[1] = hl_str("x");
    CHECK_INT(hl_call(sb, "Add", HL_I32, two, 2, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "wrong type for argument 1 of guest function 'Add': expected i32, got string");
    two[0] = hl_u32(1), two[1] = hl_i32(2);
    CHECK_INT(hl_call(sb, "Add", HL_I32, two, 2, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "wrong type for argument 0 of guest function 'Add': expected i32, got u32");
    two[0] = hl_i32(1), two[1] = hl_i32(2);
    CHECK_INT(hl_call(sb, "Add", HL_STRING, two, 2, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "guest function 'Add' returns i32, not string");
    CHECK_INT(hl_call(sb, "Nop", HL_I32, NULL, 0, &r), HL_ERR_TYPE);
    CHECK_STR(hl_last_error(sb), "guest function 'Nop' returns void, not i32");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    CHECK_INT(hl_call(sb, NULL, HL_I32, NULL, 0, &r), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_call(sb, "Nop", HL_VOID, NULL, 0, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_call(sb, "Add", HL_I32, NULL, 2, &r), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_call(sb, "Add", HL_I32, two, -1, &r), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(sb), "hl_call: name and ret are required and nargs must be 0..16");
    CHECK_INT(hl_call(NULL, "Add", HL_I32, two, 2, &r), HL_ERR_INVALID_ARG);
    CALL_OK(sb, "Add", HL_I32, two, 2, &r);
    CHECK_INT(r.v.i32, 3);
    CHECK_STR(hl_last_error(sb), "");

    /* A guest error: code and message reach the host; the sandbox stays Ready and its state
     * (the counter) survives. */
    CALL_OK(sb, "Counter", HL_U64, NULL, 0, &r);
    uint64_t c0 = r.v.u64;
    two[0] = hl_i32(42), two[1] = hl_str("the answer is wrong");
    CHECK_INT(hl_call(sb, "Fail", HL_I32, two, 2, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), 42);
    CHECK_STR(hl_last_error(sb), "guest function 'Fail' failed with code 42: the answer is wrong");
    CHECK_STR(hl_last_guest_message(sb), "the answer is wrong");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    two[0] = hl_i32(-9), two[1] = hl_str("negative");
    CHECK_INT(hl_call(sb, "Fail", HL_I32, two, 2, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), -9);
    CHECK_STR(hl_last_error(sb), "guest function 'Fail' failed with code -9: negative");
    CHECK_STR(hl_last_guest_message(sb), "negative");
    two[0] = hl_i32(5), two[1] = hl_i32(6);
    CALL_OK(sb, "Add", HL_I32, two, 2, &r);
    CHECK_INT(r.v.i32, 11);
    CHECK_INT(hl_last_error_code(sb), 0);
    CHECK_STR(hl_last_error(sb), "");
    CHECK_STR(hl_last_guest_message(sb), "");
    CHECK_STR(hl_last_guest_message(NULL), "");
    CALL_OK(sb, "Counter", HL_U64, NULL, 0, &r);
    CHECK(r.v.u64 == c0 + 1);

    /* A guest function that returns the wrong type: the SDK turns it into an error. */
    CHECK_INT(hl_call(sb, "WrongRet", HL_I32, NULL, 0, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_BAD_CALL);
    CHECK_STR(hl_last_error(sb), "guest function 'WrongRet' failed with code -2: guest function 'WrongRet' "
                                 "returned string, but is registered as returning i32");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
}

static void test_abort(void)
{
    hl_config *cfg = full_config();
    hl_sandbox *sb;
    hl_value r, a[2] = { hl_i32(7), hl_str("the sky is falling") };
    hl_config_set_print(cfg, collect_print, NULL);
    sb = must_sandbox(GUEST, cfg);
    nprinted = 0;
    printed[0] = 0;
    CHECK_INT(hl_call(sb, "Abort", HL_VOID, a, 2, &r), HL_ERR_ABORTED);
    CHECK_INT(hl_last_error_code(sb), 7);
    CHECK_STR(hl_last_error(sb), "guest aborted with code 7: the sky is falling");
    CHECK_STR(hl_last_guest_message(sb), "the sky is falling");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    CHECK_STR(printed, "before abort\n"); /* output before the abort is delivered */
    CHECK_INT(hl_call(sb, "Nop", HL_VOID, NULL, 0, &r), HL_ERR_STATE);
    CHECK_STR(hl_last_error(sb), "sandbox is poisoned (after: guest aborted with code 7: the sky is falling)");
    CHECK_INT(hl_last_error_code(sb), 0);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    /* still refused, with the same message: the reason does not nest */
    CHECK_INT(hl_call(sb, "Counter", HL_U64, NULL, 0, &r), HL_ERR_STATE);
    CHECK_STR(hl_last_error(sb), "sandbox is poisoned (after: guest aborted with code 7: the sky is falling)");
    CHECK_INT(hl_call(sb, "Nop", HL_VOID, NULL, 0, &r), HL_ERR_STATE);
    CHECK_STR(hl_last_error(sb), "sandbox is poisoned (after: guest aborted with code 7: the sky is falling)");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    hl_sandbox_free(sb);

    /* abort with a negative code */
    sb = must_sandbox(GUEST, cfg);
    a[0] = hl_i32(-100);
    a[1] = hl_str("");
    CHECK_INT(hl_call(sb, "Abort", HL_VOID, a, 2, &r), HL_ERR_ABORTED);
    CHECK_INT(hl_last_error_code(sb), -100);
    CHECK_STR(hl_last_error(sb), "guest aborted with code -100: ");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    hl_sandbox_free(sb);
    hl_config_free(cfg);
}

/* Messages of HL_MAX_MESSAGE bytes arrive whole, with the host's words around them. */
static void test_long_messages(void)
{
    hl_config *cfg = full_config();
    hl_sandbox *sb;
    hl_type i32 = HL_I32;
    hl_value r, a[2];
    static char want[2 * HL_MAX_MESSAGE];
    for (unsigned i = 0; i < HL_MAX_MESSAGE; i++) long_msg[i] = (char)('a' + i % 26);
    a[0] = hl_i32(3);
    a[1] = hl_str(long_msg);
    CHECK_INT(hl_config_register_host_fn(cfg, "HostFail", HL_I32, &i32, 1, h_long_fail, NULL), HL_OK);
    sb = must_sandbox(GUEST, cfg);

    /* a guest function's error result */
    CHECK_INT(hl_call(sb, "Fail", HL_I32, a, 2, &r), HL_ERR_GUEST);
    snprintf(want, sizeof want, "guest function 'Fail' failed with code 3: %s", long_msg);
    CHECK_STR(hl_last_error(sb), want);
    /* a host function's error, as the guest sees it */
    a[0] = hl_i32(9);
    CHECK_INT(hl_call(sb, "CallHostFail", HL_STRING, a, 1, &r), HL_OK);
    snprintf(want, sizeof want, "rc=9 err=%s", long_msg);
    CHECK_STR(hl_value_str(&r), want);
    /* an abort, and the refusals that name it */
    a[0] = hl_i32(7);
    CHECK_INT(hl_call(sb, "Abort", HL_VOID, a, 2, &r), HL_ERR_ABORTED);
    snprintf(want, sizeof want, "guest aborted with code 7: %s", long_msg);
    CHECK_STR(hl_last_error(sb), want);
    CHECK_INT(hl_call(sb, "Nop", HL_VOID, NULL, 0, &r), HL_ERR_STATE);
    snprintf(want, sizeof want, "sandbox is poisoned (after: guest aborted with code 7: %s)", long_msg);
    CHECK_STR(hl_last_error(sb), want);
    hl_sandbox_free(sb);
    hl_config_free(cfg);

    /* an abort during initialisation: the creation error */
    cfg = hl_config_new();
    CHECK_INT(hl_config_set_init_data(cfg, "abort", 5), HL_OK);
    sb = (hl_sandbox *)&sb;
    CHECK_INT(hl_sandbox_new_from_file(&sb, guest_path("init_modes_guest"), cfg), HL_ERR_ABORTED);
    CHECK(sb == NULL);
    snprintf(want, sizeof want, "%s: guest initialisation failed: guest aborted with code 5: %s",
             guest_path("init_modes_guest"), long_msg);
    CHECK_STR(hl_last_error(NULL), want);
    hl_config_free(cfg);
}

/* ---- configuration ---- */
#define SIZE_LIMITS(setter, what, min, max)                                                                       \
    do {                                                                                                          \
        char want_[160];                                                                                          \
        CHECK_INT(setter(cfg, (size_t)(min)-1), HL_ERR_INVALID_ARG);                                              \
        snprintf(want_, sizeof want_, "%s %zu is below the minimum %zu", what, (size_t)(min)-1, (size_t)(min));   \
        CHECK_STR(hl_config_error(cfg), want_);                                                                   \
        CHECK_INT(setter(cfg, (size_t)(max) + 1), HL_ERR_INVALID_ARG);                                            \
        snprintf(want_, sizeof want_, "%s %zu is above the maximum %zu", what, (size_t)(max) + 1, (size_t)(max)); \
        CHECK_STR(hl_config_error(cfg), want_);                                                                   \
        CHECK_INT(setter(cfg, SIZE_MAX), HL_ERR_INVALID_ARG);                                                     \
        snprintf(want_, sizeof want_, "%s %zu is above the maximum %zu", what, SIZE_MAX, (size_t)(max));          \
        CHECK_STR(hl_config_error(cfg), want_);                                                                   \
        CHECK_INT(setter(cfg, 0), HL_ERR_INVALID_ARG);                                                            \
        CHECK_INT(setter(cfg, (size_t)(min)), HL_OK);                                                             \
        CHECK_STR(hl_config_error(cfg), "");                                                                      \
        CHECK_INT(setter(cfg, (size_t)(max)), HL_OK);                                                             \
        CHECK_INT(setter(NULL, (size_t)(min)), HL_ERR_INVALID_ARG);                                               \
    } while (0)

static void test_config(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb;
    hl_value r, a;
    CHECK(cfg != NULL);
    CHECK_STR(hl_config_error(cfg), "");

    CHECK_INT(hl_config_set_heap_size(cfg, 100), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "heap size 100 is below the minimum 65536");
    SIZE_LIMITS(hl_config_set_heap_size, "heap size", HL_HEAP_MIN, HL_HEAP_MAX);
    SIZE_LIMITS(hl_config_set_scratch_size, "scratch size", HL_SCRATCH_MIN, HL_SCRATCH_MAX);
    SIZE_LIMITS(hl_config_set_input_size, "input buffer size", HL_BUFFER_MIN, HL_BUFFER_MAX);
    SIZE_LIMITS(hl_config_set_output_size, "output buffer size", HL_BUFFER_MIN, HL_BUFFER_MAX);
    CHECK_INT(hl_config_set_heap_size(cfg, 268435457), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "heap size 268435457 is above the maximum 268435456");

    /* Every size at its maximum: the sandbox still builds and runs. */
    sb = must_sandbox(GUEST, cfg);
    CALL_OK(sb, "PebSizes", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "heap=268435456 scratch=67108864 input=16777216 output=16777216");
    a = hl_u32(1000000);
    CALL_OK(sb, "RetString", HL_STRING, &a, 1, &r);
    CHECK_INT(r.v.buf.len, 1000000);
    hl_sandbox_free(sb);

    /* Sizes round up to pages; a refused value leaves the previous one. */
    CHECK_INT(hl_config_set_heap_size(cfg, 65537), HL_OK);
    CHECK_INT(hl_config_set_scratch_size(cfg, 100000), HL_OK);
    CHECK_INT(hl_config_set_input_size(cfg, 20000), HL_OK);
    CHECK_INT(hl_config_set_output_size(cfg, 16385), HL_OK);
    CHECK_INT(hl_config_set_input_size(cfg, 1), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_output_size(cfg, HL_BUFFER_MAX + 1), HL_ERR_INVALID_ARG);
    sb = must_sandbox(GUEST, cfg);
    CALL_OK(sb, "PebSizes", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "heap=69632 scratch=102400 input=20480 output=20480");
    {
        /* limits follow the configured sizes: 20480 - 24 - 17 */
        size_t max = 20480 - 24 - 17;
        unsigned char *buf = calloc(1, max + 1);
        a = hl_bytes(buf, max);
        CALL_OK(sb, "EchoBytes", HL_BYTES, &a, 1, &r);
        CHECK(bytes_eq(&r, buf, max));
        a = hl_bytes(buf, max + 1);
        CHECK_INT(hl_call(sb, "EchoBytes", HL_BYTES, &a, 1, &r), HL_ERR_TOO_LARGE);
        CHECK_STR(hl_last_error(sb),
                  "arguments of guest function 'EchoBytes' do not fit the input buffer (20480 bytes)");
        a = hl_u32(20480 - 24 - 6 + 1);
        CHECK_INT(hl_call(sb, "MaxBytes", HL_BYTES, &a, 1, &r), HL_ERR_GUEST);
        CHECK_STR(hl_last_error(sb), "guest function 'MaxBytes' failed with code -5: return value of guest function "
                                     "'MaxBytes' (20451 bytes) does not fit the output buffer (20480 bytes)");
        a = hl_u32(20480 - 24 - 6);
        CALL_OK(sb, "MaxBytes", HL_BYTES, &a, 1, &r);
        CHECK_INT(r.v.buf.len, 20450);
        free(buf);
    }
    /* a heap of 68 KiB: a 100 KB allocation fails inside the guest, cleanly */
    a = hl_u32(100000);
    CHECK_INT(hl_call(sb, "RetString", HL_STRING, &a, 1, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_OUT_OF_MEMORY);
    CHECK_STR(hl_last_error(sb), "guest function 'RetString' failed with code -3: out of memory for 100000 bytes");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    hl_sandbox_free(sb);

    /* defaults */
    hl_config_free(cfg);
    cfg = hl_config_new();
    sb = must_sandbox(GUEST, cfg);
    CALL_OK(sb, "PebSizes", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "heap=4194304 scratch=262144 input=262144 output=262144");
    hl_sandbox_free(sb);

    /* host-function registration */
    hl_type p2[2] = { HL_I32, HL_VOID }, p1[1] = { HL_I32 }, bad10[1] = { (hl_type)10 };
    hl_type p17[17];
    char long_name[300];
    for (int i = 0; i < 17; i++) p17[i] = HL_I32;
    CHECK_INT(hl_config_register_host_fn(cfg, NULL, HL_I32, p1, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function: name and callback are required");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, p1, 1, NULL, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function: name and callback are required");
    CHECK_INT(hl_config_register_host_fn(cfg, "", HL_I32, p1, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function name must be 1..255 bytes");
    memset(long_name, 'n', 256);
    long_name[256] = 0;
    CHECK_INT(hl_config_register_host_fn(cfg, long_name, HL_I32, p1, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function name must be 1..255 bytes");
    long_name[255] = 0;
    CHECK_INT(hl_config_register_host_fn(cfg, long_name, HL_I32, p1, 1, h_i32, NULL), HL_OK);
    CHECK_STR(hl_config_error(cfg), "");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, p1, -1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': -1 parameters (0..16 allowed)");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, p17, 17, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': 17 parameters (0..16 allowed)");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, p17, 16, h_i32, NULL), HL_OK);
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, NULL, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': 1 parameters (0..16 allowed)");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, NULL, 0, h_i32, NULL), HL_OK);
    CHECK_INT(hl_config_register_host_fn(cfg, "F", (hl_type)10, p1, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': invalid return type 10");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", (hl_type)-1, p1, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': invalid return type -1");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, p2, 2, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': invalid type 0 for parameter 1");
    CHECK_INT(hl_config_register_host_fn(cfg, "F", HL_I32, bad10, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(cfg), "host function 'F': invalid type 10 for parameter 0");
    CHECK_INT(hl_config_register_host_fn(NULL, "F", HL_I32, p1, 1, h_i32, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_register_host_fn(cfg, "V", HL_VOID, NULL, 0, h_void, NULL), HL_OK);

    /* Registering a name again replaces the function. */
    CHECK_INT(hl_config_register_host_fn(cfg, "HostI32", HL_I32, p1, 1, h_plus1000, NULL), HL_OK);
    CHECK_INT(hl_config_register_host_fn(cfg, "HostI32", HL_I32, p1, 1, h_plus2000, NULL), HL_OK);
    sb = must_sandbox(GUEST, cfg);
    a = hl_i32(1);
    CALL_OK(sb, "HostEchoI32", HL_I32, &a, 1, &r);
    CHECK_INT(r.v.i32, 2001);
    /* the sandbox keeps working after its configuration is freed */
    hl_config_free(cfg);
    CALL_OK(sb, "HostEchoI32", HL_I32, &a, 1, &r);
    CHECK_INT(r.v.i32, 2001);
    /* a host function this configuration does not have */
    a = hl_u32(5);
    CHECK_INT(hl_call(sb, "HostEchoU32", HL_U32, &a, 1, &r), HL_ERR_GUEST);
    CHECK_INT(hl_last_error_code(sb), HL_GUEST_ERR_HOST_FN);
    CHECK_STR(hl_last_error(sb), "guest function 'HostEchoU32' failed with code -4: HostU32: host function "
                                 "'HostU32' not found");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    hl_sandbox_free(sb);

    hl_config_free(NULL);
    CHECK_STR(hl_config_error(NULL), "no configuration");
    CHECK_INT(hl_config_set_print(NULL, NULL, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_config_set_log(NULL, NULL, NULL), HL_ERR_INVALID_ARG);
}

/* ---- creation ---- */
static void test_creation(void)
{
    hl_config *cfg = hl_config_new();
    hl_sandbox *sb = (hl_sandbox *)&sb; /* not NULL: creation must clear it */
    char path[] = "/tmp/hl_test_calls_XXXXXX";
    char want[256];
    int fd;

    CHECK_INT(hl_sandbox_new_from_file(&sb, "/nonexistent/dir/guest.elf", cfg), HL_ERR_IO);
    CHECK(sb == NULL);
    CHECK_STR(hl_last_error(NULL), "cannot open guest '/nonexistent/dir/guest.elf': No such file or directory");
    CHECK_HAS(hl_last_error(NULL), "/nonexistent/dir/guest.elf");

    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        static const char junk[100] = "this is not an ELF file";
        CHECK_INT(write(fd, junk, sizeof junk), (long)sizeof junk);
        close(fd);
        sb = (hl_sandbox *)&sb;
        CHECK_INT(hl_sandbox_new_from_file(&sb, path, cfg), HL_ERR_BAD_GUEST);
        CHECK(sb == NULL);
        snprintf(want, sizeof want, "%s: guest ELF: not an ELF file (bad magic)", path);
        CHECK_STR(hl_last_error(NULL), want);
        unlink(path);
    }
    /* an empty file */
    {
        char epath[] = "/tmp/hl_test_calls_XXXXXX";
        fd = mkstemp(epath);
        CHECK(fd >= 0);
        if (fd >= 0) {
            close(fd);
            CHECK_INT(hl_sandbox_new_from_file(&sb, epath, cfg), HL_ERR_BAD_GUEST);
            snprintf(want, sizeof want, "%s: guest ELF: file too short (0 bytes)", epath);
            CHECK_STR(hl_last_error(NULL), want);
            unlink(epath);
        }
    }
    /* a directory is a file that cannot be read: HL_ERR_IO naming it */
    {
        char dpath[] = "/tmp/hl_test_calls_dir_XXXXXX";
        if (mkdtemp(dpath)) {
            sb = (hl_sandbox *)&sb;
            CHECK_INT(hl_sandbox_new_from_file(&sb, dpath, cfg), HL_ERR_IO);
            CHECK(sb == NULL);
            snprintf(want, sizeof want, "'%s'", dpath);
            CHECK_HAS(hl_last_error(NULL), want);
            rmdir(dpath);
        } else {
            CHECK(!"mkdtemp failed");
        }
    }
    CHECK_INT(hl_sandbox_new_from_file(&sb, NULL, cfg), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(NULL), "hl_sandbox_new_from_file: path is NULL");
    CHECK_INT(hl_sandbox_new_from_memory(&sb, NULL, 0, cfg), HL_ERR_BAD_GUEST);
    CHECK_STR(hl_last_error(NULL), "guest ELF: file too short (0 bytes)");
    CHECK_INT(hl_sandbox_new_from_memory(&sb, "x", 1, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_last_error(NULL), "hl_sandbox_new: out and cfg are required");

    /* success clears the thread's creation error */
    sb = must_sandbox(GUEST, cfg);
    CHECK_STR(hl_last_error(NULL), "");
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    CHECK_STR(hl_last_error(sb), "");
    CHECK_INT(hl_last_error_code(sb), 0);
    hl_sandbox_free(sb);
    hl_sandbox_free(NULL);
    CHECK_INT(hl_sandbox_state(NULL), HL_STATE_UNRECOVERABLE);
    hl_config_free(cfg);
}

/* ---- registration limits (tests/guests/init_modes_guest.c) ---- */
static hl_status new_with_mode(hl_sandbox **sb, const char *mode)
{
    hl_config *cfg = hl_config_new();
    hl_status st;
    hl_config_set_init_data(cfg, mode, strlen(mode));
    st = hl_sandbox_new_from_file(sb, guest_path("init_modes_guest"), cfg);
    hl_config_free(cfg);
    return st;
}

static void test_registration_limits(void)
{
    hl_sandbox *sb = NULL, *sb2 = NULL;
    hl_snapshot *snap = NULL, *loaded = NULL;
    hl_config *cfg = hl_config_new();
    char want[1024], snap_path[] = "/tmp/hl_test_calls_snap_XXXXXX";
    const char *name = NULL;
    hl_value r;
    int fd;

    /* exactly HL_MAX_FUNCS functions of the guest's own: the SDK's hl.warm does not count */
    CHECK_INT(new_with_mode(&sb, "max"), HL_OK);
    if (sb) {
        CHECK_INT(hl_sandbox_fn_count(sb), HL_MAX_FUNCS);
        CHECK_INT(hl_sandbox_fn_info(sb, HL_MAX_FUNCS - 1, &name, NULL, NULL, NULL), HL_OK);
        CHECK_STR(name, "F1023");
        CHECK_INT(hl_call(sb, "F1023", HL_I32, NULL, 0, &r), HL_OK);
        CHECK_INT(r.v.i32, 1);
        CHECK_INT(hl_call(sb, "hl.warm", HL_VOID, NULL, 0, &r), HL_OK);
        /* the table survives a snapshot file */
        fd = mkstemp(snap_path);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        CHECK_INT(hl_snapshot_take(sb, &snap), HL_OK);
        CHECK_INT(hl_snapshot_save(snap, snap_path), HL_OK);
        CHECK_INT(hl_snapshot_load(&loaded, snap_path), HL_OK);
        CHECK_INT(hl_sandbox_new_from_snapshot(&sb2, loaded, cfg), HL_OK);
        CHECK_INT(hl_sandbox_fn_count(sb2), HL_MAX_FUNCS);
        CHECK_INT(hl_call(sb2, "F1023", HL_I32, NULL, 0, &r), HL_OK);
        unlink(snap_path);
    } else {
        fprintf(stderr, "%s\n", hl_last_error(NULL));
    }
    hl_sandbox_free(sb2);
    hl_snapshot_free(loaded);
    hl_snapshot_free(snap);
    hl_sandbox_free(sb);

    /* one more is refused, and creation says why */
    sb = (hl_sandbox *)&sb;
    CHECK_INT(new_with_mode(&sb, "over"), HL_ERR_ABORTED);
    CHECK(sb == NULL);
    snprintf(want, sizeof want,
             "%s: guest initialisation failed: guest aborted with code %d: guest function registration failed: "
             "F1024: too many functions (at most 1024)",
             guest_path("init_modes_guest"), HL_GUEST_ERR_ABI);
    CHECK_STR(hl_last_error(NULL), want);

    /* a name longer than HL_MAX_NAME: the echoed name is cut, the reason is whole */
    sb = (hl_sandbox *)&sb;
    CHECK_INT(new_with_mode(&sb, "long"), HL_ERR_ABORTED);
    CHECK(sb == NULL);
    snprintf(want, sizeof want,
             "%s: guest initialisation failed: guest aborted with code %d: guest function registration failed: "
             "%.64s...: name longer than 255 bytes",
             guest_path("init_modes_guest"), HL_GUEST_ERR_ABI,
             "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    CHECK_STR(hl_last_error(NULL), want);
    hl_config_free(cfg);
}

/* ---- the function table ---- */
static void test_fn_table(hl_sandbox *sb)
{
    static const char *const want[] = {
        "Nop() -> void",
        "EchoI32(i32) -> i32",
        "EchoU32(u32) -> u32",
        "EchoI64(i64) -> i64",
        "EchoU64(u64) -> u64",
        "EchoF32(f32) -> f32",
        "EchoF64(f64) -> f64",
        "EchoBool(bool) -> bool",
        "EchoString(string) -> string",
        "EchoBytes(bytes) -> bytes",
        "Add(i32, i32) -> i32",
        "Mixed16(i32, u32, i64, u64, f32, f64, bool, string, bytes, i32, string, u64, bool, i64, bytes, u32) -> string",
        "HostEchoI32(i32) -> i32",
        "HostEchoU32(u32) -> u32",
        "HostEchoI64(i64) -> i64",
        "HostEchoU64(u64) -> u64",
        "HostEchoF32(f32) -> f32",
        "HostEchoF64(f64) -> f64",
        "HostEchoBool(bool) -> bool",
        "HostEchoString(string) -> string",
        "HostEchoBytes(bytes) -> bytes",
        "HostEchoVoid() -> i32",
        "HostMulti(i32, string, f64, bytes, bool) -> string",
        "CallHostFail(i32) -> string",
        "CallHostBad(i32) -> string",
        "HostBigSum(u32) -> string",
        "Fail(i32, string) -> i32",
        "Abort(i32, string) -> void",
        "WrongRet() -> i32",
        "Counter() -> u64",
        "Scale(i64, i64) -> i64",
        "PrintMany(u32) -> u64",
        "PrintMixed() -> void",
        "LogAll() -> string",
        "LogMany(u32) -> void",
        "LogLong(u32) -> void",
        "RetString(u32) -> string",
        "MaxBytes(u32) -> bytes",
        "PebSizes() -> string",
        "PrintThenRet(u32, u32) -> string",
        "PrintAroundHost() -> void",
        "WriteOut(i32, bytes) -> i32",
        "HostMixed16(i32, u32, i64, u64, f32, f64, bool, string, bytes, i32, string, u64, bool, i64, bytes, u32) -> string",
        "HostTable() -> string",
        "HostLookup(string) -> string",
        "HostTableBad() -> string",
    };
    const int n = (int)(sizeof want / sizeof *want);
    CHECK_INT(hl_sandbox_fn_count(sb), n);
    for (int i = 0; i < n && i < hl_sandbox_fn_count(sb); i++) {
        const char *name = NULL;
        hl_type ret = (hl_type)99;
        const hl_type *params = NULL;
        int np = -1;
        char buf[256];
        CHECK_INT(hl_sandbox_fn_info(sb, i, &name, &ret, &params, &np), HL_OK);
        CHECK_STR(hl_signature_format(buf, sizeof buf, name, ret, params, np), want[i]);
    }
    {
        const char *name;
        const hl_type *params;
        hl_type ret;
        int np;
        CHECK_INT(hl_sandbox_fn_info(sb, 11, &name, &ret, &params, &np), HL_OK);
        CHECK_STR(name, "Mixed16");
        CHECK_INT(ret, HL_STRING);
        CHECK_INT(np, 16);
        CHECK_INT(params[15], HL_U32);
        CHECK_INT(hl_sandbox_fn_info(sb, 0, NULL, NULL, NULL, NULL), HL_OK);
    }
    CHECK_INT(hl_sandbox_fn_info(sb, n, NULL, NULL, NULL, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_sandbox_fn_info(sb, -1, NULL, NULL, NULL, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_sandbox_fn_info(NULL, 0, NULL, NULL, NULL, NULL), HL_ERR_INVALID_ARG);
    CHECK_INT(hl_sandbox_fn_count(NULL), 0);

    /* hl_signature_format truncates to a terminated prefix */
    {
        static const hl_type p[2] = { HL_I32, HL_I32 };
        char small[8];
        CHECK_STR(hl_signature_format(small, sizeof small, "Add", HL_I32, p, 2), "Add(i32");
    }
    CHECK_STR(hl_status_name(HL_OK), "HL_OK");
    CHECK_STR(hl_status_name(HL_ERR_TYPE), "HL_ERR_TYPE");
    CHECK_STR(hl_status_name(HL_ERR_CANCELLED), "HL_ERR_CANCELLED");
    CHECK_STR(hl_status_name((hl_status)99), "HL_ERR_?");
    /* status numbers are fixed: new ones are appended */
    CHECK_INT(HL_ERR_CANCELLED, 13);
    CHECK_INT(HL_ERR_SYSTEM, 14);
    CHECK_INT(HL_ERR_TOO_LARGE, 15);
}

/* ---- state ---- */
static void test_state(const hl_config *cfg)
{
    enum { N = 20 };
    hl_sandbox *sbs[N];
    hl_value r;
    bool all = true;
    for (int i = 0; i < N; i++) sbs[i] = must_sandbox(GUEST, cfg);
    /* sandbox i is called i+1 times, interleaved with the others */
    for (int round = 0; round < N; round++)
        for (int i = round; i < N; i++) {
            memset(&r, 0, sizeof r);
            if (hl_call(sbs[i], "Counter", HL_U64, NULL, 0, &r) != HL_OK || r.v.u64 != (uint64_t)round + 1)
                all = false;
        }
    CHECK(all);
    for (int i = 0; i < N; i++) {
        hl_value a[2] = { hl_i64(i), hl_i64(-1000) };
        CALL_OK(sbs[i], "Counter", HL_U64, NULL, 0, &r);
        CHECK(r.v.u64 == (uint64_t)i + 2);
        CALL_OK(sbs[i], "Scale", HL_I64, a, 2, &r);
        CHECK(r.v.i64 == -1000LL * i);
    }
    /* poisoning one leaves the others alone */
    {
        hl_value a[2] = { hl_i32(1), hl_str("x") };
        CHECK_INT(hl_call(sbs[3], "Abort", HL_VOID, a, 2, &r), HL_ERR_ABORTED);
        CHECK_INT(hl_sandbox_state(sbs[3]), HL_STATE_POISONED);
        CALL_OK(sbs[4], "Counter", HL_U64, NULL, 0, &r);
        CHECK(r.v.u64 == 7);
        CHECK_INT(hl_sandbox_state(sbs[4]), HL_STATE_READY);
    }
    for (int i = 0; i < N; i++) hl_sandbox_free(sbs[i]);

    /* a new sandbox starts from the guest's initial state */
    hl_sandbox *sb = must_sandbox(GUEST, cfg);
    CALL_OK(sb, "Counter", HL_U64, NULL, 0, &r);
    CHECK(r.v.u64 == 1);
    hl_sandbox_free(sb);
}

/* The guest's view of the host functions (hl_host_fn_*): this sandbox's table, read anew in
 * every guest call, also after a restore into a sandbox of another configuration. */
static void test_host_table(void)
{
    hl_config *a = hl_config_new(), *b = hl_config_new();
    hl_sandbox *sa, *sb;
    hl_snapshot *snap;
    hl_value arg, r;
    hl_type p2[2] = { HL_STRING, HL_F64 };
    reg(a, "HostI32", HL_I32, h_i32, NULL, 1, HL_I32);
    reg(a, "Pair", HL_BOOL, h_bool, NULL, 2, HL_STRING, HL_F64);
    reg(a, "HostVoid", HL_VOID, h_void, NULL, 0);
    CHECK_INT(hl_config_register_host_fn(a, HL_HOSTFN_TABLE, HL_BYTES, NULL, 0, h_bytes, NULL), HL_ERR_INVALID_ARG);
    CHECK_STR(hl_config_error(a), "host function 'hl.host_functions': names starting with 'hl.' are reserved");
    CHECK_INT(hl_config_register_host_fn(a, "hl.x", HL_I32, p2, 2, h_i32, NULL), HL_ERR_INVALID_ARG);
    sa = must_sandbox(GUEST, a);
    CALL_OK(sa, "HostTable", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "HostI32 i32(i32)\nPair bool(string,f64)\nHostVoid void()\n");
    arg = hl_str("Pair");
    CALL_OK(sa, "HostLookup", HL_STRING, &arg, 1, &r);
    CHECK_STR(hl_value_str(&r), "bool");
    arg = hl_str("Missing");
    CALL_OK(sa, "HostLookup", HL_STRING, &arg, 1, &r);
    CHECK_STR(hl_value_str(&r), "none");
    /* asked wrongly, the table call is refused and the sandbox stays Ready */
    CALL_OK(sa, "HostTableBad", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "-4 host function 'hl.host_functions' takes no arguments and returns bytes | -4 host "
                                "function 'hl.host_functions' takes no arguments and returns bytes");
    CHECK_INT(hl_sandbox_state(sa), HL_STATE_READY);
    CHECK_INT(hl_snapshot_take(sa, &snap), HL_OK);
    /* a sandbox from that snapshot whose configuration has one more sees it */
    reg(b, "Extra", HL_STRING, h_string, NULL, 1, HL_STRING);
    reg(b, "HostI32", HL_I32, h_i32, NULL, 1, HL_I32);
    reg(b, "Pair", HL_BOOL, h_bool, NULL, 2, HL_STRING, HL_F64);
    reg(b, "HostVoid", HL_VOID, h_void, NULL, 0);
    CHECK_INT(hl_sandbox_new_from_snapshot(&sb, snap, b), HL_OK);
    CALL_OK(sb, "HostTable", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "Extra string(string)\nHostI32 i32(i32)\nPair bool(string,f64)\nHostVoid void()\n");
    /* and after a restore, the first sandbox still sees its own */
    CHECK_INT(hl_sandbox_restore(sa, snap), HL_OK);
    CALL_OK(sa, "HostTable", HL_STRING, NULL, 0, &r);
    CHECK_STR(hl_value_str(&r), "HostI32 i32(i32)\nPair bool(string,f64)\nHostVoid void()\n");
    hl_sandbox_free(sb);
    hl_sandbox_free(sa);
    hl_snapshot_free(snap);
    hl_config_free(a);
    hl_config_free(b);
}

int main(void)
{
    hl_config *cfg = full_config();
    hl_sandbox *sb = must_sandbox(GUEST, cfg);

    test_fn_table(sb);
    test_scalars(sb);
    test_strings_bytes(sb);
    test_mixed(sb);
    test_host_calls(sb);
    test_call_errors(sb);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    hl_sandbox_free(sb);

    test_abort();
    test_long_messages();
    test_config();
    test_creation();
    test_registration_limits();
    test_state(cfg);
    test_host_table();
    hl_config_free(cfg);
    return check_exit("test_calls");
}
