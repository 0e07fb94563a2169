/* fpu.S - hl_scrub_fpu (guest_internal.h): x87 to its FNINIT state, MXCSR to its default
 * (every SSE exception masked, SDM Vol. 1 §10.2.3), xmm0-xmm15 to zero. */
    .text
    .globl hl_scrub_fpu
    .type hl_scrub_fpu, @function
hl_scrub_fpu:
    fninit
    ldmxcsr mxcsr_default(%rip)
    pxor %xmm0, %xmm0
    pxor %xmm1, %xmm1
    pxor %xmm2, %xmm2
    pxor %xmm3, %xmm3
    pxor %xmm4, %xmm4
    pxor %xmm5, %xmm5
    pxor %xmm6, %xmm6
    pxor %xmm7, %xmm7
    pxor %xmm8, %xmm8
    pxor %xmm9, %xmm9
    pxor %xmm10, %xmm10
    pxor %xmm11, %xmm11
    pxor %xmm12, %xmm12
    pxor %xmm13, %xmm13
    pxor %xmm14, %xmm14
    pxor %xmm15, %xmm15
    ret
    .size hl_scrub_fpu, . - hl_scrub_fpu

    .section .rodata
    .balign 4
mxcsr_default:
    .long 0x1f80

    .section .note.GNU-stack, "", @progbits
