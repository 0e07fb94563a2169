/* test_hostile.c - hostile guests: every way tests/guests/hostile_guest.c misbehaves must end
 * the call with the right status and a precise message, poison that sandbox (the next call
 * is refused with HL_ERR_STATE), and leave the process and every other sandbox intact.
 *
 * One healthy sandbox lives through the whole test and is called after each hostile case.
 * Each hostile case runs in a fresh sandbox. The time each failure takes to be reported and
 * its message are printed (not asserted): on kvm_pvm every guest exception is a triple
 * fault, described afterwards from rip and cr2. Public API only, so the test does not break
 * when the library's internals change.
 *
 * Not run: a guest that never returns (tests/guests/hostile_guest.c "Forever"), until calls
 * can be cancelled. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdarg.h>
#include <time.h>

#include "harness.h"
#include "platform.h"

static hl_config *cfg;
static hl_sandbox *healthy;
static int healthy_calls;

/* addresses in the guest, asked from the healthy sandbox (same ELF, same layout) */
static uint64_t a_code, a_rodata, a_data, a_input, a_output_size, a_heap_size, a_stack;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


static void check_healthy(const char *after)
{
    hl_value a = hl_i32(1000 + healthy_calls), r;
    int before = check_failures;
    hl_status st = hl_call(healthy, "Ping", HL_I32, &a, 1, &r);
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.i32, 1001 + healthy_calls);
    CHECK_INT(hl_sandbox_state(healthy), HL_STATE_READY);
    healthy_calls++;
    if (check_failures > before)
        fprintf(stderr, "  ^ healthy sandbox after case %s: %s\n", after, hl_last_error(healthy));
}

static uint64_t guest_addr(const char *what)
{
    hl_value a = hl_str(what), r;
    hl_status st = hl_call(healthy, "Addr", HL_U64, &a, 1, &r);
    CHECK_INT(st, HL_OK);
    return st == HL_OK ? r.v.u64 : 0;
}

/* Runs fn (with one i32 argument if arg != NONE) in a fresh sandbox; expects status want,
 * guest code want_code (for HL_ERR_ABORTED), and a message holding every string of the
 * NULL-terminated list. */
#define NONE (-12345)
static void hostile(const char *label, const char *fn, int arg, hl_status want, int want_code, ...)
{
    hl_sandbox *sb = must_sandbox("hostile_guest", cfg);
    hl_value a = hl_i32(arg), r, pa = hl_i32(1);
    char msg[1024];
    int before = check_failures;
    va_list ap;
    const char *s;
    double t0 = now_us(), dt;
    hl_status st = hl_call(sb, fn, HL_I32, arg == NONE ? NULL : &a, arg == NONE ? 0 : 1, &r);
    dt = now_us() - t0;
    snprintf(msg, sizeof msg, "%s", hl_last_error(sb));
    printf("  %-20s %-16s %7.0f us  %s\n", label, hl_status_name(st), dt, msg);

    CHECK_INT(st, want);
    va_start(ap, want_code);
    while ((s = va_arg(ap, const char *)) != NULL) CHECK_HAS(msg, s);
    va_end(ap);
    if (want == HL_ERR_ABORTED) CHECK_INT(hl_last_error_code(sb), want_code);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);

    /* the next call is refused and names the original failure */
    st = hl_call(sb, "Ping", HL_I32, &pa, 1, &r);
    if (st != HL_ERR_STATE)
        printf("  %-20s %-16s %10s  next call: %s\n", "", hl_status_name(st), "", hl_last_error(sb));
    CHECK_INT(st, HL_ERR_STATE);
    CHECK_HAS(hl_last_error(sb), "poisoned");
    CHECK_HAS(hl_last_error(sb), msg);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
    hl_sandbox_free(sb);
    if (check_failures > before) fprintf(stderr, "  ^ in case %s (%s): %s\n", label, fn, msg);
    check_healthy(label);
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof bufs[0], f, ap);
    va_end(ap);
    return b;
}

static void test_benign(void)
{
    hl_sandbox *sb = must_sandbox("hostile_guest", cfg);
    hl_value a, r;
    hl_status st;
    double t0, dt1, dt;
    uint64_t n;

    /* a malloc larger than the heap fails cleanly; the sandbox stays Ready */
    st = hl_call(sb, "MallocHuge", HL_I32, NULL, 0, &r);
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.i32, 15);
    else fprintf(stderr, "  MallocHuge: %s\n", hl_last_error(sb));
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);

    /* bounded recursion that fits the stack */
    a = hl_u64(100);
    st = hl_call(sb, "RecurseTo", HL_U64, &a, 1, &r);
    CHECK_INT(st, HL_OK);

    /* a bounded busy loop of ~100 ms without exits returns normally */
    a = hl_u64(1000000);
    t0 = now_us();
    st = hl_call(sb, "Spin", HL_U64, &a, 1, &r);
    dt1 = now_us() - t0;
    CHECK_INT(st, HL_OK);
    n = (uint64_t)(1000000.0 * 100000.0 / (dt1 > 1 ? dt1 : 1));
    if (n > 2000000000ull) n = 2000000000ull;
    a = hl_u64(n);
    t0 = now_us();
    st = hl_call(sb, "Spin", HL_U64, &a, 1, &r);
    dt = now_us() - t0;
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.u64, n);
    CHECK(dt < 10e6);
    printf("  %-20s %-16s %7.0f us  Spin(%llu) (Spin(1000000): %.0f us)\n", "bounded spin", hl_status_name(st), dt,
           (unsigned long long)n, dt1);

    a = hl_i32(5);
    st = hl_call(sb, "Ping", HL_I32, &a, 1, &r);
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.i32, 6);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    hl_sandbox_free(sb);
    check_healthy("benign");
}

/* cli at CPL0: on kvm_pvm it traps and is emulated, and the guest goes on. Not a fault:
 * the call returns, and later calls still work. */
static void test_cli(void)
{
    hl_sandbox *sb = must_sandbox("hostile_guest", cfg);
    hl_value a = hl_i32(41), r;
    double t0 = now_us();
    hl_status st = hl_call(sb, "Cli", HL_I32, NULL, 0, &r);
    printf("  %-20s %-16s %7.0f us  %s\n", "cli", hl_status_name(st), now_us() - t0,
           st == HL_OK ? "(returned)" : hl_last_error(sb));
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.i32, 7);
    st = hl_call(sb, "Ping", HL_I32, &a, 1, &r);
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.i32, 42);
    hl_sandbox_free(sb);
    check_healthy("cli");
}

static void test_memory_faults(void)
{
    hostile("exec stack", "ExecStack", NONE, HL_ERR_FAULT, 0, "guest fault: execution of non-executable memory at 0x",
            "(stack)", NULL);
    hostile("exec heap", "ExecHeap", NONE, HL_ERR_FAULT, 0, "guest fault: execution of non-executable memory at 0x",
            "(heap)", NULL);
    hostile("exec data", "ExecData", NONE, HL_ERR_FAULT, 0,
            fmt("guest fault: execution of non-executable memory at 0x%llx (data)", (unsigned long long)a_data), NULL);
    hostile("call NULL", "CallNull", NONE, HL_ERR_FAULT, 0,
            "guest fault: execution of non-executable memory at 0x0 (unmapped)", NULL);
    hostile("write code", "WriteCode", NONE, HL_ERR_FAULT, 0,
            fmt("guest fault: write to read-only memory (code) at 0x%llx, rip 0x", (unsigned long long)a_code), NULL);
    hostile("write rodata", "WriteRodata", NONE, HL_ERR_FAULT, 0,
            fmt("guest fault: write to read-only memory (read-only data) at 0x%llx, rip 0x",
                (unsigned long long)a_rodata),
            NULL);
    hostile("write PEB", "WritePeb", NONE, HL_ERR_FAULT, 0,
            "guest fault: write to read-only memory (PEB) at 0x1ff000, rip 0x", NULL);
    hostile("write input buffer", "WriteInput", NONE, HL_ERR_FAULT, 0,
            fmt("guest fault: write to read-only memory (input buffer) at 0x%llx, rip 0x", (unsigned long long)a_input),
            NULL);
    hostile("read NULL", "ReadNull", NONE, HL_ERR_FAULT, 0, "guest fault: NULL pointer read at 0x0, rip 0x", NULL);
    hostile("write NULL", "WriteNull", NONE, HL_ERR_FAULT, 0, "guest fault: NULL pointer write at 0x0, rip 0x", NULL);
    hostile("read 0x40000000", "ReadFar", NONE, HL_ERR_FAULT, 0,
            "guest fault: unmapped memory read at 0x40000000, rip 0x", NULL);
    hostile("read page tables", "ReadPageTables", NONE, HL_ERR_FAULT, 0,
            "guest fault: unmapped memory read at 0x1000, rip 0x", NULL);
    hostile("read guard page", "ReadGuard", NONE, HL_ERR_FAULT, 0,
            fmt("guest fault: stack overflow (read of the stack guard page at 0x%llx), rip 0x",
                (unsigned long long)(a_stack - 16)),
            NULL);
    /* #GP, not #PF: cr2 says nothing, so only the instruction can be named */
    hostile("read non-canonical", "ReadNonCanonical", NONE, HL_ERR_FAULT, 0,
            "guest fault: general protection fault (privileged instruction or non-canonical address) at rip 0x", NULL);
    hostile("stack overflow", "RecurseForever", NONE, HL_ERR_FAULT, 0,
            "guest fault: stack overflow (write of the stack guard page at 0x", "rip 0x", NULL);
    hostile("heap exhaustion", "ExhaustHeap", NONE, HL_ERR_ABORTED, HL_GUEST_ERR_OUT_OF_MEMORY,
            "guest aborted with code -3: heap exhausted after ", NULL);
}

static void test_instructions(void)
{
    hostile("ud2", "Ud2", NONE, HL_ERR_FAULT, 0, "guest fault: invalid instruction (ud2) at rip 0x", NULL);
    hostile("divide by zero", "Div", 0, HL_ERR_FAULT, 0, "guest fault: divide error at rip 0x", NULL);
    hostile("int3", "Int3", NONE, HL_ERR_FAULT, 0, "guest fault: breakpoint (int3) at rip 0x", NULL);
    /* kvm_pvm cannot emulate it; on hardware KVM vector 0x80 lies beyond the guest's IDT */
    hostile("int $0x80", "Int80", NONE, HL_ERR_FAULT, 0,
            test_on_pvm()
                ? "guest fault: instruction the hypervisor cannot emulate at rip 0x"
                : "guest fault: general protection fault (privileged instruction or non-canonical address) at rip 0x",
            NULL);
    hostile("rdmsr 0xdeadbeef", "RdmsrBad", NONE, HL_ERR_FAULT, 0,
            "guest fault: general protection fault (privileged instruction or non-canonical address) at rip 0x", NULL);
    hostile("hlt", "Hlt", NONE, HL_ERR_PROTOCOL, 0, "guest executed hlt (rip 0x", NULL);
    hostile("out 0x99", "OutUnknown", NONE, HL_ERR_PROTOCOL, 0, "guest wrote to unknown I/O port 0x99 (rip 0x", NULL);
    hostile("in 0x10", "InPort", NONE, HL_ERR_PROTOCOL, 0, "guest read from I/O port 0x10 (rip 0x", NULL);
    hostile("rep outsb 0x10", "OutsbRep", NONE, HL_ERR_PROTOCOL, 0,
            "guest used a string or narrow write on I/O port 0x10 (rip 0x", NULL);
    hostile("outsb 0x10", "OutsbOne", NONE, HL_ERR_PROTOCOL, 0,
            "guest used a string or narrow write on I/O port 0x10 (rip 0x", NULL);
    /* the same after a valid RESULT: the string instruction must not pass for `out` */
    hostile("RESULT, rep outsb", "Corrupt", 24, HL_ERR_PROTOCOL, 0,
            "guest used a string or narrow write on I/O port 0x10 (rip 0x", NULL);
}

static void test_corrupt_output(void)
{
    const char *c = "guest output buffer corrupt: ";
    hostile("(a) top > size", "Corrupt", 1, HL_ERR_PROTOCOL, 0,
            fmt("%stop 0x%llx outside 0x8..0x%llx or misaligned", c, (unsigned long long)a_output_size + 8,
                (unsigned long long)a_output_size),
            NULL);
    hostile("(b) top misaligned", "Corrupt", 2, HL_ERR_PROTOCOL, 0,
            fmt("%stop 0x1c outside 0x8..0x%llx or misaligned", c, (unsigned long long)a_output_size), NULL);
    hostile("(c) len past top", "Corrupt", 3, HL_ERR_PROTOCOL, 0, c, "record length beyond top at offset 0x8", NULL);
    hostile("(d) back pointer", "Corrupt", 4, HL_ERR_PROTOCOL, 0, c, "bad back pointer at offset 0x8", NULL);
    hostile("(e) unknown kind", "Corrupt", 5, HL_ERR_PROTOCOL, 0, c, "unknown record kind at offset 0x8", NULL);
    hostile("(f) last is LOG", "Corrupt", 6, HL_ERR_PROTOCOL, 0,
            "guest signalled DONE but the last record of its output buffer is not RESULT", NULL);
    hostile("(g) result type", "Corrupt", 7, HL_ERR_PROTOCOL, 0, "guest function 'Corrupt' returned i64, expected i32",
            NULL);
    hostile("(h) bad HOSTCALL", "Corrupt", 8, HL_ERR_PROTOCOL, 0,
            "guest host-function call malformed: truncated at byte 1", NULL);
    hostile("(i) ABORT msg len", "Corrupt", 9, HL_ERR_PROTOCOL, 0, "guest abort record malformed: truncated", NULL);
    hostile("reserved bytes", "Corrupt", 10, HL_ERR_PROTOCOL, 0, c, "nonzero reserved header bytes at offset 0x8", NULL);
    hostile("ABORT msg > max", "Corrupt", 11, HL_ERR_PROTOCOL, 0,
            "guest abort record malformed: message longer than HL_MAX_MESSAGE", NULL);
    hostile("RESULT flag 7", "Corrupt", 12, HL_ERR_PROTOCOL, 0,
            "guest result for 'Corrupt' malformed: result flag not 0 or 1 at byte 1", NULL);
    hostile("FLUSH with RESULT", "Corrupt", 13, HL_ERR_PROTOCOL, 0,
            "guest output buffer: unexpected record kind 2 at offset 0x8", NULL);
    hostile("PRINT bad stream", "Corrupt", 14, HL_ERR_PROTOCOL, 0, "guest print record at offset 0x8: bad stream", NULL);
    hostile("LOG bad level", "Corrupt", 15, HL_ERR_PROTOCOL, 0,
            "guest log record at offset 0x8 malformed: unknown log level", NULL);
    hostile("top 0", "Corrupt", 16, HL_ERR_PROTOCOL, 0, c, "top 0x0 outside 0x8..", NULL);
    hostile("top 2^64-8", "Corrupt", 17, HL_ERR_PROTOCOL, 0, c, "top 0xfffffffffffffff8 outside 0x8..", NULL);
    hostile("ABORT, empty stack", "Corrupt", 18, HL_ERR_PROTOCOL, 0,
            "guest signalled ABORT but the last record of its output buffer is not ABORT", NULL);
    hostile("string past end", "Corrupt", 19, HL_ERR_PROTOCOL, 0,
            "guest result for 'Corrupt' malformed: truncated at byte 6", NULL);
    hostile("DONE, empty stack", "Corrupt", 20, HL_ERR_PROTOCOL, 0,
            "guest signalled DONE but the last record of its output buffer is not RESULT", NULL);
    hostile("len 0xffffffff", "Corrupt", 21, HL_ERR_PROTOCOL, 0, c, "record length beyond top at offset 0x8", NULL);
    hostile("garbage below top", "Corrupt", 22, HL_ERR_PROTOCOL, 0, c, "unknown record kind at offset 0x20", NULL);
    hostile("DONE with ABORT", "Corrupt", 23, HL_ERR_PROTOCOL, 0,
            "guest signalled DONE but the last record of its output buffer is not RESULT", NULL);
}

/* The guest's CPUID leaf (subleaf 0) read in the healthy sandbox, as "eax ebx ecx edx" in
 * hex into out (words in r); false after a failed check. */
static bool guest_cpuid(uint32_t leaf, uint32_t r[4], char out[40])
{
    hl_value a = hl_u32(leaf), v;
    hl_status st = hl_call(healthy, "Cpuid", HL_STRING, &a, 1, &v);
    CHECK_INT(st, HL_OK);
    if (st != HL_OK) return false;
    snprintf(out, 40, "%s", hl_value_str(&v));
    CHECK_INT(sscanf(out, "%x %x %x %x", &r[0], &r[1], &r[2], &r[3]), 4);
    return true;
}

static const char *hex4(const uint32_t r[4], char out[40])
{
    snprintf(out, 40, "%08x %08x %08x %08x", r[0], r[1], r[2], r[3]);
    return out;
}

/* Where the library's CPUID table is honoured (hardware KVM; kvm_pvm on Intel, which makes
 * CPUID fault), CPUID hides the hypervisor and the host's identity. Where the guest executes
 * CPUID natively (kvm_pvm -v1045 on AMD: docs/platforms.md), it sees exactly what the host process
 * sees, and that is allowed only on kvm_pvm. */
static void test_cpuid(void)
{
    static const char brand[48] = "hyperlight virtual CPU";
    test_platform p = test_platform_get();
    uint32_t g[4], h[4], hv = 0;
    char gs[40], hs[40];
    tp_cpuid mode;
    if (!guest_cpuid(0x80000002, g, gs)) return;
    mode = test_cpuid_mode(&p, g);
    test_platform_print(&p, mode);
    CHECK(mode != TP_CPUID_UNKNOWN);
    if (mode == TP_CPUID_TABLE) {
        if (guest_cpuid(1, g, gs)) {
            CHECK_INT(g[2] >> 31, 0);       /* hypervisor-present bit */
            CHECK_INT((g[2] >> 5) & 1, 0);  /* VMX */
            CHECK_INT((g[3] >> 25) & 1, 1); /* SSE is still there */
        }
        if (guest_cpuid(0x40000000, g, gs)) CHECK_STR(gs, "00000000 00000000 00000000 00000000"); /* no "KVMKVMKVM" */
        if (guest_cpuid(0x80000001, g, gs)) CHECK_INT((g[2] >> 2) & 1, 0);                        /* SVM */
        for (uint32_t i = 0; i < 3; i++) {
            memcpy(h, brand + 16 * i, 16);
            if (guest_cpuid(0x80000002 + i, g, gs)) CHECK_STR(gs, hex4(h, hs));
        }
    } else if (mode == TP_CPUID_NATIVE) {
        /* a CPUID the host cannot filter: only kvm_pvm runs the guest where it cannot trap */
        CHECK_INT(p.kvm, TP_KVM_PVM);
        /* leaf 1: ecx and edx (ebx holds the APIC id of whichever CPU ran it); the hypervisor
         * bit is the host's, set when the host is itself a VM */
        test_host_cpuid(1, 0, h);
        if (guest_cpuid(1, g, gs)) {
            CHECK_INT(g[2], h[2]);
            CHECK_INT(g[3], h[3]);
            hv = g[2] >> 31;
        }
        test_host_cpuid(0x40000000, 0, h); /* e.g. the host's hypervisor, "KVMKVMKVM" */
        if (guest_cpuid(0x40000000, g, gs)) CHECK_STR(gs, hex4(h, hs));
        for (uint32_t i = 0; i < 3; i++) {
            test_host_cpuid(0x80000002 + i, 0, h);
            if (guest_cpuid(0x80000002 + i, g, gs)) CHECK_STR(gs, hex4(h, hs));
        }
        test_host_cpuid(0x40000000, 0, h);
        printf("  guest CPUID is the host's: hypervisor bit %u, leaf 0x40000000 \"%.12s\", brand \"%s\"\n", hv,
               (const char *)&h[1], p.brand);
    }
}

int main(void)
{
    int fds0 = test_count_fds();
    double t0 = now_us();
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the report in order with the failures on stderr */
    cfg = hl_config_new();
    CHECK(cfg != NULL);
    if (!cfg) return check_exit("test_hostile");
    healthy = must_sandbox("hostile_guest", cfg);
    a_code = guest_addr("code");
    a_rodata = guest_addr("rodata");
    a_data = guest_addr("data");
    a_input = guest_addr("input");
    a_output_size = guest_addr("output_size");
    a_heap_size = guest_addr("heap_size");
    a_stack = guest_addr("stack");
    printf("  guest: code fn 0x%llx, rodata 0x%llx, data 0x%llx, heap 0x%llx+0x%llx, stack 0x%llx, input 0x%llx\n",
           (unsigned long long)a_code, (unsigned long long)a_rodata, (unsigned long long)a_data,
           (unsigned long long)guest_addr("heap"), (unsigned long long)a_heap_size, (unsigned long long)a_stack,
           (unsigned long long)a_input);

    test_benign();
    test_cli();
    test_memory_faults();
    test_instructions();
    test_corrupt_output();
    test_cpuid();

    /* the process is intact: a new sandbox works, and nothing leaked file descriptors */
    {
        hl_sandbox *sb = must_sandbox("hostile_guest", cfg);
        hl_value a = hl_i32(1), r;
        CHECK_INT(hl_call(sb, "Ping", HL_I32, &a, 1, &r), HL_OK);
        hl_sandbox_free(sb);
    }
    check_healthy("end");
    hl_sandbox_free(healthy);
    hl_config_free(cfg);
    CHECK_INT(test_count_fds(), fds0);
    printf("  total %.0f ms\n", (now_us() - t0) / 1e3);
    return check_exit("test_hostile");
}
