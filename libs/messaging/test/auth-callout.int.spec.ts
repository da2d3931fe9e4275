import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, connect, Events, StringCodec, type NatsConnection } from 'nats';
import { createAccount, createServer, createUser } from 'nkeys.js';
import {
  ProbeBatchContract,
  ProbeResultContract,
  probeBatchSubject,
  probeResultSubject,
  proberDurable,
  proberInboxPrefix,
  type ProbeBatch,
} from '#lumen/contracts';
import { ProberAttestor, type BoundPod, type ReviewedToken } from '#lumen/access';
import {
  AUTH_CALLOUT_SUBJECT,
  AuthCalloutResponder,
  ManagedProberRegistry,
  MessageBus,
  ProberRegistry,
  decodeNatsJwt,
  proberAuthorizer,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { PROBER_CONSUMER_SETTINGS } from '#lumen/scheduler';
import { calloutNatsServer, eventually, repositoryRoot } from '#lumen/testing';

/**
 * Per-node prober credentials through NATS auth callout (ADR 0016), on a real nats-server
 * 2.10: each prober connects with its pod-bound token only, and the callout admits it as
 * its node's user, with rights to that node's work alone. The Kubernetes API is an
 * in-memory stand-in here (TokenReview and pods); libs/kube's adapter is proven against the
 * lab's API emulator.
 */
const issuer = createAccount();
const issuerSeed = new TextDecoder().decode(issuer.getSeed());
const scratch = mkdtempSync(join(tmpdir(), 'lumen-callout-'));
const PASSWORD = { scheduler: 'scheduler-password-0123', auth: 'auth-password-0123456789' };

const pods: Record<string, { review: ReviewedToken; pod: BoundPod }> = {
  'token-a': prober('lumen-prober-a', 'uid-a', 'node-a'),
  'token-b': prober('lumen-prober-b', 'uid-b', 'node-b'),
  'token-reporter': {
    review: {
      authenticated: true,
      username: 'system:serviceaccount:lumen:lumen-reporter',
      podName: 'lumen-reporter-0',
      podUid: 'uid-r',
    },
    pod: { uid: 'uid-r', nodeName: 'node-a', phase: 'Running', labels: {}, deleting: false },
  },
};
function prober(name: string, uid: string, node: string): { review: ReviewedToken; pod: BoundPod } {
  return {
    review: {
      authenticated: true,
      username: 'system:serviceaccount:lumen:lumen-prober',
      podName: name,
      podUid: uid,
    },
    pod: {
      uid,
      nodeName: node,
      phase: 'Running',
      labels: { 'app.kubernetes.io/component': 'prober' },
      deleting: false,
    },
  };
}

const attestor = new ProberAttestor(
  {
    namespace: 'lumen',
    serviceAccount: 'lumen-prober',
    podLabels: { 'app.kubernetes.io/component': 'prober' },
    audience: 'lumen-nats',
    maxLifetimeSeconds: 3600,
  },
  {
    reviewToken: (token) =>
      Promise.resolve(pods[token]?.review ?? { authenticated: false, error: 'unknown token' }),
    readPod: (_namespace, name) =>
      Promise.resolve(Object.values(pods).find((p) => p.review.podName === name)?.pod),
    tokenExpiry: () => undefined,
    now: () => Date.now(),
  },
);

let server: PrivateNatsServer;
let auth: NatsConnection;
let responder: AuthCalloutResponder;
const warnings: string[] = [];
const open: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  server = await startPrivateNatsServer({
    binary: calloutNatsServer(repositoryRoot),
    storeDir: join(scratch, 'nats'),
    users: [
      { user: 'scheduler', password: PASSWORD.scheduler },
      {
        user: 'lumen-auth',
        password: PASSWORD.auth,
        permissions: { publish: [], subscribe: [AUTH_CALLOUT_SUBJECT] },
        allowResponses: true,
      },
    ],
    authCallout: {
      issuer: AuthCalloutResponder.issuerPublicKey(issuerSeed),
      authUsers: ['scheduler', 'lumen-auth'],
    },
  });
  auth = await connect({ servers: server.url, user: 'lumen-auth', pass: PASSWORD.auth });
  responder = AuthCalloutResponder.start(auth, {
    issuerSeed,
    authorize: proberAuthorizer((token) => attestor.attest(token)),
    log: { warn: (message) => warnings.push(message) },
  });
  await auth.flush();
});

afterAll(async () => {
  for (const c of open.reverse()) await c.close().catch(() => undefined);
  responder.stop();
  await auth.close();
  await server.stop();
});

async function proberBus(token: string, node: string): Promise<MessageBus> {
  const bus = await MessageBus.connect({
    url: server.url,
    service: 'prober',
    token: () => token,
    manageStreams: false,
    inboxPrefix: proberInboxPrefix(node),
  });
  open.push(bus);
  return bus;
}

async function raw(token: string | undefined, node = 'node-a'): Promise<NatsConnection> {
  const c = await connect({
    servers: server.url,
    ...(token ? { token } : {}),
    inboxPrefix: proberInboxPrefix(node),
  });
  open.push(c);
  return c;
}

const batch = (node: string, batchId: string): ProbeBatch => ({
  batchId,
  node,
  attempt: 1,
  source: { namespace: 'default', name: 'client', uid: 'uid-client' },
  targets: [
    {
      caseId: '00000000000000c1',
      round: 1,
      destination: { namespace: 'default', name: 'web' },
      ip: '10.244.1.2',
      port: 80,
      protocol: 'TCP',
      listenerKnown: true,
    },
  ],
  issuedAt: new Date().toISOString(),
});

describe('per-node prober credentials through NATS auth callout, on a real nats-server 2.10', () => {
  it.each([
    ['no token', undefined, /no token/],
    ['a token the API server does not authenticate', 'token-forged', /did not authenticate/],
    ['another component’s token', 'token-reporter', /belongs to .*lumen-reporter/],
  ])('refuses a client with %s, and says why in the log', async (_case, token, reason) => {
    await expect(raw(token)).rejects.toThrow(/Authorization Violation/);
    expect(warnings.some((w) => reason.test(w))).toBe(true);
  });

  it('signs a user JWT for the key the server chose, with exactly its node’s rights', async () => {
    const request = encodeRequest();
    const answer = await responder.answer(request.jwt);
    const response = decodeNatsJwt(answer ?? '');
    expect(response).toMatchObject({
      iss: issuer.getPublicKey(),
      sub: request.userKey,
      aud: 'SERVER-ID',
      nats: { type: 'authorization_response' },
    });
    const user = decodeNatsJwt((response.nats as { jwt: string }).jwt);
    expect(user).toMatchObject({
      iss: issuer.getPublicKey(),
      sub: request.userKey,
      aud: '$G',
      name: 'prober node-b (lumen-prober-b)',
      nats: {
        type: 'user',
        sub: { allow: [`${proberInboxPrefix('node-b')}.>`] },
        pub: { allow: expect.arrayContaining([probeResultSubject('node-b')]) },
      },
    });
    expect(JSON.stringify(user)).not.toContain('node-a');
  });

  it('ignores a message on the callout subject that is not a signed request', async () => {
    await expect(responder.answer('not.a.jwt')).resolves.toBeUndefined();
    const forged = encodeRequest().jwt.split('.');
    forged[2] = Buffer.from('x'.repeat(64)).toString('base64url');
    await expect(responder.answer(forged.join('.'))).resolves.toBeUndefined();
    expect(warnings.at(-1)).toMatch(/not a valid authorization request: .*signature/);
  });

  it('lets node-a’s prober do its whole job, and nothing of node-b’s', async () => {
    const scheduler = await MessageBus.connect({
      url: server.url,
      service: 'scheduler',
      user: 'scheduler',
      pass: PASSWORD.scheduler,
    });
    open.push(scheduler);
    const registry = new ManagedProberRegistry(
      await ProberRegistry.open(scheduler, 15_000),
      scheduler,
      PROBER_CONSUMER_SETTINGS,
    );
    const a = await proberBus('token-a', 'node-a');
    const b = await proberBus('token-b', 'node-b');
    for (const [bus, node] of [
      [a, 'node-a'],
      [b, 'node-b'],
    ] as const)
      await (
        await ProberRegistry.open(bus, 15_000, true)
      ).announce({
        node,
        instance: node,
        version: 'test',
        at: new Date().toISOString(),
        inFlight: 0,
      });
    expect([...(await registry.live()).keys()].sort()).toEqual(['node-a', 'node-b']);
    const sequenceA = await scheduler.publishSequenced(
      probeBatchSubject('node-a'),
      ProbeBatchContract,
      batch('node-a', 'batch-a'),
    );
    await scheduler.publishSequenced(
      probeBatchSubject('node-b'),
      ProbeBatchContract,
      batch('node-b', 'batch-b'),
    );

    // Its own work: pull, ack, answer.
    const taken: string[] = [];
    const consumer = await a.consume({
      contract: ProbeBatchContract,
      durable: proberDurable('node-a'),
      filterSubject: probeBatchSubject('node-a'),
      bind: true,
      handle: (got) => {
        taken.push(got.batchId);
        return Promise.resolve();
      },
    });
    await eventually(() => (taken.length > 0 ? true : undefined), 'node-a’s batch pulled');
    await consumer.stop();
    expect(taken).toEqual(['batch-a']);
    await a.publish(probeResultSubject('node-a'), ProbeResultContract, {
      batchId: 'batch-a',
      node: 'node-a',
      attempt: 1,
      batchSequence: sequenceA,
      source: { namespace: 'default', name: 'client' },
      observations: [
        {
          caseId: '00000000000000c1',
          round: 1,
          ip: '10.244.1.2',
          port: 80,
          protocol: 'TCP',
          reachability: 'reachable',
          basis: 'open (syn-ack)',
        },
      ],
      startedAt: new Date().toISOString(),
      durationMs: 1,
    });

    // node-b's work, through the calls a compromised node-a prober would make.
    const c = a.connection;
    const violations: string[] = [];
    void (async () => {
      for await (const status of c.status())
        if (status.type === Events.Error && status.permissionContext)
          violations.push(
            `${status.permissionContext.operation} ${status.permissionContext.subject}`,
          );
    })();
    const request = (subject: string): Promise<string | undefined> =>
      c
        .request(subject, StringCodec().encode('{}'), { timeout: 2000 })
        .then(() => 'answered')
        .catch((error: unknown) => (error as { code?: string }).code);
    expect(
      await Promise.all(
        [
          `$JS.API.CONSUMER.MSG.NEXT.LUMEN_V1_PROBES.${proberDurable('node-b')}`,
          `$JS.API.CONSUMER.INFO.LUMEN_V1_PROBES.${proberDurable('node-b')}`,
          probeResultSubject('node-b'),
          '$KV.lumen_v1_probers.node-b',
          '$JS.API.STREAM.PURGE.LUMEN_V1_PROBES',
          '$JS.API.CONSUMER.DELETE.LUMEN_V1_PROBES.prober-node-b',
          '$JS.API.STREAM.MSG.GET.LUMEN_V1_PROBES',
          probeBatchSubject('node-b'),
        ].map(request),
      ),
    ).toEqual(Array(8).fill('PERMISSIONS_VIOLATION'));
    c.subscribe(`${proberInboxPrefix('node-b')}.>`);
    c.subscribe('_INBOX.>');
    await c.flush();
    await eventually(
      () => (violations.filter((v) => v.startsWith('subscription')).length >= 2 ? true : undefined),
      'two refused subscriptions',
    );
    expect(violations.filter((v) => v.startsWith('subscription')).sort()).toEqual(
      ['_INBOX.>', `${proberInboxPrefix('node-b')}.>`].map((s) => `subscription ${s}`).sort(),
    );

    // node-b's batch is still there for node-b.
    const jsm = await scheduler.connection.jetstreamManager();
    const info = await jsm.consumers.info('LUMEN_V1_PROBES', proberDurable('node-b'));
    expect(info.num_pending + info.num_ack_pending).toBe(1);
    await expect(
      a.connection.jetstreamManager().then((m) =>
        m.consumers.add('LUMEN_V1_PROBES', {
          durable_name: 'stolen',
          ack_policy: AckPolicy.Explicit,
        }),
      ),
    ).rejects.toThrow(/permission|timeout/i);
  });
});

/** An authorization request as nats-server 2.10 sends it, signed by a server key. */
function encodeRequest(): { jwt: string; userKey: string } {
  const server = createServer();
  const userKey = createUser().getPublicKey();
  const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' })).toString(
    'base64url',
  );
  const payload = Buffer.from(
    JSON.stringify({
      iat: Math.floor(Date.now() / 1000),
      iss: server.getPublicKey(),
      sub: issuer.getPublicKey(),
      aud: 'nats-authorization-request',
      nats: {
        type: 'authorization_request',
        version: 2,
        server_id: { id: 'SERVER-ID', name: 'test' },
        user_nkey: userKey,
        client_info: { host: '10.244.2.9' },
        connect_opts: { auth_token: 'token-b' },
      },
    }),
  ).toString('base64url');
  const signature = Buffer.from(server.sign(Buffer.from(`${header}.${payload}`))).toString(
    'base64url',
  );
  return { jwt: `${header}.${payload}.${signature}`, userKey };
}
