import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  AlertDispatcher,
  AlertingCore,
  alertFingerprint,
  alertGroupKey,
  alertHeadline,
  alertNamespaces,
  alertTransition,
  parseReceivers,
  receiverWants,
  escapeTeams,
  renderDelivery,
  retryDelay,
  signatureHeader,
  verifySignature,
  type AlertEvent,
  type AlertOutcomeFacts,
  type AlertStore,
  type CaseFacts,
  type HttpRequest,
  type OutboxRow,
  type OutboxStore,
  type Receiver,
} from '#lumen/alerting';
import type { Outcome } from '#lumen/contracts';
import { caseRecordFixture, caseSide } from '#lumen/testing';

const event = (overrides: Partial<AlertEvent> = {}, caseId = 'aaaaaaaaaaaaaaaa'): AlertEvent => ({
  fingerprint: alertFingerprint(caseId),
  groupKey: 'tenant-a/web',
  status: 'firing',
  severity: 'critical',
  startsAt: '2026-11-26T10:00:00.000Z',
  endsAt: null,
  content: {
    caseId,
    policy: 'tenant-a/web',
    rule: { direction: 'ingress', index: 0 },
    reason: 'near-miss-namespace',
    source: { namespace: 'tenant-b', labels: { app: 'api' }, pod: 'tenant-b/api-1' },
    destination: { namespace: 'tenant-a', labels: { app: 'web' }, pod: 'tenant-a/web-0' },
    port: 80,
    protocol: 'TCP',
    expected: 'deny',
    observed: 'reachable',
    outcome: 'fail',
    verdict: 'expected deny, observed reachable in 3 attempts',
    evidence: 'reachable: open (syn-ack)',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    decidedAt: '2026-11-26T10:00:00.000Z',
    apiUrl: 'http://lumen:8084/api/v1/cases/aaaaaaaaaaaaaaaa',
  },
  ...overrides,
});

const context = {
  cluster: 'prod-eu',
  now: new Date('2026-11-26T10:00:05Z'),
  apiBaseUrl: 'http://lumen:8084',
};

describe('alertTransition (DESIGN: alerts on regressions)', () => {
  it.each([
    // current, before, alert state, expected
    ['fail', 'pass', undefined, 'firing'],
    ['fail', 'pass', 'resolved', 'firing'],
    ['fail', 'pass', 'firing', undefined], // deduplicated: already firing
    ['fail', undefined, undefined, undefined], // a new case that fails was never a regression
    ['fail', 'flaky', undefined, undefined],
    ['fail', 'inconclusive', undefined, undefined],
    ['pass', 'fail', 'firing', 'resolved'],
    ['pass', 'fail', undefined, undefined], // nothing fired, nothing resolves
    ['pass', 'fail', 'resolved', undefined],
    ['flaky', 'fail', 'firing', undefined], // resolves only on pass
    ['inconclusive', 'pass', undefined, undefined],
  ] as const)('%s after %s with alert %s → %s', (current, before, alert, expected) => {
    expect(alertTransition({ current, before, alert })).toBe(expected);
  });
});

describe('fingerprints', () => {
  it('are stable per case and differ between cases', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9a-f]{16}$/),
        fc.stringMatching(/^[0-9a-f]{16}$/),
        (a, b) => {
          expect(alertFingerprint(a)).toBe(alertFingerprint(a));
          expect(alertFingerprint(a)).toMatch(/^[0-9a-f]{16}$/);
          if (a !== b) expect(alertFingerprint(a)).not.toBe(alertFingerprint(b));
        },
      ),
    );
  });
});

describe('receivers', () => {
  const file = `
receivers:
  - name: security
    type: webhook
    url: https://hooks.example.com/lumen
    secret: 0123456789abcdef0123
    severities: [critical]
  - name: team-a
    type: slack
    url: https://hooks.slack.com/services/T/B/X
    namespaces: [tenant-a]
  - name: am
    type: alertmanager
    url: http://alertmanager.monitoring:9093
  - name: teams
    type: teams
    url: https://prod.workflows.example.com/run
`;
  const receivers = parseReceivers(file, 'receivers.yaml');

  it('parses every receiver type', () => {
    expect(receivers.map((r) => `${r.name}:${r.type}`)).toEqual([
      'security:webhook',
      'team-a:slack',
      'am:alertmanager',
      'teams:teams',
    ]);
  });

  it.each([
    ['receivers: [{name: x, type: pager, url: "http://a"}]', 'receivers.0.type'],
    ['receivers: [{name: x, type: webhook, url: "http://a", secret: short}]', 'at least 16'],
    ['receivers: [{name: X_bad, type: slack, url: "http://a"}]', 'DNS label'],
    ['receivers: [{name: x, type: slack, url: "ftp://a"}]', 'receivers.0.url'],
    [
      'receivers: [{name: x, type: slack, url: "http://a"}, {name: x, type: teams, url: "http://b"}]',
      'unique',
    ],
    ['receivers: [{name: x, type: slack, url: "http://a", extra: 1}]', 'extra'],
    ['receivers: [', 'not YAML'],
  ])('refuses %s, naming the problem', (text, problem) => {
    expect(() => parseReceivers(text, 'r.yaml')).toThrow(problem);
  });

  it('says where a YAML error is without quoting the file, which holds URLs and secrets', () => {
    const text = [
      'receivers:',
      '  - name: security',
      '    type: webhook',
      '    url: https://hooks.example/T0/B0/s3cr3tpath',
      '    secret: 0123456789abcdef0123 : : [',
    ].join('\n');
    let message = '';
    try {
      parseReceivers(text, 'r.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^r\.yaml: not YAML at line \d+, column \d+/);
    for (const secret of ['s3cr3tpath', 'hooks.example', '0123456789abcdef0123'])
      expect(message).not.toContain(secret);
  });

  it.each([
    ['security', ['tenant-a', 'tenant-b'], 'critical', true],
    ['security', ['tenant-a'], 'warning', false],
    ['team-a', ['tenant-a', 'tenant-b'], 'warning', true],
    ['team-a', ['tenant-c'], 'critical', false],
    ['am', ['anything'], 'warning', true],
  ] as const)('%s wants namespaces %j at %s: %s', (name, namespaces, severity, wanted) => {
    const receiver = receivers.find((r) => r.name === name)!;
    expect(receiverWants(receiver, { namespaces, severity })).toBe(wanted);
  });

  const byType = (type: Receiver['type']): Receiver => receivers.find((r) => r.type === type)!;
  const group = {
    receiver: 'x',
    groupKey: 'tenant-a/web',
    events: [
      event(),
      event({ status: 'resolved', endsAt: '2026-11-26T10:05:00.000Z' }, 'bbbbbbbbbbbbbbbb'),
    ],
  };

  it('webhook: a signed CloudEvents 1.0 structured event', () => {
    const request = renderDelivery(byType('webhook'), group, context);
    expect(request.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    const body = JSON.parse(request.body) as Record<string, unknown> & {
      data: { alerts: Record<string, unknown>[] };
    };
    for (const attribute of ['specversion', 'id', 'source', 'type', 'time', 'subject'])
      expect(body[attribute]).toBeTruthy();
    expect(body['specversion']).toBe('1.0');
    expect(body.data.alerts).toHaveLength(2);
    expect(body.data.alerts[0]).toMatchObject({
      policy: 'tenant-a/web',
      rule: { direction: 'ingress', index: 0 },
      port: 80,
      protocol: 'TCP',
      expected: 'deny',
      observed: 'reachable',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      apiUrl: 'http://lumen:8084/api/v1/cases/aaaaaaaaaaaaaaaa',
    });
    const secret = (byType('webhook') as { secret: string }).secret;
    expect(
      verifySignature(secret, request.body, request.headers['lumen-signature']!, context.now),
    ).toBe(true);
    expect(
      verifySignature(secret, `${request.body} `, request.headers['lumen-signature']!, context.now),
    ).toBe(false);
  });

  describe('a receiver limited to namespaces is told only what a tenant may see', () => {
    // tenant-b's api pod reached tenant-a's web: tenant-b's channel learns its own pod
    // broke through, not tenant-a's pod, labels, policy name or addresses.
    const cross = event({
      content: {
        ...event().content,
        evidence: 'reachable: open (syn-ack) from 10.0.1.7',
      },
    });
    const crossGroup = { receiver: 'x', groupKey: 'tenant-a/web', events: [cross] };
    it.each(['webhook', 'slack', 'alertmanager', 'teams'] as const)('%s', (type) => {
      const receiver = { ...byType(type), namespaces: ['tenant-b'] };
      const body = renderDelivery(receiver, crossGroup, context).body;
      for (const hidden of ['web-0', 'app=web', '"web"', 'tenant-a/web', '10.0.1.7'])
        expect([hidden, body.includes(hidden)]).toEqual([hidden, false]);
      expect(body).toContain('tenant-b/api-1');
      expect(body).toContain('tenant-a');
      // The admin's channel still gets everything.
      const whole = renderDelivery(byType(type), crossGroup, context).body;
      expect(whole).toContain('web-0');
      expect(whole).toContain('tenant-a/web');
    });
  });

  describe('text from the cluster reads as written in every format', () => {
    const hostile = event({
      content: {
        ...event().content,
        source: { namespace: 'tenant-b', labels: { app: 'my_api_v2' }, pod: 'tenant-b/api-1' },
        evidence: 'reachable: <!channel> *open* [details](http://evil.example) `x` # 1. - a',
      },
    });
    const hostileGroup = { receiver: 'x', groupKey: 'tenant-a/web', events: [hostile] };

    it('slack: no mention, link or markup in the blocks nor in the notification text', () => {
      const body = renderDelivery(byType('slack'), hostileGroup, context).body;
      const message = JSON.parse(body) as { text: string };
      expect(body).not.toContain('<!channel>');
      expect(body).toContain('&lt;!channel&gt;');
      // The top-level text, which phones show, is escaped too.
      expect(message.text).not.toMatch(/<|>/);
    });

    it('teams: markdown characters escaped in the title, the headline and every fact', () => {
      const body = renderDelivery(byType('teams'), hostileGroup, context).body;
      expect(body).not.toContain('[details](http://evil.example)');
      expect(body).toContain('\\\\[details\\\\]\\\\(http://evil.example\\\\)');
      expect(body).not.toMatch(/[^\\]_api_/);
      expect(body).toContain('my\\\\_api\\\\_v2');
    });

    it.each([
      ['a *bold* _word_', 'a \\*bold\\* \\_word\\_'],
      ['[x](y)', '\\[x\\]\\(y\\)'],
      ['- item', '\\- item'],
      ['12. item', '12\\. item'],
      ['tenant-a/web-0 TCP/80', 'tenant-a/web-0 TCP/80'],
    ])('escapeTeams(%j) is %j', (text, escaped) => {
      expect(escapeTeams(text)).toBe(escaped);
    });
  });

  it('slack: Block Kit blocks and fallback text, with the evidence and trace', () => {
    const message = JSON.parse(renderDelivery(byType('slack'), group, context).body) as {
      text: string;
      blocks: { type: string; fields?: { text: string }[] }[];
    };
    expect(message.text).toContain('tenant-a/web');
    expect(message.blocks[0]?.type).toBe('header');
    const fields = message.blocks
      .flatMap((b) => b.fields ?? [])
      .map((f) => f.text)
      .join('\n');
    for (const part of [
      // team-a's channel: the source in tenant-b is its namespace only.
      'tenant-b {}',
      'tenant-a/web-0',
      'TCP/80',
      'deny / reachable',
      '4bf92f3577b34da6a3ce929d0e0e4736',
      'open (syn-ack)',
    ])
      expect(fields).toContain(part);
    expect(fields).not.toContain('tenant-b/api-1');
  });

  it('alertmanager: POST /api/v2/alerts with routing labels and no pod in any label', () => {
    const request = renderDelivery(byType('alertmanager'), group, context);
    expect(request.url).toBe('http://alertmanager.monitoring:9093/api/v2/alerts');
    const alerts = JSON.parse(request.body) as {
      labels: Record<string, string>;
      annotations: Record<string, string>;
      endsAt: string;
    }[];
    expect(alerts[0]?.labels).toEqual({
      alertname: 'LumenNetworkPolicyNotEnforced',
      severity: 'critical',
      cluster: 'prod-eu',
      policy: 'tenant-a/web',
      namespace: 'tenant-a',
      rule: 'ingress/0',
      expected: 'deny',
      protocol: 'TCP',
      port: '80',
      case_id: 'aaaaaaaaaaaaaaaa',
    });
    expect(alerts[0]?.annotations['trace_id']).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(alerts[1]?.endsAt).toBe('2026-11-26T10:05:00.000Z');
  });

  it('teams: an Adaptive Card in a Workflows message', () => {
    const message = JSON.parse(renderDelivery(byType('teams'), group, context).body) as {
      type: string;
      attachments: {
        contentType: string;
        content: { type: string; version: string; body: { type: string }[] };
      }[];
    };
    expect(message.type).toBe('message');
    expect(message.attachments[0]?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(message.attachments[0]?.content.type).toBe('AdaptiveCard');
    expect(message.attachments[0]?.content.body.filter((b) => b.type === 'FactSet')).toHaveLength(
      2,
    );
  });
});

describe('signatures', () => {
  it('verify what was signed, within the replay window, and nothing else', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 16 }),
        fc.string(),
        fc.integer({ min: 0, max: 2_000_000_000 }),
        (secret, body, seconds) => {
          const at = new Date(seconds * 1000);
          const header = signatureHeader(secret, body, at);
          expect(verifySignature(secret, body, header, at)).toBe(true);
          expect(verifySignature(`${secret}x`, body, header, at)).toBe(false);
          expect(verifySignature(secret, `${body}x`, header, at)).toBe(false);
          expect(verifySignature(secret, body, header, new Date(at.getTime() + 301_000))).toBe(
            false,
          );
        },
      ),
    );
  });
});

it.each([
  [0, 1000],
  [1, 2000],
  [3, 8000],
  [20, 300_000],
  [1000, 300_000],
])('retry delay after %i failures is %i ms', (attempts, delay) => {
  expect(retryDelay(attempts, 1000, 300_000)).toBe(delay);
});

describe('AlertDispatcher', () => {
  class MemoryOutbox implements OutboxStore {
    rows: (OutboxRow & { nextAttemptAt: Date; deliveredAt?: Date })[] = [];
    async due(now: Date): Promise<OutboxRow[]> {
      return this.rows.filter((r) => !r.deliveredAt && r.nextAttemptAt <= now);
    }
    async markDelivered(ids: readonly number[], at: Date): Promise<void> {
      for (const r of this.rows) if (ids.includes(r.id)) r.deliveredAt = at;
    }
    async markFailed(ids: readonly number[], _error: string, next: Date): Promise<void> {
      this.rows = this.rows.map((r) =>
        ids.includes(r.id) ? { ...r, attempts: r.attempts + 1, nextAttemptAt: next } : r,
      );
    }
    async firingAlerts(): Promise<{ event: AlertEvent; namespaces: string[] }[]> {
      return [];
    }
  }
  const receiver: Receiver = { name: 'hook', type: 'slack', url: 'http://127.0.0.1:1/hook' };
  const settings = {
    receivers: [receiver],
    cluster: 'c',
    apiBaseUrl: 'http://x',
    groupWaitMs: 5000,
    groupIntervalMs: 30_000,
    retryBaseMs: 1000,
    retryMaxMs: 60_000,
    alertmanagerResendMs: 60_000,
  };

  it('waits for the group, sends one request per policy, and backs off while the receiver fails', async () => {
    const outbox = new MemoryOutbox();
    let now = new Date('2026-11-26T10:00:00Z');
    const at = (ms: number): Date => new Date(now.getTime() + ms);
    outbox.rows = Array.from({ length: 100 }, (_, i) => ({
      id: i + 1,
      receiver: 'hook',
      groupKey: i < 99 ? 'tenant-a/web' : 'tenant-b/db',
      createdAt: now,
      nextAttemptAt: now,
      attempts: 0,
      event: event({}, i.toString(16).padStart(16, '0')),
    }));
    const sent: HttpRequest[] = [];
    let status = 503;
    const dispatcher = new AlertDispatcher(
      outbox,
      async (r) => {
        sent.push(r);
        return { status };
      },
      settings,
      { now: () => now },
    );
    expect(await dispatcher.dispatchDue()).toEqual([]); // the group is still gathering
    now = at(5000);
    const failed = await dispatcher.dispatchDue();
    expect(failed.map((r) => [r.groupKey, r.alerts, r.delivered])).toEqual([
      ['tenant-a/web', 99, false],
      ['tenant-b/db', 1, false],
    ]);
    expect(sent).toHaveLength(2);
    now = at(999);
    expect(await dispatcher.dispatchDue()).toEqual([]); // backing off (1 s)
    now = at(1);
    status = 200;
    const delivered = await dispatcher.dispatchDue();
    expect(delivered.every((r) => r.delivered)).toBe(true);
    expect(sent).toHaveLength(4);
    now = at(60_000);
    expect(await dispatcher.dispatchDue()).toEqual([]); // delivered once, never again
    expect(outbox.rows.every((r) => r.deliveredAt)).toBe(true);
    // More cases of the same policy fail later: they gather for the group interval (30 s
    // after the group's last message), then travel together.
    const sentAt = now.getTime() - 60_000;
    const later = (id: number, createdMs: number): (typeof outbox.rows)[number] => ({
      id,
      receiver: 'hook',
      groupKey: 'tenant-a/web',
      createdAt: new Date(sentAt + createdMs),
      nextAttemptAt: new Date(sentAt + createdMs),
      attempts: 0,
      event: event({}, id.toString(16).padStart(16, '0')),
    });
    outbox.rows.push(later(101, 6000), later(102, 20_000));
    now = new Date(sentAt + 26_000);
    expect(await dispatcher.dispatchDue()).toEqual([]); // within the group interval
    now = new Date(sentAt + 30_000);
    expect((await dispatcher.dispatchDue()).map((r) => r.alerts)).toEqual([2]);
  });
});

describe('AlertingCore', () => {
  it('fires on pass → fail once, even when the verdict is seen again, and resolves on pass', async () => {
    const history: { outcome: Outcome }[] = [];
    let current: AlertOutcomeFacts = {
      outcome: 'pass',
      round: 1,
      decidedAt: new Date('2026-11-26T10:00:00Z'),
      reason: 'ok',
      traceId: null,
      observed: 'blocked',
    };
    const facts: CaseFacts = {
      getCase: async () =>
        caseRecordFixture('aaaaaaaaaaaaaaaa', {
          reason: 'near-miss-namespace',
          source: caseSide('tenant-b', { app: 'api' }),
          destination: caseSide('tenant-a', { app: 'web' }),
          expected: 'deny',
          rule: { policy: 'tenant-a/web', direction: 'ingress', index: 0 },
        }),
      outcome: async () => current,
      history: async () => history,
      attempts: async () => [
        {
          reachability: 'reachable',
          basis: 'open',
          evidence: { state: 'open', reason: 'syn-ack' },
          traceId: 'abc',
          sourcePod: 'tenant-b/api-1',
          destinationPod: 'tenant-a/web-0',
        },
      ],
    };
    const recorded: { event: AlertEvent; receivers: readonly string[] }[] = [];
    const store: AlertStore = {
      alertState: async () => {
        const last = recorded[recorded.length - 1]?.event;
        return last ? { status: last.status, startsAt: new Date(last.startsAt) } : null;
      },
      recordAlert: async (e, _n, receivers) => {
        recorded.push({ event: e, receivers });
      },
    };
    const receivers: Receiver[] = [
      { name: 'a', type: 'slack', url: 'http://a', namespaces: ['tenant-a'] },
      { name: 'c', type: 'slack', url: 'http://c', namespaces: ['tenant-c'] },
    ];
    const core = new AlertingCore(
      facts,
      store,
      { receivers, apiBaseUrl: 'http://lumen' },
      { now: () => new Date() },
    );
    history.push({ outcome: 'pass' });
    expect(await core.afterVerdict('aaaaaaaaaaaaaaaa')).toBeUndefined();
    current = { ...current, outcome: 'fail', round: 2, observed: 'reachable' };
    history.push({ outcome: 'fail' });
    const fired = await core.afterVerdict('aaaaaaaaaaaaaaaa');
    expect(fired?.status).toBe('firing');
    expect(fired?.content).toMatchObject({
      policy: 'tenant-a/web',
      source: { pod: 'tenant-b/api-1' },
      evidence: 'reachable: open nmap state open (syn-ack)',
      traceId: 'abc',
    });
    expect(await core.afterVerdict('aaaaaaaaaaaaaaaa')).toBeUndefined(); // redelivered verdict
    current = {
      ...current,
      outcome: 'pass',
      round: 3,
      decidedAt: new Date('2026-11-26T10:02:00Z'),
    };
    history.push({ outcome: 'pass' });
    const resolved = await core.afterVerdict('aaaaaaaaaaaaaaaa');
    expect(resolved).toMatchObject({
      status: 'resolved',
      startsAt: fired?.startsAt,
      endsAt: '2026-11-26T10:02:00.000Z',
    });
    expect(recorded.map((r) => [r.event.status, r.receivers])).toEqual([
      ['firing', ['a']],
      ['resolved', ['a']],
    ]);
  });
});

describe('alerts through a Service (issue 19)', () => {
  const service = {
    namespace: 'shop',
    name: 'api',
    clusterIP: '10.96.0.12',
    port: 80,
    hairpin: false,
  };
  it.each([
    ['a pod-level case', { policy: 'tenant-a/web', service: null }, 'tenant-a/web'],
    ['a pod-level case no policy names', { policy: null, service: null }, 'tenant-a/(no policy)'],
    ['a case through a Service', { policy: 'tenant-a/web', service }, 'shop/(Service api)'],
    ['another policy through it', { policy: 'tenant-a/other', service }, 'shop/(Service api)'],
    [
      'a hairpin through it',
      { policy: 'tenant-a/web', service: { ...service, hairpin: true } },
      'shop/(Service api hairpin)',
    ],
  ])('groups %s under %s', (_, content, key) => {
    expect(alertGroupKey({ ...event().content, ...content })).toBe(key);
  });

  it('names the Service in the headline, the facts and the namespaces it concerns', () => {
    const through = event({}, 'bbbbbbbbbbbbbbbb');
    const content = { ...through.content, service };
    expect(alertHeadline({ ...through, content })).toContain('TCP/80 through Service shop/api');
    expect(alertNamespaces(content)).toEqual(['tenant-b', 'tenant-a', 'shop']);
    const slack = renderDelivery(
      { type: 'slack', name: 's', url: 'http://s' },
      { receiver: 's', groupKey: 'shop/(Service api)', events: [{ ...through, content }] },
      context,
    );
    expect(slack.body).toContain('shop/api (10.96.0.12:80)');
  });
});
