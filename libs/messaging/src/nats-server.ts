import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from '#lumen/system';

export interface PrivateNatsServer {
  readonly url: string;
  readonly storeDir: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * Starts a nats-server with JetStream for this process alone: loopback only, its own
 * port and its own store directory (so a restart keeps the streams). Used by
 * `npm run demo`, `lumen run --once` without NATS_URL, and the tests.
 */
export async function startPrivateNatsServer(options: {
  storeDir: string;
  port?: number;
  binary?: string;
}): Promise<PrivateNatsServer> {
  mkdirSync(options.storeDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const child = spawn(
    options.binary ?? 'nats-server',
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', options.storeDir],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nats-server exited at start: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `nats-server did not listen on 127.0.0.1:${port} within 10 s: ${stderr.trim()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    storeDir: options.storeDir,
    process: child,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
