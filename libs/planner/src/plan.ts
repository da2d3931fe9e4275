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
  type ClusterPort,
  type ClusterRule,
  type RuleRef,
  type ValidClusterPolicy,
  type ServiceFrontend,
  addressIn,
  type IpFamily,
  type ValidPolicy,
  type Verdict,
} from '#lumen/policy';
import { caseIdOf } from './case-id.js';
import { SYNTHETIC_LABEL, syntheticSourceLabels } from './synthetic.js';
import { servicePathCases, type PlannedServicePath } from './service-paths.js';
import { familyCases } from './family-cases.js';

export type CaseReason =
  | 'must-allow'
  | 'tier-rule'
  | 'near-miss-namespace'
  | 'near-miss-pods'
  | 'near-miss-both'
  | 'unlisted-source'
  | 'unlisted-destination'
  | 'unlisted-port'
  | 'rotation'
  | 'hairpin';

type NearMiss = 'near-miss-pods' | 'near-miss-namespace' | 'near-miss-both';

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
  /** Probed through a Service (its ClusterIP and port) rather than to a pod's IP. */
  readonly via?: PlannedServicePath;
  /** Over this IP family rather than the pods' primary one (dual-stack pods). */
  readonly family?: IpFamily;
}

/** A case the planner wanted but could not build from real pods. */
export interface NotGenerated {
  readonly reason: CaseReason;
  /** A pod with these labels in Lumen's namespace would cover it (synthetic sources on). */
  readonly synthetic?: { readonly namespace: string; readonly labels: Labels };
  /** The rule the case would have checked; isolation and rotation cases have none. */
  readonly rule?: RuleRef;
  readonly why: string;
}

/**
 * The class matrix and how much of it a plan probes. A cell is a class-level connection:
 * (source class, destination class, a port the destination declares, its protocol); a
 * single pod's connection to itself is left out (the spec leaves it to implementations).
 */
export interface MatrixCoverage {
  readonly cells: number;
  /** Cases the obligations need, whether or not they are matrix cells. */
  readonly obligations: number;
  /** Matrix cells the obligations already probe. */
  readonly obligationCells: number;
  /** Matrix cells this plan adds by rotation. */
  readonly rotated: number;
  /** The last cell rotation took: the next plan continues after it (absent: all fit). */
  readonly rotationCursor?: string;
  /** Plans (sweeps) it takes to probe every cell at this budget. */
  readonly sweepsPerRotation: number;
  /**
   * A dual-stack cluster's cells per IP family, counted apart (primary first): a cell of a
   * further family is one whose two classes have pods with addresses in it. Absent for a
   * single-stack cluster, whose cells are all of one family.
   */
  readonly families?: readonly { readonly family: IpFamily; readonly cells: number }[];
}

/** A column of the class matrix: a destination class and one of its declared listeners. */
export interface MatrixColumn {
  readonly destination: PodClass;
  readonly port: number;
  readonly protocol: Protocol;
}

/**
 * Rotation cells of one source class, in the light form they travel in at scale (ADR 0013):
 * a column index and the expected verdict per cell, no explanation. 5 bytes a cell.
 */
export interface CellBlock {
  readonly source: PodClass;
  /** Indexes into the rotation's `columns`, in rotation order. */
  readonly columns: Uint32Array;
  /** 1 where the policies allow the cell's connection, 0 where they deny it. */
  readonly allowed: Uint8Array;
}

/** The rotation share of a plan, as cell blocks instead of cases. */
export interface BlockRotation {
  readonly columns: readonly MatrixColumn[];
  readonly blocks: readonly CellBlock[];
  /** Cells the blocks hold. */
  readonly cells: number;
  /** Cells passed over because no verdict can be expected (ambiguous, not modelled). */
  readonly unjudged: number;
}

export interface Plan {
  readonly cases: readonly PlannedCase[];
  /** Present when the rotation travels in cell blocks (PlanOptions.blocksAbove). */
  readonly rotationBlocks?: BlockRotation;
  readonly notGenerated: readonly NotGenerated[];
  readonly coverage: MatrixCoverage;
  /** Every policy object of a kind Lumen does not model, with the cases it kept from judgment. */
  readonly notJudged: readonly NotJudged[];
  /** Cases left unjudged by those objects; one that several may affect counts once. */
  readonly notJudgedCases: number;
}

/** An object Lumen does not model, and how many of the plan's cases it may affect. */
export interface NotJudged {
  readonly policy: UnmodelledPolicy;
  /** Distinct cases (cells) the plan wanted and left unjudged because of it; 0 is possible. */
  readonly cases: number;
}

export interface PlanOptions {
  /**
   * Probes this plan may spend: the obligations always, then matrix cells by rotation
   * until the budget is spent (Infinity: the whole matrix; 0: the obligations alone).
   */
  readonly probeBudget: number;
  /** Where the previous plan's rotation stopped. */
  readonly rotationCursor?: string;
  /** Lumen's namespace for synthetic sources, when they are enabled. */
  readonly syntheticNamespace?: string;
  /** CNI-specific policy objects: the cases they may affect are not judged. */
  readonly unmodelled?: readonly UnmodelledPolicy[];
  /**
   * When the plan would rotate more cells than this, its rotation is planned as cell
   * blocks (source-major, their own cursor) instead of cases; absent: always cases.
   */
  readonly blocksAbove?: number;
  /** Cells per block (a block is probed as one batch); 1000 by default. */
  readonly maxCellsPerBlock?: number;
  /**
   * The cluster's Services with their backends: each case to a backend is also planned
   * through its Service (service-paths.ts). Rotation cells in blocks are not.
   */
  readonly services?: readonly ServiceFrontend[];
  /**
   * A model of the cluster per further IP family of dual-stack pods: each pod-level case is
   * also planned over each, with that family's expectation (family-cases.ts).
   */
  readonly families?: readonly { readonly family: IpFamily; readonly engine: PolicyEngine }[];
}

/** Cells per block unless the plan says otherwise: the scheduler's default batch size. */
export const MAX_CELLS_PER_BLOCK = 200;

/** A policy object of a kind Lumen does not model (a CNI's own: Cilium, Calico, Antrea). */
export interface UnmodelledPolicy {
  readonly group: string;
  readonly kind: string;
  /** Absent for a cluster-scoped kind, which may affect every pod. */
  readonly namespace?: string;
  readonly name: string;
}

/** `Kind namespace/name (group)`, as the run output and the planner's log name it. */
export function unmodelledName(policy: UnmodelledPolicy): string {
  return `${policy.kind} ${policy.namespace ? `${policy.namespace}/` : ''}${policy.name} (${policy.group})`;
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

/** How many near-miss classes of one kind are looked at for a verifiable one. */
const NEAR_MISS_CANDIDATES = 8;

/** The ports of a class that are matrix columns: its declared TCP and UDP listeners. */
function matrixPorts(c: PodClass): PortChoice[] {
  const seen = new Set<string>();
  const ports: PortChoice[] = [];
  for (const p of c.ports) {
    const key = `${p.port}/${p.protocol}`;
    if (p.protocol === 'SCTP' || seen.has(key)) continue;
    seen.add(key);
    ports.push({ port: p.port, protocol: p.protocol });
  }
  return ports.sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1));
}

interface Cell {
  readonly order: string;
  readonly source: PodClass;
  readonly destination: PodClass;
  readonly choice: PortChoice;
}

/**
 * The hint on a near miss no running pod covers: it stands when synthetic sources are off
 * (turning them on would help), or on and able to cover it (not with reserved labels).
 */
function syntheticHint(
  ingress: boolean,
  namespace: string | undefined,
  labels: Labels | undefined,
): string {
  return ingress && (!namespace || labels) ? ' (a synthetic source would cover it)' : '';
}

/** Lumen's synthetic sources stand in for near misses; they are not the cluster's workloads. */
function synthetic(c: PodClass): boolean {
  return c.labels[SYNTHETIC_LABEL] === 'true';
}

/**
 * Whether a case is a cell of the class matrix: between the cluster's own pods (not
 * Lumen's synthetic sources), to a declared TCP/UDP listener, not a pod to itself, pod to
 * pod (a path through a Service is a second look at a cell), over the pods' primary family
 * (a further family's cells are counted apart: `isFamilyCell`).
 */
export function isMatrixCell(
  c: Pick<
    PlannedCase,
    'loopback' | 'listenerKnown' | 'protocol' | 'source' | 'destination' | 'via' | 'family'
  >,
): boolean {
  return c.family === undefined && isFamilyCell(c);
}

/** Whether a case is a cell of the matrix of its own family, the primary or a further one. */
export function isFamilyCell(
  c: Pick<
    PlannedCase,
    'loopback' | 'listenerKnown' | 'protocol' | 'source' | 'destination' | 'via'
  >,
): boolean {
  return (
    !c.via &&
    !c.loopback &&
    c.listenerKnown &&
    c.protocol !== 'SCTP' &&
    !synthetic(c.source) &&
    !synthetic(c.destination)
  );
}

/** The cells among these classes: each declared listener from every class, no pod to itself. */
function countCells(classes: readonly PodClass[]): number {
  let cells = 0;
  for (const destination of classes) {
    const sources = classes.length - (destination.pods.length === 1 ? 1 : 0);
    cells += matrixPorts(destination).length * sources;
  }
  return cells;
}

/** A single pod's connection to itself is implementation-defined: no matrix cell. */
export function selfOnly(source: PodClass, destination: PodClass): boolean {
  return source.id === destination.id && source.pods.length === 1;
}

/** A cell's place in the rotation: destination, port, source, in key order. */
function cellOrder(destination: PodClass, choice: PortChoice, source: PodClass): string {
  return `${destination.key}\u0000${String(choice.port).padStart(5, '0')}/${choice.protocol}\u0000${source.key}`;
}

class Planner {
  private readonly cases = new Map<string, PlannedCase>();
  readonly notGenerated: NotGenerated[] = [];
  private readonly classes: PodClass[];
  /** The classes of the matrix: the cluster's own pods, without Lumen's synthetic sources. */
  private readonly matrixClasses: PodClass[];
  /** The first must-allow case per class and direction: the anchor of its isolation cases. */
  private readonly anchors = new Map<string, PlannedCase>();
  /** Near-miss classes per peer shape: many policies share one. */
  private readonly missCandidates = new Map<string, readonly PodClass[]>();
  /** Unmodelled objects by namespace; cluster-scoped ones (they reach every pod) under ''. */
  private readonly unmodelledIn = new Map<string, UnmodelledPolicy[]>();
  /** Per unmodelled object, the cases it kept from judgment. */
  private readonly notJudgedCases = new Map<UnmodelledPolicy, Set<string>>();

  constructor(
    private readonly engine: PolicyEngine,
    unmodelled: readonly UnmodelledPolicy[],
    private readonly syntheticNamespace?: string,
  ) {
    this.classes = engine.podClasses.filter(probeable).sort(byKey);
    this.matrixClasses = this.classes.filter((c) => !synthetic(c));
    for (const policy of unmodelled) {
      const namespace = policy.namespace ?? '';
      this.unmodelledIn.set(namespace, [...(this.unmodelledIn.get(namespace) ?? []), policy]);
      this.notJudgedCases.set(policy, new Set());
    }
  }

  get size(): number {
    return this.cases.size;
  }

  result(coverage: MatrixCoverage, rotationBlocks?: BlockRotation): Plan {
    const notJudged = [...this.notJudgedCases].map(([policy, cases]) => ({
      policy,
      cases: cases.size,
    }));
    const distinct = new Set([...this.notJudgedCases.values()].flatMap((ids) => [...ids]));
    return {
      cases: [...this.cases.values()],
      ...(rotationBlocks ? { rotationBlocks } : {}),
      notGenerated: this.notGenerated,
      coverage,
      notJudged: notJudged.sort((a, b) => b.cases - a.cases),
      notJudgedCases: distinct.size,
    };
  }

  /** The unmodelled objects that may affect a connection: its ends' namespaces' and the cluster's. */
  private unmodelledAround(source: PodClass, destination: PodClass): UnmodelledPolicy[] {
    return [
      ...(this.unmodelledIn.get('') ?? []),
      ...(this.unmodelledIn.get(source.namespace) ?? []),
      ...(source.namespace === destination.namespace
        ? []
        : (this.unmodelledIn.get(destination.namespace) ?? [])),
    ];
  }

  /** Why a connection cannot be judged, if it cannot. */
  private unjudgeable({
    caseId,
    source,
    destination,
    choice,
    verdict,
    listenerKnown,
  }: {
    caseId: string;
    source: PodClass;
    destination: PodClass;
    choice: PortChoice;
    verdict: Verdict;
    listenerKnown: boolean;
  }): string | undefined {
    // The spec leaves it to the implementation: nothing to expect, so nothing to probe.
    if (verdict.ambiguous !== undefined)
      return `ambiguous (implementation-defined): ${verdict.ambiguous}`;
    // Silence is all a denied UDP probe gets, and without a listener silence proves nothing.
    if (choice.protocol === 'UDP' && !listenerKnown && !verdict.allowed)
      return `UDP ${choice.port} to ${destination.namespace} pods that declare no listener on it: a denial would look like silence, which proves nothing`;
    const unmodelled = this.unmodelledAround(source, destination);
    // Its CNI enforces more than the model says: a verdict here would be a guess. Checked
    // last, so an object's count holds only cases that would otherwise have been judged.
    if (unmodelled.length > 0) {
      for (const policy of unmodelled) this.notJudgedCases.get(policy)?.add(caseId);
      const [first] = unmodelled as [UnmodelledPolicy];
      const more = unmodelled.length > 1 ? ` (and ${unmodelled.length - 1} more)` : '';
      return `not judged: ${unmodelledName(first)}${more} may affect it, and Lumen does not model that kind`;
    }
    return undefined;
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
    const why = this.unjudgeable({ caseId, source, destination, choice, verdict, listenerKnown });
    if (why) {
      this.notGenerated.push({ reason, ...(rule ? { rule } : {}), why });
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
      loopback: selfOnly(source, destination),
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

  /**
   * Whether a probe from `source` to `destination` shows `direction`'s policies at work:
   * the other side must admit the flow, or a blocked probe proves nothing about this side.
   */
  private verifies(
    direction: 'ingress' | 'egress',
    source: PodClass,
    destination: PodClass,
    choice: PortChoice,
  ): boolean {
    const explanation = this.engine.classVerdict(
      source,
      destination,
      choice.port,
      choice.protocol,
    ).explanation;
    return direction === 'ingress' ? explanation.egress.allowed : explanation.ingress.allowed;
  }

  /**
   * The peer class to probe with, among candidates: one whose side admits the flow (so the
   * probe checks this rule), preferring another class than the subject, then one in
   * another namespace.
   */
  pick(
    candidates: readonly PodClass[],
    subject: PodClass,
    fits: (peer: PodClass) => boolean = () => true,
  ): PodClass | undefined {
    const usable = candidates.filter(fits);
    const others = usable.filter((c) => c.id !== subject.id);
    return others.find((c) => c.namespace !== subject.namespace) ?? others[0] ?? usable[0];
  }

  ruleCases(policy: ValidPolicy, rule: NormalizedRule): void {
    const ref: RuleRef = { policy: policy.key, direction: rule.direction, index: rule.index };
    const peers = this.engine.rulePeers(ref);
    const peerClasses = peers === 'any' ? this.classes : peers.filter(probeable);
    const ingress = rule.direction === 'ingress';
    for (const selected of this.engine.selectedBy(policy.key).filter(probeable)) {
      // Ingress: the selected pod is the destination. Egress: it is the source.
      const pair = (peer: PodClass): [PodClass, PodClass] =>
        ingress ? [peer, selected] : [selected, peer];
      const allowedEverywhere = (peer: PodClass): boolean => {
        const [source, destination] = pair(peer);
        const [first] = admittedPorts(rule.ports, destination);
        return first !== undefined && this.verifies(rule.direction, source, destination, first);
      };
      const peersToProbe = ingress
        ? [this.pick(peerClasses, selected, allowedEverywhere) ?? this.pick(peerClasses, selected)]
        : peerClasses.slice(0, 3);
      for (const peer of peersToProbe) {
        if (!peer) {
          this.notGenerated.push({
            reason: 'must-allow',
            rule: ref,
            why: "no running pod matches the rule's peers",
          });
          continue;
        }
        const [source, destination] = pair(peer);
        const ports = admittedPorts(rule.ports, destination);
        if (ports.length === 0)
          this.notGenerated.push({
            reason: 'must-allow',
            rule: ref,
            why: `no named port of the rule exists on ${destination.namespace} pods`,
          });
        for (const choice of ports) this.add('must-allow', source, destination, choice, ref);
      }
      if (rule.peers !== 'any') this.nearMisses(policy, rule, ref, selected);
    }
  }

  /**
   * A rule of a cluster-scoped policy, for each class it applies to: one connection on a
   * port the rule names where this very rule decides (Accept, Deny) or passes the
   * connection on, and the other side lets it through, so the probe shows the rule at
   * work: an Accept that must pass, a Deny that must block although a NetworkPolicy
   * admits, a Pass after which the NetworkPolicies or the Baseline tier decide.
   */
  tierRuleCases(policy: ValidClusterPolicy, rule: ClusterRule): void {
    const ref: RuleRef = { policy: policy.key, direction: rule.direction, index: rule.index };
    const ingress = rule.direction === 'ingress';
    const peers = this.engine.clusterRulePeers(ref);
    const candidates = peers === 'all' ? this.classes : peers.filter(probeable);
    for (const subject of this.engine.subjectOf(policy.key).filter(probeable)) {
      // A cell no other obligation took first, so the case names this rule; else any.
      const found = [true, false].some((fresh) =>
        candidates.some((peer) => {
          const [source, destination] = ingress ? [peer, subject] : [subject, peer];
          return tierPorts(rule.ports, destination).some((choice) => {
            if (fresh && this.has(source, destination, choice)) return false;
            const verdict = this.engine.classVerdict(
              source,
              destination,
              choice.port,
              choice.protocol,
            );
            const side = verdict.explanation[rule.direction];
            const other = verdict.explanation[ingress ? 'egress' : 'ingress'];
            const decides = [side.decidedBy, ...(side.passedBy ?? [])].some(
              (r) => r?.policy === ref.policy && r.index === ref.index,
            );
            if (!decides || !other.allowed || verdict.ambiguous !== undefined) return false;
            this.add('tier-rule', source, destination, choice, ref);
            return true;
          });
        }),
      );
      if (!found)
        this.notGenerated.push({
          reason: 'tier-rule',
          rule: ref,
          why: `no running pod pair in ${subject.namespace} where this rule decides and the other side lets the connection through`,
        });
      this.tierNearMisses(rule, ref, subject);
    }
  }

  /**
   * Near misses of a cluster-scoped rule's peers, as for NetworkPolicy peers: a `pods`
   * peer's namespace matching and its pods not, the reverse, and neither; a `namespaces`
   * peer's namespace not matching. Each is probed where the other side admits the flow,
   * with the verdict every tier gives it.
   */
  private tierNearMisses(rule: ClusterRule, ref: RuleRef, subject: PodClass): void {
    const ingress = rule.direction === 'ingress';
    for (const peer of rule.peers) {
      if (peer.kind !== 'pods' && peer.kind !== 'namespaces') continue;
      const asPods: NormalizedPeer & { kind: 'pods' } = {
        kind: 'pods',
        namespaceSelector: peer.namespaceSelector,
        podSelector: peer.kind === 'pods' ? peer.podSelector : undefined,
      };
      const reasons =
        peer.kind === 'pods'
          ? (['near-miss-pods', 'near-miss-namespace', 'near-miss-both'] as const)
          : (['near-miss-namespace'] as const);
      for (const reason of reasons) {
        const candidates = this.nearMissCandidates('', asPods, reason);
        const ends = (miss: PodClass): [PodClass, PodClass] =>
          ingress ? [miss, subject] : [subject, miss];
        const usable = candidates.flatMap((miss) => {
          const [source, destination] = ends(miss);
          const [port] = tierPorts(rule.ports, destination);
          return port && this.verifies(rule.direction, source, destination, port)
            ? [{ miss, port }]
            : [];
        });
        const chosen = usable.find((u) => u.miss.id !== subject.id) ?? usable[0];
        if (chosen) this.add(reason, ...ends(chosen.miss), chosen.port, ref);
        else
          this.notGenerated.push({
            reason,
            rule: ref,
            why:
              candidates.length === 0
                ? `no running ${TIER_MISSES[reason]}`
                : `not verifiable: every ${TIER_MISSES[reason]} is denied on the other side, so a blocked probe would not show this rule at work`,
          });
      }
    }
  }

  /**
   * Peers that match half of a rule's peer, or none of it: a CNI that mixes up AND and OR
   * lets them through. On ingress they are sources, on egress destinations; each is taken
   * only where the other side admits the flow, so a blocked probe shows this rule at work.
   */
  nearMisses(policy: ValidPolicy, rule: NormalizedRule, ref: RuleRef, subject: PodClass): void {
    if (rule.peers === 'any') return;
    for (const peer of rule.peers) {
      if (peer.kind !== 'pods') continue;
      for (const reason of ['near-miss-pods', 'near-miss-namespace', 'near-miss-both'] as const)
        if (reason !== 'near-miss-pods' || peer.podSelector)
          this.nearMiss({ policy, rule, ref }, subject, peer, reason);
    }
  }

  private nearMiss(
    { policy, rule, ref }: { policy: ValidPolicy; rule: NormalizedRule; ref: RuleRef },
    subject: PodClass,
    peer: NormalizedPeer & { kind: 'pods' },
    reason: NearMiss,
  ): void {
    const ingress = rule.direction === 'ingress';
    const candidates = this.nearMissCandidates(policy.namespace, peer, reason);
    // The rule's port on the destination: the subject's on ingress, the miss's on egress.
    const choice = (miss: PodClass): PortChoice | undefined =>
      admittedPorts(rule.ports, ingress ? subject : miss)[0];
    const ends = (miss: PodClass): [PodClass, PodClass] =>
      ingress ? [miss, subject] : [subject, miss];
    const verifiable = (miss: PodClass): boolean => {
      const port = choice(miss);
      return port !== undefined && this.verifies(rule.direction, ...ends(miss), port);
    };
    const miss = this.pick(candidates, subject, verifiable);
    const port = miss ? choice(miss) : undefined;
    if (miss && port) {
      this.add(reason, ...ends(miss), port, ref);
      return;
    }
    // A synthetic source stays wanted even while it cannot verify (its own egress denied):
    // removing and re-creating it every plan would change nothing.
    const namespace = ingress ? this.syntheticNamespace : undefined;
    const labels = namespace
      ? syntheticSourceLabels(reason, peer, policy.namespace, namespace)
      : undefined;
    if (candidates.length > 0) {
      this.notGenerated.push({
        reason,
        rule: ref,
        why: `not verifiable: every ${describeMiss(reason, peer, ingress)} is denied by its own ${ingress ? 'egress' : 'ingress'} policies, so a blocked probe would not show this rule at work`,
        ...(namespace && labels && candidates.some((c) => c.namespace === namespace)
          ? { synthetic: { namespace, labels } }
          : {}),
      });
      return;
    }
    this.notGenerated.push({
      reason,
      rule: ref,
      why: `no running ${describeMiss(reason, peer, ingress)}${syntheticHint(ingress, namespace, labels)}`,
      ...(namespace && labels ? { synthetic: { namespace, labels } } : {}),
    });
  }

  /** Classes of one near-miss kind for a peer, a few, so one of them can be verifiable. */
  private nearMissCandidates(
    policyNamespace: string,
    peer: NormalizedPeer & { kind: 'pods' },
    reason: NearMiss,
  ): readonly PodClass[] {
    const key = `${reason} ${peer.namespaceSelector ? selectorKey(peer.namespaceSelector) : `= ${policyNamespace}`} | ${peer.podSelector ? selectorKey(peer.podSelector) : '*'}`;
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
          : c.namespace === policyNamespace;
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
      if (found.length === NEAR_MISS_CANDIDATES) break;
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
   * same port from (or to) a peer no rule lists, and the same peer on a port no rule lists,
   * preferring a port the destination listens on, so that a reject is not mistaken for a
   * closed port. Each only where the other side admits the flow.
   */
  private unlisted(subject: PodClass, direction: 'ingress' | 'egress'): void {
    const ingress = direction === 'ingress';
    const pair = (other: PodClass): [PodClass, PodClass] =>
      ingress ? [other, subject] : [subject, other];
    const other = ingress ? 'egress' : 'ingress';
    // One verdict per candidate: this side must not list it, the other side must admit it.
    const check = (source: PodClass, destination: PodClass, c: PortChoice) => {
      const sides = this.engine.classVerdict(source, destination, c.port, c.protocol).explanation;
      return { unlisted: !sides[direction].allowed, verifiable: sides[other].allowed };
    };
    const anchor = this.anchors.get(`${direction} ${subject.id}`);
    const others = this.classes.filter((c) => c.id !== subject.id);
    const anchorPeer = anchor ? (ingress ? anchor.source : anchor.destination) : others[0];
    if (!anchorPeer) return;
    const anchorPort: PortChoice = anchor
      ? { port: anchor.port, protocol: anchor.protocol }
      : (admittedPorts('any', ingress ? subject : anchorPeer)[0] ?? { port: 80, protocol: 'TCP' });
    const reason = ingress ? 'unlisted-source' : 'unlisted-destination';
    const { peer: unlistedPeer, anyUnlisted } = firstUnlisted(others, (o) =>
      check(...pair(o), anchorPort),
    );
    if (unlistedPeer) this.add(reason, ...pair(unlistedPeer), anchorPort);
    else if (anyUnlisted)
      this.notGenerated.push({
        reason,
        why: `not verifiable: every ${ingress ? 'source' : 'destination'} ${subject.namespace} pods' ${direction} policies do not list is denied by its own ${ingress ? 'egress' : 'ingress'} policies`,
      });
    const [source, destination] = pair(anchorPeer);
    const candidates: PortChoice[] = [
      ...matrixPorts(destination),
      { port: 65432, protocol: 'TCP' },
      { port: 65432, protocol: 'UDP' },
    ];
    const unlistedPort = candidates.find((c) => {
      const { unlisted, verifiable } = check(source, destination, c);
      return unlisted && verifiable && !this.has(source, destination, c);
    });
    if (unlistedPort) this.add('unlisted-port', source, destination, unlistedPort);
  }

  private has(source: PodClass, destination: PodClass, c: PortChoice): boolean {
    return this.cases.has(caseIdOf(source.key, destination.key, c.port, c.protocol));
  }

  /** Every cell of the class matrix, counted without listing them. */
  matrixCells(): number {
    return countCells(this.matrixClasses);
  }

  /** The matrix cells between classes with pods that have an address of this family. */
  matrixCellsIn(family: IpFamily): number {
    return countCells(
      this.matrixClasses.filter((c) => c.pods.some((p) => addressIn(p, family) !== undefined)),
    );
  }

  /** The cells of these destinations, in rotation order. */
  private *cellsOf(destinations: readonly PodClass[]): Generator<Cell> {
    for (const destination of destinations)
      for (const choice of matrixPorts(destination))
        for (const source of this.matrixClasses)
          if (!selfOnly(source, destination))
            yield { order: cellOrder(destination, choice, source), source, destination, choice };
  }

  /** The matrix cells, in rotation order, starting after `cursor` and wrapping round once. */
  private *cellsAfter(cursor: string | undefined): Generator<Cell> {
    const classes = this.matrixClasses;
    if (cursor === undefined) {
      yield* this.cellsOf(classes);
      return;
    }
    const destinationKey = cursor.split('\u0000')[0] ?? '';
    const found = classes.findIndex((c) => c.key >= destinationKey);
    const at = found < 0 ? classes.length : found;
    for (const cell of this.cellsOf(classes.slice(at))) if (cell.order > cursor) yield cell;
    yield* this.cellsOf(classes.slice(0, at));
    const same = classes[at];
    if (same?.key === destinationKey)
      for (const cell of this.cellsOf([same])) if (cell.order <= cursor) yield cell;
  }

  /**
   * After the obligations, the cells probed least recently: rotation continues where the
   * last plan stopped, so every cell comes round in turn. The cursor advances only over
   * cells this plan takes.
   */
  rotate(budget: number, cursor: string | undefined): { rotated: number; cursor?: string } {
    let rotated = 0;
    let last: string | undefined;
    let complete = true;
    for (const { order, source, destination, choice } of this.cellsAfter(cursor)) {
      if (this.has(source, destination, choice)) continue;
      if (rotated >= budget) {
        complete = false;
        break;
      }
      this.add('rotation', source, destination, choice);
      rotated += 1;
      last = order;
    }
    return { rotated, ...(complete || last === undefined ? {} : { cursor: last }) };
  }

  /**
   * The rotation as cell blocks: source-major (source, destination, port, in key order),
   * so that a block is one source class's cells and is probed as one batch. Continues
   * after `cursor` and wraps round once, as rotate() does; skips the obligations' cells, a
   * single pod's connection to itself, and cells without an expected verdict. A block
   * holds at most `maxCells` cells.
   */
  rotateInBlocks(
    budget: number,
    cursor: string | undefined,
    maxCells: number,
  ): { rotation: BlockRotation; cursor?: string } {
    const sources = this.matrixClasses;
    const columns: MatrixColumn[] = sources.flatMap((destination) =>
      matrixPorts(destination).map((choice) => ({ destination, ...choice })),
    );
    const columnOrder = columns.map(
      (c) => `${c.destination.key}\u0000${String(c.port).padStart(5, '0')}/${c.protocol}`,
    );
    // The obligations' cells by class ids: cheaper than hashing every cell's case id.
    const obligations = new Set(
      [...this.cases.values()].map(
        (c) => `${c.source.id}|${c.destination.id}|${c.port}/${c.protocol}`,
      ),
    );
    const blocks: CellBlock[] = [];
    let cells = 0;
    let unjudged = 0;
    let last: string | undefined;
    let complete = true;
    for (const [sourceIndex, wanted] of blockOrder(sources, columnOrder, cursor)) {
      const source = sources[sourceIndex] as PodClass;
      const picked: number[] = [];
      const allowed: number[] = [];
      const flush = (): void => {
        if (picked.length > 0)
          blocks.push({
            source,
            columns: Uint32Array.from(picked),
            allowed: Uint8Array.from(allowed),
          });
        picked.length = 0;
        allowed.length = 0;
      };
      for (let i = 0; i < columns.length; i += 1) {
        const column = columns[i] as MatrixColumn;
        if (!wanted(i) || selfOnly(source, column.destination)) continue;
        if (
          obligations.has(`${source.id}|${column.destination.id}|${column.port}/${column.protocol}`)
        )
          continue;
        if (cells >= budget) {
          complete = false;
          break;
        }
        const verdict = this.blockVerdict(source, column);
        if (verdict === undefined) {
          unjudged += 1;
          continue;
        }
        picked.push(i);
        allowed.push(verdict ? 1 : 0);
        cells += 1;
        last = `${source.key}\u0000${columnOrder[i] as string}`;
        if (picked.length >= maxCells) flush();
      }
      flush();
      if (!complete) break;
    }
    return {
      rotation: { columns, blocks, cells, unjudged },
      ...(complete || last === undefined ? {} : { cursor: last }),
    };
  }

  /** Whether the policies allow a block cell; undefined when no verdict can be expected. */
  private blockVerdict(source: PodClass, column: MatrixColumn): boolean | undefined {
    const { destination, port, protocol } = column;
    const verdict = this.engine.classVerdict(source, destination, port, protocol);
    if (verdict.ambiguous !== undefined) return undefined;
    if (this.unmodelledIn.size === 0) return verdict.allowed;
    const why = this.unjudgeable({
      caseId: caseIdOf(source.key, destination.key, port, protocol),
      source,
      destination,
      choice: { port, protocol },
      verdict,
      listenerKnown: true,
    });
    return why === undefined ? verdict.allowed : undefined;
  }

  /** Matrix cells among the cases planned so far. */
  matrixCellsPlanned(): number {
    let n = 0;
    for (const c of this.cases.values()) if (isMatrixCell(c)) n += 1;
    return n;
  }
}

/**
 * The sources of a block rotation in turn, each with the columns it contributes this time
 * round: after the cursor's cell to the end, then from the start, wrapping round once.
 */
function blockOrder(
  sources: readonly PodClass[],
  columnOrder: readonly string[],
  cursor: string | undefined,
): [number, (column: number) => boolean][] {
  const all = (): boolean => true;
  if (cursor === undefined) return sources.map((_, i) => [i, all]);
  const [cursorSource = '', ...rest] = cursor.split('\u0000');
  const cursorColumn = rest.join('\u0000');
  const found = sources.findIndex((s) => s.key >= cursorSource);
  const start = found < 0 ? sources.length : found;
  const resumes = sources[start]?.key === cursorSource;
  const order: [number, (column: number) => boolean][] = [];
  if (resumes) order.push([start, (i) => (columnOrder[i] as string) > cursorColumn]);
  for (let i = resumes ? start + 1 : start; i < sources.length; i += 1) order.push([i, all]);
  for (let i = 0; i < start; i += 1) order.push([i, all]);
  if (resumes) order.push([start, (i) => (columnOrder[i] as string) <= cursorColumn]);
  return order;
}

/** The first candidate unlisted and verifiable, and whether any was unlisted at all. */
function firstUnlisted(
  candidates: readonly PodClass[],
  check: (c: PodClass) => { unlisted: boolean; verifiable: boolean },
): { peer: PodClass | undefined; anyUnlisted: boolean } {
  let anyUnlisted = false;
  for (const c of candidates) {
    const { unlisted, verifiable } = check(c);
    if (unlisted && verifiable) return { peer: c, anyUnlisted: true };
    anyUnlisted ||= unlisted;
  }
  return { peer: undefined, anyUnlisted };
}

/** What each near miss of a cluster-scoped rule's peer is. */
const TIER_MISSES: Record<NearMiss, string> = {
  'near-miss-pods': "pod in a namespace the peer selects, without the peer's pod labels",
  'near-miss-namespace': "pod with the peer's pod labels, in a namespace the peer does not select",
  'near-miss-both': 'pod matching neither half of the peer',
};

/** The ports a cluster-scoped rule names on a destination (its declared ones when any). */
function tierPorts(ports: readonly ClusterPort[] | 'any', destination: PodClass): PortChoice[] {
  if (ports === 'any') {
    const [first] = matrixPorts(destination);
    return [first ?? { port: 80, protocol: 'TCP' }];
  }
  return ports.flatMap((entry): PortChoice[] => {
    if (entry.name !== undefined)
      return destination.ports
        .filter((p) => p.name === entry.name)
        .map((p) => ({ port: p.port, protocol: p.protocol }));
    const protocol = entry.protocol ?? 'TCP';
    if (entry.port === undefined) return [{ port: DEFAULT_PORT[protocol], protocol }];
    const end = entry.endPort ?? entry.port;
    const declared = destination.ports.find(
      (p) => p.protocol === protocol && p.port >= (entry.port as number) && p.port <= end,
    );
    return [{ port: declared?.port ?? entry.port, protocol }];
  });
}

function describeMiss(reason: CaseReason, peer: NormalizedPeer, ingress: boolean): string {
  const pod = ingress ? 'source' : 'destination';
  const what =
    reason === 'near-miss-pods'
      ? `${pod} in a matching namespace without the peer's pod labels`
      : reason === 'near-miss-namespace'
        ? `${pod} with the peer's pod labels in another namespace`
        : `${pod} matching neither the namespace nor the pod labels`;
  return peer.kind === 'pods' ? what : `${what} (ipBlock)`;
}

/**
 * A rotation cell as a full case (ADR 0013: a block's cell whose probe disagreed), with
 * its explanation; undefined when the model no longer gives it an expected verdict.
 */
export function cellCase(
  engine: PolicyEngine,
  source: PodClass,
  destination: PodClass,
  choice: { readonly port: number; readonly protocol: Protocol },
  unmodelled: readonly UnmodelledPolicy[] = [],
): PlannedCase | undefined {
  const planner = new Planner(engine, unmodelled);
  planner.add('rotation', source, destination, choice);
  return planner.result({
    cells: 0,
    obligations: 0,
    obligationCells: 0,
    rotated: 0,
    sweepsPerRotation: 1,
  }).cases[0];
}

/**
 * Test cases for the whole model (DESIGN: coverage). The obligations first: for every rule
 * a must-allow case and its near misses on ingress and egress peers, for every isolated
 * class an unlisted source or destination and an unlisted port; each deny check only where
 * the other side admits the flow. Then the rotation budget goes to the matrix cells probed
 * least recently. Case ids are stable hashes of (source class, destination class, port,
 * protocol), so a matrix cell and a case are one thing.
 */
export function planCases(engine: PolicyEngine, options: PlanOptions): Plan {
  const planner = new Planner(engine, options.unmodelled ?? [], options.syntheticNamespace);
  for (const policy of [...engine.policies].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    for (const rule of policy.rules) planner.ruleCases(policy, rule);
  }
  for (const policy of [...engine.clusterPolicies].sort((a, b) => (a.key < b.key ? -1 : 1)))
    for (const rule of policy.rules) planner.tierRuleCases(policy, rule);
  for (const podClass of engine.podClasses.filter(probeable)) planner.isolationCases(podClass);
  const obligations = planner.size;
  const obligationCells = planner.matrixCellsPlanned();
  const cells = planner.matrixCells();
  const budget = Math.max(0, options.probeBudget - obligations);
  const rest = cells - obligationCells;
  const inBlocks =
    options.blocksAbove !== undefined && Math.min(budget, rest) > options.blocksAbove;
  const blocks = inBlocks
    ? planner.rotateInBlocks(
        budget,
        options.rotationCursor,
        options.maxCellsPerBlock ?? MAX_CELLS_PER_BLOCK,
      )
    : undefined;
  const { rotated, cursor } = blocks
    ? { rotated: blocks.rotation.cells, cursor: blocks.cursor }
    : planner.rotate(budget, options.rotationCursor);
  const plan = planner.result(
    {
      cells,
      obligations,
      obligationCells,
      rotated,
      ...(cursor === undefined ? {} : { rotationCursor: cursor }),
      sweepsPerRotation: rest <= budget ? 1 : budget === 0 ? Infinity : Math.ceil(rest / budget),
    },
    blocks?.rotation,
  );
  return withFamilies(withServicePaths(engine, plan, options.services), options.families);
}

/** The plan with each pod-level case again over each further IP family, counted apart. */
function withFamilies(plan: Plan, families: PlanOptions['families'] = []): Plan {
  if (families.length === 0) return plan;
  let cases = plan.cases;
  let notGenerated = plan.notGenerated;
  const cells: { family: IpFamily; cells: number }[] = [];
  for (const { family, engine } of families) {
    const extra = familyCases(engine, family, plan.cases);
    cases = [...cases, ...extra.cases];
    notGenerated = [...notGenerated, ...extra.notGenerated];
    cells.push({ family, cells: new Planner(engine, []).matrixCellsIn(family) });
  }
  const primary: IpFamily = families[0]?.family === 6 ? 4 : 6;
  return {
    ...plan,
    cases,
    notGenerated,
    coverage: {
      ...plan.coverage,
      families: [{ family: primary, cells: plan.coverage.cells }, ...cells],
    },
  };
}

/**
 * The plan with each case's paths through the Services its destination backs: they come
 * with their pod-level case, obligation or rotated cell, so they are covered and rotated
 * with it (on top of the probe budget, which counts cells).
 */
function withServicePaths(
  engine: PolicyEngine,
  plan: Plan,
  services: readonly ServiceFrontend[] = [],
): Plan {
  if (services.length === 0) return plan;
  const paths = servicePathCases(engine, plan.cases, services);
  return {
    ...plan,
    cases: [...plan.cases, ...paths.cases],
    notGenerated: [...plan.notGenerated, ...paths.notGenerated],
  };
}
