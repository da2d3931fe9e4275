/**
 * The compiled policy engine. Pods that no policy can tell apart (same namespace, labels,
 * hostNetwork, containerPorts and ipBlock membership) form one equivalence class, and
 * every question is answered per class: a cluster of 20,000 pods costs what its few
 * thousand classes cost, not 20,000².
 *
 * Selections and peers are bitsets over class ids, so a whole matrix row (every source
 * class that may reach one destination port) is a handful of word-wide ORs.
 */
import { Bitset } from './bitset.js';
import { cidrContains, parseIp, type Cidr } from './ip.js';
import { compileSelector, type CompiledSelector } from './labels.js';
import {
  NAMESPACE_NAME_LABEL,
  podKey,
  type Cluster,
  type Connection,
  type ContainerPort,
  type Direction,
  type LabelSelector,
  type Labels,
  type Namespace,
  type NetworkPolicy,
  type Pod,
  type PodRef,
  type Protocol,
} from './types.js';
import {
  clusterPolicyKey,
  validateClusterPolicy,
  type ClusterPolicyManifest,
  type ClusterPort,
  type ClusterRule,
  type Tier,
  type ValidClusterPolicy,
} from './tiers.js';
import {
  validatePolicy,
  type NormalizedPeer,
  type NormalizedPort,
  type PolicyError,
  type ValidPolicy,
} from './validate.js';
import {
  combineSides,
  compareRuleRefs,
  type DecidingTier,
  type RuleRef,
  type SideExplanation,
  type TierRuleRef,
  type Verdict,
} from './verdict.js';

/** Pods that every policy treats alike. */
export interface PodClass {
  readonly id: number;
  /** Canonical identity: equal for pods the policies cannot tell apart. */
  readonly key: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly hostNetwork: boolean;
  readonly ports: readonly ContainerPort[];
  readonly pods: readonly Pod[];
}

interface CompiledRule {
  readonly ref: RuleRef;
  /** The union of `peerSets` (the one set itself when there is one). */
  readonly peers: Bitset | 'any';
  /** Each peer's members, shared with every rule naming the same peer (the peer cache). */
  readonly peerSets: readonly Bitset[];
  readonly ports: readonly NormalizedPort[] | 'any';
  readonly policy: CompiledPolicy;
}

interface CompiledPolicy {
  readonly valid: ValidPolicy;
  readonly selected: Bitset;
  readonly rules: Record<Direction, CompiledRule[]>;
}

/** A cluster-scoped policy's rule: its peers as classes ('all' when it fails closed). */
interface CompiledClusterRule {
  readonly rule: ClusterRule;
  readonly peers: Bitset | 'all';
}

interface CompiledClusterPolicy {
  readonly valid: ValidClusterPolicy;
  readonly subject: Bitset;
  readonly rules: Record<Direction, CompiledClusterRule[]>;
}

interface MutableClass extends PodClass {
  readonly pods: Pod[];
  /** Keys of the ipBlocks whose addresses (minus their holes) contain the pods' IP. */
  readonly ipBlocks: ReadonlySet<string>;
  readonly policies: Record<Direction, CompiledPolicy[]>;
  /** Cluster-scoped policies with rules for the class, by tier, priority and key. */
  clusterPolicies: Record<Direction, CompiledClusterPolicy[]>;
}

/** One way an implementation may decide a side through the tiers. */
interface TierPath {
  readonly allowed: boolean;
  readonly tier: DecidingTier;
  readonly decidedBy?: TierRuleRef;
  readonly passedBy: readonly TierRuleRef[];
}

const TIER_ORDER: Record<Tier, number> = { Admin: 0, Baseline: 1 };

function compareClusterPolicies(a: CompiledClusterPolicy, b: CompiledClusterPolicy): number {
  const x = a.valid;
  const y = b.valid;
  if (x.tier !== y.tier) return TIER_ORDER[x.tier] - TIER_ORDER[y.tier];
  if (x.priority !== y.priority) return x.priority - y.priority;
  return x.key < y.key ? -1 : x.key > y.key ? 1 : 0;
}

function clusterPortMatches(
  ports: readonly ClusterPort[] | 'any',
  port: number,
  protocol: Protocol,
  destination: PodClass,
): boolean {
  if (ports === 'any') return true;
  return ports.some((entry) => {
    if (entry.name !== undefined)
      return destination.ports.some(
        (p) => p.name === entry.name && p.protocol === protocol && p.port === port,
      );
    return (
      entry.protocol === protocol &&
      (entry.port === undefined || (port >= entry.port && port <= (entry.endPort ?? entry.port)))
    );
  });
}

/** What a change to the model touched. */
export interface ModelChange {
  /** Classes whose isolation or rules may now differ. */
  readonly affectedClasses: readonly PodClass[];
  /** True when the classes themselves were recomputed (ids are then new). */
  readonly reclassified: boolean;
}

/** A peer as a rule names it, and the classes it matches (shared by every rule naming it). */
interface CachedPeer {
  readonly policyNamespace: string;
  readonly peer: NormalizedPeer;
  readonly members: Bitset;
}

interface IpBlockDefinition {
  readonly cidr: Cidr;
  readonly except: readonly Cidr[];
}

function ipBlockKey(block: IpBlockDefinition): string {
  const text = (c: Cidr): string => `${c.family}:${c.value.toString(16)}/${c.prefix}`;
  return [text(block.cidr), ...block.except.map(text).sort()].join(' except ');
}

function portsKey(ports: readonly ContainerPort[]): string {
  return ports
    .map((p) => `${p.name ?? ''}/${p.protocol}/${p.port}`)
    .sort()
    .join(',');
}

function portsMatch(
  ports: readonly NormalizedPort[] | 'any',
  port: number,
  protocol: Protocol,
  destination: PodClass,
): boolean {
  if (ports === 'any') return true;
  return ports.some((entry) => {
    if (entry.protocol !== protocol) return false;
    if (entry.name !== undefined) {
      return destination.ports.some(
        (p) => p.name === entry.name && p.protocol === protocol && p.port === port,
      );
    }
    if (entry.port === undefined) return true;
    return port >= entry.port && port <= (entry.endPort ?? entry.port);
  });
}

export class PolicyEngine {
  private readonly namespaceLabelsByName = new Map<string, Labels>();
  private readonly podsByKey = new Map<string, Pod>();
  private readonly manifests = new Map<string, NetworkPolicy>();
  private readonly errorsByPolicy = new Map<string, readonly PolicyError[]>();
  private readonly validPolicies = new Map<string, ValidPolicy>();
  private readonly ipBlocks = new Map<string, IpBlockDefinition>();
  private readonly clusterManifests = new Map<string, ClusterPolicyManifest>();
  private readonly validClusterPolicies = new Map<string, ValidClusterPolicy>();
  private compiledClusterPolicies: CompiledClusterPolicy[] = [];

  private classes: MutableClass[] = [];
  private classByKey = new Map<string, MutableClass>();
  private classByPod = new Map<string, MutableClass>();
  private classesByNamespace = new Map<string, MutableClass[]>();
  private compiledPolicies = new Map<string, CompiledPolicy>();
  private egressRulesByPeer: CompiledRule[][] = [];
  private egressRulesForAnyPeer = new Set<CompiledRule>();
  private egressUnisolatedCache: Bitset | undefined;

  private readonly selectorCache = new Map<string, CompiledSelector>();
  private namespaceMatchCache = new Map<string, Set<string>>();
  private peerCache = new Map<string, CachedPeer>();
  /** Classes whose pods all left: kept (ids stay stable) until they are a quarter of all. */
  private emptyClasses = 0;
  private populated: readonly PodClass[] | undefined;

  constructor(cluster: Cluster) {
    for (const namespace of cluster.namespaces)
      this.namespaceLabelsByName.set(namespace.name, namespace.labels);
    for (const pod of cluster.pods) this.podsByKey.set(podKey(pod), pod);
    for (const policy of cluster.policies) this.acceptPolicy(policy);
    for (const policy of cluster.clusterPolicies ?? []) this.acceptClusterPolicy(policy);
    this.rebuild();
  }

  /** Every invalid policy's errors; invalid policies take no part in any verdict. */
  get errors(): readonly PolicyError[] {
    return [...this.errorsByPolicy.values()].flat();
  }

  /** The classes that have pods (a class whose pods all left is kept, but not shown). */
  get podClasses(): readonly PodClass[] {
    this.populated ??= this.classes.filter((c) => c.pods.length > 0);
    return this.populated;
  }

  get policies(): readonly ValidPolicy[] {
    return [...this.validPolicies.values()];
  }

  /** The valid ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies. */
  get clusterPolicies(): readonly ValidClusterPolicy[] {
    return [...this.validClusterPolicies.values()];
  }

  /** The classes a cluster-scoped rule's peers match ('all': it fails closed as Deny all). */
  clusterRulePeers(ref: RuleRef): readonly PodClass[] | 'all' {
    const rule = this.compiledClusterPolicies
      .find((c) => c.valid.key === ref.policy)
      ?.rules[ref.direction].find((r) => r.rule.index === ref.index);
    if (!rule) throw new Error(`no rule ${ref.policy} ${ref.direction}[${ref.index}]`);
    return rule.peers === 'all' ? 'all' : [...rule.peers].map((id) => this.classAt(id));
  }

  /** Classes a cluster-scoped policy (by `Kind/name`) applies to. */
  subjectOf(policy: string): readonly PodClass[] {
    const compiled = this.compiledClusterPolicies.find((c) => c.valid.key === policy);
    return compiled ? [...compiled.subject].map((id) => this.classAt(id)) : [];
  }

  pod(ref: PodRef): Pod | undefined {
    return this.podsByKey.get(podKey(ref));
  }

  classOf(ref: PodRef): PodClass | undefined {
    return this.classByPod.get(podKey(ref));
  }

  /** Classes a policy selects (and so isolates for its policy types). */
  selectedBy(policy: string): readonly PodClass[] {
    const compiled = this.compiledPolicies.get(policy);
    return compiled ? [...compiled.selected].map((id) => this.classAt(id)) : [];
  }

  /** The classes a rule's peers match (its sources for ingress, destinations for egress). */
  rulePeers(ref: RuleRef): readonly PodClass[] | 'any' {
    const rule = this.compiledPolicies
      .get(ref.policy)
      ?.rules[ref.direction].find((r) => r.ref.index === ref.index);
    if (!rule) throw new Error(`no rule ${ref.policy} ${ref.direction}[${ref.index}]`);
    return rule.peers === 'any' ? 'any' : [...rule.peers].map((id) => this.classAt(id));
  }

  /** A namespace's labels, `kubernetes.io/metadata.name` included. */
  namespaceLabels(name: string): Labels {
    return this.namespaceLabelsByName.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  }

  verdict(connection: Connection): Verdict {
    const source = this.classOf(connection.from);
    const destination = this.classOf(connection.to);
    if (!source) throw new Error(`unknown pod ${podKey(connection.from)}`);
    if (!destination) throw new Error(`unknown pod ${podKey(connection.to)}`);
    return this.classVerdict(source, destination, connection.port, connection.protocol);
  }

  classVerdict(source: PodClass, destination: PodClass, port: number, protocol: Protocol): Verdict {
    const egress = this.side('egress', this.classAt(source.id), destination, port, protocol);
    const ingress = this.side('ingress', this.classAt(destination.id), source, port, protocol);
    return combineSides(egress, ingress, {
      source: source.hostNetwork,
      destination: destination.hostNetwork,
    });
  }

  /** The classes (as a bitset of ids) whose pods may open `port/protocol` on `destination`. */
  allowedSources(destination: PodClass, port: number, protocol: Protocol): Bitset {
    const target = this.classAt(destination.id);
    const size = this.classes.length;
    if (this.compiledClusterPolicies.length > 0) {
      // The tiers decide per pair; ambiguous pairs count as allowed (one possible answer).
      const allowed = new Bitset(size);
      for (const source of this.classes)
        if (this.classVerdict(source, target, port, protocol).allowed) allowed.add(source.id);
      return allowed;
    }
    let allowed = target.policies.ingress.length === 0 ? Bitset.full(size) : new Bitset(size);
    for (const policy of target.policies.ingress) {
      for (const rule of policy.rules.ingress) {
        if (!portsMatch(rule.ports, port, protocol, target)) continue;
        if (rule.peers === 'any') allowed = Bitset.full(size);
        else allowed.unionWith(rule.peers);
      }
    }
    const egressAllows = this.egressUnisolated().clone();
    const egressRules = [
      ...this.egressRulesForAnyPeer,
      ...(this.egressRulesByPeer[target.id] ?? []),
    ];
    for (const rule of egressRules) {
      if (portsMatch(rule.ports, port, protocol, target))
        egressAllows.unionWith(rule.policy.selected);
    }
    allowed.intersectWith(egressAllows);
    return allowed;
  }

  /** Adds or replaces a policy. An invalid one is recorded as errors and takes no part. */
  setPolicy(policy: NetworkPolicy): ModelChange {
    const key = `${policy.metadata.namespace}/${policy.metadata.name}`;
    const previous = this.compiledPolicies.get(key);
    const blocksBefore = this.ipBlocks.size;
    this.acceptPolicy(policy);
    if (this.ipBlocks.size !== blocksBefore) return this.rebuildAll();
    if (previous) this.unregister(previous);
    const valid = this.validPolicies.get(key);
    const compiled = valid ? this.compilePolicy(valid) : undefined;
    if (compiled) this.register(compiled);
    return this.changeOf(previous, compiled);
  }

  deletePolicy(namespace: string, name: string): ModelChange {
    const key = `${namespace}/${name}`;
    const previous = this.compiledPolicies.get(key);
    this.manifests.delete(key);
    this.errorsByPolicy.delete(key);
    this.validPolicies.delete(key);
    if (previous) this.unregister(previous);
    return this.changeOf(previous, undefined);
  }

  /**
   * Adds or replaces a ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy.
   * An invalid one is recorded as errors and takes no part.
   */
  setClusterPolicy(policy: ClusterPolicyManifest): ModelChange {
    const key = clusterPolicyKey(policy);
    const previous = this.compiledClusterPolicies.find((c) => c.valid.key === key);
    const blocksBefore = this.ipBlocks.size;
    this.acceptClusterPolicy(policy);
    if (this.ipBlocks.size !== blocksBefore) return this.rebuildAll();
    this.compileClusterPolicies();
    const next = this.compiledClusterPolicies.find((c) => c.valid.key === key);
    return this.clusterChangeOf(previous, next);
  }

  deleteClusterPolicy(kind: string, name: string): ModelChange {
    const key = clusterPolicyKey({ kind, metadata: { name } });
    const previous = this.compiledClusterPolicies.find((c) => c.valid.key === key);
    this.clusterManifests.delete(key);
    this.errorsByPolicy.delete(key);
    this.validClusterPolicies.delete(key);
    this.compileClusterPolicies();
    return this.clusterChangeOf(previous, undefined);
  }

  /**
   * Adds or replaces a pod. A pod that makes a new class (a rolling update's new
   * pod-template-hash) adds that class to every policy and peer that matches it, without
   * recomputing the others; a class whose pods all left stays, empty, until empty classes
   * are a quarter of all and one rebuild drops them.
   */
  setPod(pod: Pod): ModelChange {
    const key = podKey(pod);
    const previous = this.classByPod.get(key);
    this.podsByKey.set(key, pod);
    if (!this.namespaceLabelsByName.has(pod.namespace))
      this.setNamespace({ name: pod.namespace, labels: {} });
    const identity = this.classIdentity(pod);
    const existing = this.classByKey.get(identity.key);
    const created = existing ? undefined : this.createClass(identity, pod);
    const target = existing ?? (created as { podClass: MutableClass }).podClass;
    if (previous && previous !== target) this.leaveClass(previous, key);
    const index = target.pods.findIndex((p) => podKey(p) === key);
    if (index >= 0) target.pods[index] = pod;
    else {
      if (target.pods.length === 0 && existing) this.emptyClasses -= 1;
      target.pods.push(pod);
    }
    this.classByPod.set(key, target);
    this.populated = undefined;
    if (this.tooManyEmpty()) return this.rebuildAll();
    const affected = new Set<PodClass>([target, ...(previous ? [previous] : [])]);
    for (const c of created?.reaching ?? []) affected.add(c);
    return { affectedClasses: [...affected], reclassified: false };
  }

  deletePod(ref: PodRef): ModelChange {
    const key = podKey(ref);
    const previous = this.classByPod.get(key);
    this.podsByKey.delete(key);
    if (!previous) return { affectedClasses: [], reclassified: false };
    this.leaveClass(previous, key);
    this.populated = undefined;
    if (this.tooManyEmpty()) return this.rebuildAll();
    return { affectedClasses: [previous], reclassified: false };
  }

  /**
   * Sets a namespace's labels. They feed namespaceSelectors only, so each cached selector
   * is asked again about this one namespace, and only the peers whose answer changed
   * gain or lose this namespace's classes.
   */
  setNamespace(namespace: Namespace): ModelChange {
    const labels = { ...namespace.labels, [NAMESPACE_NAME_LABEL]: namespace.name };
    this.namespaceLabelsByName.set(namespace.name, labels);
    const changed = new Set<string>();
    for (const [selectorKey, names] of this.namespaceMatchCache) {
      const matches = this.selectorCache.get(selectorKey)?.matches(labels) ?? false;
      if (matches === names.has(namespace.name)) continue;
      if (matches) names.add(namespace.name);
      else names.delete(namespace.name);
      changed.add(selectorKey);
    }
    return this.reconsiderPeers(namespace.name, changed);
  }

  /** A namespace that still has pods keeps them, with no labels but its name. */
  deleteNamespace(name: string): ModelChange {
    if ([...this.podsByKey.values()].some((p) => p.namespace === name))
      return this.setNamespace({ name, labels: {} });
    this.namespaceLabelsByName.delete(name);
    const changed = new Set<string>();
    for (const [selectorKey, names] of this.namespaceMatchCache)
      if (names.delete(name)) changed.add(selectorKey);
    return this.reconsiderPeers(name, changed);
  }

  // ---- building -------------------------------------------------------------------

  private acceptPolicy(policy: NetworkPolicy): void {
    const result = validatePolicy(policy);
    const key = `${policy.metadata.namespace}/${policy.metadata.name}`;
    this.manifests.set(key, policy);
    if (!result.ok) {
      this.errorsByPolicy.set(key, result.errors);
      this.validPolicies.delete(key);
      return;
    }
    this.errorsByPolicy.delete(key);
    this.validPolicies.set(key, result.policy);
    for (const rule of result.policy.rules) {
      if (rule.peers === 'any') continue;
      for (const peer of rule.peers) {
        if (peer.kind === 'ipBlock') this.ipBlocks.set(ipBlockKey(peer), peer);
      }
    }
  }

  private acceptClusterPolicy(policy: ClusterPolicyManifest): void {
    const result = validateClusterPolicy(policy);
    const key = clusterPolicyKey(policy);
    this.clusterManifests.set(key, policy);
    if (!result.ok) {
      this.errorsByPolicy.set(key, result.errors);
      this.validClusterPolicies.delete(key);
      return;
    }
    this.errorsByPolicy.delete(key);
    this.validClusterPolicies.set(key, result.policy);
    for (const rule of result.policy.rules)
      for (const peer of rule.peers)
        if (peer.kind === 'networks')
          for (const cidr of peer.cidrs) {
            const block = { cidr, except: [] };
            this.ipBlocks.set(ipBlockKey(block), block);
          }
  }

  /** Compiles every valid cluster-scoped policy over the current classes. */
  private compileClusterPolicies(): void {
    this.compiledClusterPolicies = [...this.validClusterPolicies.values()].map((valid) => ({
      valid,
      subject: new Bitset(this.classes.length),
      rules: {
        ingress: valid.rules
          .filter((r) => r.direction === 'ingress')
          .map((rule) => ({ rule, peers: this.newRulePeers(rule) })),
        egress: valid.rules
          .filter((r) => r.direction === 'egress')
          .map((rule) => ({ rule, peers: this.newRulePeers(rule) })),
      },
    }));
    this.compiledClusterPolicies.sort(compareClusterPolicies);
    for (const podClass of this.classes) this.placeInClusterPolicies(podClass);
  }

  private newRulePeers(rule: ClusterRule): Bitset | 'all' {
    if (rule.peers.some((p) => p.kind === 'all')) return 'all';
    return new Bitset(this.classes.length);
  }

  /** Whether a cluster-scoped peer matches a class. */
  private clusterPeerMatches(peer: ClusterRule['peers'][number], podClass: MutableClass): boolean {
    switch (peer.kind) {
      case 'all':
        return true;
      case 'namespaces':
      case 'pods':
        return (
          !podClass.hostNetwork &&
          this.namespacesMatching(peer.namespaceSelector).has(podClass.namespace) &&
          (peer.kind === 'namespaces' || this.selector(peer.podSelector).matches(podClass.labels))
        );
      case 'networks':
        return peer.cidrs.some((cidr) => podClass.ipBlocks.has(ipBlockKey({ cidr, except: [] })));
      default:
        return false;
    }
  }

  /**
   * Puts a class into (or out of) every compiled cluster-scoped policy's subject and rule
   * peers, and recomputes the class's own list of such policies.
   */
  private placeInClusterPolicies(podClass: MutableClass): void {
    const id = podClass.id;
    podClass.clusterPolicies = { ingress: [], egress: [] };
    for (const compiled of this.compiledClusterPolicies) {
      const { namespaceSelector, podSelector } = compiled.valid.subject;
      const selected =
        !podClass.hostNetwork &&
        this.namespacesMatching(namespaceSelector).has(podClass.namespace) &&
        (podSelector === undefined || this.selector(podSelector).matches(podClass.labels));
      if (selected) compiled.subject.add(id);
      else compiled.subject.delete(id);
      for (const direction of ['ingress', 'egress'] as const) {
        for (const { rule, peers } of compiled.rules[direction]) {
          if (peers === 'all') continue;
          if (rule.peers.some((peer) => this.clusterPeerMatches(peer, podClass))) peers.add(id);
          else peers.delete(id);
        }
        if (selected && compiled.rules[direction].length > 0)
          podClass.clusterPolicies[direction].push(compiled);
      }
    }
  }

  /**
   * After a namespace's labels changed: its classes are placed again in every
   * cluster-scoped policy. Which subjects now see them differently is not tracked per
   * selector, so every subject of every such policy counts as affected.
   */
  private replaceInClusterPolicies(members: readonly MutableClass[]): Set<MutableClass> {
    const affected = new Set<MutableClass>();
    if (this.compiledClusterPolicies.length === 0) return affected;
    for (const podClass of members) this.placeInClusterPolicies(podClass);
    for (const compiled of this.compiledClusterPolicies)
      for (const subjectId of compiled.subject) affected.add(this.classAt(subjectId));
    return affected;
  }

  private clusterChangeOf(
    previous: CompiledClusterPolicy | undefined,
    next: CompiledClusterPolicy | undefined,
  ): ModelChange {
    const ids = new Set([...(previous?.subject ?? []), ...(next?.subject ?? [])]);
    return { affectedClasses: [...ids].map((id) => this.classAt(id)), reclassified: false };
  }

  /**
   * A new class, joined to every policy that selects it, every cached peer that matches
   * it and every rule naming such a peer. Returns it with the classes whose rules now
   * reach it (they are affected: their verdicts toward it are new).
   */
  private createClass(
    identity: { key: string; ipBlocks: string[] },
    pod: Pod,
  ): { podClass: MutableClass; reaching: MutableClass[] } {
    const podClass: MutableClass = {
      id: this.classes.length,
      key: identity.key,
      namespace: pod.namespace,
      labels: pod.labels,
      hostNetwork: pod.hostNetwork,
      ports: pod.ports,
      pods: [],
      ipBlocks: new Set(identity.ipBlocks),
      policies: { ingress: [], egress: [] },
      clusterPolicies: { ingress: [], egress: [] },
    };
    const id = podClass.id;
    this.classes.push(podClass);
    this.classByKey.set(identity.key, podClass);
    const siblings = this.classesByNamespace.get(pod.namespace);
    if (siblings) siblings.push(podClass);
    else this.classesByNamespace.set(pod.namespace, [podClass]);
    this.egressRulesByPeer[id] = [];
    for (const cached of this.peerCache.values())
      if (this.peerMatches(cached, podClass)) cached.members.add(id);
    const reaching = new Set<MutableClass>();
    for (const policy of this.compiledPolicies.values()) {
      this.joinIfSelected(policy, podClass);
      if (this.joinRules(policy, podClass))
        for (const selected of policy.selected) reaching.add(this.classAt(selected));
    }
    this.placeInClusterPolicies(podClass);
    for (const compiled of this.compiledClusterPolicies) {
      const reaches = [...compiled.rules.ingress, ...compiled.rules.egress].some(
        (r) => r.peers === 'all' || r.peers.has(id),
      );
      if (reaches) for (const selected of compiled.subject) reaching.add(this.classAt(selected));
    }
    this.egressUnisolatedCache = undefined;
    return { podClass, reaching: [...reaching] };
  }

  private joinIfSelected(policy: CompiledPolicy, podClass: MutableClass): void {
    const selects =
      policy.valid.namespace === podClass.namespace &&
      !podClass.hostNetwork &&
      this.selector(policy.valid.podSelector).matches(podClass.labels);
    if (!selects) return;
    policy.selected.add(podClass.id);
    if (policy.valid.isolates.ingress) podClass.policies.ingress.push(policy);
    if (policy.valid.isolates.egress) podClass.policies.egress.push(policy);
  }

  /** Adds a new class to the rules whose peers match it; true when any does. */
  private joinRules(policy: CompiledPolicy, podClass: MutableClass): boolean {
    const id = podClass.id;
    let joined = false;
    for (const rule of [...policy.rules.ingress, ...policy.rules.egress]) {
      if (rule.peers === 'any') continue;
      if (rule.peerSets.length !== 1 && rule.peerSets.some((set) => set.has(id)))
        rule.peers.add(id);
      if (!rule.peers.has(id)) continue;
      joined = true;
      if (rule.ref.direction === 'egress') this.egressRulesByPeer[id]?.push(rule);
    }
    return joined;
  }

  /** A pod leaves its class; the class stays, maybe empty, with its id. */
  private leaveClass(podClass: MutableClass, key: string): void {
    const index = podClass.pods.findIndex((p) => podKey(p) === key);
    if (index < 0) return;
    podClass.pods.splice(index, 1);
    this.classByPod.delete(key);
    if (podClass.pods.length === 0) this.emptyClasses += 1;
  }

  private tooManyEmpty(): boolean {
    return this.emptyClasses > Math.max(64, this.classes.length / 4);
  }

  /** Whether a cached peer matches a class (as podPeerClasses and ipBlockClasses decide). */
  private peerMatches(cached: CachedPeer, podClass: MutableClass): boolean {
    const { peer } = cached;
    if (peer.kind === 'ipBlock') return podClass.ipBlocks.has(ipBlockKey(peer));
    if (podClass.hostNetwork) return false;
    const inNamespace = peer.namespaceSelector
      ? this.namespacesMatching(peer.namespaceSelector).has(podClass.namespace)
      : podClass.namespace === cached.policyNamespace;
    return (
      inNamespace && (!peer.podSelector || this.selector(peer.podSelector).matches(podClass.labels))
    );
  }

  /**
   * After a namespace's labels changed the answer of some namespaceSelectors: the peers
   * using them gain or lose that namespace's classes, and so do the rules naming them.
   */
  private reconsiderPeers(namespace: string, changedSelectors: ReadonlySet<string>): ModelChange {
    this.populated = undefined;
    if (changedSelectors.size === 0) return { affectedClasses: [], reclassified: false };
    const members = this.classesByNamespace.get(namespace) ?? [];
    const clusterAffected = this.replaceInClusterPolicies(members);
    const touched = new Set<Bitset>();
    for (const cached of this.peerCache.values()) {
      const selector = cached.peer.kind === 'pods' ? cached.peer.namespaceSelector : undefined;
      if (!selector || !changedSelectors.has(this.selector(selector).key)) continue;
      touched.add(cached.members);
      for (const podClass of members) {
        if (this.peerMatches(cached, podClass)) cached.members.add(podClass.id);
        else cached.members.delete(podClass.id);
      }
    }
    const affected = new Set<MutableClass>([...members, ...clusterAffected]);
    for (const policy of this.compiledPolicies.values()) {
      if (!this.refreshUnions(policy, members, touched)) continue;
      for (const selected of policy.selected) affected.add(this.classAt(selected));
    }
    for (const podClass of members)
      this.egressRulesByPeer[podClass.id] = this.egressRulesTo(podClass);
    return { affectedClasses: [...affected], reclassified: false };
  }

  /**
   * Brings a policy's multi-peer rules up to date for some classes after the peer sets in
   * `touched` changed; true when any rule of the policy names a touched peer.
   */
  private refreshUnions(
    policy: CompiledPolicy,
    classes: readonly MutableClass[],
    touched: ReadonlySet<Bitset>,
  ): boolean {
    let named = false;
    for (const rule of [...policy.rules.ingress, ...policy.rules.egress]) {
      if (rule.peers === 'any' || !rule.peerSets.some((set) => touched.has(set))) continue;
      named = true;
      if (rule.peerSets.length === 1) continue;
      for (const podClass of classes) {
        if (rule.peerSets.some((set) => set.has(podClass.id))) rule.peers.add(podClass.id);
        else rule.peers.delete(podClass.id);
      }
    }
    return named;
  }

  private egressRulesTo(podClass: MutableClass): CompiledRule[] {
    const rules: CompiledRule[] = [];
    for (const policy of this.compiledPolicies.values())
      for (const rule of policy.rules.egress)
        if (rule.peers !== 'any' && rule.peers.has(podClass.id)) rules.push(rule);
    return rules;
  }

  private rebuildAll(): ModelChange {
    this.rebuild();
    return { affectedClasses: this.classes, reclassified: true };
  }

  private rebuild(): void {
    for (const pod of this.podsByKey.values()) {
      if (!this.namespaceLabelsByName.has(pod.namespace))
        this.namespaceLabelsByName.set(pod.namespace, {});
    }
    for (const [name, labels] of this.namespaceLabelsByName) {
      this.namespaceLabelsByName.set(name, { ...labels, [NAMESPACE_NAME_LABEL]: name });
    }
    this.classes = [];
    this.emptyClasses = 0;
    this.populated = undefined;
    this.classByKey = new Map();
    this.classByPod = new Map();
    this.classesByNamespace = new Map();
    for (const pod of this.podsByKey.values()) this.addToClass(pod);
    this.compiledPolicies = new Map();
    this.egressRulesByPeer = this.classes.map(() => []);
    this.egressRulesForAnyPeer = new Set();
    this.egressUnisolatedCache = undefined;
    this.namespaceMatchCache = new Map();
    this.peerCache = new Map();
    for (const valid of this.validPolicies.values()) this.register(this.compilePolicy(valid));
    this.compileClusterPolicies();
  }

  private classKeyOf(pod: Pod): string {
    return this.classIdentity(pod).key;
  }

  private classIdentity(pod: Pod): { key: string; ipBlocks: string[] } {
    const address = pod.ip === undefined ? undefined : parseIp(pod.ip);
    const blocks: string[] = [];
    if (address) {
      for (const [key, block] of this.ipBlocks) {
        if (
          cidrContains(block.cidr, address) &&
          !block.except.some((c) => cidrContains(c, address))
        ) {
          blocks.push(key);
        }
      }
    }
    const labels = Object.keys(pod.labels)
      .sort()
      .map((k) => [k, pod.labels[k]]);
    const key = JSON.stringify([
      pod.namespace,
      labels,
      pod.hostNetwork,
      portsKey(pod.ports),
      blocks,
    ]);
    return { key, ipBlocks: blocks };
  }

  private addToClass(pod: Pod): void {
    const { key, ipBlocks } = this.classIdentity(pod);
    let podClass = this.classByKey.get(key);
    if (!podClass) {
      podClass = {
        id: this.classes.length,
        key,
        namespace: pod.namespace,
        labels: pod.labels,
        hostNetwork: pod.hostNetwork,
        ports: pod.ports,
        pods: [],
        ipBlocks: new Set(ipBlocks),
        policies: { ingress: [], egress: [] },
        clusterPolicies: { ingress: [], egress: [] },
      };
      this.classes.push(podClass);
      this.classByKey.set(key, podClass);
      const siblings = this.classesByNamespace.get(pod.namespace);
      if (siblings) siblings.push(podClass);
      else this.classesByNamespace.set(pod.namespace, [podClass]);
    }
    podClass.pods.push(pod);
    this.classByPod.set(podKey(pod), podClass);
  }

  private selector(selector: LabelSelector): CompiledSelector {
    const compiled = compileSelector(selector);
    const cached = this.selectorCache.get(compiled.key);
    if (cached) return cached;
    this.selectorCache.set(compiled.key, compiled);
    return compiled;
  }

  private namespacesMatching(selector: LabelSelector): ReadonlySet<string> {
    const compiled = this.selector(selector);
    let names = this.namespaceMatchCache.get(compiled.key);
    if (!names) {
      names = new Set(
        [...this.namespaceLabelsByName]
          .filter(([, labels]) => compiled.matches(labels))
          .map(([n]) => n),
      );
      this.namespaceMatchCache.set(compiled.key, names);
    }
    return names;
  }

  private peerClasses(policyNamespace: string, peer: NormalizedPeer): Bitset {
    const cacheKey =
      peer.kind === 'ipBlock' ? `ip ${ipBlockKey(peer)}` : this.podPeerKey(policyNamespace, peer);
    let cached = this.peerCache.get(cacheKey);
    if (!cached) {
      const members =
        peer.kind === 'ipBlock'
          ? this.ipBlockClasses(peer)
          : this.podPeerClasses(policyNamespace, peer);
      cached = { policyNamespace, peer, members };
      this.peerCache.set(cacheKey, cached);
    }
    return cached.members;
  }

  private podPeerKey(policyNamespace: string, peer: NormalizedPeer & { kind: 'pods' }): string {
    const namespaces = peer.namespaceSelector
      ? this.selector(peer.namespaceSelector).key
      : `= ${policyNamespace}`;
    const pods = peer.podSelector ? this.selector(peer.podSelector).key : '*';
    return `${namespaces} | ${pods}`;
  }

  private ipBlockClasses(block: IpBlockDefinition): Bitset {
    const key = ipBlockKey(block);
    const members = new Bitset(this.classes.length);
    for (const podClass of this.classes) if (podClass.ipBlocks.has(key)) members.add(podClass.id);
    return members;
  }

  private podPeerClasses(policyNamespace: string, peer: NormalizedPeer & { kind: 'pods' }): Bitset {
    const members = new Bitset(this.classes.length);
    const namespaces = peer.namespaceSelector
      ? this.namespacesMatching(peer.namespaceSelector)
      : [policyNamespace];
    const podSelector = peer.podSelector ? this.selector(peer.podSelector) : undefined;
    for (const namespace of namespaces) {
      for (const podClass of this.classesByNamespace.get(namespace) ?? []) {
        if (!podClass.hostNetwork && (!podSelector || podSelector.matches(podClass.labels))) {
          members.add(podClass.id);
        }
      }
    }
    return members;
  }

  private compilePolicy(valid: ValidPolicy): CompiledPolicy {
    const selected = new Bitset(this.classes.length);
    const podSelector = this.selector(valid.podSelector);
    for (const podClass of this.classesByNamespace.get(valid.namespace) ?? []) {
      if (!podClass.hostNetwork && podSelector.matches(podClass.labels)) selected.add(podClass.id);
    }
    const compiled: CompiledPolicy = { valid, selected, rules: { ingress: [], egress: [] } };
    for (const rule of valid.rules) {
      let peers: Bitset | 'any' = 'any';
      let sets: Bitset[] = [];
      if (rule.peers !== 'any') {
        sets = rule.peers.map((peer) => this.peerClasses(valid.namespace, peer));
        peers = sets.length === 1 && sets[0] ? sets[0] : new Bitset(this.classes.length);
        if (sets.length !== 1) for (const set of sets) peers.unionWith(set);
      }
      compiled.rules[rule.direction].push({
        ref: { policy: valid.key, direction: rule.direction, index: rule.index },
        peers,
        peerSets: sets,
        ports: rule.ports,
        policy: compiled,
      });
    }
    return compiled;
  }

  private register(policy: CompiledPolicy): void {
    this.compiledPolicies.set(policy.valid.key, policy);
    for (const id of policy.selected) {
      const podClass = this.classAt(id);
      if (policy.valid.isolates.ingress) podClass.policies.ingress.push(policy);
      if (policy.valid.isolates.egress) podClass.policies.egress.push(policy);
    }
    for (const rule of policy.rules.egress) {
      if (rule.peers === 'any') this.egressRulesForAnyPeer.add(rule);
      else for (const id of rule.peers) this.egressRulesByPeer[id]?.push(rule);
    }
    this.egressUnisolatedCache = undefined;
  }

  private unregister(policy: CompiledPolicy): void {
    this.compiledPolicies.delete(policy.valid.key);
    for (const id of policy.selected) {
      const podClass = this.classAt(id);
      podClass.policies.ingress = podClass.policies.ingress.filter((p) => p !== policy);
      podClass.policies.egress = podClass.policies.egress.filter((p) => p !== policy);
    }
    for (const rule of policy.rules.egress) {
      if (rule.peers === 'any') this.egressRulesForAnyPeer.delete(rule);
      else {
        for (const id of rule.peers) {
          this.egressRulesByPeer[id] = (this.egressRulesByPeer[id] ?? []).filter((r) => r !== rule);
        }
      }
    }
    this.egressUnisolatedCache = undefined;
  }

  private changeOf(
    previous: CompiledPolicy | undefined,
    next: CompiledPolicy | undefined,
  ): ModelChange {
    const ids = new Set([...(previous?.selected ?? []), ...(next?.selected ?? [])]);
    return { affectedClasses: [...ids].map((id) => this.classAt(id)), reclassified: false };
  }

  // ---- answering ------------------------------------------------------------------

  private classAt(id: number): MutableClass {
    const podClass = this.classes[id];
    if (!podClass) throw new Error(`no pod class ${id}`);
    return podClass;
  }

  private egressUnisolated(): Bitset {
    if (!this.egressUnisolatedCache) {
      const set = new Bitset(this.classes.length);
      for (const podClass of this.classes)
        if (podClass.policies.egress.length === 0) set.add(podClass.id);
      this.egressUnisolatedCache = set;
    }
    return this.egressUnisolatedCache;
  }

  private side(
    direction: Direction,
    subject: MutableClass,
    other: PodClass,
    port: number,
    protocol: Protocol,
  ): SideExplanation {
    const destination = direction === 'ingress' ? subject : other;
    const policies = subject.policies[direction];
    const allowedBy: RuleRef[] = [];
    for (const policy of policies) {
      for (const rule of policy.rules[direction]) {
        const peerMatches = rule.peers === 'any' || rule.peers.has(other.id);
        if (peerMatches && portsMatch(rule.ports, port, protocol, destination))
          allowedBy.push(rule.ref);
      }
    }
    const networkPolicies: SideExplanation = {
      isolated: policies.length > 0,
      policies: policies.map((p) => p.valid.key).sort(),
      allowedBy: allowedBy.sort(compareRuleRefs),
      allowed: policies.length === 0 || allowedBy.length > 0,
    };
    const tiered = subject.clusterPolicies[direction];
    if (tiered.length === 0) return networkPolicies;
    return this.throughTiers(
      { direction, tiered, other, destination, port, protocol },
      networkPolicies,
    );
  }

  /**
   * A side through the tiers (`tiered` is sorted by tier, priority and key): Admin, the
   * NetworkPolicies (final for a class they isolate), Baseline, default allow. Every
   * policy of a priority whose first matching rule applies is a way an implementation may
   * go; the first explains, and the side is ambiguous when the ways disagree.
   */
  private throughTiers(
    question: {
      readonly direction: Direction;
      /** The cluster-scoped policies with rules for the subject, by tier, priority, key. */
      readonly tiered: readonly CompiledClusterPolicy[];
      readonly other: PodClass;
      readonly destination: PodClass;
      readonly port: number;
      readonly protocol: Protocol;
    },
    networkPolicies: SideExplanation,
  ): SideExplanation {
    const { direction, tiered, other, destination, port, protocol } = question;
    const overlaps: string[] = [];
    const decide = (compiled: CompiledClusterPolicy): TierRuleRef | undefined => {
      const hit = compiled.rules[direction].find(
        ({ rule, peers }) =>
          (peers === 'all' || peers.has(other.id)) &&
          clusterPortMatches(rule.ports, port, protocol, destination),
      );
      if (!hit) return undefined;
      const { valid } = compiled;
      return {
        tier: valid.tier,
        policy: valid.key,
        priority: valid.priority,
        direction,
        index: hit.rule.index,
        ...(hit.rule.name === undefined ? {} : { name: hit.rule.name }),
        action: hit.rule.action,
        ...(hit.rule.failClosed ? { failClosed: true as const } : {}),
      };
    };
    const next = (tier: Tier, passedBy: readonly TierRuleRef[]): TierPath[] => {
      if (tier === 'Baseline') return [{ allowed: true, tier: 'default', passedBy }];
      if (networkPolicies.isolated)
        return [{ allowed: networkPolicies.allowedBy.length > 0, tier: 'NetworkPolicy', passedBy }];
      return inTier('Baseline', passedBy);
    };
    const inTier = (tier: Tier, passedBy: readonly TierRuleRef[]): TierPath[] => {
      let at = tiered.findIndex((c) => c.valid.tier === tier);
      while (at >= 0 && at < tiered.length && tiered[at]?.valid.tier === tier) {
        const priority = (tiered[at] as CompiledClusterPolicy).valid.priority;
        const decisions: TierRuleRef[] = [];
        for (; at < tiered.length; at += 1) {
          const compiled = tiered[at] as CompiledClusterPolicy;
          if (compiled.valid.tier !== tier || compiled.valid.priority !== priority) break;
          const decision = decide(compiled);
          if (decision) decisions.push(decision);
        }
        if (decisions.length === 0) continue;
        if (decisions.some((d) => d.action !== decisions[0]?.action)) {
          const note = `${tier} tier priority ${priority}: ${decisions.map((d) => `${d.policy} ${d.action}s`).join(', ')}`;
          if (!overlaps.includes(note)) overlaps.push(note);
        }
        return decisions.flatMap((rule): TierPath[] =>
          rule.action === 'Pass'
            ? next(tier, [...passedBy, rule])
            : [{ allowed: rule.action === 'Accept', tier, decidedBy: rule, passedBy }],
        );
      }
      return next(tier, passedBy);
    };
    const paths = inTier('Admin', []);
    const chosen = paths[0] as TierPath;
    const ambiguous = paths.some((p) => p.allowed !== chosen.allowed);
    return {
      ...networkPolicies,
      allowed: chosen.allowed,
      tier: chosen.tier,
      ...(chosen.decidedBy ? { decidedBy: chosen.decidedBy } : {}),
      ...(chosen.passedBy.length > 0 ? { passedBy: chosen.passedBy } : {}),
      ...(ambiguous ? { ambiguous: overlaps.join('; ') } : {}),
    };
  }
}
