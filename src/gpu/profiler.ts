/**
 * GPU time of dispatches from timestamp queries (the `timestamp-query` feature): each timed
 * dispatch gets its own compute pass with a begin and an end timestamp, summed by label. The
 * queries of a submit are resolved into a buffer recorded with it and read after it completes,
 * so timing never waits inside a step.
 */
import './globals.js';

/** GPU time and dispatch count of one label. */
export interface KernelTime {
  ms: number;
  count: number;
}

const QUERY_CAPACITY = 4096;

export class Profiler {
  readonly querySet: GPUQuerySet;
  private labels: string[] = [];
  private pending: Promise<void>[] = [];
  private readonly totals = new Map<string, KernelTime>();

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY, label: 'profiler' });
  }

  get full(): boolean {
    return this.labels.length * 2 >= QUERY_CAPACITY;
  }

  /** The timestamp writes of a compute pass holding one dispatch timed under `label`. */
  timestampWrites(label: string): GPUComputePassTimestampWrites {
    const at = this.labels.length * 2;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 };
  }

  /** Records the resolve of this encoder's timestamps; the returned call, after the submit, reads them. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.labels.length * 2;
    if (!n) return null;
    const labels = this.labels;
    this.labels = [];
    const resolved = this.device.createBuffer({
      size: n * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const readable = this.device.createBuffer({
      size: n * 8,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.querySet, 0, n, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readable, 0, n * 8);
    return () => {
      this.pending.push(
        readable.mapAsync(GPUMapMode.READ).then(() => {
          const t = new BigUint64Array(readable.getMappedRange());
          labels.forEach((label, i) => {
            const entry = this.totals.get(label) ?? { ms: 0, count: 0 };
            entry.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
            entry.count++;
            this.totals.set(label, entry);
          });
          readable.unmap();
          readable.destroy();
          resolved.destroy();
        }),
      );
    };
  }

  /** Every label's total so far (of what was submitted). */
  async collect(): Promise<Map<string, KernelTime>> {
    await Promise.all(this.pending);
    this.pending = [];
    return this.totals;
  }

  /** The totals of `labels` (absent when nothing ran under one), removed from the totals. */
  async take(labels: readonly string[]): Promise<Map<string, KernelTime>> {
    const totals = await this.collect();
    const taken = new Map<string, KernelTime>();
    for (const label of labels) {
      const t = totals.get(label);
      if (t) taken.set(label, t);
      totals.delete(label);
    }
    return taken;
  }
}
