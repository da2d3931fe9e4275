import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { createAccount, createServer, createUser } from 'nkeys.js';
import { probeResultSubject, proberInboxPrefix } from '#lumen/contracts';
import {
  AUTH_CALLOUT_SUBJECT,
  AuthCalloutResponder,
  decodeNatsJwt,
  proberAuthorizer,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { calloutNatsServer, inMemoryProberAttestor } from '#lumen/testing';

/**
 * The auth callout responder on a real nats-server 2.10 (ADR 0016): who it refuses and why,
 * and the user JWT it signs. The Kubernetes API is an in-memory stand-in here (TokenReview
 * and pods); libs/kube's adapter is proven against the lab's API emulator, and what an
 * admitted prober may and may not do, under the chart's own configuration, in
 * deploy/test/chart-nats.int.spec.ts.
 */
const issuer = createAccount();
const issuerSeed = new TextDecoder().decode(issuer.getSeed());
const scratch = mkdtempSync(join(tmpdir(), 'lumen-callout-'));
const PASSWORD = { scheduler: 'scheduler-password-0123', auth: 'auth-password-0123456789' };

const attestor = inMemoryProberAttestor({
  'token-a': { pod: 'lumen-prober-a', node: 'node-a' },
  'token-b': { pod: 'lumen-prober-b', node: 'node-b' },
  'token-reporter': { pod: 'lumen-reporter-0', node: 'node-a', serviceAccount: 'lumen-reporter' },
});

let server: PrivateNatsServer;
let auth: NatsConnection;
let responder: AuthCalloutResponder;
const warnings: string[] = [];
const open: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  server = await startPrivateNatsServer({
    binary: calloutNatsServer(),
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

async function raw(token: string | undefined, node = 'node-a'): Promise<NatsConnection> {
  const c = await connect({
    servers: server.url,
    ...(token ? { token } : {}),
    inboxPrefix: proberInboxPrefix(node),
  });
  open.push(c);
  return c;
}

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
