/**
 * npm run bench:dashboard [-- --record]
 *
 * The dashboard in a real browser (Debian's Chromium, headless, through playwright-core)
 * against a real reporter process whose SQLite store holds 1,000 namespaces, 40,000 cases
 * and a million attempts: each view loaded from scratch five times, timed from navigation
 * to the view's content on screen, the median and the slowest kept. The budget (issue
 * 18) is one second per page.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { durableServiceConsumers, type CaseRecord } from '#lumen/contracts';
import { freePort } from '#lumen/host';
import { MessageBus, startPrivateNatsServer } from '#lumen/messaging';
import { CaseStore, createDataSource } from '#lumen/store';
import {
  caseRecordFixture,
  caseSide,
  explanationSide,
  launchChromium,
  spawnService,
} from '#lumen/testing';
import { measureMachine, recordSection } from './report.js';

const NAMESPACES = 1000;
/** Each namespace's cases go to itself and its next nine neighbours. */
const PEERS = 10;
const CLASSES = 2;
const ATTEMPTS = 1_000_000;
const RUNS = 5;
const TOKEN = 'bench-dashboard-token-0123456789abcdef';
const T0 = new Date('2026-12-01T10:00:00Z');

const caseId = (i: number): string => i.toString(16).padStart(16, '0');
const ns = (i: number): string => `tenant-${String(i % NAMESPACES).padStart(4, '0')}`;

function casesOf(): CaseRecord[] {
  const cases: CaseRecord[] = [];
  for (let from = 0; from < NAMESPACES; from++)
    for (let peer = 0; peer < PEERS; peer++)
      for (let a = 0; a < CLASSES; a++)
        for (let b = 0; b < CLASSES; b++) {
          const to = ns(from + peer);
          cases.push(
            caseRecordFixture(caseId(cases.length), {
              source: caseSide(ns(from), { app: `client-${a}` }),
              destination: caseSide(to, { app: `web-${b}` }),
              expected: (a + b) % 2 === 0 ? 'allow' : 'deny',
              explanation: { ingress: explanationSide([`${to}/web`]), egress: explanationSide([]) },
              rule: { policy: `${to}/web`, direction: 'ingress', index: a },
              changedAt: T0,
              updatedAt: T0,
            }),
          );
        }
  return cases;
}

async function seed(path: string): Promise<{ cases: number; seconds: number }> {
  const started = performance.now();
  const store = await CaseStore.open({ kind: 'sqlite', path });
  const cases = casesOf();
  for (let i = 0; i < cases.length; i += 2000) await store.upsertCases(cases.slice(i, i + 2000));
  await store.recordPolicyInventory(
    1,
    Array.from({ length: NAMESPACES }, (_, i) => ({
      policy: `${ns(i)}/web`,
      ingress: [0, 1],
      egress: [],
    })),
  );
  const raw = createDataSource({ kind: 'sqlite', path });
  await raw.initialize();
  // Latest outcomes: 2% fail, 1% flaky, 5% not yet judged, the rest pass.
  await raw.query(
    `INSERT INTO case_outcomes (case_id, outcome, round, decided_at, reason, attempts, enforcement_latency_ms, trace_id, observed)
     SELECT case_id, CASE WHEN rowid % 50 = 7 THEN 'fail' WHEN rowid % 100 = 3 THEN 'flaky' ELSE 'pass' END,
            25, '2026-12-01 10:05:00.000', 'bench', 2, 1500 + rowid % 4000, NULL, 'reachable'
     FROM cases WHERE rowid % 20 <> 11`,
  );
  await raw.query(
    `INSERT INTO probe_attempts (case_id, round, attempt, batch_id, node, observed_at, reachability, basis, evidence, trace_id)
     WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${ATTEMPTS - 1})
     SELECT printf('%016x', i % ${cases.length}), i / ${cases.length} + 1, 1, 'bulk', 'node-' || (i % 50), '2026-12-01 10:00:00.000',
            'reachable', 'connected: open (syn-ack)', '{"state":"open","reason":"syn-ack"}', printf('%032x', i)
     FROM n`,
  );
  await raw.query('ANALYZE');
  await raw.destroy();
  // A case with a history: pass, fail, pass; and firing alerts for a few failing cases.
  for (const [i, outcome] of (['pass', 'fail', 'pass'] as const).entries())
    await store.setOutcome({
      caseId: caseId(0),
      outcome,
      round: 30 + i,
      decidedAt: new Date(T0.getTime() + (10 + i) * 60_000),
      reason: 'bench',
      attempts: 1,
      enforcementLatencyMs: null,
      traceId: null,
      observed: 'reachable',
    });
  await store.close();
  return { cases: cases.length, seconds: (performance.now() - started) / 1000 };
}

const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-dashboard-'));
const database = join(scratch, 'lumen.db');
let reporter: ChildProcess | undefined;
const nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
try {
  const seeded = await seed(database);
  const bus = await MessageBus.connect({ url: nats.url, service: 'bench' });
  await bus.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
  await bus.close();
  writeFileSync(join(scratch, 'tokens.yaml'), `tokens:\n  - { name: admin, token: ${TOKEN} }\n`);
  const port = await freePort();
  reporter = spawnService(
    'reporter',
    {
      NATS_URL: nats.url,
      HTTP_PORT: String(port),
      SQLITE_PATH: database,
      API_TOKENS_FILE: join(scratch, 'tokens.yaml'),
    },
    join(scratch, 'reporter.log'),
  );
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if ((await fetch(`${base}/readyz`).catch(() => undefined))?.ok) break;
    if (i > 600)
      throw new Error(
        `the reporter did not become ready:\n${readFileSync(join(scratch, 'reporter.log'), 'utf8').slice(-3000)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // Signed in as the form does it: the token in this tab's sessionStorage.
  await context.addInitScript({
    content: `sessionStorage.setItem('lumen.api-token', ${JSON.stringify(TOKEN)})`,
  });
  const page = await context.newPage();
  const views: [string, string, string][] = [
    ['overview', '#/', '[data-kind="regressions"] b'],
    ['matrix, 1,000 × 1,000 namespaces', '#/matrix', '.matrix-canvas'],
    ['a namespace pair, class × class', `#/matrix/${ns(0)}/${ns(1)}`, '.class-matrix'],
    ['a policy: rules, coverage, cases', `#/policy/${ns(5)}/web`, '.rules'],
    ['a case: explanation, attempts, history', `#/case/${caseId(0)}`, '.attempts tbody tr'],
  ];
  // The first pages after the reporter started, reported apart from the repeated loads:
  // the sign-in page in a fresh browser (Chromium, the bundle), then the overview with the
  // reporter's queries and SQLite's page cache cold.
  const anonymous = await browser.newPage();
  const signInStart = performance.now();
  await anonymous.goto(`${base}/ui/`);
  await anonymous.waitForSelector('input[name="token"]', { state: 'visible' });
  const signInMs = performance.now() - signInStart;
  await anonymous.close();
  const coldStart = performance.now();
  await page.goto(`${base}/ui/#/`);
  await page.waitForSelector('[data-kind="regressions"] b', { state: 'visible', timeout: 30_000 });
  const coldMs = performance.now() - coldStart;
  // Where an overview's time goes: its four API calls, each alone (median of 5).
  const apiMs: string[] = [];
  for (const route of ['summary', 'regressions', 'coverage', 'latency', 'matrix']) {
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const start = performance.now();
      const answer = await fetch(`${base}/api/v1/${route}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      await answer.arrayBuffer();
      times.push(performance.now() - start);
    }
    apiMs.push(
      `${route} ${(times.sort((a, b) => a - b)[Math.floor(RUNS / 2)] ?? 0).toFixed(0)} ms`,
    );
  }
  const lines = [
    `Store: SQLite, ${NAMESPACES} namespaces, ${seeded.cases.toLocaleString('en')} cases, ${ATTEMPTS.toLocaleString('en')} attempts (seeded in ${seeded.seconds.toFixed(1)} s); a real reporter, headless Chromium 1400×900.`,
    `First pages after the reporter started: the sign-in page in a fresh browser ${signInMs.toFixed(0)} ms, then the overview with the store cold ${coldMs.toFixed(0)} ms.`,
    `The API alone (median of 5): ${apiMs.join(', ')}.`,
    'Then each view loaded from a blank page, to its content on screen (median / slowest of 5):',
  ];
  for (const [name, hash, selector] of views) {
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      await page.goto('about:blank');
      const start = performance.now();
      await page.goto(`${base}/ui/${hash}`);
      await page.waitForSelector(selector, { state: 'visible', timeout: 30_000 });
      times.push(performance.now() - start);
    }
    const shots = process.argv.indexOf('--screenshots');
    if (shots > 0)
      await page.screenshot({
        path: join(
          process.argv[shots + 1] ?? '.',
          `bench-${hash.replace(/[^a-z0-9]+/gi, '-')}.png`,
        ),
        fullPage: true,
      });
    const nodes = await page.evaluate<number>('document.querySelectorAll("*").length');
    times.sort((a, b) => a - b);
    const median = times[Math.floor(RUNS / 2)] ?? 0;
    const slowest = times[RUNS - 1] ?? 0;
    lines.push(
      `  ${name.padEnd(40)} ${median.toFixed(0).padStart(5)} ms / ${slowest.toFixed(0).padStart(5)} ms  ${nodes} DOM nodes  ${slowest < 1000 ? 'within' : 'OVER'} the 1 s budget`,
    );
    process.stdout.write(`${lines[lines.length - 1]}\n`);
  }
  await browser.close();
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record'))
    recordSection('dashboard', 'npm run bench:dashboard', measureMachine(), lines);
} finally {
  reporter?.kill('SIGTERM');
  await nats.stop();
  rmSync(scratch, { recursive: true, force: true });
}
