import type { KV } from 'nats';
import {
  PROBER_HEARTBEAT_BUCKET,
  ProberHeartbeatContract,
  decode,
  encode,
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

  static async open(bus: MessageBus, ttlMs: number): Promise<ProberRegistry> {
    return new ProberRegistry(await bus.keyValue(PROBER_HEARTBEAT_BUCKET, ttlMs), ttlMs);
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
      if (now.getTime() - Date.parse(decoded.value.at) > this.ttlMs) continue;
      live.set(decoded.value.node, decoded.value);
    }
    return live;
  }
}
