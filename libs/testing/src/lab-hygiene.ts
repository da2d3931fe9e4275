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

/** The names one lab's traces on the host carry (LabNames has them). */
export interface LabTraces {
  readonly netnsPrefix: string;
  readonly cgroupDir: string;
  readonly stateDir: string;
}

/**
 * What labs have on this host now: every lab's, or only `lab`'s (suites run side by side,
 * so a test that compares footprints looks at its own lab).
 */
export function labFootprint(lab?: LabTraces): HostLabFootprint {
  const netnsPrefix = lab?.netnsPrefix ?? 'lmn-';
  const netns = existsSync('/run/netns')
    ? readdirSync('/run/netns').filter((n) => n.startsWith(netnsPrefix))
    : [];
  const cgroups = cgroupRoots().flatMap((root) =>
    readdirSync(root)
      .filter((d) => (lab ? d === lab.cgroupDir : d.startsWith('lumen-lab-')))
      .map((d) => join(root, d)),
  );
  const markers = [lab?.stateDir ?? TEST_LAB_ROOT, `/run/netns/${netnsPrefix}`];
  const processes = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((pid) => `${pid} ${commandLine(pid)}`)
    .filter((line) => markers.some((m) => line.includes(m)));
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
