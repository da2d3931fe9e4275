import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { run, runChecked } from '#lumen/host';
import type { LabNames } from '../naming.js';

const NETNS_DIR = '/run/netns';

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** Runs `ip` inside a named network namespace. */
function ipIn(netns: string, args: readonly string[]): Promise<unknown> {
  return runChecked('ip', ['-n', netns, ...args]);
}

/**
 * The lab's layer 2: one bridge inside a dedicated "fabric" network namespace, so that
 * the host's own firewall (and bridge netfilter) never sees lab traffic and lab traffic
 * never reaches the host.
 */
export async function createFabric(names: LabNames): Promise<void> {
  if (!existsSync(netnsPath(names.fabricNetns)))
    await runChecked('ip', ['netns', 'add', names.fabricNetns]);
  const bridgeExists =
    (await run('ip', ['-n', names.fabricNetns, 'link', 'show', names.bridge])).code === 0;
  if (!bridgeExists) await ipIn(names.fabricNetns, ['link', 'add', names.bridge, 'type', 'bridge']);
  await ipIn(names.fabricNetns, ['link', 'set', names.bridge, 'up']);
}

/** The kernel's neighbour-table limits: soft (gc_thresh2) and hard (gc_thresh3). */
export interface NeighbourLimits {
  readonly soft: number;
  readonly hard: number;
}

/**
 * The limits a lab of `pods` pods needs, or undefined when the current ones do. The
 * kernel keeps one neighbour (ARP/NDP) table for all network namespaces, capped by default
 * at 1,024 entries; on the lab's flat bridge every pod resolves every pod it probes, up to
 * pods² entries. Past the cap the kernel drops packets ("neighbor table overflow"): under
 * parallel probing, answers from allowed pods went missing and were judged blocked. A real
 * node holds only its own pods' neighbours. Limits only ever go up, in powers of two.
 */
export function neighbourLimitsFor(
  pods: number,
  current: NeighbourLimits,
): NeighbourLimits | undefined {
  const need = 2 ** Math.ceil(Math.log2(pods * pods + 1024));
  if (current.hard >= need && current.soft >= need / 2) return undefined;
  return { soft: Math.max(current.soft, need / 2), hard: Math.max(current.hard, need) };
}

const NEIGHBOUR_SYSCTLS = ['ipv4', 'ipv6'].map((family) => ({
  soft: `/proc/sys/net/${family}/neigh/default/gc_thresh2`,
  hard: `/proc/sys/net/${family}/neigh/default/gc_thresh3`,
}));

/** Raises the host's neighbour-table limits for this many pods, if they are lower. */
export function ensureNeighbourCapacity(pods: number, log?: (message: string) => void): void {
  for (const sysctl of NEIGHBOUR_SYSCTLS) {
    if (!existsSync(sysctl.hard)) continue;
    const current = {
      soft: Number(readFileSync(sysctl.soft, 'utf8')),
      hard: Number(readFileSync(sysctl.hard, 'utf8')),
    };
    const raised = neighbourLimitsFor(pods, current);
    if (!raised) continue;
    // The hard limit first: the kernel refuses a soft limit above the hard one.
    writeFileSync(sysctl.hard, String(raised.hard));
    writeFileSync(sysctl.soft, String(raised.soft));
    log?.(
      `raised ${sysctl.hard.replace('/gc_thresh3', '')} gc_thresh2/3 to ${raised.soft}/${raised.hard} for ${pods} pods`,
    );
  }
}

export interface PodNetwork {
  readonly netns: string;
  readonly veth: string;
  readonly ips: readonly string[];
}

/**
 * A pod's network namespace, wired to the bridge by a veth pair. Each of the pod's
 * addresses (one per family for a dual-stack pod) is a host route (/32 or /128) with an
 * on-link default route of its family, so pods of any subnet reach each other across the
 * one bridge, as on a flat pod network.
 */
export async function createPodNetwork(
  names: LabNames,
  index: number,
  ips: readonly string[],
): Promise<PodNetwork> {
  const netns = names.podNetns(index);
  const veth = names.podVeth(index);
  const v6 = ips.some((ip) => ip.includes(':'));
  await runChecked('ip', ['netns', 'add', netns]);
  await runChecked('ip', [
    '-n',
    names.fabricNetns,
    'link',
    'add',
    veth,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    netns,
  ]);
  await ipIn(names.fabricNetns, ['link', 'set', veth, 'master', names.bridge, 'up']);
  await ipIn(netns, ['link', 'set', 'lo', 'up']);
  if (v6)
    await runChecked('ip', [
      'netns',
      'exec',
      netns,
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.eth0.accept_dad=0',
    ]);
  for (const ip of ips)
    await ipIn(netns, ['addr', 'add', `${ip}/${ip.includes(':') ? 128 : 32}`, 'dev', 'eth0']);
  await ipIn(netns, ['link', 'set', 'eth0', 'up']);
  for (const inV6 of new Set(ips.map((ip) => ip.includes(':'))))
    await ipIn(netns, [...(inV6 ? ['-6'] : []), 'route', 'add', 'default', 'dev', 'eth0']);
  return { netns, veth, ips };
}

/** Deleting the namespace destroys its veth pair; absent namespaces are fine. */
export async function deleteNetns(netns: string): Promise<void> {
  if (existsSync(netnsPath(netns))) await run('ip', ['netns', 'delete', netns]);
}

/** Every network namespace of a lab, found by name prefix (used by teardown). */
export function labNetnsNames(names: LabNames): string[] {
  if (!existsSync(NETNS_DIR)) return [];
  return readdirSync(NETNS_DIR).filter((n) => n.startsWith(names.netnsPrefix));
}
