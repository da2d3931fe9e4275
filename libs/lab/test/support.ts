/** Helpers for the lab tests: labs under the test root, and probes with real nmap. */
import { loadScenarioFile, type Expectation, type Scenario } from '#lumen/scenario';
import {
  nmapArguments,
  observe,
  parseNmapXml,
  type PortResult,
  type Reachability,
} from '#lumen/prober';
import { kernelSupportsSctp, runChecked } from '#lumen/host';
import type { IpFamily, Pod, PodRef, Protocol } from '#lumen/policy';
import { TEST_LAB_ROOT } from '#lumen/testing';
import {
  LabNames,
  labDown,
  labStatus,
  labUp,
  requireLab,
  type LabClient,
  type LabStatus,
  type LabPodStatus,
} from '../src/index.js';

export interface TestLab {
  readonly name: string;
  readonly status: LabStatus;
  readonly client: LabClient;
  refresh(): Promise<LabStatus>;
  down(): Promise<void>;
}

export async function upLab(
  name: string,
  scenario: string,
  faults: readonly string[] = [],
): Promise<TestLab> {
  const status = await labUp({
    name,
    root: TEST_LAB_ROOT,
    scenario,
    nodes: 2,
    faults,
    podCidr: '10.244.0.0/16',
  });
  const { client } = requireLab(new LabNames(name, TEST_LAB_ROOT));
  return {
    name,
    status,
    client,
    refresh: () => labStatus(name, TEST_LAB_ROOT),
    down: async () => {
      await labDown(name, TEST_LAB_ROOT);
    },
  };
}

export function podOf(status: LabStatus, ref: PodRef): LabPodStatus {
  const pod = status.pods.find((p) => p.namespace === ref.namespace && p.name === ref.name);
  if (!pod) throw new Error(`no pod ${ref.namespace}/${ref.name} in lab ${status.name}`);
  return pod;
}

export interface Probe {
  readonly to: PodRef;
  readonly port: number;
  readonly protocol: Protocol;
  /** Over this family (to the destination's address of it); unset: its primary address. */
  readonly family?: IpFamily;
}

/** A lab pod's address of a family, or its primary one. */
export function addressOf(pod: LabPodStatus, family: IpFamily | undefined): string {
  if (family === undefined) return pod.ip;
  const ip = pod.ips.find((a) => (a.includes(':') ? 6 : 4) === family);
  if (!ip) throw new Error(`pod ${pod.namespace}/${pod.name} has no IPv${family} address`);
  return ip;
}

export interface ProbeResult extends Probe {
  readonly from: PodRef;
  readonly state: string;
  readonly reason: string;
  readonly reachability: Reachability | 'unsupported';
}

/**
 * Probes from inside one pod's network namespace with one nmap run (plus one per IP
 * family), as the prober will. Listeners are known on every declared containerPort.
 */
export async function probeFrom(
  status: LabStatus,
  cluster: { pods: readonly Pod[] },
  from: PodRef,
  probes: readonly Probe[],
): Promise<ProbeResult[]> {
  const source = podOf(status, from);
  const sctp = kernelSupportsSctp();
  const supported = probes.filter((p) => p.protocol !== 'SCTP' || sctp);
  const results: ProbeResult[] = probes
    .filter((p) => !supported.includes(p))
    .map((p) => ({
      ...p,
      from,
      state: 'none',
      reason: 'SCTP is not supported by this kernel',
      reachability: 'unsupported',
    }));
  const byFamily = new Map<boolean, Probe[]>();
  const target = (probe: Probe): string => addressOf(podOf(status, probe.to), probe.family);
  for (const probe of supported) {
    const v6 = target(probe).includes(':');
    byFamily.set(v6, [...(byFamily.get(v6) ?? []), probe]);
  }
  for (const group of byFamily.values()) {
    const targets = [...new Set(group.map(target))];
    const ports: Partial<Record<Protocol, number[]>> = {};
    for (const p of group) ports[p.protocol] = [...(ports[p.protocol] ?? []), p.port];
    const { stdout } = await runChecked(
      'nsenter',
      [`--net=${source.netns}`, 'nmap', ...nmapArguments({ targets, ports })],
      { timeoutMs: 120_000 },
    );
    const scanned = parseNmapXml(stdout).ports;
    for (const probe of group) {
      const ip = target(probe);
      const found: PortResult | undefined = scanned.find(
        (r) => r.address === ip && r.port === probe.port && r.protocol === probe.protocol,
      );
      if (!found)
        throw new Error(`nmap reported nothing for ${ip}:${probe.port}/${probe.protocol}`);
      const destination = cluster.pods.find(
        (p) => p.namespace === probe.to.namespace && p.name === probe.to.name,
      );
      const listenerKnown =
        destination?.ports.some((cp) => cp.port === probe.port && cp.protocol === probe.protocol) ??
        false;
      results.push({
        ...probe,
        from,
        state: found.state,
        reason: found.reason,
        reachability: observe(found, listenerKnown).reachability,
      });
    }
  }
  return results;
}

/** Probes every expectation of a scenario, one nmap batch per source pod, sources in parallel. */
export async function probeExpectations(
  status: LabStatus,
  scenario: Scenario,
  rows: readonly Expectation[] = scenario.expectations,
): Promise<Map<Expectation, ProbeResult>> {
  const sources = new Map<string, Expectation[]>();
  for (const row of rows)
    sources.set(`${row.from.namespace}/${row.from.name}`, [
      ...(sources.get(`${row.from.namespace}/${row.from.name}`) ?? []),
      row,
    ]);
  const answers = new Map<Expectation, ProbeResult>();
  await Promise.all(
    [...sources.values()].map(async (group) => {
      const results = await probeFrom(status, scenario.cluster, group[0]!.from, group);
      group.forEach((row) => {
        const result = results.find(
          (r) =>
            r.to.namespace === row.to.namespace &&
            r.to.name === row.to.name &&
            r.port === row.port &&
            r.protocol === row.protocol,
        );
        if (result) answers.set(row, result);
      });
    }),
  );
  return answers;
}

export function scenario(file: string): Scenario {
  return loadScenarioFile(file);
}

/** Waits until the enforcer has programmed everything the API holds. */
export async function settle(lab: TestLab, timeoutMs = 20_000): Promise<LabStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await lab.refresh();
    if (
      !status.enforcer.pending &&
      status.enforcer.appliedResourceVersion >= status.resourceVersion
    )
      return status;
    if (Date.now() > deadline)
      throw new Error('the enforcer did not program the latest state in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
