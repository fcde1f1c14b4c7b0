/** Collects the checks of a conformance run, section by section. */
import type { Check, Comparison } from './compare.js';
import type { Fixture } from './manifest.js';

export interface ConformanceReport {
  dir: string;
  /** The adapter the checks ran on (`gpu.describe()`). */
  adapter: string;
  config: string;
  /** The sections checked, in order; a declared section whose files are missing is among them, failed. */
  sections: string[];
  checks: Check[];
  failures: Check[];
}

export class Checks {
  readonly sections: string[] = [];
  readonly all: Check[] = [];

  add(section: string, ...comparisons: Comparison[]): void {
    this.declare(section);
    for (const c of comparisons) this.all.push({ section, ...c });
  }

  /** Lists a section (sections are reported in the order they are first named). */
  private declare(section: string): void {
    if (!this.sections.includes(section)) this.sections.push(section);
  }

  /**
   * Whether every file a declared section needs is there; each missing one is a failure of the
   * section (a set that declares a check but cannot back it must not pass).
   */
  require(fixture: Fixture, section: string, files: string[]): boolean {
    this.declare(section);
    const missing = files.filter((f) => !fixture.has(f));
    for (const f of missing) {
      this.add(section, {
        name: `${section}: ${f}`,
        ratio: Infinity,
        detail: fixture.declares(f) ? 'missing' : 'not declared in the manifest',
      });
    }
    return missing.length === 0;
  }

  report(dir: string, adapter: string, config: string): ConformanceReport {
    return {
      dir,
      adapter,
      config,
      sections: this.sections,
      checks: this.all,
      failures: this.all.filter((c) => !(c.ratio <= 1)),
    };
  }
}
