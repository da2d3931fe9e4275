/**
 * Which node a prober speaks for, proven by Kubernetes rather than claimed (ADR 0016).
 *
 * A prober presents its projected ServiceAccount token: short-lived, bound to its pod, and
 * minted for Lumen's audience alone. The API server's TokenReview says whose token it is
 * and which pod it is bound to; the pod, read from the API, says which node it runs on.
 * Only a running pod of the prober DaemonSet, under the prober's ServiceAccount, in
 * Lumen's namespace, gets an identity, and the identity is that pod's node: a prober
 * cannot name another node, whatever it sends.
 */

/** The only defaults of a prober identity's settings (the scheduler's and the chart's). */
export const PROBER_IDENTITY_DEFAULTS = {
  /** The audience of the prober's projected token: no other service accepts such a token. */
  audience: 'lumen-nats',
  /** An hour: a prober whose pod is gone loses the bus within the hour at the latest. */
  maxLifetimeSeconds: 3600,
} as const;

/** What TokenReview says of a token (the fields Lumen reads). */
export interface ReviewedToken {
  readonly authenticated: boolean;
  /** `system:serviceaccount:<namespace>:<name>` for a ServiceAccount token. */
  readonly username?: string;
  /** `authentication.kubernetes.io/pod-name` and `pod-uid` of a pod-bound token. */
  readonly podName?: string;
  readonly podUid?: string;
  /** `authentication.kubernetes.io/node-name` (Kubernetes 1.30+), when the token carries it. */
  readonly nodeName?: string;
  /** The API server's own words when it refused the token. */
  readonly error?: string;
}

/** The pod a token is bound to, as the API has it now. */
export interface BoundPod {
  readonly uid: string;
  readonly nodeName?: string;
  readonly phase?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly deleting: boolean;
}

export interface ProberIdentityPorts {
  /** TokenReview of `token` for `audience`. */
  reviewToken(token: string, audience: string): Promise<ReviewedToken>;
  /** The pod, or undefined when there is none of that name. */
  readPod(namespace: string, name: string): Promise<BoundPod | undefined>;
  /** Seconds since the epoch at which the token expires, when it says (unverified read). */
  tokenExpiry(token: string): number | undefined;
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface ProberIdentityPolicy {
  /** Lumen's namespace: the prober's ServiceAccount and pods live there. */
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Labels every prober pod carries (the DaemonSet's selector). */
  readonly podLabels: Readonly<Record<string, string>>;
  /** The audience the prober's projected token is minted for. */
  readonly audience: string;
  /** The longest an identity lasts before the prober must prove itself again (seconds). */
  readonly maxLifetimeSeconds: number;
}

export type ProberIdentity =
  | {
      readonly ok: true;
      readonly node: string;
      readonly pod: string;
      /** Seconds since the epoch. */
      readonly expiresAt: number;
    }
  | { readonly ok: false; readonly reason: string };

const refuse = (reason: string): ProberIdentity => ({ ok: false, reason });

export class ProberAttestor {
  constructor(
    private readonly policy: ProberIdentityPolicy,
    private readonly ports: ProberIdentityPorts,
  ) {}

  /** The node the holder of `token` speaks for, or why it speaks for none. */
  async attest(token: string | undefined): Promise<ProberIdentity> {
    if (!token)
      return refuse('no token: a prober connects with its projected ServiceAccount token');
    const review = await this.ports.reviewToken(token, this.policy.audience);
    const tokenRefusal = this.tokenRefusal(review);
    if (tokenRefusal || !review.podName) return refuse(tokenRefusal ?? 'no pod');
    const pod = await this.ports.readPod(this.policy.namespace, review.podName);
    const podRefusal = this.podRefusal(review, pod);
    if (podRefusal || !pod?.nodeName) return refuse(podRefusal ?? 'no node');
    const now = Math.floor(this.ports.now() / 1000);
    const tokenExpiry = this.ports.tokenExpiry(token);
    const expiresAt = Math.min(now + this.policy.maxLifetimeSeconds, tokenExpiry ?? Infinity);
    if (expiresAt <= now) return refuse('the token has expired');
    return { ok: true, node: pod.nodeName, pod: review.podName, expiresAt };
  }

  private tokenRefusal(review: ReviewedToken): string | undefined {
    if (!review.authenticated)
      return `the API server did not authenticate the token: ${review.error ?? 'no reason given'}`;
    const expected = `system:serviceaccount:${this.policy.namespace}:${this.policy.serviceAccount}`;
    if (review.username !== expected)
      return `the token belongs to ${review.username ?? 'nobody'}, not to ${expected}`;
    if (!review.podName || !review.podUid)
      return 'the token is not bound to a pod (use a projected ServiceAccount token)';
    return undefined;
  }

  private podRefusal(review: ReviewedToken, pod: BoundPod | undefined): string | undefined {
    const named = `${this.policy.namespace}/${review.podName ?? ''}`;
    if (!pod) return `the token's pod ${named} does not exist`;
    if (pod.uid !== review.podUid)
      return `the token's pod ${named} has UID ${pod.uid}, not the token's ${review.podUid ?? ''}`;
    if (pod.deleting) return `the token's pod ${named} is being deleted`;
    const wrongLabel = Object.entries(this.policy.podLabels).find(
      ([key, value]) => pod.labels[key] !== value,
    );
    if (wrongLabel)
      return `the token's pod ${named} is not a prober pod (label ${wrongLabel[0]} is not ${wrongLabel[1]})`;
    if (pod.phase !== 'Running')
      return `the token's pod ${named} is ${pod.phase ?? 'in no phase'}, not Running`;
    if (!pod.nodeName) return `the token's pod ${named} runs on no node`;
    if (review.nodeName && review.nodeName !== pod.nodeName)
      return `the token names node ${review.nodeName}, but its pod ${named} runs on ${pod.nodeName}`;
    return undefined;
  }
}
