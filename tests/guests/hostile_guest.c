/* hostile_guest.c - a guest that misbehaves on purpose, one way per function, for
 * tests/integration/test_hostile.c. Each hostile function does exactly one bad thing; what
 * the host must report is checked there. A few benign functions (Ping, Addr, Spin,
 * MallocHuge, RecurseTo) let the host check the sandbox that stays healthy and learn the
 * addresses the faults must name.
 *
 * Addresses are passed through an empty asm so the compiler cannot see that they are NULL
 * or otherwise invalid (GCC would turn a visible NULL dereference into ud2). */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight_guest.h"

#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

typedef void (*thunk)(void);

/* ---- things the faults aim at ---- */
static const char ro_str[] = "read-only data of the hostile guest";
static unsigned char data_code[64] __attribute__((aligned(16))) = { 0xc3 }; /* ret, in .data */

/* A function whose code the guest tries to overwrite. */
__attribute__((noinline)) static int code_target(int x)
{
    OPAQUE(x);
    return x * 3 + 1;
}

/* ---- benign ---- */
static int ping(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_i32(args[0].v.i32 + 1);
    return 0;
}

/* Addr(string what) -> u64: where the hostile functions aim. */
static int addr(const hl_value *args, int argc, hl_value *ret)
{
    const char *w = hl_value_str(&args[0]);
    const struct hl_peb *p = hl_guest_peb();
    uint64_t a;
    if (strcmp(w, "code") == 0) a = (uint64_t)(uintptr_t)&code_target;
    else if (strcmp(w, "rodata") == 0) a = (uint64_t)(uintptr_t)ro_str;
    else if (strcmp(w, "data") == 0) a = (uint64_t)(uintptr_t)data_code;
    else if (strcmp(w, "peb") == 0) a = (uint64_t)(uintptr_t)p;
    else if (strcmp(w, "input") == 0) a = p->input_gpa;
    else if (strcmp(w, "output") == 0) a = p->output_gpa;
    else if (strcmp(w, "output_size") == 0) a = p->output_size;
    else if (strcmp(w, "heap") == 0) a = p->heap_gpa;
    else if (strcmp(w, "heap_size") == 0) a = p->heap_size;
    else if (strcmp(w, "stack") == 0) a = p->stack_gpa;
    else return hl_error(1, "unknown address '%s'", w);
    *ret = hl_u64(a);
    return 0;
}

/* Spin(u64 n) -> u64: a bounded busy loop without exits; returns n. */
static int spin(const hl_value *args, int argc, hl_value *ret)
{
    uint64_t n = args[0].v.u64, i;
    for (i = 0; i < n; i++) OPAQUE(i);
    *ret = hl_u64(i);
    return 0;
}

/* MallocHuge() -> i32: bit 0: malloc(heap + 1) gave NULL; bit 1: malloc(SIZE_MAX / 2) gave
 * NULL; bit 2: calloc overflow gave NULL; bit 3: a small malloc still works afterwards. */
static int malloc_huge(const hl_value *args, int argc, hl_value *ret)
{
    size_t heap = (size_t)hl_guest_peb()->heap_size, big = SIZE_MAX / 2, n = SIZE_MAX / 4;
    int bits = 0;
    void *p;
    OPAQUE(big);
    OPAQUE(n);
    if (!(p = malloc(heap + 1))) bits |= 1;
    free(p);
    if (!(p = malloc(big))) bits |= 2;
    free(p);
    if (!(p = calloc(n, 8))) bits |= 4;
    free(p);
    if ((p = malloc(100)) != NULL) bits |= 8;
    memset(p, 1, 100);
    free(p);
    *ret = hl_i32(bits);
    return 0;
}

/* Recursion with a real frame per level (volatile array, non-tail call). */
__attribute__((noinline)) static uint64_t recurse(uint64_t depth, uint64_t limit)
{
    volatile uint8_t frame[512];
    frame[0] = (uint8_t)depth;
    frame[511] = (uint8_t)(depth >> 8);
    if (depth == limit) return frame[0];
    return recurse(depth + 1, limit) + frame[511];
}

/* RecurseTo(u64 depth) -> u64: bounded recursion that fits the stack. */
static int recurse_to(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_u64(recurse(0, args[0].v.u64));
    return 0;
}

/* ---- hostile: execution of non-executable memory ---- */
static int exec_stack(const hl_value *args, int argc, hl_value *ret)
{
    volatile unsigned char buf[16];
    thunk f;
    buf[0] = 0xc3;
    f = (thunk)(uintptr_t)buf;
    OPAQUE(f);
    f();
    *ret = hl_i32(0);
    return 0;
}

static int exec_heap(const hl_value *args, int argc, hl_value *ret)
{
    volatile unsigned char *buf = malloc(16);
    thunk f;
    if (!buf) return hl_error(1, "malloc failed");
    buf[0] = 0xc3;
    f = (thunk)(uintptr_t)buf;
    OPAQUE(f);
    f();
    *ret = hl_i32(0);
    return 0;
}

static int exec_data(const hl_value *args, int argc, hl_value *ret)
{
    thunk f = (thunk)(uintptr_t)data_code;
    OPAQUE(f);
    f();
    *ret = hl_i32(0);
    return 0;
}

static int call_null(const hl_value *args, int argc, hl_value *ret)
{
    thunk f = 0;
    OPAQUE(f);
    f();
    *ret = hl_i32(0);
    return 0;
}

/* ---- hostile: writes to read-only memory ---- */
static int write_code(const hl_value *args, int argc, hl_value *ret)
{
    volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)&code_target;
    OPAQUE(p);
    p[0] = 0xcc;
    *ret = hl_i32(code_target(1));
    return 0;
}

static int write_rodata(const hl_value *args, int argc, hl_value *ret)
{
    volatile char *p = (volatile char *)(uintptr_t)ro_str;
    OPAQUE(p);
    p[0] = 'X';
    *ret = hl_i32(p[0]);
    return 0;
}

static int write_peb(const hl_value *args, int argc, hl_value *ret)
{
    volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)hl_guest_peb();
    OPAQUE(p);
    p[0] = 0xdeadbeef; /* the magic */
    *ret = hl_i32((int32_t)p[0]);
    return 0;
}

static int write_input(const hl_value *args, int argc, hl_value *ret)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)hl_guest_peb()->input_gpa;
    OPAQUE(p);
    p[0] = 0x1000; /* the input stack's top */
    *ret = hl_i32((int32_t)p[0]);
    return 0;
}

/* ---- hostile: NULL and unmapped memory ---- */
static int read_addr(uintptr_t a, hl_value *ret)
{
    volatile uint32_t *p;
    OPAQUE(a);
    p = (volatile uint32_t *)a;
    *ret = hl_i32((int32_t)*p);
    return 0;
}
static int read_null(const hl_value *args, int argc, hl_value *ret) { return read_addr(0, ret); }
static int read_far(const hl_value *args, int argc, hl_value *ret) { return read_addr(0x40000000, ret); }
/* the host's page tables live at HL_PT_GPA but are not mapped into the guest */
static int read_pt(const hl_value *args, int argc, hl_value *ret) { return read_addr(HL_PT_GPA, ret); }
/* the guard page below the stack, touched directly rather than by an overflow */
static int read_guard(const hl_value *args, int argc, hl_value *ret)
{
    return read_addr((uintptr_t)hl_guest_peb()->stack_gpa - 16, ret);
}
/* a non-canonical address: #GP, not #PF, so cr2 says nothing */
static int read_noncanon(const hl_value *args, int argc, hl_value *ret)
{
    return read_addr((uintptr_t)0x8000000000000000ull, ret);
}

static int write_null(const hl_value *args, int argc, hl_value *ret)
{
    uintptr_t a = 0;
    OPAQUE(a);
    *(volatile uint32_t *)a = 42;
    *ret = hl_i32(0);
    return 0;
}

/* ---- hostile: stack and heap exhaustion ---- */
static int recurse_forever(const hl_value *args, int argc, hl_value *ret)
{
    uint64_t limit = UINT64_MAX;
    OPAQUE(limit);
    *ret = hl_i32((int32_t)recurse(0, limit));
    return 0;
}

static int exhaust_heap(const hl_value *args, int argc, hl_value *ret)
{
    size_t total = 0, chunk = 64 << 10;
    unsigned char *p;
    /* big chunks first, then ever smaller ones, until not even 16 bytes are left */
    while (chunk >= 16) {
        while ((p = malloc(chunk)) != NULL) {
            p[0] = 1;
            p[chunk - 1] = 1;
            total += chunk;
        }
        chunk /= 2;
    }
    hl_abort(HL_GUEST_ERR_OUT_OF_MEMORY, "heap exhausted after %zu bytes", total);
}

/* ---- hostile: instructions ---- */
/* divides by its argument (0: a divide error) */
static int do_div(const hl_value *args, int argc, hl_value *ret)
{
    uint32_t q = 1000, d = (uint32_t)args[0].v.i32, r = 0;
    __asm__ volatile("divl %2" : "+a"(q), "+d"(r) : "r"(d));
    *ret = hl_i32((int32_t)q);
    return 0;
}
static int do_ud2(const hl_value *args, int argc, hl_value *ret)
{
    __asm__ volatile("ud2");
    *ret = hl_i32(0);
    return 0;
}
static int do_int3(const hl_value *args, int argc, hl_value *ret)
{
    __asm__ volatile("int3");
    *ret = hl_i32(0);
    return 0;
}
static int do_int80(const hl_value *args, int argc, hl_value *ret)
{
    __asm__ volatile("int $0x80");
    *ret = hl_i32(0);
    return 0;
}
static int do_hlt(const hl_value *args, int argc, hl_value *ret)
{
    __asm__ volatile("hlt");
    *ret = hl_i32(0);
    return 0;
}
/* Cli() -> i32: cli at CPL0 (emulated on kvm_pvm), then returns 7. */
static int do_cli(const hl_value *args, int argc, hl_value *ret)
{
    __asm__ volatile("cli" ::: "memory");
    *ret = hl_i32(7);
    return 0;
}
static int do_rdmsr_bad(const hl_value *args, int argc, hl_value *ret)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xdeadbeefu));
    *ret = hl_i32((int32_t)(lo ^ hi));
    return 0;
}
static int out_unknown(const hl_value *args, int argc, hl_value *ret)
{
    __asm__ volatile("outl %%eax, $0x99" : : "a"(0u) : "memory");
    *ret = hl_i32(0);
    return 0;
}
static int in_port(const hl_value *args, int argc, hl_value *ret)
{
    uint8_t v;
    __asm__ volatile("inb $0x10, %0" : "=a"(v) : : "memory");
    *ret = hl_i32(v);
    return 0;
}
static int outsb_rep(const hl_value *args, int argc, hl_value *ret)
{
    static const char bytes[8] = "abcdefg";
    const char *src = bytes;
    uint64_t n = 4;
    __asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"((uint16_t)HL_PORT_DONE) : "memory");
    *ret = hl_i32(0);
    return 0;
}
static int outsb_one(const hl_value *args, int argc, hl_value *ret)
{
    static const char bytes[8] = "abcdefg";
    const char *src = bytes;
    __asm__ volatile("outsb" : "+S"(src) : "d"((uint16_t)HL_PORT_DONE) : "memory");
    *ret = hl_i32(0);
    return 0;
}

/* ---- hostile: hand-made output buffers ---- */
static uint8_t *ob;
static void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Writes a well-formed record of `kind` at `at`; returns the offset after it. */
static size_t put_rec(size_t at, uint16_t kind, const void *payload, uint32_t len)
{
    size_t padded = ((size_t)len + 7) & ~(size_t)7;
    st32(ob + at, len);
    ob[at + 4] = (uint8_t)kind;
    ob[at + 5] = (uint8_t)(kind >> 8);
    ob[at + 6] = ob[at + 7] = 0;
    memset(ob + at + 8, 0, padded);
    memcpy(ob + at + 8, payload, len);
    st64(ob + at + 8 + padded, at);
    return at + 8 + padded + 8;
}

/* Sets top and leaves through port; the host must never resume the guest. */
static int leave(uint16_t port, uint64_t top)
{
    st64(ob, top);
    __asm__ volatile("outl %%eax, %%dx" : : "a"(0u), "d"(port) : "memory");
    return hl_error(99, "the host resumed the guest after a corrupt output buffer");
}

/* Corrupt(i32 which) -> i32 */
static int corrupt(const hl_value *args, int argc, hl_value *ret)
{
    static const uint8_t ok_i32[] = { 1, HL_I32, 42, 0, 0, 0 }; /* RESULT ok, i32 42 */
    static const uint8_t ok_i64[] = { 1, HL_I64, 42, 0, 0, 0, 0, 0, 0, 0 };
    static const uint8_t bad_flag[] = { 7, HL_I32, 42, 0, 0, 0 };
    static const uint8_t ok_str_huge[] = { 1, HL_STRING, 0xff, 0xff, 0xff, 0xff, 'a', 0 };
    /* LOG: level 2, line 7, file "f.c", msg "hello" */
    static const uint8_t log_ok[] = { 2, 7, 0, 0, 0, 3, 'f', '.', 'c', 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o' };
    static const uint8_t log_bad_level[] = { 9, 7, 0, 0, 0, 3, 'f', '.', 'c', 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o' };
    static const uint8_t print_bad_stream[] = { 7, 'x', 'y' };
    /* HOSTCALL: name_len 5 but only 2 name bytes follow */
    static const uint8_t hostcall_trunc[] = { 5, 'a', 'b' };
    /* ABORT: code 5, message length 100, 10 bytes of message */
    static const uint8_t abort_trunc[] = { 5, 0, 0, 0, 100, 0, 0, 0, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x' };
    /* ABORT: code 5, message length 5000 (> HL_MAX_MESSAGE) */
    static const uint8_t abort_long[] = { 5, 0, 0, 0, 0x88, 0x13, 0, 0, 'x' };
    const struct hl_peb *p = hl_guest_peb();
    size_t end;
    ob = (uint8_t *)(uintptr_t)p->output_gpa;
    switch (args[0].v.i32) {
    case 1: /* top beyond the buffer */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        return leave(HL_PORT_DONE, p->output_size + 8);
    case 2: /* top misaligned */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        return leave(HL_PORT_DONE, end - 4);
    case 3: /* a record whose length runs past top */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        st32(ob + 8, 64);
        return leave(HL_PORT_DONE, end);
    case 4: /* bad back pointer */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        st64(ob + end - 8, 16);
        return leave(HL_PORT_DONE, end);
    case 5: /* unknown record kind */ end = put_rec(8, 42, ok_i32, sizeof ok_i32); return leave(HL_PORT_DONE, end);
    case 6: /* a valid stack whose last record is a LOG */
        end = put_rec(8, HL_REC_LOG, log_ok, sizeof log_ok);
        return leave(HL_PORT_DONE, end);
    case 7: /* RESULT of another type than registered (i64 for i32) */
        end = put_rec(8, HL_REC_RESULT, ok_i64, sizeof ok_i64);
        return leave(HL_PORT_DONE, end);
    case 8: /* HOSTCALL with a malformed payload */
        end = put_rec(8, HL_REC_HOSTCALL, hostcall_trunc, sizeof hostcall_trunc);
        return leave(HL_PORT_HOSTCALL, end);
    case 9: /* ABORT whose message length exceeds the payload */
        end = put_rec(8, HL_REC_ABORT, abort_trunc, sizeof abort_trunc);
        return leave(HL_PORT_ABORT, end);
    /* extras */
    case 10: /* nonzero reserved header bytes */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        ob[8 + 6] = 1;
        return leave(HL_PORT_DONE, end);
    case 11: /* ABORT message longer than HL_MAX_MESSAGE */
        end = put_rec(8, HL_REC_ABORT, abort_long, sizeof abort_long);
        return leave(HL_PORT_ABORT, end);
    case 12: /* RESULT flag neither 0 nor 1 */
        end = put_rec(8, HL_REC_RESULT, bad_flag, sizeof bad_flag);
        return leave(HL_PORT_DONE, end);
    case 13: /* FLUSH holding a RESULT */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        return leave(HL_PORT_FLUSH, end);
    case 14: /* PRINT with a bad stream, then a good RESULT */
        end = put_rec(8, HL_REC_PRINT, print_bad_stream, sizeof print_bad_stream);
        end = put_rec(end, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        return leave(HL_PORT_DONE, end);
    case 15: /* LOG with a bad level, then a good RESULT */
        end = put_rec(8, HL_REC_LOG, log_bad_level, sizeof log_bad_level);
        end = put_rec(end, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        return leave(HL_PORT_DONE, end);
    case 16: /* top below the empty stack */ return leave(HL_PORT_DONE, 0);
    case 17: /* top near 2^64 */ return leave(HL_PORT_DONE, 0xfffffffffffffff8ull);
    case 18: /* ABORT port with an empty stack */ return leave(HL_PORT_ABORT, 8);
    case 19: /* RESULT string whose length runs past the payload */
        end = put_rec(8, HL_REC_RESULT, ok_str_huge, sizeof ok_str_huge);
        return leave(HL_PORT_DONE, end);
    case 20: /* DONE with an empty stack */ return leave(HL_PORT_DONE, 8);
    case 21: /* a record whose length field is 0xffffffff */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        st32(ob + 8, 0xffffffffu);
        return leave(HL_PORT_DONE, end);
    case 22: /* top = the whole buffer, records tile only its start (garbage after) */
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        memset(ob + end, 0, 64);
        return leave(HL_PORT_DONE, end + 64);
    case 23: /* a valid stack ending in ABORT, but exit through DONE */
        end = put_rec(8, HL_REC_ABORT, abort_trunc, 8);
        return leave(HL_PORT_DONE, end);
    case 24: { /* a valid RESULT, then leave through a string instruction (rep outsb) */
        static const char bytes[8] = "abcdefg";
        const char *src = bytes;
        uint64_t n = 4;
        end = put_rec(8, HL_REC_RESULT, ok_i32, sizeof ok_i32);
        st64(ob, end);
        __asm__ volatile("rep outsb" : "+S"(src), "+c"(n) : "d"((uint16_t)HL_PORT_DONE) : "memory");
        return hl_error(99, "the host resumed the guest after rep outsb (%d left)", (int)n);
    }
    default: return hl_error(1, "unknown case %d", args[0].v.i32);
    }
    (void)end;
}

/* Never called by the tests (no cancellation yet): a guest that never returns. */
__attribute__((noreturn)) static int forever(const hl_value *args, int argc, hl_value *ret)
{
    for (;;) __asm__ volatile("" ::: "memory");
}

/* Cpuid(leaf) -> "eax ebx ecx edx" in hex, as the guest sees them. */
static int cpuid(const hl_value *args, int argc, hl_value *ret)
{
    uint32_t a = args[0].v.u32, b, c = 0, d;
    char *s = hl_ret_alloc(64);
    if (!s) return hl_error(1, "out of memory");
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    snprintf(s, 64, "%08x %08x %08x %08x", a, b, c, d);
    *ret = hl_str(s);
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("Cpuid", cpuid, HL_STRING, 1, HL_U32);
    hl_guest_register("Ping", ping, HL_I32, 1, HL_I32);
    hl_guest_register("Addr", addr, HL_U64, 1, HL_STRING);
    hl_guest_register("Spin", spin, HL_U64, 1, HL_U64);
    hl_guest_register("MallocHuge", malloc_huge, HL_I32, 0);
    hl_guest_register("RecurseTo", recurse_to, HL_U64, 1, HL_U64);

    hl_guest_register("ExecStack", exec_stack, HL_I32, 0);
    hl_guest_register("ExecHeap", exec_heap, HL_I32, 0);
    hl_guest_register("ExecData", exec_data, HL_I32, 0);
    hl_guest_register("CallNull", call_null, HL_I32, 0);
    hl_guest_register("WriteCode", write_code, HL_I32, 0);
    hl_guest_register("WriteRodata", write_rodata, HL_I32, 0);
    hl_guest_register("WritePeb", write_peb, HL_I32, 0);
    hl_guest_register("WriteInput", write_input, HL_I32, 0);
    hl_guest_register("ReadNull", read_null, HL_I32, 0);
    hl_guest_register("WriteNull", write_null, HL_I32, 0);
    hl_guest_register("ReadFar", read_far, HL_I32, 0);
    hl_guest_register("ReadPageTables", read_pt, HL_I32, 0);
    hl_guest_register("ReadGuard", read_guard, HL_I32, 0);
    hl_guest_register("ReadNonCanonical", read_noncanon, HL_I32, 0);
    hl_guest_register("RecurseForever", recurse_forever, HL_I32, 0);
    hl_guest_register("ExhaustHeap", exhaust_heap, HL_I32, 0);
    hl_guest_register("Ud2", do_ud2, HL_I32, 0);
    hl_guest_register("Div", do_div, HL_I32, 1, HL_I32);
    hl_guest_register("Int3", do_int3, HL_I32, 0);
    hl_guest_register("Int80", do_int80, HL_I32, 0);
    hl_guest_register("Hlt", do_hlt, HL_I32, 0);
    hl_guest_register("Cli", do_cli, HL_I32, 0);
    hl_guest_register("RdmsrBad", do_rdmsr_bad, HL_I32, 0);
    hl_guest_register("OutUnknown", out_unknown, HL_I32, 0);
    hl_guest_register("InPort", in_port, HL_I32, 0);
    hl_guest_register("OutsbRep", outsb_rep, HL_I32, 0);
    hl_guest_register("OutsbOne", outsb_one, HL_I32, 0);
    hl_guest_register("Corrupt", corrupt, HL_I32, 1, HL_I32);
    hl_guest_register("Forever", forever, HL_I32, 0);
}
