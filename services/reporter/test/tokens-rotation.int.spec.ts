/**
 * Rotating the API's tokens without a restart: the reporter as a process (SQLite, a private
 * nats-server) reads its tokens file again, swapped the way the kubelet swaps a mounted
 * Secret (a new file renamed over the old), takes a new token at once, drops the old one,
 * and keeps the tokens in use when the new file is invalid, saying why without a token.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { durableServiceConsumers } from '#lumen/contracts';
import { MessageBus, startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { freePort } from '#lumen/host';
import { eventually, spawnService } from '#lumen/testing';

const OLD = 'old-token-0123456789abcdefgh';
const NEW = 'new-token-0123456789abcdefgh';
const scratch = mkdtempSync(join(tmpdir(), 'lumen-tokens-'));
const tokensFile = join(scratch, 'tokens.yaml');
let nats: PrivateNatsServer;
let bus: MessageBus;
let reporter: ChildProcess;
let port: number;

/** Replaces the tokens file as the kubelet updates a Secret volume: write aside, rename over. */
function rotate(text: string): void {
  writeFileSync(`${tokensFile}.new`, text);
  renameSync(`${tokensFile}.new`, tokensFile);
}

const status = async (token: string): Promise<number> =>
  (
    await fetch(`http://127.0.0.1:${port}/api/v1/summary`, {
      headers: { authorization: `Bearer ${token}` },
    })
  ).status;

beforeAll(async () => {
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
  bus = await MessageBus.connect({ url: nats.url, service: 'scheduler' });
  await bus.ensureDurableConsumers(durableServiceConsumers({ prefix: '' }));
  writeFileSync(tokensFile, `tokens:\n  - { name: platform, token: ${OLD} }\n`);
  port = await freePort();
  reporter = spawnService(
    'reporter',
    {
      NATS_URL: nats.url,
      HTTP_PORT: String(port),
      SQLITE_PATH: join(scratch, 'lumen.db'),
      API_TOKENS_FILE: tokensFile,
      API_TOKENS_RELOAD_MS: '200',
    },
    join(scratch, 'reporter.log'),
  );
  await eventually(
    () =>
      fetch(`http://127.0.0.1:${port}/readyz`)
        .then((r) => r.ok)
        .catch(() => false),
    'the reporter to be ready',
    30_000,
  );
}, 60_000);

afterAll(async () => {
  reporter.kill('SIGTERM');
  await new Promise((resolve) => reporter.once('exit', resolve));
  await bus.close();
  await nats.stop();
});

describe('the API’s tokens', () => {
  it('rotate without a restart, and an invalid file keeps the tokens in use', async () => {
    expect(await status(OLD)).toBe(200);
    expect(await status(NEW)).toBe(401);
    // Both for a while, as a rotation goes: clients move over, then the old one goes.
    rotate(`tokens:\n  - { name: platform, token: ${OLD} }\n  - { name: next, token: ${NEW} }\n`);
    await eventually(async () => (await status(NEW)) === 200, 'the new token taken', 10_000, 100);
    expect(await status(OLD)).toBe(200);
    rotate(`tokens:\n  - { name: next, token: ${NEW} }\n`);
    await eventually(async () => (await status(OLD)) === 401, 'the old token dropped', 10_000, 100);
    // A file that does not parse (a token too short) changes nothing, and the log says why.
    rotate(`tokens:\n  - { name: next, token: short }\n`);
    await eventually(
      () =>
        readFileSync(join(scratch, 'reporter.log'), 'utf8').includes('the tokens file is invalid'),
      'the invalid file logged',
      10_000,
      100,
    );
    expect(await status(NEW)).toBe(200);
    const logs = readFileSync(join(scratch, 'reporter.log'), 'utf8');
    expect(logs).not.toContain(NEW);
    expect(logs).not.toContain(OLD);
    expect(logs).toMatch(/API tokens reloaded.*"tokens":2/);
  }, 60_000);
});
