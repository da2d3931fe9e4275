import { open } from 'node:fs/promises';
import { run } from '#lumen/host';
import { findPodNetns, stillThePod } from './netns.js';
import type { ProbeHost } from './ports.js';

/** Where nsenter finds the namespace the prober opened for it: its fd 3. */
const INHERITED_NETNS = '/proc/self/fd/3';

/**
 * The machine as a prober on a node sees it: pod network namespaces through /proc, and
 * nmap run inside one with nsenter (an argument array, never a shell). Before each run
 * the namespace is opened and held by file descriptor, then the process is checked to
 * still be the pod's: what nsenter enters is that descriptor, so a pid reused since the
 * pod was found cannot send a probe from someone else's namespace.
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
    runNmap: async (netns, args) => {
      const held = await open(netns.path, 'r');
      try {
        if (!(await stillThePod(netns)))
          throw new Error(
            `process ${netns.pid} no longer belongs to pod ${netns.uid}: not probing from it`,
          );
        return await run('nsenter', [`--net=${INHERITED_NETNS}`, 'nmap', ...args], {
          timeoutMs: nmapTimeoutMs,
          inheritFds: [held.fd],
        });
      } finally {
        await held.close();
      }
    },
    stillThere: (netns) => stillThePod(netns),
    now: () => new Date(),
  };
}
