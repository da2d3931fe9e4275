import { run } from '#lumen/host';
import { findPodNetns } from './netns.js';
import type { ProbeHost } from './ports.js';

/**
 * The machine as a prober on a node sees it: pod network namespaces through /proc, and
 * nmap run inside one with `nsenter --net=<path>` (an argument array, never a shell).
 */
export function hostProbeHost(nmapTimeoutMs: number): ProbeHost {
  return {
    findNetns: (uid) => findPodNetns(uid),
    runNmap: (path, args) =>
      run('nsenter', [`--net=${path}`, 'nmap', ...args], { timeoutMs: nmapTimeoutMs }),
    now: () => new Date(),
  };
}
