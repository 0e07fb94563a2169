/* x86_64.h - the x86-64 architecture's bits the host names: control registers, EFER, page
 * table entries, page-fault error codes, CPUID feature bits and the exception vectors.
 * Intel SDM Vol. 3A §2.5 (CR0, CR4), §2.2.1 (EFER), §4.5 (4-level paging), §4.7 (page-fault
 * error code), §6.3.1 (exceptions); Vol. 2A CPUID. */
#ifndef HL_X86_64_H
#define HL_X86_64_H

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_AM (1ull << 18)
#define X86_CR0_PG (1ull << 31)

#define X86_CR4_PAE (1ull << 5)
#define X86_CR4_OSFXSR (1ull << 9)
#define X86_CR4_OSXMMEXCPT (1ull << 10)
#define X86_CR4_SMEP (1ull << 20)
#define X86_CR4_SMAP (1ull << 21)

#define X86_EFER_SCE (1ull << 0)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define X86_EFER_NXE (1ull << 11)

/* Reset and default values: RFLAGS bit 1 is always set (Vol. 1 §3.4.3); the debug
 * registers' reset values (Vol. 3B §18.2); the x87 control word after FINIT (Vol. 1 §8.1.5);
 * MXCSR with every SSE exception masked (Vol. 1 §10.2.3); rip after a reset (Vol. 3A §9.1.4,
 * the low 16 bits of 0xfffffff0 as KVM shows a reset vCPU). */
#define X86_RFLAGS_FIXED 0x2ull
#define X86_DR6_INIT 0xffff0ff0ull
#define X86_DR7_INIT 0x400ull
#define X86_FCW_INIT 0x37f
#define X86_MXCSR_INIT 0x1f80
#define X86_RESET_RIP 0xfff0ull

/* Page-table entry bits (4-level paging, SDM Vol. 3A §4.5 tables 4-14 to 4-19). */
#define X86_PTE_P (1ull << 0)
#define X86_PTE_W (1ull << 1)
#define X86_PTE_U (1ull << 2)
#define X86_PTE_A (1ull << 5)
#define X86_PTE_D (1ull << 6)
#define X86_PTE_PS (1ull << 7)
#define X86_PTE_NX (1ull << 63)
#define X86_PTE_ADDR 0x000ffffffffff000ull

/* Page-fault error code (SDM Vol. 3A §4.7). */
#define X86_PF_P (1u << 0)
#define X86_PF_W (1u << 1)
#define X86_PF_U (1u << 2)
#define X86_PF_I (1u << 4)

/* CPUID feature bits the library hides from guests. */
#define X86_CPUID1_ECX_VMX (1u << 5)
#define X86_CPUID1_ECX_XSAVE (1u << 26)
#define X86_CPUID1_ECX_OSXSAVE (1u << 27)
#define X86_CPUID1_ECX_AVX (1u << 28)
#define X86_CPUID1_ECX_HYPERVISOR (1u << 31)
#define X86_CPUID7_ECX_PKU (1u << 3)
#define X86_CPUID7_ECX_OSPKE (1u << 4)
#define X86_CPUID80000001_ECX_SVM (1u << 2)

/* Exception vectors (SDM Vol. 3A §6.3.1, table 6-1). */
enum {
    X86_EXC_DE = 0,
    X86_EXC_DB = 1,
    X86_EXC_NMI = 2,
    X86_EXC_BP = 3,
    X86_EXC_OF = 4,
    X86_EXC_BR = 5,
    X86_EXC_UD = 6,
    X86_EXC_NM = 7,
    X86_EXC_DF = 8,
    X86_EXC_TS = 10,
    X86_EXC_NP = 11,
    X86_EXC_SS = 12,
    X86_EXC_GP = 13,
    X86_EXC_PF = 14,
    X86_EXC_MF = 16,
    X86_EXC_AC = 17,
    X86_EXC_MC = 18,
    X86_EXC_XM = 19,
    X86_EXC_VE = 20,
    X86_EXC_CP = 21,
};

/* The one exception table: each vector's name in messages and the signal a core dump of it
 * reports (as Linux would deliver it to a process). */
typedef struct x86_exception {
    const char *name;
    int signal;
} x86_exception;
/* The entry for vector (v) (0..31); vectors without a name get "exception" and SIGSEGV. */
const x86_exception *x86_exception_info(int v);

#endif
