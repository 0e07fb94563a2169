/* exceptions.c - the guest catches its own CPU exceptions and reports them to the host
 * (hardware KVM only).
 *
 * The host starts the vCPU with segment registers loaded straight into KVM (selector 0x08 a
 * 64-bit code segment, 0x10 a data segment) but no descriptor tables in memory. Delivering an
 * exception needs them: an IDT with a gate per vector, a GDT whose entries match the loaded
 * selectors (the CPU reads the gate's code segment from it), and a 64-bit TSS whose
 * interrupt-stack table gives each exception a stack of its own. All three live in the
 * guest's data; the host's restore puts them back with everything else.
 *
 * Not on kvm_pvm: there an exception in native supervisor mode cannot be delivered (it ends
 * in a triple fault whatever the tables say) and the host names the fault from KVM's state
 * instead. Intel SDM Vol. 3A §3.4.5 (descriptors), §6.10-6.14 (IDT, gates, IST), §7.7 (TSS). */
#include <stdint.h>
#include <string.h>

#include "guest_internal.h"

/* Descriptors (SDM Vol. 3A §3.4.5): present, DPL 0, accessed, limit 0xfffff, G=1. The
 * accessed bit is preset so the CPU never writes the GDT when it loads one. */
#define GDT_CODE64 0x00af9b000000ffffull /* type 0xb (execute/read, accessed), L=1 */
#define GDT_DATA 0x00cf93000000ffffull   /* type 0x3 (read/write, accessed), D/B=1 */
#define SEL_CODE 0x08
#define SEL_TSS 0x18
#define GATE_INTR 0x8e /* present, DPL 0, 64-bit interrupt gate (clears IF) */
#define TSS_AVAIL 0x89 /* present, DPL 0, 64-bit TSS (available) */
#define NVEC 32        /* exceptions; vectors 22-31 reserved, their gates stay absent */
#define IST_EXC 1      /* every exception's stack... */
#define IST_DF 2       /* ...but a double fault's, which may come from the handler itself */

struct idt_gate {
    uint16_t off0, sel;
    uint8_t ist, type;
    uint16_t off1;
    uint32_t off2, zero;
};

struct tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3, iomap;
} __attribute__((packed));

/* What exc_entry.S leaves on the interrupt stack. */
struct exc_frame {
    uint64_t rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

extern char hl_exc_entries[]; /* NVEC entries of 16 bytes, exc_entry.S */

static struct idt_gate idt[NVEC] __attribute__((aligned(16)));
static uint64_t gdt[5] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static uint8_t stack_exc[4096] __attribute__((aligned(16)));
static uint8_t stack_df[4096] __attribute__((aligned(16)));
static struct hl_meta *report_to;
static volatile int reporting;

static bool is_exception(int v)
{
    return v <= 21; /* 0-21 are defined (SDM Vol. 3A table 6-1); 15 is reserved but harmless */
}

void hl_exc_install(struct hl_meta *meta)
{
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) gdtr, idtr;
    uint64_t tss_base = (uint64_t)(uintptr_t)&tss, tss_limit = sizeof tss - 1;

    report_to = meta;
    memset(&tss, 0, sizeof tss);
    tss.ist[IST_EXC - 1] = (uint64_t)(uintptr_t)(stack_exc + sizeof stack_exc);
    tss.ist[IST_DF - 1] = (uint64_t)(uintptr_t)(stack_df + sizeof stack_df);
    tss.iomap = sizeof tss; /* no I/O permission bitmap */
    gdt[0] = 0;
    gdt[1] = GDT_CODE64;
    gdt[2] = GDT_DATA;
    /* a 16-byte system descriptor (SDM Vol. 3A §7.2.3) */
    gdt[3] = (tss_limit & 0xffff) | (tss_base & 0xffffff) << 16 | (uint64_t)TSS_AVAIL << 40 |
             ((tss_limit >> 16) & 0xf) << 48 | ((tss_base >> 24) & 0xff) << 56;
    gdt[4] = tss_base >> 32;
    for (int v = 0; v < NVEC; v++) {
        uint64_t at = (uint64_t)(uintptr_t)(hl_exc_entries + 16 * v);
        if (!is_exception(v)) {
            memset(&idt[v], 0, sizeof idt[v]);
            continue;
        }
        idt[v] = (struct idt_gate){ .off0 = (uint16_t)at,
                                    .sel = SEL_CODE,
                                    .ist = v == 8 ? IST_DF : IST_EXC,
                                    .type = GATE_INTR,
                                    .off1 = (uint16_t)(at >> 16),
                                    .off2 = (uint32_t)(at >> 32) };
    }
    gdtr.limit = sizeof gdt - 1;
    gdtr.base = (uint64_t)(uintptr_t)gdt;
    idtr.limit = sizeof idt - 1;
    idtr.base = (uint64_t)(uintptr_t)idt;
    __asm__ volatile("lgdt %0\n\tlidt %1\n\tltr %w2" : : "m"(gdtr), "m"(idtr), "r"(SEL_TSS) : "memory");
}

/* Called by exc_entry.S on the interrupt stack. Writes the fault into the meta page and
 * tells the host, which never resumes the vCPU. A fault while reporting one (the meta page
 * unreachable, say) would repeat forever: then the IDT is dropped, so the next exception is a
 * triple fault, which the host reports as such. */
__attribute__((noreturn, used)) void hl_exc_report(const struct exc_frame *f)
{
    struct hl_fault *out;
    uint64_t cr2;
    if (reporting++) {
        static const struct {
            uint16_t limit;
            uint64_t base;
        } __attribute__((packed)) none = { 0, 0 };
        __asm__ volatile("lidt %0\n\tud2" : : "m"(none));
    }
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    out = &report_to->fault;
    out->vector = f->vector;
    out->error_code = f->error_code;
    out->rip = f->rip;
    out->cs = f->cs;
    out->rflags = f->rflags;
    out->rsp = f->rsp;
    out->ss = f->ss;
    out->cr2 = cr2;
    const uint64_t gpr[16] = { f->rax, f->rcx, f->rdx, f->rbx, f->rsp, f->rbp, f->rsi, f->rdi,
                               f->r8,  f->r9,  f->r10, f->r11, f->r12, f->r13, f->r14, f->r15 };
    memcpy(out->gpr, gpr, sizeof gpr);
    for (;;) __asm__ volatile("outl %0, %1" : : "a"(0u), "Nd"((uint16_t)HL_PORT_FAULT) : "memory");
}
