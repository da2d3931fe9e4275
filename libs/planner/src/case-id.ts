import { createHash } from 'node:crypto';
import type { Protocol } from '#lumen/policy';

/**
 * A case's identity: a hash of the source class, destination class, port and protocol.
 * Class keys do not contain pod names, so history survives pod restarts and rollouts.
 */
export function caseIdOf(
  sourceClassKey: string,
  destinationClassKey: string,
  port: number,
  protocol: Protocol,
): string {
  return createHash('sha256')
    .update(JSON.stringify([sourceClassKey, destinationClassKey, port, protocol]))
    .digest('hex')
    .slice(0, 16);
}
