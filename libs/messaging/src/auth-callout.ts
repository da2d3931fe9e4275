/**
 * NATS auth callout (nats-server 2.10 and later), server-configuration mode: the server
 * sends each connecting client that is not one of its `auth_users` to
 * `$SYS.REQ.USER.AUTH` as an authorization-request JWT, and admits it only if the callout
 * service answers with a user JWT, signed by the configured issuer account key, for the
 * one-time user key the server chose. Lumen uses it to give each node's prober its own
 * user, with rights to its node's work only (ADR 0016).
 *
 * The JWTs are those of nats-io/jwt v2: header `{"typ":"JWT","alg":"ed25519-nkey"}`,
 * base64url segments, an Ed25519 signature by the issuer's nkey over `header.payload`, and
 * a `jti` that is the base32 SHA-512/256 of the claims without it.
 */
import { createHash } from 'node:crypto';
import type { NatsConnection, Subscription } from 'nats';
import { createAccount, fromPublic, fromSeed, type KeyPair } from 'nkeys.js';
import { z } from 'zod';
import { proberNodePermissions, type NatsPermissions } from './permissions.js';

export const AUTH_CALLOUT_SUBJECT = '$SYS.REQ.USER.AUTH';
const REQUEST_AUDIENCE = 'nats-authorization-request';
/** The account a user lands in when the server's configuration names no accounts. */
export const GLOBAL_ACCOUNT = '$G';

const JWT_HEADER = { typ: 'JWT', alg: 'ed25519-nkey' } as const;

const base64url = (data: Uint8Array | string): string =>
  Buffer.from(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url');

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(data: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32.charAt((value >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32.charAt((value << (5 - bits)) & 31);
  return out;
}

/** Signs claims as nats-io/jwt v2 encodes them. */
export function encodeNatsJwt(claims: Record<string, unknown>, issuer: KeyPair): string {
  const withoutId = { ...claims, jti: '' };
  const jti = base32(createHash('sha512-256').update(JSON.stringify(withoutId)).digest());
  const header = base64url(JSON.stringify(JWT_HEADER));
  const payload = base64url(JSON.stringify({ ...claims, jti }));
  const signature = issuer.sign(Buffer.from(`${header}.${payload}`, 'utf8'));
  return `${header}.${payload}.${base64url(signature)}`;
}

/**
 * The claims of a NATS JWT whose signature verifies against its own `iss` key; throws
 * naming what is wrong otherwise.
 */
export function decodeNatsJwt(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWT: expected three dot-separated parts');
  const [header = '', payload = '', signature = ''] = parts;
  const parsedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as unknown;
  if (
    typeof parsedHeader !== 'object' ||
    parsedHeader === null ||
    (parsedHeader as { alg?: unknown }).alg !== JWT_HEADER.alg
  )
    throw new Error(`not a NATS JWT: the header's alg must be ${JWT_HEADER.alg}`);
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    throw new Error('not a NATS JWT: its claims are not an object');
  const issuer = (claims as { iss?: unknown }).iss;
  if (typeof issuer !== 'string') throw new Error('not a NATS JWT: it has no issuer');
  const verified = fromPublic(issuer).verify(
    Buffer.from(`${header}.${payload}`, 'utf8'),
    Buffer.from(signature, 'base64url'),
  );
  if (!verified) throw new Error('the JWT signature does not verify against its issuer');
  return claims as Record<string, unknown>;
}

const NKEY = (prefix: string) => z.string().regex(new RegExp(`^${prefix}[A-Z2-7]{55}$`));

/** What the server tells the callout of a client that connects (the fields Lumen reads). */
const authorizationRequestClaims = z.object({
  iss: NKEY('N'),
  aud: z.literal(REQUEST_AUDIENCE),
  nats: z.object({
    type: z.literal('authorization_request'),
    server_id: z.object({ id: z.string().min(1), name: z.string().optional() }),
    user_nkey: NKEY('U'),
    client_info: z.object({ host: z.string().optional(), name: z.string().optional() }).optional(),
    connect_opts: z
      .object({
        auth_token: z.string().optional(),
        user: z.string().optional(),
        pass: z.string().optional(),
      })
      .optional(),
  }),
});

/** A connecting client as the callout sees it. */
export interface CalloutClient {
  readonly token?: string;
  readonly user?: string;
  readonly host?: string;
  readonly name?: string;
}

export type CalloutDecision =
  | {
      readonly allow: true;
      /** The name the server shows for the connection (e.g. `prober node-1`). */
      readonly name: string;
      readonly permissions: NatsPermissions;
      /** Seconds since the epoch; the server closes the connection then. */
      readonly expiresAt: number;
    }
  | { readonly allow: false; readonly reason: string };

export interface AuthCalloutOptions {
  /** The issuer account's seed (`SA…`): the server's `auth_callout.issuer` is its public key. */
  readonly issuerSeed: string;
  readonly authorize: (client: CalloutClient) => Promise<CalloutDecision>;
  /** The account admitted users land in; `$G` when the configuration names none. */
  readonly account?: string;
  readonly log: { warn(message: string): void; info?(message: string): void };
  readonly now?: () => number;
}

/**
 * Answers the server's authorization requests: decides with `authorize`, and signs a user
 * JWT with exactly the decided permissions, for the user key the server chose (a replayed
 * answer admits nobody else), or an answer that refuses with the reason. A request that is
 * not a valid, signed authorization request is answered with nothing (the server then
 * refuses the client) and logged.
 */
export class AuthCalloutResponder {
  private readonly issuer: KeyPair;
  private readonly issuerKey: string;

  private constructor(
    private readonly subscription: Subscription,
    private readonly options: AuthCalloutOptions,
    issuer: KeyPair,
  ) {
    this.issuer = issuer;
    this.issuerKey = issuer.getPublicKey();
  }

  /** The public key of an issuer seed, for the server's `auth_callout.issuer`. */
  static issuerPublicKey(seed: string): string {
    return fromSeed(Buffer.from(seed.trim(), 'utf8')).getPublicKey();
  }

  /** Subscribes (in a queue group, so that every replica may answer) and starts answering. */
  static start(connection: NatsConnection, options: AuthCalloutOptions): AuthCalloutResponder {
    const issuer = fromSeed(Buffer.from(options.issuerSeed.trim(), 'utf8'));
    if (!issuer.getPublicKey().startsWith('A'))
      throw new Error('the auth callout issuer seed must be an account seed (SA…)');
    const subscription = connection.subscribe(AUTH_CALLOUT_SUBJECT, { queue: 'lumen-auth' });
    const responder = new AuthCalloutResponder(subscription, options, issuer);
    void (async () => {
      // Each request is answered on its own: one waiting on the API (TokenReview) must not
      // hold up the others, which the server times out after its auth timeout.
      for await (const message of subscription)
        void responder
          .answer(new TextDecoder().decode(message.data))
          .then((answer) => {
            if (answer !== undefined) message.respond(new TextEncoder().encode(answer));
          })
          .catch((error: unknown) => {
            options.log.warn(`auth callout: answering failed: ${String(error)}`);
          });
    })();
    return responder;
  }

  /** The signed answer to one request, or undefined for something that is not one. */
  async answer(requestJwt: string): Promise<string | undefined> {
    const request = this.parse(requestJwt);
    if (!request) return undefined;
    const { server_id: server, user_nkey: userKey, connect_opts, client_info } = request.nats;
    const client: CalloutClient = {
      ...(connect_opts?.auth_token ? { token: connect_opts.auth_token } : {}),
      ...(connect_opts?.user ? { user: connect_opts.user } : {}),
      ...(client_info?.host ? { host: client_info.host } : {}),
      ...(client_info?.name ? { name: client_info.name } : {}),
    };
    const decision = await this.options
      .authorize(client)
      .catch((error: unknown): CalloutDecision => ({
        allow: false,
        reason: `authorization failed: ${String(error)}`,
      }));
    const now = Math.floor((this.options.now ?? Date.now)() / 1000);
    if (decision.allow) this.options.log.info?.(`auth callout: admitted ${decision.name}`);
    else
      this.options.log.warn(
        `auth callout: refused a client${client.host ? ` from ${client.host}` : ''}: ${decision.reason}`,
      );
    const outcome = decision.allow
      ? { jwt: this.userJwt(userKey, decision, now) }
      : { error: decision.reason };
    return encodeNatsJwt(
      {
        iat: now,
        iss: this.issuerKey,
        sub: userKey,
        aud: server.id,
        nats: { ...outcome, type: 'authorization_response', version: 2 },
      },
      this.issuer,
    );
  }

  private parse(requestJwt: string): z.infer<typeof authorizationRequestClaims> | undefined {
    try {
      return authorizationRequestClaims.parse(decodeNatsJwt(requestJwt));
    } catch (error) {
      this.options.log.warn(
        `auth callout: ignoring a message that is not a valid authorization request: ${
          error instanceof z.ZodError
            ? error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
            : String(error)
        }`,
      );
      return undefined;
    }
  }

  /** The user the server admits: the key it chose, exactly the decided rights, until expiry. */
  private userJwt(
    userKey: string,
    decision: Extract<CalloutDecision, { allow: true }>,
    now: number,
  ): string {
    return encodeNatsJwt(
      {
        iat: now,
        exp: decision.expiresAt,
        iss: this.issuerKey,
        sub: userKey,
        name: decision.name,
        aud: this.options.account ?? GLOBAL_ACCOUNT,
        nats: {
          pub: { allow: decision.permissions.publish },
          sub: { allow: decision.permissions.subscribe },
          subs: -1,
          data: -1,
          payload: -1,
          type: 'user',
          version: 2,
        },
      },
      this.issuer,
    );
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

/** A prober's proven identity (libs/access ProberAttestor), or why it has none. */
export type AttestedProber =
  | { readonly ok: true; readonly node: string; readonly pod: string; readonly expiresAt: number }
  | { readonly ok: false; readonly reason: string };

/**
 * The callout decision for probers: the node Kubernetes vouches for gets exactly its node's
 * rights (proberNodePermissions), until the identity expires; anyone else is refused.
 */
export function proberAuthorizer(
  attest: (token: string | undefined) => Promise<AttestedProber>,
): (client: CalloutClient) => Promise<CalloutDecision> {
  return async (client) => {
    const identity = await attest(client.token);
    return identity.ok
      ? {
          allow: true,
          name: `prober ${identity.node} (${identity.pod})`,
          permissions: proberNodePermissions(identity.node),
          expiresAt: identity.expiresAt,
        }
      : { allow: false, reason: identity.reason };
  };
}

/** A new issuer account key for the auth callout: its seed (secret) and public key. */
export function newCalloutIssuer(): { readonly seed: string; readonly issuer: string } {
  const pair = createAccount();
  return { seed: new TextDecoder().decode(pair.getSeed()), issuer: pair.getPublicKey() };
}
