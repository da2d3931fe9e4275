import { describe, expect, it } from '@jest/globals';
import {
  CELL_BLOCK_SUBJECT,
  MATRIX_COVERAGE_SUBJECT,
  type CellBlock,
  POLICY_INVENTORY_SUBJECT,
  TEST_CASE_SUBJECT,
  silentLog,
  type Log,
  type PolicyInventory,
  type TestCase,
} from '#lumen/contracts';
import {
  PlannerCore,
  type ClusterView,
  type PlannerMetrics,
  type PlannerSettings,
} from '#lumen/planner';
import type { Cluster } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import {
  InMemoryBus,
  ManualClock,
  RecordingLog,
  RecordingTracer,
  conformanceScenarioFiles,
  exampleRecipeFiles,
  runningOnOneNode,
} from '#lumen/testing';

const recipe07 = conformanceScenarioFiles().find((f) =>
  f.includes('/07-allow-traffic-from-some-pods'),
)!;

/** The planner's published cases, each checked against its contract by the bus. */
const casesOn = (bus: InMemoryBus): TestCase[] => bus.on<TestCase>(TEST_CASE_SUBJECT);

function planner_(
  settings: Partial<PlannerSettings> = {},
  clock = new ManualClock(),
  log: Log = silentLog,
): {
  core: PlannerCore;
  bus: InMemoryBus;
  tracer: RecordingTracer;
  planned: number[];
  notJudged: { objects: number; cases: number }[];
  clock: ManualClock;
} {
  const bus = new InMemoryBus();
  const tracer = new RecordingTracer();
  const planned: number[] = [];
  const notJudged: { objects: number; cases: number }[] = [];
  const metrics: PlannerMetrics = {
    planned: (n) => planned.push(n),
    notJudged: (objects, cases) => notJudged.push({ objects: objects.length, cases }),
  };
  const core = new PlannerCore(
    { bus, clock, log, tracer, metrics },
    {
      coverage: 'budget',
      probeBudget: 0,
      sweepIntervalMs: 300_000,
      maxCandidates: 5,
      ...settings,
    },
  );
  return { core, bus, tracer, planned, notJudged, clock };
}

function view(cluster: Cluster, changes: ClusterView['changes'] = []): ClusterView {
  return {
    cluster,
    pods: runningOnOneNode(cluster),
    changes,
  };
}

const namespacesOf = (cases: readonly TestCase[]): string[] =>
  [...new Set(cases.flatMap((c) => [c.source.namespace, c.destination.namespace]))].sort();

describe('PlannerCore', () => {
  describe('rotation in cell blocks (ADR 0013)', () => {
    // Recipe 11: its obligations leave six cells to rotation, TCP and UDP.
    const cluster = (): Cluster =>
      loadScenarioFile(
        exampleRecipeFiles().find((f) =>
          f.endsWith('recipe-11-deny-egress-from-an-application.yaml'),
        )!,
      ).cluster;

    it('sends the rotation as cell blocks above the threshold, with the first plan and on sweeps only', async () => {
      const { core, bus } = planner_({ coverage: 'full', rotationBlocksAbove: 0 });
      const first = await core.update(view(cluster()));
      const blocks = bus.on<CellBlock>(CELL_BLOCK_SUBJECT);
      expect(first.blocks).toBe(blocks.length);
      expect(first.blockCells).toBe(blocks.reduce((n, b) => n + b.cells.length, 0));
      expect(first.blockCells).toBeGreaterThan(0);
      expect(casesOn(bus).some((c) => c.reason === 'rotation')).toBe(false);
      // Each cell's expected verdict is the model's, for the pods the block names.
      const engine = core.model!;
      for (const block of blocks)
        for (const cell of block.cells) {
          const verdict = engine.verdict({
            from: block.sources[0]!,
            to: block.destinations[cell.destination]!.pods[0]!,
            port: cell.port,
            protocol: cell.protocol,
          });
          expect(cell.expected).toBe(verdict.allowed ? 'allow' : 'deny');
        }
      const change = await core.update(view(cluster()));
      expect(change.blocks).toBe(0);
      const sweep = await core.sweep();
      expect(sweep?.blocks).toBe(blocks.length);
      expect(bus.on<CellBlock>(CELL_BLOCK_SUBJECT)).toHaveLength(2 * blocks.length);
    });

    it('publishes a cell whose probe disagreed as a full case with its explanation, and ignores one that no longer exists', async () => {
      const { core, bus } = planner_({ coverage: 'full', rotationBlocksAbove: 0 });
      await core.update(view(cluster()));
      const [block] = bus.on<CellBlock>(CELL_BLOCK_SUBJECT);
      const cell = block!.cells[0]!;
      const destination = block!.destinations[cell.destination]!.pods[0]!;
      const mismatch = {
        cellId: cell.cellId,
        generation: block!.generation,
        source: { namespace: block!.sources[0]!.namespace, name: block!.sources[0]!.name },
        destination: { namespace: destination.namespace, name: destination.name },
        port: cell.port,
        protocol: cell.protocol,
        expected: cell.expected,
        observed: cell.expected === 'allow' ? ('blocked' as const) : ('reachable' as const),
        at: new Date().toISOString(),
      };
      const before = casesOn(bus).length;
      expect(await core.onMismatch({ ...mismatch, cellId: '0123456789abcdef' })).toBe(false);
      expect(casesOn(bus)).toHaveLength(before);
      expect(await core.onMismatch(mismatch)).toBe(true);
      const promoted = casesOn(bus).slice(before);
      expect(promoted).toEqual([
        expect.objectContaining({
          caseId: cell.cellId,
          reason: 'rotation',
          expected: cell.expected,
          port: cell.port,
          protocol: cell.protocol,
        }),
      ]);
      expect(
        promoted[0]!.explanation.ingress.policies.length +
          promoted[0]!.explanation.egress.policies.length,
      ).toBeGreaterThanOrEqual(0);
      expect(promoted[0]!.sources.map((p) => p.name)).toContain(mismatch.source.name);
    });
  });

  const scenario = loadScenarioFile(recipe07);
  const optedOut = (cluster: Cluster, namespace: string, value: string): Cluster => ({
    ...cluster,
    namespaces: cluster.namespaces.map((n) =>
      n.name === namespace ? { ...n, labels: { ...n.labels, 'lumen.dev/ignore': value } } : n,
    ),
  });

  it('leaves out the pods of a namespace labelled lumen.dev/ignore=true, and takes them back', async () => {
    const { core: planner, bus } = planner_({ optOutLabel: 'lumen.dev/ignore' });
    await planner.update(view(scenario.cluster));
    expect(namespacesOf(casesOn(bus))).toContain('other');

    bus.clear();
    const out = optedOut(scenario.cluster, 'other', 'true');
    await planner.update(view(out, [{ kind: 'Namespace', type: 'upsert', key: 'other' }]));
    await planner.sweep();
    expect(casesOn(bus).length).toBeGreaterThan(0);
    expect(namespacesOf(casesOn(bus))).not.toContain('other');
    expect(
      planner.plan?.cases.every(
        (c: { source: { namespace: string }; destination: { namespace: string } }) =>
          c.source.namespace !== 'other' && c.destination.namespace !== 'other',
      ),
    ).toBe(true);

    bus.clear();
    await planner.update(
      view(optedOut(scenario.cluster, 'other', 'false'), [
        { kind: 'Namespace', type: 'upsert', key: 'other' },
      ]),
    );
    expect(namespacesOf(casesOn(bus))).toContain('other');
  });

  it('publishes the policy inventory with every policy’s effective rules, again only when it changed or on a sweep', async () => {
    const { core: planner, bus } = planner_();
    const inventories = (): PolicyInventory[] =>
      bus.messages
        .filter((m) => m.subject === POLICY_INVENTORY_SUBJECT)
        .map((m) => m.value as PolicyInventory);
    await planner.update(view(scenario.cluster));
    expect(inventories()).toHaveLength(1);
    expect(inventories()[0]).toMatchObject({ part: 0, parts: 1 });
    expect(inventories()[0]!.policies.map((p) => p.policy)).toEqual(
      scenario.cluster.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort(),
    );
    await planner.update(
      view(scenario.cluster, [
        {
          kind: 'Pod',
          type: 'upsert',
          key: `${scenario.cluster.pods[0]!.namespace}/${scenario.cluster.pods[0]!.name}`,
        },
      ]),
    );
    expect(inventories()).toHaveLength(1); // nothing about policies changed
    await planner.sweep();
    expect(inventories()).toHaveLength(2);
  });

  describe('cases and rounds', () => {
    const policyKey = 'default/web-allow-all-ns-monitoring';

    it('publishes every planned case of a first view in one round, each in a trace of its own', async () => {
      const { core, bus, tracer, planned } = planner_();
      const published = await core.update(view(scenario.cluster));
      const cases = casesOn(bus);
      expect(published.trigger).toBe('change');
      expect(published.total).toBe(core.plan?.cases.length);
      expect(published.published).toBe(published.total);
      expect(cases.map((c) => c.caseId).sort()).toEqual(
        core.plan?.cases.map((c) => c.caseId).sort(),
      );
      expect(new Set(cases.map((c) => c.generation))).toEqual(new Set([published.generation]));
      expect(bus.messages.filter((m) => m.subject === TEST_CASE_SUBJECT)).toEqual(
        cases.map((c) =>
          expect.objectContaining({
            options: {
              msgId: `${c.caseId}/${published.generation}`,
              traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-/) as unknown as string,
            },
          }),
        ),
      );
      expect(tracer.spans.filter((s) => s.name === 'plan case')).toHaveLength(cases.length);
      expect(tracer.spans.every((s) => s.ended)).toBe(true);
      expect(planned).toEqual([published.total]);
      for (const c of cases) expect(core.publishedGeneration(c.caseId)).toBe(published.generation);
      // The rule's must-allow and its near misses are all there, with the policy's verdicts.
      expect(cases.filter((c) => c.rule?.policy === policyKey).map((c) => c.expected)).toEqual(
        expect.arrayContaining(['allow', 'deny']),
      );
    });

    it('publishes nothing for a view that changes nothing, and every case again on a sweep, in newer rounds', async () => {
      const { core, bus, clock } = planner_();
      const first = await core.update(view(scenario.cluster));
      bus.clear();
      clock.advance(1000);
      const quiet = await core.update(view(scenario.cluster));
      expect(quiet).toMatchObject({ published: 0, removed: 0, total: first.total });
      expect(quiet.generation).toBeGreaterThan(first.generation);
      expect(casesOn(bus)).toEqual([]);

      clock.advance(1000);
      const sweep = await core.sweep();
      expect(sweep).toMatchObject({ trigger: 'sweep', published: first.total });
      expect(sweep!.generation).toBeGreaterThan(quiet.generation);
      expect(new Set(casesOn(bus).map((c) => c.generation))).toEqual(new Set([sweep!.generation]));
    });

    it('re-publishes only what a policy change affects, in a new round, and forgets the cases that went', async () => {
      const { core, bus, clock } = planner_();
      const first = await core.update(view(scenario.cluster));
      const before = new Map(casesOn(bus).map((c) => [c.caseId, c]));
      bus.clear();
      clock.advance(1000);
      // The peer loses its namespaceSelector: monitoring pods of the policy's own namespace now.
      const [policy] = scenario.cluster.policies;
      const sameNamespace: Cluster = {
        ...scenario.cluster,
        policies: [
          {
            ...policy!,
            spec: {
              ...policy!.spec,
              ingress: [{ from: [{ podSelector: { matchLabels: { type: 'monitoring' } } }] }],
            },
          },
        ],
      };
      const change = await core.update(
        view(sameNamespace, [{ kind: 'NetworkPolicy', type: 'upsert', key: policyKey }]),
      );
      const sent = casesOn(bus);
      expect(change.generation).toBeGreaterThan(first.generation);
      expect(change.published).toBe(sent.length);
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.length).toBeLessThanOrEqual(change.total);
      const now = new Set(core.plan?.cases.map((c) => c.caseId));
      for (const c of sent) {
        expect(now.has(c.caseId)).toBe(true);
        expect(c.generation).toBe(change.generation);
        // A re-published case is new or says something new.
        const old = before.get(c.caseId);
        if (old) expect(JSON.stringify(old)).not.toBe(JSON.stringify(c));
      }
      const gone = [...before.keys()].filter((id) => !now.has(id));
      expect(change.removed).toBe(gone.length);
      for (const id of gone) expect(core.publishedGeneration(id)).toBeUndefined();
      // The must-allow now comes from default/monitoring.
      expect(
        sent.find((c) => c.reason === 'must-allow' && c.expected === 'allow')?.source,
      ).toMatchObject({ namespace: 'default', labels: { type: 'monitoring' } });
    });

    it('numbers rounds by the clock, so a restarted planner never reuses one', async () => {
      const clock = new ManualClock();
      const first = await planner_({}, clock).core.update(view(scenario.cluster));
      clock.advance(2000);
      const restarted = await planner_({}, clock).core.update(view(scenario.cluster));
      expect(restarted.generation).toBeGreaterThan(first.generation);
    });
  });

  describe('rotation over the class matrix', () => {
    // Nine pods with port 80, no policy: 72 cells and no obligations.
    const open: Cluster = {
      namespaces: ['x', 'y', 'z'].map((name) => ({ name, labels: {} })),
      pods: ['x', 'y', 'z'].flatMap((namespace) =>
        ['a', 'b', 'c'].map((pod) => ({
          namespace,
          name: pod,
          labels: { pod },
          hostNetwork: false,
          ports: [{ port: 80, protocol: 'TCP' as const }],
        })),
      ),
      policies: [],
    };

    it('moves on with each sweep, keeps a change to the sweep’s own cells, and comes round to every cell', async () => {
      const { core, bus, clock } = planner_({ probeBudget: 20 });
      const first = await core.update(view(open));
      expect(first.coverage).toMatchObject({ cells: 72, obligations: 0, rotated: 20 });
      expect(first.coverage.sweepsPerRotation).toBe(4);
      const firstCells = new Set(casesOn(bus).map((c) => c.caseId));
      expect(firstCells.size).toBe(20);
      expect(casesOn(bus).every((c) => c.reason === 'rotation')).toBe(true);

      clock.advance(1000);
      bus.clear();
      const change = await core.update(view(open, [{ kind: 'Pod', type: 'upsert', key: 'x/a' }]));
      expect(change).toMatchObject({ published: 0, removed: 0, total: 20 });

      const seen = new Set(firstCells);
      for (let sweep = 0; sweep < 3; sweep++) {
        clock.advance(1000);
        bus.clear();
        const next = await core.sweep();
        expect(next?.total).toBeLessThanOrEqual(20);
        for (const c of casesOn(bus)) seen.add(c.caseId);
      }
      expect(seen.size).toBe(72);
    });

    it('goes on with the plan when the cells stream is full, and offers the refused cells again at the next sweep (ADR 0019)', async () => {
      const settings = { probeBudget: 20, rotationBlocksAbove: 0 };
      const log = new RecordingLog();
      const control = planner_(settings);
      const refusing = planner_(settings, new ManualClock(), log);
      const cellsOf = (bus: InMemoryBus): string[] =>
        bus
          .on<CellBlock>(CELL_BLOCK_SUBJECT)
          .flatMap((b) => b.cells.map((c) => c.cellId))
          .sort();
      for (const { core, bus } of [control, refusing]) {
        await core.update(view(open));
        bus.clear();
      }
      await control.core.sweep();
      refusing.bus.refuse(CELL_BLOCK_SUBJECT, 'LUMEN_V1_CELLS');
      const refused = await refusing.core.sweep();
      expect(refused).toMatchObject({ blocks: 0, blockCells: 0 });
      expect(log.warnings()).toEqual([
        'rotation blocks refused: the rotation stays where it was and tries these cells again at the next sweep',
      ]);
      // The rest of the plan went out: the reporter still hears of the matrix.
      expect(refusing.bus.on(MATRIX_COVERAGE_SUBJECT)).toHaveLength(1);
      refusing.bus.accept(CELL_BLOCK_SUBJECT);
      refusing.bus.clear();
      await refusing.core.sweep();
      expect(cellsOf(control.bus)).toHaveLength(20);
      expect(cellsOf(refusing.bus)).toEqual(cellsOf(control.bus));
    });

    it('probes every cell with coverage full and none with coverage obligations', async () => {
      const full = planner_({ coverage: 'full' });
      expect((await full.core.update(view(open))).total).toBe(72);
      const obligations = planner_({ coverage: 'obligations' });
      expect((await obligations.core.update(view(open))).total).toBe(0);
    });

    it('tells the reporter about the matrix after every plan', async () => {
      const { core, bus } = planner_({ probeBudget: 20 });
      await core.update(view(open));
      expect(bus.on(MATRIX_COVERAGE_SUBJECT)).toEqual([
        expect.objectContaining({
          mode: 'budget',
          cells: 72,
          rotated: 20,
          probeBudget: 20,
          sweepsPerRotation: 4,
        }),
      ]);
    });

    it('names the policies it does not model, with the cases each kept from judgment, on the coverage message and in metrics', async () => {
      const { core, bus, notJudged } = planner_({ coverage: 'full' });
      const unmodelled = [
        { group: 'cilium.io', kind: 'CiliumNetworkPolicy', namespace: 'x', name: 'l7' },
        { group: 'cilium.io', kind: 'CiliumNetworkPolicy', namespace: 'elsewhere', name: 'idle' },
      ];
      const planned = await core.update({ ...view(open), unmodelled });
      // Of the 72 cells, those from or to x's three pods: 3 × 8 + 6 × 3 = 42.
      expect(planned.total).toBe(30);
      expect(bus.on(MATRIX_COVERAGE_SUBJECT)).toEqual([
        expect.objectContaining({
          notGeneratedCount: 42,
          notJudged: [
            { ...unmodelled[0], cases: 42 },
            { ...unmodelled[1], cases: 0 },
          ],
        }),
      ]);
      expect(notJudged).toEqual([{ objects: 2, cases: 42 }]);
    });
  });
});
