/**
 * The bundled NATS server's users and permissions exactly as the chart renders them, run by
 * a real nats-server 2.10 (the chart's image is 2.10; Debian 12's 2.9 has no auth callout):
 * each service may do its own work only, and a prober's credentials, in each of the three
 * `prober.credentials` modes, cannot read, take or forge another node's work nor touch the
 * streams (ADR 0014, ADR 0016).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, connect, Events, StringCodec, type NatsConnection } from 'nats';
import { createAccount, createUser } from 'nkeys.js';
import {
  ProbeBatchContract,
  ProbeResultContract,
  probeBatchSubject,
  probeResultSubject,
  proberDurable,
  proberInboxPrefix,
  type ProbeBatch,
  type ProbeResult,
} from '#lumen/contracts';
import {
  AuthCalloutResponder,
  ManagedProberRegistry,
  MessageBus,
  PROBER_PERMISSIONS,
  ProberRegistry,
  encodeNatsJwt,
  newCalloutIssuer,
  proberAuthorizer,
  proberNodePermissions,
} from '#lumen/messaging';
import { PROBER_CONSUMER_SETTINGS } from '#lumen/scheduler';
import { freePort } from '#lumen/host';
import {
  batchAnsweredBy,
  calloutNatsServer,
  containerEnvironment,
  probeResultFixture,
  eventually,
  inMemoryProberAttestor,
  renderChart,
  repositoryRoot,
} from '#lumen/testing';

interface RenderedNats {
  readonly url: string;
  readonly rendered: string;
  /** The users Secret's passwords, by key prefix (`planner`, `auth`, …). */
  readonly passwords: Record<string, string>;
  readonly issuer: { readonly seed: string; readonly issuer: string };
  stop(): Promise<void>;
}

/** The chart's nats.conf for these values, on a real nats-server 2.10 of this test's own. */
async function startRendered(args: readonly string[]): Promise<RenderedNats> {
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-chart-nats-'));
  const objects = await renderChart(repositoryRoot, args);
  const secret = (name: string): Record<string, string> =>
    (objects.find((o) => o.kind === 'Secret' && o.metadata.name === name)?.['stringData'] ??
      {}) as Record<string, string>;
  const users = secret('lumen-nats-users');
  const passwords = Object.fromEntries(
    Object.entries(users)
      .filter(([key]) => key.endsWith('-password'))
      .map(([key, value]) => [key.replace(/-password$/, ''), value]),
  );
  const rendered = secret('lumen-nats-config')['nats.conf'] ?? '';
  const port = await freePort();
  writeFileSync(
    join(scratch, 'nats.conf'),
    rendered
      .replace('port: 4222', `port: ${port}`)
      .replace('http_port: 8222', `http_port: ${await freePort()}`)
      .replace('store_dir: /data', `store_dir: ${JSON.stringify(join(scratch, 'js'))}`)
      .replace('pid_file: /var/run/nats/nats.pid', `pid_file: ${join(scratch, 'nats.pid')}`),
  );
  // What the hook Job puts in the callout Secret; the StatefulSet's environment as the
  // kubelet resolves it (the users' credentials, POD_NAME, the issuer).
  const issuer = newCalloutIssuer();
  const env = containerEnvironment(objects, { kind: 'StatefulSet', name: 'lumen-nats' }, 'nats', {
    podName: 'lumen-nats-0',
    namespace: 'lumen',
    secrets: { 'lumen-nats-callout': { issuer: issuer.issuer } },
  });
  const server: ChildProcess = spawn(
    calloutNatsServer(),
    ['-c', join(scratch, 'nats.conf'), '-a', '127.0.0.1'],
    { env: { ...process.env, ...env }, stdio: 'ignore' },
  );
  const url = `nats://127.0.0.1:${port}`;
  await eventually(
    () =>
      connect({ servers: url, user: 'planner', pass: passwords['planner'] ?? '' })
        .then((c) => c.close().then(() => true))
        .catch(() => false),
    'the chart’s nats-server to accept the planner',
    15_000,
    200,
  );
  return {
    url,
    rendered,
    passwords,
    issuer,
    stop: async () => {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    },
  };
}

/** What a node's prober answers for its batch; the batch is the one it answers. */
const answer = (node: string): Omit<ProbeResult, 'batchSequence'> =>
  probeResultFixture({
    batchId: `batch-${node}`,
    node,
    startedAt: new Date().toISOString(),
    durationMs: 1,
  });
const batch = (node: string): ProbeBatch => batchAnsweredBy(answer(node));

/** A request's fate: a permission violation, or "no responders" (503) when it was let through. */
function requestOutcome(c: NatsConnection, subject: string): Promise<string | undefined> {
  return c
    .request(subject, StringCodec().encode('{}'), { timeout: 2000 })
    .then(() => 'answered')
    .catch((error: unknown) => (error as { code?: string }).code);
}

/**
 * A node's prober does its whole job through `prober` (heartbeat, pull and ack its batch,
 * publish its result), and nothing of `other`'s through the calls a compromised prober
 * would make; `other`'s batch stays there for `other`.
 */
async function expectConfinedToNode(
  nats: RenderedNats,
  prober: MessageBus,
  node: string,
  other: string,
  opened: { close(): Promise<void> }[],
): Promise<void> {
  const scheduler = await MessageBus.connect({
    url: nats.url,
    service: 'scheduler',
    user: 'scheduler',
    pass: nats.passwords['scheduler'] ?? '',
  });
  opened.push(scheduler);
  const registry = new ManagedProberRegistry(
    await ProberRegistry.open(scheduler, 15_000),
    scheduler,
    PROBER_CONSUMER_SETTINGS,
  );
  // The other node's prober is alive too (the scheduler writes its beat here), so that
  // its consumer exists and holds a batch.
  await (
    await ProberRegistry.open(scheduler, 15_000)
  ).announce({
    node: other,
    instance: other,
    version: 'test',
    at: new Date().toISOString(),
    inFlight: 0,
  });
  await (
    await ProberRegistry.open(prober, 15_000, true)
  ).announce({ node, instance: node, version: 'test', at: new Date().toISOString(), inFlight: 0 });
  expect([...(await registry.live()).keys()].sort()).toEqual([node, other].sort());
  const sequence = await scheduler.publishSequenced(
    probeBatchSubject(node),
    ProbeBatchContract,
    batch(node),
  );
  await scheduler.publishSequenced(probeBatchSubject(other), ProbeBatchContract, batch(other));

  const taken: string[] = [];
  const consumer = await prober.consume({
    contract: ProbeBatchContract,
    durable: proberDurable(node),
    filterSubject: probeBatchSubject(node),
    bind: true,
    handle: (got) => {
      taken.push(got.batchId);
      return Promise.resolve();
    },
  });
  await eventually(() => (taken.length > 0 ? true : undefined), `${node}’s batch pulled`);
  await consumer.stop();
  expect(taken).toEqual([`batch-${node}`]);
  await prober.publish(probeResultSubject(node), ProbeResultContract, {
    ...answer(node),
    batchSequence: sequence,
  });

  const c = prober.connection;
  const violations: string[] = [];
  void (async () => {
    for await (const status of c.status())
      if (status.type === Events.Error && status.permissionContext)
        violations.push(
          `${status.permissionContext.operation} ${status.permissionContext.subject}`,
        );
  })();
  const forbidden = [
    `$JS.API.CONSUMER.MSG.NEXT.LUMEN_V1_PROBES.${proberDurable(other)}`,
    `$JS.API.CONSUMER.INFO.LUMEN_V1_PROBES.${proberDurable(other)}`,
    probeResultSubject(other),
    `$KV.lumen_v1_probers.${other}`,
    probeBatchSubject(other),
    'lumen.v1.cases',
    '$JS.API.STREAM.PURGE.LUMEN_V1_PROBES',
    '$JS.API.STREAM.DELETE.LUMEN_V1_RESULTS',
    '$JS.API.STREAM.MSG.GET.LUMEN_V1_PROBES',
    `$JS.API.CONSUMER.DELETE.LUMEN_V1_PROBES.${proberDurable(other)}`,
    '$JS.API.CONSUMER.MSG.NEXT.LUMEN_V1_CASES.reporter-cases',
  ];
  expect(
    Object.fromEntries(
      await Promise.all(forbidden.map(async (s) => [s, await requestOutcome(c, s)])),
    ),
  ).toEqual(Object.fromEntries(forbidden.map((s) => [s, 'PERMISSIONS_VIOLATION'])));
  c.subscribe(`${proberInboxPrefix(other)}.>`);
  c.subscribe('_INBOX.>');
  c.subscribe('lumen.v1.>');
  await c.flush();
  await eventually(
    () => (violations.filter((v) => v.startsWith('subscription')).length >= 3 ? true : undefined),
    'three refused subscriptions',
  );
  expect(violations.filter((v) => v.startsWith('subscription')).sort()).toEqual(
    [`${proberInboxPrefix(other)}.>`, '_INBOX.>', 'lumen.v1.>']
      .map((s) => `subscription ${s}`)
      .sort(),
  );
  const jsm = await scheduler.connection.jetstreamManager();
  const left = await jsm.consumers.info('LUMEN_V1_PROBES', proberDurable(other));
  expect(left.num_pending + left.num_ack_pending).toBe(1);
  await expect(
    (await c.jetstreamManager()).consumers.add('LUMEN_V1_PROBES', {
      durable_name: 'stolen',
      ack_policy: AckPolicy.Explicit,
    }),
  ).rejects.toThrow(/permission|timeout/i);
}

describe('per-node prober credentials by auth callout (the default), on the chart’s NATS', () => {
  let nats: RenderedNats;
  let auth: NatsConnection;
  let responder: AuthCalloutResponder;
  const warnings: string[] = [];
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    nats = await startRendered([]);
    auth = await connect({
      servers: nats.url,
      user: 'lumen-auth',
      pass: nats.passwords['auth'] ?? '',
    });
    const attestor = inMemoryProberAttestor({
      'token-node-a': { pod: 'lumen-prober-a', node: 'node-a' },
      'token-node-b': { pod: 'lumen-prober-b', node: 'node-b' },
    });
    responder = AuthCalloutResponder.start(auth, {
      issuerSeed: nats.issuer.seed,
      authorize: proberAuthorizer((token) => attestor.attest(token)),
      log: { warn: (message) => warnings.push(message) },
    });
    await auth.flush();
  });

  afterAll(async () => {
    for (const c of opened.reverse()) await c.close().catch(() => undefined);
    responder.stop();
    await auth.close();
    await nats.stop();
  });

  it('has no shared prober user: a prober’s only way in is its token', async () => {
    expect(nats.rendered).not.toContain('$LUMEN_PROBER_USER');
    expect(nats.passwords).not.toHaveProperty('prober');
    await expect(connect({ servers: nats.url, user: 'prober', pass: 'anything' })).rejects.toThrow(
      /Authorization/i,
    );
  });

  it('refuses a wrong password', async () => {
    await expect(connect({ servers: nats.url, user: 'planner', pass: 'guess' })).rejects.toThrow(
      /Authorization/i,
    );
  });

  it.each([
    ['planner', 'lumen.v1.cases', true],
    ['planner', 'lumen.v1.results', false],
    ['scheduler', 'lumen.v1.probe.node-1', true],
    ['scheduler', 'lumen.v1.cases', false],
    ['reporter', 'lumen.v1.reprobes', true],
    ['reporter', 'lumen.v1.cases', false],
    // Stream management is the scheduler's alone.
    ['planner', '$JS.API.STREAM.DELETE.LUMEN_V1_CASES', false],
    ['planner', '$JS.API.STREAM.CREATE.LUMEN_V1_EVIL', false],
    ['reporter', '$JS.API.STREAM.PURGE.LUMEN_V1_RESULTS', false],
    ['reporter', '$JS.API.STREAM.UPDATE.LUMEN_V1_RESULTS', false],
    ['reporter', '$JS.API.CONSUMER.DELETE.LUMEN_V1_PROBES.prober-node-1', false],
    // So is consumer management: the scheduler makes every service's consumers.
    ['planner', '$JS.API.CONSUMER.CREATE.LUMEN_V1_RESULTS', false],
    ['planner', '$JS.API.CONSUMER.CREATE.LUMEN_V1_PROBES.stolen.lumen.v1.probe.node-1', false],
    ['reporter', '$JS.API.CONSUMER.DURABLE.CREATE.LUMEN_V1_PROBES.stolen', false],
    // Allowed JetStream API calls get JetStream's own answer.
    ['reporter', '$JS.API.CONSUMER.INFO.LUMEN_V1_CASES.reporter-cases', 'answered'],
    ['scheduler', '$JS.API.CONSUMER.CREATE.LUMEN_V1_CASES', 'answered'],
    // The callout's own user may answer the server, and publish nothing else.
    ['auth', 'lumen.v1.results.node-1', false],
    ['auth', '$JS.API.INFO', false],
  ] as [string, string, boolean | 'answered'][])(
    '%s may publish to %s: %s',
    async (service, subject, allowed) => {
      const user = service === 'auth' ? 'lumen-auth' : service;
      const c = await connect({
        servers: nats.url,
        user,
        pass: nats.passwords[service] ?? '',
      });
      opened.push(c);
      expect(await requestOutcome(c, subject)).toBe(
        allowed === true ? '503' : allowed === false ? 'PERMISSIONS_VIOLATION' : allowed,
      );
    },
  );

  it.each([
    ['no token', undefined, /no token/],
    ['a token the API server does not vouch for', 'token-forged', /did not authenticate/],
  ])('refuses a prober with %s, and logs why', async (_case, token, reason) => {
    await expect(connect({ servers: nats.url, ...(token ? { token } : {}) })).rejects.toThrow(
      /Authorization Violation/,
    );
    expect(warnings.some((w) => reason.test(w))).toBe(true);
  });

  it('admits node-a’s prober by its token, to do its whole job and nothing of node-b’s', async () => {
    const prober = await MessageBus.connect({
      url: nats.url,
      service: 'prober',
      token: () => 'token-node-a',
      manageStreams: false,
      inboxPrefix: proberInboxPrefix('node-a'),
    });
    opened.push(prober);
    await expectConfinedToNode(nats, prober, 'node-a', 'node-b', opened);
  });
});

describe('per-node credentials files (prober.credentials=nodeFiles), on the chart’s NATS', () => {
  const nodeA = createUser();
  const nodeB = createUser();
  let nats: RenderedNats;
  const opened: { close(): Promise<void> }[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-node-creds-'));

  beforeAll(async () => {
    nats = await startRendered([
      '--set',
      'prober.credentials=nodeFiles',
      '--set',
      'prober.nodeUsers[0].node=node-a',
      '--set',
      `prober.nodeUsers[0].nkey=${nodeA.getPublicKey()}`,
      '--set',
      'prober.nodeUsers[1].node=node.b',
      '--set',
      `prober.nodeUsers[1].nkey=${nodeB.getPublicKey()}`,
    ]);
  });
  afterAll(async () => {
    for (const c of opened.reverse()) await c.close().catch(() => undefined);
    await nats.stop();
  });

  it('renders each node’s user with exactly proberNodePermissions of its node', () => {
    for (const [node, user] of [
      ['node-a', nodeA],
      ['node.b', nodeB],
    ] as const) {
      const entry = new RegExp(
        `nkey: ${user.getPublicKey()}\\s+permissions: \\{\\s+publish: (\\[.*\\])\\s+subscribe: (\\[.*\\])`,
      ).exec(nats.rendered);
      expect(entry).not.toBeNull();
      expect({
        publish: JSON.parse(entry?.[1] ?? '') as unknown,
        subscribe: JSON.parse(entry?.[2] ?? '') as unknown,
      }).toEqual(proberNodePermissions(node));
    }
    expect(nats.rendered).not.toContain('$LUMEN_PROBER_USER');
  });

  it('lets node-a’s credentials file do node-a’s whole job and nothing of node.b’s', async () => {
    // A .creds file as an operator would put on the node: a user JWT and the user's seed.
    const account = createAccount();
    const jwt = encodeNatsJwt(
      {
        iat: Math.floor(Date.now() / 1000),
        iss: account.getPublicKey(),
        sub: nodeA.getPublicKey(),
        name: 'node-a',
        nats: { type: 'user', version: 2, pub: {}, sub: {}, subs: -1, data: -1, payload: -1 },
      },
      account,
    );
    const creds = join(scratch, 'node-a.creds');
    writeFileSync(
      creds,
      `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
        `-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(nodeA.getSeed())}\n` +
        `------END USER NKEY SEED------\n`,
      { mode: 0o600 },
    );
    const prober = await MessageBus.connect({
      url: nats.url,
      service: 'prober',
      credsFile: creds,
      manageStreams: false,
      inboxPrefix: proberInboxPrefix('node-a'),
    });
    opened.push(prober);
    await expectConfinedToNode(nats, prober, 'node-a', 'node.b', opened);
  });
});

describe('one shared prober user (prober.credentials=shared), on the chart’s NATS', () => {
  let nats: RenderedNats;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    nats = await startRendered(['--set', 'prober.credentials=shared']);
  });
  afterAll(async () => {
    for (const c of opened.reverse()) await c.close().catch(() => undefined);
    await nats.stop();
  });

  it('gives the prober exactly PROBER_PERMISSIONS, which lumen run’s probers get too', () => {
    const prober =
      /user: \$LUMEN_PROBER_USER\s+password: \$LUMEN_PROBER_PASSWORD\s+permissions: \{\s+publish: (\[.*\])\s+subscribe: (\[.*\])/.exec(
        nats.rendered,
      );
    expect(prober).not.toBeNull();
    expect({
      publish: JSON.parse(prober?.[1] ?? '') as unknown,
      subscribe: JSON.parse(prober?.[2] ?? '') as unknown,
    }).toEqual(PROBER_PERMISSIONS);
    expect(nats.rendered).not.toContain('auth_callout');
  });

  it.each([
    ['lumen.v1.results.node-1', true],
    ['lumen.v1.probe.node-1', false],
    ['lumen.v1.cases', false],
    ['$JS.API.STREAM.PURGE.LUMEN_V1_RESULTS', false],
    ['$JS.API.STREAM.DELETE.LUMEN_V1_PROBES', false],
    ['$JS.API.CONSUMER.CREATE.LUMEN_V1_PROBES', false],
    ['$JS.API.STREAM.MSG.GET.LUMEN_V1_PROBES', false],
  ])('the shared prober user may publish to %s: %s', async (subject, allowed) => {
    const c = await connect({
      servers: nats.url,
      user: 'prober',
      pass: nats.passwords['prober'] ?? '',
      inboxPrefix: proberInboxPrefix('node-1'),
    });
    opened.push(c);
    expect(await requestOutcome(c, subject)).toBe(allowed ? '503' : 'PERMISSIONS_VIOLATION');
  });
});
