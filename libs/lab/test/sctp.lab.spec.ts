import { afterAll, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSupportsSctp } from '#lumen/host';
import { probeExpectations, scenario, upLab, type TestLab } from './support.js';

const file = join(mkdtempSync(join(tmpdir(), 'lumen-sctp-')), 'sctp.yaml');
writeFileSync(
  file,
  `name: sctp
pods:
  - {name: server, labels: {app: server}, ports: [{containerPort: 3868, protocol: SCTP}, {containerPort: 80, protocol: TCP}]}
  - {name: client, labels: {app: client}}
expect:
  - {from: default/client, to: default/server, port: 3868, protocol: SCTP, allowed: true}
  - {from: default/client, to: default/server, port: 80, protocol: TCP, allowed: true}
`,
);

let lab: TestLab | undefined;
afterAll(async () => {
  await lab?.down();
});

it('reports SCTP as unsupported on a kernel without it, never as passed', async () => {
  const sctp = scenario(file);
  lab = await upLab('sctp', file);
  const answers = await probeExpectations(lab.status, sctp);
  const [sctpRow, tcpRow] = sctp.expectations;
  expect(answers.get(tcpRow!)?.reachability).toBe('reachable');
  if (kernelSupportsSctp()) {
    expect(answers.get(sctpRow!)?.reachability).toBe('reachable');
  } else {
    expect(answers.get(sctpRow!)).toMatchObject({
      reachability: 'unsupported',
      reason: 'SCTP is not supported by this kernel',
    });
  }
});
