/* cancel_guest.c - guest for the cancellation tests: calls that never end, in every way. */
#include <stdio.h>

#include "hyperlight_guest.h"

static volatile uint64_t sink;

static int spin(const hl_value *a, int n, hl_value *r)
{
    for (;;) sink++; /* never exits to the host */
}

static int spin_for(const hl_value *a, int n, hl_value *r)
{
    for (uint64_t i = 0; i < a[0].v.u64; i++) sink++;
    *r = hl_u64(a[0].v.u64);
    return 0;
}

static int host_loop(const hl_value *a, int n, hl_value *r)
{
    for (;;) {
        hl_value v;
        int rc = hl_call_host("Noop", HL_I32, NULL, 0, &v);
        if (rc) return hl_error(rc, "Noop failed: %s", hl_host_error());
    }
}

static int call_slow(const hl_value *a, int n, hl_value *r)
{
    hl_value v;
    int rc = hl_call_host("Slow", HL_I32, NULL, 0, &v);
    if (rc) return hl_error(rc, "Slow failed: %s", hl_host_error());
    *r = v;
    return 0;
}

/* Loads page tables of its own without the U bit: an identity map of the first GiB in
 * 2 MiB pages. On kvm_pvm the vCPU then faults forever inside KVM_RUN (docs/platforms.md); on
 * hardware KVM the guest keeps spinning. Either way the call never ends by itself. */
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static int fault_forever(const hl_value *a, int n, hl_value *r)
{
    for (uint64_t i = 0; i < 512; i++) pd[i] = (i << 21) | 0x83; /* P | W | PS */
    pdpt[0] = (uint64_t)(uintptr_t)pd | 3;                       /* P | W */
    pml4[0] = (uint64_t)(uintptr_t)pdpt | 3;
    __asm__ volatile("mov %0, %%cr3" : : "r"((uint64_t)(uintptr_t)pml4) : "memory");
    for (;;) sink++;
}

static uint64_t calls;
static int count(const hl_value *a, int n, hl_value *r)
{
    *r = hl_u64(++calls);
    return 0;
}

static int print_forever(const hl_value *a, int n, hl_value *r)
{
    for (;;) printf("all work and no play makes a dull guest\n");
}

static int log_forever(const hl_value *a, int n, hl_value *r)
{
    for (;;) HL_INFO("all work and no play");
}

void hl_guest_main(void)
{
    hl_guest_register("PrintForever", print_forever, HL_VOID, 0);
    hl_guest_register("LogForever", log_forever, HL_VOID, 0);
    hl_guest_register("Spin", spin, HL_VOID, 0);
    hl_guest_register("SpinFor", spin_for, HL_U64, 1, HL_U64);
    hl_guest_register("HostLoop", host_loop, HL_VOID, 0);
    hl_guest_register("CallSlow", call_slow, HL_I32, 0);
    hl_guest_register("FaultForever", fault_forever, HL_VOID, 0);
    hl_guest_register("Count", count, HL_U64, 0);
}
