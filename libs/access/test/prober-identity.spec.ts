import { describe, expect, it } from '@jest/globals';
import {
  ProberAttestor,
  type BoundPod,
  type ProberIdentityPorts,
  type ReviewedToken,
} from '#lumen/access';

const NOW_S = 1_800_000_000;
const policy = {
  namespace: 'lumen',
  serviceAccount: 'lumen-prober',
  podLabels: { 'app.kubernetes.io/instance': 'lumen', 'app.kubernetes.io/component': 'prober' },
  audience: 'lumen-nats',
  maxLifetimeSeconds: 3600,
};
const goodReview: ReviewedToken = {
  authenticated: true,
  username: 'system:serviceaccount:lumen:lumen-prober',
  podName: 'lumen-prober-x1',
  podUid: 'uid-1',
};
const goodPod: BoundPod = {
  uid: 'uid-1',
  nodeName: 'node-a',
  phase: 'Running',
  labels: { ...policy.podLabels, 'controller-revision-hash': 'abc' },
  deleting: false,
};

/** In-memory API: one token, one pod; records the audience each review asked for. */
function ports(
  ...given: [review?: ReviewedToken, pod?: BoundPod, expiry?: number]
): ProberIdentityPorts & { audiences: string[] } {
  // Positions left out take the good defaults; an explicit undefined stays undefined.
  const review = given.length > 0 ? given[0]! : goodReview;
  const pod = given.length > 1 ? given[1] : goodPod;
  const expiry = given.length > 2 ? given[2] : NOW_S + 600;
  const audiences: string[] = [];
  return {
    audiences,
    reviewToken: (_token, audience) => {
      audiences.push(audience);
      return Promise.resolve(review);
    },
    readPod: (namespace, name) =>
      Promise.resolve(namespace === 'lumen' && name === 'lumen-prober-x1' ? pod : undefined),
    tokenExpiry: () => expiry,
    now: () => NOW_S * 1000,
  };
}

describe('ProberAttestor', () => {
  it('gives a running prober pod its own node, for no longer than its token lives', async () => {
    const api = ports();
    await expect(new ProberAttestor(policy, api).attest('t')).resolves.toEqual({
      ok: true,
      node: 'node-a',
      pod: 'lumen-prober-x1',
      expiresAt: NOW_S + 600,
    });
    expect(api.audiences).toEqual(['lumen-nats']);
  });

  it('caps the identity at maxLifetimeSeconds when the token lives longer or does not say', async () => {
    for (const expiry of [NOW_S + 86_400, undefined]) {
      const identity = await new ProberAttestor(policy, ports(goodReview, goodPod, expiry)).attest(
        't',
      );
      expect(identity).toMatchObject({ ok: true, expiresAt: NOW_S + 3600 });
    }
  });

  it.each<[string, ReviewedToken, BoundPod | undefined, number | undefined, RegExp]>([
    [
      'an unauthenticated token',
      { authenticated: false, error: 'token expired' },
      goodPod,
      NOW_S + 600,
      /did not authenticate the token: token expired/,
    ],
    [
      'another ServiceAccount',
      { ...goodReview, username: 'system:serviceaccount:lumen:lumen-reporter' },
      goodPod,
      NOW_S + 600,
      /belongs to system:serviceaccount:lumen:lumen-reporter/,
    ],
    [
      'another namespace',
      { ...goodReview, username: 'system:serviceaccount:tenant:lumen-prober' },
      goodPod,
      NOW_S + 600,
      /not to system:serviceaccount:lumen:lumen-prober/,
    ],
    [
      'a token bound to no pod',
      { ...goodReview, podName: undefined, podUid: undefined },
      goodPod,
      NOW_S + 600,
      /not bound to a pod/,
    ],
    ['a pod that is gone', goodReview, undefined, NOW_S + 600, /does not exist/],
    [
      'a pod of the same name but another UID',
      goodReview,
      { ...goodPod, uid: 'uid-2' },
      NOW_S + 600,
      /has UID uid-2, not the token's uid-1/,
    ],
    [
      'a pod being deleted',
      goodReview,
      { ...goodPod, deleting: true },
      NOW_S + 600,
      /being deleted/,
    ],
    [
      'a pod that is not a prober',
      goodReview,
      {
        ...goodPod,
        labels: {
          'app.kubernetes.io/instance': 'lumen',
          'app.kubernetes.io/component': 'reporter',
        },
      },
      NOW_S + 600,
      /not a prober pod/,
    ],
    [
      'a pod not running',
      goodReview,
      { ...goodPod, phase: 'Pending' },
      NOW_S + 600,
      /Pending, not Running/,
    ],
    [
      'a pod on no node',
      goodReview,
      { ...goodPod, nodeName: undefined },
      NOW_S + 600,
      /runs on no node/,
    ],
    [
      'a token naming another node',
      { ...goodReview, nodeName: 'node-b' },
      goodPod,
      NOW_S + 600,
      /names node node-b, but its pod .* runs on node-a/,
    ],
    ['an expired token', goodReview, goodPod, NOW_S - 1, /expired/],
  ])('refuses %s', async (_case, review, pod, expiry, reason) => {
    const identity = await new ProberAttestor(policy, ports(review, pod, expiry)).attest('t');
    expect(identity.ok).toBe(false);
    expect(identity.ok ? '' : identity.reason).toMatch(reason);
  });

  it('refuses a client that brings no token, without asking the API', async () => {
    const api = ports();
    const identity = await new ProberAttestor(policy, api).attest(undefined);
    expect(identity).toMatchObject({ ok: false, reason: expect.stringMatching(/no token/) });
    expect(api.audiences).toEqual([]);
  });
});
