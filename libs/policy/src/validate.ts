import { cidrCovers, parseCidr, type Cidr } from './ip.js';
import {
  PROTOCOLS,
  SELECTOR_OPERATORS,
  type Direction,
  type LabelSelector,
  type NetworkPolicy,
  type Protocol,
} from './types.js';

/** A precise complaint about one field of one policy. */
export interface PolicyError {
  /** The policy's kind when it is not a NetworkPolicy. */
  readonly kind?: string;
  /** "namespace/name" of a NetworkPolicy; the name of a cluster-scoped policy. */
  readonly policy: string;
  /** Path of the offending field, e.g. `spec.ingress[0].from[1].ipBlock.except[0]`. */
  readonly field: string;
  readonly message: string;
}

export function formatPolicyError(error: PolicyError): string {
  return `${error.kind ?? 'NetworkPolicy'} ${error.policy}: ${error.field}: ${error.message}`;
}

export type NormalizedPeer =
  | {
      readonly kind: 'pods';
      /** `undefined`: the policy's own namespace. */
      readonly namespaceSelector: LabelSelector | undefined;
      /** `undefined`: every pod of the selected namespaces. */
      readonly podSelector: LabelSelector | undefined;
    }
  | { readonly kind: 'ipBlock'; readonly cidr: Cidr; readonly except: readonly Cidr[] };

export interface NormalizedPort {
  readonly protocol: Protocol;
  /** Absent: every port of the protocol. */
  readonly port?: number;
  readonly endPort?: number;
  /** A named port, resolved on the destination pod's containerPorts. */
  readonly name?: string;
}

export interface NormalizedRule {
  readonly direction: Direction;
  readonly index: number;
  /** `'any'`: the rule has no peers, so it admits every peer (external ones too). */
  readonly peers: readonly NormalizedPeer[] | 'any';
  /** `'any'`: the rule lists no ports, so it admits every port and protocol. */
  readonly ports: readonly NormalizedPort[] | 'any';
}

/** A policy that passed validation, with defaults applied. */
export interface ValidPolicy {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly podSelector: LabelSelector;
  readonly isolates: { readonly ingress: boolean; readonly egress: boolean };
  /** Rules of the directions the policy isolates; rules of other directions have no effect. */
  readonly rules: readonly NormalizedRule[];
  readonly manifest: NetworkPolicy;
}

export type ValidationResult =
  | { readonly ok: true; readonly policy: ValidPolicy }
  | { readonly ok: false; readonly errors: readonly PolicyError[] };

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `label key prefix "${prefix}" is not a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `"${key}" is not a valid label key`;
  }
  return undefined;
}

function labelValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `label value ${JSON.stringify(value)} is not a string`;
  if (value.length > 63 || (value !== '' && !LABEL_NAME.test(value))) {
    return `"${value}" is not a valid label value`;
  }
  return undefined;
}

/** Collects the errors of one policy while walking it, with field paths. */
class Walker {
  readonly errors: PolicyError[] = [];
  constructor(private readonly policy: string) {}

  fail(field: string, message: string): void {
    this.errors.push({ policy: this.policy, field, message });
  }

  array(value: unknown, field: string): readonly unknown[] {
    if (value === undefined || value === null) return [];
    if (Array.isArray(value)) return value;
    this.fail(field, 'must be a list');
    return [];
  }

  selector(value: unknown, field: string): LabelSelector | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isRecord(value)) {
      this.fail(field, 'must be a label selector object');
      return undefined;
    }
    const { matchLabels, matchExpressions } = value;
    if (matchLabels !== undefined && matchLabels !== null)
      this.matchLabels(matchLabels, `${field}.matchLabels`);
    this.array(matchExpressions, `${field}.matchExpressions`).forEach((e, i) => {
      this.requirement(e, `${field}.matchExpressions[${i}]`);
    });
    return value;
  }

  private matchLabels(value: unknown, field: string): void {
    if (!isRecord(value)) {
      this.fail(field, 'must be a map of label keys to values');
      return;
    }
    for (const [key, labelValue] of Object.entries(value)) {
      const problem = labelKeyProblem(key) ?? labelValueProblem(labelValue);
      if (problem) this.fail(`${field}.${key}`, problem);
    }
  }

  private requirement(value: unknown, field: string): void {
    if (!isRecord(value)) {
      this.fail(field, 'must be a requirement object');
      return;
    }
    const { key, operator, values } = value;
    if (typeof key !== 'string') this.fail(`${field}.key`, 'is required');
    else {
      const problem = labelKeyProblem(key);
      if (problem) this.fail(`${field}.key`, problem);
    }
    if (!SELECTOR_OPERATORS.includes(operator as never)) {
      this.fail(
        `${field}.operator`,
        `unknown operator ${JSON.stringify(operator)}; expected one of ${SELECTOR_OPERATORS.join(', ')}`,
      );
      return;
    }
    const list = this.array(values, `${field}.values`);
    if ((operator === 'In' || operator === 'NotIn') && list.length === 0) {
      this.fail(`${field}.values`, `must be non-empty when operator is ${operator}`);
    }
    if ((operator === 'Exists' || operator === 'DoesNotExist') && list.length > 0) {
      this.fail(`${field}.values`, `must be empty when operator is ${operator}`);
    }
    list.forEach((v, i) => {
      const problem = labelValueProblem(v);
      if (problem) this.fail(`${field}.values[${i}]`, problem);
    });
  }

  peer(value: unknown, field: string): NormalizedPeer | undefined {
    if (!isRecord(value)) {
      this.fail(field, 'must be a peer object');
      return undefined;
    }
    const { ipBlock } = value;
    const podSelector = this.selector(value.podSelector, `${field}.podSelector`);
    const namespaceSelector = this.selector(value.namespaceSelector, `${field}.namespaceSelector`);
    const hasIpBlock = ipBlock !== undefined && ipBlock !== null;
    if (hasIpBlock && (podSelector || namespaceSelector)) {
      this.fail(field, 'ipBlock may not be combined with podSelector or namespaceSelector');
      return undefined;
    }
    if (hasIpBlock) return this.ipBlock(ipBlock, `${field}.ipBlock`);
    if (!podSelector && !namespaceSelector) {
      this.fail(field, 'must specify podSelector, namespaceSelector or ipBlock');
      return undefined;
    }
    return { kind: 'pods', podSelector, namespaceSelector };
  }

  private ipBlock(value: unknown, field: string): NormalizedPeer | undefined {
    if (!isRecord(value) || typeof value.cidr !== 'string') {
      this.fail(`${field}.cidr`, 'is required');
      return undefined;
    }
    const cidr = parseCidr(value.cidr);
    if (!cidr) {
      this.fail(`${field}.cidr`, `"${value.cidr}" is not a valid CIDR`);
      return undefined;
    }
    const except: Cidr[] = [];
    this.array(value.except, `${field}.except`).forEach((text, i) => {
      const hole = typeof text === 'string' ? parseCidr(text) : undefined;
      if (!hole) this.fail(`${field}.except[${i}]`, `${JSON.stringify(text)} is not a valid CIDR`);
      else if (!cidrCovers(cidr, hole) || hole.prefix === cidr.prefix) {
        this.fail(
          `${field}.except[${i}]`,
          `${String(text)} is not strictly inside cidr ${String(value.cidr)}`,
        );
      } else except.push(hole);
    });
    return { kind: 'ipBlock', cidr, except };
  }

  port(value: unknown, field: string): NormalizedPort | undefined {
    if (!isRecord(value)) {
      this.fail(field, 'must be a port object');
      return undefined;
    }
    const { protocol = 'TCP', port, endPort } = value;
    const errorsBefore = this.errors.length;
    if (!PROTOCOLS.includes(protocol as never)) {
      this.fail(
        `${field}.protocol`,
        `unknown protocol ${JSON.stringify(protocol)}; expected TCP, UDP or SCTP`,
      );
    }
    if (port !== undefined && port !== null) this.portValue(port, `${field}.port`);
    if (endPort !== undefined && endPort !== null) this.endPort(endPort, port, `${field}.endPort`);
    if (this.errors.length > errorsBefore) return undefined;
    return {
      protocol: protocol as Protocol,
      ...(typeof port === 'number' ? { port } : {}),
      ...(typeof port === 'string' ? { name: port } : {}),
      ...(typeof endPort === 'number' ? { endPort } : {}),
    };
  }

  private endPort(endPort: unknown, port: unknown, field: string): void {
    if (
      typeof endPort !== 'number' ||
      !Number.isInteger(endPort) ||
      endPort < 1 ||
      endPort > 65535
    ) {
      this.fail(field, `${JSON.stringify(endPort)} is not a port number (1-65535)`);
    } else if (typeof port === 'string') {
      this.fail(field, 'may not be used with a named port');
    } else if (typeof port !== 'number') {
      this.fail(field, 'requires port');
    } else if (endPort < port) {
      this.fail(field, `${endPort} is less than port ${port}`);
    }
  }

  private portValue(port: unknown, field: string): void {
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        this.fail(field, `${port} is not a port number (1-65535)`);
      }
    } else if (typeof port !== 'string' || port.length > 15 || !IANA_SVC_NAME.test(port)) {
      this.fail(field, `${JSON.stringify(port)} is neither a port number nor a valid port name`);
    }
  }
}

/**
 * Checks a label selector as the API server would, reporting each problem with its
 * field; true when it is a valid selector.
 */
export function checkSelector(
  value: unknown,
  field: string,
  fail: (field: string, message: string) => void,
): value is LabelSelector {
  const walker = new Walker('');
  walker.selector(value, field);
  for (const error of walker.errors) fail(error.field, error.message);
  return walker.errors.length === 0;
}

function policyTypes(
  walker: Walker,
  spec: Record<string, unknown>,
): { ingress: boolean; egress: boolean } {
  if (spec.policyTypes === undefined || spec.policyTypes === null) {
    // Upstream defaulting: Ingress always; Egress only when there are egress rules.
    return { ingress: true, egress: Array.isArray(spec.egress) && spec.egress.length > 0 };
  }
  const types = walker.array(spec.policyTypes, 'spec.policyTypes');
  types.forEach((t, i) => {
    if (t !== 'Ingress' && t !== 'Egress') {
      walker.fail(
        `spec.policyTypes[${i}]`,
        `unknown policy type ${JSON.stringify(t)}; expected Ingress or Egress`,
      );
    }
  });
  return { ingress: types.includes('Ingress'), egress: types.includes('Egress') };
}

function rules(
  walker: Walker,
  spec: Record<string, unknown>,
  direction: Direction,
): NormalizedRule[] {
  const peersField = direction === 'ingress' ? 'from' : 'to';
  return walker.array(spec[direction], `spec.${direction}`).flatMap((rule, index) => {
    const field = `spec.${direction}[${index}]`;
    if (!isRecord(rule)) {
      walker.fail(field, 'must be a rule object');
      return [];
    }
    const peerList = walker.array(rule[peersField], `${field}.${peersField}`);
    const portList = walker.array(rule.ports, `${field}.ports`);
    const peers = peerList.map((p, i) => walker.peer(p, `${field}.${peersField}[${i}]`));
    const ports = portList.map((p, i) => walker.port(p, `${field}.ports[${i}]`));
    return [
      {
        direction,
        index,
        peers: peerList.length === 0 ? 'any' : peers.filter((p) => p !== undefined),
        ports: portList.length === 0 ? 'any' : ports.filter((p) => p !== undefined),
      } satisfies NormalizedRule,
    ];
  });
}

/**
 * Checks a NetworkPolicy the way the API server would, and normalizes it. An invalid
 * policy yields every problem found, each naming its field.
 */
export function validatePolicy(policy: NetworkPolicy): ValidationResult {
  const metadata: unknown = policy.metadata;
  const name = isRecord(metadata) && typeof metadata.name === 'string' ? metadata.name : '';
  const namespace =
    isRecord(metadata) && typeof metadata.namespace === 'string' ? metadata.namespace : 'default';
  const key = `${namespace}/${name || '<unnamed>'}`;
  const walker = new Walker(key);
  if (!name) walker.fail('metadata.name', 'is required');
  const spec: unknown = policy.spec;
  if (!isRecord(spec)) {
    walker.fail('spec', 'is required');
    return { ok: false, errors: walker.errors };
  }
  const podSelector = walker.selector(spec.podSelector, 'spec.podSelector') ?? {};
  const isolates = policyTypes(walker, spec);
  const ingress = rules(walker, spec, 'ingress');
  const egress = rules(walker, spec, 'egress');
  if (walker.errors.length > 0) return { ok: false, errors: walker.errors };
  return {
    ok: true,
    policy: {
      key,
      namespace,
      name,
      podSelector,
      isolates,
      rules: [...(isolates.ingress ? ingress : []), ...(isolates.egress ? egress : [])],
      manifest: policy,
    },
  };
}
