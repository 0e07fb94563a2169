/* platform.h - what legitimately differs between the machines the tests run on, detected at
 * run time so that a test asserts the exact outcome of the platform it finds (never skips):
 * the CPU vendor (the host's own CPUID), which KVM provides /dev/kvm (kvm_pvm, or hardware
 * kvm_amd / kvm_intel), whether the guest's CPUID comes from the table the library sets
 * with KVM_SET_CPUID2 or from the CPU itself (docs/platforms.md: kvm_pvm -v1045 on AMD ignores the
 * table; the guest runs at hardware CPL3, where AMD cannot make CPUID trap), and on hardware
 * KVM whether it uses nested paging or shadow paging, whether the host is itself QEMU's
 * software emulation (hwkvm, docs/platforms.md) and whether SVM has decode assists. */
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
    char vendor[13]; /* CPUID leaf 0: "GenuineIntel", "AuthenticAMD", ... */
    char brand[49];  /* CPUID leaves 0x80000002..4 as the host reads them */
    tp_kvm kvm;
    char release[65];    /* uname -r (names the kvm_pvm build) */
    bool ospke;          /* the host runs with CR4.PKE (CPUID.7.0:ECX[4] OSPKE) */
    uint64_t xcr0;       /* the host's XCR0 (0 when the host has no CR4.OSXSAVE) */
    bool tdp;            /* hardware KVM with nested paging (kvm_amd npt, kvm_intel ept); else shadow paging */
    bool tcg;            /* the host is QEMU's software emulation (hypervisor leaf "TCGTCGTCGTCG"), as under hwkvm */
    bool decode_assists; /* AMD SVM decode assists (CPUID 0x8000000A EDX[7]): KVM reads the register of a
                          * mov to a control register from the VMCB instead of emulating the instruction */
} test_platform;

/* A kvm_amd / kvm_intel boolean module parameter ("Y" / "1"), false if unreadable. */
static inline bool test_kvm_param(const char *module, const char *param)
{
    char path[128], v[4] = "";
    FILE *f;
    snprintf(path, sizeof path, "/sys/module/%s/parameters/%s", module, param);
    if (!(f = fopen(path, "r"))) return false;
    if (!fgets(v, sizeof v, f)) v[0] = 0;
    fclose(f);
    return v[0] == 'Y' || v[0] == '1';
}

/* CPUID leaf, subleaf sub, executed by this (host) process: eax ebx ecx edx in r. */
static inline void test_host_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static inline test_platform test_platform_get(void)
{
    test_platform p;
    uint32_t r[4], ext;
    struct utsname u;
    memset(&p, 0, sizeof p);
    test_host_cpuid(0, 0, r);
    memcpy(p.vendor, &r[1], 4), memcpy(p.vendor + 4, &r[3], 4), memcpy(p.vendor + 8, &r[2], 4);
    /* Hygon is AMD's design (SVM, vmmcall) */
    p.cpu = !strcmp(p.vendor, "GenuineIntel")                                        ? TP_CPU_INTEL
            : !strcmp(p.vendor, "AuthenticAMD") || !strcmp(p.vendor, "HygonGenuine") ? TP_CPU_AMD
                                                                                     : TP_CPU_OTHER;
    if (r[0] >= 7) {
        test_host_cpuid(7, 0, r);
        p.ospke = (r[2] >> 4) & 1;
    }
    test_host_cpuid(1, 0, r);
    if ((r[2] >> 31) & 1) { /* the host is a guest itself: its hypervisor's leaf */
        uint32_t h[4];
        char sig[13] = "";
        test_host_cpuid(0x40000000, 0, h);
        memcpy(sig, &h[1], 4), memcpy(sig + 4, &h[2], 4), memcpy(sig + 8, &h[3], 4);
        p.tcg = !strcmp(sig, "TCGTCGTCGTCG");
    }
    if ((r[2] >> 27) & 1) { /* OSXSAVE: xgetbv is usable */
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        p.xcr0 = (uint64_t)hi << 32 | lo;
    }
    test_host_cpuid(0x80000000, 0, r);
    ext = r[0];
    if (ext >= 0x80000004)
        for (uint32_t i = 0; i < 3; i++) {
            test_host_cpuid(0x80000002 + i, 0, r);
            memcpy(p.brand + 16 * i, r, 16);
        }
    if (ext >= 0x8000000a && p.cpu == TP_CPU_AMD) {
        test_host_cpuid(0x8000000a, 0, r);
        p.decode_assists = (r[3] >> 7) & 1;
    }
    /* /dev/kvm is kvm_pvm's when that module is loaded (as the library decides, vm_kvm.c) */
    p.kvm = access("/sys/module/kvm_pvm", F_OK) == 0     ? TP_KVM_PVM
            : access("/sys/module/kvm_amd", F_OK) == 0   ? TP_KVM_AMD
            : access("/sys/module/kvm_intel", F_OK) == 0 ? TP_KVM_INTEL
                                                         : TP_KVM_NONE;
    p.tdp = p.kvm == TP_KVM_AMD     ? test_kvm_param("kvm_amd", "npt")
            : p.kvm == TP_KVM_INTEL ? test_kvm_param("kvm_intel", "ept")
                                    : false;
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
    bool hw = p->kvm == TP_KVM_AMD || p->kvm == TP_KVM_INTEL;
    printf("  platform: %s \"%s\"%s, /dev/kvm from %s%s%s, kernel %s; guest CPUID: %s\n", p->vendor, p->brand,
           p->tcg ? " (QEMU's software emulation)" : "", kvm[p->kvm],
           !hw      ? ""
           : p->tdp ? " with nested paging"
                    : " with shadow paging",
           p->kvm == TP_KVM_AMD ? (p->decode_assists ? ", decode assists" : ", no decode assists") : "", p->release,
           cpuid[mode]);
}

#endif
