// Checks crc32c.h on whatever CPU it is compiled for: the hardware path (if the CPU has one)
// against the table path, at lengths around the lane boundaries, with and without an initial
// CRC, and the combine operator. Built and run by hand, natively or for another architecture:
//   cc -O2 -o /tmp/crc32c-check storage/native/crc32c-check.c && /tmp/crc32c-check
//   aarch64-linux-gnu-gcc -O2 -static -o /tmp/crc32c-check-arm64 storage/native/crc32c-check.c
//   qemu-aarch64 -cpu max /tmp/crc32c-check-arm64      (Debian: gcc-aarch64-linux-gnu, qemu-user)
#include <stdio.h>
#include <stdlib.h>
#include "crc32c.h"

int main(void) {
  static uint8_t buf[3 * LANE * 4 + 100];
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < sizeof buf; i++) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; buf[i] = (uint8_t)x; }
  crc32c_init(1);
  int hw = have_hw, bad = 0;
  // The check value of CRC32C over "123456789" is 0xE3069283.
  if (crc32c(0, (const uint8_t *)"123456789", 9) != 0xE3069283u) { printf("check value wrong\n"); bad++; }
  size_t lens[] = {0, 1, 7, 8, 9, 3 * LANE - 1, 3 * LANE, 3 * LANE + 1, 3 * LANE + 8, 6 * LANE + 3, sizeof buf};
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    size_t n = lens[k];
    uint32_t h = crc32c(0, buf, n), h2 = crc32c(0xdeadbeef, buf, n);
    uint32_t s = ~crc_sw(~0u, buf, n), s2 = ~crc_sw(~0xdeadbeefu, buf, n);
    if (h != s || h2 != s2) { printf("length %zu: hw %08x/%08x, table %08x/%08x\n", n, h, h2, s, s2); bad++; }
    size_t a = n / 3;
    if (crc32c_combine(crc32c(0, buf, a), crc32c(0, buf + a, n - a), n - a) != h) { printf("combine at %zu wrong\n", n); bad++; }
  }
  printf("crc32c: %s path, %s\n", hw ? "hardware" : "table", bad ? "FAILED" : "ok");
  return bad ? 1 : 0;
}
