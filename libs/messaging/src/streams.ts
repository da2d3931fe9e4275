import { RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from 'nats';
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
} from '#lumen/contracts';

const DAY_NS = 24 * 60 * 60 * 1e9;
const GIB = 1024 ** 3;

/**
 * Bytes each stream may hold before the server drops its oldest messages: a flood (a
 * runaway planner, a prober publishing junk) fills its own stream, never the disk the
 * others need. They add up to 7.25 GiB, inside the chart's 10 GiB JetStream volume; the
 * 20,000-pod benchmark's busiest stream held under 1 GiB a sweep (docs/benchmarks.md).
 */
export const STREAM_MAX_BYTES: Readonly<Record<string, number>> = {
  LUMEN_V1_CASES: 2 * GIB,
  LUMEN_V1_PROBES: 1 * GIB,
  LUMEN_V1_RESULTS: 2 * GIB,
  LUMEN_V1_CELLS: 2 * GIB,
  LUMEN_V1_DEAD: GIB / 4,
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
  },
  {
    name: 'LUMEN_V1_PROBES',
    subjects: [PROBE_BATCH_SUBJECTS],
    description: 'scheduler to probers, one subject per node',
  },
  {
    name: 'LUMEN_V1_RESULTS',
    subjects: [PROBE_RESULT_SUBJECTS, CASE_UNSCHEDULABLE_SUBJECT],
    description: 'probers and scheduler to reporter',
  },
  {
    name: 'LUMEN_V1_CELLS',
    subjects: [CELL_BLOCK_SUBJECT, CELL_MISMATCH_SUBJECT],
    description:
      'planner (cell blocks) to scheduler, reporter (cells that disagreed) to planner (ADR 0013)',
    // Millions of rotation cells a sweep: each message is gone once the consumers that
    // want it acked it, and a block older than an hour is stale (the rotation has come
    // round again). Interest, not work queue: a one-shot run reads only new messages.
    retention: RetentionPolicy.Interest,
    max_age: 60 * 60 * 1e9,
  },
  {
    name: 'LUMEN_V1_DEAD',
    subjects: [DEAD_LETTER_SUBJECT],
    description: 'messages no service could use, with the reason',
  },
].map((stream) => ({
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
  max_age: 7 * DAY_NS,
  // Publishers set Nats-Msg-Id; a repeat within this window is stored once.
  duplicate_window: 2 * 60 * 1e9,
  max_bytes: STREAM_MAX_BYTES[stream.name] ?? GIB,
  ...stream,
}));

/** Creates the streams, or brings their configuration up to date. Safe to call at every start. */
export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  for (const stream of STREAMS) {
    const name = stream.name ?? '';
    const existing = await jsm.streams.info(name).catch(() => undefined);
    if (!existing) await jsm.streams.add(stream);
    else await jsm.streams.update(name, { ...existing.config, ...stream });
  }
}

/**
 * Waits until every stream exists, for a service whose NATS user may not create them: the
 * scheduler manages them (the chart's permissions). A wait longer than 30 s is logged,
 * every 30 s; it ends when the connection closes.
 */
export async function awaitStreams(
  jsm: JetStreamManager,
  isClosed: () => boolean,
  log: { readonly warn: (message: string, fields?: Record<string, unknown>) => void },
): Promise<void> {
  for (const stream of STREAMS) {
    const name = stream.name ?? '';
    for (
      let waited = 0;
      !(await jsm.streams.info(name).then(
        () => true,
        () => false,
      ));
      waited++
    ) {
      if (isClosed()) throw new Error(`the connection closed while waiting for stream ${name}`);
      if (waited > 0 && waited % 30 === 0)
        log.warn('still waiting for the scheduler to create a stream', {
          stream: name,
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
