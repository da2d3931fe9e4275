import { calloutNatsServer, eventually } from '#lumen/testing';
import { publishRejected } from '#lumen/telemetry';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiscardPolicy, RetentionPolicy, connect } from 'nats';
import {
  DEAD_LETTER_SUBJECT,
  DeadLetterContract,
  ProbeResultContract,
  StreamFullError,
  probeResultSubject,
  decode,
  durableServiceConsumers,
  type DeadLetter,
  type ProbeResult,
} from '#lumen/contracts';
import {
  MessageBus,
  STREAMS,
  ensureStreams,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';

// A nats-server of this test file alone, on its own port and store: no state from earlier runs.
const storeDir = mkdtempSync(join(tmpdir(), 'lumen-nats-'));
let server: PrivateNatsServer;
const RESULTS = probeResultSubject('lab-node-1');

const result = (batchId: string): ProbeResult => ({
  batchId,
  node: 'lab-node-1',
  attempt: 1,
  batchSequence: 1,
  source: { namespace: 'default', name: 'client' },
  observations: [
    {
      caseId: '00000000000000aa',
      round: 1,
      ip: '10.244.1.2',
      port: 80,
      protocol: 'TCP',
      reachability: 'blocked',
      basis: 'dropped: filtered (no-response)',
    },
  ],
  startedAt: new Date().toISOString(),
  durationMs: 12,
});

beforeAll(async () => {
  server = await startPrivateNatsServer({ storeDir });
});

afterAll(async () => {
  await server.stop();
});

// Every test starts from empty streams without consumers, and closes what it opened, pass or fail.
const open: { close: () => Promise<void> }[] = [];
async function bus(service: string): Promise<MessageBus> {
  const connected = await MessageBus.connect({ url: server.url, service });
  open.push(connected);
  return connected;
}

beforeEach(async () => {
  const nc = await connect({ servers: server.url });
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm);
  for (const stream of STREAMS) {
    await jsm.streams.purge(stream.name ?? '');
    // An earlier test's consumer would hold on to this test's messages (interest retention).
    for await (const consumer of jsm.consumers.list(stream.name ?? ''))
      await jsm.consumers.delete(stream.name ?? '', consumer.name);
  }
  await nc.close();
});

afterEach(async () => {
  for (const connection of open.splice(0)) await connection.close().catch(() => undefined);
});

describe('MessageBus on a real nats-server with JetStream', () => {
  it('creates its streams idempotently', async () => {
    const nc = await connect({ servers: server.url });
    const jsm = await nc.jetstreamManager();
    await ensureStreams(jsm);
    await ensureStreams(jsm);
    const names = [];
    for await (const stream of jsm.streams.list()) names.push(stream.config.name);
    expect(names.sort()).toEqual(STREAMS.map((s) => s.name).sort());
    await nc.close();
  });

  it('waits for the streams and the services’ consumers when it may not make them, until the one that manages them has', async () => {
    const fresh = await startPrivateNatsServer({
      storeDir: mkdtempSync(join(tmpdir(), 'lumen-nats-await-')),
    });
    try {
      let connected = false;
      const waiting = MessageBus.connect({
        url: fresh.url,
        service: 'planner',
        manageStreams: false,
        awaitStreams: true,
      }).then((b) => {
        connected = true;
        return b;
      });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(connected).toBe(false);
      const manager = await MessageBus.connect({ url: fresh.url, service: 'scheduler' });
      // Streams alone are not enough: a work stream keeps a message only for the consumers
      // there are when it is published (ADR 0019).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(connected).toBe(false);
      await manager.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
      const planner = await waiting;
      expect(connected).toBe(true);
      await planner.close();
      await manager.close();
    } finally {
      await fresh.stop();
    }
  });

  it('delivers valid messages with their trace context, and acks them after the handler', async () => {
    const messages = await bus('reporter');
    const seen: { batchId: string; traceparent: string | undefined }[] = [];
    const consumer = await messages.consume({
      contract: ProbeResultContract,
      durable: 'test-ack',
      filterSubject: RESULTS,
      handle: async (value, delivery) => {
        seen.push({ batchId: value.batchId, traceparent: delivery.traceparent });
      },
    });
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await messages.publish(RESULTS, ProbeResultContract, result('b-ack'), {
      traceparent,
      msgId: 'b-ack',
    });
    await eventually(() => seen.some((s) => s.batchId === 'b-ack'), 'delivery');
    expect(seen.find((s) => s.batchId === 'b-ack')?.traceparent).toBe(traceparent);
    await consumer.stop();
    const info = await (
      await messages.connection.jetstreamManager()
    ).consumers.info('LUMEN_V1_RESULTS', 'test-ack');
    expect(info.num_ack_pending).toBe(0);
    expect(messages.counters.handled).toBeGreaterThanOrEqual(1);
    await messages.close();
  });

  it('sends an invalid message to the dead letter subject with the reason, and keeps working', async () => {
    const messages = await bus('reporter');
    const dead: DeadLetter[] = [];
    const deadConsumer = await messages.consume({
      contract: DeadLetterContract,
      durable: 'test-dead-watch',
      filterSubject: DEAD_LETTER_SUBJECT,
      handle: async (value) => void dead.push(value),
    });
    const handled: string[] = [];
    const consumer = await messages.consume({
      contract: ProbeResultContract,
      durable: 'test-invalid',
      filterSubject: RESULTS,
      handle: async (value) => void handled.push(value.batchId),
    });
    const raw = await connect({ servers: server.url });
    open.push(raw);
    const js = raw.jetstream();
    await js.publish(RESULTS, new TextEncoder().encode('{"batchId": 42}'));
    await js.publish(RESULTS, new TextEncoder().encode('not json at all'));
    await messages.publish(RESULTS, ProbeResultContract, result('b-after-garbage'));
    await eventually(
      () => handled.includes('b-after-garbage') && dead.length >= 2,
      'the valid message and two dead letters',
    );
    expect(dead.map((d) => d.reason)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('ProbeResult: batchId'),
        'ProbeResult: not JSON',
      ]),
    );
    expect(dead.every((d) => d.service === 'reporter' && d.subject === RESULTS)).toBe(true);
    expect(
      Buffer.from(dead.find((d) => d.reason.includes('not JSON'))!.payload, 'base64').toString(),
    ).toBe('not json at all');
    expect(messages.counters.deadLettered).toBe(2);
    await consumer.stop();
    await deadConsumer.stop();
    await raw.close();
    await messages.close();
  });

  it('redelivers when the handler fails, and dead-letters after the last attempt', async () => {
    const messages = await bus('scheduler');
    const attempts = new Map<string, number>();
    const consumer = await messages.consume({
      contract: ProbeResultContract,
      durable: 'test-retry',
      filterSubject: RESULTS,
      maxDeliver: 3,
      retryDelayMs: 50,
      handle: async (value) => {
        const count = (attempts.get(value.batchId) ?? 0) + 1;
        attempts.set(value.batchId, count);
        if (value.batchId === 'b-flaky' && count < 2)
          throw new Error('database briefly unavailable');
        if (value.batchId === 'b-poison') throw new Error('cannot store this');
      },
    });
    await messages.publish(RESULTS, ProbeResultContract, result('b-flaky'));
    await messages.publish(RESULTS, ProbeResultContract, result('b-poison'));
    await eventually(
      () =>
        attempts.get('b-flaky') === 2 &&
        attempts.get('b-poison') === 3 &&
        messages.counters.deadLettered === 1,
      'retries',
    );
    await consumer.stop();
    await messages.close();
  });

  it('stores a message published twice with one id once', async () => {
    const messages = await bus('prober');
    // A work stream keeps a message for the consumers that want it (interest retention).
    await messages.ensureConsumer({ durable: 'test-dedup', filterSubject: RESULTS });
    const jsm = await messages.connection.jetstreamManager();
    const before = (await jsm.streams.info('LUMEN_V1_RESULTS')).state.messages;
    await messages.publish(RESULTS, ProbeResultContract, result('b-dup'), {
      msgId: 'b-dup/1',
    });
    await messages.publish(RESULTS, ProbeResultContract, result('b-dup'), {
      msgId: 'b-dup/1',
    });
    expect((await jsm.streams.info('LUMEN_V1_RESULTS')).state.messages).toBe(before + 1);
    await messages.close();
  });

  it('keeps unacknowledged work across a nats-server restart (JetStream on disk)', async () => {
    const publisher = await bus('prober');
    // The consumer exists before the publish, as the scheduler makes every service's.
    await publisher.ensureConsumer({ durable: 'test-restart', filterSubject: RESULTS });
    await publisher.publish(RESULTS, ProbeResultContract, result('b-survivor'), {
      msgId: 'b-survivor',
    });
    await publisher.close();
    const port = Number(new URL(server.url).port);
    await server.stop();
    server = await startPrivateNatsServer({ storeDir, port });
    const messages = await bus('reporter');
    const seen: string[] = [];
    const consumer = await messages.consume({
      contract: ProbeResultContract,
      durable: 'test-restart',
      filterSubject: RESULTS,
      handle: async (v) => void seen.push(v.batchId),
    });
    await eventually(() => seen.includes('b-survivor'), 'the message from before the restart');
    expect(decode(ProbeResultContract, JSON.stringify(result('x'))).ok).toBe(true);
    await consumer.stop();
    await messages.close();
  });

  it('refuses a publish to a full work stream with an error naming the stream, counts it, and drops nothing it holds', async () => {
    const messages = await bus('prober');
    await messages.ensureConsumer({ durable: 'full-drill', filterSubject: RESULTS });
    const jsm = await messages.connection.jetstreamManager();
    const config = (await jsm.streams.info('LUMEN_V1_RESULTS')).config;
    await jsm.streams.update('LUMEN_V1_RESULTS', { ...config, max_msgs: 3 });
    try {
      const rejectedBefore = await rejectedCount('LUMEN_V1_RESULTS');
      for (const id of ['b-1', 'b-2', 'b-3'])
        await messages.publish(RESULTS, ProbeResultContract, result(id));
      const refused = messages.publish(RESULTS, ProbeResultContract, result('b-4'));
      await expect(refused).rejects.toBeInstanceOf(StreamFullError);
      await expect(refused).rejects.toThrow(
        `stream LUMEN_V1_RESULTS is full (maximum messages exceeded): the message on ${RESULTS} was refused`,
      );
      expect(await rejectedCount('LUMEN_V1_RESULTS')).toBe(rejectedBefore + 1);
      // Discard new: the three waiting are all still there, none dropped to make room.
      expect((await jsm.streams.info('LUMEN_V1_RESULTS')).state.messages).toBe(3);
      // Once the consumer has taken them, the stream has room again.
      const seen: string[] = [];
      const consumer = await messages.consume({
        durable: 'full-drill',
        filterSubject: RESULTS,
        contract: ProbeResultContract,
        handle: async (value) => {
          seen.push(value.batchId);
        },
      });
      await eventually(() => seen.length === 3, 'the three waiting results');
      expect(seen.sort()).toEqual(['b-1', 'b-2', 'b-3']);
      await eventually(
        async () => (await jsm.streams.info('LUMEN_V1_RESULTS')).state.messages === 0,
        'the acked results to leave the stream',
      );
      await messages.publish(RESULTS, ProbeResultContract, result('b-4'));
      await eventually(() => seen.includes('b-4'), 'the result refused before');
      await consumer.stop();
    } finally {
      await jsm.streams.update('LUMEN_V1_RESULTS', config);
      await jsm.consumers.delete('LUMEN_V1_RESULTS', 'full-drill');
    }
  });

  it.each([
    ['2.9: they stay limits streams, and the log says why', '/usr/sbin/nats-server', false],
    ['2.10: they become work streams in place', calloutNatsServer(), true],
  ])(
    'brings streams made with limits retention up to date on nats-server %s',
    async (_server, binary, workStreams) => {
      const fresh = await startPrivateNatsServer({
        storeDir: mkdtempSync(join(tmpdir(), 'lumen-nats-migrate-')),
        binary,
      });
      const nc = await connect({ servers: fresh.url });
      try {
        const jsm = await nc.jetstreamManager();
        const before = STREAMS.find((stream) => stream.name === 'LUMEN_V1_CASES')!;
        await jsm.streams.add({
          ...before,
          retention: RetentionPolicy.Limits,
          discard: DiscardPolicy.Old,
        });
        const warnings: string[] = [];
        await ensureStreams(jsm, { warn: (message) => warnings.push(message) }, nc.info?.version);
        const after = (await jsm.streams.info('LUMEN_V1_CASES')).config;
        expect([after.retention, after.discard]).toEqual(
          workStreams
            ? [RetentionPolicy.Interest, DiscardPolicy.New]
            : [RetentionPolicy.Limits, DiscardPolicy.Old],
        );
        // The probes stream is a record on every server.
        const probes = (await jsm.streams.info('LUMEN_V1_PROBES')).config;
        expect([probes.retention, probes.discard]).toEqual([
          RetentionPolicy.Limits,
          DiscardPolicy.Old,
        ]);
        expect(warnings).toEqual(
          workStreams
            ? []
            : [
                expect.stringMatching(
                  /^nats-server 2\.9\.\d+ is older than 2\.10: the work streams keep limits retention/,
                ),
              ],
        );
      } finally {
        await nc.close();
        await fresh.stop();
      }
    },
  );
});

/** lumen_publish_rejected_total of one stream, in this process. */
async function rejectedCount(stream: string): Promise<number> {
  const metric = await publishRejected.get();
  return metric.values.find((v) => v.labels.stream === stream)?.value ?? 0;
}
