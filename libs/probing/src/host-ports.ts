import { findPodNetns } from '#lumen/netns';
import { run } from '#lumen/system';
import type { ProberPorts } from './execute.js';

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
