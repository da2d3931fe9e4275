import { join } from 'node:path';
import { LabNames, labDown, labUp } from '#lumen/lab';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { silentLog, type Log } from '#lumen/contracts';
import { ONE_PASS_MS, PLANNER_DEFAULTS, type CoverageMode } from '#lumen/planner';
import { parseCidr, type Cidr } from '#lumen/policy';
import { loadScenarioFile, type Scenario } from '#lumen/scenario';
import type { RaceSettings } from '#lumen/reporter';
import { SCHEDULER_DEFAULTS } from '#lumen/scheduler';
import { LocalPipeline } from './local-pipeline.js';

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
  readonly coverage?: CoverageMode;
  readonly probeBudget?: number;
  readonly timeoutMs?: number;
  readonly log?: Log;
}

export interface LabPipelineOptions {
  readonly labName: string;
  readonly labRoot: string;
  readonly natsUrl: string;
  /** Where the run's SQLite file goes. */
  readonly scratch: string;
  readonly race?: RaceSettings;
  readonly coverage?: CoverageMode;
  readonly probeBudget?: number;
  /** Rotation cells per plan above which they travel as cell blocks (ADR 0013). */
  readonly rotationBlocksAbove?: number;
  readonly sweepIntervalMs?: number;
  /** Turns synthetic sources on, in this namespace. */
  readonly syntheticNamespace?: string;
  /** What the probers accept (default: the lab's pod CIDR); scenarios may fix other IPs. */
  readonly podCidrs?: readonly Cidr[];
  readonly log?: Log;
}

/**
 * The in-process pipeline against a running lab, already watching it, tuned for the lab:
 * a one-second settle window, quick heartbeats, a prober per node, the lab's pod CIDR.
 */
export async function startLabPipeline(options: LabPipelineOptions): Promise<LocalPipeline> {
  const pipeline = await LocalPipeline.start({
    kubeconfig: new LabNames(options.labName, options.labRoot).kubeconfig,
    natsUrl: options.natsUrl,
    store: { kind: 'sqlite', path: join(options.scratch, `${options.labName}.db`) },
    planner: {
      coverage: options.coverage ?? 'budget',
      probeBudget: options.probeBudget ?? 0,
      sweepIntervalMs: options.sweepIntervalMs || ONE_PASS_MS,
      maxCandidates: 20,
      ...(options.rotationBlocksAbove === undefined
        ? {}
        : { rotationBlocksAbove: options.rotationBlocksAbove }),
    },
    scheduler: { ...SCHEDULER_DEFAULTS, startupGraceMs: 5000 },
    race: options.race ?? { settleWindowMs: 1000, maxAttempts: 3, backoffMs: 300 },
    localProbers: true,
    podCidrs: options.podCidrs ?? [parseCidr(LAB_POD_CIDR) as Cidr],
    heartbeatTtlMs: 3000,
    sweepIntervalMs: options.sweepIntervalMs ?? 0,
    debounceMs: 100,
    log: options.log ?? silentLog,
    ...(options.syntheticNamespace
      ? {
          syntheticSources: {
            namespace: options.syntheticNamespace,
            image: PLANNER_DEFAULTS.syntheticImage,
          },
        }
      : {}),
  });
  try {
    await pipeline.watch();
  } catch (error) {
    await pipeline.stop();
    throw error;
  }
  return pipeline;
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
    const pipeline = await startLabPipeline({
      ...options,
      natsUrl: options.natsUrl ?? (nats as PrivateNatsServer).url,
    });
    try {
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
