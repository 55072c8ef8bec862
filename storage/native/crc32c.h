// CRC32C (Castagnoli), the bitrot checksum of every shard block. Hardware instructions where
// the CPU has them — SSE4.2 on x86-64, the CRC extension on arm64 (Graviton, NVIDIA Grace) —
// run as three interleaved lanes; elsewhere a slicing-by-8 table. Plain C, no Node: it is
// included by kiln_native.c and by crc32c-check.c (the cross-architecture check).
#ifndef KILN_CRC32C_H
#define KILN_CRC32C_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define POLY 0x82f63b78u /* CRC32C, reflected */

static uint32_t table[8][256];

static void table_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
    table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++)
    for (int k = 1; k < 8; k++) table[k][n] = (table[k - 1][n] >> 8) ^ table[0][table[k - 1][n] & 0xff];
}

// Raw register update (no pre/post inversion), slicing by 8 (little-endian loads).
static uint32_t crc_sw(uint32_t r, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    v ^= r;
    r = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^ table[4][(v >> 24) & 0xff] ^
        table[3][(v >> 32) & 0xff] ^ table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) r = (r >> 8) ^ table[0][(r ^ *p++) & 0xff];
  return r;
}

// Polynomial arithmetic modulo POLY in the reflected representation (x^0 is the top bit):
// lets independently computed lanes be joined into one CRC.
static uint32_t mulmod(uint32_t a, uint32_t b) {
  uint32_t p = 0;
  for (uint32_t m = 1u << 31; m; m >>= 1) {
    if (a & m) p ^= b;
    b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
  }
  return p;
}

/** x^(8n) mod POLY: the operator that appends n zero bytes to a CRC register. */
static uint32_t xpow8n(uint64_t n) {
  uint32_t result = 1u << 31, base = 1u << 23; /* x^0, x^8 */
  while (n) {
    if (n & 1) result = mulmod(result, base);
    base = mulmod(base, base);
    n >>= 1;
  }
  return result;
}

/** CRC of A‖B from crc(A), crc(B) and |B| (finished CRC values). */
static uint32_t crc32c_combine(uint32_t a, uint32_t b, uint64_t lenB) {
  return mulmod(xpow8n(lenB), a) ^ b;
}

// Appending n zero bytes is multiplication by x^(8n) mod POLY, which is linear: four 256-entry
// tables per fixed n apply it with four look-ups.
typedef uint32_t shift_table[4][256];

static void shift_init(shift_table t, uint64_t n) {
  uint32_t op = xpow8n(n);
  for (int k = 0; k < 4; k++)
    for (uint32_t v = 0; v < 256; v++) t[k][v] = mulmod(op, v << (8 * k));
}

static inline uint32_t shift(const shift_table t, uint32_t r) {
  return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

// The CRC instructions have a latency of 3 cycles and a throughput of 1 per cycle: three lanes
// of LANE bytes run in one loop, then join with two fixed shifts. Short lanes keep a block's
// bytes in cache when the CRC runs right after reading a piece (readFrame).
#define LANE 2048
static shift_table shift_lane, shift_2lane;
static int have_hw = 0;

// One lane-interleaved loop per instruction set; CRC8/CRC64 name the 1- and 8-byte steps.
#define DEFINE_CRC_HW(ATTR, CRC8, CRC64)                                                          \
  ATTR static uint32_t crc_hw_raw(uint32_t r, const uint8_t *p, size_t n) {                       \
    uint64_t r0 = r;                                                                              \
    while (n >= 3 * LANE) {                                                                       \
      uint64_t r1 = 0, r2 = 0;                                                                    \
      for (size_t i = 0; i < LANE; i += 8) {                                                      \
        uint64_t v0, v1, v2;                                                                      \
        memcpy(&v0, p + i, 8);                                                                    \
        memcpy(&v1, p + LANE + i, 8);                                                             \
        memcpy(&v2, p + 2 * LANE + i, 8);                                                         \
        r0 = CRC64(r0, v0);                                                                       \
        r1 = CRC64(r1, v1);                                                                       \
        r2 = CRC64(r2, v2);                                                                       \
      }                                                                                           \
      r0 = shift(shift_2lane, (uint32_t)r0) ^ shift(shift_lane, (uint32_t)r1) ^ (uint32_t)r2;    \
      p += 3 * LANE;                                                                              \
      n -= 3 * LANE;                                                                              \
    }                                                                                             \
    while (n >= 8) {                                                                              \
      uint64_t v;                                                                                 \
      memcpy(&v, p, 8);                                                                           \
      r0 = CRC64(r0, v);                                                                          \
      p += 8;                                                                                     \
      n -= 8;                                                                                     \
    }                                                                                             \
    r = (uint32_t)r0;                                                                             \
    while (n--) r = CRC8(r, *p++);                                                                \
    return r;                                                                                     \
  }

#if defined(__x86_64__)
#include <nmmintrin.h>
#define X86_CRC64(r, v) _mm_crc32_u64((r), (v))
#define X86_CRC8(r, b) _mm_crc32_u8((r), (b))
DEFINE_CRC_HW(__attribute__((target("sse4.2"))), X86_CRC8, X86_CRC64)
static int cpu_has_crc(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define ARM_CRC64(r, v) __crc32cd((uint32_t)(r), (v))
#define ARM_CRC8(r, b) __crc32cb((r), (b))
DEFINE_CRC_HW(__attribute__((target("+crc"))), ARM_CRC8, ARM_CRC64)
static int cpu_has_crc(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#else
static uint32_t crc_hw_raw(uint32_t r, const uint8_t *p, size_t n) { return crc_sw(r, p, n); }
static int cpu_has_crc(void) { return 0; }
#endif

/** Build the tables; use the CPU's CRC instructions when present and `allow_hw`. */
static void crc32c_init(int allow_hw) {
  table_init();
  shift_init(shift_lane, LANE);
  shift_init(shift_2lane, 2 * LANE);
  have_hw = allow_hw && cpu_has_crc();
}

/** Finished CRC32C of `p` continuing from the finished CRC `crc` (0 to start). */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n) {
  return have_hw ? ~crc_hw_raw(~crc, p, n) : ~crc_sw(~crc, p, n);
}

#endif
