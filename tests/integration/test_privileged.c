/* test_privileged.c - privileged and unusual guest instructions (tests/guests/priv_guest.c):
 * MSR writes and reads, mov to CR0/CR3/CR4, the guest's own page tables, descriptor tables,
 * system-call instructions, flags, debug registers, hypercalls. Each must either give a
 * defined result or end its call with a clean error (HL_ERR_FAULT / HL_ERR_PROTOCOL /
 * HL_ERR_CANCELLED, a message that says what happened, sandbox Poisoned), and never affect
 * anything else.
 *
 * The host denies the guest the MSRs it has no use for and whose values KVM would keep across a
 * restore (an MSR filter: reads of SYSENTER, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE, TSC_AUX,
 * the KVM and kvm_pvm paravirtual MSRs; every write but FS_BASE and GS_BASE, and the
 * virtual-IF MSR until it is registered): such an access is a general protection fault and
 * the value never changes. CPUID
 * hides XSAVE/OSXSAVE/AVX and PKU/OSPKE where the platform honours the library's table, so
 * CR4.OSXSAVE and CR4.PKE cannot be set there; on kvm_pvm the guest runs under the host's CR4
 * and XCR0, and its PKRU writes (wrpkru is not privileged) must not outlive a restore.
 *
 * Every case runs in its own sandbox made from one snapshot, with a time limit (some first make
 * a call, or a failed call and a restore, to reach a later state of the vCPU). After it:
 *  - a failed call poisons the sandbox (the next call is refused, naming the failure); a
 *    successful one leaves it Ready;
 *  - hl_sandbox_restore to the snapshot makes it Ready and equal to the snapshot again: the guest sees
 *    the same control registers, readable MSRs, descriptor tables, segment selectors, debug
 *    registers and virtual-IF page as a fresh sandbox (State), the read-only image is intact
 *    (CodeSum), it runs natively (Spin) and answers (Ping);
 *  - a case may name a probe (another function, e.g. syscall for LSTAR) that must then still
 *    give the snapshot's result in the restored and in a new sandbox;
 *  - every case is repeated in a pooled sandbox, with the same outcome: after hl_pool_put and
 *    hl_pool_get the next user must see the snapshot's state, not the previous user's;
 *  - a fresh sandbox from the snapshot and a bystander sandbox alive the whole time still
 *    work and see the original image, and the host thread's segment selectors are unchanged.
 * Every case asserts one exact outcome on each platform (the status and the stable part of
 * the message, or the value), chosen from the detected platform (platform.h), never a set
 * of acceptable ones:
 *  - .want: kvm_pvm, measured there;
 *  - .hw: hardware KVM, measured on kvm_amd with nested paging (npt=1) under hwkvm
 *    (docs/platforms.md); a case without one gives .want there too (measured);
 *  - .shadow: hardware KVM with shadow paging (kvm_amd npt=0, measured), where it differs:
 *    there KVM sees every guest page fault, so a fault while delivering one is KVM's own
 *    triple fault (registers kept), not the CPU's (on AMD: the vCPU reset);
 *  - .intel: kvm_intel with EPT where the Intel SDM clearly predicts another outcome than
 *    kvm_amd's (a triple fault keeps the registers, sysenter is valid in 64-bit mode). Untested
 *    on Intel (QEMU cannot emulate VT-x): elsewhere kvm_intel is held to kvm_amd's outcome.
 * What differs between kvm_pvm machines is the CPU vendor (which hypercall instruction is
 * native), whether the guest's CPUID is the library's table or the host's, and whether the
 * host runs with CR4.PKE (then the guest can use PKRU). On hardware KVM: whether SVM has
 * decode assists (without them KVM emulates a mov to CR4 and drops bits 32-63), the guest's
 * CPUID (PCID), and QEMU's software emulation itself (hwkvm), which loads a null selector
 * into TR where hardware raises #GP and makes timings meaningless. Public API only. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "platform.h"

static hl_config *cfg;
static hl_snapshot *snap;
static hl_sandbox *bystander;
static char base_state[1024];
static uint64_t base_sum;
static bool pvm;
static test_platform plat;
static tp_cpuid cpuid_mode;
static uint64_t a_code, a_meta, a_scratch, a_pml4, a_zero;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char bufs[16][256];
    static int next;
    char *b = bufs[next++ % 16];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, sizeof bufs[0], f, ap);
    va_end(ap);
    return b;
}

static hl_status call_u64(hl_sandbox *sb, const char *fn, uint64_t *out)
{
    hl_value r;
    hl_status st = hl_call(sb, fn, HL_U64, NULL, 0, &r);
    *out = st == HL_OK ? r.v.u64 : 0;
    return st;
}

static uint64_t addr(hl_sandbox *sb, const char *what)
{
    hl_value a = hl_str(what), r;
    hl_status st = hl_call(sb, "Addr", HL_U64, &a, 1, &r);
    CHECK_INT(st, HL_OK);
    return st == HL_OK ? r.v.u64 : 0;
}

static hl_status get_state(hl_sandbox *sb, char *out, size_t len)
{
    hl_value r;
    hl_status st = hl_call(sb, "State", HL_STRING, NULL, 0, &r);
    snprintf(out, len, "%s", st == HL_OK ? hl_value_str(&r) : hl_last_error(sb));
    return st;
}

/* The fields of s that differ from the snapshot's state, on stderr. */
static void print_diff(const char *what, const char *s)
{
    char a[1024], b[1024], *sa, *sb_, *ta, *tb;
    snprintf(a, sizeof a, "%s", base_state);
    snprintf(b, sizeof b, "%s", s);
    fprintf(stderr, "    %s differs from the snapshot's:", what);
    ta = strtok_r(a, " ", &sa);
    tb = strtok_r(b, " ", &sb_);
    while (ta && tb) {
        if (strcmp(ta, tb)) fprintf(stderr, " %s (want %s)", tb, ta);
        ta = strtok_r(NULL, " ", &sa);
        tb = strtok_r(NULL, " ", &sb_);
    }
    fprintf(stderr, "\n");
}

/* The hexadecimal field NAME=... of the snapshot's state (0 if it has none). */
static uint64_t state_hex(const char *name)
{
    const char *f = strstr(base_state, fmt(" %s=", name));
    return f ? strtoull(f + strlen(name) + 2, NULL, 16) : 0;
}

/* sb sees the snapshot's vCPU state and image, and runs natively. */
static void check_like_snapshot(hl_sandbox *sb, const char *what)
{
    char s[1024];
    uint64_t sum;
    hl_value a = hl_u64(200000), r, p = hl_i32(41);
    hl_status st = get_state(sb, s, sizeof s);
    double t0, dt;
    CHECK_INT(st, HL_OK);
    if (st != HL_OK) {
        fprintf(stderr, "    %s: State: %s\n", what, s);
        return;
    }
    CHECK_STR(s, base_state);
    if (strcmp(s, base_state)) print_diff(what, s);
    CHECK_INT(call_u64(sb, "CodeSum", &sum), HL_OK);
    CHECK_INT(sum, base_sum);
    /* 200000 iterations: ~0.1 ms natively; emulated (kvm_pvm without its virtual-IF page, or
     * KVM emulating instruction by instruction) ~300 ms. Not timed under QEMU's software
     * emulation (hwkvm), where every instruction is emulated and timings mean nothing (its
     * debug-register breakpoints, which QEMU 7.2 leaks after the DR cases, slow every later
     * VM several times) */
    t0 = now_us();
    st = hl_call(sb, "Spin", HL_U64, &a, 1, &r);
    dt = now_us() - t0;
    CHECK_INT(st, HL_OK);
    if (st == HL_OK) CHECK_INT(r.v.u64, 200000);
    if (!plat.tcg) {
        CHECK(dt < 20000);
        if (dt >= 20000) fprintf(stderr, "    %s: Spin(200000) took %.0f us\n", what, dt);
    }
    CHECK_INT(hl_call(sb, "Ping", HL_I32, &p, 1, &r), HL_OK);
    CHECK_INT(r.v.i32, 42);
}

/* The guest's CPUID leaf: register reg (0 ecx, 1 eax, 2 ebx, 3 edx), 0 after a failed check. */
static uint32_t guest_cpuid(uint32_t leaf, int reg)
{
    hl_value a[2] = { hl_u64(leaf), hl_u64((uint64_t)reg << 32) }, r;
    hl_status st = hl_call(bystander, "Cpuid", HL_U64, a, 2, &r);
    CHECK_INT(st, HL_OK);
    return st == HL_OK ? (uint32_t)r.v.u64 : 0;
}

/* What differs between the platforms (platform.h), for the cases to choose their outcome:
 * each must be one this test knows. */
static void detect_platform(void)
{
    uint32_t brand[4] = { guest_cpuid(0x80000002, 1), guest_cpuid(0x80000002, 2), guest_cpuid(0x80000002, 0),
                          guest_cpuid(0x80000002, 3) };
    cpuid_mode = test_cpuid_mode(&plat, brand);
    test_platform_print(&plat, cpuid_mode);
    printf("  PKRU: %s\n", pvm && plat.ospke ? "the guest runs under the host's CR4.PKE (wrpkru native)"
                                             : "wrpkru is #UD in the guest");
    CHECK(plat.cpu != TP_CPU_OTHER); /* vmcall/vmmcall: which is native */
    CHECK(plat.kvm != TP_KVM_NONE);
    CHECK(cpuid_mode != TP_CPUID_UNKNOWN);
    CHECK(cpuid_mode == TP_CPUID_TABLE || pvm); /* hardware KVM must honour the table */
    printf("  outcomes: %s\n", pvm                        ? "kvm_pvm's (.want)"
                               : !plat.tdp                ? "shadow paging's (.shadow, else .hw, else .want)"
                               : plat.kvm == TP_KVM_INTEL ? "kvm_intel's, untested (.intel, else .hw, else .want)"
                                                          : "nested paging's (.hw, else .want)");
}

/* ---- cases ---- */
enum { V_ANY, V_EQ, V_NZ, V_MASK, V_RANGE };
typedef struct outcome {
    bool set;
    hl_status st;
    int vk; /* HL_OK: V_EQ val == v; V_NZ val != 0; V_MASK (val & m) == v; V_RANGE v <= val < m */
    uint64_t v, m;
    const char *has[3]; /* else: substrings the message must hold */
    const char *hasnt;  /* and one it must not */
} outcome;
#define OK_ANY                                \
    {                                         \
        .set = true, .st = HL_OK, .vk = V_ANY \
    }
#define OK_EQ(x)                                       \
    {                                                  \
        .set = true, .st = HL_OK, .vk = V_EQ, .v = (x) \
    }
#define OK_NZ                                \
    {                                        \
        .set = true, .st = HL_OK, .vk = V_NZ \
    }
#define OK_MASK(x, mask)                                              \
    {                                                                 \
        .set = true, .st = HL_OK, .vk = V_MASK, .v = (x), .m = (mask) \
    }
#define OK_RANGE(lo, hi)                                              \
    {                                                                 \
        .set = true, .st = HL_OK, .vk = V_RANGE, .v = (lo), .m = (hi) \
    }
#define FAULT(...)                                              \
    {                                                           \
        .set = true, .st = HL_ERR_FAULT, .has = { __VA_ARGS__ } \
    }
#define FAULT_NOT(no, ...)                                                     \
    {                                                                          \
        .set = true, .st = HL_ERR_FAULT, .has = { __VA_ARGS__ }, .hasnt = (no) \
    }
#define GP FAULT("guest fault: general protection fault (privileged instruction or non-canonical address) at rip 0x")
#define UD FAULT("guest fault: invalid instruction at rip 0x")
#define CANNOT FAULT("guest fault: instruction the hypervisor cannot emulate at rip 0x")
/* Hardware KVM: a triple fault the CPU raised (the guest could not deliver an exception to
 * its own handler). kvm_amd intercepts the shutdown and resets the vCPU. */
#define TRIPLE_RESET                                                                                           \
    FAULT("guest fault: triple fault (an exception the guest could not handle: its IDT, its exception stacks " \
          "or its page tables were unusable); KVM reset the vCPU, so the registers at the fault are lost")
/* kvm_intel: a triple fault is a VM exit that keeps the registers (SDM Vol. 3C §27.2). Untested. */
#define TRIPLE_KEPT FAULT_NOT("registers at the fault are lost", "guest fault: triple fault at rip 0x")
/* Shadow paging: KVM sees every page fault, also one while a double fault is delivered, and
 * makes the triple fault itself, keeping the registers: the double fault is in its record. */
#define TRIPLE_DF(...)                                                                                    \
    FAULT("guest fault: triple fault at rip 0x",                                                          \
          ": a double fault the guest could not handle (its IDT, GDT or exception stacks were unusable; " \
          "cr2 0x",                                                                                       \
          __VA_ARGS__)
/* The call did not end by itself: the time limit of ms ended it. */
#define TIMED_OUT(fn, ms)                                                    \
    {                                                                        \
        .set = true, .st = HL_ERR_CANCELLED, .has = {                        \
            fmt("call to guest function '%s' timed out after %u ms", fn, ms) \
        }                                                                    \
    }

/* What the sandbox goes through before the case's call. */
enum {
    PREP_NONE,          /* the case is the first call of a new vCPU */
    PREP_CALL,          /* after one successful call */
    PREP_CALL_RESTORE,  /* after a successful call and hl_sandbox_restore */
    PREP_FAULT_RESTORE, /* after a failed call (a #GP) and hl_sandbox_restore */
};
static const char *const prep_name[] = { "", "after a call", "after a call and hl_sandbox_restore",
                                         "after a failed call and hl_sandbox_restore" };

typedef struct pcase {
    const char *label, *fn;
    uint64_t a, b;
    unsigned timeout_ms;       /* 0: 2000 */
    bool pvm_only;             /* the case is about kvm_pvm's own MSRs */
    int prep;                  /* PREP_*: in the first sandbox and the pooled one */
    outcome want;              /* kvm_pvm (measured there) */
    outcome hw;                /* if set: hardware KVM (measured on kvm_amd npt=1); else want, measured there too */
    outcome shadow;            /* if set: hardware KVM with shadow paging (measured on kvm_amd npt=0); else hw */
    outcome intel;             /* if set: kvm_intel with EPT, as the SDM predicts (untested); else hw */
    outcome pooled;            /* if set: the outcome in a pooled sandbox on kvm_pvm (else want) */
    const char *probe;         /* optional: a function (probe_a, probe_b) run after the restore and */
    uint64_t probe_a, probe_b; /* in a new sandbox, after their state was checked: its */
    outcome probe_want;        /* result shows the case changed nothing (e.g. syscall for LSTAR) */
} pcase;

static bool matches(const outcome *o, hl_status st, uint64_t v, const char *msg)
{
    if (!o->set || st != o->st) return false;
    if (st == HL_OK) {
        switch (o->vk) {
        case V_EQ: return v == o->v;
        case V_NZ: return v != 0;
        case V_MASK: return (v & o->m) == o->v;
        case V_RANGE: return v >= o->v && v < o->m;
        default: return true;
        }
    }
    for (int i = 0; i < 3; i++)
        if (o->has[i] && !strstr(msg, o->has[i])) return false;
    return !o->hasnt || !strstr(msg, o->hasnt);
}

static void describe(const outcome *o)
{
    fprintf(stderr, "    want %s", hl_status_name(o->st));
    if (o->st == HL_OK && o->vk == V_EQ) fprintf(stderr, " = 0x%llx", (unsigned long long)o->v);
    for (int i = 0; i < 3; i++)
        if (o->has[i]) fprintf(stderr, " \"%s\"", o->has[i]);
    if (o->hasnt) fprintf(stderr, " and not \"%s\"", o->hasnt);
    fprintf(stderr, "\n");
}

/* The host thread's data-segment selectors (ds es fs gs). A guest must not change them: on
 * kvm_pvm the guest runs on the host thread's hardware segment registers, and what it leaves
 * there is what the next guest on this thread sees, and the host thread keeps. */
typedef struct {
    uint16_t s[4];
} segs;
static segs host_segs(void)
{
    segs v;
    __asm__ volatile("mov %%ds, %0" : "=r"(v.s[0]));
    __asm__ volatile("mov %%es, %0" : "=r"(v.s[1]));
    __asm__ volatile("mov %%fs, %0" : "=r"(v.s[2]));
    __asm__ volatile("mov %%gs, %0" : "=r"(v.s[3]));
    return v;
}
/* Puts the host thread's selectors back (to keep the cases independent after a failure):
 * ARCH_SET_FS/GS load a null selector and keep the base. */
static void host_segs_reset(const segs *want)
{
    unsigned long fs, gs;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs);
    __asm__ volatile("mov %0, %%ds; mov %1, %%es" : : "r"(want->s[0]), "r"(want->s[1]));
    syscall(SYS_arch_prctl, ARCH_SET_FS, fs);
    syscall(SYS_arch_prctl, ARCH_SET_GS, gs);
}

static const char *only; /* argv[1]: run the cases whose label holds it */
static int ncases;

/* The one outcome this platform must give (see the header). */
static const outcome *expected(const pcase *c, bool pooled)
{
    if (pvm) return pooled && c->pooled.set ? &c->pooled : &c->want;
    if (!plat.tdp && c->shadow.set) return &c->shadow;
    if (plat.kvm == TP_KVM_INTEL && c->intel.set) return &c->intel;
    return c->hw.set ? &c->hw : &c->want;
}

static bool accepted(const outcome *want, hl_status st, uint64_t v, const char *msg)
{
    bool ok = matches(want, st, v, msg);
    if (!ok) describe(want);
    return ok;
}

/* Brings sb to the state c->prep names; false (after failed checks) if it could not. */
static bool prepare(hl_sandbox *sb, const pcase *c)
{
    hl_value p = hl_i32(1), r, z[2] = { hl_u64(0), hl_u64(0) };
    hl_status st;
    switch (c->prep) {
    case PREP_CALL:
    case PREP_CALL_RESTORE:
        st = hl_call(sb, "Ping", HL_I32, &p, 1, &r);
        CHECK_INT(st, HL_OK);
        if (st != HL_OK) return false;
        break;
    case PREP_FAULT_RESTORE:
        st = hl_call(sb, "Ltr", HL_U64, z, 2, &r); /* ltr 0: #GP */
        CHECK_INT(st, HL_ERR_FAULT);
        if (st != HL_ERR_FAULT) return false;
        break;
    default: return true;
    }
    if (c->prep != PREP_CALL) {
        st = hl_sandbox_restore(sb, snap);
        CHECK_INT(st, HL_OK);
        if (st != HL_OK) return false;
    }
    return true;
}

/* The case's probe, if it has one, in sb (whose state was checked): the snapshot's result. */
static void probe(hl_sandbox *sb, const pcase *c, const char *where)
{
    hl_value args[2] = { hl_u64(c->probe_a), hl_u64(c->probe_b) }, r;
    hl_status st;
    const char *msg;
    if (!c->probe) return;
    st = hl_call(sb, c->probe, HL_U64, args, 2, &r);
    msg = st == HL_OK ? "" : hl_last_error(sb);
    if (!matches(&c->probe_want, st, st == HL_OK ? r.v.u64 : 0, msg)) {
        CHECK(!"probe after the case gives the snapshot's result");
        if (st == HL_OK) fprintf(stderr, "    %s: probe %s = 0x%llx\n", where, c->probe, (unsigned long long)r.v.u64);
        else fprintf(stderr, "    %s: probe %s: %s: %s\n", where, c->probe, hl_status_name(st), msg);
        describe(&c->probe_want);
    } else {
        CHECK(true);
    }
}

static void run(const pcase *c)
{
    hl_sandbox *sb = NULL;
    hl_value args[2] = { hl_u64(c->a), hl_u64(c->b) }, r, p = hl_i32(1);
    unsigned timeout = c->timeout_ms ? c->timeout_ms : 2000;
    char msg[1024];
    uint64_t v = 0, sum;
    int before = check_failures;
    hl_status st;
    double t0, dt;
    bool ok;
    segs hs = host_segs(), hs2;

    if ((only && !strstr(c->label, only)) || (c->pvm_only && !pvm)) return;
    ncases++;
    if (hl_sandbox_new_from_snapshot(&sb, snap, cfg) != HL_OK) {
        CHECK(!"sandbox from snapshot");
        fprintf(stderr, "  %s: %s\n", c->label, hl_last_error(NULL));
        return;
    }
    hl_sandbox_set_timeout(sb, timeout);
    if (!prepare(sb, c)) {
        fprintf(stderr, "  ^ case \"%s\": cannot get %s: %s\n", c->label, prep_name[c->prep], hl_last_error(sb));
        hl_sandbox_free(sb);
        return;
    }
    t0 = now_us();
    st = hl_call(sb, c->fn, HL_U64, args, 2, &r);
    dt = now_us() - t0;
    if (st == HL_OK) v = r.v.u64;
    snprintf(msg, sizeof msg, "%s", st == HL_OK ? "" : hl_last_error(sb));
    if (st == HL_OK)
        printf("  %-40s %-16s %7.0f us  = 0x%llx\n", c->label, hl_status_name(st), dt, (unsigned long long)v);
    else printf("  %-40s %-16s %7.0f us  %s\n", c->label, hl_status_name(st), dt, msg);

    /* the outcome */
    ok = accepted(expected(c, false), st, v, msg);
    CHECK(ok);
    CHECK(st == HL_OK || st == HL_ERR_FAULT || st == HL_ERR_PROTOCOL || st == HL_ERR_CANCELLED);
    CHECK(dt < timeout * 1000.0 + 500000);

    /* the sandbox after it */
    if (st == HL_OK) {
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    } else {
        CHECK_INT(hl_sandbox_state(sb), HL_STATE_POISONED);
        CHECK_INT(hl_call(sb, "Ping", HL_I32, &p, 1, &r), HL_ERR_STATE);
        CHECK_HAS(hl_last_error(sb), "poisoned");
        CHECK_HAS(hl_last_error(sb), msg);
    }
    CHECK_INT(hl_sandbox_restore(sb, snap), HL_OK);
    CHECK_INT(hl_sandbox_state(sb), HL_STATE_READY);
    check_like_snapshot(sb, "after hl_sandbox_restore");
    probe(sb, c, "after hl_sandbox_restore");
    hl_sandbox_free(sb);

    /* a pooled sandbox: the same outcome, and the next user must not see what this one did */
    {
        hl_pool *pool = NULL;
        CHECK_INT(hl_pool_new(&pool, snap, cfg, 1, false), HL_OK);
        if (pool && hl_pool_get(pool, &sb) == HL_OK) {
            hl_sandbox_set_timeout(sb, timeout);
            if (prepare(sb, c)) {
                hl_status st2 = hl_call(sb, c->fn, HL_U64, args, 2, &r);
                const char *msg2 = st2 == HL_OK ? "" : hl_last_error(sb);
                ok = accepted(expected(c, true), st2, st2 == HL_OK ? r.v.u64 : 0, msg2);
                CHECK(ok);
                if (!ok) {
                    if (st2 == HL_OK)
                        fprintf(stderr, "    in a pooled sandbox: = 0x%llx\n", (unsigned long long)r.v.u64);
                    else fprintf(stderr, "    in a pooled sandbox: %s: %s\n", hl_status_name(st2), msg2);
                }
            }
            CHECK_INT(hl_pool_put(pool, sb), HL_OK);
            CHECK_INT(hl_pool_get(pool, &sb), HL_OK);
            check_like_snapshot(sb, "after hl_pool_put + hl_pool_get");
            probe(sb, c, "after hl_pool_put + hl_pool_get");
            CHECK_INT(hl_pool_put(pool, sb), HL_OK);
        }
        hl_pool_free(pool);
    }

    /* a new sandbox from the snapshot, and the bystander */
    if (hl_sandbox_new_from_snapshot(&sb, snap, cfg) == HL_OK) {
        check_like_snapshot(sb, "new sandbox from the snapshot");
        probe(sb, c, "new sandbox from the snapshot");
        hl_sandbox_free(sb);
    } else {
        CHECK(!"second sandbox from snapshot");
    }
    CHECK_INT(call_u64(bystander, "CodeSum", &sum), HL_OK);
    CHECK_INT(sum, base_sum);
    p = hl_i32(ncases);
    CHECK_INT(hl_call(bystander, "Ping", HL_I32, &p, 1, &r), HL_OK);
    CHECK_INT(r.v.i32, ncases + 1);
    hs2 = host_segs();
    CHECK(memcmp(&hs, &hs2, sizeof hs) == 0);
    if (memcmp(&hs, &hs2, sizeof hs)) {
        fprintf(stderr, "    host thread's selectors changed: ds %x es %x fs %x gs %x (were %x %x %x %x)\n", hs2.s[0],
                hs2.s[1], hs2.s[2], hs2.s[3], hs.s[0], hs.s[1], hs.s[2], hs.s[3]);
        host_segs_reset(&hs);
    }
    if (check_failures > before)
        fprintf(stderr, "  ^ case \"%s\" (%s): %d failed checks\n", c->label, c->fn, check_failures - before);
}

#define CASE(...) run(&(pcase){ __VA_ARGS__ })

#define SYSCALL_AT_0 FAULT("guest fault: execution of non-executable memory at 0x0 (unmapped)")
/* the probe "syscall": EFER.SCE is still set and LSTAR still 0 (syscall jumps to 0) */
#define PROBE_SYSCALL .probe = "Syscall", .probe_want = SYSCALL_AT_0
/* the probe "KERNEL_GS_BASE read through swapgs": still 0 */
#define PROBE_KGS .probe = "SwapgsKgs", .probe_want = OK_EQ(0)

static void msr_cases(void)
{
    /* rdmsr of MSRs the guest may read: defined results */
    CASE("rdmsr TSC", "Rdmsr", 0x10, 0, .want = OK_NZ);
    CASE("rdmsr EFER", "Rdmsr", 0xc0000080, 0, .want = OK_EQ(0xd01)); /* SCE LME LMA NXE */
    CASE("rdmsr APIC_BASE", "Rdmsr", 0x1b, 0, .want = OK_EQ(0xfee00900));
    CASE("rdmsr PAT", "Rdmsr", 0x277, 0, .want = OK_EQ(0x0007040600070406ull));
    CASE("rdmsr FS_BASE", "Rdmsr", 0xc0000100, 0, .want = OK_EQ(0));
    CASE("rdmsr GS_BASE", "Rdmsr", 0xc0000101, 0, .want = OK_EQ(0));
    CASE("rdmsr PVM VIF", "Rdmsr", 0x4b564d10, 0, .pvm_only = true, .want = OK_EQ(a_meta | 1));
    /* KERNEL_GS_BASE without rdmsr: swapgs exchanges it with GS_BASE (both 0) */
    CASE("swapgs, read KERNEL_GS_BASE", "SwapgsKgs", 0, 0, .want = OK_EQ(0));

    /* rdmsr of MSRs the host's filter denies: #GP, on every platform */
    CASE("rdmsr 0x11 (old wall clock)", "Rdmsr", 0x11, 0, .want = GP);
    CASE("rdmsr 0x12 (old kvmclock)", "Rdmsr", 0x12, 0, .want = GP);
    CASE("rdmsr SYSENTER_CS", "Rdmsr", 0x174, 0, .want = GP);
    CASE("rdmsr SYSENTER_ESP", "Rdmsr", 0x175, 0, .want = GP);
    CASE("rdmsr SYSENTER_EIP", "Rdmsr", 0x176, 0, .want = GP);
    CASE("rdmsr STAR", "Rdmsr", 0xc0000081, 0, .want = GP);
    CASE("rdmsr LSTAR", "Rdmsr", 0xc0000082, 0, .want = GP);
    CASE("rdmsr CSTAR", "Rdmsr", 0xc0000083, 0, .want = GP);
    CASE("rdmsr SFMASK", "Rdmsr", 0xc0000084, 0, .want = GP);
    CASE("rdmsr KERNEL_GS_BASE", "Rdmsr", 0xc0000102, 0, .want = GP);
    CASE("rdmsr TSC_AUX", "Rdmsr", 0xc0000103, 0, .want = GP);
    CASE("rdmsr wall clock 0x4b564d00", "Rdmsr", 0x4b564d00, 0, .want = GP);
    CASE("rdmsr kvmclock 0x4b564d01", "Rdmsr", 0x4b564d01, 0, .want = GP);
    CASE("rdmsr steal time 0x4b564d03", "Rdmsr", 0x4b564d03, 0, .want = GP);
    CASE("rdmsr 0x4b564d0f", "Rdmsr", 0x4b564d0f, 0, .want = GP);
    CASE("rdmsr PVM id 0x4b564d11", "Rdmsr", 0x4b564d11, 0, .want = GP);
    CASE("rdmsr 0x4b564dff", "Rdmsr", 0x4b564dff, 0, .want = GP);

    /* EFER: the host sets it; any write is refused, even of the same value */
    CASE("wrmsr EFER same", "EferSame", 0, 0, .want = GP, PROBE_SYSCALL);
    CASE("wrmsr EFER -LME-LMA", "EferClear", (1 << 8) | (1 << 10), 0, .want = GP);
    CASE("wrmsr EFER -NXE", "EferClear", 1 << 11, 0, .want = GP);
    CASE("wrmsr EFER -SCE", "EferClear", 1, 0, .want = GP, PROBE_SYSCALL);

    /* MSRs the guest may write: the value reads back, and a restore puts the old one back */
    CASE("wrmsr FS_BASE, use %fs", "SegBase", 0xc0000100, 0, .want = OK_EQ(0));
    CASE("wrmsr GS_BASE, use %gs", "SegBase", 0xc0000101, 0, .want = OK_EQ(0));
    /* KVM keeps a written TSC as an offset in the vCPU, and TSC_ADJUST with it, where a
     * restore does not reach: the filter denies the write, and the probe checks that
     * TSC_ADJUST is still a new vCPU's (0) after hl_sandbox_restore, in the pool's next user and in a
     * new sandbox. The same for the MSRs that were found to stick on kvm_amd and kvm_pvm
     * (every write but FS_BASE and GS_BASE is denied). */
    CASE("wrmsr TSC 0", "WrRd", 0x10, 0, .want = GP, .probe = "Rdmsr", .probe_a = 0x3b, .probe_want = OK_EQ(0));
    CASE("wrmsr TSC 2^62", "WrRd", 0x10, 1ull << 62, .want = GP, .probe = "Rdmsr", .probe_a = 0x3b,
         .probe_want = OK_EQ(0));
    CASE("wrmsr POWER_CTL", "WrRd", 0x1fc, 1, .want = GP);
    CASE("wrmsr MISC_FEATURES_ENABLES", "WrRd", 0x140, 1, .want = GP);
    CASE("wrmsr HWCR (AMD)", "WrRd", 0xc0010015, 0x1000000, .want = GP);
    CASE("wrmsr VM_HSAVE_PA (AMD)", "WrRd", 0xc0010117, 0x1000, .want = GP);
    CASE("wrmsr VM_CR (AMD)", "WrRd", 0xc0010114, 0x8, .want = GP);
    CASE("wrmsr DE_CFG (AMD)", "WrRd", 0xc0011029, 0x2, .want = GP);
    CASE("wrmsr OSVW length (AMD)", "WrRd", 0xc0010140, 4, .want = GP);
    /* MSRs the filter denies: #GP, and the value stays the snapshot's (State; the probes) */
    CASE("wrmsr LSTAR", "WrRd", 0xc0000082, 0x200000, .want = GP, PROBE_SYSCALL);
    CASE("wrmsr LSTAR non-canonical", "WrRd", 0xc0000082, 0x8000000000000000ull, .want = GP, PROBE_SYSCALL);
    CASE("wrmsr STAR", "WrRd", 0xc0000081, 0x0023001000000000ull, .want = GP, PROBE_SYSCALL);
    CASE("wrmsr CSTAR", "WrRd", 0xc0000083, 0x200000, .want = GP);
    CASE("wrmsr SFMASK", "WrRd", 0xc0000084, 0x700, .want = GP);
    CASE("wrmsr KERNEL_GS_BASE", "WrRd", 0xc0000102, 0x123456789000ull, .want = GP, PROBE_KGS);
    CASE("wrmsr SYSENTER_CS", "WrRd", 0x174, 0x10, .want = GP);
    CASE("wrmsr SYSENTER_EIP", "WrRd", 0x176, 0x200000, .want = GP);
    CASE("wrmsr PAT reserved type", "WrRd", 0x277, 0x0202020202020202ull, .want = GP);
    CASE("wrmsr PAT all WB", "WrRd", 0x277, 0x0606060606060606ull, .want = GP);
    CASE("wrmsr TSC_AUX, rdtscp", "TscAux", 0x1234, 0, .want = GP);
    CASE("wrmsr APIC_BASE 0", "WrRd", 0x1b, 0, .want = GP);
    CASE("wrmsr APIC_BASE same", "WrRd", 0x1b, 0xfee00900, .want = GP);
    CASE("wrmsr x2APIC 0x808", "WrRd", 0x808, 0, .want = GP);
    CASE("wrmsr 0x12345678", "WrRd", 0x12345678, 0, .want = GP);
    /* writable MSRs KVM keeps in the vCPU: refused, so none can carry data to the next user */
    CASE("wrmsr MTRR 0x200", "WrRd", 0x200, 0x12345000, .want = GP);
    CASE("wrmsr MTRR 0x2ff", "WrRd", 0x2ff, 0x806, .want = GP);
    CASE("wrmsr TSC_ADJUST", "WrRd", 0x3b, 1, .want = GP);
    CASE("wrmsr MISC_ENABLE", "WrRd", 0x1a0, 1, .want = GP);
    CASE("wrmsr MC0_CTL", "WrRd", 0x400, 0, .want = GP);
    /* kvmclock: KVM would write its pvclock record into guest memory (read-only code, or data
     * a restore does not know KVM keeps writing) */
    CASE("wrmsr kvmclock -> code", "KvmClock", 0x4b564d01, 0x200000, .want = GP);
    CASE("wrmsr wall clock -> code", "KvmClock", 0x4b564d00, 0x200000, .want = GP);
    CASE("wrmsr kvmclock -> data", "KvmClock", 0x4b564d01, a_scratch + 4096, .want = GP);
    CASE("wrmsr old kvmclock 0x12 -> data", "WrRd", 0x12, (a_scratch + 4096) | 1, .want = GP);
    CASE("wrmsr steal time -> data", "WrRd", 0x4b564d03, (a_scratch + 4096) | 1, .want = GP);
    CASE("wrmsr PVM 0x4b564d11", "WrRd", 0x4b564d11, 0, .want = GP);

    /* kvm_pvm's virtual-IF MSR: once the guest registered its page (at the vCPU's first run,
     * in hl_resume) every write is refused, so the page cannot be moved (onto guest data, where
     * it would outlive a restore) nor unregistered (the guest would lose native mode). 100 ms:
     * a guest that lost native mode would crawl. Each write is tried as the first call of a
     * new vCPU, after a call, after a call and a restore, and after a failed call and a
     * restore (which registers the page again). */
    {
        static const struct {
            const char *what;
            uint64_t v;
        } vif[] = {
            { "0 (unregister)", 0 },        { "same", 0 }, { "-> data", 0 }, { "-> code", 0x200001 },
            { "-> no memory", 0x40000001 },
        };
        for (int i = 0; i < (int)(sizeof vif / sizeof vif[0]); i++)
            for (int prep = PREP_NONE; prep <= PREP_FAULT_RESTORE; prep++) {
                uint64_t val = i == 1 ? a_meta | 1 : i == 2 ? a_scratch | 1 : vif[i].v;
                if (i != 1 && i != 2 && prep != PREP_NONE) continue; /* refused by kvm_pvm itself anyway */
                /* Until the vCPU's first exit after a (re)start the write is allowed (the guest
                 * registers the page then); at that exit the host checks where the page is. */
                bool window = prep == PREP_NONE || prep == PREP_FAULT_RESTORE;
                outcome want = GP;
                if (window && i == 1) want = (outcome)OK_ANY;
                if (window && i == 2)
                    want = (outcome){ .set = true,
                                      .st = HL_ERR_PROTOCOL,
                                      .has = { fmt("guest moved its virtual-IF page to 0x%llx (it must stay at 0x%llx)",
                                                   (unsigned long long)a_scratch, (unsigned long long)a_meta) } };
                /* a pooled sandbox has run (the pool warms it): its page is locked already */
                CASE(fmt("wrmsr VIF %s%s%s", vif[i].what, prep ? ", " : "", prep_name[prep]), "WrSpin", 0x4b564d10,
                     val, 100, .pvm_only = true, .prep = prep, .want = want,
                     .pooled = prep == PREP_NONE ? (outcome)GP : want);
            }
    }
}

static void cr_cases(void)
{
    const char *ro_write = fmt("guest fault: write of unmapped or read-only guest-physical address 0x%llx, rip 0x",
                               (unsigned long long)a_code);

    /* CR0: WP off, then a write to the code through its read-only mapping: the memslot is
     * read-only, so the write never lands */
    CASE("cr0 -WP, write code", "Cr0NoWpWriteCode", 0, 0, .want = FAULT(ro_write));
    CASE("cr0 -PG", "Cr0", 0, 1u << 31, .want = GP);
    CASE("cr0 -PE", "Cr0", 0, 1, .want = GP);
    CASE("cr0 +NW without CD", "Cr0", 1u << 29, 0, .want = GP);
    CASE("cr0 +CD", "Cr0", 1u << 30, 0, .want = OK_EQ(0xc0050033));
    /* TS: the case uses no SSE before its call ends, and restore clears TS again */
    CASE("cr0 +TS", "Cr0", 1 << 3, 0, .want = OK_EQ(0x8005003b));

    /* CR4 */
    CASE("cr4 +bit 31 (reserved)", "Cr4", 1ull << 31, 0, .want = GP);
    /* KVM's instruction emulator keeps only bits 0-31 of a value moved to CR4 (mk_cr_64), so
     * where it emulates the mov (kvm_pvm; kvm_amd without decode assists, as under QEMU) bit 63
     * is dropped; where KVM reads the register from the VMCB (decode assists) or the VMCS
     * (VT-x) the reserved bit is a #GP (untested: no such hardware here) */
    CASE("cr4 +bit 63 (reserved)", "Cr4", 1ull << 63, 0, .want = OK_EQ(0x620),
         .hw = plat.kvm == TP_KVM_INTEL || plat.decode_assists ? (outcome)GP : (outcome)OK_EQ(0x620));
    /* kvm_pvm refuses PCIDE; hardware KVM allows it where the guest's CPUID has PCID (not under
     * QEMU's emulation: measured there without it) */
    CASE("cr4 +PCIDE", "Cr4", 1 << 17, 0, .want = GP,
         .hw = (guest_cpuid(1, 0) >> 17) & 1 ? (outcome)OK_EQ(0x20620) : (outcome)GP);
    CASE("cr4 +LA57", "Cr4", 1 << 12, 0, .want = GP);
    CASE("cr4 -PAE", "Cr4", 0, 1 << 5, .want = GP);
    CASE("cr4 +VMXE", "Cr4", 1 << 13, 0, .want = GP);
    /* every page is U=1, so SMEP forbids every fetch: the message must not blame the code
     * for being non-executable, and must name SMEP. On hardware KVM the guest's exception
     * handlers are user pages too: each page fault is delivered and the handler's first fetch
     * faults again, forever and without an exit, until the time limit ends the call (the SDM
     * predicts the same on Intel) */
    CASE("cr4 +SMEP", "Cr4", 1 << 20, 0, 300,
         .want = FAULT_NOT("non-executable", "guest fault: instruction fetch fault (error code 0x", "(code)",
                           "SMEP forbids supervisor code in user pages"),
         .hw = TIMED_OUT("Cr4", 300));
    /* kvm_pvm faults the next fetch with SMAP too (not SMEP: the message must not name it).
     * On hardware KVM the next stack access faults, and so do the IDT read and the pushes
     * that deliver it (supervisor accesses to user pages): a double fault, whose delivery
     * fails the same way. The CPU's triple fault (kvm_amd resets the vCPU), or with shadow
     * paging KVM's own, which keeps the registers and names SMAP */
    CASE("cr4 +SMAP", "Cr4", 1 << 21, 0,
         .want = FAULT_NOT("SMEP", "guest fault: instruction fetch fault (error code 0x", "(code)", "cr4 0x"),
         .hw = TRIPLE_RESET, .shadow = TRIPLE_DF("SMAP forbids supervisor data access to user pages"),
         .intel = TRIPLE_KEPT);
    CASE("cr4 +FSGSBASE", "Cr4", 1 << 16, 0, .want = OK_EQ(0x10620));
    CASE("cr4 +TSD", "Cr4", 1 << 2, 0, .want = OK_EQ(0x624));
    /* The library hides XSAVE and PKU from CPUID, which makes hardware KVM refuse these CR4
     * bits; kvm_pvm accepts them whatever the table says. Restore puts CR4 back either way
     * (the state checks). */
    CASE("cr4 +OSXSAVE", "Cr4", 1 << 18, 0, .want = OK_EQ(0x40620), .hw = GP);
    CASE("cr4 +PKE", "Cr4", 1 << 22, 0, .want = OK_EQ(0x400620), .hw = GP);
    /* CPUID as the guest sees it: the table's, without XSAVE, OSXSAVE, AVX, PKU and OSPKE; or,
     * where the guest's CPUID is native (kvm_pvm -v1045 on AMD), exactly the host's */
    if (cpuid_mode == TP_CPUID_NATIVE) {
        uint32_t h1[4], h7[4];
        test_host_cpuid(1, 0, h1);
        test_host_cpuid(7, 0, h7);
        CASE("cpuid 1: the host's ecx (table ignored)", "Cpuid", 1, 0, .want = OK_EQ(h1[2]));
        CASE("cpuid 7: the host's ecx (table ignored)", "Cpuid", 7, 0, .want = OK_EQ(h7[2]));
    } else if (pvm) {
        /* kvm_pvm on Intel honours the table (CPUID faults) but for XSAVE and AVX, which it
         * takes from the host (measured on -v1045); OSXSAVE follows the guest's CR4.OSXSAVE,
         * clear here. PKU and OSPKE are hidden. */
        uint32_t h1[4];
        test_host_cpuid(1, 0, h1);
        CASE("cpuid 1: XSAVE and AVX the host's, no OSXSAVE", "Cpuid", 1, 0,
             .want = OK_MASK(h1[2] & (5u << 26), 7u << 26));
        CASE("cpuid 7: no PKU, OSPKE", "Cpuid", 7, 0, .want = OK_MASK(0, 3u << 3));
    } else {
        CASE("cpuid 1: no XSAVE, OSXSAVE, AVX", "Cpuid", 1, 0, .want = OK_MASK(0, 7u << 26));
        CASE("cpuid 7: no PKU, OSPKE", "Cpuid", 7, 0, .want = OK_MASK(0, 3u << 3));
    }

    /* PKRU (SDM Vol. 3A §2.7, §4.6.2): wrpkru and rdpkru are not privileged, and #UD unless
     * CR4.PKE. kvm_pvm runs the guest under the host's CR4, so on a host with CR4.PKE the
     * guest executes them natively, whatever CPUID or its own CR4 says; KVM keeps the value
     * in the vCPU, and restore must put it back to 0, the value of a new vCPU (the probe; and
     * State shows pkru where the guest sees OSPKE). Elsewhere CR4.PKE cannot be set (PKU
     * hidden) and both instructions are #UD. On kvm_pvm on a host without CR4.PKE (Intel,
     * -v1045) the #UD goes to KVM's emulator, which cannot emulate them either. */
    {
        bool native = pvm && plat.ospke;
        outcome ud = pvm ? (outcome)CANNOT : (outcome)UD;
        outcome fresh = native ? (outcome)OK_EQ(0) : ud;
        CASE("wrpkru", "Pkru", 2, 0x12345670, .want = native ? (outcome)OK_EQ(0x12345670) : ud, .probe = "Pkru",
             .probe_want = fresh);
        CASE("CR4.PKE, wrpkru", "Pkru", 3, 0x55555550,
             .want = native ? (outcome)OK_EQ(0x55555550)
                     : pvm  ? ud
                            : (outcome)GP,
             .probe = "Pkru", .probe_want = fresh);
        /* access disabled for key 0, every guest page's: the guest's next data access faults,
         * and so would every later call if the value outlived the restore */
        CASE("wrpkru: key 0 access disabled", "Pkru", 2, 1,
             .want = native ? (outcome)FAULT("guest fault: page fault (", "(stack), rip 0x") : ud, .probe = "Pkru",
             .probe_want = fresh);
    }

    /* CR3: page tables of the guest's own, identity-mapping the first GiB writable */
    CASE("cr3 own, write code", "Cr3WriteCode", 0, 0, .want = FAULT(ro_write));
    CASE("cr3 own, rep stosb code", "Cr3StosCode", 0, 0, .want = FAULT(ro_write));
    CASE("cr3 own, read 4 GiB", "Cr3Mmio", 0, 0,
         .want = FAULT("guest fault: read of unmapped or read-only guest-physical address 0x100000000, rip 0x"));
    CASE("cr3 own, write 4 GiB", "Cr3Mmio", 1, 0,
         .want = FAULT("guest fault: write of unmapped or read-only guest-physical address 0x100000000, rip 0x"));
    CASE("cr3 own, return", "Cr3Keep", 0, 0, .want = OK_EQ(a_pml4));
    /* Hardware KVM: the fetch's page fault cannot be delivered either (the IDT is not mapped),
     * nor the double fault: a triple fault, the CPU's or, with shadow paging, KVM's */
#define TRIPLE_OWN_PT "guest fault: triple fault at rip 0x", "after the guest loaded its own page tables (cr3 0x"
    CASE("cr3 empty tables", "Cr3Zero", 0, 0,
         .want = FAULT_NOT("non-executable", "guest fault: instruction fetch fault (error code 0x",
                           "(code) with the guest's own paging setup", fmt("cr3 0x%llx", (unsigned long long)a_zero)),
         .hw = TRIPLE_RESET, .shadow = FAULT(TRIPLE_OWN_PT, fmt("(cr3 0x%llx)", (unsigned long long)a_zero)),
         .intel = FAULT(TRIPLE_OWN_PT, fmt("(cr3 0x%llx)", (unsigned long long)a_zero)));
    /* CR3 outside guest memory: KVM makes the triple fault itself; the message must say so,
     * not guess an exception. Not with nested paging: every walk is a nested fault on memory
     * KVM has not got; KVM emulates the instruction, cannot fetch it and injects a page
     * fault, whose delivery faults the same way, again and again and never as a double fault
     * (measured: some 30,000 rounds in 2 s, no exit), until the time limit ends the call */
    CASE("cr3 0x40000000 (no memory)", "Cr3Raw", 0x40000000, 0, 300,
         .want = FAULT_NOT("divide error", TRIPLE_OWN_PT, "(cr3 0x40000000)"), .hw = TIMED_OUT("Cr3Raw", 300),
         .shadow = FAULT_NOT("divide error", TRIPLE_OWN_PT, "(cr3 0x40000000)"));
    CASE("cr3 0x100000000 (no memory)", "Cr3Raw", 0x100000000ull, 0, 300,
         .want = FAULT_NOT("divide error", TRIPLE_OWN_PT, "(cr3 0x100000000)"), .hw = TIMED_OUT("Cr3Raw", 300),
         .shadow = FAULT_NOT("divide error", TRIPLE_OWN_PT, "(cr3 0x100000000)"));
    /* a page directory in read-only memory without A (D) bits: the walker would have to write
     * the read-only image. KVM retries forever; only the time limit ends the call. With nested
     * paging every walk is a write for the nested check (docs/platforms.md), so KVM emulates
     * the guest instruction by instruction, and its first write lands on the directory entry
     * mapping the code: a write to read-only memory at the page directory (after up to 0.1 s
     * of emulation under QEMU: the time limit is longer there) */
    {
        uint64_t pde = 8 * (a_code >> 21);
        unsigned ms = pvm || !plat.tdp ? 100 : 2000;
        CASE("cr3 PD in rodata, no A bits", "Cr3RoPd", 0, 0, ms, .want = TIMED_OUT("Cr3RoPd", 100),
             .hw = FAULT(fmt("guest fault: write of unmapped or read-only guest-physical address 0x%llx, rip 0x",
                             (unsigned long long)(addr(bystander, "ro_pd_no_a") + pde))),
             .shadow = TIMED_OUT("Cr3RoPd", 100));
        CASE("cr3 PD in rodata, no D bits", "Cr3RoPd", 1, 0, ms, .want = TIMED_OUT("Cr3RoPd", 100),
             .hw = FAULT(fmt("guest fault: write of unmapped or read-only guest-physical address 0x%llx, rip 0x",
                             (unsigned long long)(addr(bystander, "ro_pd_no_d") + pde))),
             .shadow = TIMED_OUT("Cr3RoPd", 100));
    }
}

static void other_cases(void)
{
    /* descriptor tables and segments. On hardware KVM the guest runs on the GDT, IDT and TSS
     * it installed (src/guest/exceptions.c: GDT entries 0x8 code, 0x10 data, 0x18 TSS) */
    /* hardware: the int3 cannot be delivered (IDT limit 0), nor the #GP, nor the double fault */
    CASE("lidt garbage, int3", "LidtInt3", 0, 0, .want = FAULT("guest fault: ", "rip 0x"), .hw = TRIPLE_RESET,
         .intel = TRIPLE_KEPT);
    /* hardware: delivering the page fault reads the handler's code segment from the GDT at
     * 0xdead0000: a page fault again, a double fault, and the same for it */
    CASE("lgdt garbage, mov ds", "LgdtReload", 0, 0,
         .want = FAULT("guest fault: unmapped memory read at 0xdead0010, rip 0x"), .hw = TRIPLE_RESET,
         .shadow = TRIPLE_DF(), .intel = TRIPLE_KEPT);
    CASE("lgdt garbage", "LgdtOnly", 0, 0, .want = OK_EQ(0xdead0000));
    /* the guest's GDTR, not the host's: kvm_pvm shows none, hardware the guest's own GDT */
    CASE("sgdt", "Sgdt", 0, 0, .want = OK_EQ(0), .hw = OK_EQ(state_hex("gdt")));
    CASE("smsw", "Smsw", 0, 0, .want = OK_EQ(0x80050033));
    CASE("mov %cs", "ReadCs", 0, 0, .want = OK_EQ(0x33), .hw = OK_EQ(0x8)); /* kvm_pvm: hardware CPL3 shows */
    /* hardware: beyond the GDT's limit (0x27) */
    CASE("ltr 0x28", "Ltr", 0x28, 0, .want = FAULT("guest fault: ", "at 0x28"), .hw = GP);
    /* a null selector: #GP (SDM Vol. 2A LTR; AMD APM Vol. 3 LTR). QEMU's software emulation
     * loads it as an invalid TR instead (target/i386/tcg/seg_helper.c helper_ltr): measured
     * under hwkvm, the #GP untested on hardware */
    CASE("ltr 0", "Ltr", 0, 0, .want = GP, .hw = plat.tcg ? (outcome)OK_EQ(0) : (outcome)GP);
    /* selector 0x1234 has TI=1: the descriptor is read through LDTR, whose cached base is 0
     * (nothing loaded it), where nothing is mapped; the same on every platform */
#define GDT_1234 FAULT("guest fault: unmapped memory read at 0x1230, rip 0x")
    CASE("ljmp 0x1234:x", "FarJmp", 0x1234, 0, .want = GDT_1234);
    CASE("lcall 0x1234:x", "FarCall", 0x1234, 0, .want = GDT_1234);
    /* hardware: 0x8 is the guest's own 64-bit code segment, the jump lands */
    CASE("ljmp 0x8:x", "FarJmp", 0x8, 0, .want = FAULT("guest fault: ", "at 0x8"), .hw = OK_EQ(1));
    CASE("lret to 0x1234", "FarRet", 0x1234, 0, .want = GDT_1234);

    /* instructions */
    CASE("sti", "Sti", 0, 0, .want = OK_EQ(0x200));
    CASE("invlpg", "Invlpg", 0, 0, .want = OK_EQ(7));
    CASE("wbinvd", "Wbinvd", 0, 0, .want = OK_EQ(1));
    CASE("xsetbv (no CR4.OSXSAVE)", "Xsetbv", 3, 0, .want = UD);
    /* kvm_pvm cannot intercept xgetbv and runs the guest under the host's CR4 and XCR0: it
     * reads the host's XCR0 instead of #UD */
    CASE("xgetbv (no CR4.OSXSAVE)", "Xgetbv", 0, 0, .want = OK_EQ(plat.xcr0), .hw = UD);
    /* Hardware KVM refuses CR4.OSXSAVE (XSAVE hidden): the mov to CR4 is the #GP. kvm_pvm
     * accepts it and the xsetbv, and keeps the value in the vCPU (KVM_GET_XCRS shows 3 even
     * after a restore), but never loads it: the guest runs under, and xgetbv reads, the
     * host's XCR0 (measured on -v1045). The probe: after a restore, a guest that sets
     * CR4.OSXSAVE sees what a fresh one sees. */
    CASE("CR4.OSXSAVE, xsetbv 3", "OsxsaveXsetbv", 3, 0, .want = OK_EQ(plat.xcr0), .hw = GP, .probe = "Xcr0",
         .probe_a = 1, .probe_want = pvm ? (outcome)OK_EQ(plat.xcr0) : (outcome)GP);
    CASE("CR4.OSXSAVE, xsetbv 0", "OsxsaveXsetbv", 0, 0, .want = GP);
    /* hardware KVM emulates RDPMC; counter 0 reads 0 (measured under QEMU, which gives KVM no
     * PMU to expose: writes to the counter MSRs read back 0 there) */
    CASE("rdpmc 0", "Rdpmc", 0, 0, .want = GP, .hw = OK_EQ(0));
    CASE("rdtsc", "Rdtsc", 0, 0, .want = OK_RANGE(1, 1000000000));
    CASE("rdtscp", "Rdtsc", 1, 0, .want = OK_RANGE(1, 1000000000));
    /* EFER.SCE is set and LSTAR is 0: syscall jumps to 0 */
    CASE("syscall", "Syscall", 0, 0, .want = SYSCALL_AT_0);
    /* AMD: #UD in 64-bit mode, which kvm_amd intercepts and fails to emulate (at CPL0 that is
     * an emulation failure exit). Intel: valid, and #GP with SYSENTER_CS 0 (SDM Vol. 2B), untested */
    CASE("sysenter", "Sysenter", 0, 0, .want = UD,
         .hw = FAULT("guest fault: instruction the hypervisor cannot emulate at rip 0x", "(bytes 0f 34)"), .intel = GP);
    /* sysret drops to (the guest's) user mode; kvm_pvm runs it there (every page is U=1) until
     * its next `out`, which ring 3 may not execute; the message must not blame page tables */
    CASE("sysret", "Sysret", 0, 0, .want = FAULT_NOT("page tables", "guest fault: general protection fault"));
    /* KVM makes the hypercall instruction the host vendor's own (vmcall on Intel, vmmcall on
     * AMD): the native one reaches KVM, which refuses the unknown hypercall (rax = -1 on
     * kvm_pvm, -KVM_ENOSYS = -1000 on hardware KVM); the other one KVM rewrites into the native
     * one in the guest's code, which is read-only: that write is the fault. */
    {
        bool amd = plat.cpu == TP_CPU_AMD;
        outcome hc = OK_EQ(~0ull), hc_hw = OK_EQ((uint64_t)-1000),
                patched = FAULT("guest fault: write to read-only memory (code) at 0x");
        CASE(amd ? "vmcall (patched by KVM)" : "vmcall (unknown hypercall)", "Vmcall", 0xffff, 0,
             .want = amd ? patched : hc, .hw = amd ? patched : hc_hw);
        CASE(amd ? "vmmcall (unknown hypercall)" : "vmmcall (patched by KVM)", "Vmmcall", 0xffff, 0,
             .want = amd ? hc : patched, .hw = amd ? hc_hw : patched);
    }
    /* hardware KVM runs both as no-ops (KVM's MWAIT_NEVER_UD_FAULTS quirk) */
    CASE("monitor/mwait", "MonitorMwait", 0, 0, .want = CANNOT, .hw = OK_EQ(1));
    CASE("swapgs twice", "Swapgs", 0, 0, .want = OK_EQ(1), PROBE_KGS);
    CASE("clts", "Clts", 0, 0, .want = OK_EQ(0x80050033));
    /* hardware: the guest's IDT has no gate 0x1b (only the exceptions'): #GP */
    CASE("int $0x1b (PVM vector)", "Int1b", 0x1000, 0, .want = UD, .hw = GP);

    /* flags (the arithmetic ones masked: they come from the guest's code). kvm_pvm runs the
     * guest with IF set and ignores IOPL; hardware KVM runs it with IF clear, and popf at
     * CPL0 sets IOPL */
    CASE("popf IOPL=3", "Popf", 3 << 12, 0, .want = OK_EQ(0x202), .hw = OK_EQ(0x3002));
    CASE("popf AC", "Popf", 1 << 18, 0, .want = OK_EQ(0x40202), .hw = OK_EQ(0x40002));
    CASE("popf TF (single step)", "TrapFlag", 0, 0,
         .want =
             FAULT("guest fault: debug exception (single step or breakpoint) (exception 1, error code 0x", "rip 0x"));
    /* alignment checks apply only at CPL3: kvm_pvm's guest really runs there */
    CASE("AC + misaligned read", "AlignCheck", 0, 0,
         .want = FAULT("guest fault: alignment check (exception 17, error code 0x", "rip 0x"), .hw = OK_EQ(1));

    /* debug registers: kvm_pvm ignores them; on hardware the breakpoint is a #DB at its address */
    CASE("DR0/DR7 exec breakpoint", "DrBreak", 0, 0, .want = OK_EQ(16),
         .hw = FAULT(fmt("guest fault: debug exception (single step or breakpoint) (exception 1, error code 0x0) at "
                         "rip 0x%llx",
                         (unsigned long long)a_code)));
    CASE("DR0/DR7 set", "DrSet", 0x1234000, 0x400, .want = OK_EQ(1));
    CASE("DR0/DR7 set, enabled", "DrSet", 0x1234000, 0x403, .want = OK_EQ(1));
    CASE("DR1-3/DR6/DR7 set", "DrAll", 0x1235000, 0x4fc, .want = OK_EQ(1));

    /* segment registers: reloaded by a restore when the guest changed them */
    CASE("CR4.FSGSBASE, wrfsbase/wrgsbase", "FsGsBase", a_scratch, 0, .want = OK_EQ(a_scratch));
    /* data-segment selectors (no effect on addressing in 64-bit mode, but state): on kvm_pvm
     * the guest's are the host thread's own (see host_segs); on hardware 0x2b is beyond the
     * guest's GDT limit (0x27): #GP */
    CASE("mov %ds, %es = 0x2b", "LoadSeg", 0x2b, 3, .want = OK_EQ(0x2b002b), .hw = GP);
    CASE("mov %fs = 0x2b", "LoadSeg", 0x2b, 4, .want = OK_EQ(0x2b00000000ull), .hw = GP);
    CASE("mov %gs = 0x2b", "LoadSeg", 0x2b, 8, .want = OK_EQ(0x2b000000000000ull), .hw = GP);
    CASE("mov %ds = 0x1234", "LoadSeg", 0x1234, 1, .want = GDT_1234);
}

int main(int argc, char **argv)
{
    double t0 = now_us(), dt;
    hl_sandbox *base;
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the report in order with the failures on stderr */
    only = argc > 1 ? argv[1] : NULL;
    plat = test_platform_get();
    pvm = plat.kvm == TP_KVM_PVM;
    cfg = hl_config_new();
    CHECK(cfg != NULL);
    if (!cfg) return check_exit("test_privileged");
    base = must_sandbox("priv_guest", cfg);
    CHECK_INT(hl_snapshot_take(base, &snap), HL_OK);
    hl_sandbox_free(base);
    if (hl_sandbox_new_from_snapshot(&bystander, snap, cfg) != HL_OK) {
        fprintf(stderr, "cannot create the bystander: %s\n", hl_last_error(NULL));
        return 1;
    }
    a_code = addr(bystander, "code");
    a_meta = addr(bystander, "meta");
    a_scratch = addr(bystander, "scratch");
    a_pml4 = addr(bystander, "pml4");
    a_zero = addr(bystander, "zero_page");
    CHECK_INT(call_u64(bystander, "CodeSum", &base_sum), HL_OK);
    CHECK_INT(get_state(bystander, base_state, sizeof base_state), HL_OK);
    printf("  %s; code 0x%llx, read-only image up to 0x%llx\n  snapshot state: %s\n", pvm ? "kvm_pvm" : "KVM",
           (unsigned long long)a_code, (unsigned long long)addr(bystander, "ro_end"), base_state);
    /* the defaults the cases compare with (what a write the filter refused must leave) */
    CHECK_HAS(base_state, fmt("cr0=80050033 cr3=%x cr4=620 efer=d01 ", HL_PT_GPA));
    CHECK_HAS(base_state, " pat=7040600070406 fs=0 gs=0 kgs=0 dr0=0 dr1=0 dr2=0 dr3=0 dr6=ffff0ff0 dr7=400 xcr0=0 ");
    CHECK_HAS(base_state, " xcr0=0 pkru=0 gdt=");
    detect_platform();
    if (pvm) {
        CHECK_HAS(base_state, " apic=fee00900 ");
        CHECK_HAS(base_state, fmt(" vif=%llx", (unsigned long long)(a_meta | 1)));
    }

    msr_cases();
    cr_cases();
    other_cases();

    hl_sandbox_free(bystander);
    hl_snapshot_free(snap);
    hl_config_free(cfg);
    dt = now_us() - t0;
    printf("  %d cases, total %.0f ms\n", ncases, dt / 1e3);
    if (!plat.tcg) CHECK(dt < 20e6); /* not timed under QEMU's emulation (see check_like_snapshot) */
    return check_exit("test_privileged");
}
