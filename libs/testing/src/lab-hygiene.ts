import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where lab tests keep their labs' state, apart from any lab a person runs. */
export const TEST_LAB_ROOT = '/run/lumen/test-labs';

/** What labs leave on a host: network namespaces, cgroups and daemon processes. */
export interface HostLabFootprint {
  readonly netns: readonly string[];
  readonly cgroups: readonly string[];
  readonly processes: readonly string[];
}

function cgroupRoots(): string[] {
  return ['/sys/fs/cgroup', '/sys/fs/cgroup/unified', '/sys/fs/cgroup/pids'].filter((r) =>
    existsSync(join(r, 'cgroup.procs')),
  );
}

function commandLine(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

export function labFootprint(): HostLabFootprint {
  const netns = existsSync('/run/netns')
    ? readdirSync('/run/netns').filter((n) => n.startsWith('lmn-'))
    : [];
  const cgroups = cgroupRoots().flatMap((root) =>
    readdirSync(root)
      .filter((d) => d.startsWith('lumen-lab-'))
      .map((d) => join(root, d)),
  );
  const processes = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((pid) => `${pid} ${commandLine(pid)}`)
    .filter((line) => line.includes(TEST_LAB_ROOT) || line.includes('/run/netns/lmn-'));
  return { netns, cgroups, processes };
}

/** What `after` has that `before` had not. */
export function leaks(before: HostLabFootprint, after: HostLabFootprint): string[] {
  const added = (a: readonly string[], b: readonly string[]): string[] =>
    b.filter((x) => !a.includes(x));
  return [
    ...added(before.netns, after.netns).map((n) => `network namespace ${n}`),
    ...added(before.cgroups, after.cgroups).map((c) => `cgroup ${c}`),
    ...added(before.processes, after.processes).map((p) => `process ${p}`),
  ];
}
