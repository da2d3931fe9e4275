/**
 * The real `bin/lumen.mjs` as a process, its output through real pipes: nothing is lost
 * however large it is, and `-` reads standard input, as users of kubectl expect.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '#lumen/host';
import { repositoryRoot } from '#lumen/testing';
import { main } from '../src/main.js';

const bin = join(repositoryRoot, 'bin', 'lumen.mjs');

/** A `kubectl get … -o yaml` style List: `pods` pods in one namespace, each on ports 80 and 81. */
function manifest(pods: number): string {
  const items: object[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'big' } },
    ...Array.from({ length: pods }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: 'big', name: `pod-${i}`, labels: { app: `app-${i % 7}` } },
      spec: {
        containers: [
          { name: 'c', ports: [{ containerPort: 80 }, { containerPort: 81, protocol: 'TCP' }] },
        ],
      },
      status: { podIP: `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}` },
    })),
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: 'big', name: 'app-0-from-app-1' },
      spec: {
        podSelector: { matchLabels: { app: 'app-0' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { app: 'app-1' } } }] }],
      },
    },
  ];
  return stringify({ apiVersion: 'v1', kind: 'List', items });
}

async function inProcess(argv: string[]): Promise<string> {
  let stdout = '';
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: () => undefined });
  expect(code).toBe(0);
  return stdout;
}

describe('lumen through a pipe', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-pipes-'));
  const file = join(scratch, 'cluster.yaml');
  writeFileSync(file, manifest(400));

  it('writes several MiB to a pipe without losing a byte', async () => {
    const expected = await inProcess(['evaluate', '--matrix', '--format', 'json', file]);
    expect(Buffer.byteLength(expected)).toBeGreaterThan(4 * 1024 * 1024);
    const piped = await run(process.execPath, [
      bin,
      'evaluate',
      '--matrix',
      '--format',
      'json',
      file,
    ]);
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
    expect(Buffer.byteLength(piped.stdout)).toBe(Buffer.byteLength(expected));
    expect(piped.stdout === expected).toBe(true);
  });

  it('reads a manifest from standard input when the file is -', async () => {
    const expected = JSON.parse(
      await inProcess(['evaluate', '--matrix', '--format', 'json', file]),
    ) as { matrices: { name: string }[] };
    const piped = await run(
      process.execPath,
      [bin, 'evaluate', '--matrix', '--format', 'json', '-'],
      {
        input: manifest(400),
      },
    );
    expect(piped.code).toBe(0);
    const fromStdin = JSON.parse(piped.stdout) as { matrices: { name: string }[] };
    expect(fromStdin.matrices.map((m) => m.name)).toEqual(['-']);
    expect({
      ...fromStdin,
      matrices: fromStdin.matrices.map((m) => ({ ...m, name: file })),
    }).toEqual(expected);
  });

  it('names standard input in an error about what it read', async () => {
    const piped = await run(process.execPath, [bin, 'evaluate', '-'], { input: 'kind: [' });
    expect(piped.code).toBe(2);
    expect(piped.stderr).toMatch(/^lumen evaluate: invalid input: -: .*YAML/);
  });
});
