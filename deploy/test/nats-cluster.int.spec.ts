/**
 * The bundled NATS as a three-server cluster with TLS (values nats-ha-tls.yaml): the
 * rendered nats.conf run by three real nats-servers on this machine, with certificates
 * made here. Route hosts are rewritten to 127.0.0.1 and the ports to free ones, since the
 * StatefulSet's DNS names do not resolve outside a cluster; the certificate names both.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageBus, newCalloutIssuer } from '#lumen/messaging';
import { freePort } from '#lumen/host';
import {
  calloutNatsServer,
  eventually,
  makeServerCertificate,
  makeTestCa,
  renderChart,
  repositoryRoot,
  type RenderedObject,
  type TestCertificate,
} from '#lumen/testing';

const scratch = mkdtempSync(join(tmpdir(), 'lumen-nats-cluster-'));
const SERVERS = 3;

interface Server {
  readonly name: string;
  readonly clientPort: number;
  readonly monitorPort: number;
  readonly routePort: number;
  readonly log: string;
  process?: ChildProcess;
}

type SecretObject = RenderedObject & { stringData: Record<string, string> };
let conf = '';
const { issuer } = newCalloutIssuer();
let users: Record<string, string> = {};
let ca: TestCertificate;
const servers: Server[] = [];

/** The rendered nats.conf for one server on this machine: its ports, store and files. */
function localConf(server: Server, routePassword: string, routePorts: readonly number[]): string {
  let local = conf
    .replace('port: 4222', `port: ${server.clientPort}`)
    .replace('http_port: 8222', `http_port: ${server.monitorPort}`)
    .replace('port: 6222', `port: ${server.routePort}`)
    .replace('store_dir: /data', `store_dir: ${JSON.stringify(join(scratch, server.name))}`)
    .replaceAll('/etc/nats/tls/', `${scratch}/tls/`);
  routePorts.forEach((port, i) => {
    local = local.replace(`@lumen-nats-${i}.lumen-nats-headless:6222`, `@127.0.0.1:${port}`);
  });
  if (routePassword !== users['routes-password'])
    local = local.replaceAll(`route:${users['routes-password']}@`, `route:${routePassword}@`);
  return local;
}

async function startServer(server: Server, routePassword: string, routePorts: number[]) {
  const file = join(scratch, `${server.name}.conf`);
  writeFileSync(file, localConf(server, routePassword, routePorts));
  // The chart's image is nats-server 2.10; its default configuration sends probers to the
  // auth callout, whose issuer the StatefulSet passes as AUTH_CALLOUT_ISSUER (ADR 0016).
  server.process = spawn(calloutNatsServer(), ['-c', file, '-a', '127.0.0.1', '-l', server.log], {
    env: { ...process.env, POD_NAME: server.name, AUTH_CALLOUT_ISSUER: issuer },
    stdio: 'ignore',
  });
}

const monitor = async <T>(server: Server, path: string): Promise<T> =>
  (await (await fetch(`http://127.0.0.1:${server.monitorPort}${path}`)).json()) as T;

/**
 * How many other servers this one routes to. nats-server 2.10 pools several connections
 * per remote (num_routes counts them all), so the remotes are counted by their ids.
 */
const routes = (server: Server): Promise<number> =>
  monitor<{ routes?: { remote_id: string }[] }>(server, '/routez').then(
    (r) => new Set((r.routes ?? []).map((route) => route.remote_id)).size,
    () => -1,
  );

async function newServer(name: string): Promise<Server> {
  return {
    name,
    clientPort: await freePort(),
    monitorPort: await freePort(),
    routePort: await freePort(),
    log: join(scratch, `${name}.log`),
  };
}

beforeAll(async () => {
  const objects = await renderChart(repositoryRoot, [
    '-f',
    join(repositoryRoot, 'deploy', 'test', 'values', 'nats-ha-tls.yaml'),
  ]);
  const secret = (name: string): SecretObject => {
    const found = objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
    if (!found) throw new Error(`no Secret ${name} rendered`);
    return found as SecretObject;
  };
  conf = secret('lumen-nats-config').stringData['nats.conf'] ?? '';
  users = secret('lumen-nats-users').stringData;
  // What the kubernetes.io/tls Secret would hold: the CA, and a certificate naming the
  // client Service, every server's headless name, and (for this machine) 127.0.0.1.
  const tls = join(scratch, 'tls');
  mkdirSync(tls);
  ca = makeTestCa(tls, 'ca');
  const server = makeServerCertificate(tls, 'tls', ca, {
    dns: ['lumen-nats', '*.lumen-nats-headless'],
    ips: ['127.0.0.1'],
  });
  expect(server).toEqual({ cert: join(tls, 'tls.crt'), key: join(tls, 'tls.key') });
  for (let i = 0; i < SERVERS; i++) servers.push(await newServer(`lumen-nats-${i}`));
  const routePorts = servers.map((s) => s.routePort);
  for (const s of servers) await startServer(s, users['routes-password'] ?? '', routePorts);
}, 60_000);

afterAll(() => {
  for (const s of servers) s.process?.kill('SIGTERM');
});

describe('the bundled NATS cluster with TLS, on three real nats-servers', () => {
  it('renders a route password of its own, kept in the users Secret', () => {
    expect(users['routes-password']).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(conf).toContain(`password: "${users['routes-password']}"`);
    expect(conf).toMatch(/cluster \{[^]*authorization \{[^]*tls \{[^]*\}\n\}/);
  });

  it('forms a full mesh: every server routes to the other two, over TLS', async () => {
    await eventually(
      async () => (await Promise.all(servers.map(routes))).every((n) => n === SERVERS - 1),
      'three servers routed to each other',
      30_000,
      250,
    );
    const varz = await monitor<{ cluster: { tls_required?: boolean; tls_verify?: boolean } }>(
      servers[0] as Server,
      '/varz',
    );
    expect(varz.cluster).toMatchObject({ tls_required: true, tls_verify: true });
  });

  it('lets a service in over tls:// with the chart’s CA and its own user, with JetStream', async () => {
    // JetStream answers once the servers have elected a meta leader, a moment after routing.
    await eventually(
      async () =>
        (
          await monitor<{ meta_cluster?: { leader?: string } }>(servers[1] as Server, '/jsz').catch(
            () => ({ meta_cluster: undefined }),
          )
        ).meta_cluster?.leader,
      'a JetStream meta leader',
      30_000,
      250,
    );
    const bus = await MessageBus.connect({
      url: `tls://127.0.0.1:${servers[1]?.clientPort ?? 0}`,
      // The scheduler: the one service that makes the streams (ADR 0014).
      service: 'scheduler',
      user: 'scheduler',
      pass: users['scheduler-password'] ?? '',
      caFile: ca.cert,
    });
    try {
      expect(bus.connection.info?.tls_required).toBe(true);
      const jsm = await bus.connection.jetstreamManager();
      expect((await jsm.streams.names().next()).length).toBeGreaterThan(0);
    } finally {
      await bus.close();
    }
  });

  it('refuses a server that would join with the wrong route password', async () => {
    const stranger = await newServer('stranger');
    servers.push(stranger);
    const ports = [servers[0]?.routePort ?? 0];
    await startServer(stranger, 'not-the-password', ports);
    await eventually(
      () =>
        existsSync(stranger.log) &&
        readFileSync(stranger.log, 'utf8').includes('Authorization Violation'),
      'the cluster to refuse the stranger’s route',
      30_000,
      250,
    );
    expect(await routes(stranger)).toBe(0);
    expect(await routes(servers[0] as Server)).toBe(SERVERS - 1);
  });
});
