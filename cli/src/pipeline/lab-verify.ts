import { join } from 'node:path';
import { LabNames, labDown, labUp } from '#lumen/lab';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import type { PipelineLog } from '#lumen/pipeline';
import { parseCidr, type Cidr } from '#lumen/policy';
import { loadScenarioFile, type Scenario } from '#lumen/scenario';
import type { RaceSettings } from '#lumen/verdicts';
import { DEFAULT_SCHEDULER_SETTINGS, LocalPipeline } from './local-pipeline.js';

export const LAB_POD_CIDR = '10.244.0.0/16';

export interface LabVerifyOptions {
  readonly file: string;
  readonly labName: string;
  readonly labRoot: string;
  /**
   * A NATS server for this lab alone. Without one, the lab gets a private nats-server:
   * Lumen's subjects belong to one cluster, so two labs must never share a server.
   */
  readonly natsUrl?: string;
  /** Where the run's SQLite file goes. */
  readonly scratch: string;
  readonly faults?: readonly string[];
  readonly race?: RaceSettings;
  readonly sampleBudget?: number;
  readonly timeoutMs?: number;
  readonly log?: PipelineLog;
}

/**
 * A lab of one scenario, and the pipeline judging every case of it once; `use` sees both
 * while they run. The lab and the pipeline are gone afterwards, whatever happens.
 */
export async function withLabPipeline<T>(
  options: LabVerifyOptions,
  use: (pipeline: LocalPipeline, scenario: Scenario) => Promise<T>,
): Promise<T> {
  const scenario = loadScenarioFile(options.file);
  const nats = options.natsUrl
    ? undefined
    : await startPrivateNatsServer({ storeDir: join(options.scratch, `nats-${options.labName}`) });
  try {
    await labUp({
      name: options.labName,
      root: options.labRoot,
      scenario: options.file,
      nodes: 2,
      faults: options.faults ?? [],
      podCidr: LAB_POD_CIDR,
    });
    const pipeline = await LocalPipeline.start({
      kubeconfig: new LabNames(options.labName, options.labRoot).kubeconfig,
      natsUrl: options.natsUrl ?? (nats as PrivateNatsServer).url,
      store: { kind: 'sqlite', path: join(options.scratch, `${options.labName}.db`) },
      planner: { sampleBudget: options.sampleBudget ?? 0, maxCandidates: 20 },
      scheduler: { ...DEFAULT_SCHEDULER_SETTINGS, startupGraceMs: 5000 },
      race: options.race ?? { settleWindowMs: 1000, maxAttempts: 3, backoffMs: 300 },
      localProbers: true,
      podCidrs: [parseCidr(LAB_POD_CIDR) as Cidr],
      heartbeatTtlMs: 3000,
      sweepIntervalMs: 0,
      debounceMs: 100,
      log: options.log ?? { info: () => undefined, warn: () => undefined },
    });
    try {
      await pipeline.watch();
      await pipeline.untilJudged(options.timeoutMs ?? 120_000);
      return await use(pipeline, scenario);
    } finally {
      await pipeline.stop();
    }
  } finally {
    await labDown(options.labName, options.labRoot);
    await nats?.stop();
  }
}
