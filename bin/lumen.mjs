#!/usr/bin/env node
// The `lumen` command. It brings dist/ up to date (a no-op when nothing changed) and
// runs the compiled CLI, so `npx lumen …` needs no separate build step.
import { build } from '../scripts/build.mjs';

build({ quiet: true });
const { main } = await import('../dist/cli/src/main.js');
const code = await main(process.argv.slice(2));
// Every command has cleaned up when main returns (its finally blocks ran); a client
// library's lingering socket or timer must not keep a CI job waiting.
process.exit(code);
