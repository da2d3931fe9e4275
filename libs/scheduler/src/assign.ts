import { createHash } from 'node:crypto';
import type { CellBlock, ProbeBatch, TestCase } from '#lumen/contracts';

export type CaseToSchedule = Pick<
  TestCase,
  'caseId' | 'sources' | 'destinations' | 'port' | 'protocol' | 'listenerKnown' | 'via'
> & {
  readonly round: number;
  /** The case's trace context, carried into the batch. */
  readonly traceparent?: string;
};

export interface Unschedulable {
  readonly caseId: string;
  readonly reason: string;
}

export interface Assignment {
  readonly batches: readonly ProbeBatch[];
  readonly unschedulable: readonly Unschedulable[];
}

export interface AssignOptions {
  /** Nodes whose prober sent a heartbeat recently. */
  readonly liveNodes: ReadonlySet<string>;
  /** Rotates the pods chosen from each class between runs (a sweep number works). */
  readonly rotation: number;
  readonly attempt: number;
  readonly maxTargetsPerBatch: number;
  readonly now: Date;
  /** Counts re-dispatches of the same work, so that a new batch gets a new id. */
  readonly dispatch?: number;
}

type Endpoint = CaseToSchedule['sources'][number];

export function pickRotating<T>(
  items: readonly T[],
  rotation: number,
  salt: string,
): T | undefined {
  if (items.length === 0) return undefined;
  let h = 0;
  for (const char of salt) h = (h * 31 + char.charCodeAt(0)) >>> 0;
  return items[(h + rotation) % items.length];
}

function batchId(
  node: string,
  sourceUid: string,
  caseIds: readonly string[],
  attempt: number,
  dispatch: number,
): string {
  return createHash('sha256')
    .update(JSON.stringify([node, sourceUid, [...caseIds].sort(), attempt, dispatch]))
    .digest('hex')
    .slice(0, 24);
}

/**
 * What the source probes for a case: through a Service, its ClusterIP and port (the network
 * picks the backend); otherwise a destination pod, rotating, and never the source itself
 * while another pod of the class can serve. A string says why there is none.
 */
function targetOf(
  c: CaseToSchedule,
  source: Endpoint,
  rotation: AssignOptions['rotation'],
): ProbeBatch['targets'][number] | string {
  const common = {
    caseId: c.caseId,
    round: c.round,
    protocol: c.protocol,
    listenerKnown: c.listenerKnown,
  };
  if (c.via)
    return {
      ...common,
      service: { namespace: c.via.namespace, name: c.via.name },
      ip: c.via.clusterIP,
      port: c.via.port,
    };
  const others = c.destinations.filter((d) => d.uid !== source.uid);
  const destination = pickRotating(
    others.length > 0 ? others : c.destinations,
    rotation,
    `${c.caseId}/d`,
  );
  if (!destination) return 'no running pod of the destination class';
  return {
    ...common,
    destination: { namespace: destination.namespace, name: destination.name },
    ip: destination.ip,
    port: c.port,
  };
}

/**
 * Concrete probes for class-level cases: a running source pod on a node with a live
 * prober (one per source class and call) and a destination pod for each case, rotating
 * between calls and never a pod against itself while another pod of the class can serve;
 * then one batch per node and source pod (split at maxTargetsPerBatch). A case nobody can
 * take is reported with why.
 */
export function assignBatches(
  cases: readonly CaseToSchedule[],
  options: AssignOptions,
): Assignment {
  const unschedulable: Unschedulable[] = [];
  const groups = new Map<
    string,
    { source: Endpoint; targets: ProbeBatch['targets'][number][]; traces: Record<string, string> }
  >();
  for (const c of cases) {
    const live = c.sources.filter((s) => options.liveNodes.has(s.node));
    if (c.sources.length === 0) {
      unschedulable.push({ caseId: c.caseId, reason: 'no running pod of the source class' });
      continue;
    }
    if (live.length === 0) {
      unschedulable.push({
        caseId: c.caseId,
        reason: `no live prober on the source pods' nodes (${[...new Set(c.sources.map((s) => s.node))].join(', ')})`,
      });
      continue;
    }
    // One pod per source class and dispatch (a pod is in one class, so any of its pods names
    // it): a class's cases then share one nmap, and the pod still rotates between dispatches.
    const source = pickRotating(live, options.rotation, c.sources[0]?.uid ?? c.caseId) as Endpoint;
    const key = `${source.node}/${source.uid}`;
    const group = groups.get(key) ?? { source, targets: [], traces: {} };
    const target = targetOf(c, source, options.rotation);
    if (typeof target === 'string') {
      unschedulable.push({ caseId: c.caseId, reason: target });
      continue;
    }
    group.targets.push(target);
    if (c.traceparent) group.traces[c.caseId] = c.traceparent;
    groups.set(key, group);
  }
  const batches: ProbeBatch[] = [];
  for (const { source, targets, traces } of groups.values()) {
    for (let i = 0; i < targets.length; i += options.maxTargetsPerBatch) {
      const chunk = targets.slice(i, i + options.maxTargetsPerBatch);
      const chunkTraces = Object.fromEntries(
        chunk.flatMap((t) => (traces[t.caseId] ? [[t.caseId, traces[t.caseId] as string]] : [])),
      );
      batches.push({
        batchId: batchId(
          source.node,
          source.uid,
          // The round is part of the identity: a sweep re-probes the same cases.
          chunk.map((t) => `${t.caseId}@${t.round}`),
          options.attempt,
          options.dispatch ?? 0,
        ),
        node: source.node,
        attempt: options.attempt,
        source: { namespace: source.namespace, name: source.name, uid: source.uid },
        targets: chunk,
        issuedAt: options.now.toISOString(),
        ...(Object.keys(chunkTraces).length > 0 ? { traces: chunkTraces } : {}),
      });
    }
  }
  return { batches, unschedulable };
}

/**
 * A cell block (ADR 0013) as one batch from `source`, a pod of its source class: each
 * cell's destination pod rotates between dispatches and is never the source itself while
 * another pod of the class can serve; targets carry the expected verdict.
 */
export function blockBatch(
  block: CellBlock,
  source: Endpoint,
  options: Pick<AssignOptions, 'rotation' | 'now' | 'dispatch'>,
): ProbeBatch {
  const targets = block.cells.map((cell): ProbeBatch['targets'][number] => {
    const { pods } = block.destinations[cell.destination] as CellBlock['destinations'][number];
    const others = pods.filter((p) => p.uid !== source.uid);
    const destination = pickRotating(
      others.length > 0 ? others : pods,
      options.rotation,
      cell.cellId,
    ) as Endpoint;
    return {
      caseId: cell.cellId,
      round: block.generation,
      destination: { namespace: destination.namespace, name: destination.name },
      ip: destination.ip,
      port: cell.port,
      protocol: cell.protocol,
      listenerKnown: true,
      expected: cell.expected,
    };
  });
  return {
    batchId: createHash('sha256')
      .update(JSON.stringify([block.blockId, source.node, source.uid, options.dispatch ?? 0]))
      .digest('hex')
      .slice(0, 24),
    node: source.node,
    attempt: 1,
    source: { namespace: source.namespace, name: source.name, uid: source.uid },
    targets,
    issuedAt: options.now.toISOString(),
    blockId: block.blockId,
  };
}
