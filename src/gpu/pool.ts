/**
 * Size-bucketed pool of storage buffers.
 *
 * Every command of this engine goes through one queue in order (uploads and readbacks are copies
 * recorded in the same encoder, never `queue.writeBuffer`), and WebGPU makes each dispatch see
 * the writes of the dispatches before it. So a buffer whose last reader has been *recorded* may be
 * handed to the next writer at once, even inside the same command encoder: that is what keeps a
 * whole training step in one submit without its peak memory growing to the sum of all its
 * temporaries. What must wait for the GPU is destruction: `trim()` only destroys buffers after the
 * caller has awaited the queue (see `Gpu.trim`).
 */
import './globals.js';

export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Bucket sizes: 4 steps per octave above 4 KiB (at most 25% slack), whole 256 B units below. */
export function bucketSize(bytes: number): number {
  if (bytes <= 4096) return Math.max(256, Math.ceil(bytes / 256) * 256);
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = octave / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly sizeOf = new WeakMap<GPUBuffer, number>();
  /** Bytes of every buffer the pool has created and not destroyed. */
  allocatedBytes = 0;
  /** Bytes handed out and not yet released. */
  inUseBytes = 0;
  /** Largest `inUseBytes` since the last `resetPeak()`. */
  peakInUseBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
  ) {}

  acquire(bytes: number, label = 'tensor'): GPUBuffer {
    const size = bucketSize(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`buffer of ${bytes} bytes exceeds the adapter's maxBufferSize (${this.maxBufferSize})`);
    }
    let buffer = this.free.get(size)?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
      this.sizeOf.set(buffer, size);
      this.allocatedBytes += size;
    }
    this.inUseBytes += size;
    if (this.inUseBytes > this.peakInUseBytes) this.peakInUseBytes = this.inUseBytes;
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.sizeOf.get(buffer);
    if (size === undefined) throw new Error('released a buffer that the pool did not create');
    this.inUseBytes -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
  }

  resetPeak(): void {
    this.peakInUseBytes = this.inUseBytes;
  }

  /** Destroys every free buffer. Call only when the GPU has finished all submitted work. */
  destroyFree(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.allocatedBytes -= this.sizeOf.get(b)!;
        b.destroy();
      }
    }
    this.free.clear();
  }
}
