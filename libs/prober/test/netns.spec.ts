import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPodNetns, podCgroupMarkers, stillThePod } from '#lumen/prober';

const uid = '4f1c2a9e-7b3d-4e2a-9c1f-0a1b2c3d4e5f';

/** A fake /proc: pid -> cgroup file and net namespace link. */
function fakeProc(processes: Record<string, { cgroup: string; netns: string }>): string {
  const root = mkdtempSync(join(tmpdir(), 'lumen-proc-'));
  for (const [pid, { cgroup, netns }] of Object.entries({
    '1': { cgroup: '0::/init.scope\n', netns: 'net:[4026531840]' },
    ...processes,
  })) {
    mkdirSync(join(root, pid, 'ns'), { recursive: true });
    writeFileSync(join(root, pid, 'cgroup'), cgroup);
    symlinkSync(netns, join(root, pid, 'ns', 'net'));
  }
  return root;
}

describe('findPodNetns (unit, on a fake /proc)', () => {
  it.each([
    [
      'containerd, cgroupfs driver, cgroup v1',
      `12:pids:/kubepods/besteffort/pod${uid}/0123abcd\n1:name=systemd:/kubepods/besteffort/pod${uid}/0123abcd\n`,
    ],
    [
      'containerd, systemd driver, cgroup v2',
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-0123abcd.scope\n`,
    ],
    [
      'CRI-O, systemd driver',
      `0::/kubepods.slice/kubepods-pod${uid.replace(/-/g, '_')}.slice/crio-0123abcd.scope\n`,
    ],
    ['docker, cgroupfs driver', `4:memory:/kubepods/pod${uid}/0123abcd\n`],
  ])('finds the pod under %s', async (_runtime, cgroup) => {
    const proc = fakeProc({
      '4242': { cgroup, netns: 'net:[4026532999]' },
      '17': { cgroup: '0::/system.slice/kubelet.service\n', netns: 'net:[4026531840]' },
    });
    expect(await findPodNetns(uid, proc)).toEqual({
      uid,
      pid: 4242,
      path: join(proc, '4242', 'ns', 'net'),
      hostNetwork: false,
    });
  });

  it('says when the pod shares the host network namespace', async () => {
    const proc = fakeProc({
      '99': { cgroup: `0::/kubepods/besteffort/pod${uid}/abc\n`, netns: 'net:[4026531840]' },
    });
    expect((await findPodNetns(uid, proc))?.hostNetwork).toBe(true);
  });

  it('does not confuse a UID that is a prefix of another', async () => {
    const proc = fakeProc({
      '99': { cgroup: `0::/kubepods/besteffort/pod${uid}0/abc\n`, netns: 'net:[4026532000]' },
    });
    expect(await findPodNetns(uid, proc)).toBeUndefined();
  });

  it('tries the hinted process first, and only trusts it while it is still the pod’s', async () => {
    const cgroup = `0::/kubepods/besteffort/pod${uid}/abc\n`;
    const proc = fakeProc({
      '200': { cgroup, netns: 'net:[4026532001]' },
      '300': { cgroup, netns: 'net:[4026532001]' },
      '400': { cgroup: '0::/kubepods/besteffort/podother/abc\n', netns: 'net:[4026532002]' },
    });
    expect((await findPodNetns(uid, proc, 300))?.pid).toBe(300);
    // The hint's pid now belongs to another pod (reused): the scan finds the pod's own.
    expect((await findPodNetns(uid, proc, 400))?.pid).toBe(200);
  });

  it('checks again before each run that the process is still the pod’s (pids are reused)', async () => {
    const proc = fakeProc({
      '500': { cgroup: `0::/kubepods/besteffort/pod${uid}/abc\n`, netns: 'net:[4026532003]' },
    });
    const found = (await findPodNetns(uid, proc))!;
    expect(await stillThePod(found, proc)).toBe(true);
    // The pod's process exited and its pid went to another pod's.
    writeFileSync(join(proc, '500', 'cgroup'), '0::/kubepods/besteffort/podother/abc\n');
    expect(await stillThePod(found, proc)).toBe(false);
    // Or to nothing at all.
    expect(await stillThePod({ ...found, pid: 999 }, proc)).toBe(false);
  });

  it('refuses anything that is not a UID', async () => {
    await expect(findPodNetns('../../etc')).rejects.toThrow('not a pod UID');
  });

  it('knows both spellings of the UID', () => {
    expect(podCgroupMarkers('a-b')).toEqual(['poda-b', 'poda_b']);
  });
});
