import type { Observation, ProbeBatch, ProbeResult } from '#lumen/contracts';
import { cidrContains, parseIp, type Protocol } from '#lumen/policy';
import { nmapArguments } from './nmap/arguments.js';
import { observe } from './nmap/observe.js';
import { NmapOutputError, parseNmapXml, type PortResult } from './nmap/parse.js';
import type { PodNetns } from './netns.js';
import type { ProbeHost, SourceCheck } from './ports.js';
import type { ProberSettings } from './settings.js';

type Target = ProbeBatch['targets'][number];

/** What an observation repeats of its target, a rotation cell's expected verdict included. */
function echo(target: Target): Omit<Observation, 'reachability' | 'basis' | 'evidence'> {
  return {
    caseId: target.caseId,
    round: target.round,
    ...(target.destination ? { destination: target.destination } : {}),
    ip: target.ip,
    port: target.port,
    protocol: target.protocol,
    ...(target.expected ? { expected: target.expected } : {}),
  };
}

function inconclusive(target: Target, basis: string): Observation {
  return { ...echo(target), reachability: 'inconclusive', basis };
}

/** Why a target may not be probed, or undefined when it may. */
function refusal(target: Target, settings: ProberSettings): string | undefined {
  const address = parseIp(target.ip);
  if (target.service) {
    if (!address || !settings.serviceCidrs.some((cidr) => cidrContains(cidr, address)))
      return `refused: ${target.ip} (Service ${target.service.namespace}/${target.service.name}) is outside the service CIDRs`;
    // A raw scan's replies come back from the backend's address, untranslated where nmap
    // captures them: only a connect scan sees through a Service.
    if (target.protocol !== 'TCP')
      return `refused: only TCP is probed through a Service (Service ${target.service.namespace}/${target.service.name})`;
  } else if (!address || !settings.podCidrs.some((cidr) => cidrContains(cidr, address)))
    return `refused: ${target.ip} is outside the pod CIDRs`;
  if (settings.refusedAddresses.includes(target.ip))
    return `refused: ${target.ip} is an address of a node`;
  if (!settings.protocols.includes(target.protocol))
    return `refused: protocol ${target.protocol} is not allowed`;
  if (!settings.portRanges.some((r) => target.port >= r.from && target.port <= r.to))
    return `refused: port ${target.port} is not allowed`;
  if (target.protocol === 'SCTP' && !settings.sctpSupported)
    return 'unsupported: this kernel has no SCTP';
  return undefined;
}

async function scan(
  targets: readonly Target[],
  netns: PodNetns,
  settings: ProberSettings,
  host: ProbeHost,
  tcpScan: ProberSettings['tcpScan'],
): Promise<{ observations: Observation[]; command: string[] }> {
  const perProtocol: Partial<Record<Protocol, number[]>> = {};
  for (const t of targets) perProtocol[t.protocol] = [...(perProtocol[t.protocol] ?? []), t.port];
  const args = nmapArguments({
    targets: [...new Set(targets.map((t) => t.ip))],
    ports: perProtocol,
    tcpScan,
    maxRttTimeoutMs: settings.maxRttTimeoutMs,
    hostTimeoutMs: settings.hostTimeoutMs,
    maxRate: settings.maxRate,
  });
  const command = ['nsenter', `--net=${netns.path}`, 'nmap', ...args];
  let scanned: readonly PortResult[];
  try {
    const result = await host.runNmap(netns, args);
    if (result.code !== 0)
      throw new NmapOutputError(
        `nmap exited with ${String(result.code ?? result.signal)}: ${result.stderr.trim().split('\n')[0] ?? ''}`,
      );
    const parsed = parseNmapXml(result.stdout);
    if (parsed.error) throw new NmapOutputError(parsed.error);
    scanned = parsed.ports;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      observations: targets.map((t) => inconclusive(t, `nmap error: ${reason}`.slice(0, 500))),
      command,
    };
  }
  const observations = targets.map((t): Observation => {
    const found = scanned.find(
      (r) => r.address === t.ip && r.port === t.port && r.protocol === t.protocol,
    );
    if (!found) return inconclusive(t, 'nmap error: no result for this target');
    const { reachability, basis } = observe(found, t.listenerKnown);
    return {
      ...echo(t),
      reachability,
      basis: t.service
        ? `${basis} (through Service ${t.service.namespace}/${t.service.name} at ${t.ip}:${t.port}; which backend answered cannot be told from the source pod)`.slice(
            0,
            500,
          )
        : basis,
      evidence: {
        state: found.state,
        reason: found.reason,
        ...(found.reasonTtl === undefined ? {} : { reasonTtl: found.reasonTtl }),
      },
    };
  });
  return { observations, command };
}

/** A batch's result before it is sent: the prober adds the batch's stream sequence. */
export type BatchObservations = Omit<ProbeResult, 'batchSequence'>;

/**
 * One batch: find the source pod's network namespace by UID, refuse what may not be
 * probed, then one nmap per IP family for everything else, from inside that namespace.
 * Every failure becomes an inconclusive observation with its reason; nothing throws.
 */
/**
 * One nmap per IP family over the allowed targets, their observations into `observations`;
 * the command lines run. A source pod deleted while nmap ran took its network with it:
 * nothing it saw is evidence about the policies, and a probe that timed out must not read
 * as "blocked", so every observation of the batch is then inconclusive.
 */
async function scanFamilies(
  allowed: readonly Target[],
  batch: ProbeBatch,
  netns: PodNetns,
  context: { readonly settings: ProberSettings; readonly host: ProbeHost },
  observations: Map<Target, Observation>,
): Promise<string[]> {
  const { settings, host } = context;
  const command: string[] = [];
  for (const family of [4, 6])
    for (const throughService of [false, true]) {
      const group = allowed.filter(
        (t) =>
          (t.ip.includes(':') ? 6 : 4) === family && (t.service !== undefined) === throughService,
      );
      if (group.length === 0) continue;
      // Through a Service a connect scan: nmap matches a raw scan's replies by address, and
      // the backend's replies reach it untranslated (docs/services.md).
      const tcpScan = throughService ? 'connect' : settings.tcpScan;
      const result = await scan(group, netns, settings, host, tcpScan);
      result.observations.forEach((o, i) => observations.set(group[i] as Target, o));
      command.push(...(command.length > 0 ? [';'] : []), ...result.command);
    }
  if (allowed.length > 0 && !(await host.stillThere(netns).catch(() => false)))
    for (const t of allowed)
      observations.set(
        t,
        inconclusive(
          t,
          `source pod ${batch.source.namespace}/${batch.source.name} was deleted during the probe: what nmap saw proves nothing`,
        ),
      );
  return command;
}

export async function executeBatch(
  batch: ProbeBatch,
  settings: ProberSettings,
  host: ProbeHost,
  sources?: SourceCheck,
): Promise<BatchObservations> {
  const started = host.now();
  const base = {
    batchId: batch.batchId,
    node: batch.node,
    attempt: batch.attempt,
    source: { namespace: batch.source.namespace, name: batch.source.name },
    ...(batch.blockId ? { blockId: batch.blockId } : {}),
  };
  const finish = (observations: Observation[], command?: string[]): BatchObservations => ({
    ...base,
    observations,
    startedAt: started.toISOString(),
    durationMs: host.now().getTime() - started.getTime(),
    ...(command ? { command } : {}),
  });
  if (batch.targets.length > settings.maxTargetsPerBatch)
    return finish(
      batch.targets.map((t) =>
        inconclusive(
          t,
          `refused: the batch names ${batch.targets.length} targets, more than ${settings.maxTargetsPerBatch}`,
        ),
      ),
    );
  if (batch.node !== settings.node) {
    return finish(
      batch.targets.map((t) =>
        inconclusive(
          t,
          `refused: the batch is for node ${batch.node}, this prober serves ${settings.node}`,
        ),
      ),
    );
  }
  // Fails closed: a source the API cannot vouch for is not entered.
  const sourceRefused = sources
    ? await sources
        .refusal(batch.source)
        .catch((error: unknown) =>
          `the API could not check the source pod: ${String(error)}`.slice(0, 300),
        )
    : undefined;
  if (sourceRefused)
    return finish(batch.targets.map((t) => inconclusive(t, `refused: ${sourceRefused}`)));
  const netns = await host.findNetns(batch.source.uid).catch(() => undefined);
  if (!netns)
    return finish(
      batch.targets.map((t) =>
        inconclusive(
          t,
          `source pod ${batch.source.namespace}/${batch.source.name} is gone: no process with its UID on this node`,
        ),
      ),
    );
  if (netns.hostNetwork)
    return finish(
      batch.targets.map((t) =>
        inconclusive(t, 'source pod uses hostNetwork: it cannot be probed from'),
      ),
    );
  const refused = new Map(batch.targets.map((t) => [t, refusal(t, settings)] as const));
  const observations = new Map<Target, Observation>();
  for (const [t, reason] of refused) if (reason) observations.set(t, inconclusive(t, reason));
  const allowed = batch.targets.filter((t) => !refused.get(t));
  const command = await scanFamilies(allowed, batch, netns, { settings, host }, observations);
  return finish(
    batch.targets.map((t) => observations.get(t) ?? inconclusive(t, 'not probed')),
    command.length > 0 ? command : undefined,
  );
}
