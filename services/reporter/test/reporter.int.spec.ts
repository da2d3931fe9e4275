/**
 * The reporter as a process, on a private nats-server and SQLite, with real HTTP receivers:
 * regressions alert once per case, grouped per policy, resolved when they pass; the outbox
 * keeps an alert while its receiver is down and across a reporter restart; the API answers
 * each tenant only about its namespaces; /metrics has the reporter's series.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import {
  API_ROUTES,
  DEAD_LETTER_SUBJECT,
  DeadLetterContract,
  ProbeBatchContract,
  ProbeResultContract,
  probeBatchSubject,
  probeResultSubject,
  POLICY_INVENTORY_SUBJECT,
  MATRIX_COVERAGE_SUBJECT,
  MatrixCoverageContract,
  PolicyInventoryContract,
  TEST_CASE_SUBJECT,
  TestCaseContract,
  type ApiRoute,
  type TestCase,
  durableServiceConsumers,
  API_MAX_QUERY_PARAMETERS,
  API_MAX_URL_BYTES,
  API_PAGE_LIMIT,
} from '#lumen/contracts';
import { verifySignature } from '#lumen/alerting';
import { MessageBus, startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { freePort } from '#lumen/host';
import { batchAnsweredBy, dispatchAndAnswer, eventually, spawnService } from '#lumen/testing';

const SECRET = 'webhook-secret-0123456789';
const TOKENS = {
  admin: 'admin-token-0123456789abcdef',
  a: 'tenant-a-token-0123456789abcdef',
  c: 'tenant-c-token-0123456789abcdef',
};

interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A local HTTP receiver that can be stopped and started again on its port. */
class Receiver {
  readonly requests: Received[] = [];
  private server: Server | undefined;
  constructor(readonly port: number) {}
  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  bodies<T>(path: string): T[] {
    return this.requests.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as T);
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'lumen-reporter-'));
let nats: PrivateNatsServer;
let bus: MessageBus;
let receiver: Receiver;
let webhook: Receiver;
let reporter: ChildProcess | undefined;
let apiPort: number;

async function startReporter(): Promise<void> {
  const child = spawnService(
    'reporter',
    {
      NATS_URL: nats.url,
      HTTP_PORT: String(apiPort),
      SQLITE_PATH: join(scratch, 'lumen.db'),
      SETTLE_WINDOW_MS: '0',
      MAX_ATTEMPTS: '1',
      CLUSTER_NAME: 'lab',
      PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
      API_TOKENS_FILE: join(scratch, 'tokens.yaml'),
      ALERT_RECEIVERS_FILE: join(scratch, 'receivers.yaml'),
      // Wide enough that a round's verdicts, judged one by one, gather even on a busy
      // machine; the interval lets the resolved message follow the firing one quickly.
      ALERT_GROUP_WAIT_MS: '2000',
      ALERT_GROUP_INTERVAL_MS: '2000',
      ALERT_RETRY_BASE_MS: '200',
      ALERT_RETRY_MAX_MS: '1000',
      ALERT_DISPATCH_INTERVAL_MS: '100',
      ALERTMANAGER_RESEND_MS: '3600000',
    },
    join(scratch, 'reporter.log'),
  );
  reporter = child;
  await eventually(
    () =>
      fetch(`http://127.0.0.1:${apiPort}/readyz`)
        .then((r) => r.ok)
        .catch(() => false),
    'the reporter to be ready',
    30_000,
  );
}

async function stopReporter(): Promise<void> {
  const child = reporter;
  reporter = undefined;
  if (!child || child.exitCode !== null) return;
  const closed = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGTERM');
  await closed;
}

const id = (n: number, tenant: string): string =>
  `${tenant === 'tenant-a' ? 'a' : 'c'}${n.toString(16).padStart(15, '0')}`;

function testCase(
  caseId: string,
  tenant: string,
  generation: number,
  expected: 'allow' | 'deny',
): TestCase {
  const side = {
    isolated: true,
    policies: [`${tenant}/web`],
    allowedBy: [],
    allowed: expected === 'allow',
  };
  return {
    caseId,
    generation,
    reason: expected === 'allow' ? 'must-allow' : 'near-miss-namespace',
    source: { namespace: tenant, labels: { app: 'client' }, classKey: `${tenant}/client` },
    destination: { namespace: tenant, labels: { app: 'web' }, classKey: `${tenant}/web` },
    port: 80,
    protocol: 'TCP',
    expected,
    explanation: { egress: { ...side, isolated: false, policies: [] }, ingress: side },
    rule: { policy: `${tenant}/web`, direction: 'ingress', index: 0 },
    changedAt: new Date(Date.now() - 60_000).toISOString(),
    sources: [],
    destinations: [],
    listenerKnown: true,
    syntheticSource: false,
    loopback: false,
  };
}

/** Publishes a round of cases and one probe result for each: reachable or blocked. */
async function round(
  cases: readonly {
    caseId: string;
    tenant: string;
    expected: 'allow' | 'deny';
    reachable: boolean;
  }[],
  generation: number,
): Promise<void> {
  for (const c of cases)
    await bus.publish(
      TEST_CASE_SUBJECT,
      TestCaseContract,
      testCase(c.caseId, c.tenant, generation, c.expected),
      {
        msgId: `${c.caseId}/${generation}`,
      },
    );
  // Each result answers a batch dispatched to its node first, as the reporter requires.
  for (const c of cases)
    await dispatchAndAnswer(bus, {
      batchId: `b-${c.caseId}-${generation}`,
      node: 'node-1',
      attempt: 1,
      source: { namespace: c.tenant, name: 'client-0' },
      observations: [
        {
          caseId: c.caseId,
          round: generation,
          destination: { namespace: c.tenant, name: 'web-0' },
          ip: '10.0.0.2',
          port: 80,
          protocol: 'TCP',
          reachability: c.reachable ? 'reachable' : 'blocked',
          basis: c.reachable ? 'port open' : 'no answer',
          evidence: c.reachable
            ? { state: 'open', reason: 'syn-ack' }
            : { state: 'filtered', reason: 'no-response' },
        },
      ],
      startedAt: new Date().toISOString(),
      durationMs: 5,
    });
}

const api = async (path: string, token?: string): Promise<{ status: number; body: string }> => {
  const response = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: response.status, body: await response.text() };
};

// Tenant a: three must-deny cases of one policy, one must-allow; tenant c: one must-deny.
const cases = [
  ...[1, 2, 3].map((n) => ({
    caseId: id(n, 'tenant-a'),
    tenant: 'tenant-a',
    expected: 'deny' as const,
  })),
  { caseId: id(4, 'tenant-a'), tenant: 'tenant-a', expected: 'allow' as const },
  { caseId: id(1, 'tenant-c'), tenant: 'tenant-c', expected: 'deny' as const },
];
const enforced = cases.map((c) => ({ ...c, reachable: c.expected === 'allow' }));
const broken = cases.map((c) => ({ ...c, reachable: c.expected === 'deny' }));

beforeAll(async () => {
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
  bus = await MessageBus.connect({ url: nats.url, service: 'test' });
  // The reporter binds to its consumers, which the scheduler makes; this bus plays it.
  await bus.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
  receiver = new Receiver(await freePort());
  webhook = new Receiver(await freePort());
  apiPort = await freePort();
  await receiver.start();
  const local = `http://127.0.0.1:${receiver.port}`;
  writeFileSync(
    join(scratch, 'receivers.yaml'),
    [
      'receivers:',
      `  - { name: security, type: webhook, url: "http://127.0.0.1:${webhook.port}/hook", secret: ${SECRET}, severities: [critical] }`,
      `  - { name: team-a, type: slack, url: "${local}/slack", namespaces: [tenant-a] }`,
      `  - { name: am, type: alertmanager, url: "${local}/am" }`,
      `  - { name: teams, type: teams, url: "${local}/teams", severities: [warning] }`,
    ].join('\n'),
  );
  writeFileSync(
    join(scratch, 'tokens.yaml'),
    [
      'tokens:',
      `  - { name: admin, token: ${TOKENS.admin} }`,
      `  - { name: team-a, token: ${TOKENS.a}, namespaces: [tenant-a] }`,
      `  - { name: team-c, token: ${TOKENS.c}, namespaces: [tenant-c] }`,
    ].join('\n'),
  );
  await startReporter();
});

afterAll(async () => {
  await stopReporter();
  await bus.close();
  await receiver.stop();
  await webhook.stop();
  await nats.stop();
});

describe('alerts', () => {
  it('fire once per regression, one message per policy, and wait in the outbox for a receiver that is down, across a restart', async () => {
    await bus.publish(POLICY_INVENTORY_SUBJECT, PolicyInventoryContract, {
      generation: 1,
      part: 0,
      parts: 1,
      policies: [
        { policy: 'tenant-a/web', ingress: [0, 1], egress: [] },
        { policy: 'tenant-c/web', ingress: [0], egress: [] },
      ],
    });
    await bus.publish(MATRIX_COVERAGE_SUBJECT, MatrixCoverageContract, {
      generation: 1,
      mode: 'budget',
      cells: 8,
      obligations: 5,
      obligationCells: 5,
      rotated: 0,
      probeBudget: 100,
      sweepsPerRotation: 2,
      notGeneratedCount: 1,
      notGenerated: [
        {
          reason: 'near-miss-pods',
          rule: { policy: 'tenant-c/web', direction: 'ingress', index: 0 },
          why: 'no running source in a matching namespace without the peer’s pod labels',
        },
      ],
    });
    await round(enforced, 1);
    await eventually(
      async () =>
        (
          JSON.parse((await api('/api/v1/summary', TOKENS.admin)).body) as {
            byOutcome: Record<string, number>;
          }
        ).byOutcome['pass'] === 5,
      'five passing cases',
    );
    // The matrix: 5 of its 8 cells verified; a tenant sees its own cells and gaps only.
    const matrixOf = async (token: string) =>
      (JSON.parse((await api('/api/v1/coverage', token)).body) as { matrix: unknown }).matrix;
    expect(await matrixOf(TOKENS.admin)).toMatchObject({
      cells: 8,
      cellsVerified: 5,
      sweepsPerRotation: 2,
      notGenerated: [expect.objectContaining({ reason: 'near-miss-pods' })],
    });
    expect(await matrixOf(TOKENS.a)).toMatchObject({ cells: null, notGenerated: [] });
    expect(receiver.requests).toEqual([]); // passing is no news

    // The webhook receiver is down (never started) when the cases regress.
    await round(broken, 2);
    const slack = await eventually(
      () =>
        receiver.bodies<{ text: string; blocks: object[] }>('/slack').length === 1 &&
        receiver.bodies<{ text: string }>('/slack'),
      'the Slack message',
    );
    // One message for tenant-a's policy: 4 alerts (3 critical must-deny, 1 warning must-allow).
    expect(slack[0]?.text).toContain('tenant-a/web: 4 firing');
    await eventually(
      () => receiver.bodies('/am/api/v2/alerts').length === 2,
      'two Alertmanager posts',
    );
    const am =
      receiver.bodies<{ labels: Record<string, string>; annotations: Record<string, string> }[]>(
        '/am/api/v2/alerts',
      );
    expect(am.map((group) => group.length).sort()).toEqual([1, 4]);
    expect(
      am
        .flat()
        .map((a) => a.labels['policy'])
        .sort(),
    ).toEqual([...Array<string>(4).fill('tenant-a/web'), 'tenant-c/web']);
    const teams = await eventually(
      () =>
        receiver.bodies<{ attachments: { content: { body: { text?: string }[] } }[] }>('/teams')
          .length === 1 &&
        receiver.bodies<{ attachments: { content: { body: { text?: string }[] } }[] }>('/teams'),
      'the Teams card',
    );
    expect(JSON.stringify(teams[0])).toContain('blocked traffic it should allow'); // the one warning

    const metrics = (await api('/metrics')).body;
    expect(metrics).toMatch(/^lumen_regressions_total\{severity="critical"\} 4$/m);
    expect(metrics).toMatch(/^lumen_regressions_total\{severity="warning"\} 1$/m);
    expect(metrics).toMatch(/^lumen_regressions_firing 5$/m);
    expect(metrics).toMatch(/^lumen_cases\{outcome="fail"\} 5$/m);
    expect(metrics).toMatch(/^lumen_alert_outbox_pending\{receiver="security"\} 4$/m);

    // Restart the reporter while the webhook is still down: the alerts stay in the outbox.
    await stopReporter();
    await startReporter();
    await webhook.start();
    const delivered = await eventually(
      () => webhook.requests.length >= 2 && webhook.requests,
      'the webhook deliveries',
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(webhook.requests).toHaveLength(2); // once per policy group, not again
    const events = delivered.map((r) => {
      expect(
        verifySignature(SECRET, r.body, String(r.headers['lumen-signature']), new Date()),
      ).toBe(true);
      expect(r.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
      return JSON.parse(r.body) as {
        specversion: string;
        subject: string;
        data: { alerts: Record<string, unknown>[] };
      };
    });
    expect(events.map((e) => [e.specversion, e.subject, e.data.alerts.length]).sort()).toEqual([
      ['1.0', 'tenant-a/web', 3],
      ['1.0', 'tenant-c/web', 1],
    ]);
    const alert = events.find((e) => e.subject === 'tenant-c/web')!.data.alerts[0]!;
    expect(alert).toMatchObject({
      status: 'firing',
      severity: 'critical',
      policy: 'tenant-c/web',
      rule: { direction: 'ingress', index: 0 },
      source: { namespace: 'tenant-c', labels: { app: 'client' }, pod: 'tenant-c/client-0' },
      destination: { namespace: 'tenant-c', labels: { app: 'web' }, pod: 'tenant-c/web-0' },
      port: 80,
      protocol: 'TCP',
      expected: 'deny',
      observed: 'reachable',
      evidence: 'reachable: port open nmap state open (syn-ack)',
      apiUrl: `http://127.0.0.1:${apiPort}/api/v1/cases/${id(1, 'tenant-c')}`,
    });
    expect(alert['traceId']).toMatch(/^[0-9a-f]{32}$/);

    // The same broken result seen again in a later round: no new alert.
    await round(broken, 3);
    await eventually(
      async () =>
        (
          JSON.parse((await api(`/api/v1/cases/${id(1, 'tenant-c')}`, TOKENS.admin)).body) as {
            outcome: { round: number };
          }
        ).outcome.round === 3,
      'round 3 judged',
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(receiver.bodies('/slack')).toHaveLength(1);

    // Enforced again: one resolved per case, grouped the same way.
    await round(enforced, 4);
    const resolved = await eventually(
      () =>
        receiver.bodies<{ text: string }>('/slack').length === 2 &&
        receiver.bodies<{ text: string }>('/slack')[1],
      'the resolved Slack message',
    );
    expect(resolved.text).toContain('tenant-a/web: 4 resolved');
    await eventually(() => webhook.requests.length === 4, 'resolved webhook deliveries');
  });

  it('are counted in /metrics with bounded labels', async () => {
    const text = (await api('/metrics')).body;
    expect(text).toMatch(/^lumen_cases\{outcome="pass"\} 5$/m);
    expect(text).toMatch(/^lumen_matrix_cells_verified 5$/m);
    expect(text).toMatch(
      /^lumen_policy_rule_coverage_ratio\{policy_namespace="tenant-a",policy="web"\} 0\.5$/m,
    );
    expect(text).toMatch(
      /^lumen_alert_deliveries_total\{receiver="security",result="delivered"\} 4$/m,
    );
    const labels = new Set(
      [...text.matchAll(/^lumen_\w+\{([^}]*)\}/gm)].flatMap((m) =>
        m[1]!.split(',').map((l) => l.split('=')[0]),
      ),
    );
    expect([...labels].sort()).toEqual(
      ['le', 'outcome', 'policy', 'policy_namespace', 'receiver', 'result', 'severity']
        .filter((l) => labels.has(l))
        .sort(),
    );
    expect(labels.has('case_id') || labels.has('pod') || labels.has('source')).toBe(false);
    // Prometheus gives every series its target's namespace: a label of that name would be
    // renamed exported_namespace.
    expect(labels.has('namespace')).toBe(false);
  });
});

describe('API', () => {
  const foreign = ['tenant-c', id(1, 'tenant-c')];

  it('needs a valid bearer token', async () => {
    expect((await api('/api/v1/summary')).status).toBe(401);
    expect((await api('/api/v1/summary', 'not-a-token-at-all-0123456789')).status).toBe(401);
    expect((await api('/api/v1/summary', TOKENS.admin)).status).toBe(200);
  });

  it('bounds every request, with a clear 4xx for each limit', async () => {
    const asAdmin = (path: string) => api(path, TOKENS.admin);
    const expectProblem = async (
      answer: Promise<{ status: number; body: string }>,
      status: number,
      message: RegExp,
    ) => {
      const { status: got, body } = await answer;
      expect({ got, body }).toEqual({ got: status, body: expect.stringMatching(message) });
    };
    // Page size.
    await expectProblem(
      asAdmin(`/api/v1/outcomes?limit=${API_PAGE_LIMIT + 1}`),
      400,
      new RegExp(`limit: .*${API_PAGE_LIMIT}`),
    );
    // Query complexity: how many parameters, each once, plain values.
    const many = Array.from({ length: API_MAX_QUERY_PARAMETERS + 1 }, (_, i) => `p${i}=x`);
    await expectProblem(
      asAdmin(`/api/v1/outcomes?${many.join('&')}`),
      400,
      /query: 11 parameters; at most 10 are accepted/,
    );
    await expectProblem(
      asAdmin('/api/v1/outcomes?namespace=tenant-a&namespace=tenant-c'),
      400,
      /namespace: given 2 times; give it once/,
    );
    // Bracketed names are not read as structures: they are names no route knows.
    await expectProblem(
      asAdmin('/api/v1/outcomes?namespace[x]=tenant-a'),
      400,
      /Unrecognized key: \\"namespace\[x\]\\"/,
    );
    // Request size: the URL, a body, the headers.
    await expectProblem(
      asAdmin(`/api/v1/outcomes?cursor=${'a'.repeat(API_MAX_URL_BYTES)}`),
      414,
      new RegExp(`at most ${API_MAX_URL_BYTES} are accepted`),
    );
    const raw = (headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const call = request(
          {
            host: '127.0.0.1',
            port: apiPort,
            path: '/api/v1/summary',
            method: 'GET',
            headers: { authorization: `Bearer ${TOKENS.admin}`, ...headers },
          },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => (text += chunk.toString()));
            response.on('end', () => {
              resolve({ status: response.statusCode ?? 0, body: text });
            });
          },
        );
        call.on('error', reject);
        call.end(body);
      });
    const body = JSON.stringify({ big: 'x'.repeat(10_000) });
    await expectProblem(
      raw(
        { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        body,
      ),
      413,
      /the API takes no request body/,
    );
    expect((await raw({ 'x-padding': 'x'.repeat(20_000) })).status).toBe(431);
    // Within every bound, the same route answers.
    expect((await asAdmin('/api/v1/outcomes?limit=3&namespace=tenant-a')).status).toBe(200);
  });

  it('serves a valid OpenAPI document that lists every route', async () => {
    const document = JSON.parse((await api('/api/v1/openapi.json')).body) as {
      paths: Record<string, unknown>;
    };
    const result = await new Validator().validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(Object.keys(document.paths).sort()).toEqual([
      '/api/v1/cases/{caseId}',
      '/api/v1/cases/{caseId}/attempts',
      '/api/v1/coverage',
      '/api/v1/latency',
      '/api/v1/matrix',
      '/api/v1/matrix/{source}/{destination}',
      '/api/v1/openapi.json',
      '/api/v1/outcomes',
      '/api/v1/regressions',
      '/api/v1/summary',
    ]);
  });

  it('answers every route in the shape its OpenAPI document gives', async () => {
    const answers: [ApiRoute, string][] = [
      [API_ROUTES.summary, '/api/v1/summary'],
      [API_ROUTES.outcomes, '/api/v1/outcomes?limit=3'],
      [API_ROUTES.caseDetail, `/api/v1/cases/${id(1, 'tenant-a')}`],
      [API_ROUTES.attempts, `/api/v1/cases/${id(1, 'tenant-a')}/attempts`],
      [API_ROUTES.coverage, '/api/v1/coverage'],
      [API_ROUTES.latency, '/api/v1/latency'],
      [API_ROUTES.matrix, '/api/v1/matrix'],
      [API_ROUTES.matrixPair, '/api/v1/matrix/tenant-a/tenant-a'],
      [API_ROUTES.regressions, '/api/v1/regressions'],
    ];
    for (const [route, path] of answers) {
      const { status, body } = await api(path, TOKENS.admin);
      expect([path, status]).toEqual([path, 200]);
      const parsed = route.answer.safeParse(JSON.parse(body));
      expect([path, parsed.error?.issues ?? []]).toEqual([path, []]);
    }
  });

  it('shows a case with its explanation, every attempt with evidence and trace id, and its history', async () => {
    const detail = JSON.parse(
      (await api(`/api/v1/cases/${id(1, 'tenant-a')}?limit=2`, TOKENS.a)).body,
    ) as {
      case: { explanation: object; expected: string };
      history: { outcome: string }[];
      attempts: { items: { evidence: object; traceId: string }[]; nextCursor: string };
    };
    expect(detail.case).toMatchObject({
      expected: 'deny',
      explanation: { ingress: { policies: ['tenant-a/web'] } },
    });
    expect(detail.history.map((h) => h.outcome)).toEqual(['pass', 'fail', 'pass']);
    expect(detail.attempts.items).toHaveLength(2);
    expect(detail.attempts.items[0]).toMatchObject({ evidence: { state: 'filtered' } });
    expect(detail.attempts.items[0]?.traceId).toMatch(/^[0-9a-f]{32}$/);
    const rest = JSON.parse(
      (
        await api(
          `/api/v1/cases/${id(1, 'tenant-a')}/attempts?cursor=${detail.attempts.nextCursor}`,
          TOKENS.a,
        )
      ).body,
    ) as { items: object[]; nextCursor: null };
    expect(rest.items).toHaveLength(2);
    expect(rest.nextCursor).toBeNull();
  });

  it.each([
    '/api/v1/summary',
    '/api/v1/outcomes',
    '/api/v1/outcomes?namespace=tenant-c',
    '/api/v1/outcomes?policy=tenant-c/web',
    '/api/v1/outcomes?outcome=pass',
    '/api/v1/outcomes?since=2026-01-01T00:00:00Z',
    '/api/v1/coverage',
    '/api/v1/coverage?policy=tenant-c/web',
    '/api/v1/latency',
    '/api/v1/latency?namespace=tenant-c',
    `/api/v1/cases/${id(1, 'tenant-c')}`,
    `/api/v1/cases/${id(1, 'tenant-c')}/attempts`,
    '/api/v1/matrix',
    '/api/v1/regressions',
    '/api/v1/regressions?policy=tenant-c/web',
  ])('%s leaks nothing of tenant-c to tenant-a', async (path) => {
    const { status, body } = await api(path, TOKENS.a);
    for (const secret of foreign) expect(body).not.toContain(secret);
    if (path.includes('/cases/')) {
      // Exactly what a case that does not exist gets.
      const missing = await api(path.replace(id(1, 'tenant-c'), 'ffffffffffffffff'), TOKENS.a);
      expect({ status, body }).toEqual({
        status: 404,
        body: missing.body.replace('ffffffffffffffff', id(1, 'tenant-c')),
      });
    } else expect(status).toBe(200);
  });

  it('answers a namespace pair outside the scope exactly as a pair with no cases', async () => {
    const hidden = await api('/api/v1/matrix/tenant-c/tenant-c', TOKENS.a);
    const missing = await api('/api/v1/matrix/tenant-x/tenant-x', TOKENS.a);
    expect(hidden).toEqual({ status: 404, body: missing.body });
    expect(hidden.body).toContain('no cases of this namespace pair');
    expect((await api('/api/v1/matrix/tenant-c/tenant-c', TOKENS.admin)).status).toBe(200);
    const matrix = JSON.parse((await api('/api/v1/matrix', TOKENS.c)).body) as {
      namespaces: string[];
    };
    expect(matrix.namespaces).toEqual(['tenant-c']);
  });

  it('serves the dashboard at /ui: static files with a strict CSP, holding no data', async () => {
    const redirect = await fetch(`http://127.0.0.1:${apiPort}/ui`, { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([308, '/ui/']);
    const page = await fetch(`http://127.0.0.1:${apiPort}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await page.text();
    // Every script and stylesheet is the reporter's own: nothing from a CDN.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const asset of assets) {
      expect(asset).toMatch(/^\/ui\/assets\//);
      const file = await fetch(`http://127.0.0.1:${apiPort}${asset}`);
      expect([asset, file.status]).toEqual([asset, 200]);
      expect(file.headers.get('cache-control')).toContain('immutable');
      expect(await file.text()).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\//i);
    }
    for (const path of ['/ui/../api/v1/summary', '/ui/%2e%2e/package.json', '/ui/nothing.js']) {
      const missing = await fetch(`http://127.0.0.1:${apiPort}${path}`);
      expect([path, missing.status === 404 || missing.status === 401]).toEqual([path, true]);
      expect(await missing.text()).not.toContain('"cases"');
    }
  });

  it('gives each tenant its own cases, and the admin all of them', async () => {
    const outcomes = async (token: string): Promise<string[]> =>
      (
        JSON.parse((await api('/api/v1/outcomes', token)).body) as { items: { caseId: string }[] }
      ).items.map((i) => i.caseId);
    expect(await outcomes(TOKENS.a)).toEqual([1, 2, 3, 4].map((n) => id(n, 'tenant-a')));
    expect(await outcomes(TOKENS.c)).toEqual([id(1, 'tenant-c')]);
    expect(await outcomes(TOKENS.admin)).toHaveLength(5);
    const summary = JSON.parse((await api('/api/v1/summary', TOKENS.c)).body) as {
      cases: number;
      scope: string[];
    };
    expect(summary).toMatchObject({ cases: 1, scope: ['tenant-c'] });
    const coverage = JSON.parse((await api('/api/v1/coverage', TOKENS.a)).body) as {
      policies: { policy: string; rules: number; covered: number }[];
    };
    expect(coverage.policies).toEqual([
      expect.objectContaining({ policy: 'tenant-a/web', rules: 2, covered: 1 }),
    ]);
  });

  it.each([
    ['/api/v1/outcomes?outcome=maybe', 'outcome'],
    ['/api/v1/outcomes?limit=100000', 'limit'],
    ['/api/v1/outcomes?since=yesterday', 'since'],
    ['/api/v1/outcomes?cursor=Zm9v', 'cursor'],
    ['/api/v1/outcomes?namespace=Not_A_Namespace', 'namespace'],
    ['/api/v1/outcomes?sort=desc', 'sort'],
    ['/api/v1/cases/not-a-case', 'caseId'],
  ])('%s is a 400 that names %s', async (path, parameter) => {
    const { status, body } = await api(path, TOKENS.admin);
    expect(status).toBe(400);
    expect((JSON.parse(body) as { message: string }).message).toContain(parameter);
  });

  it('pages outcomes with a cursor, every case once', async () => {
    const seen: string[] = [];
    let cursor = '';
    do {
      const page = JSON.parse(
        (await api(`/api/v1/outcomes?limit=2${cursor ? `&cursor=${cursor}` : ''}`, TOKENS.admin))
          .body,
      ) as { items: { caseId: string }[]; nextCursor: string | null };
      seen.push(...page.items.map((i) => i.caseId));
      cursor = page.nextCursor ?? '';
    } while (cursor);
    expect(seen).toEqual([...cases.map((c) => c.caseId)].sort());
  });
});

describe('results', () => {
  it('judges only a result that answers a batch dispatched to its node, and dead-letters every forgery with why', async () => {
    const caseId = id(9, 'tenant-a');
    await bus.publish(TEST_CASE_SUBJECT, TestCaseContract, testCase(caseId, 'tenant-a', 1, 'deny'));
    const dead: { subject: string; reason: string }[] = [];
    const deadLetters = await bus.consume({
      contract: DeadLetterContract,
      durable: 'test-forgeries',
      filterSubject: DEAD_LETTER_SUBJECT,
      onlyNew: true,
      handle: (letter) => {
        if (letter.service === 'reporter') dead.push(letter);
        return Promise.resolve();
      },
    });
    // What a compromised prober on node-2 would send to make a deny look enforced... or
    // broken: "reachable" for a deny case.
    const forged = {
      batchId: 'forged-1',
      node: 'node-1',
      attempt: 1,
      source: { namespace: 'tenant-a', name: 'client-0' },
      observations: [
        {
          caseId,
          round: 1,
          destination: { namespace: 'tenant-a', name: 'web-0' },
          ip: '10.0.0.2',
          port: 80,
          protocol: 'TCP' as const,
          reachability: 'reachable' as const,
          basis: 'port open',
        },
      ],
      startedAt: new Date().toISOString(),
      durationMs: 5,
    };
    // 1. On another node's subject.
    await bus.publish(probeResultSubject('node-2'), ProbeResultContract, {
      ...forged,
      batchSequence: 1,
    });
    // 2. Naming a sequence that holds no batch.
    await bus.publish(probeResultSubject('node-1'), ProbeResultContract, {
      ...forged,
      batchSequence: 999_999,
    });
    // 3. Answering a batch that went to node-2, on node-1's subject.
    const elsewhere = await bus.publishSequenced(
      probeBatchSubject('node-2'),
      ProbeBatchContract,
      batchAnsweredBy({ ...forged, node: 'node-2' }),
    );
    await bus.publish(probeResultSubject('node-1'), ProbeResultContract, {
      ...forged,
      batchSequence: elsewhere,
    });
    await eventually(() => (dead.length >= 3 ? true : undefined), 'three dead letters');
    // Judged several at once: in any order.
    expect(dead.map((d) => [d.subject, d.reason]).sort()).toEqual(
      [
        [
          probeResultSubject('node-2'),
          "result for node node-1 arrived on lumen.v1.results.node-2, not on that node's subject",
        ],
        [
          probeResultSubject('node-1'),
          'no dispatched batch at sequence 999999 (never sent, or no longer held)',
        ],
        [probeResultSubject('node-1'), 'batch forged-1 was dispatched to node node-2, not node-1'],
      ].sort(),
    );
    // The genuine answer, blocked, is the only attempt the case has.
    await dispatchAndAnswer(bus, {
      ...forged,
      batchId: 'genuine-1',
      observations: [{ ...forged.observations[0]!, reachability: 'blocked', basis: 'no answer' }],
    });
    const detail = await eventually(async () => {
      const body = JSON.parse((await api(`/api/v1/cases/${caseId}`, TOKENS.admin)).body) as {
        history: { outcome: string }[];
        attempts: { items: { reachability: string }[] };
      };
      return body.history.length > 0 ? body : undefined;
    }, 'the case judged');
    expect(detail.history.map((h) => h.outcome)).toEqual(['pass']);
    expect(detail.attempts.items.map((a) => a.reachability)).toEqual(['blocked']);
    await deadLetters.stop();
  });
});

describe('tenant views', () => {
  // tenant-c's spy pod probes tenant-a's vault under tenant-a's policy: each tenant sees
  // the case (one end is its own), and of the other end only its namespace.
  const crossId = 'e000000000000001';
  const spy = {
    namespace: 'tenant-c',
    name: 'spy-0',
    uid: 'uid-spy',
    ip: '10.0.9.9',
    node: 'node-c',
  };
  const vault = {
    namespace: 'tenant-a',
    name: 'vault-0',
    uid: 'uid-vault',
    ip: '10.0.1.1',
    node: 'node-a',
  };
  const hiddenFrom: Record<'a' | 'c', string[]> = {
    // What tenant-a must not learn of tenant-c's end, and tenant-c of tenant-a's.
    a: ['spy', 'uid-spy', '10.0.9.9', 'node-c', '"command"', '10.0.7.7'],
    c: ['vault', 'uid-vault', '10.0.1.1', 'node-a', '"command"', '10.0.7.7'],
  };

  beforeAll(async () => {
    const side = { isolated: true, allowedBy: [], allowed: false };
    await bus.publish(TEST_CASE_SUBJECT, TestCaseContract, {
      caseId: crossId,
      generation: 1,
      reason: 'near-miss-namespace',
      source: { namespace: 'tenant-c', labels: { app: 'spy' }, classKey: 'tenant-c/spy' },
      destination: { namespace: 'tenant-a', labels: { app: 'vault' }, classKey: 'tenant-a/vault' },
      port: 8200,
      protocol: 'TCP',
      expected: 'deny',
      explanation: {
        egress: { ...side, isolated: true, policies: ['tenant-c/spy-egress'], allowed: true },
        ingress: { ...side, policies: ['tenant-a/vault'] },
      },
      rule: { policy: 'tenant-a/vault', direction: 'ingress', index: 0 },
      changedAt: new Date(Date.now() - 60_000).toISOString(),
      sources: [spy],
      destinations: [vault],
      listenerKnown: true,
      syntheticSource: false,
      loopback: false,
    });
    await dispatchAndAnswer(bus, {
      batchId: 'b-cross-1',
      node: 'node-c',
      attempt: 1,
      source: { namespace: spy.namespace, name: spy.name },
      // The batch scanned another tenant's pod too: the command line names it.
      command: ['nmap', '-sS', '-p', 'T:8200', '10.0.1.1', '10.0.7.7'],
      observations: [
        {
          caseId: crossId,
          round: 1,
          destination: { namespace: vault.namespace, name: vault.name },
          ip: vault.ip,
          port: 8200,
          protocol: 'TCP',
          reachability: 'blocked',
          basis: 'dropped: filtered (no-response) from 10.0.1.1',
          evidence: { state: 'filtered', reason: 'no-response' },
        },
      ],
      startedAt: new Date().toISOString(),
      durationMs: 5,
    });
    await eventually(
      async () => (await api(`/api/v1/cases/${crossId}`, TOKENS.admin)).body.includes('"pass"'),
      'the cross-tenant case judged',
    );
  });

  const paths = (ownPolicy: string): string[] => [
    '/api/v1/summary',
    '/api/v1/outcomes',
    '/api/v1/outcomes?namespace=tenant-a',
    '/api/v1/outcomes?namespace=tenant-c',
    `/api/v1/outcomes?policy=${ownPolicy}`,
    '/api/v1/outcomes?policy=tenant-a/vault',
    '/api/v1/outcomes?outcome=pass',
    '/api/v1/outcomes?since=2026-01-01T00:00:00Z',
    `/api/v1/cases/${crossId}`,
    `/api/v1/cases/${crossId}/attempts`,
    '/api/v1/coverage',
    '/api/v1/coverage?policy=tenant-a/vault',
    '/api/v1/latency',
    '/api/v1/latency?namespace=tenant-c',
    '/api/v1/matrix',
    '/api/v1/matrix/tenant-c/tenant-a',
    '/api/v1/regressions',
    '/api/v1/regressions?policy=tenant-a/vault',
  ];

  it('shows the admin both ends in full, the secrets the tenants must not see included', async () => {
    const detail = (await api(`/api/v1/cases/${crossId}`, TOKENS.admin)).body;
    for (const secret of [...hiddenFrom.a, ...hiddenFrom.c]) expect(detail).toContain(secret);
  });

  it.each([
    ['a' as const, 'tenant-a/web'],
    ['c' as const, 'tenant-c/web'],
  ])(
    'shows tenant-%s, on every endpoint and filter, the other end as its namespace only',
    async (tenant, ownPolicy) => {
      for (const path of paths(ownPolicy)) {
        const { status, body } = await api(path, TOKENS[tenant]);
        expect([path, status]).toEqual([path, 200]);
        for (const secret of hiddenFrom[tenant])
          expect([path, body.includes(secret) ? secret : 'hidden']).toEqual([path, 'hidden']);
      }
      const detail = JSON.parse((await api(`/api/v1/cases/${crossId}`, TOKENS[tenant])).body) as {
        case: { source: object; destination: object; policy: string | null };
        attempts: { items: Record<string, unknown>[] };
      };
      const [own, other] = tenant === 'a' ? ['destination', 'source'] : ['source', 'destination'];
      expect(detail.case[other as 'source']).toEqual({
        namespace: tenant === 'a' ? 'tenant-c' : 'tenant-a',
      });
      expect(detail.case[own as 'source']).toMatchObject({
        namespace: `tenant-${tenant}`,
        pods: [tenant === 'a' ? vault : spy],
      });
      // The policy the case checks is tenant-a's: tenant-c does not learn its name.
      expect(detail.case.policy).toBe(tenant === 'a' ? 'tenant-a/vault' : null);
      expect(detail.attempts.items[0]).toMatchObject({
        reachability: 'blocked',
        evidence: { state: 'filtered', reason: 'no-response' },
        node: tenant === 'a' ? null : 'node-c',
        sourcePod: tenant === 'a' ? null : 'tenant-c/spy-0',
        destinationPod: tenant === 'a' ? 'tenant-a/vault-0' : null,
      });
      // Every answer still has its documented shape.
      const parsed = API_ROUTES.caseDetail.answer.safeParse(detail);
      expect(parsed.error?.issues ?? []).toEqual([]);
    },
  );
});

describe('logs', () => {
  it('never hold a token, a signing secret or a receiver’s path, even when a delivery failed', () => {
    const logged = readFileSync(join(scratch, 'reporter.log'), 'utf8');
    // The webhook receiver was down at first: its failures were logged, with where to.
    expect(logged).toContain('alert delivery failed; will retry');
    expect(logged).toContain(`http://127.0.0.1:${webhook.port}/…`);
    // Receiver paths stand in for the secret part of a Slack or Teams webhook URL.
    for (const secret of [SECRET, ...Object.values(TOKENS), '/hook', '/slack', '/teams'])
      expect([secret, logged.includes(secret)]).toEqual([secret, false]);
  });
});
