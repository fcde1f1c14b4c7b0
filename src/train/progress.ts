/**
 * Progress of long work (training steps, upscaling tiles): a one-line bar with the rate and the
 * time left on a terminal; on anything else a plain line now and then.
 */
export interface ProgressOptions {
  /** What is counted, singular (default 'step'). */
  unit?: string;
  /** Where the lines go (default stderr): all Progress uses of a stream is isTTY and write. */
  stream?: ProgressStream;
  /** Plain (non-terminal) output: at most one line per this many milliseconds (default 10 s). */
  plainEveryMs?: number;
  /** Plain output: a line at the first unit done, to show that work started (default true). */
  plainFirst?: boolean;
}

export type ProgressStream = Pick<NodeJS.WriteStream, 'isTTY'> & { write(text: string): unknown };

export class Progress {
  private readonly started = Date.now();
  private lastPrint: number;
  private printed = false;
  private readonly tty: boolean;
  private readonly unit: string;
  private readonly stream: ProgressStream;
  private readonly plainEveryMs: number;
  private readonly plainFirst: boolean;

  constructor(
    private readonly total: number,
    private readonly first: number,
    options: ProgressOptions = {},
  ) {
    this.unit = options.unit ?? 'step';
    this.stream = options.stream ?? process.stderr;
    this.plainEveryMs = options.plainEveryMs ?? 10000;
    this.plainFirst = options.plainFirst ?? true;
    this.tty = !!this.stream.isTTY;
    this.lastPrint = this.started;
  }

  /** `done` units of `total` are done; `detail` (e.g. the loss) goes after the count. */
  update(done: number, detail = ''): void {
    const now = Date.now();
    const count = done - this.first;
    const rate = count / Math.max((now - this.started) / 1000, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const speed =
      rate >= 1 || rate === 0 ? `${rate.toFixed(2)} ${this.unit}s/s` : `${(1 / rate).toFixed(1)} s/${this.unit}`;
    const text = `${this.unit} ${done}/${this.total}${detail ? ` ${detail}` : ''} ${speed} ETA ${formatDuration(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((width * done) / this.total);
      this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
      if (done === this.total) this.stream.write('\n');
    } else if (
      now - this.lastPrint >= this.plainEveryMs ||
      (done === this.total && this.printed) ||
      (count === 1 && this.plainFirst)
    ) {
      this.stream.write(`${text}\n`);
      this.lastPrint = now;
      this.printed = true;
    }
  }

  /** Prints a message on its own line (keeping the bar intact on a terminal). */
  note(message: string): void {
    this.stream.write(this.tty ? `\r\x1b[K${message}\n` : `${message}\n`);
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
