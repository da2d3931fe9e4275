/**
 * Two reporter replicas on PostgreSQL with leader election, as the chart runs them with
 * reporter.replicas=2 and store.type=postgres: the Lease on the lab's API emulator (the
 * sanctioned stand-in for an API server), a private nats-server, a database of its own on
 * the machine's PostgreSQL. The standby is Ready only once it can read the store, then
 * answers the API with what the leader judged; killed, the leader hands over to it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { TEST_CASE_SUBJECT, TestCaseContract, durableServiceConsumers } from '#lumen/contracts';
import { MessageBus, startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { freePort } from '#lumen/host';
import {
  dispatchAndAnswer,
  eventually,
  podEndpointFixture,
  probeResultFixture,
  spawnService,
  testCaseFixture,
} from '#lumen/testing';
import { ApiServer, ObjectStore } from '../../../libs/lab/src/api/index.js';
import { selfSignedCertificate } from '../../../libs/lab/src/api/certificate.js';
import { renderKubeconfig } from '../../../libs/lab/src/kubeconfig.js';

const TOKEN = 'standby-admin-token-0123456789';
const scratch = mkdtempSync(join(tmpdir(), 'lumen-standby-'));
const database = `lumen_standby_${randomBytes(4).toString('hex')}`;
const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

let api: ApiServer;
let kubeconfig: KubeConfig;
let nats: PrivateNatsServer;
let bus: MessageBus;
const replicas = new Map<string, { child: ChildProcess; port: number }>();

/** One statement on the machine's PostgreSQL, outside any database of the test's. */
async function administer(statement: string): Promise<void> {
  const admin = new DataSource({ type: 'postgres', url: ADMIN_URL });
  await admin.initialize();
  await admin.query(statement);
  await admin.destroy();
}

async function startReplica(name: string): Promise<number> {
  const port = await freePort();
  const child = spawnService(
    'reporter',
    {
      NATS_URL: nats.url,
      HTTP_PORT: String(port),
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
      SETTLE_WINDOW_MS: '0',
      MAX_ATTEMPTS: '1',
      API_TOKENS_FILE: join(scratch, 'tokens.yaml'),
      LEADER_ELECTION: 'true',
      LEASE_NAME: 'lumen-reporter',
      LEASE_DURATION_SECONDS: '5',
      POD_NAME: name,
      POD_NAMESPACE: 'lumen',
      KUBECONFIG: join(scratch, 'kubeconfig'),
    },
    join(scratch, `${name}.log`),
  );
  replicas.set(name, { child, port });
  return port;
}

const get = async (port: number, path: string): Promise<{ status: number; body: string }> => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return { status: response.status, body: await response.text() };
};

const ready = (port: number): Promise<boolean> =>
  get(port, '/readyz').then(
    (r) => r.status === 200,
    () => false,
  );

const holder = async (): Promise<string | undefined> =>
  (
    await kubeconfig
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'lumen-reporter', namespace: 'lumen' })
      .catch(() => undefined)
  )?.spec?.holderIdentity;

/** The case ids the API lists as judged, through one replica. */
async function judged(port: number): Promise<string[]> {
  const page = await get(port, '/api/v1/outcomes?limit=100');
  if (page.status !== 200) return [];
  return (JSON.parse(page.body) as { items: { caseId: string }[] }).items
    .map((o) => o.caseId)
    .sort();
}

/** A case and a reachable result for it, as the planner and a prober would send them. */
async function judge(caseId: string): Promise<void> {
  const source = podEndpointFixture('client', 'node-a', 1);
  const destination = podEndpointFixture('web', 'node-a', 2);
  await bus.publish(
    TEST_CASE_SUBJECT,
    TestCaseContract,
    testCaseFixture(caseId, [source], [destination]),
    { msgId: caseId },
  );
  await dispatchAndAnswer(
    bus,
    probeResultFixture({
      batchId: `b-${caseId}`,
      observations: [
        {
          caseId,
          round: 7,
          ip: destination.ip,
          port: 80,
          protocol: 'TCP',
          reachability: 'reachable',
          basis: 'open (syn-ack)',
        },
      ],
    }),
  );
}

beforeAll(async () => {
  const tls = await selfSignedCertificate(scratch);
  api = new ApiServer({ store: new ObjectStore(), tls, token: 'standby-token' });
  const url = await api.listen();
  writeFileSync(
    join(scratch, 'kubeconfig'),
    renderKubeconfig('standby', url, 'standby-token', tls.cert),
  );
  kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(join(scratch, 'kubeconfig'));
  await kubeconfig
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: 'lumen' } } });
  await administer(`CREATE DATABASE ${database}`);
  writeFileSync(join(scratch, 'tokens.yaml'), `tokens:\n  - { name: admin, token: ${TOKEN} }\n`);
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
  // The scheduler's part: the streams and every service's consumers.
  bus = await MessageBus.connect({ url: nats.url, service: 'scheduler' });
  await bus.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
}, 60_000);

afterAll(async () => {
  for (const { child } of replicas.values()) if (child.exitCode === null) child.kill('SIGKILL');
  await bus.close();
  await nats.stop();
  await api.close();
  await administer(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

describe('a standby reporter on PostgreSQL', () => {
  it('answers the API read-only with what the leader judged, and takes over when it dies', async () => {
    const leaderPort = await startReplica('reporter-a');
    await eventually(
      async () => (await holder()) === 'reporter-a',
      'reporter-a to lead',
      30_000,
      200,
    );
    await eventually(() => ready(leaderPort), 'the leader to be ready', 30_000, 200);
    const standbyPort = await startReplica('reporter-b');
    await eventually(() => ready(standbyPort), 'the standby to be ready', 30_000, 200);
    expect(await holder()).toBe('reporter-a');
    expect(readFileSync(join(scratch, 'reporter-b.log'), 'utf8')).toContain(
      'serving the API read-only while another replica leads',
    );

    const first = ['00000000000000a1', '00000000000000a2'];
    for (const caseId of first) await judge(caseId);
    await eventually(
      async () => (await judged(leaderPort)).length === first.length,
      'the leader to judge both cases',
      30_000,
      200,
    );
    // Every Ready replica answers the same, so a Service may send a call to either.
    expect(await judged(standbyPort)).toEqual(first);
    const summary = await get(standbyPort, '/api/v1/summary');
    expect(summary.status).toBe(200);
    expect(summary.body).toBe((await get(leaderPort, '/api/v1/summary')).body);
    expect((await get(standbyPort, '/api/v1/cases/00000000000000a1')).status).toBe(200);

    // The leader dies without a word; the standby takes the Lease and judges from then on.
    replicas.get('reporter-a')?.child.kill('SIGKILL');
    await eventually(
      async () => (await holder()) === 'reporter-b',
      'reporter-b to lead',
      30_000,
      250,
    );
    await judge('00000000000000b1');
    await eventually(
      async () => (await judged(standbyPort)).includes('00000000000000b1'),
      'the new leader to judge the next case',
      30_000,
      200,
    );
    expect(await judged(standbyPort)).toEqual([...first, '00000000000000b1']);
  }, 120_000);
});
