/**
 * The cluster-scoped policy tiers of `policy.networking.k8s.io`: ClusterNetworkPolicy
 * (v1alpha2) and the older AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1),
 * validated as their CRD schemas and CEL rules would, and mapped onto one model:
 *
 * - a tier (Admin before the namespaces' NetworkPolicies, Baseline after them);
 * - a priority inside the tier (0–1000, lower first);
 * - a subject (`namespaces`, or `pods` in namespaces), never a hostNetwork pod;
 * - ordered rules per direction, each with one action: Accept, Deny or Pass.
 *
 * v1alpha1's Allow is v1alpha2's Accept. The single BaselineAdminNetworkPolicy (named
 * `default`) sits in the Baseline tier at {@link BANP_PRIORITY}: v1alpha1 gave it no
 * priority, and the spec says nothing of it beside Baseline ClusterNetworkPolicies.
 */
import { parseCidr, type Cidr } from './ip.js';
import { PROTOCOLS, type Direction, type LabelSelector, type Protocol } from './types.js';
import { checkSelector, isRecord, type PolicyError } from './validate.js';

export const POLICY_API_GROUP = 'policy.networking.k8s.io';
export const CLUSTER_POLICY_KINDS = {
  ClusterNetworkPolicy: `${POLICY_API_GROUP}/v1alpha2`,
  AdminNetworkPolicy: `${POLICY_API_GROUP}/v1alpha1`,
  BaselineAdminNetworkPolicy: `${POLICY_API_GROUP}/v1alpha1`,
} as const;
export type ClusterPolicyKind = keyof typeof CLUSTER_POLICY_KINDS;

export const TIERS = ['Admin', 'Baseline'] as const;
export type Tier = (typeof TIERS)[number];
export type TierAction = 'Accept' | 'Deny' | 'Pass';

/** The BaselineAdminNetworkPolicy's place in the Baseline tier: after every Baseline CNP. */
export const BANP_PRIORITY = 1001;

/** A cluster-scoped policy manifest as written (kubectl get … -o yaml). */
export interface ClusterPolicyManifest {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: { readonly name: string };
  readonly spec: unknown;
}

export function isClusterPolicyKind(kind: unknown): kind is ClusterPolicyKind {
  return typeof kind === 'string' && Object.hasOwn(CLUSTER_POLICY_KINDS, kind);
}

/** `Kind/name`: unique across the three kinds, and never a NetworkPolicy's `namespace/name`. */
export function clusterPolicyKey(policy: { kind?: string; metadata: { name: string } }): string {
  return `${policy.kind ?? 'ClusterNetworkPolicy'}/${policy.metadata.name}`;
}

export type ClusterPeer =
  /** Every non-hostNetwork pod of the namespaces the selector matches. */
  | { readonly kind: 'namespaces'; readonly namespaceSelector: LabelSelector }
  | {
      readonly kind: 'pods';
      readonly namespaceSelector: LabelSelector;
      readonly podSelector: LabelSelector;
    }
  /** CIDRs, matched against pod IPs too. */
  | { readonly kind: 'networks'; readonly cidrs: readonly Cidr[] }
  /** Node IPs or DNS names: read and validated, but no pod-to-pod connection is one. */
  | { readonly kind: 'nodes' | 'domainNames' }
  /** Every peer: only in a rule that fails closed (see {@link ClusterRule.failClosed}). */
  | { readonly kind: 'all' };

export interface ClusterPort {
  /** Absent for a named port: the destination pod's container port decides. */
  readonly protocol?: Protocol;
  readonly port?: number;
  /** Inclusive end of a range. */
  readonly endPort?: number;
  readonly name?: string;
}

export interface ClusterRule {
  readonly direction: Direction;
  readonly index: number;
  readonly name?: string;
  /** The action the rule takes: Deny for a Deny or Pass rule that fails closed. */
  readonly action: TierAction;
  readonly peers: readonly ClusterPeer[];
  /** `'any'`: the rule lists no protocols, so it matches all traffic. */
  readonly ports: readonly ClusterPort[] | 'any';
  /**
   * A peer sets no field Lumen knows (a newer CRD's peer type). The spec says fail closed:
   * an Accept rule then matches no traffic (no peers), a Deny or Pass rule is a "Deny all"
   * rule (action Deny, every peer, every port).
   */
  readonly failClosed?: true;
}

export interface ValidClusterPolicy {
  readonly key: string;
  readonly kind: ClusterPolicyKind;
  readonly name: string;
  readonly tier: Tier;
  readonly priority: number;
  readonly subject: {
    readonly namespaceSelector: LabelSelector;
    /** Absent: every pod of the selected namespaces. */
    readonly podSelector?: LabelSelector;
  };
  readonly rules: readonly ClusterRule[];
  readonly manifest: ClusterPolicyManifest;
}

export type ClusterValidationResult =
  | { readonly ok: true; readonly policy: ValidClusterPolicy }
  | { readonly ok: false; readonly errors: readonly PolicyError[] };

const DOMAIN_NAME =
  /^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$/;
const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** The limits and vocabulary of each API version. */
interface Dialect {
  readonly version: 'v1alpha1' | 'v1alpha2';
  readonly actions: readonly string[];
  readonly maxRules: number;
  readonly maxPeers: number;
  readonly maxPorts: number;
}

const V1ALPHA2: Dialect = {
  version: 'v1alpha2',
  actions: ['Accept', 'Deny', 'Pass'],
  maxRules: 25,
  maxPeers: 25,
  maxPorts: 25,
};
const ANP: Dialect = {
  version: 'v1alpha1',
  actions: ['Allow', 'Deny', 'Pass'],
  maxRules: 100,
  maxPeers: 100,
  maxPorts: 100,
};
const BANP: Dialect = { ...ANP, actions: ['Allow', 'Deny'] };

class ClusterWalker {
  readonly errors: PolicyError[] = [];
  constructor(
    private readonly kind: ClusterPolicyKind,
    private readonly policy: string,
    private readonly dialect: Dialect,
  ) {}

  fail(field: string, message: string): void {
    this.errors.push({ kind: this.kind, policy: this.policy, field, message });
  }

  list(value: unknown, field: string, min: number, max: number): readonly unknown[] {
    if (value === undefined || value === null) {
      if (min > 0) this.fail(field, 'is required');
      return [];
    }
    if (!Array.isArray(value)) {
      this.fail(field, 'must be a list');
      return [];
    }
    if (value.length < min) this.fail(field, `must have at least ${min} item(s)`);
    if (value.length > max) this.fail(field, `must have at most ${max} items`);
    return value;
  }

  selector(value: unknown, field: string, required: boolean): LabelSelector | undefined {
    if (value === undefined || value === null) {
      if (required) this.fail(field, 'is required');
      return undefined;
    }
    return checkSelector(value, field, (f, message) => {
      this.fail(f, message);
    })
      ? value
      : undefined;
  }

  /**
   * Which one of `fields` is set (MaxProperties=1 over the known ones): undefined when
   * none is (the caller decides), null when several are (reported here).
   */
  oneOf(
    value: Record<string, unknown>,
    fields: readonly string[],
    field: string,
  ): string | null | undefined {
    const set = fields.filter((f) => value[f] !== undefined && value[f] !== null);
    if (set.length > 1) {
      this.fail(field, `must set exactly one of ${fields.join(', ')}; it sets ${set.join(', ')}`);
      return null;
    }
    return set[0];
  }

  namespacedPod(value: unknown, field: string): { ns: LabelSelector; pod: LabelSelector } | null {
    if (!isRecord(value)) {
      this.fail(field, 'must be an object with namespaceSelector and podSelector');
      return null;
    }
    const ns = this.selector(value.namespaceSelector, `${field}.namespaceSelector`, false) ?? {};
    const pod = this.selector(value.podSelector, `${field}.podSelector`, true);
    return pod ? { ns, pod } : null;
  }

  subject(value: unknown): ValidClusterPolicy['subject'] | null {
    if (!isRecord(value)) {
      this.fail('spec.subject', 'is required');
      return null;
    }
    const which = this.oneOf(value, ['namespaces', 'pods'], 'spec.subject');
    if (which === 'namespaces') {
      const selector = this.selector(value.namespaces, 'spec.subject.namespaces', true);
      return selector ? { namespaceSelector: selector } : null;
    }
    if (which === 'pods') {
      const pods = this.namespacedPod(value.pods, 'spec.subject.pods');
      return pods ? { namespaceSelector: pods.ns, podSelector: pods.pod } : null;
    }
    if (which === undefined) this.fail('spec.subject', 'must set exactly one of namespaces, pods');
    return null;
  }

  /** A peer; 'unknown' when it sets no field Lumen knows; null when it is invalid. */
  peer(value: unknown, field: string, direction: Direction): ClusterPeer | 'unknown' | null {
    if (!isRecord(value)) {
      this.fail(field, 'must be a peer object');
      return null;
    }
    const known =
      direction === 'ingress'
        ? ['namespaces', 'pods']
        : this.kind === 'BaselineAdminNetworkPolicy'
          ? ['namespaces', 'pods', 'nodes', 'networks']
          : ['namespaces', 'pods', 'nodes', 'networks', 'domainNames'];
    const which = this.oneOf(value, known, field);
    switch (which) {
      case null:
        return null;
      case undefined:
        return 'unknown';
      case 'namespaces': {
        const selector = this.selector(value.namespaces, `${field}.namespaces`, true);
        return selector ? { kind: 'namespaces', namespaceSelector: selector } : null;
      }
      case 'pods': {
        const pods = this.namespacedPod(value.pods, `${field}.pods`);
        return pods ? { kind: 'pods', namespaceSelector: pods.ns, podSelector: pods.pod } : null;
      }
      case 'nodes':
        return this.selector(value.nodes, `${field}.nodes`, true) ? { kind: 'nodes' } : null;
      case 'networks': {
        const cidrs: Cidr[] = [];
        this.list(value.networks, `${field}.networks`, 1, 25).forEach((text, i) => {
          const cidr = typeof text === 'string' && text.length <= 43 ? parseCidr(text) : undefined;
          if (cidr) cidrs.push(cidr);
          else
            this.fail(
              `${field}.networks[${i}]`,
              `${JSON.stringify(text)}: Invalid CIDR format provided`,
            );
        });
        return { kind: 'networks', cidrs };
      }
      default: {
        this.list(value.domainNames, `${field}.domainNames`, 1, 25).forEach((name, i) => {
          if (typeof name !== 'string' || !DOMAIN_NAME.test(name))
            this.fail(`${field}.domainNames[${i}]`, `${JSON.stringify(name)} is not a domain name`);
        });
        return { kind: 'domainNames' };
      }
    }
  }

  portNumber(value: unknown, field: string): number | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535)
      return value;
    this.fail(field, `${JSON.stringify(value)} is not a port number (1-65535)`);
    return undefined;
  }

  range(value: unknown, field: string): { port: number; endPort: number } | null {
    if (!isRecord(value)) {
      this.fail(field, 'must be an object with start and end');
      return null;
    }
    const start = this.portNumber(value.start, `${field}.start`);
    const end = this.portNumber(value.end, `${field}.end`);
    if (start === undefined || end === undefined) return null;
    if (!(start < end)) {
      this.fail(field, 'Start port must be less than End port');
      return null;
    }
    return { port: start, endPort: end };
  }

  protocol(value: unknown, field: string): Protocol | undefined {
    const protocol = value ?? 'TCP';
    if (PROTOCOLS.includes(protocol as never)) return protocol as Protocol;
    this.fail(field, `unknown protocol ${JSON.stringify(value)}; expected TCP, UDP or SCTP`);
    return undefined;
  }

  portName(value: unknown, field: string): string | undefined {
    if (typeof value === 'string' && value.length <= 15 && IANA_SVC_NAME.test(value)) return value;
    this.fail(field, `${JSON.stringify(value)} is not a valid port name`);
    return undefined;
  }

  /** v1alpha2 `protocols[]`: tcp, udp, sctp (a number or a range) or destinationNamedPort. */
  cnpProtocol(value: unknown, field: string): ClusterPort | null {
    if (!isRecord(value)) {
      this.fail(field, 'must be a protocol object');
      return null;
    }
    const which = this.oneOf(value, ['tcp', 'udp', 'sctp', 'destinationNamedPort'], field);
    if (which === null) return null;
    if (which === undefined) {
      this.fail(field, 'must set exactly one of tcp, udp, sctp, destinationNamedPort');
      return null;
    }
    if (which === 'destinationNamedPort') {
      const name = this.portName(value.destinationNamedPort, `${field}.destinationNamedPort`);
      return name === undefined ? null : { name };
    }
    const protocol = which.toUpperCase() as Protocol;
    const match = value[which];
    const at = `${field}.${which}`;
    if (!isRecord(match) || match.destinationPort === undefined || match.destinationPort === null) {
      this.fail(`${at}.destinationPort`, 'is required');
      return null;
    }
    const port = match.destinationPort;
    if (!isRecord(port)) {
      this.fail(`${at}.destinationPort`, 'must be an object with number or range');
      return null;
    }
    const kind = this.oneOf(port, ['number', 'range'], `${at}.destinationPort`);
    if (kind === 'number') {
      const number = this.portNumber(port.number, `${at}.destinationPort.number`);
      return number === undefined ? null : { protocol, port: number };
    }
    if (kind === 'range') {
      const range = this.range(port.range, `${at}.destinationPort.range`);
      return range ? { protocol, ...range } : null;
    }
    if (kind === undefined)
      this.fail(`${at}.destinationPort`, 'must set exactly one of number, range');
    return null;
  }

  /** v1alpha1 `ports[]`: portNumber, namedPort or portRange. */
  anpPort(value: unknown, field: string): ClusterPort | null {
    if (!isRecord(value)) {
      this.fail(field, 'must be a port object');
      return null;
    }
    const which = this.oneOf(value, ['portNumber', 'namedPort', 'portRange'], field);
    if (which === 'namedPort') {
      const name = this.portName(value.namedPort, `${field}.namedPort`);
      return name === undefined ? null : { name };
    }
    if (which === 'portNumber') {
      const entry = value.portNumber;
      if (!isRecord(entry)) {
        this.fail(`${field}.portNumber`, 'must be an object with protocol and port');
        return null;
      }
      const protocol = this.protocol(entry.protocol, `${field}.portNumber.protocol`);
      const port = this.portNumber(entry.port, `${field}.portNumber.port`);
      return protocol && port !== undefined ? { protocol, port } : null;
    }
    if (which === 'portRange') {
      const entry = value.portRange;
      const protocol = this.protocol(
        isRecord(entry) ? entry.protocol : undefined,
        `${field}.portRange.protocol`,
      );
      const range = this.range(entry, `${field}.portRange`);
      return protocol && range ? { protocol, ...range } : null;
    }
    if (which === undefined)
      this.fail(field, 'must set exactly one of portNumber, namedPort, portRange');
    return null;
  }

  rules(spec: Record<string, unknown>, direction: Direction): ClusterRule[] {
    return this.list(spec[direction], `spec.${direction}`, 0, this.dialect.maxRules).flatMap(
      (rule, index) => {
        const field = `spec.${direction}[${index}]`;
        if (isRecord(rule)) return this.rule(rule, direction, index, field);
        this.fail(field, 'must be a rule object');
        return [];
      },
    );
  }

  private rule(
    rule: Record<string, unknown>,
    direction: Direction,
    index: number,
    field: string,
  ): ClusterRule[] {
    const peersField = direction === 'ingress' ? 'from' : 'to';
    const portsField = this.dialect.version === 'v1alpha2' ? 'protocols' : 'ports';
    const before = this.errors.length;
    this.ruleHeader(rule, field);
    const peers = this.list(rule[peersField], `${field}.${peersField}`, 1, this.dialect.maxPeers)
      .map((p, i) => this.peer(p, `${field}.${peersField}[${i}]`, direction))
      .filter((p) => p !== null);
    const hasPortList = rule[portsField] !== undefined && rule[portsField] !== null;
    const ports = this.list(
      rule[portsField],
      `${field}.${portsField}`,
      hasPortList ? 1 : 0,
      this.dialect.maxPorts,
    )
      .map((p, i) =>
        this.dialect.version === 'v1alpha2'
          ? this.cnpProtocol(p, `${field}.${portsField}[${i}]`)
          : this.anpPort(p, `${field}.${portsField}[${i}]`),
      )
      .filter((p): p is ClusterPort => p !== null);
    const known = peers.filter((p) => p !== 'unknown');
    this.celRules(known, ports, rule.action, field);
    if (this.errors.length > before) return [];
    const action: TierAction = rule.action === 'Allow' ? 'Accept' : (rule.action as TierAction);
    const named = typeof rule.name === 'string' && rule.name ? { name: rule.name } : {};
    const base = { direction, index, ...named };
    if (!peers.includes('unknown'))
      return [{ ...base, action, peers: known, ports: hasPortList ? ports : 'any' }];
    // Fail closed (see ClusterRule.failClosed).
    return [
      action === 'Accept'
        ? { ...base, action, peers: [], ports: 'any', failClosed: true }
        : { ...base, action: 'Deny', peers: [{ kind: 'all' }], ports: 'any', failClosed: true },
    ];
  }

  /** A rule's name and action. */
  private ruleHeader(rule: Record<string, unknown>, field: string): void {
    if (rule.name !== undefined && (typeof rule.name !== 'string' || rule.name.length > 100))
      this.fail(`${field}.name`, 'must be a string of at most 100 characters');
    if (!this.dialect.actions.includes(rule.action as string))
      this.fail(
        `${field}.action`,
        rule.action === undefined
          ? 'is required'
          : `unsupported value ${JSON.stringify(rule.action)}; expected one of ${this.dialect.actions.join(', ')}`,
      );
  }

  /** The CRDs' CEL rules on a rule's peers and ports together. */
  private celRules(
    peers: readonly ClusterPeer[],
    ports: readonly ClusterPort[],
    action: unknown,
    field: string,
  ): void {
    const outside = peers.some(
      (p) => p.kind === 'networks' || p.kind === 'nodes' || p.kind === 'domainNames',
    );
    if (outside && ports.some((p) => p.name !== undefined))
      this.fail(
        field,
        'networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames',
      );
    if (peers.some((p) => p.kind === 'domainNames') && action !== 'Accept' && action !== 'Allow')
      this.fail(`${field}.action`, 'domainNames peers are only supported in Accept rules');
  }

  /** The tier: a ClusterNetworkPolicy names it; v1alpha1 kinds are theirs by kind. */
  tier(spec: Record<string, unknown>): Tier {
    if (this.kind !== 'ClusterNetworkPolicy')
      return this.kind === 'BaselineAdminNetworkPolicy' ? 'Baseline' : 'Admin';
    if (spec.tier === 'Admin' || spec.tier === 'Baseline') return spec.tier;
    this.fail(
      'spec.tier',
      spec.tier === undefined
        ? 'is required'
        : `unsupported value ${JSON.stringify(spec.tier)}; expected Admin or Baseline`,
    );
    return 'Admin';
  }

  priority(spec: Record<string, unknown>): number {
    if (this.kind === 'BaselineAdminNetworkPolicy') return BANP_PRIORITY;
    const value = spec.priority;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 1000)
      return value;
    this.fail(
      'spec.priority',
      value === undefined
        ? 'is required'
        : `${JSON.stringify(value)} is not an integer from 0 to 1000`,
    );
    return 0;
  }

  metadata(apiVersion: unknown, name: string): void {
    const expected = CLUSTER_POLICY_KINDS[this.kind];
    if (apiVersion !== undefined && apiVersion !== expected)
      this.fail(
        'apiVersion',
        `${this.kind} is served as ${expected}, not ${JSON.stringify(apiVersion)}`,
      );
    if (!name) this.fail('metadata.name', 'is required');
    if (this.kind === 'BaselineAdminNetworkPolicy' && name && name !== 'default')
      this.fail(
        'metadata.name',
        'Only one baseline admin network policy with metadata.name="default" can be created in the cluster',
      );
  }
}

/**
 * Checks a ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy the way
 * the API server would with the CRD's schema and CEL rules, and maps it onto the tier
 * model. An invalid policy yields every problem found, each naming its field.
 */
export function validateClusterPolicy(manifest: ClusterPolicyManifest): ClusterValidationResult {
  const kind = manifest.kind;
  const metadata: unknown = manifest.metadata;
  const name = isRecord(metadata) && typeof metadata.name === 'string' ? metadata.name : '';
  if (!isClusterPolicyKind(kind))
    return {
      ok: false,
      errors: [
        {
          kind: 'ClusterNetworkPolicy',
          policy: name || '<unnamed>',
          field: 'kind',
          message: `unknown kind ${JSON.stringify(kind)}`,
        },
      ],
    };
  const dialect =
    kind === 'ClusterNetworkPolicy' ? V1ALPHA2 : kind === 'AdminNetworkPolicy' ? ANP : BANP;
  const walker = new ClusterWalker(kind, name || '<unnamed>', dialect);
  walker.metadata(manifest.apiVersion, name);
  const spec: unknown = manifest.spec;
  if (!isRecord(spec)) {
    walker.fail('spec', 'is required');
    return { ok: false, errors: walker.errors };
  }
  const tier = walker.tier(spec);
  const priority = walker.priority(spec);
  const subject = walker.subject(spec.subject);
  const rules = [...walker.rules(spec, 'ingress'), ...walker.rules(spec, 'egress')];
  if (walker.errors.length > 0 || !subject) return { ok: false, errors: walker.errors };
  return {
    ok: true,
    policy: {
      key: clusterPolicyKey({ kind, metadata: { name } }),
      kind,
      name,
      tier,
      priority,
      subject,
      rules,
      manifest,
    },
  };
}
