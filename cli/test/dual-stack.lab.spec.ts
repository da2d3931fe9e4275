/**
 * Both IP families, end to end in the lab (issue 19): the watcher reads dual-stack pods'
 * status.podIPs, the planner plans each connection over each family with that family's
 * expectation (ipBlocks per family), the prober probes the IPv6 addresses with real nmap,
 * and the ignore-ipv6 fault (policies enforced over IPv4 only) fails exactly the IPv6
 * connections the policies deny.
 */
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { parseCidr, type Cidr } from '#lumen/policy';
import { repositoryRoot } from '#lumen/testing';
import { coverageText, type CaseReport, type RunCoverage } from '../src/pipeline/report.js';
import { judgeOnceInTheLab } from './lab-run.js';

const file = join(repositoryRoot, 'examples', 'dual-stack', 'ipblock-per-family.yaml');
// The scenario fixes its pods' addresses of both families.
const podCidrs = ['10.10.0.0/16', 'fd00:10::/64'].map((c) => parseCidr(c) as Cidr);
const judged = judgeOnceInTheLab('lumen-dual-e2e');
const run = async (
  name: string,
  faults: readonly string[],
): Promise<CaseReport[] & { coverage: RunCoverage }> => {
  const { cases, coverage } = await judged(name, file, faults, { coverage: 'full', podCidrs });
  return Object.assign(cases, { coverage });
};

const line = (c: CaseReport): string =>
  `${c.from.pod}->${c.to.pod}:${c.port} v${c.family ?? 4} ${c.expected} ${c.outcome}`;

describe('both IP families in the lab', () => {
  it('verifies each connection over each family, ipBlocks per family, and passes them all', async () => {
    const cases = await run('dual-e2e', []);
    expect(cases.filter((c) => c.outcome !== 'pass').map(line)).toEqual([]);
    expect(cases.map(line)).toEqual(
      expect.arrayContaining([
        'client->web:80 v4 allow pass',
        'client->web:80 v6 deny pass',
        'client->api:8080 v4 allow pass',
        'client->api:8080 v6 allow pass',
      ]),
    );
    const v4 = cases.filter((c) => !c.family).length;
    expect(cases.filter((c) => c.family === 6).length).toBe(v4);
    // The families are counted apart: 3 pods, 2 listeners, so 4 cells in each.
    expect(cases.coverage.families).toEqual([
      { family: 4, cells: 4, cellsVerified: 4 },
      { family: 6, cells: 4, cellsVerified: 4 },
    ]);
    expect(coverageText(cases.coverage)).toContain(
      'Per IP family: IPv4 4 of 4 cells (100%), IPv6 4 of 4 cells (100%).',
    );
  });

  it('with ignore-ipv6, fails exactly the IPv6 connections the policies deny, and says the family', async () => {
    const cases = await run('dual-v6', ['ignore-ipv6']);
    const failed = cases.filter((c) => c.outcome !== 'pass');
    expect(failed.length).toBeGreaterThan(0);
    for (const c of failed) {
      expect(c).toMatchObject({ family: 6, expected: 'deny', observed: 'reachable' });
      expect(c.verdict).toMatch(/^over IPv6: expected blocked, observed reachable/);
    }
    expect(
      cases
        .filter((c) => c.family === 6 && c.expected === 'deny' && c.outcome === 'pass')
        .map(line),
    ).toEqual([]);
    expect(failed.map(line)).toEqual(expect.arrayContaining(['client->web:80 v6 deny fail']));
  });
});
