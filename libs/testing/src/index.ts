/** Helpers shared by Lumen's test suites. Test code only. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceDir, scenarioFiles } from '#lumen/scenario';

export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The shared conformance scenario files; fails loudly when they are missing. */
export function conformanceScenarioFiles(): string[] {
  const files = scenarioFiles(conformanceDir(repositoryRoot));
  if (files.length === 0) throw new Error('no conformance scenarios found');
  return files;
}
export { layerBinary, renderChart, type RenderedObject } from './tools.js';
export * from './lab-hygiene.js';
export { eventually } from './eventually.js';
export * from './records.js';
export * from './fakes.js';
