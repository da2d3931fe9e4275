import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from 'nats';
import {
  CASE_UNSCHEDULABLE_SUBJECT,
  CELL_BLOCK_SUBJECT,
  CELL_MISMATCH_SUBJECT,
  DEAD_LETTER_SUBJECT,
  REPROBE_REQUEST_SUBJECT,
  PROBE_BATCH_SUBJECTS,
  PROBE_RESULT_SUBJECTS,
  MATRIX_COVERAGE_SUBJECT,
  POLICY_INVENTORY_SUBJECT,
  TEST_CASE_SUBJECT,
  durableServiceConsumers,
} from '#lumen/contracts';

const DAY_NS = 24 * 60 * 60 * 1e9;
const GIB = 1024 ** 3;

/**
 * Bytes each stream may hold. A work stream at its limit refuses new messages (ADR 0019):
 * a flood (a runaway planner, a prober publishing junk) or a stalled consumer fills its own
 * stream, never the disk the others need, and no unconsumed work is dropped to make room.
 * They add up to 7.25 GiB, inside the chart's 10 GiB JetStream volume; the 20,000-pod
 * benchmark's busiest stream held under 1 GiB a sweep (docs/benchmarks.md).
 */
export const STREAM_MAX_BYTES: Readonly<Record<string, number>> = {
  LUMEN_V1_CASES: 2 * GIB,
  LUMEN_V1_PROBES: 1 * GIB,
  LUMEN_V1_RESULTS: 2 * GIB,
  LUMEN_V1_CELLS: 2 * GIB,
  LUMEN_V1_DEAD: GIB / 4,
};

/**
 * Work streams keep only what some consumer has still to take (interest retention) and
 * refuse new messages when full (discard new), so a publisher learns at once that work did
 * not get in, and nothing waiting is dropped to make room (ADR 0019).
 */
const WORK: Partial<StreamConfig> = {
  retention: RetentionPolicy.Interest,
  discard: DiscardPolicy.New,
};

/**
 * Records keep a window of history under their byte limit and drop their oldest to make
 * room: a record must never refuse a write.
 */
const RECORD: Partial<StreamConfig> = {
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.Old,
};

/**
 * The work streams as they were before ADR 0019, for a server older than 2.10: they drop
 * their oldest when full; the cells stream kept interest retention from the start.
 */
const OLDER_SERVER: Readonly<Record<string, Partial<StreamConfig>>> = {
  LUMEN_V1_CASES: RECORD,
  LUMEN_V1_RESULTS: RECORD,
  LUMEN_V1_CELLS: { retention: RetentionPolicy.Interest, discard: DiscardPolicy.Old },
};

/** Lumen's streams: file-backed, so work survives a server restart. */
export const STREAMS: readonly Partial<StreamConfig>[] = [
  {
    name: 'LUMEN_V1_CASES',
    subjects: [
      TEST_CASE_SUBJECT,
      REPROBE_REQUEST_SUBJECT,
      POLICY_INVENTORY_SUBJECT,
      MATRIX_COVERAGE_SUBJECT,
    ],
    description:
      'planner (cases, policy inventory, matrix coverage) and reporter (re-probes) to scheduler and reporter',
    ...WORK,
  },
  {
    name: 'LUMEN_V1_PROBES',
    subjects: [PROBE_BATCH_SUBJECTS],
    description: 'scheduler to probers, one subject per node',
    // A record, not a work stream: the reporter's result gate reads each batch back by
    // sequence after its prober acked it (ADR 0014), so acked batches must stay a while.
    // What waits unacked here is bounded by the scheduler, which dispatches only to probers
    // with room: a few batches a node, megabytes against a GiB, so the oldest messages
    // dropped to make room are batches long answered (ADR 0019).
    ...RECORD,
  },
  {
    name: 'LUMEN_V1_RESULTS',
    subjects: [PROBE_RESULT_SUBJECTS, CASE_UNSCHEDULABLE_SUBJECT],
    description: 'probers and scheduler to reporter',
    ...WORK,
  },
  {
    name: 'LUMEN_V1_CELLS',
    subjects: [CELL_BLOCK_SUBJECT, CELL_MISMATCH_SUBJECT],
    description:
      'planner (cell blocks) to scheduler, reporter (cells that disagreed) to planner (ADR 0013)',
    // A block older than an hour is stale: the rotation has come round again.
    max_age: 60 * 60 * 1e9,
    ...WORK,
  },
  {
    name: 'LUMEN_V1_DEAD',
    subjects: [DEAD_LETTER_SUBJECT],
    description: 'messages no service could use, with the reason',
    ...RECORD,
  },
].map((stream) => ({
  storage: StorageType.File,
  max_age: 7 * DAY_NS,
  // Publishers set Nats-Msg-Id; a repeat within this window is stored once.
  duplicate_window: 2 * 60 * 1e9,
  max_bytes: STREAM_MAX_BYTES[stream.name] ?? GIB,
  ...stream,
}));

/** What Lumen's streams reserve of a server's JetStream file store, at their byte limits. */
export const STREAMS_RESERVED_BYTES = STREAMS.reduce((sum, s) => sum + (s.max_bytes ?? 0), 0);

/** Why a stream could not be made, in the operator's terms. */
function storageHint(error: unknown, replicas: number): string {
  if (/insufficient storage/i.test(String(error)))
    return ` (the streams reserve ${(STREAMS_RESERVED_BYTES / GIB).toFixed(2)} GiB at their limits: give each JetStream server at least that much file store)`;
  if (replicas > 1 && /insufficient resources|replicas/i.test(String(error)))
    return ' (NATS_STREAM_REPLICAS may not exceed the JetStream servers in the cluster)';
  return '';
}

interface StreamLog {
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * Whether a nats-server keeps a work stream's messages for every consumer that still holds
 * them. 2.9.10 (Debian 12's) did not: in the full-stream drill it removed messages that
 * one consumer had acked while the other, stalled, still held them unacked. 2.10.27 kept
 * them. Older servers get the record configuration instead (ADR 0019).
 */
export function keepsWorkForEveryConsumer(serverVersion: string | undefined): boolean {
  const [major, minor] = (serverVersion ?? '').split('.').map(Number);
  if (major === undefined || minor === undefined || Number.isNaN(major) || Number.isNaN(minor))
    return true;
  return major > 2 || (major === 2 && minor >= 10);
}

/**
 * Creates the streams, or brings their configuration up to date. Safe to call at every start.
 * A stream made before ADR 0019 has limits retention; nats-server 2.10 turns it into a work
 * stream in place. On an older server the work streams keep limits retention and discard
 * their oldest when full, as before ADR 0019, and the log says why. Every stream is kept
 * on `replicas` servers (a JetStream cluster keeps it through the loss of a minority of
 * them); a stream made with fewer is scaled up in place.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  log?: StreamLog,
  serverVersion?: string,
  replicas = 1,
): Promise<void> {
  const workStreams = keepsWorkForEveryConsumer(serverVersion);
  if (!workStreams)
    log?.warn(
      `nats-server ${serverVersion ?? '?'} is older than 2.10: the work streams keep limits retention and drop their oldest messages when full, because this server's interest retention dropped messages a stalled consumer still held; run nats-server 2.10 or later`,
    );
  for (const wanted of STREAMS) {
    const stream = {
      ...(workStreams ? wanted : { ...wanted, ...OLDER_SERVER[wanted.name ?? ''] }),
      num_replicas: replicas,
    };
    const name = stream.name ?? '';
    const existing = await jsm.streams.info(name).catch(() => undefined);
    try {
      if (!existing) await jsm.streams.add(stream);
      else await jsm.streams.update(name, { ...existing.config, ...stream });
    } catch (error) {
      throw new Error(
        `cannot ${existing ? 'update' : 'create'} stream ${name} with ${replicas} replica(s): ${
          error instanceof Error ? error.message : String(error)
        }${storageHint(error, replicas)}`,
        { cause: error },
      );
    }
  }
}

/**
 * JetStream's refusal of a message by a full stream with discard new ("maximum bytes
 * exceeded", "maximum messages exceeded"), or undefined for any other error. nats.js puts
 * only the status code ("503") in the message; the reason is in api_error.
 */
export function streamFullReason(error: unknown): string | undefined {
  const api = (error as { api_error?: { description?: string } } | undefined)?.api_error;
  const description = api?.description ?? '';
  return /^maximum (bytes|messages|messages per subject) exceeded$/i.test(description)
    ? description
    : undefined;
}

/**
 * Waits until every stream and every service's durable consumer exists, for a service whose
 * NATS user may not create them: the scheduler manages them (the chart's permissions). The
 * consumers matter as much as the streams: a work stream keeps a message only for the
 * consumers there are when it is published (interest retention), so the planner must not
 * publish before the scheduler's and reporter's consumers exist. A wait longer than 30 s is
 * logged, every 30 s; it ends when the connection closes.
 */
export async function awaitStreams(
  jsm: JetStreamManager,
  isClosed: () => boolean,
  log: StreamLog,
): Promise<void> {
  const waits = [
    ...STREAMS.map((stream) => ({
      what: `stream ${stream.name ?? ''}`,
      exists: () => jsm.streams.info(stream.name ?? ''),
    })),
    ...durableServiceConsumers({ prefix: '' }).map((consumer) => {
      const stream = streamForSubject(consumer.filterSubject);
      return {
        what: `consumer ${consumer.durable} of stream ${stream}`,
        exists: () => jsm.consumers.info(stream, consumer.durable),
      };
    }),
  ];
  for (const { what, exists } of waits) {
    for (
      let waited = 0;
      !(await exists().then(
        () => true,
        () => false,
      ));
      waited++
    ) {
      if (isClosed()) throw new Error(`the connection closed while waiting for ${what}`);
      if (waited > 0 && waited % 30 === 0)
        log.warn('still waiting for the scheduler to make a stream or consumer', {
          waitingFor: what,
          waitedSeconds: waited,
        });
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

export function streamForSubject(subject: string): string {
  const match = STREAMS.find((s) =>
    (s.subjects ?? []).some((pattern) =>
      pattern.endsWith('.>') ? subject.startsWith(pattern.slice(0, -1)) : pattern === subject,
    ),
  );
  if (!match?.name) throw new Error(`no stream takes subject ${subject}`);
  return match.name;
}
