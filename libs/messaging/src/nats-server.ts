import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { freePort } from '#lumen/host';

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
  /** The address to listen on (default loopback); anything wider requires credentials. */
  listen?: string;
  credentials?: { readonly user: string; readonly password: string };
  /** Raw nats-server configuration, e.g. the Helm chart's `authorization { … }` block. */
  config?: string;
}): Promise<PrivateNatsServer> {
  const listen = options.listen ?? '127.0.0.1';
  if (listen !== '127.0.0.1' && !options.credentials)
    throw new Error(`a private nats-server on ${listen} needs credentials`);
  mkdirSync(options.storeDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const child = spawn(
    options.binary ?? 'nats-server',
    [
      '-a',
      listen,
      '-p',
      String(port),
      '-js',
      '-sd',
      options.storeDir,
      // Credentials go in a file only root reads, not on a command line `ps` shows.
      ...(options.credentials || options.config
        ? ['-c', configFile(options.storeDir, options.credentials, options.config)]
        : []),
    ],
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

function configFile(
  dir: string,
  credentials: { readonly user: string; readonly password: string } | undefined,
  config: string | undefined,
): string {
  const file = join(dir, 'server.conf');
  const auth = credentials
    ? `authorization {\n  user: ${JSON.stringify(credentials.user)}\n  password: ${JSON.stringify(credentials.password)}\n}\n`
    : '';
  writeFileSync(file, `${auth}${config ?? ''}\n`, { mode: 0o600 });
  return file;
}
