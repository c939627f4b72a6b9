/**
 * The safetensors reader on hostile files: every length, shape and offset is checked against the
 * file's real size before a buffer is allocated or a byte of tensor data is read. Allocation is
 * observed through `process.memoryUsage().arrayBuffers` (Buffers and typed arrays live there):
 * a header that claims 90 MB must not move it by more than a little.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { MAX_HEADER_BYTES, readSafetensors, readSafetensorsHeader } from '../../src/model/io/safetensors.js';
import { safetensorsBytes } from './harness.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rlhf-hostile-st-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function file(bytes: Uint8Array): string {
  const path = join(dir, `hostile-${++fileNo}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

/** One F32 tensor entry with the given shape and offsets, and `dataBytes` bytes of data. */
function oneTensor(shape: unknown, offsets: unknown, dataBytes: number, dtype = 'F32'): string {
  return file(safetensorsBytes({ t: { dtype, shape, data_offsets: offsets } }, new Uint8Array(dataBytes)));
}

/** Run `read` on `path`; expect a UserError naming the file and `reason`, and almost no memory moved. */
function expectRefusedWithoutAllocating(path: string, reason: RegExp): void {
  for (const read of [readSafetensorsHeader, readSafetensors]) {
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    let caught: unknown;
    try {
      read(path);
    } catch (e) {
      caught = e;
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as Error).message).toContain(path);
    expect((caught as Error).message).toMatch(reason);
    // The claims below are 16 MB to 2^64 bytes; a reader that trusted them would move this by that much.
    expect(grown).toBeLessThan(1 << 20);
  }
}

describe('hostile safetensors headers are refused before any allocation', () => {
  test('header length 2^53 (over the 100 MB limit)', () => {
    expectRefusedWithoutAllocating(file(safetensorsBytes({}, new Uint8Array(0), 2n ** 53n)), /header length 9007199254740992 exceeds the 100000000-byte limit/);
  });

  test('header length 2^64 - 1', () => {
    expectRefusedWithoutAllocating(file(safetensorsBytes({}, new Uint8Array(0), 2n ** 64n - 1n)), /header length 18446744073709551615 exceeds/);
  });

  test('header length just under the limit, in a 100-byte file', () => {
    const bytes = safetensorsBytes({ pad: 'x'.repeat(60) }, new Uint8Array(0), BigInt(MAX_HEADER_BYTES - 8));
    expectRefusedWithoutAllocating(file(bytes), /header length 99999992 runs past the end of the file \(\d+ bytes\)/);
  });

  test('a tensor whose data_offsets reach past the end of the file (2^40 bytes claimed)', () => {
    expectRefusedWithoutAllocating(oneTensor([2 ** 38], [0, 2 ** 40], 16), /data_offsets \[0, 1099511627776\] run past the end of the data \(16 bytes\)/);
  });

  test('a tensor of 16 MB claimed in a file of 16 bytes', () => {
    expectRefusedWithoutAllocating(oneTensor([4 << 20], [0, 16 << 20], 16), /run past the end of the data \(16 bytes\)/);
  });

  test('shape whose element count overflows 64 bits (2^64 F16 values, 2^65 bytes ≡ 0 mod 2^64)', () => {
    // In wrapping u64 arithmetic this shape needs 0 bytes, which [0, 0] would "match".
    expectRefusedWithoutAllocating(oneTensor([65536, 65536, 65536, 65536], [0, 0], 0, 'F16'), /shape \[65536, 65536, 65536, 65536\] of F16 needs 36893488147419103232 bytes but data_offsets span 0/);
  });

  test('shape whose element count overflows 32 bits (2^32 F32 values in 16 bytes)', () => {
    expectRefusedWithoutAllocating(oneTensor([65536, 65536], [0, 16], 16), /needs 17179869184 bytes but data_offsets span 16/);
  });

  test('offsets that are not safe integers (2^53 + 8)', () => {
    const path = file(Buffer.concat([safetensorsBytes('{"t":{"dtype":"F32","shape":[2],"data_offsets":[9007199254740992,9007199254741000]}}', new Uint8Array(8))]));
    expectRefusedWithoutAllocating(path, /data_offsets must be two non-negative integers/);
  });

  test('negative, fractional and non-numeric dimensions', () => {
    expectRefusedWithoutAllocating(oneTensor([-4], [0, 16], 16), /shape must be an array of non-negative integers/);
    expectRefusedWithoutAllocating(oneTensor([1.5], [0, 6], 6), /shape must be an array of non-negative integers/);
    expectRefusedWithoutAllocating(oneTensor(['4'], [0, 16], 16), /shape must be an array of non-negative integers/);
  });

  test('end before begin', () => {
    expectRefusedWithoutAllocating(oneTensor([0], [16, 8], 16), /data_offsets \[16, 8\] end before they begin/);
  });

  test('a header that is an array, and metadata that is not strings', () => {
    expectRefusedWithoutAllocating(file(safetensorsBytes('[1, 2]', new Uint8Array(0))), /header is not a JSON object/);
    expectRefusedWithoutAllocating(file(safetensorsBytes({ __metadata__: { format: 7 } }, new Uint8Array(0))), /__metadata__ key "format" is not a string/);
  });

  test('a sparse 64 MiB file whose header claims a tensor covering everything but the last byte', () => {
    // The file really is large (sparse, so no disk is used): the check is against its exact size.
    const path = join(dir, 'sparse.safetensors');
    const header = safetensorsBytes({ t: { dtype: 'F32', shape: [16 << 20], data_offsets: [0, 64 << 20] } }, new Uint8Array(0));
    const fd = openSync(path, 'w');
    writeSync(fd, header);
    writeSync(fd, Buffer.from([0]), 0, 1, header.length + (64 << 20) - 2); // one byte short of the claim
    closeSync(fd);
    expectRefusedWithoutAllocating(path, /run past the end of the data \(67108863 bytes\)/);
  });
});

test('a well-formed file still reads (the checks are not over-eager)', () => {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  const path = file(safetensorsBytes({ __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [16, 24] } }, new Uint8Array(data.buffer)));
  const { tensors, metadata } = readSafetensors(path);
  expect(metadata).toEqual({ format: 'pt' });
  expect([...tensors.get('a')!.data]).toEqual([1, 2, 3, 4]);
  expect([...tensors.get('b')!.data]).toEqual([5, 6]);
});
