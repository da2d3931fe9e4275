#!/usr/bin/env node
// The `lumen` command. It brings dist/ up to date (a no-op when nothing changed) and
// runs the compiled CLI, so `npx lumen …` needs no separate build step.
import { build } from '../scripts/build.mjs';

// A reader that goes away (`lumen … | head`) is not an error of Lumen's.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error;
  });

/** Resolves once everything written to the stream so far has left the process. */
const flushed = (stream) =>
  new Promise((resolve) => {
    stream.write('', () => resolve());
  });

build({ quiet: true });
const { main } = await import('../dist/cli/src/main.js');
const code = await main(process.argv.slice(2));
// Writes to a pipe are asynchronous: exiting at once would cut the output at the pipe's
// buffer (64 KiB on Linux). Every command has cleaned up when main returns (its finally
// blocks ran); a client library's lingering socket or timer must not keep a CI job
// waiting, so once the output is out, the process exits.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
