import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';
import type { KubeObject, ResourceType } from './resources.js';
import type { ObjectStore } from './store.js';

/** The API server's default audience, for a request or review that names none. */
const DEFAULT_AUDIENCE = 'https://kubernetes.default.svc';
const EXTRA = 'authentication.kubernetes.io/';

interface TokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: readonly string[];
  readonly iat: number;
  readonly exp: number;
  readonly 'kubernetes.io': {
    readonly namespace: string;
    readonly serviceaccount: { readonly name: string };
    readonly pod?: { readonly name: string; readonly uid: string };
    readonly node?: { readonly name: string };
  };
}

/**
 * ServiceAccount tokens as the API server mints and reviews them (TokenRequest and
 * TokenReview), for the lab: JWT-shaped, signed with this emulator's own key, bound to an
 * audience, an expiry and optionally a pod (whose node they then name, as Kubernetes 1.30+
 * does). A review fails for a token that is forged, expired, for another audience, or whose
 * pod is gone or was replaced. The emulator does not require the ServiceAccount object.
 */
export class ServiceAccountTokens {
  private readonly key = randomBytes(32);

  constructor(
    private readonly store: ObjectStore,
    private readonly podType: ResourceType,
    private readonly now: () => Date,
  ) {}

  /** `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: a TokenRequest. */
  request(namespace: string, serviceAccount: string, body: unknown): KubeObject {
    const spec = ((body as { spec?: unknown } | undefined)?.spec ?? {}) as {
      audiences?: unknown;
      expirationSeconds?: unknown;
      boundObjectRef?: { kind?: unknown; name?: unknown; uid?: unknown };
    };
    const audiences = audiencesOf(spec.audiences);
    const lifetime = typeof spec.expirationSeconds === 'number' ? spec.expirationSeconds : 3600;
    if (lifetime < 600)
      throw ApiError.badRequest(
        'spec.expirationSeconds: may not specify a duration less than 10 minutes',
      );
    const pod = spec.boundObjectRef ? this.boundPod(namespace, spec.boundObjectRef) : undefined;
    const iat = Math.floor(this.now().getTime() / 1000);
    const claims: TokenClaims = {
      iss: 'https://lumen-lab.invalid',
      sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
      aud: audiences,
      iat,
      exp: iat + lifetime,
      'kubernetes.io': {
        namespace,
        serviceaccount: { name: serviceAccount },
        ...(pod ? { pod: { name: pod.name, uid: pod.uid } } : {}),
        ...(pod?.node ? { node: { name: pod.node } } : {}),
      },
    };
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: serviceAccount, namespace },
      spec: { audiences, expirationSeconds: lifetime },
      status: {
        token: this.sign(claims),
        expirationTimestamp: new Date(claims.exp * 1000).toISOString(),
      },
    };
  }

  /** `POST /apis/authentication.k8s.io/v1/tokenreviews`. */
  review(body: unknown): KubeObject {
    const spec = ((body as { spec?: unknown } | undefined)?.spec ?? {}) as {
      token?: unknown;
      audiences?: unknown;
    };
    const wanted = audiencesOf(spec.audiences);
    const status = this.reviewStatus(typeof spec.token === 'string' ? spec.token : '', wanted);
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: { name: '' },
      spec: { audiences: wanted },
      status,
    };
  }

  private reviewStatus(token: string, wanted: readonly string[]): Record<string, unknown> {
    const refused = (error: string): Record<string, unknown> => ({
      authenticated: false,
      user: {},
      error,
    });
    const claims = this.verify(token);
    if (!claims) return refused('invalid bearer token');
    if (claims.exp <= Math.floor(this.now().getTime() / 1000))
      return refused('invalid bearer token, token has expired');
    const audiences = wanted.filter((a) => claims.aud.includes(a));
    if (audiences.length === 0) return refused('invalid bearer token, token audiences is invalid');
    const { namespace, pod, node } = claims['kubernetes.io'];
    if (pod) {
      let current: KubeObject | undefined;
      try {
        current = this.store.get(this.podType, namespace, pod.name);
      } catch {
        current = undefined;
      }
      if (current?.metadata.uid !== pod.uid)
        return refused(`invalid bearer token, pod "${pod.name}" not found or replaced`);
    }
    return {
      authenticated: true,
      audiences,
      user: {
        username: claims.sub,
        uid: randomUUID(),
        groups: [
          'system:serviceaccounts',
          `system:serviceaccounts:${namespace}`,
          'system:authenticated',
        ],
        extra: {
          ...(pod ? { [`${EXTRA}pod-name`]: [pod.name], [`${EXTRA}pod-uid`]: [pod.uid] } : {}),
          ...(node ? { [`${EXTRA}node-name`]: [node.name] } : {}),
        },
      },
    };
  }

  private boundPod(
    namespace: string,
    bound: { kind?: unknown; name?: unknown; uid?: unknown },
  ): { name: string; uid: string; node?: string } {
    if (bound.kind !== 'Pod')
      throw ApiError.badRequest('spec.boundObjectRef.kind: the lab binds tokens to Pods only');
    const object = this.store.get(this.podType, namespace, String(bound.name));
    const uid = object.metadata.uid ?? '';
    if (bound.uid !== undefined && bound.uid !== uid)
      throw ApiError.badRequest(`spec.boundObjectRef.uid: the pod's UID is ${uid}`);
    const node = (object.spec as { nodeName?: string } | undefined)?.nodeName;
    return { name: String(bound.name), uid, ...(node ? { node } : {}) };
  }

  private sign(claims: TokenClaims): string {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    const signature = createHmac('sha256', this.key).update(`${header}.${payload}`).digest();
    return `${header}.${payload}.${signature.toString('base64url')}`;
  }

  private verify(token: string): TokenClaims | undefined {
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return undefined;
    const expected = createHmac('sha256', this.key).update(`${header}.${payload}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return undefined;
    }
  }
}

function audiencesOf(given: unknown): string[] {
  return Array.isArray(given) && given.length > 0 ? given.map(String) : [DEFAULT_AUDIENCE];
}
