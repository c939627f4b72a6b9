/**
 * Safetensors files mapped into memory, for frozen float32 weights that are never copied.
 *
 * Copying a checkpoint onto the wasm heap (or into any fresh memory) is slow because fresh memory
 * is slow: on the bench VM each first touch of a fresh 4 KiB page costs ~3.7 µs, so 2 GB of fresh
 * memory costs ~7 s of page faults before a byte is copied. A mapping of the file is the page
 * cache's own pages: reading them costs what reading a file costs (as PyTorch's safetensors does).
 *
 * The mapping is `MAP_PRIVATE` with `PROT_READ | PROT_WRITE`: a stray write gets its own copy of the
 * page and never reaches the file. Weights take views of it (`koffi.view`, an external ArrayBuffer
 * per tensor); the file is unmapped when the last of them is released (`LlamaModel.dispose`).
 * Linux and macOS, with koffi (the FFI rlhf-kit's GEMM binding uses); elsewhere `mapFile` returns
 * null and callers read the file instead.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';

type Koffi = (typeof import('koffi'))['default'];

interface Mmap {
  koffi: Koffi;
  mmap: (addr: number, length: number, prot: number, flags: number, fd: number, offset: number) => number | bigint;
  munmap: (addr: number, length: number) => number;
}

// The same values on Linux and macOS.
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_PRIVATE = 0x2;

let bound: Mmap | null | undefined;

/** libc's mmap/munmap through koffi, bound once; null where either is unavailable. */
function bindMmap(): Mmap | null {
  if (bound !== undefined) return bound;
  bound = null;
  const libc = process.platform === 'darwin' ? '/usr/lib/libSystem.B.dylib' : process.platform === 'linux' ? 'libc.so.6' : null;
  if (libc === null || process.env['RLHF_MMAP'] === 'off') return bound;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = koffi.load(libc);
    // Addresses as integers: MAP_FAILED ((void *)-1) comes back as a bigint, any real address as a number.
    const mmap = lib.func('uintptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)') as Mmap['mmap'];
    const munmap = lib.func('int munmap(uintptr_t addr, size_t length)') as Mmap['munmap'];
    bound = { koffi, mmap, munmap };
  } catch {
    bound = null;
  }
  return bound;
}

/** Whether files can be mapped here (Linux/macOS with koffi, and `RLHF_MMAP` is not `off`). */
export function canMapFiles(): boolean {
  return bindMmap() !== null;
}

export class MappedFile {
  readonly path: string;
  readonly length: number;
  private address: number;
  private refs = 0;
  private readonly mm: Mmap;

  private constructor(mm: Mmap, path: string, address: number, length: number) {
    this.mm = mm;
    this.path = path;
    this.address = address;
    this.length = length;
  }

  /** Map the whole of `path`; null where mapping is unavailable or the call fails (read it instead). */
  static open(path: string): MappedFile | null {
    const mm = bindMmap();
    if (mm === null) return null;
    const fd = openSync(path, 'r');
    try {
      const length = fstatSync(fd).size;
      if (length === 0) return null;
      const at = mm.mmap(0, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (typeof at !== 'number' || at === 0) return null;
      return new MappedFile(mm, path, at, length);
    } finally {
      closeSync(fd); // the mapping keeps the file's pages, not the descriptor
    }
  }

  /** Whether the file is still mapped. */
  get mapped(): boolean {
    return this.address !== 0;
  }

  /** Whether `count` float32 values at byte `offset` can be viewed in place (inside the file, 4-byte aligned). */
  canViewFloat32(offset: number, count: number): boolean {
    return this.canView(offset, count, 4);
  }

  /** Whether `count` values of `bytes` bytes each at byte `offset` can be viewed in place (inside the file, aligned). */
  canView(offset: number, count: number, bytes: 2 | 4): boolean {
    return this.mapped && (this.address + offset) % bytes === 0 && offset >= 0 && offset + bytes * count <= this.length;
  }

  /**
   * `count` float32 values at byte `offset` of the file, in place. The mapping stays until every
   * view taken has been let go through the returned `release` (call it once, then never touch the view).
   */
  float32View(offset: number, count: number): { values: Float32Array; release: () => void } {
    const { buffer, release } = this.view(offset, count, 4, 'float32');
    return { values: new Float32Array(buffer), release };
  }

  /** `count` 16-bit values (bfloat16 bits) at byte `offset`, in place; as `float32View`. */
  uint16View(offset: number, count: number): { values: Uint16Array; release: () => void } {
    const { buffer, release } = this.view(offset, count, 2, 'uint16');
    return { values: new Uint16Array(buffer), release };
  }

  private view(offset: number, count: number, bytes: 2 | 4, what: string): { buffer: ArrayBuffer; release: () => void } {
    if (!this.canView(offset, count, bytes)) {
      throw new Error(`MappedFile: no ${what} view of ${count} values at byte ${offset} of ${this.path} (${this.mapped ? 'misaligned or outside the file' : 'unmapped'})`);
    }
    const buffer = count === 0 ? new ArrayBuffer(0) : this.mm.koffi.view(this.address + offset, bytes * count);
    this.refs++;
    let released = false;
    return {
      buffer,
      release: () => {
        if (released) return;
        released = true;
        if (--this.refs === 0) this.unmap();
      },
    };
  }

  /** Unmap now, views or not (for a load that failed half way, before any view escaped). */
  unmap(): void {
    if (!this.mapped) return;
    this.mm.munmap(this.address, this.length);
    this.address = 0;
  }
}
