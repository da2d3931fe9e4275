import { createHash } from 'node:crypto';
import { hiddenPolicyName, hideAddresses, isHiddenPolicyName, visiblePolicy } from '#lumen/access';
import {
  alertHeadline,
  describeEndpoint,
  type AlertContent,
  type AlertEndpoint,
  type AlertEvent,
} from './alert.js';
import type { Receiver } from './receivers.js';
import { SIGNATURE_HEADER, signatureHeader } from './signing.js';

/** A group's events for one receiver: one HTTP request. */
export interface AlertGroup {
  readonly receiver: string;
  readonly groupKey: string;
  readonly events: readonly AlertEvent[];
}

export interface RenderContext {
  readonly cluster: string;
  readonly now: Date;
  /** Lumen's API base, for links back to a policy's outcomes. */
  readonly apiBaseUrl: string;
}

export interface HttpRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Slack and Teams messages list this many alerts; the rest are counted and linked. */
const LISTED = 10;

/** Stable per group content: a receiver that sees the same id twice may drop the repeat. */
export function deliveryId(group: AlertGroup): string {
  const identity = group.events.map((e) => `${e.fingerprint}:${e.status}:${e.content.decidedAt}`);
  return createHash('sha256')
    .update(`${group.receiver}\n${group.groupKey}\n${identity.join('\n')}`)
    .digest('hex')
    .slice(0, 32);
}

export function renderDelivery(
  receiver: Receiver,
  whole: AlertGroup,
  context: RenderContext,
): HttpRequest {
  const group = receiver.namespaces ? groupSeenBy(whole, receiver.namespaces) : whole;
  switch (receiver.type) {
    case 'webhook':
      return cloudEvent(receiver.url, receiver.secret, group, context);
    case 'slack':
      return json(receiver.url, slackMessage(group, context));
    case 'alertmanager':
      return json(
        `${receiver.url.replace(/\/+$/, '')}/api/v2/alerts`,
        alertmanagerAlerts(group.events, context),
      );
    case 'teams':
      return json(receiver.url, teamsMessage(group, context));
  }
}

/**
 * What a receiver limited to namespaces (a tenant's channel) is told, by the API's rules
 * for a limited token: of a case's end outside its namespaces, the namespace only; no
 * policy owned there by name; no addresses in the evidence (docs/security.md).
 */
export function groupSeenBy(group: AlertGroup, namespaces: readonly string[]): AlertGroup {
  const policy = group.events[0]?.content.policy;
  return {
    ...group,
    groupKey:
      policy === group.groupKey && !visiblePolicy(policy, namespaces)
        ? hiddenPolicyName(policy)
        : group.groupKey,
    events: group.events.map((e) => ({ ...e, content: contentSeenBy(e.content, namespaces) })),
  };
}

function contentSeenBy(content: AlertContent, namespaces: readonly string[]): AlertContent {
  const hide = (end: AlertEndpoint): AlertEndpoint =>
    namespaces.includes(end.namespace) ? end : { namespace: end.namespace, labels: {}, pod: null };
  const foreign =
    !namespaces.includes(content.source.namespace) ||
    !namespaces.includes(content.destination.namespace);
  const named = visiblePolicy(content.policy, namespaces);
  return {
    ...content,
    source: hide(content.source),
    destination: hide(content.destination),
    policy: named || !content.policy ? content.policy : hiddenPolicyName(content.policy),
    rule: named ? content.rule : null,
    reason: foreign ? hideAddresses(content.reason) : content.reason,
    verdict: foreign ? hideAddresses(content.verdict) : content.verdict,
    evidence: foreign ? hideAddresses(content.evidence) : content.evidence,
  };
}

function json(url: string, payload: unknown): HttpRequest {
  return { url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) };
}

function policyLink(group: AlertGroup, context: RenderContext): string {
  const policy = group.events[0]?.content.policy;
  const query =
    policy && !isHiddenPolicyName(policy) ? `?policy=${encodeURIComponent(policy)}` : '';
  return `${context.apiBaseUrl}/api/v1/outcomes${query}`;
}

/** CloudEvents 1.0, structured mode, signed (docs/alerts.md#signing). */
function cloudEvent(
  url: string,
  secret: string,
  group: AlertGroup,
  context: RenderContext,
): HttpRequest {
  const body = JSON.stringify({
    specversion: '1.0',
    id: deliveryId(group),
    source: `lumen://${context.cluster}/reporter`,
    type: 'dev.lumen.alert.v1',
    subject: group.groupKey,
    time: context.now.toISOString(),
    datacontenttype: 'application/json',
    data: {
      cluster: context.cluster,
      group: group.groupKey,
      firing: group.events.filter((e) => e.status === 'firing').length,
      resolved: group.events.filter((e) => e.status === 'resolved').length,
      link: policyLink(group, context),
      alerts: group.events.map((e) => ({
        fingerprint: e.fingerprint,
        status: e.status,
        severity: e.severity,
        startsAt: e.startsAt,
        endsAt: e.endsAt,
        summary: alertHeadline(e),
        ...e.content,
      })),
    },
  });
  return {
    url,
    headers: {
      'content-type': 'application/cloudevents+json; charset=utf-8',
      [SIGNATURE_HEADER]: signatureHeader(secret, body, context.now),
    },
    body,
  };
}

function facts(event: AlertEvent): [string, string][] {
  const c = event.content;
  return [
    [
      'Policy',
      `${c.policy ?? '(none: default allow)'}${c.rule ? ` · ${c.rule.direction} rule ${c.rule.index}` : ''}`,
    ],
    ['Source', describeEndpoint(c.source)],
    ['Destination', describeEndpoint(c.destination)],
    ['Port', `${c.protocol}/${c.port}`],
    ...(c.service
      ? [
          [
            'Service',
            `${c.service.namespace}/${c.service.name} (${c.service.clusterIP}:${c.service.port})${c.service.hairpin ? ' · hairpin' : ''}`,
          ] as [string, string],
        ]
      : []),
    ['Expected / observed', `${c.expected} / ${c.observed ?? 'nothing conclusive'}`],
    ['Evidence', c.evidence],
    ['Trace', c.traceId ?? '-'],
    ['Case', c.apiUrl],
  ];
}

function title(group: AlertGroup, context: RenderContext): string {
  const firing = group.events.filter((e) => e.status === 'firing').length;
  const resolved = group.events.length - firing;
  const counts = [
    firing > 0 ? `${firing} firing` : '',
    resolved > 0 ? `${resolved} resolved` : '',
  ].filter(Boolean);
  return `Lumen · ${context.cluster} · ${group.groupKey}: ${counts.join(', ')}`;
}

function slackMessage(group: AlertGroup, context: RenderContext): object {
  const listed = group.events.slice(0, LISTED);
  const more = group.events.length - listed.length;
  const blocks: object[] = [
    { type: 'header', text: { type: 'plain_text', text: title(group, context).slice(0, 150) } },
    ...listed.flatMap((e) => [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `${e.status === 'firing' ? (e.severity === 'critical' ? ':rotating_light:' : ':warning:') : ':white_check_mark:'} *${escapeSlack(alertHeadline(e))}*`.slice(
            0,
            3000,
          ),
        },
        fields: facts(e)
          .slice(0, 10)
          .map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${escapeSlack(v)}`.slice(0, 2000) })),
      },
      { type: 'divider' },
    ]),
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `${more > 0 ? `and ${more} more · ` : ''}<${policyLink(group, context)}|all outcomes of ${escapeSlack(group.groupKey)}>`,
        },
      ],
    },
  ];
  // The notification text is mrkdwn too: escaped like the blocks.
  const text = [title(group, context), ...group.events.map(alertHeadline)]
    .map(escapeSlack)
    .join('\n');
  return { text: text.slice(0, 3000), blocks };
}

/** Slack's three control characters; `<` would otherwise open a link or a mention. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Teams' Adaptive Card markdown: every character that can start emphasis, a link, code or
 * a heading is escaped with a backslash, and so is a list marker at the start of a line,
 * so that text from the cluster reads as written and links only where Lumen puts them.
 */
export function escapeTeams(text: string): string {
  return text
    .replace(/[\\`*_{}[\]()#+!|~<>]/g, (c) => `\\${c}`)
    .replace(/^(\s*)([-]|\d+\.)(?=\s)/gm, (_, space: string, marker: string) =>
      marker === '-' ? `${space}\\-` : `${space}${marker.slice(0, -1)}\\.`,
    );
}

/** Alertmanager v2: one alert per case; route with `group_by: [alertname, cluster, policy]`. */
export function alertmanagerAlerts(
  events: readonly AlertEvent[],
  context: RenderContext,
): object[] {
  return events.map((e) => {
    const c = e.content;
    return {
      labels: {
        alertname: 'LumenNetworkPolicyNotEnforced',
        severity: e.severity,
        cluster: context.cluster,
        policy: c.policy ?? 'none',
        namespace: c.policy?.split('/')[0] ?? c.destination.namespace,
        rule: c.rule ? `${c.rule.direction}/${c.rule.index}` : 'none',
        expected: c.expected,
        protocol: c.protocol,
        port: String(c.port),
        case_id: c.caseId,
        ...(c.service ? { service: `${c.service.namespace}/${c.service.name}` } : {}),
      },
      annotations: {
        summary: alertHeadline(e),
        description: `${c.verdict} Evidence: ${c.evidence}`,
        source: describeEndpoint(c.source),
        destination: describeEndpoint(c.destination),
        observed: c.observed ?? 'nothing conclusive',
        trace_id: c.traceId ?? '',
        case_url: c.apiUrl,
      },
      startsAt: e.startsAt,
      // Firing alerts are sent again before this passes; a silent Lumen lets them expire.
      endsAt: e.endsAt ?? new Date(context.now.getTime() + 5 * 60_000).toISOString(),
      generatorURL: c.apiUrl,
    };
  });
}

function teamsMessage(group: AlertGroup, context: RenderContext): object {
  const listed = group.events.slice(0, LISTED);
  const more = group.events.length - listed.length;
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {
              type: 'TextBlock',
              size: 'Large',
              weight: 'Bolder',
              wrap: true,
              text: escapeTeams(title(group, context)),
            },
            ...listed.flatMap((e) => [
              {
                type: 'TextBlock',
                wrap: true,
                weight: 'Bolder',
                color:
                  e.status === 'resolved'
                    ? 'Good'
                    : e.severity === 'critical'
                      ? 'Attention'
                      : 'Warning',
                text: escapeTeams(alertHeadline(e)),
              },
              {
                type: 'FactSet',
                facts: facts(e).map(([t, v]) => ({ title: t, value: escapeTeams(v) })),
              },
            ]),
            ...(more > 0 ? [{ type: 'TextBlock', wrap: true, text: `and ${more} more` }] : []),
          ],
          actions: [
            { type: 'Action.OpenUrl', title: 'Open in Lumen', url: policyLink(group, context) },
          ],
        },
      },
    ],
  };
}
