import { createHash } from 'node:crypto';
import type { PodClass, PolicyEngine, ServiceFrontend } from '#lumen/policy';
import { caseIdOf } from './case-id.js';
import { selfOnly, type NotGenerated, type PlannedCase } from './plan.js';

/** How a case goes through a Service: the ClusterIP and port probed instead of a pod's IP. */
export interface PlannedServicePath {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
  readonly port: number;
  /** The pod-to-pod case of the same connection. */
  readonly podCaseId: string;
  /** The source class backs the Service: its pod may reach itself through it. */
  readonly hairpin: boolean;
}

/** `namespace/name` of a Service, as failures and alert groups name it. */
export function serviceName(path: { readonly namespace: string; readonly name: string }): string {
  return `${path.namespace}/${path.name}`;
}

/** A Service path's case identity: the pod-level case's, the Service and its port. */
export function serviceCaseId(podCaseId: string, frontend: ServiceFrontend): string {
  return createHash('sha256')
    .update(
      JSON.stringify([podCaseId, 'service', frontend.namespace, frontend.name, frontend.port]),
    )
    .digest('hex')
    .slice(0, 16);
}

const family = (ip: string | undefined): 4 | 6 | undefined =>
  ip === undefined ? undefined : ip.includes(':') ? 6 : 4;

/**
 * The ClusterIP to probe a class's pods through: the one of the family their pod IPs are
 * in (a single-stack cluster has one; a dual-stack Service lists one per family).
 */
function clusterIpFor(frontend: ServiceFrontend, destination: PodClass): string | undefined {
  const wanted = family(destination.pods.find((p) => p.ip)?.ip);
  return frontend.clusterIPs.find((ip) => family(ip) === wanted) ?? frontend.clusterIPs[0];
}

export interface ServicePathPlan {
  readonly cases: readonly PlannedCase[];
  readonly notGenerated: readonly NotGenerated[];
}

/**
 * For each pod-level TCP case whose destination backs a Service on the case's port, the
 * same connection through the Service (issue 19): to its ClusterIP and Service port, with
 * the pod-level case's expectation, explanation and reason, so it is covered and rotated
 * with it. Where the Service's backends would decide the connection differently (they are
 * in classes the policies treat apart), no verdict can be expected of the path, and it is
 * left out, said why. UDP and SCTP paths are left out: the probe through a Service is a
 * TCP connect scan, since a raw scan cannot match the translated replies (docs/services.md).
 */
export function servicePathCases(
  engine: PolicyEngine,
  cases: readonly PlannedCase[],
  frontends: readonly ServiceFrontend[],
): ServicePathPlan {
  const byBackend = backendIndex(engine, frontends);
  const planned: PlannedCase[] = [];
  const notGenerated: NotGenerated[] = [];
  const reported = new Set<string>();
  for (const c of cases) {
    if (c.via || c.protocol !== 'TCP') continue;
    for (const { frontend, classes } of byBackend.get(`${c.destination.key}|${c.port}`) ?? []) {
      const clusterIP = clusterIpFor(frontend, c.destination);
      if (!clusterIP) continue;
      const service = serviceName(frontend);
      const disagreeing =
        classes.length === 0
          ? 'some of its backends are pods Lumen does not model'
          : classes
              .filter(
                (b) =>
                  engine.classVerdict(c.source, b.podClass, b.port, 'TCP').allowed !==
                  (c.expected === 'allow'),
              )
              .map((b) => `${b.podClass.namespace}/${labelText(b.podClass)} on ${b.port}`)
              .join(', ');
      if (disagreeing) {
        const key = `${c.source.key}|${service}|${frontend.port}`;
        if (!reported.has(key)) {
          reported.add(key);
          notGenerated.push({
            reason: c.reason,
            ...(c.rule ? { rule: c.rule } : {}),
            why: `through Service ${service} port ${frontend.port}: its backends are not all ${c.expected === 'allow' ? 'allowed' : 'denied'} (${disagreeing}), so no verdict can be expected of the path`.slice(
              0,
              500,
            ),
          });
        }
        continue;
      }
      planned.push({
        ...c,
        caseId: serviceCaseId(c.caseId, frontend),
        via: {
          namespace: frontend.namespace,
          name: frontend.name,
          clusterIP,
          port: frontend.port,
          podCaseId: c.caseId,
          hairpin: classes.some((b) => b.podClass.key === c.source.key),
        },
      });
    }
  }
  for (const entry of new Set([...byBackend.values()].flat()))
    hairpins(engine, entry, [...cases, ...planned], planned, notGenerated);
  return { cases: planned, notGenerated };
}

/**
 * A backend reaching itself through its own Service is a case of its own (issue 19): each
 * backend class not yet a source through this Service gets one, with the pod-to-itself
 * case of the same connection (the spec leaves that to the implementation; Lumen expects
 * what the policies say of it, docs/services.md). Left out, said why, when the other
 * backends would decide the connection differently.
 */
function hairpins(
  engine: PolicyEngine,
  { frontend, classes }: ServiceEntry,
  existing: readonly PlannedCase[],
  planned: PlannedCase[],
  notGenerated: NotGenerated[],
): void {
  const done = new Set<string>();
  for (const { podClass, port } of classes) {
    const key = `${podClass.key}|${port}`;
    if (done.has(key)) continue;
    done.add(key);
    const through = existing.some(
      (c) =>
        c.via?.namespace === frontend.namespace &&
        c.via.name === frontend.name &&
        c.via.port === frontend.port &&
        c.source.key === podClass.key,
    );
    if (through) continue;
    const verdict = engine.classVerdict(podClass, podClass, port, 'TCP');
    const disagreeing = classes.filter(
      (b) => engine.classVerdict(podClass, b.podClass, b.port, 'TCP').allowed !== verdict.allowed,
    );
    if (disagreeing.length > 0) {
      notGenerated.push({
        reason: 'hairpin',
        why: `hairpin through Service ${serviceName(frontend)} port ${frontend.port} from ${podClass.namespace}/${labelText(podClass)}: its other backends are not all ${verdict.allowed ? 'allowed' : 'denied'}, so no verdict can be expected of the path`.slice(
          0,
          500,
        ),
      });
      continue;
    }
    const podCaseId = caseIdOf(podClass.key, podClass.key, port, 'TCP');
    const known = existing.find((c) => c.caseId === podCaseId);
    const podCase: PlannedCase = known ?? {
      caseId: podCaseId,
      reason: 'hairpin',
      source: podClass,
      destination: podClass,
      port,
      protocol: 'TCP',
      expected: verdict.allowed ? 'allow' : 'deny',
      explanation: verdict.explanation,
      loopback: selfOnly(podClass, podClass),
      listenerKnown: podClass.ports.some((p) => p.port === port && p.protocol === 'TCP'),
    };
    if (!known) planned.push(podCase);
    const clusterIP = clusterIpFor(frontend, podClass);
    if (!clusterIP) continue;
    planned.push({
      ...podCase,
      reason: 'hairpin',
      caseId: serviceCaseId(podCaseId, frontend),
      via: {
        namespace: frontend.namespace,
        name: frontend.name,
        clusterIP,
        port: frontend.port,
        podCaseId,
        hairpin: true,
      },
    });
  }
}

interface ServiceEntry {
  readonly frontend: ServiceFrontend;
  /** Its backends' classes; empty when a backend is a pod Lumen does not model. */
  readonly classes: readonly BackendClass[];
}

/** The TCP Services each backend class and port is behind, keyed `classKey|port`. */
function backendIndex(
  engine: PolicyEngine,
  frontends: readonly ServiceFrontend[],
): Map<string, ServiceEntry[]> {
  const byBackend = new Map<string, ServiceEntry[]>();
  for (const frontend of frontends) {
    if (frontend.protocol !== 'TCP') continue;
    const classes: BackendClass[] = [];
    let complete = true;
    for (const backend of frontend.backends) {
      const podClass = engine.classOf(backend.pod);
      if (!podClass) complete = false;
      else classes.push({ podClass, port: backend.port });
    }
    const entry = { frontend, classes: complete ? classes : [] };
    for (const { podClass, port } of classes) {
      const key = `${podClass.key}|${port}`;
      const list = byBackend.get(key) ?? [];
      if (!list.some((e) => e.frontend === frontend)) list.push(entry);
      byBackend.set(key, list);
    }
  }
  return byBackend;
}

interface BackendClass {
  readonly podClass: PodClass;
  readonly port: number;
}

function labelText(podClass: PodClass): string {
  return (
    Object.entries(podClass.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '*'
  );
}
