import { findPodNetns } from '#lumen/netns';
import type { Cidr } from '#lumen/policy';
import { kernelSupportsSctp, run } from '#lumen/system';
import type { ProberPorts, ProberSettings } from './execute.js';

/**
 * The machine as a prober on a node sees it: pod network namespaces through /proc, and
 * nmap run inside one with `nsenter --net=<path>` (an argument array, never a shell).
 */
export function hostProberPorts(nmapTimeoutMs: number): ProberPorts {
  return {
    findNetns: (uid) => findPodNetns(uid),
    runNmap: (path, args) =>
      run('nsenter', [`--net=${path}`, 'nmap', ...args], { timeoutMs: nmapTimeoutMs }),
    now: () => new Date(),
  };
}

/**
 * A prober's settings with the service's defaults (every protocol the kernel has, every
 * port, SYN scans, 300 ms RTT cap, 60 s per host): what `lumen run` and the benchmark use.
 */
export function defaultProberSettings(node: string, podCidrs: readonly Cidr[]): ProberSettings {
  return {
    node,
    podCidrs,
    protocols: ['TCP', 'UDP', 'SCTP'],
    portRanges: [{ from: 1, to: 65535 }],
    sctpSupported: kernelSupportsSctp(),
    tcpScan: 'syn',
    maxRttTimeoutMs: 300,
    hostTimeoutMs: 60_000,
  };
}
