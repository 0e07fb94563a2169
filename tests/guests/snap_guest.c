/* snap_guest.c - guest for the snapshot tests: state in data, bss and heap, and functions
 * that dirty and check any number of pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight_guest.h"

#define ARENA_PAGES 1024
static unsigned char arena[ARENA_PAGES][4096]; /* bss */
static uint64_t counter = 0;                   /* data (zero here, but written) */
static char *heap_str;                         /* heap */

static uint64_t pattern(uint32_t seed, uint32_t page, uint32_t word)
{
    return ((uint64_t)seed << 40) ^ ((uint64_t)page << 20) ^ word ^ 0x9e3779b97f4a7c15ull * seed;
}

static int incr(const hl_value *a, int n, hl_value *r)
{
    *r = hl_u64(++counter);
    return 0;
}
static int get(const hl_value *a, int n, hl_value *r)
{
    *r = hl_u64(counter);
    return 0;
}
static int generation(const hl_value *a, int n, hl_value *r)
{
    *r = hl_u64(hl_guest_generation());
    return 0;
}

/* Fill(npages, seed): writes pattern(seed) over pages [0, npages) of the arena, spread out:
 * page i of the call is arena page (i * stride) % ARENA_PAGES with stride 7 (coprime). */
static uint32_t page_of(uint32_t i, uint32_t npages) { return npages >= ARENA_PAGES ? i : (i * 7u) % ARENA_PAGES; }
static int fill(const hl_value *a, int n, hl_value *r)
{
    uint32_t np = a[0].v.u32, seed = a[1].v.u32;
    if (np > ARENA_PAGES) return hl_error(1, "at most %d pages", ARENA_PAGES);
    for (uint32_t i = 0; i < np; i++) {
        uint64_t *w = (uint64_t *)arena[page_of(i, np)];
        for (uint32_t j = 0; j < 512; j++) w[j] = pattern(seed, page_of(i, np), j);
    }
    *r = hl_u32(np);
    return 0;
}
/* Check(seed): pages of the whole arena that do not hold pattern(seed) exactly. */
static int check(const hl_value *a, int n, hl_value *r)
{
    uint32_t seed = a[0].v.u32, bad = 0;
    for (uint32_t p = 0; p < ARENA_PAGES; p++) {
        const uint64_t *w = (const uint64_t *)arena[p];
        for (uint32_t j = 0; j < 512; j++)
            if (w[j] != pattern(seed, p, j)) {
                bad++;
                break;
            }
    }
    *r = hl_u32(bad);
    return 0;
}
static int set_str(const hl_value *a, int n, hl_value *r)
{
    free(heap_str);
    heap_str = strdup(hl_value_str(&a[0]));
    *r = hl_void();
    return heap_str ? 0 : hl_error(1, "out of memory");
}
static int get_str(const hl_value *a, int n, hl_value *r)
{
    *r = hl_str(heap_str ? heap_str : "");
    return 0;
}
static int die(const hl_value *a, int n, hl_value *r) { hl_abort(3, "told to abort"); }
static int crash(const hl_value *a, int n, hl_value *r)
{
    *(volatile int *)0x10 = 1; /* NULL page: a fault */
    return 0;
}
static int call_host(const hl_value *a, int n, hl_value *r)
{
    hl_value v;
    int rc = hl_call_host("Twice", HL_I32, a, 1, &v);
    if (rc) return hl_error(rc, "%s", hl_host_error());
    *r = v;
    return 0;
}

/* SetFpu(u64): leaves v in xmm7, rounding toward zero in MXCSR and a non-default x87
 * control word. GetFpu() -> string: what a call sees of those at its start. */
static int set_fpu(const hl_value *a, int n, hl_value *r)
{
    uint64_t v = a[0].v.u64;
    uint32_t mxcsr = 0x7f80; /* round toward zero */
    uint16_t fcw = 0x0c7f;
    __asm__ volatile("movq %0, %%xmm7\n\tldmxcsr %1\n\tfldcw %2" : : "r"(v), "m"(mxcsr), "m"(fcw) : "xmm7");
    *r = hl_void();
    return 0;
}
static int get_fpu(const hl_value *a, int n, hl_value *r)
{
    uint64_t v;
    uint32_t mxcsr;
    uint16_t fcw;
    char *s = hl_ret_alloc(80);
    __asm__ volatile("movq %%xmm7, %0\n\tstmxcsr %1\n\tfnstcw %2" : "=r"(v), "=m"(mxcsr), "=m"(fcw));
    snprintf(s, 80, "xmm7=%llx mxcsr=%x fcw=%x", (unsigned long long)v, mxcsr, fcw);
    *r = hl_str(s);
    return 0;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
/* InitSum() -> u64: FNV-1a of the init data (0 when there is none). */
static int init_sum(const hl_value *a, int n, hl_value *r)
{
    size_t len;
    const unsigned char *p = hl_guest_init_data(&len);
    *r = hl_u64(p ? fnv(p, len) : 0);
    return 0;
}
/* FileSum(label) -> u64: FNV-1a of the mapped file; an error if there is no such file. */
static int file_sum(const hl_value *a, int n, hl_value *r)
{
    size_t len;
    const unsigned char *p = hl_guest_file(hl_value_str(&a[0]), &len);
    if (!p) return hl_error(2, "no file labelled '%s'", hl_value_str(&a[0]));
    *r = hl_u64(fnv(p, len));
    return 0;
}
/* FileWrite(label): tries to write the mapped file (a fault). */
static int file_write(const hl_value *a, int n, hl_value *r)
{
    size_t len;
    volatile unsigned char *p = (volatile unsigned char *)hl_guest_file(hl_value_str(&a[0]), &len);
    if (!p) return hl_error(2, "no file labelled '%s'", hl_value_str(&a[0]));
    p[0] = 'X';
    *r = hl_void();
    return 0;
}

/* ScanInput() -> u64: 1 if the input buffer holds "LEFT-BY-AN-EARLIER-CALL" anywhere. */
static int scan_input(const hl_value *a, int n, hl_value *r)
{
    static const char mark[] = "LEFT-BY-AN-EARLIER-CALL";
    const struct hl_peb *p = hl_guest_peb();
    const char *b = (const char *)(uintptr_t)p->input_gpa;
    *r = hl_u64(0);
    for (size_t i = 0; i + sizeof mark - 1 <= p->input_size; i++)
        if (memcmp(b + i, mark, sizeof mark - 1) == 0) *r = hl_u64(1);
    return 0;
}
static int two(const hl_value *a, int n, hl_value *r)
{
    *r = hl_i32(0);
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("ScanInput", scan_input, HL_U64, 0);
    hl_guest_register("TakeTwo", two, HL_I32, 2, HL_STRING, HL_BYTES);
    hl_guest_register("InitSum", init_sum, HL_U64, 0);
    hl_guest_register("FileSum", file_sum, HL_U64, 1, HL_STRING);
    hl_guest_register("FileWrite", file_write, HL_VOID, 1, HL_STRING);
    hl_guest_register("SetFpu", set_fpu, HL_VOID, 1, HL_U64);
    hl_guest_register("GetFpu", get_fpu, HL_STRING, 0);
    hl_guest_register("Incr", incr, HL_U64, 0);
    hl_guest_register("Get", get, HL_U64, 0);
    hl_guest_register("Generation", generation, HL_U64, 0);
    hl_guest_register("Fill", fill, HL_U32, 2, HL_U32, HL_U32);
    hl_guest_register("Check", check, HL_U32, 1, HL_U32);
    hl_guest_register("SetStr", set_str, HL_VOID, 1, HL_STRING);
    hl_guest_register("GetStr", get_str, HL_STRING, 0);
    hl_guest_register("Abort", die, HL_VOID, 0);
    hl_guest_register("Crash", crash, HL_VOID, 0);
    hl_guest_register("CallTwice", call_host, HL_I32, 1, HL_I32);
}
