import {
  type CellBlock as CellBlockMessage,
  type CellMismatch,
  type PodEndpoint,
  CELL_BLOCK_SUBJECT,
  CellBlockContract,
  MATRIX_COVERAGE_NOT_GENERATED,
  MATRIX_COVERAGE_SUBJECT,
  MatrixCoverageContract,
  POLICY_INVENTORY_SUBJECT,
  PolicyInventoryContract,
  StreamFullError,
  TEST_CASE_SUBJECT,
  TestCaseContract,
} from '#lumen/contracts';
import {
  PolicyEngine,
  formatPolicyError,
  podKey,
  type Cluster,
  type PodClass,
  type ServiceFrontend,
  clusterInFamily,
  familiesOf,
  type IpFamily,
} from '#lumen/policy';
import {
  cellCase,
  planCases,
  type BlockRotation,
  type MatrixCoverage,
  type Plan,
  type PlannedCase,
  type UnmodelledPolicy,
  unmodelledName,
} from './plan.js';
import { diffPlans, testCaseMessage, type PublishedCase } from './publish.js';
import { policyInventory } from './inventory.js';
import type { ClusterView, PlannerPorts } from './ports.js';
import { caseIdOf } from './case-id.js';
import { PLANNER_DEFAULTS, probeBudget, type PlannerSettings } from './settings.js';

export interface PlanPublished {
  readonly generation: number;
  readonly trigger: 'change' | 'sweep';
  readonly published: number;
  /** Cell blocks published (ADR 0013), and the rotation cells they hold. */
  readonly blocks: number;
  readonly blockCells: number;
  readonly removed: number;
  readonly total: number;
  /** The class matrix and how much of it this plan probes. */
  readonly coverage: MatrixCoverage;
}

/** Generations count seconds since this instant, so they grow across planner restarts and fit 32 bits. */
const GENERATION_EPOCH = Date.UTC(2026, 0, 1);
const PUBLISH_CONCURRENCY = 256;
/** Cell blocks are up to 200 cells each: fewer at once than cases. */
const BLOCK_PUBLISH_CONCURRENCY = 16;
/**
 * Pods named per destination class in a block: one, another each sweep. A block lists up
 * to 200 destinations, and their pods are most of its bytes.
 */
const BLOCK_DESTINATION_PODS = 1;
/** How long a new synthetic pod may take to run before the plan stops waiting for it. */
const SYNTHETIC_START_TIMEOUT_MS = 60_000;

/**
 * The planner's domain: keeps the policy model current from cluster views (incrementally
 * once built), plans the cases, and publishes what changed, or everything on a sweep.
 */
export class PlannerCore {
  private engine: PolicyEngine | undefined;
  private unmodelled: readonly UnmodelledPolicy[] = [];
  private reportedUnmodelled = 0;
  private published: ReadonlyMap<string, PublishedCase> = new Map();
  private inventoryPublished: string | undefined;
  private optedOut: string | undefined;
  private optOutChanged = false;
  private endpointsByPod = new Map<string, PodEndpoint>();
  private services: readonly ServiceFrontend[] = [];
  /** The cluster, kept when its pods have addresses of two families (else undefined). */
  private dualStack: Cluster | undefined;
  private generation = 0;
  private latest: Plan | undefined;
  private reportedErrors = new Set<string>();
  private readonly publishedIn = new Map<string, number>();
  private syntheticSince: number | undefined;
  /** The wanted count last warned about, so a standing excess is logged once. */
  private syntheticCapWarned: number | undefined;
  /** Where the current sweep's rotation began, and where it stopped. */
  private rotationStart: string | undefined;
  private rotationNext: string | undefined;

  constructor(
    private readonly ports: PlannerPorts,
    private readonly settings: PlannerSettings,
  ) {}

  private get clock(): PlannerPorts['clock'] {
    return this.ports.clock;
  }

  private get log(): PlannerPorts['log'] {
    return this.ports.log;
  }

  /** The generation in which a case was last published. */
  publishedGeneration(caseId: string): number | undefined {
    return this.publishedIn.get(caseId);
  }

  /** Synthetic sources were just created and the plan does not use them yet. */
  get awaitingSyntheticSources(): boolean {
    return (
      this.syntheticSince !== undefined &&
      this.clock.now().getTime() - this.syntheticSince < SYNTHETIC_START_TIMEOUT_MS
    );
  }

  /** Removes every synthetic source pod (on shutdown). */
  async removeSyntheticSources(): Promise<void> {
    if (this.ports.synthetic && this.settings.syntheticNamespace)
      await this.ports.synthetic.removeAll(this.settings.syntheticNamespace);
  }

  /** The newest plan, with the cases the planner wanted but could not build. */
  get plan(): Plan | undefined {
    return this.latest;
  }

  /** The policy model the newest plan came from. */
  get model(): PolicyEngine | undefined {
    return this.engine;
  }

  async update(view: ClusterView): Promise<PlanPublished> {
    this.apply(view);
    return this.publish('change');
  }

  /** Publishes every case again; undefined before the first cluster view. */
  async sweep(): Promise<PlanPublished | undefined> {
    return this.engine ? this.publish('sweep') : undefined;
  }

  private apply(input: ClusterView): void {
    const view = this.withoutOptedOut(input);
    this.endpointsByPod = new Map(
      view.pods.flatMap((p): [string, PodEndpoint][] =>
        p.running && p.ip && p.node && !p.hostNetwork
          ? [
              [
                podKey(p),
                { namespace: p.namespace, name: p.name, uid: p.uid, ip: p.ip, node: p.node },
              ],
            ]
          : [],
      ),
    );
    this.unmodelled = view.unmodelled ?? [];
    this.services = view.cluster.services ?? [];
    this.dualStack = familiesOf(view.cluster).length > 1 ? view.cluster : undefined;
    if (this.unmodelled.length > this.reportedUnmodelled) {
      this.log.warn(
        'policies of kinds Lumen does not model: the cases they may affect are not judged',
        {
          objects: this.unmodelled.map(unmodelledName),
        },
      );
    }
    this.reportedUnmodelled = this.unmodelled.length;
    if (!this.engine || this.optOutChanged) {
      this.engine = new PolicyEngine(view.cluster);
      this.optOutChanged = false;
    } else {
      for (const change of view.changes) applyChange(this.engine, view.cluster, change);
    }
    for (const error of this.engine.errors) {
      const text = formatPolicyError(error);
      if (this.reportedErrors.has(text)) continue;
      this.reportedErrors.add(text);
      this.log.warn('policy rejected; it is left out of the model', { finding: text });
    }
  }

  /**
   * The view without the pods of opted-out namespaces (policies and namespaces stay: they
   * still select others). When the opted-out set changes, the model is rebuilt.
   */
  private withoutOptedOut(view: ClusterView): ClusterView {
    const label = this.settings.optOutLabel;
    if (!label) return view;
    const out = new Set(
      view.cluster.namespaces.filter((n) => n.labels[label] === 'true').map((n) => n.name),
    );
    const key = [...out].sort().join(',');
    if (key !== this.optedOut) {
      if (this.optedOut !== undefined) this.optOutChanged = true;
      this.optedOut = key;
      if (out.size > 0) this.log.info('namespaces opted out', { namespaces: [...out] });
    }
    if (out.size === 0) return view;
    return {
      ...view,
      cluster: { ...view.cluster, pods: view.cluster.pods.filter((p) => !out.has(p.namespace)) },
      pods: view.pods.filter((p) => !out.has(p.namespace)),
      changes: view.changes.map((c) =>
        c.kind === 'Pod' && out.has(c.key.split('/')[0] ?? '') ? { ...c, type: 'delete' } : c,
      ),
    };
  }

  private nextGeneration(now: Date): number {
    this.generation = Math.max(
      this.generation + 1,
      Math.floor((now.getTime() - GENERATION_EPOCH) / 1000),
    );
    return this.generation;
  }

  private async publish(trigger: 'change' | 'sweep'): Promise<PlanPublished> {
    const engine = this.engine as PolicyEngine;
    const now = this.clock.now();
    // A sweep moves the rotation on; a change re-plans the sweep's own cells.
    const rotationCursor = trigger === 'sweep' ? this.rotationNext : this.rotationStart;
    const budget = this.probeBudget();
    const plan = planCases(engine, {
      probeBudget: budget,
      ...(rotationCursor === undefined ? {} : { rotationCursor }),
      ...(this.settings.syntheticNamespace
        ? { syntheticNamespace: this.settings.syntheticNamespace }
        : {}),
      unmodelled: this.unmodelled,
      services: this.services,
      families: this.familyEngines(),
      blocksAbove: this.settings.rotationBlocksAbove ?? PLANNER_DEFAULTS.rotationBlocksAbove,
    });
    if (trigger === 'sweep') this.rotationStart = rotationCursor;
    this.rotationNext = plan.coverage.rotationCursor;
    const endpoints = (c: PodClass): PodEndpoint[] => this.endpointsOf(c);
    const diff = diffPlans(this.published, plan.cases, endpoints, now);
    const toSend = trigger === 'sweep' ? plan.cases : diff.changed;
    const generation = this.nextGeneration(now);
    // The obligations first: a full cells stream must not hold them up (ADR 0019).
    for (let i = 0; i < toSend.length; i += PUBLISH_CONCURRENCY) {
      await Promise.all(
        toSend
          .slice(i, i + PUBLISH_CONCURRENCY)
          .map((planned) =>
            this.publishCase(planned, endpoints, generation, diff.state.get(planned.caseId)),
          ),
      );
    }
    // Blocks go out with sweeps (and the first plan): a change re-plans obligations only.
    const sendBlocks = trigger === 'sweep' || this.latest === undefined;
    const blocks =
      sendBlocks && plan.rotationBlocks
        ? await this.publishBlocksUnlessFull(plan.rotationBlocks, endpoints, generation).then(
            (sent) => {
              // Refused: the rotation stays where it was, and these cells come round again.
              if (sent.refused) this.rotationNext = rotationCursor;
              return sent;
            },
          )
        : { blocks: 0, cells: 0 };
    this.published = diff.state;
    this.latest = plan;
    for (const planned of toSend) this.publishedIn.set(planned.caseId, generation);
    for (const id of diff.removed) this.publishedIn.delete(id);
    await this.reconcileSynthetic(plan);
    await this.publishInventory(engine, generation, trigger);
    await this.publishCoverage(plan, generation, budget);
    const result = {
      generation,
      trigger,
      published: toSend.length,
      blocks: blocks.blocks,
      blockCells: blocks.cells,
      removed: diff.removed.length,
      total: plan.cases.length,
      coverage: plan.coverage,
    };
    this.ports.metrics.planned(plan.cases.length, plan.coverage);
    this.ports.metrics.notJudged(plan.notJudged, plan.notJudgedCases);
    this.log.info('plan published', {
      ...result,
      coverage: undefined,
      cells: plan.coverage.cells,
      sweepsPerRotation: plan.coverage.sweepsPerRotation,
      notGenerated: plan.notGenerated.length,
    });
    return result;
  }

  /** The class matrix and what this plan probes of it, for the reporter's coverage. */
  private async publishCoverage(plan: Plan, generation: number, budget: number): Promise<void> {
    const { coverage } = plan;
    await this.ports.bus.publish(
      MATRIX_COVERAGE_SUBJECT,
      MatrixCoverageContract,
      {
        generation,
        mode: this.settings.coverage,
        cells: coverage.cells,
        obligations: coverage.obligations,
        obligationCells: coverage.obligationCells,
        rotated: coverage.rotated,
        probeBudget: Number.isFinite(budget) ? budget : null,
        sweepsPerRotation: Number.isFinite(coverage.sweepsPerRotation)
          ? coverage.sweepsPerRotation
          : null,
        ...(coverage.families ? { families: coverage.families.map((f) => ({ ...f })) } : {}),
        notGeneratedCount: plan.notGenerated.length,
        notGenerated: plan.notGenerated.slice(0, MATRIX_COVERAGE_NOT_GENERATED).map((n) => ({
          reason: n.reason,
          ...(n.rule ? { rule: n.rule } : {}),
          why: n.why.slice(0, 500),
        })),
        notJudged: plan.notJudged
          .slice(0, MATRIX_COVERAGE_NOT_GENERATED)
          .map(({ policy, cases }) => ({ ...policy, cases })),
      },
      { msgId: `coverage/${generation}` },
    );
  }

  /** This plan's probes: every cell, the obligations alone, or the budget. */
  private probeBudget(): number {
    if (this.settings.coverage === 'full') return Infinity;
    if (this.settings.coverage === 'obligations') return 0;
    const nodes = new Set([...this.endpointsByPod.values()].map((e) => e.node)).size;
    return probeBudget(this.settings, nodes);
  }

  /**
   * Keeps exactly the synthetic sources the plan asks for or already uses. New ones run
   * shortly after; the watcher then re-plans with them as real pods.
   */
  private async reconcileSynthetic(plan: Plan): Promise<void> {
    const namespace = this.settings.syntheticNamespace;
    if (!this.ports.synthetic || !namespace) return;
    const requested = plan.notGenerated.flatMap((n) => (n.synthetic ? [n.synthetic.labels] : []));
    const used = plan.cases
      .filter((c) => c.source.namespace === namespace)
      .map((c) => c.source.labels);
    // Those in use first, so the cap never removes a source a case stands on.
    const wanted = new Map(
      [...used, ...requested].map((labels) => [
        JSON.stringify(Object.entries(labels).sort()),
        labels,
      ]),
    );
    const cap = this.settings.maxSyntheticSources ?? PLANNER_DEFAULTS.maxSyntheticSources;
    if (wanted.size > cap && this.syntheticCapWarned !== wanted.size) {
      this.syntheticCapWarned = wanted.size;
      this.log.warn('synthetic sources capped', { wanted: wanted.size, cap });
    }
    const { created, deleted } = await this.ports.synthetic.reconcile(
      namespace,
      [...wanted.values()].slice(0, cap).map((labels) => ({ namespace, labels })),
    );
    if (created.length > 0) this.syntheticSince = this.clock.now().getTime();
    else if (requested.length === 0) this.syntheticSince = undefined;
    if (created.length + deleted.length > 0)
      this.log.info('synthetic sources reconciled', { namespace, created, deleted });
  }

  /** The policy inventory, when it changed and on every sweep (a new reporter learns it then). */
  private async publishInventory(
    engine: PolicyEngine,
    generation: number,
    trigger: 'change' | 'sweep',
  ): Promise<void> {
    const parts = policyInventory(engine, generation);
    const fingerprint = JSON.stringify(parts.map((p) => p.policies));
    if (trigger === 'change' && fingerprint === this.inventoryPublished) return;
    for (const part of parts)
      await this.ports.bus.publish(POLICY_INVENTORY_SUBJECT, PolicyInventoryContract, part, {
        msgId: `policies/${generation}/${part.part}`,
      });
    this.inventoryPublished = fingerprint;
  }

  /**
   * The running pods of a class, as the scheduler needs them: at the address the class's
   * pods have, which for a class of a second family's engine is their address of it.
   */
  private endpointsOf(c: PodClass): PodEndpoint[] {
    return c.pods.flatMap((p) => {
      const endpoint = this.endpointsByPod.get(podKey(p));
      return endpoint ? [p.ip && p.ip !== endpoint.ip ? { ...endpoint, ip: p.ip } : endpoint] : [];
    });
  }

  /**
   * A model per further IP family of a dual-stack cluster, each pod at its address of that
   * family (ipBlocks apply per family). Built for each plan from the cluster: only
   * dual-stack clusters pay for it.
   */
  private familyEngines(): { family: IpFamily; engine: PolicyEngine }[] {
    const cluster = this.dualStack;
    if (!cluster) return [];
    return familiesOf(cluster)
      .slice(1)
      .map((family) => ({ family, engine: new PolicyEngine(clusterInFamily(cluster, family)) }));
  }

  /**
   * The rotation's blocks, or as many as the cells stream takes: a full stream (its consumer,
   * the scheduler, behind) refuses the rest, which is said and counted, never fatal to the
   * plan, whose obligations matter more than one sweep of rotation cells.
   */
  private async publishBlocksUnlessFull(
    rotation: BlockRotation,
    endpoints: (c: PodClass) => PodEndpoint[],
    generation: number,
  ): Promise<{ blocks: number; cells: number; refused?: true }> {
    const sent = { blocks: 0, cells: 0 };
    try {
      await this.publishBlocks(rotation, endpoints, generation, sent);
      return sent;
    } catch (error) {
      if (!(error instanceof StreamFullError)) throw error;
      this.log.warn(
        'rotation blocks refused: the rotation stays where it was and tries these cells again at the next sweep',
        { reason: error.message, blocksSent: sent.blocks, cellsSent: sent.cells },
      );
      return { ...sent, refused: true };
    }
  }

  /**
   * The rotation's cell blocks (ADR 0013), each with candidate pods of its source class
   * and of each destination class; cells whose classes have no running pod are left out.
   */
  private async publishBlocks(
    rotation: BlockRotation,
    endpoints: (c: PodClass) => PodEndpoint[],
    generation: number,
    sent: { blocks: number; cells: number },
  ): Promise<void> {
    const podsOf = new Map<PodClass, PodEndpoint[]>();
    // Pods rotate between sweeps: each generation starts at another pod of the class.
    const pods = (c: PodClass, max: number): PodEndpoint[] => {
      let found = podsOf.get(c);
      if (!found) podsOf.set(c, (found = endpoints(c)));
      const all = found;
      return Array.from(
        { length: Math.min(max, all.length) },
        (_, k) => all[(generation + k) % all.length] as PodEndpoint,
      );
    };
    // Interleaved: the first block of every source class, then the second…: a source's
    // blocks all go to the nodes of its pods, and in a row they would queue there while
    // every other node waits. Messages are built as they are sent: millions of cells
    // never sit in memory as message objects.
    const ordinal = new Map<PodClass, number>();
    const turns = rotation.blocks.map((block) => {
      const turn = ordinal.get(block.source) ?? 0;
      ordinal.set(block.source, turn + 1);
      return turn;
    });
    const order = rotation.blocks
      .map((_, i) => i)
      .sort((a, b) => (turns[a] as number) - (turns[b] as number) || a - b);
    for (let i = 0; i < order.length; i += BLOCK_PUBLISH_CONCURRENCY) {
      const messages = order
        .slice(i, i + BLOCK_PUBLISH_CONCURRENCY)
        .flatMap((index) => this.blockMessage(rotation, index, pods, generation) ?? []);
      await Promise.all(
        messages.map((message) =>
          this.ports.bus.publish(CELL_BLOCK_SUBJECT, CellBlockContract, message, {
            msgId: `block/${message.blockId}`,
          }),
        ),
      );
      sent.blocks += messages.length;
      sent.cells += messages.reduce((n, m) => n + m.cells.length, 0);
    }
  }

  /** A block's message; undefined when its classes have no running pod to probe with. */
  private blockMessage(
    rotation: BlockRotation,
    index: number,
    pods: (c: PodClass, max: number) => PodEndpoint[],
    generation: number,
  ): CellBlockMessage | undefined {
    const block = rotation.blocks[index] as BlockRotation['blocks'][number];
    const sources = pods(block.source, this.settings.maxCandidates);
    if (sources.length === 0) return undefined;
    const destinations: CellBlockMessage['destinations'] = [];
    const destinationIndex = new Map<PodClass, number>();
    const cells: CellBlockMessage['cells'] = [];
    block.columns.forEach((columnIndex, i) => {
      const column = rotation.columns[columnIndex];
      if (!column || column.protocol === 'SCTP') return;
      let at = destinationIndex.get(column.destination);
      if (at === undefined) {
        const destinationPods = pods(column.destination, BLOCK_DESTINATION_PODS);
        if (destinationPods.length === 0) return;
        at =
          destinations.push({ namespace: column.destination.namespace, pods: destinationPods }) - 1;
        destinationIndex.set(column.destination, at);
      }
      cells.push({
        cellId: caseIdOf(block.source.key, column.destination.key, column.port, column.protocol),
        destination: at,
        port: column.port,
        protocol: column.protocol,
        expected: block.allowed[i] === 1 ? 'allow' : 'deny',
      });
    });
    if (cells.length === 0) return undefined;
    return {
      blockId: `${generation}-${index}`,
      generation,
      source: { namespace: block.source.namespace, classKey: block.source.key },
      sources,
      destinations,
      cells,
    };
  }

  /**
   * A rotation cell whose probe disagreed with its expected verdict: published as a full
   * case (explanation, candidate pods), which the reporter re-probes, stores and alerts on
   * like any other. Nothing happens when its pods or classes have changed since: the cell
   * then no longer is what was probed, and the next plan has its own verdict for it.
   */
  async onMismatch(mismatch: CellMismatch): Promise<boolean> {
    const engine = this.engine;
    if (!engine) return false;
    const source = engine.classOf(mismatch.source);
    const destination = engine.classOf(mismatch.destination);
    const choice = { port: mismatch.port, protocol: mismatch.protocol };
    if (
      !source ||
      !destination ||
      caseIdOf(source.key, destination.key, choice.port, choice.protocol) !== mismatch.cellId
    ) {
      this.log.info(
        'a rotation cell that disagreed no longer exists as probed; left to the next plan',
        {
          cellId: mismatch.cellId,
        },
      );
      return false;
    }
    const planned = cellCase(engine, source, destination, choice, this.unmodelled);
    if (!planned) return false;
    const endpoints = (c: PodClass): PodEndpoint[] => this.endpointsOf(c);
    const generation = Math.max(this.generation, mismatch.generation);
    this.log.warn('a rotation cell disagreed with the policies: published as a full case', {
      cellId: mismatch.cellId,
      expected: planned.expected,
      observed: mismatch.observed,
    });
    await this.publishCase(planned, endpoints, generation, undefined);
    this.publishedIn.set(planned.caseId, generation);
    return true;
  }

  private async publishCase(
    planned: PlannedCase,
    endpoints: (c: PodClass) => PodEndpoint[],
    generation: number,
    state: PublishedCase | undefined,
  ): Promise<void> {
    const span = this.ports.tracer.startCaseSpan('plan case', undefined, {
      'lumen.case_id': planned.caseId,
      'lumen.case_reason': planned.reason,
      'lumen.generation': generation,
    });
    try {
      const message = testCaseMessage(planned, endpoints, {
        generation,
        changedAt: state?.changedAt ?? this.clock.now().toISOString(),
        maxCandidates: this.settings.maxCandidates,
      });
      await this.ports.bus.publish(TEST_CASE_SUBJECT, TestCaseContract, message, {
        msgId: `${planned.caseId}/${generation}`,
        ...(span.traceparent ? { traceparent: span.traceparent } : {}),
      });
      span.end();
    } catch (error) {
      span.end({}, String(error));
      throw error;
    }
  }
}

function applyChange(
  engine: PolicyEngine,
  cluster: Cluster,
  change: ClusterView['changes'][number],
): void {
  const [first = '', second] = change.key.split('/');
  const namespace = second === undefined ? '' : first;
  const name = second ?? first;
  const gone = change.type === 'delete';
  if (change.kind === 'Namespace') {
    const found = cluster.namespaces.find((n) => n.name === name);
    if (found && !gone) engine.setNamespace(found);
    else engine.deleteNamespace(name);
  } else if (change.kind === 'Pod') {
    const found = cluster.pods.find((p) => p.namespace === namespace && p.name === name);
    if (found && !gone) engine.setPod(found);
    else engine.deletePod({ namespace, name });
  } else if (change.kind === 'NetworkPolicy') {
    const found = cluster.policies.find(
      (p) => p.metadata.namespace === namespace && p.metadata.name === name,
    );
    if (found && !gone) engine.setPolicy(found);
    else engine.deletePolicy(namespace, name);
  } else if (!VERDICT_NEUTRAL_KINDS.has(change.kind))
    applyClusterPolicyChange(engine, cluster, change.kind, name, gone);
}

/**
 * Kinds whose changes move no verdict: the plan reads their lists itself (unmodelled
 * policies to flag cases, Services and their EndpointSlices to plan paths through them).
 */
const VERDICT_NEUTRAL_KINDS: ReadonlySet<string> = new Set([
  'UnmodelledPolicy',
  'Service',
  'EndpointSlice',
]);

/** A cluster-scoped policy: its key is its name, unique within its kind. */
function applyClusterPolicyChange(
  engine: PolicyEngine,
  cluster: Cluster,
  kind: string,
  name: string,
  gone: boolean,
): void {
  const found = cluster.clusterPolicies?.find((p) => p.kind === kind && p.metadata.name === name);
  if (found && !gone) engine.setClusterPolicy(found);
  else engine.deleteClusterPolicy(kind, name);
}
