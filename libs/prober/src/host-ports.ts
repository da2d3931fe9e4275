import { run } from '#lumen/host';
import { findPodNetns } from './netns.js';
import type { ProbeHost } from './ports.js';

/**
 * The machine as a prober on a node sees it: pod network namespaces through /proc, and
 * nmap run inside one with `nsenter --net=<path>` (an argument array, never a shell).
 */
export function hostProbeHost(nmapTimeoutMs: number): ProbeHost {
  // The process last found for each pod; checked again on every use (pids are reused).
  const lastFound = new Map<string, number>();
  return {
    findNetns: async (uid) => {
      const found = await findPodNetns(uid, '/proc', lastFound.get(uid));
      lastFound.delete(uid);
      if (found) lastFound.set(uid, found.pid);
      // Pods come and go: forget the longest unused when the map grows past any node's pods.
      if (lastFound.size > 10_000) lastFound.delete(lastFound.keys().next().value as string);
      return found;
    },
    runNmap: (path, args) =>
      run('nsenter', [`--net=${path}`, 'nmap', ...args], { timeoutMs: nmapTimeoutMs }),
    now: () => new Date(),
  };
}
