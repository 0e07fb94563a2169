/* chacha20.c - the ChaCha20 block function and keystream (chacha20.h), host and guest. */
#include "chacha20.h"

static uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void store32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static uint32_t rotl(uint32_t v, int n) { return v << n | v >> (32 - n); }

/* RFC 8439 §2.1 */
#define QUARTER(a, b, c, d)          \
    do {                             \
        a += b, d = rotl(d ^ a, 16); \
        c += d, b = rotl(b ^ c, 12); \
        a += b, d = rotl(d ^ a, 8);  \
        c += d, b = rotl(b ^ c, 7);  \
    } while (0)

void hl_chacha20_block(const uint8_t key[HL_CHACHA_KEY], uint32_t counter, const uint8_t nonce[12],
                       uint8_t out[HL_CHACHA_BLOCK])
{
    /* "expand 32-byte k", RFC 8439 §2.3 */
    uint32_t in[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 }, x[16];
    for (int i = 0; i < 8; i++) in[4 + i] = load32(key + 4 * i);
    in[12] = counter;
    for (int i = 0; i < 3; i++) in[13 + i] = load32(nonce + 4 * i);
    for (int i = 0; i < 16; i++) x[i] = in[i];
    for (int i = 0; i < 10; i++) {
        QUARTER(x[0], x[4], x[8], x[12]);
        QUARTER(x[1], x[5], x[9], x[13]);
        QUARTER(x[2], x[6], x[10], x[14]);
        QUARTER(x[3], x[7], x[11], x[15]);
        QUARTER(x[0], x[5], x[10], x[15]);
        QUARTER(x[1], x[6], x[11], x[12]);
        QUARTER(x[2], x[7], x[8], x[13]);
        QUARTER(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) store32(out + 4 * i, x[i] + in[i]);
}

void hl_chacha_init(hl_chacha *c, const uint8_t key[HL_CHACHA_KEY])
{
    for (int i = 0; i < HL_CHACHA_KEY; i++) c->key[i] = key[i];
    c->block = 0;
}

void hl_chacha_fill(hl_chacha *c, void *out, size_t n)
{
    uint8_t *o = out, blk[HL_CHACHA_BLOCK], nonce[12] = { 0 };
    while (n) {
        size_t m = n < sizeof blk ? n : sizeof blk;
        store32(nonce, (uint32_t)(c->block >> 32));
        hl_chacha20_block(c->key, (uint32_t)c->block, nonce, blk);
        c->block++;
        for (size_t i = 0; i < m; i++) o[i] = blk[i];
        o += m;
        n -= m;
    }
    for (size_t i = 0; i < sizeof blk; i++) ((volatile uint8_t *)blk)[i] = 0;
}

void hl_chacha_rekey(hl_chacha *c)
{
    uint8_t k[HL_CHACHA_KEY];
    hl_chacha_fill(c, k, sizeof k);
    hl_chacha_init(c, k);
    for (size_t i = 0; i < sizeof k; i++) ((volatile uint8_t *)k)[i] = 0;
}
