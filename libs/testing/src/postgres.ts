import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '#lumen/host';
import { eventually } from './eventually.js';

/**
 * A PostgreSQL server of its own for a drill that stops and starts it (the machine's shared
 * server on 5432 serves other suites at the same time): a fresh cluster in a scratch folder,
 * on a free port, run from Debian's PostgreSQL binaries as the postgres user when root.
 */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication). */
  readonly url: string;
  /** Stops it the way a crash or a node failure does (immediate shutdown, no checkpoint). */
  crash(): Promise<void>;
  /** Starts it again on the same port and data, and waits until it accepts connections. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The newest PostgreSQL server binaries Debian installed (postgresql-NN). */
function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0])
    throw new Error(
      `no PostgreSQL server binaries under ${root}: the database drills need Debian's postgresql package`,
    );
  return join(root, versions[0], 'bin');
}

export async function startPrivatePostgres(dir: string): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const data = join(dir, 'pgdata');
  const sockets = join(dir, 'pgsockets');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  mkdirSync(sockets, { recursive: true });
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
  const owner = process.getuid?.() === 0 ? userIds('postgres') : undefined;
  if (owner) for (const d of [dir, data, sockets]) chownSync(d, owner.uid, owner.gid);
  const initdb = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8'],
    { encoding: 'utf8', ...(owner ?? {}) },
  );
  if (initdb.status !== 0)
    throw new Error(`initdb failed (${initdb.status}): ${initdb.stderr || initdb.stdout}`);
  const port = await freePort();
  let server: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    const child = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-k', sockets, '-h', '127.0.0.1', '-c', 'fsync=off'],
      { stdio: ['ignore', 'ignore', 'pipe'], ...(owner ?? {}) },
    );
    let log = '';
    child.stderr.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
    });
    server = child;
    exited = new Promise((resolve) => {
      child.once('exit', () => {
        resolve();
      });
    });
    await eventually(
      () => {
        if (child.exitCode !== null) throw new Error(`postgres exited: ${log}`);
        return (
          spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]).status === 0
        );
      },
      'the private PostgreSQL to accept connections',
      30_000,
      100,
    );
  };
  const signal = async (name: NodeJS.Signals): Promise<void> => {
    const child = server;
    server = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill(name);
    await exited;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    // SIGQUIT: immediate shutdown; clients see their connections cut, as in a crash.
    crash: () => signal('SIGQUIT'),
    start,
    // SIGINT: fast shutdown.
    stop: () => signal('SIGINT'),
  };
}

function userIds(user: string): { uid: number; gid: number } {
  const id = (flag: string): number => {
    const out = spawnSync('id', [flag, user], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`no ${user} user to run PostgreSQL as: ${out.stderr}`);
    return Number(out.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g') };
}
