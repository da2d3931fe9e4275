import {
  CASE_UNSCHEDULABLE_SUBJECT,
  CaseUnschedulableContract,
  ProbeBatchContract,
  probeBatchSubject,
  type CellBlock,
  type ProbeBatch,
  type ProbeResult,
  type ProberHeartbeat,
  type ReprobeRequest,
  type TestCase,
  defer,
  type Deferral,
} from '#lumen/contracts';
import { assignBatches, blockBatch, pickRotating, type CaseToSchedule } from './assign.js';
import { NodeRateLimiter } from './rate-limit.js';
import type { SchedulerPorts } from './ports.js';
import type { SchedulerSettings } from './settings.js';

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

type WorkItem = CaseToSchedule & { readonly attempt: number };

interface Waiting {
  readonly item: WorkItem;
  readonly done: (outcome: Deferral | undefined) => void;
  readonly failed: (error: unknown) => void;
}

/** A cell block waiting for room on a node of its source class (ADR 0013). */
interface WaitingBlock {
  readonly block: CellBlock;
  readonly dispatch: number;
  readonly done: (outcome: Deferral | undefined) => void;
}

interface InFlight {
  readonly batch: ProbeBatch;
  readonly items: readonly WorkItem[];
  /** The block the batch probes, instead of items. */
  readonly block?: CellBlock;
  readonly instance: string | undefined;
  readonly dispatchedAt: number;
  readonly dispatch: number;
}

/**
 * The scheduler's domain: gathers cases and re-probe requests, cuts them into batches per
 * node and source pod for live probers, rate-limits per node, reports what nobody can
 * take, and dispatches again what a silent prober held.
 */
export class SchedulerCore {
  private waiting: Waiting[] = [];
  private blocks: WaitingBlock[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private live: { at: number; probers: ReadonlyMap<string, ProberHeartbeat> } | undefined;
  private proberWatch: NodeJS.Timeout | undefined;
  private readonly inFlight = new Map<string, InFlight>();
  private rotation = 0;
  private readonly startedAt: number;
  private readonly limiter: NodeRateLimiter;

  constructor(
    private readonly ports: SchedulerPorts,
    private readonly settings: SchedulerSettings,
  ) {
    this.startedAt = ports.clock.now().getTime();
    this.limiter = new NodeRateLimiter(settings.ratePerNode, settings.burstPerNode, () =>
      this.ports.clock.now().getTime(),
    );
  }

  /** A case from the planner: its first attempt. */
  onCase(testCase: TestCase, traceparent: string | undefined): Promise<Deferral | undefined> {
    return this.enqueue({
      caseId: testCase.caseId,
      round: testCase.generation,
      attempt: 1,
      sources: testCase.sources,
      destinations: testCase.destinations,
      port: testCase.port,
      protocol: testCase.protocol,
      listenerKnown: testCase.listenerKnown,
      ...(testCase.via ? { via: testCase.via } : {}),
      ...(traceparent ? { traceparent } : {}),
    });
  }

  /**
   * A block of rotation cells (ADR 0013): acked once it is dispatched whole, as one batch
   * from a pod of its source class; held, unacked, while no such pod's node has room.
   */
  onBlock(block: CellBlock): Promise<Deferral | undefined> {
    return new Promise((resolve) => {
      this.blocks.push({ block, dispatch: 0, done: resolve });
      this.scheduleFlush();
    });
  }

  /** A re-probe from the reporter, deferred in JetStream until it is due. */
  onReprobe(
    request: ReprobeRequest,
    traceparent: string | undefined,
  ): Promise<Deferral | undefined> {
    const due = Date.parse(request.notBefore) - this.ports.clock.now().getTime();
    if (due > 0) return Promise.resolve(defer(due));
    return this.enqueue({
      caseId: request.caseId,
      round: request.round,
      attempt: request.attempt,
      sources: request.sources,
      destinations: request.destinations,
      port: request.port,
      protocol: request.protocol,
      listenerKnown: request.listenerKnown,
      ...(request.via ? { via: request.via } : {}),
      ...(traceparent ? { traceparent } : {}),
    });
  }

  /** A result came back: its batch is no longer in flight. */
  onResult(result: Pick<ProbeResult, 'batchId'>): void {
    this.inFlight.delete(result.batchId);
    // Its prober has room again for work that waits.
    this.scheduleFlush();
  }

  /** Sets the queue gauges: targets in flight per node, and cases waiting for dispatch. */
  reportQueues(): void {
    const byNode = new Map<string, number>();
    for (const f of this.inFlight.values())
      byNode.set(f.batch.node, (byNode.get(f.batch.node) ?? 0) + f.batch.targets.length);
    this.ports.metrics.queues(byNode, this.waiting.length);
  }

  /** Looks for work held by silent probers every intervalMs, until stop(). */
  watchProbers(intervalMs: number): void {
    clearInterval(this.proberWatch);
    this.proberWatch = setInterval(() => {
      this.scheduleFlush();
      this.redispatchSilent().catch((error: unknown) => {
        this.ports.log.warn('re-dispatch check failed', { error: String(error) });
      });
    }, intervalMs);
  }

  /**
   * Dispatches again the batches of probers that went silent or were replaced, or that took
   * too long. Work that no live prober could take yet waits for its prober to come back
   * (a restart), until redispatchAfterMs; only then is it reported unschedulable.
   */
  async redispatchSilent(): Promise<number> {
    const now = this.ports.clock.now();
    const live = await this.liveProbers(now, false);
    let redispatched = 0;
    for (const f of [...this.inFlight.values()]) {
      const heartbeat = live.get(f.batch.node);
      const replaced =
        f.instance !== undefined && heartbeat !== undefined && heartbeat.instance !== f.instance;
      const overdue = now.getTime() - f.dispatchedAt > this.settings.redispatchAfterMs;
      const placeable = f.block
        ? f.block.sources.some((s) => live.has(s.node))
        : f.items.some((i) => i.sources.some((s) => live.has(s.node)));
      if (!(replaced || overdue || (!heartbeat && placeable))) continue;
      this.inFlight.delete(f.batch.batchId);
      redispatched += 1;
      this.ports.log.warn('re-dispatching a batch whose prober went silent', {
        batchId: f.batch.batchId,
        node: f.batch.node,
        dispatch: f.dispatch + 1,
        why: replaced ? 'prober restarted' : overdue ? 'no result in time' : 'prober silent',
      });
      if (f.block) {
        // Already acked: the block waits again, with nobody to tell when it leaves.
        if (f.dispatch + 1 <= this.settings.maxDispatches)
          this.blocks.push({ block: f.block, dispatch: f.dispatch + 1, done: () => undefined });
        this.scheduleFlush();
        continue;
      }
      const held = await this.dispatch(f.items, f.dispatch + 1, live);
      // Already acked: held work waits like new work, with nobody to tell when it leaves.
      for (const item of held)
        this.waiting.push({ item, done: () => undefined, failed: () => undefined });
      this.scheduleFlush();
    }
    return redispatched;
  }

  private enqueue(item: WorkItem): Promise<Deferral | undefined> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, done: resolve, failed: reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.waiting.length > 0 || this.blocks.length > 0)
      this.timer ??= setTimeout(() => void this.flush(), this.settings.gatherMs);
  }

  /**
   * Live probers. Flushes, which come as often as results, reuse a reading younger than a
   * quarter second; the prober watch always reads afresh.
   */
  private async liveProbers(
    now: Date,
    reuse: boolean,
  ): Promise<ReadonlyMap<string, ProberHeartbeat>> {
    if (!(reuse && this.live && now.getTime() - this.live.at < 250))
      this.live = { at: now.getTime(), probers: await this.ports.probers.live(now) };
    return this.live.probers;
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.flushing) {
      this.scheduleFlush();
      return;
    }
    this.flushing = true;
    const waiting = this.waiting;
    this.waiting = [];
    const blocks = this.blocks;
    this.blocks = [];
    try {
      await this.flushCases(waiting, blocks);
      try {
        // Rotation cells take the room obligations left (ADR 0013).
        this.blocks = [...(await this.dispatchBlocks(blocks)), ...this.blocks];
      } catch (error) {
        this.ports.log.warn('cell block dispatch failed', { error: String(error) });
        // Unacked blocks come again from JetStream; a dispatched one was acked already.
        for (const b of blocks) b.done(defer(1000));
      }
    } catch (error) {
      for (const w of waiting) w.failed(error);
      for (const b of blocks) b.done(defer(1000));
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Dispatches waiting cases. During the start-up grace, work whose source pods' nodes have
   * no live prober yet waits (deferred) instead of being called unschedulable: probers
   * announce themselves within a heartbeat of starting, and a scheduler that starts with
   * them (a fresh install, a node's prober still starting) would otherwise turn the first
   * round on those nodes into inconclusive verdicts and re-probes.
   */
  private async flushCases(gathered: readonly Waiting[], blocks: WaitingBlock[]): Promise<void> {
    const now = this.ports.clock.now();
    const live = await this.liveProbers(now, true);
    let waiting = gathered;
    if (now.getTime() - this.startedAt < this.settings.startupGraceMs) {
      const unannounced = (sources: readonly { readonly node: string }[]): boolean =>
        sources.length > 0 && !sources.some((s) => live.has(s.node));
      // Probers announce themselves within a heartbeat of starting; ask again shortly.
      for (const w of waiting) if (unannounced(w.item.sources)) w.done(defer(1000));
      waiting = waiting.filter((w) => !unannounced(w.item.sources));
      const early = blocks.filter((b) => unannounced(b.block.sources));
      for (const b of early) b.done(defer(1000));
      blocks.splice(0, blocks.length, ...blocks.filter((b) => !early.includes(b)));
      if (waiting.length === 0) return;
    }
    const held = await this.dispatch(
      waiting.map((w) => w.item),
      0,
      live,
    );
    const kept = waiting.filter((w) => held.has(w.item));
    for (const w of waiting) if (!held.has(w.item)) w.done(undefined);
    // What no prober had room for waits, unacked, ahead of what came since.
    this.waiting = [...kept, ...this.waiting];
  }

  /**
   * Each block whole, as one batch from a live pod of its source class whose node has
   * room; returns the blocks that must wait. A block no live prober can take is dropped
   * with a warning (the next rotation comes round to it): a cell sends no unschedulable.
   */
  private async dispatchBlocks(blocks: readonly WaitingBlock[]): Promise<WaitingBlock[]> {
    if (blocks.length === 0) return [];
    const live = await this.liveProbers(this.ports.clock.now(), true);
    const inFlight = this.batchesInFlightByNode();
    const rotation = this.rotation++;
    const held: WaitingBlock[] = [];
    for (const waiting of blocks) {
      const { block } = waiting;
      const sources = block.sources.filter((s) => live.has(s.node));
      if (sources.length === 0) {
        this.ports.log.warn('cell block unschedulable: no live prober on its source pods', {
          blockId: block.blockId,
          cells: block.cells.length,
        });
        waiting.done(undefined);
        continue;
      }
      const roomy = sources.filter(
        (s) => (inFlight.get(s.node) ?? 0) < this.settings.maxBatchesInFlightPerNode,
      );
      const source = pickRotating(roomy, rotation, block.blockId);
      if (!source) {
        held.push(waiting);
        continue;
      }
      const batch = blockBatch(block, source, {
        rotation,
        now: this.ports.clock.now(),
        dispatch: waiting.dispatch,
      });
      inFlight.set(batch.node, (inFlight.get(batch.node) ?? 0) + 1);
      await sleep(this.limiter.take(batch.node));
      await this.ports.bus.publish(probeBatchSubject(batch.node), ProbeBatchContract, batch, {
        msgId: batch.batchId,
      });
      this.inFlight.set(batch.batchId, {
        batch,
        items: [],
        block,
        instance: live.get(batch.node)?.instance,
        dispatchedAt: this.ports.clock.now().getTime(),
        dispatch: waiting.dispatch,
      });
      waiting.done(undefined);
    }
    return held;
  }

  private batchesInFlightByNode(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const f of this.inFlight.values())
      counts.set(f.batch.node, (counts.get(f.batch.node) ?? 0) + 1);
    return counts;
  }

  /**
   * Cuts work into batches and publishes them, fullest first, while each node's prober has
   * room; returns the work held back for lack of room.
   */
  private async dispatch(
    items: readonly WorkItem[],
    dispatch: number,
    live: ReadonlyMap<string, ProberHeartbeat>,
  ): Promise<Set<WorkItem>> {
    const held = new Set<WorkItem>();
    if (dispatch > this.settings.maxDispatches) {
      for (const item of items)
        await this.unschedulable(item, `no prober answered after ${dispatch} dispatches`);
      return held;
    }
    const spans = new Map(
      items.map((item) => [
        item,
        this.ports.tracer.startCaseSpan('schedule case', item.traceparent, {
          'lumen.case_id': item.caseId,
          'lumen.attempt': item.attempt,
        }),
      ]),
    );
    const rotation = this.rotation++;
    const inFlight = this.batchesInFlightByNode();
    for (const attempt of new Set(items.map((i) => i.attempt))) {
      const group = newestOfEachCase(items.filter((i) => i.attempt === attempt));
      const traced = group.map((i) => ({ ...i, ...withTrace(spans.get(i)?.traceparent) }));
      const { batches, unschedulable } = assignBatches(traced, {
        liveNodes: new Set(live.keys()),
        rotation,
        attempt,
        maxTargetsPerBatch: this.settings.maxTargetsPerBatch,
        now: this.ports.clock.now(),
        dispatch,
      });
      const byId = new Map(group.map((i) => [i.caseId, i] as const));
      for (const batch of [...batches].sort((a, b) => b.targets.length - a.targets.length)) {
        const batchItems = batch.targets.flatMap((t) => {
          const item = byId.get(t.caseId);
          return item ? [item] : [];
        });
        const nodeInFlight = inFlight.get(batch.node) ?? 0;
        if (nodeInFlight >= this.settings.maxBatchesInFlightPerNode) {
          for (const item of batchItems) held.add(item);
          continue;
        }
        inFlight.set(batch.node, nodeInFlight + 1);
        await sleep(this.limiter.take(batch.node));
        await this.ports.bus.publish(probeBatchSubject(batch.node), ProbeBatchContract, batch, {
          msgId: batch.batchId,
        });
        this.inFlight.set(batch.batchId, {
          batch,
          items: batchItems,
          instance: live.get(batch.node)?.instance,
          dispatchedAt: this.ports.clock.now().getTime(),
          dispatch,
        });
        this.ports.log.info('batch dispatched', {
          batchId: batch.batchId,
          node: batch.node,
          targets: batch.targets.length,
          attempt,
        });
      }
      for (const u of unschedulable) {
        const item = byId.get(u.caseId);
        if (item) await this.unschedulable(item, u.reason);
      }
    }
    for (const [item, span] of spans) if (!held.has(item)) span.end();
    return held;
  }

  private async unschedulable(item: WorkItem, reason: string): Promise<void> {
    this.ports.log.warn('case unschedulable', { caseId: item.caseId, reason });
    this.ports.metrics.unschedulable();
    await this.ports.bus.publish(
      CASE_UNSCHEDULABLE_SUBJECT,
      CaseUnschedulableContract,
      {
        caseId: item.caseId,
        round: item.round,
        attempt: item.attempt,
        reason: reason.slice(0, 500),
        at: this.ports.clock.now().toISOString(),
      },
      {
        msgId: `${item.caseId}/${item.round}/${item.attempt}/unschedulable`,
        ...withTrace(item.traceparent),
      },
    );
  }

  /** Stops watching probers and hands back what is still gathering (delivered again later). */
  stop(): void {
    clearInterval(this.proberWatch);
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiting) w.failed(new Error('scheduler stopping'));
    this.waiting = [];
    for (const b of this.blocks) b.done(defer(1000));
    this.blocks = [];
  }
}

function withTrace(traceparent: string | undefined): { traceparent?: string } {
  return traceparent ? { traceparent } : {};
}

/**
 * One work item per case: a batch answers each case once (the result contract refuses a
 * case answered twice, and the whole result would be dead-lettered). Two copies of a case
 * meet when a newer round arrives while the older one waits, or when JetStream delivers a
 * case again (a replica died holding it) while its first delivery still waits here. The
 * newest round is probed; the others are acked with it, as the reporter judges only the
 * newest round anyway.
 */
function newestOfEachCase(items: readonly WorkItem[]): WorkItem[] {
  const newest = new Map<string, WorkItem>();
  for (const item of items) {
    const seen = newest.get(item.caseId);
    if (!seen || item.round > seen.round) newest.set(item.caseId, item);
  }
  return [...newest.values()];
}
