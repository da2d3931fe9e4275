import { createHash } from 'node:crypto';
import type { PodEndpoint, TestCase } from '#lumen/contracts';
import type { PodClass, SideExplanation } from '#lumen/policy';
import type { PlannedCase } from './plan.js';

/** What the planner remembers of a published case between plans. */
export interface PublishedCase {
  /** Hash of everything a probe of the case depends on. */
  readonly fingerprint: string;
  /** When the expectation last changed: the start of the case's settle window. */
  readonly changedAt: string;
}

export interface PlanDiff {
  /** New cases and cases whose expectation, explanation or pods changed. */
  readonly changed: readonly PlannedCase[];
  /** Case ids that no longer exist. */
  readonly removed: readonly string[];
  /** The memory to keep for the next plan. */
  readonly state: ReadonlyMap<string, PublishedCase>;
}

function fingerprint(
  planned: PlannedCase,
  endpoints: (c: PodClass) => readonly PodEndpoint[],
): string {
  const pods = (c: PodClass): string[] =>
    endpoints(c)
      .map((p) => `${p.uid}@${p.ip}@${p.node}`)
      .sort();
  return createHash('sha256')
    .update(
      JSON.stringify([
        planned.expected,
        planned.explanation,
        planned.listenerKnown,
        planned.via ?? null,
        planned.family ?? null,
        pods(planned.source),
        pods(planned.destination),
      ]),
    )
    .digest('hex')
    .slice(0, 32);
}

/**
 * Compares a new plan with what was published: only new and changed cases go out (the
 * periodic sweep sends everything again). A case keeps its changedAt while nothing it
 * depends on changes, so a sweep does not reopen its settle window; a changed expectation
 * or a changed pod (a new pod also waits for its CNI) starts a new window.
 */
export function diffPlans(
  previous: ReadonlyMap<string, PublishedCase>,
  plan: readonly PlannedCase[],
  endpoints: (c: PodClass) => readonly PodEndpoint[],
  now: Date,
): PlanDiff {
  const state = new Map<string, PublishedCase>();
  const changed: PlannedCase[] = [];
  for (const planned of plan) {
    const print = fingerprint(planned, endpoints);
    const before = previous.get(planned.caseId);
    const unchanged = before?.fingerprint === print;
    state.set(planned.caseId, {
      fingerprint: print,
      changedAt: unchanged ? before.changedAt : now.toISOString(),
    });
    if (!unchanged) changed.push(planned);
  }
  const removed = [...previous.keys()].filter((id) => !state.has(id));
  return { changed, removed, state };
}

export interface CaseMessageOptions {
  readonly generation: number;
  readonly changedAt: string;
  readonly maxCandidates: number;
}

/** The `lumen.v1.cases` message for a planned case, with candidate pods of each class. */
export function testCaseMessage(
  planned: PlannedCase,
  endpoints: (c: PodClass) => readonly PodEndpoint[],
  options: CaseMessageOptions,
): TestCase {
  const sources = endpoints(planned.source).slice(0, options.maxCandidates);
  return {
    caseId: planned.caseId,
    generation: options.generation,
    reason: planned.reason,
    source: {
      namespace: planned.source.namespace,
      labels: { ...planned.source.labels },
      classKey: planned.source.key,
    },
    destination: {
      namespace: planned.destination.namespace,
      labels: { ...planned.destination.labels },
      classKey: planned.destination.key,
    },
    port: planned.port,
    protocol: planned.protocol,
    expected: planned.expected,
    explanation: {
      egress: sideMessage(planned.explanation.egress),
      ingress: sideMessage(planned.explanation.ingress),
      ...(planned.explanation.unprobeable ? { unprobeable: planned.explanation.unprobeable } : {}),
    },
    ...(planned.rule ? { rule: planned.rule } : {}),
    changedAt: options.changedAt,
    sources,
    destinations: endpoints(planned.destination).slice(0, options.maxCandidates),
    listenerKnown: planned.listenerKnown,
    syntheticSource: sources.length === 0,
    loopback: planned.loopback,
    ...(planned.via ? { via: { ...planned.via } } : {}),
    ...(planned.family ? { family: planned.family } : {}),
  };
}

/** A side of an explanation in its message shape (mutable copies of its lists). */
function sideMessage(side: SideExplanation): TestCase['explanation']['egress'] {
  const { passedBy, ...rest } = side;
  return {
    ...rest,
    policies: [...side.policies],
    allowedBy: [...side.allowedBy],
    ...(passedBy ? { passedBy: [...passedBy] } : {}),
  };
}
