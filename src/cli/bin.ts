#!/usr/bin/env node
import { withoutDawnWarnings } from './quiet-dawn.js';

// The command is imported only where it runs (the filtered child), not in the filtering parent.
process.exitCode = await withoutDawnWarnings(async () => (await import('./main.js')).main(process.argv.slice(2)));
