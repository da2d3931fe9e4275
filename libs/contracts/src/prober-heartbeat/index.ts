import { z } from 'zod';
import { nodeName, timestamp, type Contract } from '../common.js';

/** Key-value bucket where each node's prober says it is alive (key: the node name). */
export const PROBER_HEARTBEAT_BUCKET = 'lumen_v1_probers';

export const proberHeartbeatSchema = z.strictObject({
  node: nodeName,
  instance: z.string().min(1).max(64),
  version: z.string().max(64),
  at: timestamp,
  /** Batches this prober is working on now. */
  inFlight: z.number().int().min(0),
});

export type ProberHeartbeat = z.infer<typeof proberHeartbeatSchema>;

export const ProberHeartbeatContract: Contract<ProberHeartbeat> = {
  name: 'ProberHeartbeat',
  schema: proberHeartbeatSchema,
};
