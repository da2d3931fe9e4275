import type { CaseRecord, CaseSide, Explanation, PodEndpoint, TestCase } from '#lumen/contracts';

const T0 = new Date('2026-11-26T10:00:00Z');

/** One side of a case's explanation: isolated by `policies`, admitted by none unless said. */
export function explanationSide(
  policies: readonly string[],
  allowed = true,
): Explanation['ingress'] {
  return { isolated: policies.length > 0, policies: [...policies], allowedBy: [], allowed };
}

/** A case end: a class of pods with these labels, no candidate pods unless given. */
export function caseSide(
  namespace: string,
  labels: Readonly<Record<string, string>>,
  pods: CaseSide['pods'] = [],
): CaseSide {
  return {
    namespace,
    labels: { ...labels },
    classKey: `${namespace}|${JSON.stringify(labels)}`,
    pods,
  };
}

/**
 * A stored case for store, API and alerting tests: a must-allow on 80/TCP between two
 * classes, with whatever the test overrides. Typed, so a fixture cannot hold a shape the
 * store would refuse to read back.
 */
export function caseRecordFixture(caseId: string, overrides: Partial<CaseRecord> = {}): CaseRecord {
  return {
    caseId,
    generation: 1,
    reason: 'must-allow',
    source: caseSide('default', { app: 'client' }),
    destination: caseSide('default', { app: 'web' }),
    port: 80,
    protocol: 'TCP',
    expected: 'allow',
    explanation: { ingress: explanationSide([]), egress: explanationSide([]) },
    rule: null,
    via: null,
    family: null,
    changedAt: T0,
    updatedAt: T0,
    listenerKnown: true,
    loopback: false,
    traceparent: null,
    ...overrides,
  };
}

/** A pod endpoint of a case message: `name` on `node`, with an IP made from `n`. */
export function podEndpointFixture(
  name: string,
  node: string,
  n: number,
  namespace = 'default',
): PodEndpoint {
  return { namespace, name, uid: `uid-${name}`, ip: `10.244.${n}.${n + 10}`, node };
}

/**
 * A planner's case message (lumen.v1.cases), valid against its contract: a must-allow on
 * 80/TCP from `sources` to `destinations`, with whatever the test overrides.
 */
export function testCaseFixture(
  caseId: string,
  sources: readonly PodEndpoint[],
  destinations: readonly PodEndpoint[],
  overrides: Partial<TestCase> = {},
): TestCase {
  const side = (pods: readonly PodEndpoint[], labels: Record<string, string>) => {
    const { namespace, classKey } = caseSide(pods[0]?.namespace ?? 'default', labels);
    return { namespace, labels, classKey };
  };
  return {
    caseId,
    generation: 7,
    reason: 'must-allow',
    source: side(sources, { app: 'client' }),
    destination: side(destinations, { app: 'web' }),
    port: 80,
    protocol: 'TCP',
    expected: 'allow',
    explanation: { ingress: explanationSide([]), egress: explanationSide([]) },
    changedAt: T0.toISOString(),
    sources: [...sources],
    destinations: [...destinations],
    listenerKnown: true,
    syntheticSource: false,
    loopback: false,
    ...overrides,
  };
}
