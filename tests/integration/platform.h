/* platform.h - what legitimately differs between the machines the tests run on, detected at
 * run time so that a test asserts the exact outcome of the platform it finds (never skips):
 * the CPU vendor (the host's own CPUID), which KVM provides /dev/kvm (kvm_pvm, or hardware
 * kvm_amd / kvm_intel), and whether the guest's CPUID comes from the table the library sets
 * with KVM_SET_CPUID2 or from the CPU itself (PLATFORM.md: kvm_pvm -v1045 on AMD ignores the
 * table; the guest runs at hardware CPL3, where AMD cannot make CPUID trap). */
#ifndef HL_PLATFORM_H
#define HL_PLATFORM_H

#include <cpuid.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

typedef enum { TP_CPU_OTHER, TP_CPU_INTEL, TP_CPU_AMD } tp_cpu;
typedef enum { TP_KVM_NONE, TP_KVM_PVM, TP_KVM_AMD, TP_KVM_INTEL } tp_kvm;
typedef enum { TP_CPUID_UNKNOWN, TP_CPUID_TABLE, TP_CPUID_NATIVE } tp_cpuid;

typedef struct test_platform {
    tp_cpu cpu;
    char vendor[13];   /* CPUID leaf 0: "GenuineIntel", "AuthenticAMD", ... */
    char brand[49];    /* CPUID leaves 0x80000002..4 as the host reads them */
    tp_kvm kvm;
    char release[65];  /* uname -r (names the kvm_pvm build) */
    bool ospke;        /* the host runs with CR4.PKE (CPUID.7.0:ECX[4] OSPKE) */
    uint64_t xcr0;     /* the host's XCR0 (0 when the host has no CR4.OSXSAVE) */
} test_platform;

/* CPUID leaf, subleaf sub, executed by this (host) process: eax ebx ecx edx in r. */
static inline void test_host_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static inline test_platform test_platform_get(void)
{
    test_platform p;
    uint32_t r[4];
    struct utsname u;
    memset(&p, 0, sizeof p);
    test_host_cpuid(0, 0, r);
    memcpy(p.vendor, &r[1], 4), memcpy(p.vendor + 4, &r[3], 4), memcpy(p.vendor + 8, &r[2], 4);
    /* Hygon is AMD's design (SVM, vmmcall) */
    p.cpu = !strcmp(p.vendor, "GenuineIntel") ? TP_CPU_INTEL
            : !strcmp(p.vendor, "AuthenticAMD") || !strcmp(p.vendor, "HygonGenuine") ? TP_CPU_AMD
                                                                                      : TP_CPU_OTHER;
    if (r[0] >= 7) {
        test_host_cpuid(7, 0, r);
        p.ospke = (r[2] >> 4) & 1;
    }
    test_host_cpuid(1, 0, r);
    if ((r[2] >> 27) & 1) { /* OSXSAVE: xgetbv is usable */
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        p.xcr0 = (uint64_t)hi << 32 | lo;
    }
    test_host_cpuid(0x80000000, 0, r);
    if (r[0] >= 0x80000004)
        for (uint32_t i = 0; i < 3; i++) {
            test_host_cpuid(0x80000002 + i, 0, r);
            memcpy(p.brand + 16 * i, r, 16);
        }
    /* /dev/kvm is kvm_pvm's when that module is loaded (as the library decides, vm_kvm.c) */
    p.kvm = access("/sys/module/kvm_pvm", F_OK) == 0     ? TP_KVM_PVM
            : access("/sys/module/kvm_amd", F_OK) == 0   ? TP_KVM_AMD
            : access("/sys/module/kvm_intel", F_OK) == 0 ? TP_KVM_INTEL
                                                         : TP_KVM_NONE;
    if (uname(&u) == 0) snprintf(p.release, sizeof p.release, "%s", u.release);
    return p;
}

/* Where the guest's CPUID comes from, from what the guest itself saw at leaf 0x80000002
 * (eax ebx ecx edx in guest): the library's table replaces the brand string with
 * "hyperlight virtual CPU" (vm_kvm.c filter_cpuid); a guest whose CPUID is not emulated sees
 * the host's own. Neither is TP_CPUID_UNKNOWN, which a test must fail. */
static inline tp_cpuid test_cpuid_mode(const test_platform *p, const uint32_t guest[4])
{
    static const char table[16] = "hyperlight virtu";
    if (memcmp(guest, table, 16) == 0) return TP_CPUID_TABLE;
    if (memcmp(guest, p->brand, 16) == 0) return TP_CPUID_NATIVE;
    return TP_CPUID_UNKNOWN;
}

/* One line naming the platform and the CPUID mode, for the test's report. */
static inline void test_platform_print(const test_platform *p, tp_cpuid mode)
{
    static const char *const kvm[] = { "no KVM module found", "kvm_pvm", "kvm_amd (hardware)", "kvm_intel (hardware)" };
    static const char *const cpuid[] = { "neither the library's table nor the host's (unknown)",
                                         "the library's KVM_SET_CPUID2 table (honoured)",
                                         "the host's own (KVM_SET_CPUID2 table ignored)" };
    printf("  platform: %s \"%s\", /dev/kvm from %s, kernel %s; guest CPUID: %s\n", p->vendor, p->brand,
           kvm[p->kvm], p->release, cpuid[mode]);
}

#endif
