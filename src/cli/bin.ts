#!/usr/bin/env node
import { main } from './main.js';
import { withoutDawnWarnings } from './quiet-dawn.js';

process.exitCode = await withoutDawnWarnings(() => main(process.argv.slice(2)));
