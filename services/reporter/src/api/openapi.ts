/** The API's OpenAPI 3.1 document, served at /api/v1/openapi.json. */

const page = [
  {
    name: 'limit',
    in: 'query',
    schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
    description: 'Items per page.',
  },
  {
    name: 'cursor',
    in: 'query',
    schema: { type: 'string', maxLength: 200 },
    description: 'The `nextCursor` of the previous page.',
  },
];
const namespaceParam = {
  name: 'namespace',
  in: 'query',
  schema: { type: 'string', maxLength: 63 },
  description: 'Cases whose source or destination lies in this namespace.',
};
const policyParam = {
  name: 'policy',
  in: 'query',
  schema: { type: 'string', pattern: '^[a-z0-9-]+/[a-z0-9.-]+$' },
  description: 'A policy as namespace/name.',
};
const caseIdParam = {
  name: 'caseId',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[0-9a-f]{16}$' },
};

const errors = {
  '400': { $ref: '#/components/responses/Problem' },
  '401': { $ref: '#/components/responses/Problem' },
};
const ok = (schema: object, description: string): object => ({
  '200': { description, content: { 'application/json': { schema } } },
  ...errors,
});
const ref = (name: string): object => ({ $ref: `#/components/schemas/${name}` });
const pageOf = (item: string): object => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: ref(item) },
    nextCursor: { type: ['string', 'null'] },
  },
});
const endpoint = { type: 'object', additionalProperties: true };

export function openApiDocument(): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Lumen reporter API',
      version: '1.0.0',
      description:
        'Outcomes of Lumen’s NetworkPolicy probes. Every endpoint but this document needs a bearer token; a token limited to namespaces sees only cases whose source or destination lies in them.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/openapi.json': {
        get: {
          summary: 'This document',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1' } },
        },
      },
      '/api/v1/summary': {
        get: {
          summary: 'Cases by outcome, alerts firing',
          responses: ok(ref('Summary'), 'Summary'),
        },
      },
      '/api/v1/outcomes': {
        get: {
          summary: 'Latest outcome per case, filtered and paged by case id',
          parameters: [
            namespaceParam,
            policyParam,
            {
              name: 'outcome',
              in: 'query',
              schema: { enum: ['pass', 'fail', 'flaky', 'inconclusive'] },
            },
            { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' } },
            { name: 'until', in: 'query', schema: { type: 'string', format: 'date-time' } },
            ...page,
          ],
          responses: ok(pageOf('Outcome'), 'A page of outcomes'),
        },
      },
      '/api/v1/cases/{caseId}': {
        get: {
          summary: 'One case: expectation and its explanation, outcome, history, newest attempts',
          parameters: [caseIdParam, ...page],
          responses: {
            ...ok(ref('CaseDetail'), 'The case'),
            '404': { $ref: '#/components/responses/Problem' },
          },
        },
      },
      '/api/v1/cases/{caseId}/attempts': {
        get: {
          summary: 'A case’s probe attempts, newest first, with evidence and trace ids',
          parameters: [caseIdParam, ...page],
          responses: {
            ...ok(pageOf('Attempt'), 'A page of attempts'),
            '404': { $ref: '#/components/responses/Problem' },
          },
        },
      },
      '/api/v1/coverage': {
        get: {
          summary: 'Per policy: share of rules with a verified must-allow and must-deny case',
          parameters: [policyParam],
          responses: ok(
            {
              type: 'object',
              properties: { policies: { type: 'array', items: ref('PolicyCoverage') } },
            },
            'Coverage',
          ),
        },
      },
      '/api/v1/latency': {
        get: {
          summary: 'Enforcement latency: policy change to first probe that saw it enforced',
          parameters: [namespaceParam, policyParam],
          responses: ok(ref('Latency'), 'Statistics in milliseconds'),
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Problem: {
          description: 'An error, with a message that names the bad parameter',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  statusCode: { type: 'integer' },
                  message: { type: 'string' },
                  error: { type: 'string' },
                },
              },
            },
          },
        },
      },
      schemas: {
        Summary: {
          type: 'object',
          properties: {
            cases: { type: 'integer' },
            byOutcome: { type: 'object', additionalProperties: { type: 'integer' } },
            undecided: { type: 'integer' },
            firingAlerts: { type: 'integer' },
            lastDecidedAt: { type: ['string', 'null'], format: 'date-time' },
            scope: { oneOf: [{ const: 'all' }, { type: 'array', items: { type: 'string' } }] },
          },
        },
        Outcome: {
          type: 'object',
          properties: {
            caseId: { type: 'string' },
            outcome: { enum: ['pass', 'fail', 'flaky', 'inconclusive'] },
            decidedAt: { type: 'string', format: 'date-time' },
            round: { type: 'integer' },
            attempts: { type: 'integer' },
            reason: { type: 'string' },
            caseReason: { type: 'string' },
            expected: { enum: ['allow', 'deny'] },
            observed: { type: ['string', 'null'] },
            source: endpoint,
            destination: endpoint,
            port: { type: 'integer' },
            protocol: { type: 'string' },
            policy: { type: ['string', 'null'] },
            rule: { type: ['object', 'null'] },
            enforcementLatencyMs: { type: ['integer', 'null'] },
            traceId: { type: ['string', 'null'] },
          },
        },
        Attempt: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            round: { type: 'integer' },
            attempt: { type: 'integer' },
            node: { type: 'string' },
            observedAt: { type: 'string', format: 'date-time' },
            reachability: { enum: ['reachable', 'blocked', 'inconclusive'] },
            basis: { type: 'string' },
            evidence: { type: ['object', 'null'] },
            traceId: { type: ['string', 'null'] },
            sourcePod: { type: ['string', 'null'] },
            destinationPod: { type: ['string', 'null'] },
          },
        },
        CaseDetail: {
          type: 'object',
          properties: {
            case: { type: 'object', description: 'The expectation, with its explanation' },
            outcome: { type: ['object', 'null'] },
            history: { type: 'array', items: { type: 'object' } },
            attempts: pageOf('Attempt'),
          },
        },
        PolicyCoverage: {
          type: 'object',
          properties: {
            policy: { type: 'string' },
            rules: { type: 'integer' },
            covered: { type: 'integer' },
            coverage: { type: 'number', minimum: 0, maximum: 1 },
            perRule: { type: 'array', items: { type: 'object' } },
          },
        },
        Latency: {
          type: 'object',
          properties: Object.fromEntries(
            ['count', 'minMs', 'p50Ms', 'p90Ms', 'p99Ms', 'maxMs', 'meanMs'].map((k) => [
              k,
              { type: ['integer', 'null'] },
            ]),
          ),
        },
      },
    },
  };
}
