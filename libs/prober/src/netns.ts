import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface PodNetns {
  /** The pod's UID, as the batch named it. */
  readonly uid: string;
  readonly pid: number;
  /** Usable with `nsenter --net=`. */
  readonly path: string;
  /** The pod shares the node's network namespace (hostNetwork): it cannot be probed from. */
  readonly hostNetwork: boolean;
}

/**
 * How a pod UID appears in cgroup paths: containerd and CRI-O with the cgroupfs driver
 * write `pod<uid>`, the systemd driver `pod<uid with _ for ->.slice`; docker (dockershim)
 * does the same as cgroupfs.
 */
export function podCgroupMarkers(uid: string): string[] {
  return [`pod${uid}`, `pod${uid.replace(/-/g, '_')}`];
}

function mentionsPod(cgroupFile: string, markers: readonly string[]): boolean {
  return cgroupFile.split('\n').some((line) => {
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    return path
      .split('/')
      .some((segment) =>
        markers.some(
          (m) => segment === m || segment.startsWith(`${m}.`) || segment.endsWith(`-${m}.slice`),
        ),
      );
  });
}

/**
 * Finds a process of the pod with this UID through /proc (the prober runs with hostPID),
 * and so the pod's network namespace, without any container-runtime socket. A hint (the
 * process found last time) is checked first, so that a busy prober does not read every
 * process's cgroup for every batch.
 */
export async function findPodNetns(
  uid: string,
  procRoot = '/proc',
  hint?: number,
): Promise<PodNetns | undefined> {
  if (!/^[0-9a-fA-F-]{1,64}$/.test(uid)) throw new Error(`not a pod UID: ${JSON.stringify(uid)}`);
  const markers = podCgroupMarkers(uid);
  const hostNetns = await readlink(join(procRoot, '1', 'ns', 'net')).catch(() => undefined);
  const pids = (await readdir(procRoot)).filter((entry) => /^\d+$/.test(entry));
  if (hint !== undefined) pids.unshift(String(hint));
  for (const pid of pids) {
    const cgroup = await readFile(join(procRoot, pid, 'cgroup'), 'utf8').catch(() => '');
    if (!cgroup || !mentionsPod(cgroup, markers)) continue;
    const path = join(procRoot, pid, 'ns', 'net');
    const netns = await readlink(path).catch(() => undefined);
    if (netns === undefined) continue;
    return { uid, pid: Number(pid), path, hostNetwork: netns === hostNetns };
  }
  return undefined;
}

/**
 * Whether the process found for a pod still belongs to it: a pid is reused once its
 * process exits, and a batch's second scan (the other IP family) runs a minute later.
 */
export async function stillThePod(netns: PodNetns, procRoot = '/proc'): Promise<boolean> {
  const cgroup = await readFile(join(procRoot, String(netns.pid), 'cgroup'), 'utf8').catch(
    () => '',
  );
  return cgroup !== '' && mentionsPod(cgroup, podCgroupMarkers(netns.uid));
}
