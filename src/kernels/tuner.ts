/**
 * Kernel variants chosen per adapter by timing them on the shapes in use.
 *
 * An op with several variants of a kernel (named sets of override constants or flags that compute
 * the same result) asks `variant(kernel, key, names, trial)` which to launch for a shape `key`: the
 * tuned choice where the choices file (choice-cache.ts) has one for this adapter, else `names[0]`.
 * Inside a tuning run (`tune(run)`), the first `variant` call for an untuned key also records every
 * candidate's `trial` SELECT_ROUNDS + CONFIRM_ROUNDS times, interleaved, each dispatch timed with
 * timestamp queries under its own label; the run goes on with `names[0]`. After the run and a sync,
 * the fastest candidate over the selection rounds (least GPU time: the first round may include the
 * pipeline's compilation) is re-timed against the default on the confirmation rounds, which took no
 * part in picking it (a least of many noisy times favours a lucky candidate): it becomes the key's
 * choice only where it beats the default there by CONFIRM_MARGIN, else the default stays. Then the
 * choices file is written. Nothing is read back inside the run.
 * Without the `timestamp-query` feature (some browsers) the run happens untimed and says so.
 */
import type { DeviceContext } from '../gpu/device.js';
import { platform } from '../platform/index.js';
import {
  ChoiceCache,
  CHOICES_FILE,
  adapterIdentity,
  sourceHash,
  type Choice,
  type PipelineId,
} from './choice-cache.js';
import type { Constants } from './reflect.js';

/** Records one launch of the op with the named variant, on the inputs of the call that asked. */
export type Trial = (variant: string) => void;

/** Trials of each candidate per key that pick the fastest (the least of each is kept). */
const SELECT_ROUNDS = 3;
/** Further trials of each candidate per key, in alternating order, that re-time the fastest against the default. */
const CONFIRM_ROUNDS = 3;
/** How much faster than the default (median ratio over the confirmation rounds) the fastest must be to be chosen. */
const CONFIRM_MARGIN = 0.05;

/** What a tuning run measured for one kernel and key. */
export interface TunedKey {
  kernel: string;
  key: string;
  candidates: string[];
  choice: string;
  /** GPU milliseconds of each candidate (least over the selection rounds). */
  ms: Record<string, number>;
  /** The fastest over the selection rounds (the choice, unless the default kept its place). */
  fastest: string;
  /**
   * The fastest's time over the default's in the confirmation rounds (median of the rounds' ratios;
   * 1 when the fastest is the default): it was chosen where this is at most 1 - CONFIRM_MARGIN.
   */
  versusDefault: number;
}

export interface TuningRun<T> {
  /** What the run returned. */
  result: T;
  /** The keys timed, in the order the run met them. */
  tuned: TunedKey[];
  /** Why nothing was timed, where nothing could be. */
  skipped?: string;
}

export interface TuneOptions {
  /** Time again the keys that already have a choice (default: only keys without one). */
  retime?: boolean;
}

interface Measured {
  kernel: string;
  key: string;
  source: string;
  candidates: string[];
  /** Timed labels per candidate, one per round. */
  labels: string[][];
  /** Pipelines each candidate's trial dispatched. */
  pipelines: Map<string, PipelineId>[];
}

interface Session {
  retime: boolean;
  measured: Map<string, Measured>;
}

export class KernelTuner {
  private readonly cache: ChoiceCache;
  private readonly hashes = new Map<string, string | null>();
  private session: Session | null = null;
  /** Pipelines the trial being recorded dispatches. */
  private observed: Map<string, PipelineId> | null = null;

  /** `source(kernel)`: the shader code the kernel compiles from here, or null for a kernel not known. */
  constructor(
    private readonly context: DeviceContext,
    private readonly source: (kernel: string) => string | null,
    warn: (message: string) => void = (m) => console.warn(`sisn-webgpu: ${m}`),
  ) {
    const identity = adapterIdentity(context.adapter.info, { ...context.features }, context.limits);
    this.cache = ChoiceCache.open(platform.cacheFile(CHOICES_FILE), identity, warn);
  }

  /** Where choices are kept between processes (null: nowhere, e.g. in a browser). */
  get cachePath(): string | null {
    return this.cache.path;
  }

  /** Whether this device can time kernels (the `timestamp-query` feature). */
  get canTime(): boolean {
    return this.context.device.features.has('timestamp-query');
  }

  private hashOf(kernel: string): string | null {
    if (!this.hashes.has(kernel)) {
      const code = this.source(kernel);
      this.hashes.set(kernel, code === null ? null : sourceHash(code));
    }
    return this.hashes.get(kernel)!;
  }

  /** The variant of `kernel` to launch for shape `key`: the tuned one, else `names[0]` (see the file comment). */
  variant(kernel: string, key: string, names: readonly string[], trial: Trial): string {
    if (!names.length) throw new Error(`kernel ${kernel}: no variant to choose from`);
    if (names.length === 1) return names[0];
    const source = this.hashOf(kernel) ?? '';
    const tuned = this.cache.lookup(kernel, source, key, names);
    const session = this.session;
    const id = `${kernel} [${key}]`;
    if (session && (!tuned || session.retime) && !session.measured.has(id)) {
      session.measured.set(id, this.measure(kernel, key, source, names, trial));
    }
    return tuned?.choice ?? names[0];
  }

  private measure(kernel: string, key: string, source: string, names: readonly string[], trial: Trial): Measured {
    const m: Measured = {
      kernel,
      key,
      source,
      candidates: [...names],
      labels: names.map(() => []),
      pipelines: names.map(() => new Map<string, PipelineId>()),
    };
    for (let round = 0; round < SELECT_ROUNDS + CONFIRM_ROUNDS; round++) {
      // Alternating order, so that neither of two candidates always runs right after the other.
      const order = names.map((_, i) => (round % 2 ? names.length - 1 - i : i));
      order.forEach((i) => {
        const name = names[i];
        const label = `tune ${kernel} [${key}] ${name} #${round}`;
        m.labels[i].push(label);
        this.observed = m.pipelines[i];
        try {
          this.context.recorder.timed(label, () => trial(name));
        } finally {
          this.observed = null;
        }
      });
    }
    return m;
  }

  /** Called by the registry for each dispatch: notes the pipelines a trial uses. */
  observe(name: string, constants: Constants | undefined): void {
    if (!this.observed) return;
    const id = constants ? `${name}|${JSON.stringify(Object.entries(constants).sort())}` : name;
    this.observed.set(id, constants ? { name, constants } : { name });
  }

  /**
   * Runs `run` (e.g. a forward or a training step) once as a tuning run: the keys it meets without
   * a choice (all of them with `retime`) are timed, the fastest variants chosen and saved.
   */
  async tune<T>(run: () => T | Promise<T>, options: TuneOptions = {}): Promise<TuningRun<T>> {
    if (this.session) throw new Error('a tuning run is already in progress');
    if (!this.canTime)
      return {
        result: await run(),
        tuned: [],
        skipped: 'this adapter has no timestamp-query feature, so kernels cannot be timed; the default variants run',
      };
    const session: Session = { retime: options.retime ?? false, measured: new Map() };
    this.session = session;
    let result: T;
    try {
      result = await run();
    } finally {
      this.session = null;
    }
    await this.context.sync();
    const tuned: TunedKey[] = [];
    for (const m of session.measured.values()) {
      const times = await this.context.recorder.takeTimes(m.labels.flat());
      const rounds = m.labels.map((labels) => labels.map((l) => times.get(l)?.ms ?? 0));
      const decision = decideVariant(m.candidates, rounds);
      const choice: Choice = {
        candidates: m.candidates,
        choice: decision.choice,
        ms: decision.ms,
        pipelines: [...m.pipelines[m.candidates.indexOf(decision.choice)].values()],
      };
      this.cache.set(m.kernel, m.source, m.key, choice);
      tuned.push({ kernel: m.kernel, key: m.key, candidates: m.candidates, ...decision });
    }
    this.cache.save();
    return { result, tuned };
  }

  /** The pipelines of every chosen variant on this adapter (whose kernel source is unchanged), to compile ahead. */
  chosenPipelines(): PipelineId[] {
    return this.cache.choices((kernel) => this.hashOf(kernel)).flatMap((c) => c.pipelines);
  }
}

/**
 * The choice among `candidates` (the default first) from each one's GPU times per round
 * (SELECT_ROUNDS + CONFIRM_ROUNDS each): the fastest over the selection rounds, where it beats the
 * default by CONFIRM_MARGIN over the confirmation rounds; else the default.
 */
export function decideVariant(
  candidates: readonly string[],
  rounds: readonly (readonly number[])[],
): Pick<TunedKey, 'choice' | 'ms' | 'fastest' | 'versusDefault'> {
  if (rounds.length !== candidates.length || rounds.some((r) => r.length !== SELECT_ROUNDS + CONFIRM_ROUNDS))
    throw new Error(`decideVariant: want ${SELECT_ROUNDS + CONFIRM_ROUNDS} times for each of ${candidates.length}`);
  const ms: Record<string, number> = {};
  candidates.forEach((name, i) => (ms[name] = Math.min(...rounds[i].slice(0, SELECT_ROUNDS))));
  const fastest = candidates.reduce((a, b) => (ms[b] < ms[a] ? b : a));
  const fastestRounds = rounds[candidates.indexOf(fastest)];
  const versusDefault = median(
    rounds[0].slice(SELECT_ROUNDS).map((defaultMs, r) => fastestRounds[SELECT_ROUNDS + r] / defaultMs),
  );
  // A missing time (0) makes the ratio NaN or infinite, and the default stays.
  const choice = versusDefault <= 1 - CONFIRM_MARGIN ? fastest : candidates[0];
  return { choice, ms, fastest, versusDefault };
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
