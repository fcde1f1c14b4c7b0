/** A one-line progress bar (step, loss, steps/s, ETA) on a terminal; periodic plain lines otherwise. */
export class Progress {
  private readonly started = Date.now();
  private lastPrint = 0;
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly first: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 10000,
  ) {
    this.tty = !!stream.isTTY;
  }

  update(step: number, loss: number, lr: number): void {
    const now = Date.now();
    const done = step - this.first;
    const rate = done / Math.max((now - this.started) / 1000, 1e-9);
    const eta = rate > 0 ? (this.total - step) / rate : Infinity;
    const text = `step ${step}/${this.total} loss ${loss.toFixed(3)} lr ${lr.toExponential(1)} ${rate.toFixed(2)} steps/s ETA ${formatDuration(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((width * step) / this.total);
      this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
      if (step === this.total) this.stream.write('\n');
    } else if (now - this.lastPrint >= this.plainEveryMs || step === this.total || done === 1) {
      this.stream.write(`${text}\n`);
      this.lastPrint = now;
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
