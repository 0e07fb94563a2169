/* test_caps.c - the KVM capability table (src/host/vm_kvm.c): a KVM that lacks a required
 * capability is refused at creation naming it; the optional one only turns its feature off.
 * The answers come from a table here instead of KVM_CHECK_EXTENSION. */
#include <linux/kvm.h>
#include <string.h>

#include "check.h"
#include "internal.h"

struct answers {
    int missing;   /* the capability answered with 0, or -1 for none */
    int sync_regs; /* the KVM_CAP_SYNC_REGS answer */
    int manual;    /* the KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 answer */
};

static int answer(void *ctx, int cap)
{
    const struct answers *a = ctx;
    if (cap == a->missing) return 0;
    if (cap == KVM_CAP_SYNC_REGS) return a->sync_regs;
    if (cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) return a->manual;
    return 1;
}

static void expect_missing(int cap, const char *name, const char *use)
{
    struct answers a = { cap, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS, 3 };
    char err[256], want[256];
    bool manual = true;
    snprintf(want, sizeof want, "this KVM lacks %s (needed for %s)", name, use);
    CHECK(!hl_kvm_caps_check(answer, &a, &manual, err, sizeof err));
    CHECK_STR(err, want);
}

int main(void)
{
    struct answers all = { -1, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS, 3 };
    char err[256] = "x";
    bool manual = false;

    CHECK(hl_kvm_caps_check(answer, &all, &manual, err, sizeof err));
    CHECK_STR(err, "");
    CHECK(manual);

    expect_missing(KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest memory from the host process");
    expect_missing(KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM", "read-only memory for the guest's code and data");
    expect_missing(KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS", "registers in kvm_run instead of ioctls");
    expect_missing(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "interrupting a running guest");
    expect_missing(KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "the guest's CPUID table");
    expect_missing(KVM_CAP_X86_MSR_FILTER, "KVM_CAP_X86_MSR_FILTER", "refusing the guest MSRs that survive a restore");
    expect_missing(KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS", "resetting debug registers at restore");
    expect_missing(KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", "naming a guest fault on kvm_pvm");

    /* sync regs without the segment registers is as good as none */
    {
        struct answers a = all;
        a.sync_regs = KVM_SYNC_X86_REGS;
        CHECK(!hl_kvm_caps_check(answer, &a, &manual, err, sizeof err));
        CHECK_STR(err, "this KVM lacks KVM_CAP_SYNC_REGS (needed for registers in kvm_run instead of ioctls)");
    }
    /* the statistics file is optional: without it every restore takes the long way */
    {
        struct answers a = all;
        a.missing = KVM_CAP_BINARY_STATS_FD;
        CHECK(hl_kvm_caps_check(answer, &a, &manual, err, sizeof err));
        CHECK_STR(err, "");
    }
    /* manual dirty-log protection is optional: off, and no error */
    {
        struct answers a = all;
        a.manual = 0;
        manual = true;
        CHECK(hl_kvm_caps_check(answer, &a, &manual, err, sizeof err));
        CHECK_STR(err, "");
        CHECK(!manual);
        a.manual = 2; /* KVM_DIRTY_LOG_INITIALLY_SET alone: not what we enable */
        CHECK(hl_kvm_caps_check(answer, &a, &manual, err, sizeof err));
        CHECK(!manual);
    }
    /* the first missing one is named */
    {
        struct answers a = all;
        a.missing = KVM_CAP_DEBUGREGS;
        a.sync_regs = 0;
        CHECK(!hl_kvm_caps_check(answer, &a, &manual, err, sizeof err));
        CHECK_STR(err, "this KVM lacks KVM_CAP_SYNC_REGS (needed for registers in kvm_run instead of ioctls)");
    }
    return check_exit("test_caps");
}
