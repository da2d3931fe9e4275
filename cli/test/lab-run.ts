/** For the lab tests of the whole pipeline: a private nats-server, and one judged pass. */
import { afterAll, beforeAll } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { TEST_LAB_ROOT } from '#lumen/testing';
import { upLab } from '../../libs/lab/test/support.js';
import {
  buildReport,
  runCoverage,
  type CaseReport,
  type RunCoverage,
} from '../src/pipeline/report.js';
import { startLabPipeline, type LabPipelineOptions } from '../src/pipeline/lab-verify.js';

export interface JudgedPass {
  readonly cases: CaseReport[];
  readonly coverage: RunCoverage;
}

/**
 * Starts a private nats-server for the suite (stopped after it), and returns a function
 * that judges every case of a scenario once on a fresh lab with these faults, through the
 * whole pipeline, and takes the lab down.
 */
export function judgeOnceInTheLab(
  prefix: string,
): (
  name: string,
  file: string,
  faults: readonly string[],
  options?: Pick<LabPipelineOptions, 'coverage' | 'podCidrs'>,
) => Promise<JudgedPass> {
  let nats: PrivateNatsServer;
  let scratch: string;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), `${prefix}-`));
    nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
  });
  afterAll(async () => {
    await nats.stop();
  });
  return async (name, file, faults, options = {}) => {
    const lab = await upLab(name, file, faults);
    try {
      const pipeline = await startLabPipeline({
        labName: lab.name,
        labRoot: TEST_LAB_ROOT,
        natsUrl: nats.url,
        scratch,
        sweepIntervalMs: 0,
        ...options,
      });
      try {
        await pipeline.untilJudged(150_000);
        const plan = pipeline.planner.plan!;
        const report = buildReport(plan.cases, pipeline.finalOutcomes);
        return { cases: report.cases, coverage: runCoverage('full', plan, report, []) };
      } finally {
        await pipeline.stop();
      }
    } finally {
      await lab.down();
    }
  };
}
