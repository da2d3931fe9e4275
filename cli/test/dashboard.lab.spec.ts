/**
 * The dashboard (/ui) in a real browser, Debian's Chromium through playwright-core, against
 * the reporter of a real lab run: the demo's four services verifying recipe 07, then the
 * and-as-or fault. It proves what a person relies on: no data without a token, a tenant's
 * token sees only its namespaces, and after the fault the regression is there, down to
 * its case's nmap evidence.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { exampleScenarioDirs } from '#lumen/scenario';
import { TEST_LAB_ROOT, launchChromium, repositoryRoot, screenshotPath } from '#lumen/testing';
import { RECIPE_07, servicesAndFault } from '../src/commands/demo.js';
import type { CaseReport } from '../src/pipeline/report.js';

const ADMIN = 'dashboard-admin-token-0123456789abcdef';
const OPERATIONS = 'dashboard-operations-token-0123456789ab';

let browser: Browser;
let nats: PrivateNatsServer;
const scratch = mkdtempSync(join(tmpdir(), 'lumen-dashboard-'));

async function signedIn(url: string, token: string, hash = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${url}/ui/${hash}`);
  await page.fill('input[name="token"]', token);
  await page.click('button[type="submit"]');
  return page;
}

async function shoot(page: Page, name: string): Promise<void> {
  const path = screenshotPath(name);
  if (path) await page.screenshot({ path });
}

const text = async (page: Page, selector: string): Promise<string> =>
  (await page.locator(selector).first().innerText()).trim();

beforeAll(async () => {
  browser = await launchChromium();
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
});

afterAll(async () => {
  await browser.close();
  await nats.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the dashboard, against a real lab run', () => {
  let reporterUrl = '';
  let regressions: readonly CaseReport[] = [];
  const checks: string[] = [];

  beforeAll(async () => {
    const output: string[] = [];
    await servicesAndFault(
      {
        io: { stdout: (t) => output.push(t), stderr: (t) => output.push(t) },
        labRoot: TEST_LAB_ROOT,
        natsUrl: nats.url,
        scratch,
        sweepMs: 10_000,
        // cli/test/demo.lab.spec.ts may run its lab "demo" beside this one.
        labName: 'dashboard',
      },
      join(exampleScenarioDirs(repositoryRoot).recipes, RECIPE_07),
      {
        apiTokens: [
          'tokens:',
          `  - { name: admin, token: ${ADMIN} }`,
          `  - { name: operations, token: ${OPERATIONS}, namespaces: [operations] }`,
          '',
        ].join('\n'),
        // The browser checks run while the services do: the lab is gone afterwards.
        afterFirstVerdicts: async (url) => {
          reporterUrl = url;
          const page = await signedIn(url, ADMIN);
          await page.waitForSelector('[data-kind="regressions"] b');
          checks.push(
            `before the fault: ${await text(page, '[data-kind="fail"] b')} fail, ${await text(page, '[data-kind="regressions"] b')} firing`,
          );
          await page.close();
        },
        afterRegressions: async (url, found) => {
          regressions = found;
          await verifyAfterFault(url, found, checks);
        },
      },
    );
    if (checks.length < 2) throw new Error(`the run ended early:\n${output.join('')}`);
  }, 420_000);

  it('showed no failure and no regression before the fault', () => {
    expect(checks[0]).toBe('before the fault: 0 fail, 0 firing');
    expect(reporterUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('found the fault’s regressions, and checked every view against them', () => {
    expect(regressions.length).toBeGreaterThan(0);
    expect(checks.slice(1)).toEqual([
      'no token: sign-in, no data',
      'bad token: refused',
      `overview: ${regressions.length} fail, ${regressions.length} firing`,
      'case: fail, nmap evidence and trace id',
      'matrix: the failing pair leads to the case',
      'policy: its regressions and rules',
      'tenant: only its namespaces',
    ]);
  });
});

async function verifyAfterFault(
  url: string,
  regressions: readonly CaseReport[],
  checks: string[],
): Promise<void> {
  const ids = regressions.map((r) => r.id).sort();
  // Without a token: the sign-in form, and the API gives nothing.
  const anonymous = await browser.newPage();
  await anonymous.goto(`${url}/ui/`);
  await anonymous.waitForSelector('input[name="token"]');
  const unauthorised = await anonymous.evaluate<number>(
    'fetch("/api/v1/summary").then((r) => r.status)',
  );
  expect(unauthorised).toBe(401);
  expect(await anonymous.locator('[data-kind]').count()).toBe(0);
  await shoot(anonymous, 'dashboard-sign-in');
  checks.push('no token: sign-in, no data');
  await anonymous.fill('input[name="token"]', 'not-a-token-of-this-reporter-0123456789');
  await anonymous.click('button[type="submit"]');
  await anonymous.waitForSelector('.refused');
  expect(await text(anonymous, '.refused')).toContain('a valid bearer token is required');
  await anonymous.close();
  checks.push('bad token: refused');

  // The admin's overview: the regressions, each linking to its case.
  const page = await signedIn(url, ADMIN);
  await page.waitForSelector('table.regressions');
  const overview = `overview: ${await text(page, '[data-kind="fail"] b')} fail, ${await text(page, '[data-kind="regressions"] b')} firing`;
  const listed = await Promise.all(
    (await page.locator('table.regressions a.case-link').all()).map((a) => a.innerText()),
  );
  expect(listed.sort()).toEqual(ids);
  await shoot(page, 'dashboard-overview');
  checks.push(overview);

  // A regression's case: the verdict, every attempt with nmap's evidence and a trace id.
  const regression = regressions[0]!;
  await page.click(`table.regressions a.case-link:text("${regression.id}")`);
  await page.waitForSelector('table.attempts tr.attempt');
  expect(await text(page, '.verdict .badge')).toBe('fail');
  const attempt = await text(page, 'table.attempts tr.attempt');
  expect(attempt).toContain('reachable');
  expect(attempt).toMatch(/state open/);
  expect(attempt).toMatch(/[0-9a-f]{32}/);
  expect(regression.evidence).toContain('open');
  expect(await text(page, 'table.explanation')).toContain('default/web-allow-ops-monitoring');
  await shoot(page, 'dashboard-case');
  checks.push('case: fail, nmap evidence and trace id');

  // The matrix: the failing pair is listed, its cell leads to its classes and the case.
  await page.goto(`${url}/ui/#/matrix`);
  await page.waitForSelector('.matrix-canvas');
  await shoot(page, 'dashboard-matrix');
  const pair = `${regression.from.namespace} → ${regression.to.namespace}`;
  await page.click(`table.attention a.pair-link:text("${pair}")`);
  await page.waitForSelector('table.class-matrix');
  await page.click('table.class-matrix td[data-outcome="fail"] button');
  const cases = await Promise.all(
    (await page.locator('table.cases a.case-link').all()).map((a) => a.innerText()),
  );
  expect(cases.some((c) => ids.includes(c))).toBe(true);
  await shoot(page, 'dashboard-pair');
  checks.push('matrix: the failing pair leads to the case');

  // The policy: its regressions firing and its rules with their cases.
  await page.goto(`${url}/ui/#/policy/default/web-allow-ops-monitoring`);
  await page.waitForSelector('table.rules');
  expect(await text(page, '.policy')).toContain(`Regressions firing: ${regressions.length}`);
  expect(await page.locator('table.rules tr[data-rule="ingress[0]"]').count()).toBe(1);
  await shoot(page, 'dashboard-policy');
  checks.push('policy: its regressions and rules');
  await page.close();

  // A tenant: only the pairs with its namespace at one end, the other end's classes hidden.
  const tenant = await signedIn(url, OPERATIONS, '#/matrix');
  await tenant.waitForSelector('.matrix-canvas');
  expect(await tenant.locator('.scope').getAttribute('data-scope')).toBe('operations');
  const namespaces = Number(
    await tenant.locator('.matrix-scroller').getAttribute('data-namespaces'),
  );
  expect(namespaces).toBe(2);
  await tenant.goto(`${url}/ui/#/matrix/operations/default`);
  await tenant.waitForSelector('table.class-matrix');
  expect(await text(tenant, 'table.class-matrix thead')).toContain('(not shown to this token)');
  await tenant.goto(`${url}/ui/#/matrix/default/default`);
  await tenant.waitForSelector('.error');
  expect(await text(tenant, '.error')).toContain('no cases of this namespace pair');
  await tenant.goto(`${url}/ui/#/`);
  await tenant.waitForSelector('[data-kind="cases"] b');
  const tenantCases = Number(await text(tenant, '[data-kind="cases"] b'));
  expect(tenantCases).toBeGreaterThan(0);
  await tenant.close();
  checks.push('tenant: only its namespaces');
}
