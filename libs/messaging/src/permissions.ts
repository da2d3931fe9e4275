import {
  DEAD_LETTER_SUBJECT,
  PROBER_HEARTBEAT_BUCKET,
  PROBE_RESULT_SUBJECTS,
  probeResultSubject,
  proberDurable,
  proberInboxPrefix,
} from '#lumen/contracts';

/** What a NATS user may publish and subscribe to (nats-server's `permissions`). */
export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

const PROBES_STREAM = 'LUMEN_V1_PROBES';

/**
 * A prober's rights on the bus (ADR 0014): publish results, its heartbeat and dead letters,
 * read its consumer and the heartbeat bucket, pull and ack batches, and read replies under
 * the probers' inbox prefix. Nothing that creates, purges or deletes streams or consumers.
 * The Helm chart renders the same list (its test compares the two); `lumen run` gives it to
 * the probers of its temporary DaemonSet.
 */
export const PROBER_PERMISSIONS: NatsPermissions = {
  publish: [
    PROBE_RESULT_SUBJECTS,
    `$KV.${PROBER_HEARTBEAT_BUCKET}.>`,
    DEAD_LETTER_SUBJECT,
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.KV_${PROBER_HEARTBEAT_BUCKET}`,
    `$JS.API.CONSUMER.INFO.${PROBES_STREAM}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${PROBES_STREAM}.*`,
    `$JS.ACK.${PROBES_STREAM}.>`,
  ],
  subscribe: ['_INBOX.prober.>'],
};

/**
 * The rights of one node's prober when each prober has its own credentials (ADR 0016):
 * PROBER_PERMISSIONS narrowed to that node. It publishes only its node's results subject
 * and heartbeat key, pulls from and acks only its node's consumer, and reads only its own
 * inbox prefix, so its credentials cannot read, take or forge another node's work.
 */
export function proberNodePermissions(node: string): NatsPermissions {
  const durable = proberDurable(node);
  return {
    publish: [
      probeResultSubject(node),
      `$KV.${PROBER_HEARTBEAT_BUCKET}.${node}`,
      DEAD_LETTER_SUBJECT,
      '$JS.API.INFO',
      `$JS.API.STREAM.INFO.KV_${PROBER_HEARTBEAT_BUCKET}`,
      `$JS.API.CONSUMER.INFO.${PROBES_STREAM}.${durable}`,
      `$JS.API.CONSUMER.MSG.NEXT.${PROBES_STREAM}.${durable}`,
      `$JS.ACK.${PROBES_STREAM}.${durable}.>`,
    ],
    subscribe: [`${proberInboxPrefix(node)}.>`],
  };
}
