import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PolicyEngine, ReferenceEvaluator, type Cluster } from '#lumen/policy';
import { isMatrixCell, planCases, type Plan } from '#lumen/planner';
import { cluster as randomCluster, tieredCluster } from '../../policy/test/arbitraries.js';

/** The identity of a cell, as its case id hashes it. */
const cellKey = (source: string, destination: string, port: number, protocol: string): string =>
  `${source}|${destination}|${port}/${protocol}`;

/** Every cell the plan's blocks hold, with its expected verdict. */
function blockCells(plan: Plan): Map<string, boolean> {
  const cells = new Map<string, boolean>();
  const rotation = plan.rotationBlocks;
  if (!rotation) return cells;
  for (const block of rotation.blocks)
    block.columns.forEach((column, i) => {
      const { destination, port, protocol } = rotation.columns[column]!;
      const key = cellKey(block.source.key, destination.key, port, protocol);
      expect(cells.has(key)).toBe(false);
      cells.set(key, block.allowed[i] === 1);
    });
  return cells;
}

const matrixCaseKeys = (plan: Plan): string[] =>
  plan.cases
    .filter(isMatrixCell)
    .map((c) => cellKey(c.source.key, c.destination.key, c.port, c.protocol));

describe('rotation in cell blocks (ADR 0013)', () => {
  it('holds exactly the matrix cells the case plan rotates, each with the reference verdict, for random clusters mixing all three APIs (property)', () => {
    fc.assert(
      fc.property(fc.oneof(randomCluster, tieredCluster), (c: Cluster) => {
        const engine = new PolicyEngine(c);
        const asCases = planCases(engine, { probeBudget: Infinity });
        const inBlocks = planCases(engine, {
          probeBudget: Infinity,
          blocksAbove: 0,
          maxCellsPerBlock: 3,
        });
        const cells = blockCells(inBlocks);
        const obligations = matrixCaseKeys(inBlocks);
        // Obligations are the same cases either way; the blocks carry the rest.
        expect(inBlocks.cases.every((p) => p.reason !== 'rotation')).toBe(true);
        expect(obligations.filter((k) => cells.has(k))).toEqual([]);
        expect(new Set([...obligations, ...cells.keys()])).toEqual(
          new Set(matrixCaseKeys(asCases)),
        );
        expect(inBlocks.coverage.rotated).toBe(cells.size);
        const reference = new ReferenceEvaluator(c);
        for (const block of inBlocks.rotationBlocks?.blocks ?? []) {
          expect(block.columns.length).toBeGreaterThan(0);
          expect(block.columns.length).toBeLessThanOrEqual(3);
          block.columns.forEach((column, i) => {
            const { destination, port, protocol } = inBlocks.rotationBlocks!.columns[column]!;
            const verdict = reference.verdict({
              from: block.source.pods[0]!,
              to: destination.pods[0]!,
              port,
              protocol,
            });
            expect(verdict.ambiguous).toBeUndefined();
            expect(block.allowed[i]).toBe(verdict.allowed ? 1 : 0);
          });
        }
      }),
      { seed: 20261201, numRuns: 200 },
    );
  });

  it('comes round to every cell once per rotation, within the budget of each sweep (property)', () => {
    fc.assert(
      fc.property(randomCluster, fc.integer({ min: 1, max: 40 }), (c: Cluster, perSweep) => {
        const engine = new PolicyEngine(c);
        const whole = blockCells(planCases(engine, { probeBudget: Infinity, blocksAbove: 0 }));
        const obligations = planCases(engine, { probeBudget: 0 }).coverage.obligations;
        const options = { probeBudget: obligations + perSweep, blocksAbove: 0 };
        const first = planCases(engine, options);
        if (!first.rotationBlocks) {
          // Nothing to rotate beyond the obligations.
          expect(whole.size).toBe(0);
          return;
        }
        // Until every cell has come round: no cell twice before then, and no more sweeps
        // than the plan said a rotation takes (cells without a verdict make it fewer).
        const seen = new Set<string>();
        let plan = first;
        let sweeps = 1;
        for (;;) {
          const cells = blockCells(plan);
          expect(cells.size).toBeLessThanOrEqual(perSweep);
          const fresh = [...cells.keys()].filter((key) => !seen.has(key));
          for (const key of fresh) seen.add(key);
          if (seen.size === whole.size) break;
          // Only the sweep that completes the rotation may wrap round to cells seen before.
          expect(fresh).toHaveLength(cells.size);
          expect(sweeps).toBeLessThan(first.coverage.sweepsPerRotation);
          plan = planCases(engine, {
            ...options,
            ...(plan.coverage.rotationCursor === undefined
              ? {}
              : { rotationCursor: plan.coverage.rotationCursor }),
          });
          sweeps += 1;
        }
        expect(new Set(seen)).toEqual(new Set(whole.keys()));
      }),
      { seed: 20261202, numRuns: 200 },
    );
  });

  it('plans rotation cells as cases while the rotation stays at or below blocksAbove', () => {
    fc.assert(
      fc.property(randomCluster, (c: Cluster) => {
        const engine = new PolicyEngine(c);
        const plain = planCases(engine, { probeBudget: Infinity });
        const plan = planCases(engine, {
          probeBudget: Infinity,
          blocksAbove: plain.coverage.cells,
        });
        expect(plan.rotationBlocks).toBeUndefined();
        expect(plan.cases.map((p) => p.caseId)).toEqual(plain.cases.map((p) => p.caseId));
      }),
      { seed: 20261203, numRuns: 50 },
    );
  });
});
