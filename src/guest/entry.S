/* entry.S - the guest's first instructions, and the ABI note the host checks.
 *
 * The host enters at _start in 64-bit mode with paging on, rsp at the top of the stack and
 * rdi = the PEB's address. On kvm_pvm the guest must register its virtual-IF page before
 * anything else, or every instruction it runs is emulated (docs/platforms.md, "kvm_pvm:
 * what the code relies on"). The MSR write traps once and is emulated; the guest then runs natively. */
#include "hyperlight/abi.h"

/* The MSR value below is meta_gpa | 1: the virtual-IF block must start the meta page. */
.if HL_META_OFF_PVM_VIF != 0
.error "entry.S assumes struct hl_meta starts with pvm_vif (HL_META_OFF_PVM_VIF == 0)"
.endif

    .section .text.hl_entry, "ax"
    .globl _start
    .type _start, @function
_start:
    mov %rdi, %rbx                      /* PEB, callee-saved across wrmsr */
    testq $HL_PEB_FLAG_PVM, HL_PEB_OFF_FLAGS(%rbx)
    jz 1f
    mov HL_PEB_OFF_META_GPA(%rbx), %rax /* &meta->pvm_vif */
    or $1, %rax
    xor %edx, %edx
    mov $HL_MSR_PVM_VIF, %ecx
    wrmsr
1:  and $-16, %rsp                      /* SysV ABI: 16-byte aligned before the call */
    xor %ebp, %ebp
    mov %rbx, %rdi
    call hl_guest_start                 /* never returns */
2:  ud2
    jmp 2b
    .size _start, . - _start

    /* hl_resume: where a vCPU made from a snapshot starts on kvm_pvm. The virtual-IF page
     * is per vCPU and only the guest can register it, so a new VM loaded with a snapshot's
     * registers must do it again before it runs native code. The host loads every register
     * of the snapshot except rip = hl_resume and rsp = snapshot rsp - 8, with the
     * snapshot's rip stored at that stack slot; this preserves all of them and returns there. */
    .globl hl_resume
    .type hl_resume, @function
hl_resume:
    pushfq
    push %rax
    push %rcx
    push %rdx
    mov HL_PEB_GPA + HL_PEB_OFF_META_GPA, %rax
    or $1, %rax
    xor %edx, %edx
    mov $HL_MSR_PVM_VIF, %ecx
    wrmsr
    pop %rdx
    pop %rcx
    pop %rax
    popfq
    ret
    .size hl_resume, . - hl_resume

    /* ELF note: name "Hyperlight", type HL_NOTE_TYPE_ABI, descriptor u32 HL_ABI_VERSION. */
    .section .note.hyperlight, "a", @note
    .balign 4
    .long 2f - 1f                       /* namesz, including the NUL */
    .long 4                             /* descsz */
    .long HL_NOTE_TYPE_ABI
1:  .asciz "Hyperlight"
2:  .balign 4
    .long HL_ABI_VERSION

    .section .note.GNU-stack, "", @progbits
