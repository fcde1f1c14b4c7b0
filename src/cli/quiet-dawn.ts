/**
 * Keeps Dawn's native limit warnings off the commands' stderr.
 *
 * When Dawn discovers a Vulkan adapter whose driver offers more than 16 dynamic uniform or storage
 * buffers per pipeline layout (lavapipe offers 1000000, so does RADV), its `NormalizeLimits`
 * clamps them and prints two "Warning: ... artificially reduced ..." lines with `fprintf(stderr)`
 * from native code (src/dawn/native/Limits.cpp). No toggle, instance option or requested limit
 * avoids it, and Node cannot redirect its own file descriptor 2, so the command line (only it; the
 * library prints nothing of its own) runs itself as a child whose stderr it passes on without
 * those two lines. Signals the parent gets are passed on; when the parent dies without one
 * (SIGKILL, a crash), the IPC channel closes and the child kills itself the same abrupt way, so
 * the work never outlives the command.
 */
import { spawn } from 'node:child_process';

const CHILD_ENV = 'SISN_STDERR_FILTERED';
/** The parent's stderr is a terminal: the child draws progress bars as if its own were. */
const TTY_ENV = 'SISN_STDERR_TTY';
const WARNING = new RegExp(
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced /.source +
    /from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/.source,
);
const WARNING_START = 'Warning: maxDynamic';

/** Passes text on without Dawn's limit warnings; holds back only what may be the start of one. */
export class DawnWarningFilter {
  private held = '';

  /** The part of `chunk` (after what was held back) that can be written now. */
  push(chunk: string): string {
    const text = this.held + chunk;
    const cut = text.lastIndexOf('\n') + 1;
    const lines = text.slice(0, cut);
    const rest = text.slice(cut);
    const mayBeWarning = rest.startsWith(WARNING_START) || WARNING_START.startsWith(rest);
    this.held = mayBeWarning ? rest : '';
    const kept = lines
      ? lines
          .split('\n')
          .slice(0, -1)
          .filter((l) => !WARNING.test(l))
          .map((l) => `${l}\n`)
          .join('')
      : '';
    return kept + (mayBeWarning ? '' : rest);
  }

  /** What was held back, at the end of the stream. */
  end(): string {
    const rest = this.held;
    this.held = '';
    return WARNING.test(rest) ? '' : rest;
  }
}

/**
 * Runs `command` in this process when it is the filtered child; otherwise starts this same script
 * again as that child, filters its stderr and returns its exit code (re-raising its signal).
 */
export async function withoutDawnWarnings(command: () => Promise<number>): Promise<number> {
  if (process.env[CHILD_ENV]) {
    if (process.env[TTY_ENV]) Object.assign(process.stderr, { isTTY: true });
    process.channel?.unref();
    process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
    return command();
  }
  const env = { ...process.env, [CHILD_ENV]: '1', [TTY_ENV]: process.stderr.isTTY ? '1' : '' };
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    env,
  });
  const filter = new DawnWarningFilter();
  child.stderr!.setEncoding('utf8');
  const pass = (text: string) => text && process.stderr.write(text);
  child.stderr!.on('data', (chunk: string) => pass(filter.push(chunk)));
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, forward);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  pass(filter.end());
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, forward);
  if (signal) process.kill(process.pid, signal);
  return code ?? 1;
}
