/* chacha20.h - the ChaCha20 block function (RFC 8439 §2.3) and a keystream built on it.
 *
 * Compiled into both the host library (it expands the per-sandbox seed it takes once from
 * getrandom into the entropy block of every restore) and the guest SDK (getentropy and
 * arc4random expand the block's seed). Freestanding: no library calls. Not constant-time
 * against anything but the usual cache and branch observers (ChaCha20 has no table lookups). */
#ifndef HL_CHACHA20_H
#define HL_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

#define HL_CHACHA_KEY 32   /* bytes */
#define HL_CHACHA_BLOCK 64 /* bytes */

/* One block of keystream: RFC 8439's state of (key), the 32-bit block (counter) and the
 * 96-bit (nonce), after 20 rounds, into (out) (little-endian words). */
void hl_chacha20_block(const uint8_t key[HL_CHACHA_KEY], uint32_t counter, const uint8_t nonce[12],
                       uint8_t out[HL_CHACHA_BLOCK]);

/* A keystream of 2^64 blocks under one key: block n uses counter = n mod 2^32 and a nonce
 * whose first 4 bytes hold n / 2^32 (little-endian), the rest 0. */
typedef struct hl_chacha {
    uint8_t key[HL_CHACHA_KEY];
    uint64_t block; /* the next block's number */
} hl_chacha;

/* Starts (c) at block 0 of (key). */
void hl_chacha_init(hl_chacha *c, const uint8_t key[HL_CHACHA_KEY]);
/* Writes the next (n) bytes of the keystream into (out); a block's unused tail is dropped,
 * so every call starts on a fresh block. */
void hl_chacha_fill(hl_chacha *c, void *out, size_t n);
/* Replaces the key with the next 32 bytes of the keystream and restarts at block 0 (so that
 * the bytes handed out so far cannot be computed from the state any more). */
void hl_chacha_rekey(hl_chacha *c);

#endif
