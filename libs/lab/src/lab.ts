import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInputFile } from '#lumen/scenario';
import { run } from '#lumen/host';
import { LabApiError, LabClient } from './client.js';
import type { LabStatus } from './control.js';
import { apiVersionOf, resourceByKind } from './api/resources.js';
import { LabNames } from './naming.js';
import { creationOrder, describe, scenarioObjects, type ManifestObject } from './objects.js';
import { addProcess, cgroupRoot, processesIn, removeTree } from './runtime/cgroups.js';
import { waitForEmpty } from './runtime/kubelet.js';
import { deleteNetns, labNetnsNames } from './runtime/network.js';
import { readJson, writeJson, type DaemonConfig, type LabState } from './state.js';

export interface LabUpOptions {
  readonly name: string;
  readonly root: string;
  readonly scenario?: string;
  readonly nodes: number;
  readonly faults: readonly string[];
  readonly podCidr: string;
  readonly readyTimeoutMs?: number;
}

const PROTECTED_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function labRunning(names: LabNames): LabState | undefined {
  const state = readJson(names.stateFile) as LabState | undefined;
  if (!state) return undefined;
  return processAlive(state.daemonPid, names) ? state : undefined;
}

/** True when pid is alive and is this lab's daemon (not a recycled pid). */
function processAlive(pid: number, names: LabNames): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('daemon.js') && cmdline.includes(names.stateDir);
  } catch {
    return false;
  }
}

export function requireLab(names: LabNames): { state: LabState; client: LabClient } {
  const state = labRunning(names);
  if (!state)
    throw new Error(`lab "${names.name}" is not running (lumen lab up --name ${names.name})`);
  return { state, client: new LabClient(state) };
}

function daemonLogTail(names: LabNames): string {
  if (!existsSync(names.daemonLog)) return '';
  return readFileSync(names.daemonLog, 'utf8').trim().split('\n').slice(-15).join('\n');
}

/**
 * The compiled daemon. From dist/ it is a sibling; from the TypeScript sources (tests) it
 * is the same path under dist/, which the build keeps current.
 */
function daemonEntry(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'daemon.js');
  const root = here.slice(0, here.lastIndexOf('/libs/'));
  return join(root, 'dist', relative(root, dirname(here)), 'daemon.js');
}

async function startDaemon(names: LabNames, config: DaemonConfig): Promise<LabState> {
  mkdirSync(names.stateDir, { recursive: true, mode: 0o700 });
  writeJson(join(names.stateDir, 'config.json'), config);
  const log = openSync(names.daemonLog, 'a');
  const daemon = spawn(process.execPath, [daemonEntry(), names.stateDir], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  daemon.unref();
  // The daemon lives in the lab's cgroup too, so teardown finds it even without state.
  await addProcess(join(cgroupRoot(), names.cgroupDir, 'lab-daemon'), daemon.pid ?? 0);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = readJson(names.stateFile) as LabState | undefined;
    if (state && state.daemonPid === daemon.pid) return state;
    if (daemon.exitCode !== null || !processAlive(daemon.pid ?? 0, names)) {
      throw new Error(`the lab daemon exited during start-up:\n${daemonLogTail(names)}`);
    }
    if (Date.now() > deadline)
      throw new Error(`the lab daemon did not become ready in 30 s:\n${daemonLogTail(names)}`);
    await sleep(50);
  }
}

function objectPath(object: ManifestObject, withName: boolean): string {
  const type = resourceByKind(object.kind);
  if (!type) throw new Error(`the lab does not serve ${object.kind}`);
  const prefix = type.group ? `/apis/${apiVersionOf(type)}` : `/api/${type.version}`;
  const namespace = type.namespaced ? `/namespaces/${object.metadata.namespace ?? 'default'}` : '';
  return `${prefix}${namespace}/${type.plural}${withName ? `/${object.metadata.name}` : ''}`;
}

/** Creates or replaces each object, as `kubectl apply` would for these kinds. */
export async function applyObjects(
  client: LabClient,
  objects: readonly ManifestObject[],
): Promise<string[]> {
  const done: string[] = [];
  for (const object of creationOrder(objects)) {
    let current: ManifestObject | undefined;
    try {
      current = await client.send<ManifestObject>('GET', objectPath(object, true));
    } catch (error) {
      if (!(error instanceof LabApiError && error.status === 404)) throw error;
    }
    if (current) {
      const metadata = { ...object.metadata, resourceVersion: current.metadata.resourceVersion };
      await client.send('PUT', objectPath(object, true), { ...current, ...object, metadata });
      done.push(`${describe(object)} configured`);
    } else {
      await client.send('POST', objectPath(object, false), object);
      done.push(`${describe(object)} created`);
    }
  }
  return done;
}

export async function deleteObjects(
  client: LabClient,
  objects: readonly ManifestObject[],
): Promise<string[]> {
  const done: string[] = [];
  for (const object of creationOrder(objects).reverse()) {
    if (object.kind === 'Namespace' && PROTECTED_NAMESPACES.has(object.metadata.name)) continue;
    try {
      await client.send('DELETE', objectPath(object, true));
      done.push(`${describe(object)} deleted`);
    } catch (error) {
      if (!(error instanceof LabApiError && error.status === 404)) throw error;
      done.push(`${describe(object)} not found`);
    }
  }
  return done;
}

/** The objects of a scenario or manifest file. */
export function objectsOf(file: string): ManifestObject[] {
  const input = loadInputFile(file);
  if (input.kind === 'scenario') return scenarioObjects(input.scenario);
  return input.objects.filter(
    (o): o is ManifestObject => typeof o.kind === 'string' && resourceByKind(o.kind) !== undefined,
  );
}

/** Waits until every pod in the API runs and the enforcer has programmed the latest state. */
export async function waitUntilSettled(client: LabClient, timeoutMs = 60_000): Promise<LabStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let status: LabStatus;
    let pods: {
      items: {
        metadata: { namespace?: string; name: string };
        status?: { phase?: string; message?: string };
      }[];
    };
    try {
      status = await client.send<LabStatus>('GET', '/lab/v1/status');
      pods = await client.send('GET', '/api/v1/pods');
    } catch (error) {
      // While the enforcer computes the rules of hundreds of new pods, the daemon answers
      // late and its server may drop a waiting connection: ask again until the deadline.
      if (error instanceof LabApiError || Date.now() > deadline) throw error;
      await sleep(500);
      continue;
    }
    const allRunning = pods.items.every(
      (p) => p.status?.phase === 'Running' || p.status?.phase === 'Failed',
    );
    const failed = pods.items.filter((p) => p.status?.phase === 'Failed');
    if (failed.length > 0) {
      const reasons = failed
        .slice(0, 3)
        .map(
          (p) =>
            `${p.metadata.namespace ?? ''}/${p.metadata.name}: ${p.status?.message ?? 'no reason given'}`,
        );
      throw new Error(`${failed.length} pod(s) failed to start: ${reasons.join('; ')}`);
    }
    if (
      allRunning &&
      status.pods.length === pods.items.length &&
      !status.enforcer.pending &&
      status.enforcer.appliedResourceVersion >= status.resourceVersion
    ) {
      return status;
    }
    if (Date.now() > deadline)
      throw new Error('the lab did not settle in time (pods not running or rules not programmed)');
    await sleep(50);
  }
}

export async function labUp(options: LabUpOptions): Promise<LabStatus> {
  const names = new LabNames(options.name, options.root);
  if (labRunning(names))
    throw new Error(
      `lab "${options.name}" is already up; run lumen lab down --name ${options.name} first`,
    );
  await labDown(options.name, options.root);
  const objects = options.scenario ? objectsOf(options.scenario) : [];
  const state = await startDaemon(names, {
    name: options.name,
    root: options.root,
    nodes: options.nodes,
    podCidr: options.podCidr,
    faults: options.faults,
  });
  try {
    const client = new LabClient(state);
    await applyObjects(client, objects);
    return await waitUntilSettled(client, options.readyTimeoutMs);
  } catch (error) {
    // Teardown removes the daemon's log: keep what it said, it is the why.
    const said = daemonLogTail(names);
    await labDown(options.name, options.root);
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}${said ? `\nthe lab daemon's log ends:\n${said}` : ''}`,
      { cause: error },
    );
  }
}

export interface TeardownReport {
  readonly processes: number;
  readonly netns: number;
  readonly cgroups: boolean;
  readonly stateDir: boolean;
}

/**
 * Kills every process of a cgroup tree and removes it. A process the daemon was starting
 * as it stopped (an `ip` or `nft` call) can join after the first look, which makes rmdir
 * fail with EBUSY; so look, kill and try again a few times.
 */
async function emptyAndRemove(tree: string): Promise<number[]> {
  const killed = new Set<number>();
  for (let round = 0; ; round++) {
    for (const pid of await processesIn(tree)) {
      killed.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await waitForEmpty(tree);
    try {
      await removeTree(tree);
      return [...killed];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || round >= 5) throw error;
      await sleep(100);
    }
  }
}

/**
 * Removes everything a lab made: its daemon, every process in its cgroup tree, the
 * cgroups, its network namespaces (and with them links and nftables state) and its state
 * directory. Finds them by name, so it works after a crash or kill -9, and is idempotent.
 */
export async function labDown(name: string, root: string): Promise<TeardownReport> {
  const names = new LabNames(name, root);
  const state = readJson(names.stateFile) as LabState | undefined;
  if (state && processAlive(state.daemonPid, names)) {
    process.kill(state.daemonPid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (processAlive(state.daemonPid, names) && Date.now() < deadline) await sleep(50);
  }
  const tree = join(cgroupRoot(), names.cgroupDir);
  const hadCgroups = existsSync(tree);
  const pids = await emptyAndRemove(tree);
  const netns = labNetnsNames(names);
  const pods = netns.filter((n) => n !== names.fabricNetns);
  await Promise.all(pods.map(deleteNetns));
  await deleteNetns(names.fabricNetns);
  const hadState = existsSync(names.stateDir);
  rmSync(names.stateDir, { recursive: true, force: true });
  return { processes: pids.length, netns: netns.length, cgroups: hadCgroups, stateDir: hadState };
}

export async function labStatus(name: string, root: string): Promise<LabStatus> {
  const { client } = requireLab(new LabNames(name, root));
  return client.send<LabStatus>('GET', '/lab/v1/status');
}

export async function labFault(
  name: string,
  root: string,
  action: 'set' | 'clear',
  mode?: string,
): Promise<readonly string[]> {
  const { client } = requireLab(new LabNames(name, root));
  const result =
    action === 'set'
      ? await client.send<{ faults: string[] }>('POST', '/lab/v1/faults', { fault: mode })
      : await client.send<{ faults: string[] }>(
          'DELETE',
          `/lab/v1/faults${mode ? `/${encodeURIComponent(mode)}` : ''}`,
        );
  return result.faults;
}

/** True when nftables and network namespaces can be used here (root on Linux). */
export async function labPrerequisites(): Promise<string[]> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0)
    problems.push('the lab needs root (network namespaces, nftables, cgroups)');
  for (const tool of ['ip', 'nft', 'nsenter', 'openssl']) {
    const found = await run('sh', ['-c', 'command -v "$1"', 'sh', tool]).catch(() => undefined);
    if (found?.code !== 0)
      problems.push(`${tool} is not installed (npm run bootstrap installs it)`);
  }
  return problems;
}
