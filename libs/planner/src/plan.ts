import {
  compileSelector,
  selectorKey,
  type Explanation,
  type Labels,
  type NormalizedPeer,
  type NormalizedPort,
  type NormalizedRule,
  type PodClass,
  type PolicyEngine,
  type Protocol,
  type RuleRef,
  type ValidPolicy,
} from '#lumen/policy';
import { caseIdOf } from './case-id.js';
import { syntheticSourceLabels } from './synthetic.js';

export type CaseReason =
  | 'must-allow'
  | 'near-miss-namespace'
  | 'near-miss-pods'
  | 'near-miss-both'
  | 'unlisted-source'
  | 'unlisted-port'
  | 'sample';

/** A case at class level; the scheduler picks the concrete pods. */
export interface PlannedCase {
  readonly caseId: string;
  readonly reason: CaseReason;
  readonly source: PodClass;
  readonly destination: PodClass;
  readonly port: number;
  readonly protocol: Protocol;
  readonly expected: 'allow' | 'deny';
  readonly explanation: Explanation;
  readonly rule?: RuleRef;
  /** Source and destination are one class with a single pod: a self-probe. */
  readonly loopback: boolean;
  readonly listenerKnown: boolean;
}

/** A case the planner wanted but could not build from real pods. */
export interface NotGenerated {
  readonly reason: CaseReason;
  /** A pod with these labels in Lumen's namespace would cover it (synthetic sources on). */
  readonly synthetic?: { readonly namespace: string; readonly labels: Labels };
  /** The rule the case would have checked; isolation and sample cases have none. */
  readonly rule?: RuleRef;
  readonly why: string;
}

export interface Plan {
  readonly cases: readonly PlannedCase[];
  readonly notGenerated: readonly NotGenerated[];
}

export interface PlanOptions {
  /** Extra cases sampled from the class matrix, beyond the rule and isolation cases. */
  readonly sampleBudget: number;
  /** Varies which pairs are sampled, deterministically. */
  readonly seed?: string;
  /** Lumen's namespace for synthetic sources, when they are enabled. */
  readonly syntheticNamespace?: string;
}

interface PortChoice {
  readonly port: number;
  readonly protocol: Protocol;
}

const DEFAULT_PORT: Record<Protocol, number> = { TCP: 80, UDP: 53, SCTP: 3868 };

/** The ports a rule admits on one destination: each entry's first port, and an endPort's last. */
function admittedPorts(
  ports: readonly NormalizedPort[] | 'any',
  destination: PodClass,
): PortChoice[] {
  const declared = destination.ports.filter((p) => p.protocol !== 'SCTP');
  if (ports === 'any')
    return [
      declared[0]
        ? { port: declared[0].port, protocol: declared[0].protocol }
        : { port: 80, protocol: 'TCP' },
    ];
  return ports.flatMap((entry): PortChoice[] => {
    if (entry.name !== undefined) {
      const named = destination.ports.find(
        (p) => p.name === entry.name && p.protocol === entry.protocol,
      );
      return named ? [{ port: named.port, protocol: entry.protocol }] : [];
    }
    if (entry.port === undefined) {
      const same = destination.ports.find((p) => p.protocol === entry.protocol);
      return [{ port: same?.port ?? DEFAULT_PORT[entry.protocol], protocol: entry.protocol }];
    }
    const ends =
      entry.endPort !== undefined && entry.endPort > entry.port
        ? [entry.port, entry.endPort]
        : [entry.port];
    return ends.map((port) => ({ port, protocol: entry.protocol }));
  });
}

function probeable(c: PodClass): boolean {
  return !c.hostNetwork && c.pods.length > 0;
}

function byKey(a: PodClass, b: PodClass): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** A cheap deterministic shuffle key. */
function mix(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

class Planner {
  private readonly cases = new Map<string, PlannedCase>();
  readonly notGenerated: NotGenerated[] = [];
  private readonly classes: PodClass[];
  /** The first must-allow case per class and direction: the anchor of its isolation cases. */
  private readonly anchors = new Map<string, PlannedCase>();
  /** Near-miss sources per peer shape: many policies share one. */
  private readonly missCandidates = new Map<string, readonly PodClass[]>();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly syntheticNamespace?: string,
  ) {
    this.classes = engine.podClasses.filter(probeable).sort(byKey);
  }

  result(): Plan {
    return { cases: [...this.cases.values()], notGenerated: this.notGenerated };
  }

  /** Adds a case unless one with its id exists (the first reason wins). */
  add(
    reason: CaseReason,
    source: PodClass,
    destination: PodClass,
    choice: PortChoice,
    rule?: RuleRef,
  ): void {
    const caseId = caseIdOf(source.key, destination.key, choice.port, choice.protocol);
    if (this.cases.has(caseId)) return;
    const verdict = this.engine.classVerdict(source, destination, choice.port, choice.protocol);
    const listenerKnown = destination.ports.some(
      (p) => p.port === choice.port && p.protocol === choice.protocol,
    );
    if (choice.protocol === 'UDP' && !listenerKnown && !verdict.allowed) {
      // Silence is all a denied UDP probe gets, and without a listener silence proves nothing.
      this.notGenerated.push({
        reason,
        ...(rule ? { rule } : {}),
        why: `UDP ${choice.port} to ${destination.namespace} pods that declare no listener on it: a denial would look like silence, which proves nothing`,
      });
      return;
    }
    const planned: PlannedCase = {
      caseId,
      reason,
      source,
      destination,
      port: choice.port,
      protocol: choice.protocol,
      expected: verdict.allowed ? 'allow' : 'deny',
      explanation: verdict.explanation,
      ...(rule ? { rule } : {}),
      loopback: source.id === destination.id && source.pods.length === 1,
      listenerKnown,
    };
    this.cases.set(caseId, planned);
    if (reason === 'must-allow' && rule) {
      const subject = rule.direction === 'ingress' ? destination : source;
      const key = `${rule.direction} ${subject.id}`;
      if (!this.anchors.has(key) && verdict.explanation[rule.direction].allowed)
        this.anchors.set(key, planned);
    }
  }

  /** Prefers another class over the destination itself, then one in another namespace. */
  pick(candidates: readonly PodClass[], avoid: PodClass): PodClass | undefined {
    const others = candidates.filter((c) => c.id !== avoid.id);
    return others.find((c) => c.namespace !== avoid.namespace) ?? others[0] ?? candidates[0];
  }

  ruleCases(policy: ValidPolicy, rule: NormalizedRule): void {
    const ref: RuleRef = { policy: policy.key, direction: rule.direction, index: rule.index };
    const peers = this.engine.rulePeers(ref);
    const peerClasses = peers === 'any' ? this.classes : peers.filter(probeable);
    for (const selected of this.engine.selectedBy(policy.key).filter(probeable)) {
      // Ingress: the selected pod is the destination. Egress: it is the source.
      const ingress = rule.direction === 'ingress';
      for (const peer of ingress ? [this.pick(peerClasses, selected)] : peerClasses.slice(0, 3)) {
        if (!peer) {
          this.notGenerated.push({
            reason: 'must-allow',
            rule: ref,
            why: "no running pod matches the rule's peers",
          });
          continue;
        }
        const [source, destination] = ingress ? [peer, selected] : [selected, peer];
        const ports = admittedPorts(rule.ports, destination);
        if (ports.length === 0)
          this.notGenerated.push({
            reason: 'must-allow',
            rule: ref,
            why: `no named port of the rule exists on ${destination.namespace} pods`,
          });
        for (const choice of ports) this.add('must-allow', source, destination, choice, ref);
        if (ingress && rule.peers !== 'any')
          this.nearMisses(policy, rule, ref, destination, ports[0]);
      }
    }
  }

  /** Sources that match half of a peer, or none of it: a CNI that mixes up AND and OR lets them in. */
  nearMisses(
    policy: ValidPolicy,
    rule: NormalizedRule,
    ref: RuleRef,
    destination: PodClass,
    choice: PortChoice | undefined,
  ): void {
    if (!choice || rule.peers === 'any') return;
    for (const peer of rule.peers) {
      if (peer.kind !== 'pods') continue;
      for (const reason of ['near-miss-pods', 'near-miss-namespace', 'near-miss-both'] as const) {
        if (reason === 'near-miss-pods' && !peer.podSelector) continue;
        const source = this.pick(this.nearMissCandidates(policy, peer, reason), destination);
        if (source) {
          this.add(reason, source, destination, choice, ref);
          continue;
        }
        const namespace = this.syntheticNamespace;
        const labels = namespace
          ? syntheticSourceLabels(reason, peer, policy.namespace, namespace)
          : undefined;
        this.notGenerated.push({
          reason,
          rule: ref,
          why: describeMiss(reason, peer),
          ...(namespace && labels ? { synthetic: { namespace, labels } } : {}),
        });
      }
    }
  }

  /** Up to two classes of each near-miss kind for a peer; two, so one differs from any destination. */
  private nearMissCandidates(
    policy: ValidPolicy,
    peer: NormalizedPeer & { kind: 'pods' },
    reason: CaseReason,
  ): readonly PodClass[] {
    const key = `${reason} ${peer.namespaceSelector ? selectorKey(peer.namespaceSelector) : `= ${policy.namespace}`} | ${peer.podSelector ? selectorKey(peer.podSelector) : '*'}`;
    const cached = this.missCandidates.get(key);
    if (cached) return cached;
    const namespaceSelector = peer.namespaceSelector
      ? compileSelector(peer.namespaceSelector)
      : undefined;
    const podSelector = peer.podSelector ? compileSelector(peer.podSelector) : undefined;
    const namespaceMatch = new Map<string, boolean>();
    const inNamespace = (c: PodClass): boolean => {
      let match = namespaceMatch.get(c.namespace);
      if (match === undefined) {
        match = namespaceSelector
          ? namespaceSelector.matches(this.engine.namespaceLabels(c.namespace))
          : c.namespace === policy.namespace;
        namespaceMatch.set(c.namespace, match);
      }
      return match;
    };
    const withLabels = (c: PodClass): boolean => podSelector?.matches(c.labels) ?? true;
    const test: (c: PodClass) => boolean =
      reason === 'near-miss-pods'
        ? (c) => inNamespace(c) && !withLabels(c)
        : reason === 'near-miss-namespace'
          ? (c) => !inNamespace(c) && withLabels(c)
          : (c) => !inNamespace(c) && !withLabels(c);
    const found: PodClass[] = [];
    for (const c of this.classes) {
      if (test(c)) found.push(c);
      if (found.length === 2) break;
    }
    this.missCandidates.set(key, found);
    return found;
  }

  /** For an isolated class: a source (or destination) no rule lists, and a port no rule lists. */
  isolationCases(subject: PodClass): void {
    const self = this.engine.classVerdict(subject, subject, 1, 'TCP').explanation;
    if (self.ingress.isolated) this.unlisted(subject, 'ingress');
    if (self.egress.isolated) this.unlisted(subject, 'egress');
  }

  /**
   * Anchored on an admitted peer and port (a must-allow case of this class, if any): the
   * same port from a peer no rule lists, and the same peer on a port no rule lists.
   */
  private unlisted(subject: PodClass, direction: 'ingress' | 'egress'): void {
    const ingress = direction === 'ingress';
    const pair = (other: PodClass): [PodClass, PodClass] =>
      ingress ? [other, subject] : [subject, other];
    const admits = (source: PodClass, destination: PodClass, c: PortChoice): boolean =>
      this.engine.classVerdict(source, destination, c.port, c.protocol).explanation[direction]
        .allowed;
    const anchor = this.anchors.get(`${direction} ${subject.id}`);
    const others = this.classes.filter((c) => c.id !== subject.id);
    const anchorPeer = anchor ? (ingress ? anchor.source : anchor.destination) : others[0];
    if (!anchorPeer) return;
    const anchorPort: PortChoice = anchor
      ? { port: anchor.port, protocol: anchor.protocol }
      : (admittedPorts('any', ingress ? subject : anchorPeer)[0] ?? { port: 80, protocol: 'TCP' });
    const unlistedPeer = others.find((o) => !admits(...pair(o), anchorPort));
    if (unlistedPeer) this.add('unlisted-source', ...pair(unlistedPeer), anchorPort);
    const [source, destination] = pair(anchorPeer);
    const candidates: PortChoice[] = [
      ...destination.ports
        .filter((p) => p.protocol !== 'SCTP')
        .map((p) => ({ port: p.port, protocol: p.protocol })),
      { port: 65432, protocol: 'TCP' },
      { port: 65432, protocol: 'UDP' },
    ];
    const unlistedPort = candidates.find(
      (c) => !admits(source, destination, c) && !this.has(source, destination, c),
    );
    if (unlistedPort) this.add('unlisted-port', source, destination, unlistedPort);
  }

  private has(source: PodClass, destination: PodClass, c: PortChoice): boolean {
    return this.cases.has(caseIdOf(source.key, destination.key, c.port, c.protocol));
  }

  /** Draws class pairs deterministically from the seed, without listing all n² of them. */
  sample(budget: number, seed: string): void {
    const n = this.classes.length;
    if (n === 0) return;
    let added = 0;
    for (let draw = 0; added < budget && draw < budget * 20; draw++) {
      const source = this.classes[mix(`${seed}|s|${draw}`) % n];
      const destination = this.classes[mix(`${seed}|d|${draw}`) % n];
      const choice = destination ? admittedPorts('any', destination)[0] : undefined;
      if (!source || !destination || !choice || this.has(source, destination, choice)) continue;
      this.add('sample', source, destination, choice);
      added += 1;
    }
  }
}

function describeMiss(reason: CaseReason, peer: NormalizedPeer): string {
  const what =
    reason === 'near-miss-pods'
      ? "in a matching namespace without the peer's pod labels"
      : reason === 'near-miss-namespace'
        ? "with the peer's pod labels in another namespace"
        : 'matching neither the namespace nor the pod labels';
  return `no running pod ${what} (${peer.kind === 'pods' ? 'a synthetic source would cover it' : 'ipBlock'})`;
}

/**
 * Test cases for the whole model (DESIGN: test-case generation): for every rule a
 * must-allow case and its near misses, for every isolated class an unlisted source and
 * an unlisted port (ingress and egress), then a deterministic sample of the class matrix
 * within the budget. Case ids are stable hashes of (source class, destination class,
 * port, protocol).
 */
export function planCases(engine: PolicyEngine, options: PlanOptions): Plan {
  const planner = new Planner(engine, options.syntheticNamespace);
  for (const policy of [...engine.policies].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    for (const rule of policy.rules) planner.ruleCases(policy, rule);
  }
  for (const podClass of engine.podClasses.filter(probeable)) planner.isolationCases(podClass);
  planner.sample(options.sampleBudget, options.seed ?? 'lumen');
  return planner.result();
}
