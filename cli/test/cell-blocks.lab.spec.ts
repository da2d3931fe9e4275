/**
 * Rotation cells in blocks (ADR 0013) against real nmap in real network namespaces: the
 * planner's blocks go out as batches, the reporter counts what agrees and sends back what
 * does not, and the planner's full case for it fails as an obligation would.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { faultedCluster, parseFault } from '#lumen/lab';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { caseIdOf, type Plan } from '#lumen/planner';
import { PolicyEngine } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { TEST_LAB_ROOT, eventually, exampleRecipeFiles } from '#lumen/testing';
import { upLab } from '../../libs/lab/test/support.js';
import type { RotationTallyRow } from '#lumen/store';
import { startLabPipeline } from '../src/pipeline/lab-verify.js';
import type { LocalPipeline } from '../src/pipeline/local-pipeline.js';

// Recipe 11: its obligations leave six cells to rotation, over TCP and UDP.
const recipe11 = exampleRecipeFiles().find((f) =>
  f.endsWith('recipe-11-deny-egress-from-an-application.yaml'),
)!;
let nats: PrivateNatsServer;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'lumen-blocks-'));
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
});
afterAll(async () => {
  await nats.stop();
});

/** Every cell of the plan's blocks: its id, pods of its classes, and what it expects. */
function blockCells(plan: Plan) {
  const rotation = plan.rotationBlocks!;
  return rotation.blocks.flatMap((block) =>
    [...block.columns].map((column, i) => {
      const { destination, port, protocol } = rotation.columns[column]!;
      return {
        cellId: caseIdOf(block.source.key, destination.key, port, protocol),
        from: block.source.pods[0]!,
        to: destination.pods[0]!,
        port,
        protocol,
        allowed: block.allowed[i] === 1,
      };
    }),
  );
}

/** The newest tally, once it holds `cells` cells. */
function counted(pipeline: LocalPipeline, cells: number): Promise<RotationTallyRow> {
  return eventually(
    async () => {
      const [newest] = await pipeline.store.rotationTallies(1);
      return newest && newest.cells >= cells ? newest : undefined;
    },
    'every block cell in the tally',
    60_000,
  );
}

async function run(name: string, faults: string[]) {
  const lab = await upLab(name, recipe11, faults);
  const pipeline = await startLabPipeline({
    labName: name,
    labRoot: TEST_LAB_ROOT,
    natsUrl: nats.url,
    scratch,
    coverage: 'full',
    rotationBlocksAbove: 0,
  }).catch(async (error: unknown) => {
    await lab.down();
    throw error;
  });
  return { lab, pipeline };
}

describe('rotation cells in blocks, in the lab (ADR 0013)', () => {
  it('counts every cell of a healthy lab as passed, with no attempt stored for it', async () => {
    const { lab, pipeline } = await run('blocks-ok', []);
    try {
      await pipeline.untilJudged(120_000);
      const cells = blockCells(pipeline.planner.plan!);
      expect(cells.length).toBeGreaterThan(0);
      expect(cells.some((c) => c.protocol === 'UDP')).toBe(true);
      const tally = await counted(pipeline, cells.length);
      expect(tally).toMatchObject({
        cells: cells.length,
        passed: cells.length,
        inconclusive: 0,
        mismatched: 0,
      });
      for (const cell of cells)
        expect(await pipeline.store.attempts(cell.cellId, tally.generation)).toEqual([]);
      // The API's coverage counts them from the tally: the whole matrix is verified.
      const matrix = await pipeline.store.results.matrix(undefined);
      expect(matrix?.rotation).toMatchObject({
        sweeps: 1,
        cells: cells.length,
        passed: cells.length,
      });
      expect(matrix?.cellsVerified).toBe(matrix?.cells);
    } finally {
      await pipeline.stop();
      await lab.down();
    }
  });

  it('under ignore-egress, sends back exactly the cells the fault breaks, and each fails as a full case', async () => {
    const { lab, pipeline } = await run('blocks-fault', ['ignore-egress']);
    try {
      await pipeline.untilJudged(120_000);
      const scenario = loadScenarioFile(recipe11);
      const broken = new PolicyEngine(
        faultedCluster(scenario.cluster, [parseFault('ignore-egress')]),
      );
      const cells = blockCells(pipeline.planner.plan!);
      const breaks = cells.filter(
        (c) =>
          broken.verdict({ from: c.from, to: c.to, port: c.port, protocol: c.protocol }).allowed !==
          c.allowed,
      );
      expect(breaks.length).toBeGreaterThan(0);
      const tally = await counted(pipeline, cells.length);
      expect(tally).toMatchObject({
        cells: cells.length,
        passed: cells.length - breaks.length,
        mismatched: breaks.length,
      });
      // The planner publishes each as a full case; the reporter confirms and fails it.
      const outcomes = await eventually(
        () => {
          const found = breaks.map((b) => pipeline.finalOutcomes.get(b.cellId));
          return found.every((o) => o !== undefined) ? found : undefined;
        },
        'a final outcome for every cell the fault breaks',
        60_000,
      );
      expect(outcomes.map((o) => [o.outcome, o.observed])).toEqual(
        breaks.map(() => ['fail', 'reachable']),
      );
    } finally {
      await pipeline.stop();
      await lab.down();
    }
  });
});
