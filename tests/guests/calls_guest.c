/* calls_guest.c - the guest of the call, output and thread integration tests
 * (tests/integration/test_calls.c, test_output.c, test_threads.c): echo functions for every
 * type, a 16-argument function, host calls of every type and of every failure, guest errors
 * and aborts, static state, prints and logs, and returns of chosen sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hyperlight_guest.h"

/* ---- echoes: the argument itself goes back (the SDK copies it out) ---- */
static int echo(const hl_value *args, int argc, hl_value *ret)
{
    *ret = args[0];
    return 0;
}

static int nop(const hl_value *args, int argc, hl_value *ret) { return 0; }

static int add(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_i32((int32_t)((uint32_t)args[0].v.i32 + (uint32_t)args[1].v.i32));
    return 0;
}

/* FNV-1a 64 */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

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

/* Mixed16(i32, u32, i64, u64, f32, f64, bool, string, bytes, i32, string, u64, bool, i64,
 * bytes, u32) -> string: every argument, floats as bit patterns, bytes as length:fnv. */
static int mixed16(const hl_value *a, int argc, hl_value *ret)
{
    size_t n = 512 + a[7].v.buf.len + a[10].v.buf.len;
    char *s = hl_ret_alloc(n);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(s, n, "%d|%u|%lld|%llu|%08lx|%016llx|%d|%s|%u:%016llx|%d|%s|%llu|%d|%lld|%u:%016llx|%u|argc=%d",
             (int)a[0].v.i32, (unsigned)a[1].v.u32, (long long)a[2].v.i64, (unsigned long long)a[3].v.u64,
             (unsigned long)f32_bits(a[4].v.f32), (unsigned long long)f64_bits(a[5].v.f64), (int)a[6].v.b,
             hl_value_str(&a[7]), (unsigned)a[8].v.buf.len,
             (unsigned long long)fnv(FNV_INIT, a[8].v.buf.ptr, a[8].v.buf.len), (int)a[9].v.i32, hl_value_str(&a[10]),
             (unsigned long long)a[11].v.u64, (int)a[12].v.b, (long long)a[13].v.i64, (unsigned)a[14].v.buf.len,
             (unsigned long long)fnv(FNV_INIT, a[14].v.buf.ptr, a[14].v.buf.len), (unsigned)a[15].v.u32, argc);
    *ret = hl_str(s);
    return 0;
}

/* ---- host calls of every type: forward the argument to host function HostT, return what
 * the host gave back (an error becomes this call's error: code kept, message prefixed by
 * the host function's name) ---- */
static int forward(const char *host, const hl_value *args, int argc, hl_value *ret)
{
    hl_value r;
    int rc = hl_call_host(host, ret->type, args, argc, &r);
    if (rc != 0) return hl_error(rc, "%s: %s", host, hl_host_error());
    *ret = r;
    return 0;
}

/* hl_value_free zeroes len, so strings/bytes need their length saved first. */
static int forward_buf(const char *host, const hl_value *args, int argc, hl_value *ret)
{
    hl_value r;
    size_t len;
    char *p;
    int rc = hl_call_host(host, ret->type, args, argc, &r);
    if (rc != 0) return hl_error(rc, "%s: %s", host, hl_host_error());
    len = r.v.buf.len;
    p = hl_ret_alloc(len + 1);
    if (!p) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(p, r.v.buf.ptr, len);
    p[len] = 0;
    hl_value_free(&r);
    *ret = ret->type == HL_STRING ? hl_str(p) : hl_bytes(p, len);
    return 0;
}

static int host_i32(const hl_value *a, int n, hl_value *r) { return forward("HostI32", a, n, r); }
static int host_u32(const hl_value *a, int n, hl_value *r) { return forward("HostU32", a, n, r); }
static int host_i64(const hl_value *a, int n, hl_value *r) { return forward("HostI64", a, n, r); }
static int host_u64(const hl_value *a, int n, hl_value *r) { return forward("HostU64", a, n, r); }
static int host_f32(const hl_value *a, int n, hl_value *r) { return forward("HostF32", a, n, r); }
static int host_f64(const hl_value *a, int n, hl_value *r) { return forward("HostF64", a, n, r); }
static int host_bool(const hl_value *a, int n, hl_value *r) { return forward("HostBool", a, n, r); }
static int host_string(const hl_value *a, int n, hl_value *r) { return forward_buf("HostString", a, n, r); }
static int host_bytes(const hl_value *a, int n, hl_value *r) { return forward_buf("HostBytes", a, n, r); }

/* HostEchoVoid() -> i32: calls HostVoid() -> void twice; returns the number of successes. */
static int host_void(const hl_value *a, int n, hl_value *ret)
{
    hl_value r;
    int ok = 0;
    for (int i = 0; i < 2; i++) {
        int rc = hl_call_host("HostVoid", HL_VOID, NULL, 0, &r);
        if (rc != 0) return hl_error(rc, "HostVoid: %s", hl_host_error());
        if (r.type == HL_VOID) ok++;
    }
    *ret = hl_i32(ok);
    return 0;
}

/* HostMulti(i32, string, f64, bytes, bool) -> string: forwards five mixed arguments to
 * HostMulti, which describes them. */
static int host_multi(const hl_value *a, int n, hl_value *r) { return forward_buf("HostMulti", a, n, r); }

/* HostMixed16(same 16 parameters as Mixed16) -> string: forwards all 16 to host function
 * HostMixed16, which describes them like Mixed16 does. */
static int host_mixed16(const hl_value *a, int n, hl_value *r) { return forward_buf("HostMixed16", a, n, r); }

/* "rc=<code> err=<hl_host_error()>" or "rc=0 <what the value was>" */
static int describe_host(int rc, const hl_value *v, hl_value *ret)
{
    char *s = hl_ret_alloc(HL_MAX_MESSAGE + 64);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    if (rc != 0) snprintf(s, HL_MAX_MESSAGE + 64, "rc=%d err=%s", rc, hl_host_error());
    else if (v->type == HL_I32) snprintf(s, HL_MAX_MESSAGE + 64, "rc=0 i32=%d", (int)v->v.i32);
    else snprintf(s, HL_MAX_MESSAGE + 64, "rc=0 type=%d", (int)v->type);
    *ret = hl_str(s);
    return 0;
}

/* CallHostFail(i32 code) -> string: HostFail(code) fails with that code; what did the guest see? */
static int call_host_fail(const hl_value *a, int n, hl_value *ret)
{
    hl_value r;
    int rc = hl_call_host("HostFail", HL_I32, a, 1, &r);
    return describe_host(rc, &r, ret);
}

/* CallHostBad(i32 mode) -> string: host calls the host must refuse or that fail. */
static int call_host_bad(const hl_value *a, int n, hl_value *ret)
{
    hl_value r = hl_void(), args[2] = { hl_str("x"), hl_i32(5) };
    int rc;
    switch (a[0].v.i32) {
    case 0: rc = hl_call_host("NoSuchHostFn", HL_I32, NULL, 0, &r); break;
    case 1: rc = hl_call_host("HostI32", HL_I32, args, 1, &r); break;        /* string for i32 */
    case 2: rc = hl_call_host("HostI32", HL_I32, args + 1, 0, &r); break;    /* no argument */
    case 3: rc = hl_call_host("HostI32", HL_STRING, args + 1, 1, &r); break; /* wrong return type */
    case 4: rc = hl_call_host("HostWrongRet", HL_I32, NULL, 0, &r); break;   /* host sets a string */
    case 5: rc = hl_call_host("HostRawFail", HL_I32, NULL, 0, &r); break;    /* no message */
    case 6: {                                                                /* result too large */
        hl_value big = hl_u32(300000);
        rc = hl_call_host("HostBig", HL_BYTES, &big, 1, &r);
        break;
    }
    case 8: rc = hl_call_host("HostNulString", HL_STRING, NULL, 0, &r); break; /* "a\0b" */
    case 9: { /* more arguments than a call can carry */
        hl_value many[HL_MAX_ARGS + 1];
        for (int i = 0; i <= HL_MAX_ARGS; i++) many[i] = hl_i32(i);
        rc = hl_call_host("HostI32", HL_I32, many, HL_MAX_ARGS + 1, &r);
        break;
    }
    case 7: { /* a valid call after the failures: the channel still works */
        hl_value v = hl_i32(41);
        rc = hl_call_host("HostI32", HL_I32, &v, 1, &r);
        break;
    }
    default: return hl_error(1, "unknown mode %d", (int)a[0].v.i32);
    }
    if (rc == 0 && (r.type == HL_STRING || r.type == HL_BYTES)) hl_value_free(&r);
    return describe_host(rc, &r, ret);
}

/* HostBigSum(u32 n) -> string: HostBig(n) returns n bytes (i*31+7)&0xff; "len=<n> fnv=<hex>". */
static int host_big_sum(const hl_value *a, int n, hl_value *ret)
{
    hl_value r;
    char *s;
    int rc = hl_call_host("HostBig", HL_BYTES, a, 1, &r);
    if (rc != 0) return hl_error(rc, "HostBig: %s", hl_host_error());
    s = hl_ret_alloc(64);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(s, 64, "len=%u fnv=%016llx", (unsigned)r.v.buf.len,
             (unsigned long long)fnv(FNV_INIT, r.v.buf.ptr, r.v.buf.len));
    hl_value_free(&r);
    *ret = hl_str(s);
    return 0;
}

/* ---- errors ---- */
/* Fail(i32 code, string msg) -> i32 */
static int fail_fn(const hl_value *a, int n, hl_value *ret) { return hl_error(a[0].v.i32, "%s", hl_value_str(&a[1])); }

/* Abort(i32 code, string msg) -> void: prints first, then aborts. */
static int abort_fn(const hl_value *a, int n, hl_value *ret)
{
    printf("before abort\n");
    hl_abort(a[0].v.i32, "%s", hl_value_str(&a[1]));
}

/* WrongRet() -> i32 that returns a string */
static int wrong_ret(const hl_value *a, int n, hl_value *ret)
{
    *ret = hl_str("not an i32");
    return 0;
}

/* ---- state ---- */
static uint64_t counter;
static int counter_fn(const hl_value *a, int n, hl_value *ret)
{
    *ret = hl_u64(++counter);
    return 0;
}

/* Scale(i64 x, i64 k) -> i64: x * k */
static int scale(const hl_value *a, int n, hl_value *ret)
{
    *ret = hl_i64(a[0].v.i64 * a[1].v.i64);
    return 0;
}

/* ---- output ---- */
/* PrintMany(u32 lines) -> u64: prints `lines` lines of exactly 64 bytes with printf;
 * returns the FNV-1a 64 of everything printed. */
static int print_many(const hl_value *a, int n, hl_value *ret)
{
    uint64_t h = FNV_INIT;
    char line[80];
    for (uint32_t i = 0; i < a[0].v.u32; i++) {
        int len =
            snprintf(line, sizeof line, "%08u abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.\n", (unsigned)i);
        h = fnv(h, line, (size_t)len);
        printf("%s", line);
    }
    *ret = hl_u64(h);
    return 0;
}

/* PrintMixed() -> void: prints to both streams through every stdio path, with logs between. */
static int print_mixed(const hl_value *a, int n, hl_value *ret)
{
    printf("out %d ", 1);
    fprintf(stderr, "err %d\n", 2);
    puts("puts line");
    HL_INFO("log %s", "one");
    fputs("tail", stdout);
    putchar('!');
    HL_WARN("log two");
    fputc('E', stderr);
    if (write(1, "raw\n", 4) != 4) return hl_error(1, "write failed");
    if (write(3, "x", 1) != -1) return hl_error(2, "write to fd 3 succeeded");
    return 0;
}

/* LogAll() -> string: one record per level; returns the line of each, "l0 l1 l2 l3 l4 l5". */
static int log_all(const hl_value *a, int n, hl_value *ret)
{
    int l[6];
    char *s = hl_ret_alloc(128);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    l[0] = __LINE__ + 1; /* the next line logs */
    HL_TRACE("trace %d", 0);
    l[1] = __LINE__ + 1; /* the next line logs */
    HL_DEBUG("debug %s", "1");
    l[2] = __LINE__ + 1; /* the next line logs */
    HL_INFO("info %c", '2');
    l[3] = __LINE__ + 1; /* the next line logs */
    HL_WARN("warn %u", 3u);
    l[4] = __LINE__ + 1; /* the next line logs */
    HL_ERROR("error %x", 4);
    l[5] = __LINE__ + 1; /* the next line logs */
    HL_CRITICAL("critical %05d", 5);
    snprintf(s, 128, "%d %d %d %d %d %d", l[0], l[1], l[2], l[3], l[4], l[5]);
    *ret = hl_str(s);
    return 0;
}

/* LogMany(u32 n) -> void: n log records "record <i>" at level i % 6 with prints between. */
static int log_many(const hl_value *a, int n, hl_value *ret)
{
    for (uint32_t i = 0; i < a[0].v.u32; i++) {
        hl_log((int)(i % 6), "many.c", (int)i, "record %u", (unsigned)i);
        printf("p%u;", (unsigned)i);
    }
    return 0;
}

/* LogLong(u32 n) -> void: one INFO record of n 'x' (above HL_MAX_MESSAGE it is truncated). */
static int log_long(const hl_value *a, int n, hl_value *ret)
{
    char *s = malloc(a[0].v.u32 + 1);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    memset(s, 'x', a[0].v.u32);
    s[a[0].v.u32] = 0;
    HL_INFO("%s", s);
    free(s);
    return 0;
}

/* PrintThenRet(u32 nprint, u32 nret) -> string: prints nprint bytes '.' on stdout, then
 * returns nret bytes 'a'..'z' repeating (prints and result share the output buffer). */
static int ret_string(const hl_value *a, int n, hl_value *ret);
static int print_then_ret(const hl_value *a, int n, hl_value *ret)
{
    for (uint32_t i = 0; i < a[0].v.u32; i++) putchar('.');
    return ret_string(a + 1, 1, ret);
}

/* PrintAroundHost() -> void: prints, calls host function HostMark() -> void, prints. */
static int print_around_host(const hl_value *a, int n, hl_value *ret)
{
    hl_value r;
    int rc;
    printf("before;");
    HL_DEBUG("log before");
    fprintf(stderr, "err before;");
    rc = hl_call_host("HostMark", HL_VOID, NULL, 0, &r);
    if (rc != 0) return hl_error(rc, "HostMark: %s", hl_host_error());
    printf("after;");
    return 0;
}

/* WriteOut(i32 fd, bytes data) -> i32: write(fd, data) (binary-safe output); returns its result. */
static int write_out(const hl_value *a, int n, hl_value *ret)
{
    *ret = hl_i32((int32_t)write(a[0].v.i32, a[1].v.buf.ptr, a[1].v.buf.len));
    return 0;
}

/* ---- sizes ---- */
/* RetString(u32 n) -> string of n bytes 'a'..'z' repeating */
static int ret_string(const hl_value *a, int n, hl_value *ret)
{
    uint32_t len = a[0].v.u32;
    char *s = hl_ret_alloc((size_t)len + 1);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory for %u bytes", (unsigned)len);
    for (uint32_t i = 0; i < len; i++) s[i] = (char)('a' + i % 26);
    s[len] = 0;
    *ret = hl_str(s);
    return 0;
}

/* MaxBytes(u32 n) -> bytes of n bytes (i*7+3)&0xff */
static int max_bytes(const hl_value *a, int n, hl_value *ret)
{
    uint32_t len = a[0].v.u32;
    unsigned char *s = hl_ret_alloc(len);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory for %u bytes", (unsigned)len);
    for (uint32_t i = 0; i < len; i++) s[i] = (unsigned char)(i * 7 + 3);
    *ret = hl_bytes(s, len);
    return 0;
}

/* PebSizes() -> string: the buffer sizes the host gave this guest. */
static int peb_sizes(const hl_value *a, int n, hl_value *ret)
{
    const struct hl_peb *p = hl_guest_peb();
    char *s = hl_ret_alloc(160);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(s, 160, "heap=%llu scratch=%llu input=%llu output=%llu", (unsigned long long)p->heap_size,
             (unsigned long long)p->stack_size, (unsigned long long)p->input_size, (unsigned long long)p->output_size);
    *ret = hl_str(s);
    return 0;
}

/* The host-function table as the guest sees it: "Name ret(p1,p2)" per line. */
static int host_table(const hl_value *args, int argc, hl_value *ret)
{
    static char out[8192];
    size_t n = 0;
    int count = hl_host_fn_count();
    (void)args, (void)argc;
    if (count < 0) return hl_error(7, "table: %s", hl_host_error());
    for (int i = 0; i < count; i++) {
        const hl_host_fn_info *f = hl_host_fn_at(i);
        n += (size_t)snprintf(out + n, sizeof out - n, "%s %s(", f->name, hl_type_name(f->ret));
        for (int j = 0; j < f->nparams; j++)
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", j ? "," : "", hl_type_name(f->params[j]));
        n += (size_t)snprintf(out + n, sizeof out - n, ")\n");
    }
    if (hl_host_fn_at(count) || hl_host_fn_at(-1)) return hl_error(8, "out-of-range entry is not NULL");
    *ret = hl_str(out);
    return 0;
}

/* The SDK's table call made wrongly, as a hostile guest could: with an argument, or asking
 * for a string. Returns the host's two refusals. */
static int host_table_bad(const hl_value *args, int argc, hl_value *ret)
{
    static char out[1024];
    hl_value arg = hl_i32(1), r;
    int a = hl_call_host(HL_HOSTFN_TABLE, HL_BYTES, &arg, 1, &r);
    char first[512];
    (void)args, (void)argc;
    snprintf(first, sizeof first, "%d %s", a, hl_host_error());
    int b = hl_call_host(HL_HOSTFN_TABLE, HL_STRING, NULL, 0, &r);
    snprintf(out, sizeof out, "%s | %d %s", first, b, hl_host_error());
    *ret = hl_str(out);
    return 0;
}

static int host_lookup(const hl_value *args, int argc, hl_value *ret)
{
    const hl_host_fn_info *f = hl_host_fn_lookup(hl_value_str(&args[0]));
    (void)argc;
    *ret = hl_str(f ? hl_type_name(f->ret) : "none");
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("Nop", nop, HL_VOID, 0);
    hl_guest_register("EchoI32", echo, HL_I32, 1, HL_I32);
    hl_guest_register("EchoU32", echo, HL_U32, 1, HL_U32);
    hl_guest_register("EchoI64", echo, HL_I64, 1, HL_I64);
    hl_guest_register("EchoU64", echo, HL_U64, 1, HL_U64);
    hl_guest_register("EchoF32", echo, HL_F32, 1, HL_F32);
    hl_guest_register("EchoF64", echo, HL_F64, 1, HL_F64);
    hl_guest_register("EchoBool", echo, HL_BOOL, 1, HL_BOOL);
    hl_guest_register("EchoString", echo, HL_STRING, 1, HL_STRING);
    hl_guest_register("EchoBytes", echo, HL_BYTES, 1, HL_BYTES);
    hl_guest_register("Add", add, HL_I32, 2, HL_I32, HL_I32);
    hl_guest_register("Mixed16", mixed16, HL_STRING, 16, HL_I32, HL_U32, HL_I64, HL_U64, HL_F32, HL_F64, HL_BOOL,
                      HL_STRING, HL_BYTES, HL_I32, HL_STRING, HL_U64, HL_BOOL, HL_I64, HL_BYTES, HL_U32);
    hl_guest_register("HostEchoI32", host_i32, HL_I32, 1, HL_I32);
    hl_guest_register("HostEchoU32", host_u32, HL_U32, 1, HL_U32);
    hl_guest_register("HostEchoI64", host_i64, HL_I64, 1, HL_I64);
    hl_guest_register("HostEchoU64", host_u64, HL_U64, 1, HL_U64);
    hl_guest_register("HostEchoF32", host_f32, HL_F32, 1, HL_F32);
    hl_guest_register("HostEchoF64", host_f64, HL_F64, 1, HL_F64);
    hl_guest_register("HostEchoBool", host_bool, HL_BOOL, 1, HL_BOOL);
    hl_guest_register("HostEchoString", host_string, HL_STRING, 1, HL_STRING);
    hl_guest_register("HostEchoBytes", host_bytes, HL_BYTES, 1, HL_BYTES);
    hl_guest_register("HostEchoVoid", host_void, HL_I32, 0);
    hl_guest_register("HostMulti", host_multi, HL_STRING, 5, HL_I32, HL_STRING, HL_F64, HL_BYTES, HL_BOOL);
    hl_guest_register("CallHostFail", call_host_fail, HL_STRING, 1, HL_I32);
    hl_guest_register("CallHostBad", call_host_bad, HL_STRING, 1, HL_I32);
    hl_guest_register("HostBigSum", host_big_sum, HL_STRING, 1, HL_U32);
    hl_guest_register("Fail", fail_fn, HL_I32, 2, HL_I32, HL_STRING);
    hl_guest_register("Abort", abort_fn, HL_VOID, 2, HL_I32, HL_STRING);
    hl_guest_register("WrongRet", wrong_ret, HL_I32, 0);
    hl_guest_register("Counter", counter_fn, HL_U64, 0);
    hl_guest_register("Scale", scale, HL_I64, 2, HL_I64, HL_I64);
    hl_guest_register("PrintMany", print_many, HL_U64, 1, HL_U32);
    hl_guest_register("PrintMixed", print_mixed, HL_VOID, 0);
    hl_guest_register("LogAll", log_all, HL_STRING, 0);
    hl_guest_register("LogMany", log_many, HL_VOID, 1, HL_U32);
    hl_guest_register("LogLong", log_long, HL_VOID, 1, HL_U32);
    hl_guest_register("RetString", ret_string, HL_STRING, 1, HL_U32);
    hl_guest_register("MaxBytes", max_bytes, HL_BYTES, 1, HL_U32);
    hl_guest_register("PebSizes", peb_sizes, HL_STRING, 0);
    hl_guest_register("PrintThenRet", print_then_ret, HL_STRING, 2, HL_U32, HL_U32);
    hl_guest_register("PrintAroundHost", print_around_host, HL_VOID, 0);
    hl_guest_register("WriteOut", write_out, HL_I32, 2, HL_I32, HL_BYTES);
    hl_guest_register("HostMixed16", host_mixed16, HL_STRING, 16, HL_I32, HL_U32, HL_I64, HL_U64, HL_F32, HL_F64,
                      HL_BOOL, HL_STRING, HL_BYTES, HL_I32, HL_STRING, HL_U64, HL_BOOL, HL_I64, HL_BYTES, HL_U32);
    hl_guest_register("HostTable", host_table, HL_STRING, 0);
    hl_guest_register("HostLookup", host_lookup, HL_STRING, 1, HL_STRING);
    hl_guest_register("HostTableBad", host_table_bad, HL_STRING, 0);
    /* a log record during initialisation: delivered while the sandbox is created */
    HL_INFO("calls_guest: %d functions registered", 46);
}
