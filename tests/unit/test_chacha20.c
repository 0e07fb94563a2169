/* test_chacha20.c - unit tests for src/common/chacha20.c: RFC 8439's block test vector and
 * the keystream's block numbering, rekeying and tails.
 *
 * Standalone (no VM). Build and run:
 *   gcc -std=c11 -O1 -g -Wall -Wextra -Werror -Iinclude -Isrc/common -Itests \
 *       tests/unit/test_chacha20.c src/common/chacha20.c -o /tmp/test_chacha20 && /tmp/test_chacha20 */
#include <stdint.h>
#include <string.h>

#include "chacha20.h"
#include "check.h"

/* RFC 8439 §2.3.2: key 00..1f, nonce 00 00 00 09 00 00 00 4a 00 00 00 00, counter 1. */
static void test_rfc8439_block(void)
{
    static const uint8_t want[64] = {
        0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15, 0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20, 0x71, 0xc4,
        0xc7, 0xd1, 0xf4, 0xc7, 0x33, 0xc0, 0x68, 0x03, 0x04, 0x22, 0xaa, 0x9a, 0xc3, 0xd4, 0x6c, 0x4e,
        0xd2, 0x82, 0x64, 0x46, 0x07, 0x9f, 0xaa, 0x09, 0x14, 0xc2, 0xd7, 0x05, 0xd9, 0x8b, 0x02, 0xa2,
        0xb5, 0x12, 0x9c, 0xd1, 0xde, 0x16, 0x4e, 0xb9, 0xcb, 0xd0, 0x83, 0xe8, 0xa2, 0x50, 0x3c, 0x4e,
    };
    uint8_t key[32], nonce[12] = { 0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0 }, out[64];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
    hl_chacha20_block(key, 1, nonce, out);
    CHECK(memcmp(out, want, sizeof want) == 0);
}

/* The keystream's block n is the block function at counter n, nonce 0 (n < 2^32), and at
 * counter n mod 2^32 with the nonce's first word n / 2^32 above; a fill of a partial block
 * drops its tail. */
static void test_stream(void)
{
    uint8_t key[32] = { 7 }, nonce[12] = { 0 }, blk[64], got[100];
    hl_chacha c;
    hl_chacha_init(&c, key);
    hl_chacha_fill(&c, got, 100); /* blocks 0 and 1 (36 bytes of it) */
    hl_chacha20_block(key, 0, nonce, blk);
    CHECK(memcmp(got, blk, 64) == 0);
    hl_chacha20_block(key, 1, nonce, blk);
    CHECK(memcmp(got + 64, blk, 36) == 0);
    CHECK_INT(c.block, 2);
    hl_chacha_fill(&c, got, 10); /* block 2, not the rest of block 1 */
    hl_chacha20_block(key, 2, nonce, blk);
    CHECK(memcmp(got, blk, 10) == 0);

    c.block = (uint64_t)5 << 32 | 3;
    hl_chacha_fill(&c, got, 64);
    nonce[0] = 5;
    hl_chacha20_block(key, 3, nonce, blk);
    CHECK(memcmp(got, blk, 64) == 0);

    /* rekey: the new key is the next 32 bytes of the stream, and it restarts at block 0 */
    nonce[0] = 5;
    hl_chacha20_block(key, 4, nonce, blk);
    hl_chacha_rekey(&c);
    CHECK(memcmp(c.key, blk, 32) == 0);
    CHECK_INT(c.block, 0);
}

int main(void)
{
    test_rfc8439_block();
    test_stream();
    return check_exit("test_chacha20");
}
