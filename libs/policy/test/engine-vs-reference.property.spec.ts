import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PolicyEngine, ReferenceEvaluator, type Cluster, type Connection } from '#lumen/policy';
import { cluster, PROBE_PORTS, PROTOCOLS } from './arbitraries.js';

const SEED = 20261126;
const RUNS = 1000;

function connections(c: Cluster): Connection[] {
  return c.pods.flatMap((from) =>
    c.pods.flatMap((to) =>
      PROBE_PORTS.flatMap((port) => PROTOCOLS.map((protocol) => ({ from, to, port, protocol }))),
    ),
  );
}

/** How often the random clusters reached each interesting situation. */
const seen = { denied: 0, allowedByIngressRule: 0, allowedByEgressRule: 0, unprobeable: 0 };

function assertSameAnswers(engine: PolicyEngine, c: Cluster): void {
  const reference = new ReferenceEvaluator(c);
  for (const connection of connections(c)) {
    const compiled = engine.verdict(connection);
    const expected = reference.verdict(connection);
    // Serialised comparison first: toEqual on every one of ~10^6 verdicts is too slow.
    if (JSON.stringify(compiled) !== JSON.stringify(expected)) {
      expect({ connection, verdict: compiled }).toEqual({ connection, verdict: expected });
    }
    if (!compiled.allowed) seen.denied += 1;
    if (compiled.explanation.ingress.allowedBy.length > 0) seen.allowedByIngressRule += 1;
    if (compiled.explanation.egress.allowedBy.length > 0) seen.allowedByEgressRule += 1;
    if (compiled.explanation.unprobeable) seen.unprobeable += 1;
  }
}

describe(`compiled engine vs reference evaluator (fast-check seed ${SEED}, ${RUNS} clusters)`, () => {
  it('gives identical verdicts and explanations for every pod pair, port and protocol', () => {
    fc.assert(
      fc.property(cluster, (c) => {
        assertSameAnswers(new PolicyEngine(c), c);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The generator must reach every kind of answer, or agreement proves little.
    for (const count of Object.values(seen)) expect(count).toBeGreaterThan(RUNS);
  });

  it('answers matrix rows exactly as the pairwise verdicts', () => {
    fc.assert(
      fc.property(cluster, (c) => {
        const engine = new PolicyEngine(c);
        for (const destination of engine.podClasses) {
          for (const port of PROBE_PORTS) {
            for (const protocol of PROTOCOLS) {
              const row = engine.allowedSources(destination, port, protocol);
              for (const source of engine.podClasses) {
                const verdict = engine.classVerdict(source, destination, port, protocol);
                expect(row.has(source.id)).toBe(verdict.allowed);
              }
            }
          }
        }
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('reaches the same model incrementally as from scratch', () => {
    fc.assert(
      fc.property(cluster, fc.nat(), (c, pick) => {
        const [changed, ...others] = [
          ...c.policies.slice(pick % Math.max(1, c.policies.length)),
          ...c.policies.slice(0, pick % Math.max(1, c.policies.length)),
        ];
        const engine = new PolicyEngine({ ...c, policies: others });
        if (changed) engine.setPolicy(changed);
        assertSameAnswers(engine, c);
        if (changed) {
          engine.deletePolicy(changed.metadata.namespace, changed.metadata.name);
          assertSameAnswers(engine, { ...c, policies: others });
        }
        const [movedPod, ...otherPods] = c.pods;
        if (movedPod) {
          const withoutPod = new PolicyEngine({ ...c, pods: otherPods });
          withoutPod.setPod(movedPod);
          assertSameAnswers(withoutPod, { ...c, pods: [...otherPods, movedPod] });
          withoutPod.deletePod(movedPod);
          if (otherPods.length > 0) assertSameAnswers(withoutPod, { ...c, pods: otherPods });
        }
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });
});
