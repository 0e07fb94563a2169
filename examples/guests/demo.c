/* demo.c - the example guest: build it with `hyperlight-cc -o demo.elf demo.c`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight_guest.h"

/* Echo(string) -> string: returns its argument (the SDK copies it out before it goes). */
static int echo(const hl_value *args, int argc, hl_value *ret)
{
    *ret = args[0];
    return 0;
}

/* Add(i32, i32) -> i32, wrapping on overflow like the hardware. */
static int add(const hl_value *args, int argc, hl_value *ret)
{
    *ret = hl_i32((int32_t)((uint32_t)args[0].v.i32 + (uint32_t)args[1].v.i32));
    return 0;
}

/* SayHello(string) -> string: asks the host for the weekday (host function GetWeekday). */
static int say_hello(const hl_value *args, int argc, hl_value *ret)
{
    hl_value day;
    int rc = hl_call_host("GetWeekday", HL_STRING, NULL, 0, &day);
    if (rc != 0) return hl_error(rc, "GetWeekday failed: %s", hl_host_error());
    size_t n = strlen(hl_value_str(&args[0])) + strlen(hl_value_str(&day)) + 32;
    char *s = hl_ret_alloc(n);
    if (!s) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(s, n, "Hello, %s! Today is %s.", hl_value_str(&args[0]), hl_value_str(&day));
    hl_value_free(&day);
    *ret = hl_str(s);
    return 0;
}

/* CountPrimes(u32 n) -> u32: the primes below n, by the sieve of Eratosthenes. */
static int count_primes(const hl_value *args, int argc, hl_value *ret)
{
    uint32_t n = args[0].v.u32, count = 0;
    unsigned char *composite = calloc(n ? n : 1, 1);
    if (!composite) return hl_error(HL_GUEST_ERR_OUT_OF_MEMORY, "sieve of %u bytes does not fit the heap", n);
    for (uint32_t i = 2; i < n; i++) {
        if (composite[i]) continue;
        count++;
        for (uint64_t j = (uint64_t)i * i; j < n; j += i) composite[j] = 1;
    }
    free(composite);
    *ret = hl_u32(count);
    return 0;
}

void hl_guest_main(void)
{
    hl_guest_register("Echo", echo, HL_STRING, 1, HL_STRING);
    hl_guest_register("Add", add, HL_I32, 2, HL_I32, HL_I32);
    hl_guest_register("SayHello", say_hello, HL_STRING, 1, HL_STRING);
    hl_guest_register("CountPrimes", count_primes, HL_U32, 1, HL_U32);
}
