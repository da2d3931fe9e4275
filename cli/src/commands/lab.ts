import { parseArgs } from 'node:util';
import {
  DEFAULT_LAB_NAME,
  FAULT_MODES,
  LabNames,
  applyObjects,
  deleteObjects,
  labDown,
  labFault,
  labPrerequisites,
  labStatus,
  labUp,
  objectsOf,
  parseFault,
  requireLab,
  waitUntilSettled,
  type LabStatus,
} from '#lumen/lab';
import { cliConfig } from '../config.js';
import { ExitCode, UsageError, renderTable, type CommandIo } from '../io.js';

export const labUsage = `Usage: lumen lab COMMAND [--name NAME]

A Kubernetes-shaped cluster on this machine: one network namespace per pod on a bridge,
real listeners, an API server test double for kubectl and client-node, and a policy
enforcer (nftables) that can be broken on purpose. Needs root on Linux.

Commands:
  up --scenario FILE [--nodes N] [--fault MODE]... [--pod-cidr CIDR]
                          build a lab from a scenario or manifests (- reads standard
                          input; default 2 nodes, 10.244.0.0/16)
  apply FILE              create or update the namespaces, pods and policies of FILE
  delete FILE             delete them
  fault set MODE          break the enforcer; MODE is one of:
                          ${FAULT_MODES.join(', ')}
  fault clear [MODE]      heal it (every fault, or MODE)
  status [--json]         pods, IPs, nodes, policies, faults, enforcer propagation time
  down                    remove everything the lab made (idempotent, works after a crash)

--name NAME picks the lab (default "${DEFAULT_LAB_NAME}"); labs with different names never collide.
`;

const options = {
  name: { type: 'string', default: DEFAULT_LAB_NAME },
  scenario: { type: 'string' },
  nodes: { type: 'string', default: '2' },
  fault: { type: 'string', multiple: true },
  'pod-cidr': { type: 'string', default: '10.244.0.0/16' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function statusText(status: LabStatus): string {
  const pods = renderTable(
    ['POD', 'IP', 'NODE', 'PID', 'NETNS'],
    status.pods.map((p) => [
      `${p.namespace}/${p.name}`,
      p.ip,
      p.node,
      String(p.pid),
      p.hostNetwork ? '(hostNetwork)' : p.netns,
    ]),
  );
  const { propagation } = status.enforcer;
  const ms = (value: number | undefined): string =>
    value === undefined ? '-' : `${Math.round(value)} ms`;
  return [
    `lab ${status.name}: ${status.pods.length} pods on ${status.nodes.length} nodes, ${status.policies.length} policies`,
    `kubeconfig: ${status.kubeconfig}`,
    `API server: ${status.apiServer}`,
    `faults: ${status.faults.length > 0 ? status.faults.join(', ') : 'none'}`,
    `enforcer: ${status.enforcer.pending ? 'changes pending' : 'up to date'}; propagation last ${ms(propagation.lastMs)}, median ${ms(propagation.medianMs)}, max ${ms(propagation.maxMs)} over ${propagation.count} changes`,
    '',
    pods.trimEnd(),
    '',
    `policies: ${status.policies.join(', ') || 'none'}`,
    '',
  ].join('\n');
}

async function requireRoot(): Promise<void> {
  const problems = await labPrerequisites();
  if (problems.length > 0) throw new UsageError(`the lab cannot run here: ${problems.join('; ')}`);
}

type LabValues = ReturnType<typeof parse>['values'];

function parse(args: readonly string[]) {
  return parseArgs({ args: [...args], allowPositionals: true, options });
}

async function up(
  name: string,
  labRoot: string,
  values: LabValues,
  io: CommandIo,
): Promise<number> {
  if (!values.scenario) throw new UsageError('lab up needs --scenario FILE');
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 50)
    throw new UsageError(`--nodes must be a whole number from 1 to 50, not ${values.nodes}`);
  const faults = values.fault ?? [];
  faults.forEach(parseFault);
  await requireRoot();
  const status = await labUp({
    name,
    root: labRoot,
    scenario: values.scenario,
    nodes,
    faults,
    podCidr: values['pod-cidr'],
  });
  io.stdout(
    `lab ${name} is up: ${status.pods.length} pods on ${status.nodes.length} nodes\nkubeconfig: ${status.kubeconfig}\n`,
  );
  return ExitCode.ok;
}

async function change(
  command: 'apply' | 'delete',
  name: string,
  labRoot: string,
  file: string | undefined,
  io: CommandIo,
): Promise<number> {
  if (!file) throw new UsageError(`lab ${command} needs a FILE`);
  const objects = objectsOf(file);
  const { client } = requireLab(new LabNames(name, labRoot));
  const done =
    command === 'apply'
      ? await applyObjects(client, objects)
      : await deleteObjects(client, objects);
  await waitUntilSettled(client);
  io.stdout(done.map((line) => `${line}\n`).join(''));
  return ExitCode.ok;
}

async function fault(
  name: string,
  labRoot: string,
  action: string | undefined,
  mode: string | undefined,
  io: CommandIo,
): Promise<number> {
  if (action !== 'set' && action !== 'clear')
    throw new UsageError('lab fault needs "set MODE" or "clear [MODE]"');
  if (action === 'set') {
    if (!mode) throw new UsageError(`lab fault set needs a MODE: ${FAULT_MODES.join(', ')}`);
    parseFault(mode);
  }
  const faults = await labFault(name, labRoot, action, mode);
  io.stdout(`faults: ${faults.length > 0 ? faults.join(', ') : 'none'}\n`);
  return ExitCode.ok;
}

export async function runLab(args: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args);
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    io.stdout(labUsage);
    return command === undefined && !values.help ? ExitCode.error : ExitCode.ok;
  }
  const { labRoot } = cliConfig();
  const name = new LabNames(values.name, labRoot).name;
  switch (command) {
    case 'up':
      return up(name, labRoot, values, io);
    case 'apply':
    case 'delete':
      return change(command, name, labRoot, rest[0], io);
    case 'fault':
      return fault(name, labRoot, rest[0], rest[1], io);
    case 'status': {
      const status = await labStatus(name, labRoot);
      io.stdout(values.json ? `${JSON.stringify(status, null, 2)}\n` : statusText(status));
      return ExitCode.ok;
    }
    case 'down': {
      const report = await labDown(name, labRoot);
      io.stdout(
        `lab ${name} is down: ${report.processes} processes stopped, ${report.netns} network namespaces removed\n`,
      );
      return ExitCode.ok;
    }
    default:
      throw new UsageError(`unknown lab command "${command}"`);
  }
}
