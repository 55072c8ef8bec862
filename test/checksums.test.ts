import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import {
  algorithmFromHeader, algorithmFromName, CHECKSUM_ALGORITHMS, checksumByteLength, checksumHeaderName, createChecksum,
  type ChecksumAlgorithm,
} from '../server/checksums';

const hexOf = (alg: ChecksumAlgorithm, data: Buffer) => {
  const c = createChecksum(alg);
  c.update(data);
  return Buffer.from(c.digest(), 'base64').toString('hex');
};

t.test('catalogue check values for "123456789"', async (t) => {
  const input = Buffer.from('123456789');
  t.equal(hexOf('CRC32', input), 'cbf43926');
  t.equal(hexOf('CRC32C', input), 'e3069283');
  t.equal(hexOf('CRC64NVME', input), 'ae8b14860a799888');
  t.equal(hexOf('SHA1', input), createHash('sha1').update(input).digest('hex'));
  t.equal(hexOf('SHA256', input), createHash('sha256').update(input).digest('hex'));
});

t.test('empty input digests', async (t) => {
  t.equal(createChecksum('CRC32').digest(), 'AAAAAA==');
  t.equal(createChecksum('CRC32C').digest(), 'AAAAAA==');
  t.equal(createChecksum('CRC64NVME').digest(), 'AAAAAAAAAAA=');
  t.equal(createChecksum('SHA256').digest(), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
});

t.test('digest is base64 of big-endian bytes with the right length', async (t) => {
  for (const alg of CHECKSUM_ALGORITHMS) {
    const c = createChecksum(alg);
    c.update(Buffer.from('hello'));
    t.equal(Buffer.from(c.digest(), 'base64').length, checksumByteLength(alg), alg);
  }
  // Known S3 values for "hello" (big-endian, base64).
  t.equal((() => { const c = createChecksum('CRC32'); c.update(Buffer.from('hello')); return c.digest(); })(), 'NhCmhg==');
});

t.test('incremental updates at arbitrary split points equal one-shot', async (t) => {
  const data = randomBytes(100_003);
  for (const alg of CHECKSUM_ALGORITHMS) {
    const one = createChecksum(alg);
    one.update(data);
    const expected = one.digest();
    for (let trial = 0; trial < 5; trial++) {
      const inc = createChecksum(alg);
      let pos = 0;
      while (pos < data.length) {
        const n = Math.min(data.length - pos, 1 + Math.floor(Math.random() * (trial % 2 ? 13 : 9000)));
        inc.update(data.subarray(pos, pos + n));
        pos += n;
      }
      inc.update(Buffer.alloc(0));
      t.equal(inc.digest(), expected, `${alg} trial ${trial}`);
    }
  }
});

t.test('CRC64NVME agrees with the AWS SDK reference implementation', async (t) => {
  for (const len of [0, 1, 7, 8, 9, 15, 16, 17, 255, 4096, 65_537]) {
    const data = randomBytes(len);
    const ref = new Crc64NvmeJs();
    ref.update(data);
    const refValue = Buffer.from(await ref.digest()).toString('base64');
    const ours = createChecksum('CRC64NVME');
    ours.update(data);
    t.equal(ours.digest(), refValue, `length ${len}`);
  }
});

t.test('header name mapping', async (t) => {
  t.equal(checksumHeaderName('CRC32'), 'x-amz-checksum-crc32');
  t.equal(checksumHeaderName('CRC64NVME'), 'x-amz-checksum-crc64nvme');
  for (const alg of CHECKSUM_ALGORITHMS) t.equal(algorithmFromHeader(checksumHeaderName(alg)), alg);
  t.equal(algorithmFromHeader('X-Amz-Checksum-CRC32C'), 'CRC32C');
  t.equal(algorithmFromHeader('x-amz-checksum-type'), undefined);
  t.equal(algorithmFromHeader('x-amz-checksum-md5'), undefined);
  t.equal(algorithmFromHeader('content-md5'), undefined);
  t.equal(algorithmFromName('crc64nvme'), 'CRC64NVME');
  t.equal(algorithmFromName('md5'), undefined);
});
