/** Helpers shared by Lumen's test suites. Test code only. */
import { conformanceDir, exampleScenarioDirs, scenarioFiles } from '#lumen/scenario';
import { repositoryRoot } from './root.js';

export { repositoryRoot } from './root.js';
export { standaloneCopy } from './standalone.js';

/**
 * The shared conformance scenario files, then the repository's own NetworkPolicy recipes
 * (`examples/recipes`); fails loudly when either is missing.
 */
export function conformanceScenarioFiles(): string[] {
  const shared = scenarioFiles(conformanceDir(repositoryRoot));
  if (shared.length === 0) throw new Error('no conformance scenarios found');
  return [...shared, ...exampleRecipeFiles()];
}

/** The repository's own NetworkPolicy recipes, which the demo and the README use. */
export function exampleRecipeFiles(): string[] {
  const files = scenarioFiles(exampleScenarioDirs(repositoryRoot).recipes);
  if (files.length === 0) throw new Error('no example recipes found');
  return files;
}
export {
  calloutNatsServer,
  layerBinary,
  promtool,
  renderChart,
  type RenderedObject,
} from './tools.js';
export { containerEnvironment, type PodContext } from './pod-env.js';
export { spawnService } from './service-process.js';
export * from './lab-hygiene.js';
export { eventually } from './eventually.js';
export * from './records.js';
export * from './fakes.js';
export * from './dispatch.js';
export { makeServerCertificate, makeTestCa, type TestCertificate } from './certificates.js';
export * from './fuzz.js';
export { startPrivatePostgres, type PrivatePostgres } from './postgres.js';
export { CHROMIUM, launchChromium, screenshotPath } from './browser.js';
