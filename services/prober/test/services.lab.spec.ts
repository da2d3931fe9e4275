/**
 * The four services as separate processes (the Helm chart's shape) against a lab, a private
 * nats-server and SQLite: each becomes ready, and together they judge every case.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabNames } from '#lumen/lab';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { CaseStore } from '#lumen/store';
import {
  TEST_LAB_ROOT,
  conformanceScenarioFiles,
  eventually,
  repositoryRoot,
} from '#lumen/testing';
import { upLab, type TestLab } from '../../../libs/lab/test/support.js';

const recipe07 = conformanceScenarioFiles().find((f) =>
  f.includes('/07-allow-traffic-from-some-pods'),
)!;
let nats: PrivateNatsServer;
let lab: TestLab;
let scratch: string;
const children: ChildProcess[] = [];

function service(name: string, port: number, env: Record<string, string>): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(repositoryRoot, 'dist', 'services', name, 'src', 'main.js')],
    {
      env: { PATH: process.env.PATH ?? '', NATS_URL: nats.url, HTTP_PORT: String(port), ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  return child;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'lumen-services-'));
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
  lab = await upLab('svc-all', recipe07);
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(
    children.map((c) =>
      c.exitCode === null
        ? new Promise<void>((resolve) =>
            c.once('exit', () => {
              resolve();
            }),
          )
        : Promise.resolve(),
    ),
  );
  await lab.down();
  await nats.stop();
});

describe('the four services', () => {
  it('start as separate processes, become ready, and judge every case into the store', async () => {
    const database = join(scratch, 'lumen.db');
    const kubeconfig = new LabNames('svc-all', TEST_LAB_ROOT).kubeconfig;
    const fast = { SETTLE_WINDOW_MS: '1000', BACKOFF_MS: '300' };
    service('reporter', 18184, { SQLITE_PATH: database, ...fast });
    service('scheduler', 18182, { HEARTBEAT_TTL_MS: '3000' });
    for (const [i, node] of ['lab-node-1', 'lab-node-2'].entries())
      service('prober', 18185 + i, {
        NODE_NAME: node,
        POD_CIDRS: '10.244.0.0/16',
        HEARTBEAT_TTL_MS: '3000',
      });
    service('planner', 18181, { KUBECONFIG: kubeconfig, DEBOUNCE_MS: '200' });
    for (const port of [18181, 18182, 18184, 18185, 18186])
      await eventually(
        async () =>
          (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
        `the service on port ${port} to be ready`,
        30_000,
        200,
      );
    const store = await CaseStore.open({ kind: 'sqlite', path: database });
    try {
      const outcomes = await eventually(
        async () => {
          const stored = await store.outcomes();
          return stored.length === 4 ? stored : undefined;
        },
        'four judged cases',
        60_000,
        200,
      );
      expect(outcomes.map((o) => o.outcome)).toEqual(['pass', 'pass', 'pass', 'pass']);
      const [first] = outcomes;
      const attempts = await store.attempts(first!.caseId, first!.round);
      expect(attempts[0]?.traceId).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await store.close();
    }
  });
});
