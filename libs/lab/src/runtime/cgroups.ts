import { existsSync } from 'node:fs';
import { readFile, readdir, rmdir, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The cgroup hierarchy the lab puts pod processes in: cgroup v2 when the machine has
 * it (alone or beside v1), else the v1 `pids` hierarchy. No controller is configured;
 * the cgroup only gives each pod a kubelet-shaped path in /proc/<pid>/cgroup.
 */
export function cgroupRoot(): string {
  for (const candidate of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (existsSync(join(candidate, 'cgroup.controllers'))) return candidate;
  }
  if (existsSync('/sys/fs/cgroup/pids/cgroup.procs')) return '/sys/fs/cgroup/pids';
  throw new Error('no usable cgroup hierarchy under /sys/fs/cgroup');
}

/** The cgroupfs-driver shape kubelet uses: `kubepods/besteffort/pod<uid>/<container-id>`. */
export function podCgroupPath(
  root: string,
  labDir: string,
  podUid: string,
  containerId: string,
): string {
  return join(root, labDir, 'kubepods', 'besteffort', `pod${podUid}`, containerId);
}

export async function addProcess(cgroupPath: string, pid: number): Promise<void> {
  await mkdir(cgroupPath, { recursive: true });
  await writeFile(join(cgroupPath, 'cgroup.procs'), `${pid}\n`);
}

/** Every pid in a cgroup tree (deepest first does not matter for reading). */
export async function processesIn(dir: string): Promise<number[]> {
  if (!existsSync(dir)) return [];
  // The tree may vanish while it is read (a pod stopping): a missing part holds no process.
  const own = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map(Number);
  const children = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) =>
    e.isDirectory(),
  );
  const nested = await Promise.all(children.map((c) => processesIn(join(dir, c.name))));
  return [...own, ...nested.flat()];
}

/** Removes a cgroup tree bottom-up; it must hold no process any more. */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const children = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) =>
    e.isDirectory(),
  );
  await Promise.all(children.map((c) => removeTree(join(dir, c.name))));
  await rmdir(dir).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  });
}
