/* priv_guest.c - a guest that runs privileged and unusual instructions, one per function, for
 * tests/integration/test_privileged.c: MSR writes and reads, control registers, its own page
 * tables, descriptor tables, system-call instructions, flags, debug registers, hypercalls.
 * What the host must report for each is checked there.
 *
 * Every case is a function (u64 a, u64 b) -> u64. A few benign functions (Ping, CodeSum,
 * State, Spin, Addr) let the host check a sandbox after a case: that the shared read-only
 * image is intact, and that restore put every control register, readable MSR, segment selector
 * and the virtual-IF page back. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "hyperlight_guest.h"

#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

/* Intel SDM Vol. 4 (MSRs), Vol. 3A §2.5 (control registers); KVM: Documentation/virt/kvm/x86/msr.rst */
#define MSR_TSC 0x10u
#define MSR_APIC_BASE 0x1bu
#define MSR_SYSENTER_CS 0x174u
#define MSR_SYSENTER_ESP 0x175u
#define MSR_SYSENTER_EIP 0x176u
#define MSR_PAT 0x277u
#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SFMASK 0xc0000084u
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_PVM_VIF HL_MSR_PVM_VIF

#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define CR0_WP (1ull << 16)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_PKE (1ull << 22)

#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_U 4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull

#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IOPL (3ull << 12)
#define RFLAGS_AC (1ull << 18)

static inline uint64_t rdmsr(uint32_t m)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(m) : "memory");
    return lo | (uint64_t)hi << 32;
}
static inline void wrmsr(uint32_t m, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(m), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}
#define RD_CR(n)                                                       \
    static inline uint64_t rd_cr##n(void)                              \
    {                                                                  \
        uint64_t v;                                                    \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v) : : "memory"); \
        return v;                                                      \
    }                                                                  \
    static inline void wr_cr##n(uint64_t v) { __asm__ volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
RD_CR(0)
RD_CR(3)
RD_CR(4)
static inline uint64_t rflags(void)
{
    uint64_t f;
    __asm__ volatile("pushfq; popq %0" : "=r"(f) : : "memory");
    return f;
}
static inline void set_rflags(uint64_t f) { __asm__ volatile("pushq %0; popfq" : : "r"(f) : "memory", "cc"); }

struct __attribute__((packed)) dtr {
    uint16_t limit;
    uint64_t base;
};

/* ---- what the cases aim at ---- */
__attribute__((noinline)) static int code_target(int x)
{
    OPAQUE(x);
    return x * 3 + 1;
}
static const char ro_str[] = "read-only data of the privileged guest";

/* Page directories in read-only memory (slot 0) whose entries lack the accessed (A) or the
 * dirty (D) bit: a walk through them makes the page walker write read-only memory. Identity
 * maps of the first 16 MiB in 2 MiB pages. */
#define PDE2M(i, extra) ((uint64_t)(i) << 21 | PTE_P | PTE_W | PTE_U | PTE_PS | (extra))
#define PD8(extra)                                                                                        \
    PDE2M(0, extra), PDE2M(1, extra), PDE2M(2, extra), PDE2M(3, extra), PDE2M(4, extra), PDE2M(5, extra), \
        PDE2M(6, extra), PDE2M(7, extra)
static const uint64_t ro_pd_no_a[512] __attribute__((aligned(4096))) = { PD8(0) };
static const uint64_t ro_pd_no_d[512] __attribute__((aligned(4096))) = { PD8(PTE_A) };

/* Page tables of the guest's own, in writable memory. */
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static uint64_t pd_hi[512] __attribute__((aligned(4096)));
static uint64_t zero_page[512] __attribute__((aligned(4096)));
static uint8_t scratch[8192] __attribute__((aligned(4096)));

/* Identity map of the first GiB in writable, executable 2 MiB pages (U=1 at every level, as
 * kvm_pvm needs), plus GPA 0x100000000 (no memory there) at the same virtual address. */
static uint64_t build_tables(const uint64_t *dir)
{
    memset(pml4, 0, sizeof pml4);
    memset(pdpt, 0, sizeof pdpt);
    for (uint64_t i = 0; i < 512; i++) pd[i] = PDE2M(i, PTE_A | PTE_D);
    memset(pd_hi, 0, sizeof pd_hi);
    pd_hi[0] = 0x100000000ull | PTE_P | PTE_W | PTE_U | PTE_PS | PTE_A | PTE_D;
    pdpt[0] = (uint64_t)(uintptr_t)(dir ? dir : pd) | PTE_P | PTE_W | PTE_U | PTE_A;
    pdpt[4] = (uint64_t)(uintptr_t)pd_hi | PTE_P | PTE_W | PTE_U | PTE_A;
    pml4[0] = (uint64_t)(uintptr_t)pdpt | PTE_P | PTE_W | PTE_U | PTE_A;
    return (uint64_t)(uintptr_t)pml4;
}

/* ---- benign ---- */
static int ping(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_i32(args[0].v.i32 + 1);
    return 0;
}

static uint64_t ro_end(void)
{
    uint64_t e = (uint64_t)(uintptr_t)ro_str + sizeof ro_str;
    if ((uint64_t)(uintptr_t)ro_pd_no_a + 4096 > e) e = (uint64_t)(uintptr_t)ro_pd_no_a + 4096;
    if ((uint64_t)(uintptr_t)ro_pd_no_d + 4096 > e) e = (uint64_t)(uintptr_t)ro_pd_no_d + 4096;
    return (e + 4095) & ~4095ull;
}

/* CodeSum() -> u64: FNV-1a of the image's read-only part (code and read-only data). */
static int code_sum(const hl_value *args, int argc, hl_value *ret)
{
    const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)HL_IMAGE_BASE;
    uint64_t h = 0xcbf29ce484222325ull, n = ro_end() - HL_IMAGE_BASE;
    for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    *ret = hl_u64(h);
    return 0;
}

/* Addr(string) -> u64 */
static int addr(const hl_value *args, int argc, hl_value *ret)
{
    const char *w = hl_value_str(&args[0]);
    uint64_t a;
    if (strcmp(w, "code") == 0) a = (uint64_t)(uintptr_t)&code_target;
    else if (strcmp(w, "ro_end") == 0) a = ro_end();
    else if (strcmp(w, "ro_pd_no_a") == 0) a = (uint64_t)(uintptr_t)ro_pd_no_a;
    else if (strcmp(w, "ro_pd_no_d") == 0) a = (uint64_t)(uintptr_t)ro_pd_no_d;
    else if (strcmp(w, "scratch") == 0) a = (uint64_t)(uintptr_t)scratch;
    else if (strcmp(w, "pml4") == 0) a = (uint64_t)(uintptr_t)pml4;
    else if (strcmp(w, "zero_page") == 0) a = (uint64_t)(uintptr_t)zero_page;
    else if (strcmp(w, "meta") == 0) a = hl_guest_peb()->meta_gpa;
    else return hl_error(1, "unknown address '%s'", w);
    *ret = hl_u64(a);
    return 0;
}

/* Spin(u64 n) -> u64: a loop without exits (native: ~0.2 ns an iteration; emulated: ~1 µs). */
static int spin(const hl_value *args, int argc, hl_value *ret)
{
    uint64_t i;
    for (i = 0; i < args[0].v.u64; i++) OPAQUE(i);
    *ret = hl_u64(i);
    return 0;
}

/* State() -> string: every piece of vCPU state the cases change and the guest can still read,
 * to compare with a fresh sandbox's after a restore. MSRs the host's MSR filter denies to the
 * guest (SYSENTER, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE, TSC_AUX, kvmclock and the other
 * paravirtual MSRs) would #GP here: the test reads them in cases of their own, which must fault.
 * KERNEL_GS_BASE is still seen, through swapgs (kgs). */
static uint16_t sel(int which)
{
    uint16_t v = 0;
    switch (which) {
    case 0: __asm__ volatile("mov %%cs, %0" : "=r"(v)); break;
    case 1: __asm__ volatile("mov %%ss, %0" : "=r"(v)); break;
    case 2: __asm__ volatile("mov %%ds, %0" : "=r"(v)); break;
    case 3: __asm__ volatile("mov %%es, %0" : "=r"(v)); break;
    case 4: __asm__ volatile("mov %%fs, %0" : "=r"(v)); break;
    default: __asm__ volatile("mov %%gs, %0" : "=r"(v)); break;
    }
    return v;
}
static int state(const hl_value *args, int argc, hl_value *ret)
{
    char *s = hl_ret_alloc(1024);
    uint64_t cr0 = rd_cr0(), cr3 = rd_cr3(), cr4 = rd_cr4(), dr[8], fl = rflags(), kgs;
    uint32_t xlo = 0, xhi = 0, pkru = 0;
    struct dtr g, i;
    uint16_t tr, ldt;
    if (!s) return hl_error(1, "out of memory");
    __asm__ volatile("mov %%dr0, %0" : "=r"(dr[0]));
    __asm__ volatile("mov %%dr1, %0" : "=r"(dr[1]));
    __asm__ volatile("mov %%dr2, %0" : "=r"(dr[2]));
    __asm__ volatile("mov %%dr3, %0" : "=r"(dr[3]));
    __asm__ volatile("mov %%dr6, %0" : "=r"(dr[6]));
    __asm__ volatile("mov %%dr7, %0" : "=r"(dr[7]));
    __asm__ volatile("sgdt %0" : "=m"(g));
    __asm__ volatile("sidt %0" : "=m"(i));
    __asm__ volatile("str %0" : "=r"(tr));
    __asm__ volatile("sldt %0" : "=r"(ldt));
    if (cr4 & CR4_OSXSAVE) __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    {
        /* PKRU, where CPUID.7.0:ECX.OSPKE says rdpkru works (else it is #UD) */
        uint32_t ea = 7, eb, ec = 0, ed;
        __asm__ volatile("cpuid" : "+a"(ea), "=b"(eb), "+c"(ec), "=d"(ed));
        if (ec & (1u << 4)) __asm__ volatile("rdpkru" : "=a"(pkru), "=d"(ed) : "c"(0));
    }
    __asm__ volatile("swapgs" ::: "memory");
    kgs = rdmsr(MSR_GS_BASE);
    __asm__ volatile("swapgs" ::: "memory");
    snprintf(s, 1024,
             "cr0=%llx cr3=%llx cr4=%llx efer=%llx apic=%llx pat=%llx fs=%llx gs=%llx kgs=%llx "
             "dr0=%llx dr1=%llx dr2=%llx dr3=%llx dr6=%llx dr7=%llx xcr0=%llx pkru=%x gdt=%llx/%x idt=%llx/%x "
             "tr=%x ldt=%x cs=%x ss=%x ds=%x es=%x fsel=%x gsel=%x rflags=%llx vif=%llx",
             (unsigned long long)cr0, (unsigned long long)cr3, (unsigned long long)cr4,
             (unsigned long long)rdmsr(MSR_EFER), (unsigned long long)rdmsr(MSR_APIC_BASE),
             (unsigned long long)rdmsr(MSR_PAT), (unsigned long long)rdmsr(MSR_FS_BASE),
             (unsigned long long)rdmsr(MSR_GS_BASE), (unsigned long long)kgs, (unsigned long long)dr[0],
             (unsigned long long)dr[1], (unsigned long long)dr[2], (unsigned long long)dr[3],
             (unsigned long long)dr[6], (unsigned long long)dr[7], (unsigned long long)((uint64_t)xhi << 32 | xlo),
             pkru, (unsigned long long)g.base, g.limit, (unsigned long long)i.base, i.limit, tr, ldt, sel(0), sel(1),
             sel(2), sel(3), sel(4), sel(5), (unsigned long long)(fl & ~0xd5ull) /* no arith flags */,
             (unsigned long long)((hl_guest_peb()->flags & HL_PEB_FLAG_PVM) ? rdmsr(MSR_PVM_VIF) : 0));
    *ret = hl_str(s);
    return 0;
}

/* ---- the cases: (u64 a, u64 b) -> u64 ---- */
#define CASE(name) static uint64_t name(uint64_t a, uint64_t b)

/* MSRs */
CASE(rd) { return rdmsr((uint32_t)a); }
CASE(wr_rd)
{
    wrmsr((uint32_t)a, b);
    return rdmsr((uint32_t)a);
}
CASE(efer_same)
{
    wrmsr(MSR_EFER, rdmsr(MSR_EFER));
    return rdmsr(MSR_EFER);
}
/* EFER &= ~a; then use the stack (NX pages) and return EFER */
CASE(efer_clear)
{
    volatile uint64_t local = 7;
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~a);
    local += 1;
    return rdmsr(MSR_EFER) | (local == 8 ? 0 : 1ull << 63);
}
/* FS_BASE or GS_BASE (a) = scratch, then read a marker through the segment; returns the MSR
 * read back ^ scratch (0 when it matches) | (marker seen ? 0 : 1 << 63). */
CASE(seg_base)
{
    uint64_t base = (uint64_t)(uintptr_t)scratch, got;
    volatile uint64_t *m = (volatile uint64_t *)(uintptr_t)(scratch + 8);
    *m = 0x1122334455667788ull;
    wrmsr((uint32_t)a, base);
    if (a == MSR_FS_BASE) __asm__ volatile("movq %%fs:8, %0" : "=r"(got) : : "memory");
    else __asm__ volatile("movq %%gs:8, %0" : "=r"(got) : : "memory");
    return (rdmsr((uint32_t)a) ^ base) | (got == 0x1122334455667788ull ? 0 : 1ull << 63);
}
/* wrmsr a = b, then b loops of work; returns the loop count */
CASE(wr_spin)
{
    uint64_t i;
    wrmsr((uint32_t)a, b);
    for (i = 0; i < 100000; i++) OPAQUE(i);
    return i;
}
/* TSC_AUX = a, then rdtscp: returns ecx */
CASE(tsc_aux)
{
    uint32_t lo, hi, aux;
    wrmsr(MSR_TSC_AUX, a);
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    return aux;
}
/* the kvmclock MSR (a: 0x4b564d00 wall clock, 0x4b564d01 system time) aimed at GPA b; a
 * little work, then returns the first word there */
CASE(kvmclock)
{
    uint64_t i;
    wrmsr((uint32_t)a, b | (a == 0x4b564d01 ? 1 : 0));
    for (i = 0; i < 100000; i++) OPAQUE(i);
    return *(volatile uint64_t *)(uintptr_t)b;
}

/* control registers */
CASE(cr0_nowp_write_code)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)&code_target;
    OPAQUE(p);
    wr_cr0(rd_cr0() & ~CR0_WP);
    p[0] = 0xcc;
    return p[0];
}
CASE(cr0_set)
{
    wr_cr0((rd_cr0() | a) & ~b);
    return rd_cr0();
}
CASE(cr4_set)
{
    wr_cr4((rd_cr4() | a) & ~b);
    return rd_cr4();
}
CASE(cr3_write_code)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)&code_target;
    OPAQUE(p);
    wr_cr3(build_tables(NULL));
    p[0] = 0xcc;
    return p[0];
}
CASE(cr3_stos_code)
{
    uint8_t *p = (uint8_t *)(uintptr_t)&code_target;
    uint64_t n = 16;
    OPAQUE(p);
    wr_cr3(build_tables(NULL));
    __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(0xcc) : "memory");
    return n;
}
/* a = 0: read GPA 0x100000000 (no memslot) through own tables; 1: write it */
CASE(cr3_mmio)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)0x100000000ull;
    OPAQUE(p);
    wr_cr3(build_tables(NULL));
    if (a) {
        *p = 0x5a5a5a5a5a5a5a5aull;
        return 0;
    }
    return *p;
}
CASE(cr3_keep)
{
    wr_cr3(build_tables(NULL));
    return rd_cr3();
}
CASE(cr3_zero)
{
    wr_cr3((uint64_t)(uintptr_t)zero_page);
    return rd_cr3();
}
CASE(cr3_raw)
{
    wr_cr3(a);
    return rd_cr3();
}
/* own tables whose page directory is in read-only memory without A (a = 0) or D (a = 1) bits */
CASE(cr3_ro_pd)
{
    volatile uint64_t *m = (volatile uint64_t *)(uintptr_t)scratch;
    wr_cr3(build_tables(a ? ro_pd_no_d : ro_pd_no_a));
    *m = 42; /* a write: the D bit */
    return *m;
}

/* descriptor tables */
CASE(lidt_int3)
{
    struct dtr d = { 0, 0xdead0000 };
    __asm__ volatile("lidt %0; int3" : : "m"(d) : "memory");
    return 0;
}
CASE(lgdt_reload)
{
    struct dtr d = { 0xffff, 0xdead0000 };
    __asm__ volatile("lgdt %0; mov $0x10, %%ax; mov %%ax, %%ds" : : "m"(d) : "rax", "memory");
    return 0;
}
CASE(lgdt_only)
{
    struct dtr d = { 0x17, 0xdead0000 }, g;
    __asm__ volatile("lgdt %1; sgdt %0" : "=m"(g) : "m"(d) : "memory");
    return g.base;
}
CASE(do_sgdt)
{
    struct dtr g;
    __asm__ volatile("sgdt %0" : "=m"(g));
    return g.base;
}
CASE(do_smsw)
{
    uint64_t v;
    __asm__ volatile("smsw %0" : "=r"(v));
    return v;
}
CASE(do_ltr)
{
    __asm__ volatile("ltr %w0" : : "r"(a) : "memory");
    return 0;
}
CASE(read_cs)
{
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    return cs;
}
CASE(far_ret)
{
    __asm__ volatile("lea 1f(%%rip), %%rax; pushq %0; pushq %%rax; lretq; 1:" : : "r"(a) : "rax", "memory");
    return 1;
}
/* far jump (call = 0) or far call (call = 1) through memory to selector sel */
static uint64_t far_sel(uint64_t sel, uint64_t call)
{
    struct __attribute__((packed)) {
        uint32_t off;
        uint16_t sel;
    } fp = { 0, (uint16_t)sel };
    uint64_t r = 0;
    __asm__ volatile("lea 1f(%%rip), %%rax; mov %%eax, %1\n\t"
                     "test %2, %2; jnz 2f\n\t"
                     "ljmpl *%1\n\t"
                     "2: lcalll *%1\n\t"
                     "1: mov $1, %0"
                     : "+r"(r), "+m"(fp)
                     : "r"(call)
                     : "rax", "memory");
    return r;
}
CASE(far_jmp) { return far_sel(a, 0); }
CASE(far_call) { return far_sel(a, 1); }

/* instructions */
CASE(do_sti)
{
    __asm__ volatile("sti; nop" ::: "memory");
    return rflags() & (1 << 9);
}
CASE(do_invlpg)
{
    __asm__ volatile("invlpg (%0)" : : "r"(&code_target) : "memory");
    return code_target(2);
}
CASE(do_wbinvd)
{
    __asm__ volatile("wbinvd" ::: "memory");
    return 1;
}
CASE(do_xsetbv)
{
    __asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)a), "d"((uint32_t)(a >> 32)) : "memory");
    return 1;
}
/* CR4.OSXSAVE on, then XCR0 = a; returns xgetbv */
CASE(osxsave_xsetbv)
{
    uint32_t lo, hi;
    wr_cr4(rd_cr4() | CR4_OSXSAVE);
    __asm__ volatile("xsetbv" : : "c"(0), "a"((uint32_t)a), "d"((uint32_t)(a >> 32)) : "memory");
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
/* CR4.OSXSAVE on if a, then xgetbv: the XCR0 the guest runs with (no xsetbv) */
CASE(xcr0_read)
{
    uint32_t lo, hi;
    if (a) wr_cr4(rd_cr4() | CR4_OSXSAVE);
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
/* PKRU (SDM Vol. 3A §4.6.2): CR4.PKE on if a & 1, wrpkru b if a & 2; returns rdpkru */
CASE(pkru)
{
    uint32_t v, d;
    if (a & 1) wr_cr4(rd_cr4() | CR4_PKE);
    if (a & 2) __asm__ volatile("wrpkru" : : "a"((uint32_t)b), "c"(0), "d"(0) : "memory");
    __asm__ volatile("rdpkru" : "=a"(v), "=d"(d) : "c"(0));
    return v;
}
CASE(do_rdpmc)
{
    uint32_t lo, hi;
    __asm__ volatile("rdpmc" : "=a"(lo), "=d"(hi) : "c"((uint32_t)a));
    return (uint64_t)hi << 32 | lo;
}
/* two rdtsc (a = 0) or rdtscp (a = 1) readings: returns the second minus the first */
CASE(do_rdtsc)
{
    uint32_t lo1, hi1, lo2, hi2, aux;
    if (a) {
        __asm__ volatile("rdtscp" : "=a"(lo1), "=d"(hi1), "=c"(aux));
        __asm__ volatile("rdtscp" : "=a"(lo2), "=d"(hi2), "=c"(aux));
    } else {
        __asm__ volatile("rdtsc" : "=a"(lo1), "=d"(hi1));
        __asm__ volatile("rdtsc" : "=a"(lo2), "=d"(hi2));
    }
    return ((uint64_t)hi2 << 32 | lo2) - ((uint64_t)hi1 << 32 | lo1);
}
CASE(do_syscall)
{
    uint64_t rax = a;
    __asm__ volatile("syscall" : "+a"(rax) : : "rcx", "r11", "memory");
    return rax;
}
CASE(do_sysenter)
{
    __asm__ volatile("sysenter" ::: "rcx", "r11", "memory");
    return 1;
}
CASE(do_sysret)
{
    __asm__ volatile("lea 1f(%%rip), %%rcx; mov $2, %%r11; sysretq; 1:" ::: "rcx", "r11", "memory");
    return 1;
}
CASE(do_vmcall)
{
    uint64_t rax = a;
    __asm__ volatile("vmcall" : "+a"(rax) : : "memory");
    return rax;
}
CASE(do_vmmcall)
{
    uint64_t rax = a;
    __asm__ volatile("vmmcall" : "+a"(rax) : : "memory");
    return rax;
}
CASE(monitor_mwait)
{
    __asm__ volatile("monitor" : : "a"(scratch), "c"(0), "d"(0) : "memory");
    __asm__ volatile("mwait" : : "a"(0), "c"(0) : "memory");
    return 1;
}
CASE(do_swapgs)
{
    __asm__ volatile("swapgs; swapgs" ::: "memory");
    return 1;
}
CASE(do_clts)
{
    __asm__ volatile("clts" ::: "memory");
    return rd_cr0();
}
/* rflags |= a (then read back): IOPL, AC. The arithmetic flags (CF PF AF ZF SF OF) are
 * whatever the compiled code left, so they are masked out of the result. */
CASE(popf_set)
{
    uint64_t f;
    set_rflags(rflags() | a);
    f = rflags();
    set_rflags(f & ~a);
    return f & ~(uint64_t)0x8d5;
}
CASE(trap_flag)
{
    set_rflags(rflags() | RFLAGS_TF);
    __asm__ volatile("nop; nop");
    set_rflags(rflags() & ~RFLAGS_TF);
    return 1;
}
/* AC on, then a misaligned read */
CASE(align_check)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(scratch + 3);
    uint64_t v;
    OPAQUE(p);
    set_rflags(rflags() | RFLAGS_AC);
    v = *p;
    set_rflags(rflags() & ~RFLAGS_AC);
    return v + 1;
}
/* an execute breakpoint in DR0/DR7 on code_target, then a call to it */
CASE(dr_break)
{
    uint64_t t = (uint64_t)(uintptr_t)&code_target;
    __asm__ volatile("mov %0, %%dr0" : : "r"(t));
    __asm__ volatile("mov %0, %%dr7" : : "r"(1ull));
    return code_target(5);
}
/* DR0 = a and DR7 = b, no breakpoint hit */
CASE(dr_set)
{
    __asm__ volatile("mov %0, %%dr0" : : "r"(a));
    __asm__ volatile("mov %0, %%dr7" : : "r"(b));
    return 1;
}
/* CPUID leaf a, subleaf b (low 32 bits): returns ecx, or the register b >> 32 names
 * (1 eax, 2 ebx, 3 edx) */
CASE(do_cpuid)
{
    uint32_t eax = (uint32_t)a, ebx, ecx = (uint32_t)b, edx;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    switch (b >> 32) {
    case 1: return eax;
    case 2: return ebx;
    case 3: return edx;
    default: return ecx;
    }
}
/* xgetbv(a) without touching CR4 */
CASE(do_xgetbv)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"((uint32_t)a));
    return (uint64_t)hi << 32 | lo;
}
/* KERNEL_GS_BASE without rdmsr: swapgs, read GS_BASE, swapgs back */
CASE(swapgs_kgs)
{
    uint64_t v;
    __asm__ volatile("swapgs" ::: "memory");
    v = rdmsr(MSR_GS_BASE);
    __asm__ volatile("swapgs" ::: "memory");
    return v;
}
/* DR1-3 = a, a + 8, a + 16, DR6 = 0, DR7 = b: no breakpoint hit */
CASE(dr_all)
{
    __asm__ volatile("mov %0, %%dr1" : : "r"(a));
    __asm__ volatile("mov %0, %%dr2" : : "r"(a + 8));
    __asm__ volatile("mov %0, %%dr3" : : "r"(a + 16));
    __asm__ volatile("mov %0, %%dr6" : : "r"(0ull));
    __asm__ volatile("mov %0, %%dr7" : : "r"(b));
    return 1;
}
/* CR4.FSGSBASE on, then wrfsbase/wrgsbase a: returns rdgsbase ^ rdfsbase ^ a (a when both took) */
CASE(fsgsbase)
{
    uint64_t f, g;
    wr_cr4(rd_cr4() | (1ull << 16));
    __asm__ volatile("wrfsbase %0; wrgsbase %0" : : "r"(a) : "memory");
    __asm__ volatile("rdfsbase %0; rdgsbase %1" : "=r"(f), "=r"(g));
    return f ^ g ^ a;
}
/* loads selector a into the segment registers b names (1 ds, 2 es, 4 fs, 8 gs): returns
 * ds | es << 16 | fs << 32 | gs << 48 read back */
CASE(load_seg)
{
    uint16_t v = (uint16_t)a;
    if (b & 1) __asm__ volatile("mov %0, %%ds" : : "r"(v) : "memory");
    if (b & 2) __asm__ volatile("mov %0, %%es" : : "r"(v) : "memory");
    if (b & 4) __asm__ volatile("mov %0, %%fs" : : "r"(v) : "memory");
    if (b & 8) __asm__ volatile("mov %0, %%gs" : : "r"(v) : "memory");
    return (uint64_t)sel(2) | (uint64_t)sel(3) << 16 | (uint64_t)sel(4) << 32 | (uint64_t)sel(5) << 48;
}
CASE(int_n) /* int $0x1b: the PVM guest kernel's hypercall vector */
{
    uint64_t rax = a;
    __asm__ volatile("int $0x1b" : "+a"(rax) : : "memory");
    return rax;
}

/* Two pages with different contents, for PtRemap/ReadPageA. */
static uint64_t page_a[512] __attribute__((aligned(4096))) = { 0xaaaaaaaaaaaaaaaaull };
static uint64_t page_b[512] __attribute__((aligned(4096))) = { 0xbbbbbbbbbbbbbbbbull };
/* Rewrites the host's own page tables (at HL_PT_GPA, which its mapping does not reach)
 * through page tables of the guest's own: page_a's leaf entry then points at page_b. Back on
 * the host's tables (a mov to CR3 flushes the TLB), returns the first word page_a shows. */
CASE(pt_remap)
{
    uint64_t va = (uint64_t)(uintptr_t)page_a, *t = (uint64_t *)(uintptr_t)HL_PT_GPA;
    wr_cr3(build_tables(NULL));
    for (int level = 3; level > 0; level--)
        t = (uint64_t *)(uintptr_t)(t[(va >> (12 + 9 * level)) & 511] & 0xffffffffff000ull);
    uint64_t *leaf = &t[(va >> 12) & 511];
    *leaf = (*leaf & ~0xffffffffff000ull) | (uint64_t)(uintptr_t)page_b;
    wr_cr3(HL_PT_GPA);
    return *(volatile uint64_t *)page_a;
}
CASE(read_page_a) { return *(volatile uint64_t *)page_a; }
/* in from port a: the host refuses it; the instruction stays pending in KVM (it waits for
 * data) until the host completes it */
CASE(port_in)
{
    uint32_t v;
    __asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"((uint16_t)a) : "memory");
    return v;
}

typedef uint64_t (*case_fn)(uint64_t, uint64_t);
#define ENTRY(name, fn)                                              \
    static int w_##fn(const hl_value *args, int argc, hl_value *ret) \
    {                                                                \
        *ret = hl_u64(fn(args[0].v.u64, args[1].v.u64));             \
        return 0;                                                    \
    }
#define CASES(X)                               \
    X("Rdmsr", rd)                             \
    X("WrRd", wr_rd)                           \
    X("EferSame", efer_same)                   \
    X("EferClear", efer_clear)                 \
    X("SegBase", seg_base)                     \
    X("WrSpin", wr_spin)                       \
    X("TscAux", tsc_aux)                       \
    X("KvmClock", kvmclock)                    \
    X("Cr0NoWpWriteCode", cr0_nowp_write_code) \
    X("Cr0", cr0_set)                          \
    X("Cr4", cr4_set)                          \
    X("Cr3WriteCode", cr3_write_code)          \
    X("Cr3StosCode", cr3_stos_code)            \
    X("Cr3Mmio", cr3_mmio)                     \
    X("Cr3Keep", cr3_keep)                     \
    X("Cr3Zero", cr3_zero)                     \
    X("Cr3Raw", cr3_raw)                       \
    X("Cr3RoPd", cr3_ro_pd)                    \
    X("LidtInt3", lidt_int3)                   \
    X("LgdtReload", lgdt_reload)               \
    X("LgdtOnly", lgdt_only)                   \
    X("Sgdt", do_sgdt)                         \
    X("Smsw", do_smsw)                         \
    X("Ltr", do_ltr)                           \
    X("ReadCs", read_cs)                       \
    X("FarJmp", far_jmp)                       \
    X("FarCall", far_call)                     \
    X("FarRet", far_ret)                       \
    X("Sti", do_sti)                           \
    X("Invlpg", do_invlpg)                     \
    X("Wbinvd", do_wbinvd)                     \
    X("Xsetbv", do_xsetbv)                     \
    X("OsxsaveXsetbv", osxsave_xsetbv)         \
    X("Rdpmc", do_rdpmc)                       \
    X("Rdtsc", do_rdtsc)                       \
    X("Syscall", do_syscall)                   \
    X("Sysenter", do_sysenter)                 \
    X("Sysret", do_sysret)                     \
    X("Vmcall", do_vmcall)                     \
    X("Vmmcall", do_vmmcall)                   \
    X("MonitorMwait", monitor_mwait)           \
    X("Swapgs", do_swapgs)                     \
    X("Clts", do_clts)                         \
    X("Popf", popf_set)                        \
    X("TrapFlag", trap_flag)                   \
    X("AlignCheck", align_check)               \
    X("DrBreak", dr_break)                     \
    X("DrSet", dr_set)                         \
    X("Int1b", int_n)                          \
    X("Cpuid", do_cpuid)                       \
    X("Xgetbv", do_xgetbv)                     \
    X("Xcr0", xcr0_read)                       \
    X("Pkru", pkru)                            \
    X("SwapgsKgs", swapgs_kgs)                 \
    X("DrAll", dr_all)                         \
    X("FsGsBase", fsgsbase)                    \
    X("LoadSeg", load_seg)                     \
    X("PtRemap", pt_remap)                     \
    X("ReadPageA", read_page_a)                \
    X("PortIn", port_in)
CASES(ENTRY)
#define REG(name, fn) hl_guest_register(name, w_##fn, HL_U64, 2, HL_U64, HL_U64);

void hl_guest_main(void)
{
    hl_guest_register("Ping", ping, HL_I32, 1, HL_I32);
    hl_guest_register("CodeSum", code_sum, HL_U64, 0);
    hl_guest_register("Addr", addr, HL_U64, 1, HL_STRING);
    hl_guest_register("Spin", spin, HL_U64, 1, HL_U64);
    hl_guest_register("State", state, HL_STRING, 0);
    CASES(REG)
}
