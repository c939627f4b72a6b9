import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  f16ToF32,
  f32BitsToBf16,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/model/io/safetensors.js';
import { UserError } from '../../src/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'st-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Build a raw safetensors file from a header object and a data buffer. */
function rawFile(name: string, header: unknown, data: Uint8Array, lengthOverride?: bigint): string {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

function expectUserError(fn: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(UserError);
  for (const f of fragments) expect((caught as Error).message).toContain(f);
}

describe('safetensors', () => {
  test('F32 round trip is bit-exact, names sorted, header 8-byte aligned with metadata', () => {
    const path = join(dir, 'a.safetensors');
    const b = { shape: [2, 3], data: new Float32Array([1, -2.5, 3e-8, Math.PI, -0, 7]) };
    const a = { shape: [], data: new Float32Array([42]) };
    writeSafetensors(path, { 'z.b': b, 'a.a': a }, { metadata: { format: 'pt' } });
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
    const header = bytes.subarray(8, 8 + headerLen).toString('utf8');
    expect(header.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},"a.a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
        '"z.b":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]}}',
    );
    const back = readSafetensors(path);
    expect(back.metadata).toEqual({ format: 'pt' });
    expect([...back.tensors.keys()]).toEqual(['a.a', 'z.b']);
    expect(back.tensors.get('z.b')!.shape).toEqual([2, 3]);
    expect(Array.from(back.tensors.get('z.b')!.data)).toEqual(Array.from(b.data));
    expect(Object.is(back.tensors.get('z.b')!.data[4], -0)).toBe(true);
    expect(back.tensors.get('a.a')!.data[0]).toBe(42);
  });

  test('BF16 write rounds to nearest even and reads back as float32', () => {
    // 1 + 2^-8 is exactly halfway between two bf16 values (1 and 1 + 2^-7): ties to even → 1.
    // 1 + 3·2^-9 rounds up to 1 + 2^-7.
    const path = join(dir, 'bf16.safetensors');
    const data = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -9, -2, NaN, Infinity]);
    writeSafetensors(path, new Map([['w', { shape: [5], data }]]), { dtype: 'BF16' });
    const got = readSafetensors(path).tensors.get('w')!.data;
    expect(got[0]).toBe(1);
    expect(got[1]).toBe(1 + 2 ** -7);
    expect(got[2]).toBe(-2);
    expect(Number.isNaN(got[3])).toBe(true);
    expect(got[4]).toBe(Infinity);
    expect(readSafetensorsHeader(path).entries[0]).toMatchObject({ dtype: 'BF16', begin: 0, end: 10 });
  });

  test('bf16 and f16 bit conversions (hand-computed)', () => {
    expect(f32BitsToBf16(0x3f800000)).toBe(0x3f80); // 1.0
    expect(f32BitsToBf16(0x3f808000)).toBe(0x3f80); // tie → even
    expect(f32BitsToBf16(0x3f818000)).toBe(0x3f82); // tie → even (up)
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(f16ToF32(0x7e00))).toBe(true);
  });

  test('reads F16 written by hand', () => {
    const data = new Uint8Array(new Uint16Array([0x3c00, 0x3800, 0xbc00]).buffer); // 1, 0.5, -1
    const path = rawFile('f16.safetensors', { h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] } }, data);
    expect(Array.from(readSafetensors(path).tensors.get('h')!.data)).toEqual([1, 0.5, -1]);
  });

  describe('hostile files fail with an error naming the file and the tensor', () => {
    const f32 = (n: number) => new Uint8Array(4 * n);

    test('truncated file', () => {
      const path = rawFile('trunc.safetensors', { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(3));
      expectUserError(() => readSafetensors(path), 'trunc.safetensors', '"w"', 'past the end');
    });

    test('file shorter than 8 bytes', () => {
      const path = join(dir, 'tiny.safetensors');
      writeFileSync(path, Buffer.from([1, 2, 3]));
      expectUserError(() => readSafetensors(path), 'tiny.safetensors', 'shorter than');
    });

    test('offsets past the end', () => {
      const path = rawFile(
        'past.safetensors',
        { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [1000, 1004] } },
        f32(2),
      );
      expectUserError(() => readSafetensors(path), 'past.safetensors', '"b"', '1004');
    });

    test('unknown dtype', () => {
      const path = rawFile('dt.safetensors', { w: { dtype: 'Q4', shape: [1], data_offsets: [0, 4] } }, f32(1));
      expectUserError(() => readSafetensors(path), 'dt.safetensors', '"w"', 'unsupported dtype "Q4"');
    });

    test('huge header length is refused before allocating it', () => {
      const path = rawFile('huge.safetensors', {}, new Uint8Array(0), 2n ** 60n);
      expectUserError(() => readSafetensors(path), 'huge.safetensors', 'exceeds');
      const path2 = rawFile('huge2.safetensors', {}, new Uint8Array(0), 50_000_000n);
      expectUserError(() => readSafetensors(path2), 'huge2.safetensors', 'past the end of the file');
    });

    test('shape × dtype size differs from the byte span', () => {
      const path = rawFile('shape.safetensors', { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, f32(4));
      expectUserError(() => readSafetensors(path), 'shape.safetensors', '"w"', 'needs 24 bytes but data_offsets span 16');
    });

    test('absurd shape does not overflow into a plausible size', () => {
      const path = rawFile(
        'absurd.safetensors',
        { w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 0], data_offsets: [0, 0] }, x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
        f32(1),
      );
      // 2^40·2^40·0 = 0 bytes is legal in the format; the point is that the product check is exact.
      expect(readSafetensors(path).tensors.get('w')!.data.length).toBe(0);
      const path2 = rawFile('absurd2.safetensors', { w: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, f32(1));
      expectUserError(() => readSafetensors(path2), 'absurd2.safetensors', '"w"', 'needs 4835703278458516698824704 bytes');
    });

    test('overlapping tensors and gaps', () => {
      const overlap = rawFile(
        'overlap.safetensors',
        { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
        f32(3),
      );
      expectUserError(() => readSafetensors(overlap), 'overlap.safetensors', '"b"', 'overlaps');
      const gap = rawFile(
        'gap.safetensors',
        { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
        f32(3),
      );
      expectUserError(() => readSafetensors(gap), 'gap.safetensors', '"b"', 'gap');
      const trailing = rawFile('trail.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2));
      expectUserError(() => readSafetensors(trailing), 'trail.safetensors', 'cover 4 bytes');
    });

    test('header that is not JSON', () => {
      const path = join(dir, 'nojson.safetensors');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(5n);
      writeFileSync(path, Buffer.concat([len, Buffer.from('{nope')]));
      expectUserError(() => readSafetensors(path), 'nojson.safetensors', 'not valid JSON');
    });

    test('missing file', () => {
      expectUserError(() => readSafetensors(join(dir, 'absent.safetensors')), 'absent.safetensors');
    });
  });

  test('writer refuses data that does not match the shape', () => {
    expect(() => writeSafetensors(join(dir, 'bad.safetensors'), { w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      /"w".*\[2, 2\]/,
    );
  });
});
