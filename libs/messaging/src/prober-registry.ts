import type { KV } from 'nats';
import {
  PROBER_HEARTBEAT_BUCKET,
  ProberHeartbeatContract,
  decode,
  encode,
  probeBatchSubject,
  proberDurable,
  type ProberHeartbeat,
} from '#lumen/contracts';
import type { MessageBus } from './bus.js';

/**
 * Which nodes have a live prober: each prober puts a heartbeat under its node name in a
 * JetStream key-value bucket whose entries expire; a missing key means a silent prober.
 */
export class ProberRegistry {
  private constructor(
    private readonly kv: KV,
    private readonly ttlMs: number,
  ) {}

  /**
   * The scheduler opens it to manage (it creates the bucket); a prober, which may only put
   * its own node's key, opens it with `bindOnly` and waits for the bucket to exist.
   */
  static async open(bus: MessageBus, ttlMs: number, bindOnly = false): Promise<ProberRegistry> {
    return new ProberRegistry(await bus.keyValue(PROBER_HEARTBEAT_BUCKET, ttlMs, bindOnly), ttlMs);
  }

  async announce(heartbeat: ProberHeartbeat): Promise<void> {
    await this.kv.put(heartbeat.node, encode(ProberHeartbeatContract, heartbeat));
  }

  /** A prober that stops cleanly says so at once, so its work is re-dispatched without waiting. */
  async withdraw(node: string): Promise<void> {
    await this.kv.delete(node);
  }

  /** Live probers by node. A malformed entry is skipped (and named), never trusted. */
  async live(now: Date = new Date()): Promise<Map<string, ProberHeartbeat>> {
    const live = new Map<string, ProberHeartbeat>();
    // Read every key before fetching any: a get inside the keys iteration ends it early.
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    for (const key of keys) {
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      const decoded = decode(ProberHeartbeatContract, entry.value);
      if (!decoded.ok) continue;
      // The key is what NATS lets only that node's prober write; a heartbeat naming another
      // node under it is not that node's.
      if (decoded.value.node !== key) continue;
      if (now.getTime() - Date.parse(decoded.value.at) > this.ttlMs) continue;
      live.set(decoded.value.node, decoded.value);
    }
    return live;
  }
}

/** How each node's prober consumer holds its batches (defaults: the scheduler's settings). */
export interface ProberConsumerSettings {
  /** How long a batch may go unacked before JetStream gives it to the node's prober again. */
  readonly ackWaitMs: number;
  /** How many times JetStream delivers one batch before it gives up on it. */
  readonly maxDeliver: number;
}

/**
 * The scheduler's view of live probers, which also makes each node's consumer the first
 * time that node's prober is seen: consumer management stays with the scheduler, and a
 * prober only binds to its own (ADR 0014). Dispatch goes only to live nodes, so a node's
 * consumer exists before its first batch.
 */
export class ManagedProberRegistry {
  private readonly prepared = new Set<string>();

  constructor(
    private readonly registry: Pick<ProberRegistry, 'live'>,
    private readonly bus: Pick<MessageBus, 'ensureConsumer'>,
    private readonly settings: ProberConsumerSettings,
  ) {}

  async live(now: Date = new Date()): Promise<Map<string, ProberHeartbeat>> {
    const live = await this.registry.live(now);
    for (const node of live.keys()) {
      if (this.prepared.has(node)) continue;
      await this.bus.ensureConsumer({
        durable: proberDurable(node),
        filterSubject: probeBatchSubject(node),
        ackWaitMs: this.settings.ackWaitMs,
        maxDeliver: this.settings.maxDeliver,
      });
      this.prepared.add(node);
    }
    return live;
  }
}
