import type { NatsPermissions } from './permissions.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
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

/** Where `npm run bootstrap` puts nats-server 2.10 (scripts/fetch-nats-server.mjs). */
const BUNDLED_NATS_SERVER = join('.lumen', 'tools', 'nats-server-2.10.27', 'nats-server');

/**
 * The nats-server 2.10 that bootstrap put beside this repository, or undefined: found by
 * looking up from this module, so it works from the sources and from dist/ alike.
 */
export function bundledNatsServer(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, BUNDLED_NATS_SERVER);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
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
  /** Its users, each limited to its permissions (none: anything). */
  users?: readonly NatsUser[];
  /** Raw nats-server configuration, e.g. the Helm chart's `authorization { … }` block. */
  config?: string;
  /**
   * NATS auth callout (nats-server 2.10+): clients other than `authUsers` are admitted only
   * by the service that answers for `issuer` (an account public key, ADR 0016).
   */
  authCallout?: { readonly issuer: string; readonly authUsers: readonly string[] };
  /** Variables the configuration refers to (`$NAME`), as the chart's StatefulSet sets them. */
  env?: Readonly<Record<string, string>>;
}): Promise<PrivateNatsServer> {
  const listen = options.listen ?? '127.0.0.1';
  const users = options.users;
  if (listen !== '127.0.0.1' && !users?.length)
    throw new Error(`a private nats-server on ${listen} needs credentials`);
  mkdirSync(options.storeDir, { recursive: true });
  const port = options.port ?? (await freePort());
  // 2.10 where bootstrap fetched it: Debian 12's 2.9.10 lacks auth callout, and its interest
  // retention dropped work a stalled consumer held (ADR 0019).
  const [command, ...prefix] = diesWithParent(
    options.binary ?? bundledNatsServer() ?? 'nats-server',
  );
  const child = spawn(
    command,
    [
      ...prefix,
      '-a',
      listen,
      '-p',
      String(port),
      '-js',
      '-sd',
      options.storeDir,
      // Credentials go in a file only root reads, not on a command line `ps` shows.
      ...(users || options.config
        ? ['-c', configFile(options.storeDir, users, options.config, options.authCallout)]
        : []),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
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

/** A user of a private nats-server. */
export interface NatsUser {
  readonly user: string;
  readonly password: string;
  readonly permissions?: NatsPermissions;
  /** It may publish to the reply subjects of requests it received (a callout service). */
  readonly allowResponses?: boolean;
}

function configFile(
  dir: string,
  users: readonly NatsUser[] | undefined,
  config: string | undefined,
  authCallout: { readonly issuer: string; readonly authUsers: readonly string[] } | undefined,
): string {
  const file = join(dir, 'server.conf');
  const list = (subjects: readonly string[]): string =>
    `[${subjects.map((s) => JSON.stringify(s)).join(', ')}]`;
  const entry = (u: NatsUser): string =>
    `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}${
      u.permissions
        ? `, permissions: { publish: ${list(u.permissions.publish)}, subscribe: ${list(u.permissions.subscribe)}${u.allowResponses ? ', allow_responses: true' : ''} }`
        : ''
    } }`;
  const callout = authCallout
    ? `  auth_callout {\n    issuer: ${JSON.stringify(authCallout.issuer)}\n    auth_users: ${list(authCallout.authUsers)}\n  }\n`
    : '';
  const auth = users?.length
    ? `authorization {\n  users: [\n${users.map(entry).join('\n')}\n  ]\n${callout}}\n`
    : '';
  writeFileSync(file, `${auth}${config ?? ''}\n`, { mode: 0o600 });
  return file;
}

/**
 * The server stops when this process dies, even by SIGKILL: a server left behind would keep
 * the run's streams and, for `lumen run`'s DaemonSet, listen with its passwords. util-linux's
 * setpriv sets the parent-death signal (Linux); without it, the server is started as is.
 */
function diesWithParent(binary: string): [string, ...string[]] {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
  return setpriv ? [setpriv, '--pdeathsig', 'TERM', '--', binary] : [binary];
}
