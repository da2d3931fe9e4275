import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  CaseUnschedulableContract,
  ReprobeRequestContract,
  DeadLetterContract,
  ProbeBatchContract,
  ProbeResultContract,
  ProberHeartbeatContract,
  TestCaseContract,
  decode,
  encode,
  probeBatchSubject,
  type Contract,
  type ProbeBatch,
  type ProbeResult,
  type TestCase,
} from '#lumen/contracts';

const side = {
  isolated: true,
  policies: ['default/web'],
  allowedBy: [{ policy: 'default/web', direction: 'ingress' as const, index: 0 }],
  allowed: true,
};
const testCase: TestCase = {
  caseId: '0123456789abcdef',
  generation: 3,
  reason: 'must-allow',
  source: {
    namespace: 'other',
    labels: { type: 'monitoring' },
    classKey: '["other",[["type","monitoring"]],false,"",[]]',
  },
  destination: {
    namespace: 'default',
    labels: { app: 'web' },
    classKey: '["default",[["app","web"]],false,"/TCP/80",[]]',
  },
  port: 80,
  protocol: 'TCP',
  expected: 'allow',
  explanation: {
    egress: { isolated: false, policies: [], allowedBy: [], allowed: true },
    ingress: side,
  },
  rule: { policy: 'default/web', direction: 'ingress', index: 0 },
  changedAt: '2026-11-26T05:00:00.000Z',
  sources: [
    { namespace: 'other', name: 'monitoring', uid: 'u-1', ip: '10.244.1.4', node: 'lab-node-1' },
  ],
  destinations: [
    { namespace: 'default', name: 'web', uid: 'u-2', ip: '10.244.1.2', node: 'lab-node-1' },
  ],
  listenerKnown: true,
  syntheticSource: false,
  loopback: false,
};
const batch: ProbeBatch = {
  batchId: 'b-1',
  node: 'lab-node-1',
  attempt: 1,
  source: { namespace: 'other', name: 'monitoring', uid: '4a1f' },
  targets: [
    {
      caseId: '0123456789abcdef',
      round: 3,
      destination: { namespace: 'default', name: 'web' },
      ip: '10.244.1.2',
      port: 80,
      protocol: 'TCP',
      listenerKnown: true,
    },
  ],
  issuedAt: '2026-11-26T05:00:01.000Z',
  traces: { '0123456789abcdef': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
};
const result: ProbeResult = {
  batchId: 'b-1',
  node: 'lab-node-1',
  attempt: 1,
  batchSequence: 7,
  source: { namespace: 'other', name: 'monitoring' },
  observations: [
    {
      caseId: '0123456789abcdef',
      round: 3,
      ip: '10.244.1.2',
      port: 80,
      protocol: 'TCP',
      reachability: 'reachable',
      basis: 'open (syn-ack)',
      evidence: { state: 'open', reason: 'syn-ack', reasonTtl: 64 },
    },
  ],
  startedAt: '2026-11-26T05:00:01.500Z',
  durationMs: 240,
};

const valid: [string, Contract<unknown>, unknown][] = [
  ['TestCase', TestCaseContract, testCase],
  ['ProbeBatch', ProbeBatchContract, batch],
  ['ProbeResult', ProbeResultContract, result],
  [
    'DeadLetter',
    DeadLetterContract,
    {
      subject: 'lumen.v1.cases',
      service: 'scheduler',
      reason: 'x',
      receivedAt: '2026-11-26T05:00:00Z',
      deliveries: 1,
      payload: 'e30=',
      truncated: false,
    },
  ],
  [
    'ProberHeartbeat',
    ProberHeartbeatContract,
    {
      node: 'lab-node-1',
      instance: 'p-1',
      version: '0.1.0',
      at: '2026-11-26T05:00:00Z',
      inFlight: 0,
    },
  ],
  [
    'ReprobeRequest',
    ReprobeRequestContract,
    {
      caseId: '0123456789abcdef',
      round: 3,
      attempt: 2,
      notBefore: '2026-11-26T05:00:10Z',
      reason: 'mismatch inside the settle window',
      sources: testCase.sources,
      destinations: testCase.destinations,
      port: 80,
      protocol: 'TCP',
      listenerKnown: true,
    },
  ],
  [
    'CaseUnschedulable',
    CaseUnschedulableContract,
    {
      caseId: '0123456789abcdef',
      round: 3,
      attempt: 1,
      reason: 'no live prober',
      at: '2026-11-26T05:00:00Z',
    },
  ],
];

describe('contracts', () => {
  it.each(valid)('%s round-trips through encode and decode', (_name, contract, value) => {
    expect(decode(contract, encode(contract, value))).toEqual({ ok: true, value });
  });

  it.each([
    [
      'a case id that is not a hash',
      TestCaseContract,
      { ...testCase, caseId: 'web->db' },
      'caseId: must be 16 lower-case hex digits',
    ],
    ['an unknown protocol', TestCaseContract, { ...testCase, protocol: 'ICMP' }, 'protocol'],
    ['an extra field', TestCaseContract, { ...testCase, shell: 'rm -rf /' }, 'Unrecognized key'],
    [
      'a target that is not an IP',
      ProbeBatchContract,
      { ...batch, targets: [{ ...batch.targets[0], ip: '-sV --script=evil' }] },
      'targets.0.ip',
    ],
    [
      'port 0',
      ProbeBatchContract,
      { ...batch, targets: [{ ...batch.targets[0], port: 0 }] },
      'targets.0.port',
    ],
    ['an empty batch', ProbeBatchContract, { ...batch, targets: [] }, 'targets'],
    [
      'a node name with a wildcard',
      ProbeBatchContract,
      { ...batch, node: 'node.>' },
      'node: must be a node name',
    ],
    [
      'an unknown reachability',
      ProbeResultContract,
      { ...result, observations: [{ ...result.observations[0], reachability: 'maybe' }] },
      'observations.0.reachability',
    ],
    [
      'a trace header that is not a traceparent',
      ProbeBatchContract,
      { ...batch, traces: { '0123456789abcdef': 'x\r\nInjected: 1' } },
      'must be a W3C traceparent',
    ],
    [
      'a re-probe as a first attempt',
      ReprobeRequestContract,
      { caseId: '0123456789abcdef', round: 1, attempt: 1 },
      'attempt',
    ],
  ])('rejects %s, saying where', (_name, contract, value, reason) => {
    const decoded = decode(contract as Contract<unknown>, JSON.stringify(value));
    expect(decoded.ok).toBe(false);
    expect(decoded.ok ? '' : decoded.reason).toContain(reason);
  });

  it('names what is not JSON', () => {
    expect(decode(TestCaseContract, '{"caseId":')).toEqual({
      ok: false,
      reason: 'TestCase: not JSON',
    });
  });

  it('refuses to encode an invalid message', () => {
    expect(() => encode(ProbeBatchContract, { ...batch, attempt: 0 })).toThrow(
      'refusing to send an invalid ProbeBatch: attempt',
    );
  });

  it('never throws on arbitrary bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        for (const [, contract] of valid) expect(decode(contract, bytes).ok).toBe(false);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('puts the node in the versioned probe subject', () => {
    expect(probeBatchSubject('lab-node-2')).toBe('lumen.v1.probe.lab-node-2');
  });
});
