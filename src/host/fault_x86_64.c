/* fault_x86_64.c - naming a guest's CPU fault from its vector, registers and the layout.
 *
 * The text says what happened in the guest's terms: a NULL pointer write, a stack overflow
 * (the guard page), a write to code, a divide error at a DIV. On kvm_pvm the facts come from
 * KVM after a triple fault (every guest exception ends there); on hardware KVM from the
 * guest's own exception handler (HL_PORT_FAULT). */
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "fault.h"
#include "x86_64.h"

uint64_t hl_guest_rip(hl_sandbox *sb)
{
    hl_vm_state vs;
    return hl_vm_state_get(sb->vm, &vs) == HL_OK ? vs.rip : 0;
}


/* The exception table (x86_64.h): names for messages, and the signal a process would have
 * got for each vector (what gdb reports from a core dump). SDM Vol. 3A §6.3.1 table 6-1. */
static const x86_exception exceptions[32] = {
    [X86_EXC_DE] = { "divide error", SIGFPE },
    [X86_EXC_DB] = { "debug exception (single step or breakpoint)", SIGTRAP },
    [X86_EXC_NMI] = { "non-maskable interrupt", SIGSEGV },
    [X86_EXC_BP] = { "breakpoint", SIGTRAP },
    [X86_EXC_OF] = { "overflow (into)", SIGSEGV },
    [X86_EXC_BR] = { "bound range exceeded", SIGSEGV },
    [X86_EXC_UD] = { "invalid instruction", SIGILL },
    [X86_EXC_NM] = { "device not available (x87/SSE disabled)", SIGFPE },
    [X86_EXC_DF] = { "double fault", SIGSEGV },
    [X86_EXC_TS] = { "invalid TSS", SIGSEGV },
    [X86_EXC_NP] = { "segment not present", SIGSEGV },
    [X86_EXC_SS] = { "stack-segment fault", SIGBUS },
    [X86_EXC_GP] = { "general protection fault", SIGSEGV },
    [X86_EXC_PF] = { "page fault", SIGSEGV },
    [X86_EXC_MF] = { "x87 floating-point error", SIGFPE },
    [X86_EXC_AC] = { "alignment check", SIGBUS },
    [X86_EXC_MC] = { "machine check", SIGBUS },
    [X86_EXC_XM] = { "SIMD floating-point exception", SIGFPE },
    [X86_EXC_VE] = { "virtualization exception", SIGSEGV },
    [X86_EXC_CP] = { "control protection exception", SIGSEGV },
};

const x86_exception *x86_exception_info(int v)
{
    static const x86_exception other = { "exception", SIGSEGV };
    return v >= 0 && v < 32 && exceptions[v].name ? &exceptions[v] : &other;
}

/* DIV or IDIV (F6/F7 with reg field 6 or 7), after optional prefixes (SDM Vol. 2A). */
static bool is_div(const uint8_t *p)
{
    int i = 0;
    while (i < 3 && (p[i] == 0x66 || p[i] == 0x67 || (p[i] & 0xf0) == 0x40)) i++;
    return (p[i] == 0xf6 || p[i] == 0xf7) && ((p[i + 1] >> 3) & 7) >= 6;
}

/* A page fault at cr2 with error code err (SDM Vol. 3A §4.7): name it from the layout. */
static hl_status describe_page_fault(hl_sandbox *sb, const hl_vm_state *vs, uint32_t err)
{
    const hl_region *d = hl_layout_find(&sb->lo, vs->cr2);
    unsigned long long a = vs->cr2, ip = vs->rip;
    const char *what = err & X86_PF_I ? "execution" : err & X86_PF_W ? "write" : "read";
    if (err & X86_PF_U) /* U/S: the access came from ring 3, where a guest has no business */
        return hl_fail(sb, HL_ERR_FAULT,
                       "guest fault: %s at 0x%llx in user mode (error code 0x%x): the guest switched to ring 3 "
                       "(sysret, iret or a far return), where it cannot run",
                       what, a, err);
    if (err & X86_PF_I) {
        if (d && (d->perm & HL_PERM_X) && vs->cr3 == HL_PT_GPA && !(vs->cr4 & (X86_CR4_SMEP | X86_CR4_SMAP)))
            return hl_fail(sb, HL_ERR_FAULT, "guest fault: instruction fetch fault (error code 0x%x) at 0x%llx (%s)",
                           err, a, hl_region_name(d->kind));
        if (d && (d->perm & HL_PERM_X))
            return hl_fail(sb, HL_ERR_FAULT,
                           "guest fault: instruction fetch fault (error code 0x%x) at 0x%llx (%s) with the guest's own "
                           "paging setup (cr3 0x%llx, cr4 0x%llx%s)",
                           err, a, hl_region_name(d->kind), (unsigned long long)vs->cr3, (unsigned long long)vs->cr4,
                           vs->cr4 & X86_CR4_SMEP ? ": SMEP forbids supervisor code in user pages" : "");
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: execution of non-executable memory at 0x%llx (%s)", a,
                       d ? hl_region_name(d->kind) : "unmapped");
    }
    if (d && d->kind == HL_RGN_GUARD)
        return hl_fail(sb, HL_ERR_FAULT,
                       "guest fault: stack overflow (%s of the stack guard page at 0x%llx), rip 0x%llx", what, a, ip);
    if (!d || !d->perm)
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: %s %s at 0x%llx, rip 0x%llx",
                       a < HL_PAGE_SIZE ? "NULL pointer" : "unmapped memory", what, a, ip);
    if ((err & X86_PF_W) && !(d->perm & HL_PERM_W))
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: write to read-only memory (%s) at 0x%llx, rip 0x%llx",
                       hl_region_name(d->kind), a, ip);
    return hl_fail(sb, HL_ERR_FAULT, "guest fault: page fault (%s, error code 0x%x) at 0x%llx (%s), rip 0x%llx", what,
                   err, a, hl_region_name(d->kind), ip);
}

/* Names the exception vs->exception (-1: none known) from the layout and the faulting
 * instruction. On kvm_pvm vs comes from KVM after a triple fault (every guest exception ends
 * there); on hardware KVM from the guest's own report (HL_PORT_FAULT), and the vector is
 * always known, or from a triple fault KVM raised itself and kept the registers of (shadow
 * paging: kvm_amd npt=0 sees every page fault, also one during a double fault's delivery). */
static hl_status describe_exception(hl_sandbox *sb, const hl_vm_state *vs, bool reported)
{
    const hl_region *r;
    unsigned long long ip = vs->rip;
    switch (vs->exception) {
    case X86_EXC_PF: return describe_page_fault(sb, vs, vs->error_code);
    case X86_EXC_DE: {
        /* vector 0 is also what KVM leaves when it raised the triple fault itself (e.g. the
         * guest loaded a CR3 outside its memory): believe a divide error only at a DIV/IDIV */
        const uint8_t *p = hl_gpa_ro(sb, vs->rip, 5);
        if (p && is_div(p)) return hl_fail(sb, HL_ERR_FAULT, "guest fault: divide error at rip 0x%llx", ip);
        if (reported) return hl_fail(sb, HL_ERR_FAULT, "guest fault: exception 0 (int $0?) at rip 0x%llx", ip);
        break;
    }
    case X86_EXC_BP: /* a trap: rip is past the int3 */
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: breakpoint (int3) at rip 0x%llx", ip - 1);
    case X86_EXC_UD: {
        const uint8_t *p = hl_gpa_ro(sb, vs->rip, 2);
        bool ud2 = p && p[0] == 0x0f && p[1] == 0x0b;
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: invalid instruction%s at rip 0x%llx", ud2 ? " (ud2)" : "", ip);
    }
    case X86_EXC_GP:
        return hl_fail(sb, HL_ERR_FAULT,
                       "guest fault: general protection fault (privileged instruction or non-canonical address) at "
                       "rip 0x%llx",
                       ip);
    case -1: break;
    case X86_EXC_DF: /* from a shutdown: the double fault could not be delivered either, the guest's
             * handler never ran */
        if (!reported) break;
        /* fall through */
    default:
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: %s (exception %d, error code 0x%x) at rip 0x%llx",
                       x86_exception_info(vs->exception)->name, vs->exception, vs->error_code, ip);
    }
    if (vs->cr3 != HL_PT_GPA)
        return hl_fail(sb, HL_ERR_FAULT,
                       "guest fault: triple fault at rip 0x%llx after the guest loaded its own page tables (cr3 0x%llx)",
                       ip, (unsigned long long)vs->cr3);
    /* No exception recorded, or a double fault that could not be delivered: infer from rip and cr2. */
    r = hl_layout_find(&sb->lo, vs->rip);
    if (!r || !(r->perm & HL_PERM_X))
        return hl_fail(sb, HL_ERR_FAULT, "guest fault: execution of non-executable memory at 0x%llx (%s)", ip,
                       r ? hl_region_name(r->kind) : "unmapped");
    if (vs->exception == 8)
        return hl_fail(sb, HL_ERR_FAULT,
                       "guest fault: triple fault at rip 0x%llx: a double fault the guest could not handle (its IDT, GDT "
                       "or exception stacks were unusable; cr2 0x%llx, cr4 0x%llx%s)",
                       ip, (unsigned long long)vs->cr2, (unsigned long long)vs->cr4,
                       vs->cr4 & X86_CR4_SMAP
                           ? ": SMAP forbids supervisor data access to user pages, as every guest page is"
                       : vs->cr4 & X86_CR4_SMEP ? ": SMEP forbids supervisor code in user pages, as every guest page is"
                                                : "");
    return hl_fail(sb, HL_ERR_FAULT, "guest fault: triple fault at rip 0x%llx (cr2 0x%llx)", ip,
                   (unsigned long long)vs->cr2);
}

/* KVM_EXIT_SHUTDOWN, a triple fault. On kvm_pvm every guest exception ends here and KVM still
 * knows which exception could not be delivered. On hardware KVM the guest handles its own
 * exceptions, so only a failure of that handling gets here (a broken IDT, a fault before it
 * was installed, a CR3 outside memory); KVM's AMD code then resets the vCPU, and the
 * registers it shows are the reset state, not the fault's. */
hl_status hl_fault_shutdown(hl_sandbox *sb)
{
    hl_vm_state vs;
    if (hl_vm_state_get(sb->vm, &vs) != HL_OK)
        return hl_fault(sb, 0, "guest fault: triple fault (registers unreadable)");
    if (!hl_vm_is_pvm(sb->vm) && vs.rip == X86_RESET_RIP && !(vs.cr0 & X86_CR0_PE)) {
        hl_fail(sb, HL_ERR_FAULT,
                "guest fault: triple fault (an exception the guest could not handle: its IDT, its exception stacks "
                "or its page tables were unusable); KVM reset the vCPU, so the registers at the fault are lost");
        return hl_fault_nocore(sb, "the vCPU was reset, its registers at the fault are lost");
    }
    return hl_fault_st(sb, describe_exception(sb, &vs, false), 0);
}

/* HL_PORT_FAULT: the guest caught a CPU exception and describes it in its meta page (hardware
 * KVM). The record is read once and only formatted: a guest can lie only about itself. */
hl_status hl_fault_reported(hl_sandbox *sb)
{
    struct hl_fault f;
    hl_vm_state vs;
    hl_status st;
    memcpy(&f, sb->mem + sb->lo.meta + offsetof(struct hl_meta, fault), sizeof f);
    if (f.vector > 31)
        return hl_poison(sb, hl_fail(sb, HL_ERR_PROTOCOL, "guest reported an exception with vector %llu (not 0..31)",
                                     (unsigned long long)f.vector));
    hl_vm_state_synced(sb->vm, &vs); /* the control registers, as KVM left them at this exit */
    vs.rip = f.rip;
    vs.rsp = f.rsp;
    vs.rflags = f.rflags;
    vs.cr2 = f.cr2;
    vs.rax = f.gpr[0];
    vs.exception = (int)f.vector;
    vs.error_code = (uint32_t)f.error_code;
    sb->fault = f;
    sb->have_fault = true; /* the core dump shows these registers, not the handler's */
    st = hl_fault_st(sb, describe_exception(sb, &vs, true), 0);
    sb->have_fault = false;
    return st;
}

/* KVM could not emulate an instruction the guest ran (e.g. int 0x80 on kvm_pvm). */
hl_status hl_fault_emulation(hl_sandbox *sb)
{
    hl_vm_state vs;
    const uint8_t *p;
    if (hl_vm_state_get(sb->vm, &vs) != HL_OK)
        return hl_fault(sb, SIGILL, "guest fault: instruction the hypervisor cannot emulate");
    p = hl_gpa_ro(sb, vs.rip, 2);
    return hl_fault(sb, SIGILL, "guest fault: instruction the hypervisor cannot emulate at rip 0x%llx (bytes %02x %02x)",
                    (unsigned long long)vs.rip, p ? p[0] : 0, p ? p[1] : 0);
}
