import { createHash } from 'node:crypto';

export type Severity = 'critical' | 'warning';
export type AlertStatus = 'firing' | 'resolved';

export interface AlertEndpoint {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** "namespace/name" of the pod probed, when known. */
  readonly pod: string | null;
}

export interface AlertService {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
  readonly port: number;
  /** A pod reaching itself through its own Service. */
  readonly hairpin: boolean;
}

/** Everything an alert says about one case, stored with it so that delivery needs nothing else. */
export interface AlertContent {
  readonly caseId: string;
  /** "namespace/name" of the policy, or null for a case no policy names (default allow). */
  readonly policy: string | null;
  readonly rule: { readonly direction: string; readonly index: number } | null;
  readonly reason: string;
  readonly source: AlertEndpoint;
  readonly destination: AlertEndpoint;
  readonly port: number;
  readonly protocol: string;
  /** The Service the case was probed through (absent or null: to the pod's IP; alerts stored before issue 19 lack it). */
  readonly service?: AlertService | null;
  readonly expected: 'allow' | 'deny';
  /** reachable / blocked, as the deciding probe saw it. */
  readonly observed: string | null;
  readonly outcome: string;
  /** Why the verdict is what it is, and what the probe saw. */
  readonly verdict: string;
  readonly evidence: string;
  readonly traceId: string | null;
  readonly decidedAt: string;
  readonly apiUrl: string;
}

export interface AlertEvent {
  readonly fingerprint: string;
  /** Alerts of one policy travel together. */
  readonly groupKey: string;
  readonly status: AlertStatus;
  readonly severity: Severity;
  /** When the alert began firing; resolved events also carry `endsAt`. */
  readonly startsAt: string;
  readonly endsAt: string | null;
  readonly content: AlertContent;
}

/** One alert identity per case: stable across rounds, restarts and replicas. */
export function alertFingerprint(caseId: string): string {
  return createHash('sha256').update(`lumen/v1/case/${caseId}`).digest('hex').slice(0, 16);
}

/**
 * Traffic that a policy should block but passes exposes a workload: critical. Traffic that
 * should pass but is blocked breaks an application: warning.
 */
export function alertSeverity(expected: 'allow' | 'deny'): Severity {
  return expected === 'deny' ? 'critical' : 'warning';
}

/**
 * Alerts of one policy travel together; those through one Service path travel together
 * whatever policy they check, so that one broken Service gives one notification (issue 19),
 * and hairpins apart from the rest, since the spec leaves them to the implementation.
 */
export function alertGroupKey(
  content: Pick<AlertContent, 'policy' | 'destination'> & {
    readonly service?: AlertService | null;
  },
): string {
  const service = content.service;
  if (service)
    return `${service.namespace}/(Service ${service.name}${service.hairpin ? ' hairpin' : ''})`;
  return content.policy ?? `${content.destination.namespace}/(no policy)`;
}

/** The namespaces an alert concerns, for receiver filters and tenant scoping. */
export function alertNamespaces(content: AlertContent): string[] {
  const policyNamespace = content.policy?.split('/')[0];
  return [
    ...new Set([
      content.source.namespace,
      content.destination.namespace,
      ...(policyNamespace ? [policyNamespace] : []),
      ...(content.service ? [content.service.namespace] : []),
    ]),
  ];
}

/**
 * What a newly decided outcome means for a case's alert (DESIGN: alerts on regressions): a
 * case whose last outcome before this one was `pass` and is now `fail` fires, once; a
 * firing alert resolves when the case passes again. Anything else changes nothing.
 */
export function alertTransition(input: {
  readonly current: string;
  /** The outcome before the current one, when the case had one. */
  readonly before: string | undefined;
  readonly alert: AlertStatus | undefined;
}): AlertStatus | undefined {
  if (input.current === 'fail' && input.before === 'pass' && input.alert !== 'firing')
    return 'firing';
  if (input.current === 'pass' && input.alert === 'firing') return 'resolved';
  return undefined;
}

export function describeEndpoint(endpoint: AlertEndpoint): string {
  const labels = Object.entries(endpoint.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${endpoint.pod ?? endpoint.namespace} {${labels}}`;
}

/** One line: what broke, in words an on-call engineer reads first. */
export function alertHeadline(event: AlertEvent): string {
  const c = event.content;
  const through = c.service
    ? ` through Service ${c.service.namespace}/${c.service.name}${c.service.hairpin ? ' (hairpin)' : ''}`
    : '';
  const flow = `${describeEndpoint(c.source)} → ${describeEndpoint(c.destination)} ${c.protocol}/${c.port}${through}`;
  const rule = c.rule ? ` ${c.rule.direction} rule ${c.rule.index}` : '';
  const what =
    c.expected === 'deny' ? 'allowed traffic it should deny' : 'blocked traffic it should allow';
  return event.status === 'resolved'
    ? `Resolved: ${c.policy ?? 'default allow'}${rule} is enforced again: ${flow}`
    : `${c.policy ?? 'default allow'}${rule} ${what}: ${flow}`;
}
