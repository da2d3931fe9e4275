/** Timing, machine facts and the docs/benchmarks.md writer shared by the benchmarks. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Timed<T> {
  readonly value: T;
  readonly ms: number;
}

export function timed<T>(work: () => T): Timed<T> {
  const start = process.hrtime.bigint();
  const value = work();
  return { value, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly node: string;
  readonly commit: string;
  readonly date: string;
}

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function measureMachine(): Machine {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: repositoryRoot,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: repositoryRoot,
      encoding: 'utf8',
    });
    if (dirty.trim()) commit += '+changes';
  } catch {
    // Not a git checkout: the commit stays unknown.
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    commit,
    date: new Date().toISOString().slice(0, 10),
  };
}

/** Replaces the section between `<!-- bench:NAME -->` markers in docs/benchmarks.md. */
export function recordSection(
  name: string,
  command: string,
  machine: Machine,
  lines: readonly string[],
): void {
  const path = join(repositoryRoot, 'docs', 'benchmarks.md');
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  // Blank lines around each part, as Prettier formats Markdown: a recorded file stays clean.
  const body = [
    start,
    '',
    `Measured ${machine.date} at commit \`${machine.commit}\` with \`${command}\` on ${machine.cores} × ${machine.cpu}, ${machine.memoryGb} GiB, Node ${machine.node}:`,
    '',
    '```',
    ...lines,
    '```',
    '',
    end,
  ].join('\n');
  const text = readFileSync(path, 'utf8');
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < 0) throw new Error(`docs/benchmarks.md has no ${start} … ${end} section`);
  writeFileSync(path, text.slice(0, from) + body + text.slice(to + end.length));
  process.stdout.write(`recorded in docs/benchmarks.md\n`);
}
