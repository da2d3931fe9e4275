import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface RunOptions {
  /** Written to the command's standard input, which is then closed. */
  readonly input?: string;
  /** Kill the command after this long; the result then says `timedOut`. */
  readonly timeoutMs?: number;
  /** Extra environment variables, on top of this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Open file descriptors the command inherits as its fds 3, 4, … */
  readonly inheritFds?: readonly number[];
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly durationMs: number;
}

/** A command that could not run or ended in failure, with what it said. */
export class CommandError extends Error {
  constructor(
    readonly command: readonly string[],
    readonly result: RunResult | undefined,
    cause?: unknown,
  ) {
    const said = result?.stderr.trim() || result?.stdout.trim() || '';
    const how = !result
      ? `could not start: ${String((cause as Error | undefined)?.message ?? cause)}`
      : result.timedOut
        ? 'timed out'
        : `exited with ${result.code ?? result.signal ?? '?'}`;
    super(
      `${command.join(' ')}: ${how}${said ? `: ${said.split('\n').slice(0, 5).join(' | ')}` : ''}`,
    );
    this.name = 'CommandError';
  }
}

/**
 * Runs a program with an argument array (never through a shell) and collects its output.
 * It resolves whatever the exit code; `runChecked` rejects unless the exit code is 0.
 */
export function run(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // Node types the streams as possibly null once stdio has more than three entries; the
    // first three are pipes whatever follows them.
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe', ...(options.inheritFds ?? [])],
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    }) as ChildProcessWithoutNullStreams;
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new CommandError([file, ...args], undefined, error));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        timedOut,
        durationMs: performance.now() - started,
      });
    });
    child.stdin.on('error', () => {
      // The program may exit without reading its input; its exit status tells what happened.
    });
    child.stdin.end(options.input ?? '');
  });
}

export async function runChecked(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await run(file, args, options);
  if (result.code !== 0) throw new CommandError([file, ...args], result);
  return result;
}
