/**
 * The Dockerfile, checked without Docker (none runs here): pinned bases, the entrypoints
 * the chart runs exist after `npm run build`, the prober's packages (nmap, nsenter) come
 * from the Debian packages the image installs, and no secret is baked in.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '#lumen/host';
import { repositoryRoot } from '#lumen/testing';

const dockerfile = readFileSync(join(repositoryRoot, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stages = instructions.filter((l) => /^FROM /i.test(l));
const runtime = instructions.slice(instructions.lastIndexOf(stages[stages.length - 1]!));

describe('the Dockerfile', () => {
  it('is multi-stage, every base pinned to an exact version', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const from of stages) {
      const image = from.split(/\s+/)[1] ?? '';
      expect(image).not.toMatch(/:latest$|^[^:@]+$/);
      // node:20.20.2-bookworm-slim or an @sha256 digest.
      expect(image).toMatch(/:\d+\.\d+\.\d+[-\w.]*$|@sha256:[0-9a-f]{64}$/);
    }
  });

  it('runs as a non-root user in the final stage', () => {
    const user = runtime.filter((l) => /^USER /i.test(l)).pop();
    expect(user).toMatch(/^USER (10001|lumen)/);
    expect(user).not.toMatch(/^USER (0|root)\b/);
  });

  it('has, after npm run build, every entrypoint the chart and lumen run start', () => {
    const templates = join(repositoryRoot, 'deploy', 'helm', 'lumen', 'templates');
    const commanded = readdirSync(templates)
      .map((f) => readFileSync(join(templates, f), 'utf8'))
      .flatMap((t) =>
        [...t.matchAll(/\/app\/(dist\/services\/\w+\/src\/main\.js)/g)].map((m) => m[1]!),
      );
    const daemonSet = readFileSync(
      join(repositoryRoot, 'libs', 'kube', 'src', 'prober-daemonset.ts'),
      'utf8',
    );
    commanded.push(
      ...[...daemonSet.matchAll(/\/app\/(dist\/services\/\w+\/src\/main\.js)/g)].map((m) => m[1]!),
    );
    expect(new Set(commanded)).toEqual(
      new Set(
        ['planner', 'scheduler', 'prober', 'reporter'].map((s) => `dist/services/${s}/src/main.js`),
      ),
    );
    // The image copies dist/ from the build stage, which runs the same build.
    expect(runtime.some((l) => /^COPY --from=build \/app\/dist \.\/dist$/.test(l))).toBe(true);
    expect(instructions).toContain('RUN node scripts/build.mjs && npm prune --omit=dev');
    for (const entry of new Set(commanded))
      expect(existsSync(join(repositoryRoot, entry))).toBe(true);
  });

  it('installs the Debian packages that provide nmap and nsenter in the runtime stage', async () => {
    const install = runtime.find((l) => /apt-get install/.test(l)) ?? '';
    const packages = install
      .split(/\s+/)
      .filter(
        (w) =>
          /^[a-z0-9][a-z0-9.+-]+$/.test(w) &&
          !['apt-get', 'install', 'update', 'rm', 'groupadd', 'useradd', 'lumen'].includes(w),
      );
    for (const [binary, owner] of [
      ['/usr/bin/nmap', 'nmap'],
      ['/usr/bin/nsenter', 'util-linux'],
    ] as const) {
      expect(packages).toContain(owner);
      // On this Debian 12 machine (the base's release), that package is what provides it.
      const found = await run('dpkg', ['-S', binary]);
      expect(found.stdout.trim()).toBe(`${owner}: ${binary}`);
    }
  });

  it('bakes in no secret', () => {
    for (const line of instructions) {
      expect(line).not.toMatch(/^(ENV|ARG)\s+\S*(PASSWORD|TOKEN|SECRET|KEY|CREDENTIAL)/i);
      expect(line).not.toMatch(/^(COPY|ADD)\s.*(\.env|kubeconfig|\.pem|\.key|id_rsa|\.npmrc)/i);
    }
    expect(instructions.some((l) => /^COPY \. /.test(l))).toBe(false); // never the whole context
    const ignored = readFileSync(join(repositoryRoot, '.dockerignore'), 'utf8').split('\n');
    for (const path of ['node_modules', '.git', '.lumen', 'dist']) expect(ignored).toContain(path);
  });
});
