import type {
  CaseTracer,
  Consumer,
  Log,
  ProberHeartbeat,
  Publisher,
  Reachability,
} from '#lumen/contracts';
import type { PodNetns } from './netns.js';
import type { TargetScope } from './target-scope.js';

/** What nmap left behind: its exit and its output (the XML on stdout). */
export interface NmapRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The node's machine as a batch needs it; hostProbeHost (nsenter, nmap, /proc) is the real one. */
export interface ProbeHost {
  readonly findNetns: (uid: string) => Promise<PodNetns | undefined>;
  /** Runs nmap inside the pod's network namespace, checked to be still the pod's first. */
  readonly runNmap: (netns: PodNetns, args: readonly string[]) => Promise<NmapRun>;
  /**
   * Whether the pod's process is still there after a scan: a pod deleted during the scan
   * took its network with it, and what nmap saw then proves nothing about the policies.
   */
  readonly stillThere: (netns: PodNetns) => Promise<boolean>;
  readonly now: () => Date;
}

/** Where a prober says it is alive; ProberRegistry (libs/messaging, a JetStream KV) is the real one. */
export interface Heartbeats {
  announce(heartbeat: ProberHeartbeat): Promise<void>;
  withdraw(node: string): Promise<void>;
}

/** What a prober reports about its probes; libs/telemetry has the Prometheus one. */
export interface ProberMetrics {
  batchProbed(node: string, reachabilities: readonly Reachability[], durationMs: number): void;
}

export const noProberMetrics: ProberMetrics = { batchProbed: () => undefined };

/** Everything a prober's core reaches outside itself. */
export interface ProberPorts {
  /** Its node's batches from lumen.v1.probe.<node>; results to lumen.v1.results. */
  readonly bus: Publisher & Consumer;
  readonly heartbeats: Heartbeats;
  readonly host: ProbeHost;
  readonly log: Log;
  readonly tracer: CaseTracer;
  readonly metrics: ProberMetrics;
  /**
   * What the prober may aim at now, read from the cluster's nodes as they come and go;
   * without it, the settings' podCidrs and refusedAddresses, fixed at boot.
   */
  readonly targetScope?: () => TargetScope;
  /** Checks the batch's source pod against the API; without it, only the node is asked. */
  readonly sources?: SourceCheck;
}

/** Why a batch's source pod may not be probed from (undefined: it may); ApiSourceCheck is the real one. */
export interface SourceCheck {
  refusal(source: {
    readonly namespace: string;
    readonly name: string;
    readonly uid: string;
  }): Promise<string | undefined>;
}
