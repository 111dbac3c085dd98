/*
 * ids.c: row ids and API keys (see ids.h).
 *
 * An id body is 9 base36 digits of the creation time in ms followed by 15 random base36 digits
 * from the CSPRNG. Each thread remembers the time and random part of its last id: an id made
 * in the same millisecond (or after the wall clock stepped back) keeps that time and adds a
 * random step of 1..36^4 to the random part, so one thread's ids always sort in creation order
 * while staying unpredictable. Uniqueness never depends on that state: every burst starts from
 * fresh CSPRNG digits (~77 bits), and if the random part would overflow the id moves to the
 * next millisecond with fresh digits.
 *
 * Id bodies draw their bytes from a per-thread pool refilled from the CSPRNG 512 bytes at a time
 * (one OpenSSL call per ~30 ids instead of one per id: it was 5% of the CPU of a delivery). API
 * keys, which are secrets, never use the pool: they take fresh bytes and wipe them.
 */
#include "core/ids.h"

#include <string.h>

#include "core/common.h"
#include "core/crypto.h"
#include "core/time.h"

#define TIME_DIGITS   9
#define RAND_DIGITS   15
#define PREFIX_MAX    8
#define ID_BODY_MIN   20
#define ID_BODY_MAX   40
#define APIKEY_RANDOM 32
#define APIKEY_MIN    16
#define APIKEY_MAX    128
#define STEP_RANGE    1679616u /* 36^4: the largest step between two ids of one millisecond */

static const char alphabet62[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Per-thread pool of CSPRNG bytes for id bodies (never for API keys). */
static _Thread_local uint8_t id_pool[512];
static _Thread_local size_t id_pool_avail;

/* One CSPRNG byte: from the id pool with pooled, else fresh from a 32-byte draw in *fresh. */
static uint8_t random_byte(int pooled, uint8_t fresh[32], size_t *fresh_avail)
{
    if (pooled) {
        if (id_pool_avail == 0) {
            hk_random_bytes(id_pool, sizeof id_pool);
            id_pool_avail = sizeof id_pool;
        }
        return id_pool[--id_pool_avail];
    }
    if (*fresh_avail == 0) {
        hk_random_bytes(fresh, 32);
        *fresh_avail = 32;
    }
    return fresh[--*fresh_avail];
}

/* n uniform random digits in [0, base) (base <= 62) from the CSPRNG (the id pool with pooled),
 * by rejection sampling on bytes: a byte counts when it is below the largest multiple of base
 * that fits in 256. */
static void random_digits(uint8_t *d, size_t n, unsigned base, int pooled)
{
    unsigned limit = 256 / base * base;
    uint8_t fresh[32];
    size_t avail = 0;
    for (size_t i = 0; i < n;) {
        uint8_t b = random_byte(pooled, fresh, &avail);
        if (b < limit) d[i++] = (uint8_t)(b % base);
    }
    explicit_bzero(fresh, sizeof fresh); /* API keys are made from these */
}

/* A uniform step in [1, STEP_RANGE] from the id pool (rejection sampling on 24 bits). */
static uint32_t random_step(void)
{
    const uint32_t limit = (1u << 24) / STEP_RANGE * STEP_RANGE;
    for (;;) {
        uint32_t v = (uint32_t)random_byte(1, NULL, NULL) << 16;
        v |= (uint32_t)random_byte(1, NULL, NULL) << 8;
        v |= random_byte(1, NULL, NULL);
        if (v < limit) return 1 + v % STEP_RANGE;
    }
}

/* Per-thread state of the last id: its time (-1: none yet) and random digits. */
static _Thread_local int64_t last_ms = -1;
static _Thread_local uint8_t last_rand[RAND_DIGITS];

/* Adds step to the base36 number held in d[0..RAND_DIGITS) (most significant first). Returns 0
 * if the sum overflowed RAND_DIGITS digits. */
static int rand_add(uint8_t *d, uint32_t step)
{
    uint32_t carry = step;
    for (int i = RAND_DIGITS - 1; i >= 0 && carry; i--) {
        uint32_t v = d[i] + carry;
        d[i] = (uint8_t)(v % 36);
        carry = v / 36;
    }
    return carry == 0;
}

void hk_id_new(const char *prefix, char out[HK_ID_MAX])
{
    if (!prefix) prefix = "";
    size_t plen = strnlen(prefix, PREFIX_MAX);
    memcpy(out, prefix, plen);
    out[plen] = '_';
    char *body = out + plen + 1;

    int64_t now = hk_now_ms();
    if (now < 0) now = 0;
    if (now > last_ms) {
        last_ms = now;
        random_digits(last_rand, RAND_DIGITS, 36, 1);
    } else if (!rand_add(last_rand, random_step())) {
        last_ms++; /* same ms and the random part is exhausted: borrow the next ms */
        random_digits(last_rand, RAND_DIGITS, 36, 1);
    }

    uint64_t t = (uint64_t)last_ms;
    for (int i = TIME_DIGITS - 1; i >= 0; i--) {
        body[i] = alphabet62[t % 36];
        t /= 36;
    }
    for (int i = 0; i < RAND_DIGITS; i++) body[TIME_DIGITS + i] = alphabet62[last_rand[i]];
    body[HK_ID_BODY_LEN] = '\0';
}

static int is_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int hk_id_valid(const char *s, const char *prefix)
{
    if (!s || !prefix) return 0;
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0 || s[plen] != '_') return 0;
    const char *body = s + plen + 1;
    size_t n = 0;
    while (n <= ID_BODY_MAX && body[n]) {
        if (!is_id_char((unsigned char)body[n])) return 0;
        n++;
    }
    return n >= ID_BODY_MIN && n <= ID_BODY_MAX;
}

void hk_apikey_generate(char out[HK_APIKEY_GEN_LEN])
{
    uint8_t d[APIKEY_RANDOM];
    random_digits(d, sizeof d, 62, 0);
    memcpy(out, "hk_", 3);
    for (size_t i = 0; i < sizeof d; i++) out[3 + i] = alphabet62[d[i]];
    out[3 + APIKEY_RANDOM] = '\0';
    explicit_bzero(d, sizeof d);
}

int hk_apikey_valid(const char *s)
{
    if (!s) return 0;
    size_t n = 0;
    for (; n <= APIKEY_MAX && s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n >= APIKEY_MIN && n <= APIKEY_MAX;
}
