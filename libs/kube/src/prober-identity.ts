import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { BoundPod, ProberIdentityPorts, ReviewedToken } from '#lumen/access';

const EXTRA = 'authentication.kubernetes.io/';

/**
 * The Kubernetes side of a prober's identity (ADR 0016): TokenReview (`create` on
 * `tokenreviews`) and `get` on pods in Lumen's namespace. Nothing else.
 */
export class KubeProberIdentityPorts implements ProberIdentityPorts {
  private readonly authentication: AuthenticationV1Api;
  private readonly core: CoreV1Api;

  constructor(config: KubeConfig) {
    this.authentication = config.makeApiClient(AuthenticationV1Api);
    this.core = config.makeApiClient(CoreV1Api);
  }

  async reviewToken(token: string, audience: string): Promise<ReviewedToken> {
    const review = await this.authentication.createTokenReview({
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [audience] },
      },
    });
    const status = review.status ?? {};
    const extra = status.user?.extra ?? {};
    const first = (key: string): string | undefined => extra[`${EXTRA}${key}`]?.[0];
    const audienceMatched = !status.audiences || status.audiences.includes(audience);
    return {
      authenticated: status.authenticated === true && audienceMatched,
      ...(status.user?.username ? { username: status.user.username } : {}),
      ...(first('pod-name') ? { podName: first('pod-name') } : {}),
      ...(first('pod-uid') ? { podUid: first('pod-uid') } : {}),
      ...(first('node-name') ? { nodeName: first('node-name') } : {}),
      ...(status.error
        ? { error: status.error }
        : audienceMatched
          ? {}
          : { error: `the token is not for audience ${audience}` }),
    };
  }

  async readPod(namespace: string, name: string): Promise<BoundPod | undefined> {
    const pod = await this.core.readNamespacedPod({ namespace, name }).catch((error: unknown) => {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    });
    if (!pod) return undefined;
    return {
      uid: pod.metadata?.uid ?? '',
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      ...(pod.status?.phase ? { phase: pod.status.phase } : {}),
      labels: pod.metadata?.labels ?? {},
      deleting: pod.metadata?.deletionTimestamp !== undefined,
    };
  }

  /** The token's `exp`, read without checking the signature: TokenReview checked it. */
  tokenExpiry(token: string): number | undefined {
    try {
      const payload = JSON.parse(
        Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'),
      ) as { exp?: unknown };
      return typeof payload.exp === 'number' ? payload.exp : undefined;
    } catch {
      return undefined;
    }
  }

  now(): number {
    return Date.now();
  }
}
