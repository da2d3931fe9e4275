import { createHash } from 'node:crypto';
import { join } from 'node:path';

const LAB_NAME = /^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/;

export const DEFAULT_LAB_NAME = 'lumen';
export const DEFAULT_LAB_ROOT = '/run/lumen/labs';

/**
 * Every host object a lab makes is named from a short hash of the lab's state root and
 * name, so two labs never collide (not even same-named labs under different roots) and
 * teardown can find everything by prefix even without state.
 */
export class LabNames {
  readonly id: string;

  constructor(
    readonly name: string,
    readonly root: string = DEFAULT_LAB_ROOT,
  ) {
    if (!LAB_NAME.test(name)) {
      throw new Error(`invalid lab name "${name}": use 1-32 lower-case letters, digits and dashes`);
    }
    this.id = createHash('sha256').update(`${root}\0${name}`).digest('hex').slice(0, 6);
  }

  get stateDir(): string {
    return join(this.root, this.name);
  }

  get stateFile(): string {
    return join(this.stateDir, 'state.json');
  }

  get kubeconfig(): string {
    return join(this.stateDir, 'kubeconfig');
  }

  /** A user who may only read (get, list, watch): for tests of missing rights. */
  get readerKubeconfig(): string {
    return join(this.stateDir, 'kubeconfig-reader');
  }

  get daemonLog(): string {
    return join(this.stateDir, 'daemon.log');
  }

  /** Prefix of every network namespace of this lab. */
  get netnsPrefix(): string {
    return `lmn-${this.id}-`;
  }

  /** The namespace that holds the lab's bridge, apart from the host's own networking. */
  get fabricNetns(): string {
    return `${this.netnsPrefix}fabric`;
  }

  podNetns(index: number): string {
    return `${this.netnsPrefix}p${index}`;
  }

  get bridge(): string {
    return 'lumen0';
  }

  /** The bridge-side end of a pod's veth pair (it lives in the fabric namespace). */
  podVeth(index: number): string {
    return `v${index}`;
  }

  /** Directory under a cgroup hierarchy that holds every pod of this lab. */
  get cgroupDir(): string {
    return `lumen-lab-${this.id}`;
  }
}
