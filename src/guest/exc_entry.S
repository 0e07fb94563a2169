/* exc_entry.S - the guest's CPU exception entry points (hardware KVM only; exceptions.c
 * installs them).
 *
 * On hardware KVM a triple fault resets the vCPU (AMD), so the host cannot learn a fault from
 * the registers afterwards: the guest catches its own exceptions and reports them. Every
 * vector enters on an interrupt stack of its own (IST, so a stack overflow still has a stack
 * to report on), pushes a zero where the CPU pushes no error code, then its vector number,
 * then the general registers, and calls hl_exc_report with the resulting frame
 * (struct exc_frame in exceptions.c), which never returns. Intel SDM Vol. 3A §6.12, §6.14. */
#include "hyperlight/abi.h"

    .section .text.hl_exc, "ax"

/* One 16-byte entry per vector; the CPU pushes an error code for 8, 10-14, 17, 21, 29, 30. */
.macro ENTRY vec
    .balign 16
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    pushq $0
    .endif
    pushq $\vec
    jmp exc_common
.endm

    .balign 16
    .globl hl_exc_entries
    .type hl_exc_entries, @function
hl_exc_entries:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ENTRY \v
    .endr
    .size hl_exc_entries, . - hl_exc_entries

exc_common:
    /* The CPU aligned rsp to 16 before its 5-word frame; with the error code and the vector
     * that is 56 bytes, and 15 registers more make 176: rsp is 16-aligned for the call. */
    push %r15
    push %r14
    push %r13
    push %r12
    push %r11
    push %r10
    push %r9
    push %r8
    push %rdi
    push %rsi
    push %rbp
    push %rbx
    push %rdx
    push %rcx
    push %rax
    mov %rsp, %rdi
    xor %ebp, %ebp
    call hl_exc_report
1:  hlt                                 /* not reached: hl_exc_report never returns */
    jmp 1b

    .section .note.GNU-stack, "", @progbits
