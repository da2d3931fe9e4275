import { createHash } from 'node:crypto';
import {
  addressIn,
  type IpFamily,
  type Pod,
  type PodClass,
  type PolicyEngine,
} from '#lumen/policy';
import { caseIdOf } from './case-id.js';
import type { NotGenerated, PlannedCase } from './plan.js';

/** A case over another family than the pods' primary one: its id from the cell of that family. */
export function familyCaseId(cellId: string, family: IpFamily): string {
  return createHash('sha256')
    .update(JSON.stringify([cellId, 'family', family]))
    .digest('hex')
    .slice(0, 16);
}

export interface FamilyPlan {
  readonly cases: readonly PlannedCase[];
  readonly notGenerated: readonly NotGenerated[];
}

/**
 * Each pod-level case again over a second IP family (issue 19), where the pods of both
 * classes have addresses in it: a CNI or host that enforces one family only leaves the
 * other open. The expectation comes from `familyEngine`, the cluster as that family sees it
 * (every pod at its address of the family), so ipBlocks apply per family, as the spec says.
 * Its classes are that engine's, whose pods carry their addresses of the family: the
 * scheduler then probes those. Where ipBlocks tell a class's pods apart over that family,
 * no one verdict can be expected of the class, and the case is left out, said why.
 */
export function familyCases(
  familyEngine: PolicyEngine,
  family: IpFamily,
  cases: readonly PlannedCase[],
): FamilyPlan {
  const planned = new Map<string, PlannedCase>();
  const notGenerated: NotGenerated[] = [];
  for (const c of cases) {
    if (c.family !== undefined || c.via) continue;
    const source = classIn(familyEngine, family, c.source.pods);
    const destination = classIn(familyEngine, family, c.destination.pods);
    if (source === 'none' || destination === 'none') continue;
    if (source === 'split' || destination === 'split') {
      notGenerated.push({
        reason: c.reason,
        ...(c.rule ? { rule: c.rule } : {}),
        why: `over IPv${family}: ipBlocks tell the pods of the ${source === 'split' ? 'source' : 'destination'} class apart, so no one verdict can be expected of the class`,
      });
      continue;
    }
    const caseId = familyCaseId(caseIdOf(source.key, destination.key, c.port, c.protocol), family);
    if (planned.has(caseId)) continue;
    const verdict = familyEngine.classVerdict(source, destination, c.port, c.protocol);
    planned.set(caseId, {
      ...c,
      caseId,
      source,
      destination,
      expected: verdict.allowed ? 'allow' : 'deny',
      explanation: verdict.explanation,
      family,
    });
  }
  return { cases: [...planned.values()], notGenerated };
}

/**
 * The one class of `family`'s engine the pods with an address of that family fall in:
 * 'none' when no pod has one (a single-stack pod), 'split' when they fall in several.
 */
function classIn(
  engine: PolicyEngine,
  family: IpFamily,
  pods: readonly Pod[],
): PodClass | 'none' | 'split' {
  let found: PodClass | undefined;
  for (const pod of pods) {
    if (addressIn(pod, family) === undefined) continue;
    const podClass = engine.classOf(pod);
    if (!podClass) continue;
    if (found && found.key !== podClass.key) return 'split';
    found = podClass;
  }
  return found ?? 'none';
}
