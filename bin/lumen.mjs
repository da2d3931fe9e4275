#!/usr/bin/env node
// The `lumen` command. It brings dist/ up to date (a no-op when nothing changed) and
// runs the compiled CLI, so `npx lumen …` needs no separate build step.
import { build } from '../scripts/build.mjs';

build({ quiet: true });
const { main } = await import('../dist/cli/src/main.js');
process.exitCode = await main(process.argv.slice(2));
