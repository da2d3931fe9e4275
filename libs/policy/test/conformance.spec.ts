import { describe, expect, it } from '@jest/globals';
import { basename } from 'node:path';
import { PolicyEngine, ReferenceEvaluator } from '#lumen/policy';
import { exampleScenarioDirs, loadScenarioFile, scenarioFiles } from '#lumen/scenario';
import { conformanceScenarioFiles, repositoryRoot } from '#lumen/testing';

/** NetworkPolicy scenarios, then the tier scenarios (ours and the upstream conformance states). */
const files = [
  ...conformanceScenarioFiles(),
  ...scenarioFiles(exampleScenarioDirs(repositoryRoot).tiers),
];

describe.each(files.map((file) => [basename(file), file]))(
  'conformance scenario %s',
  (_name, file) => {
    const scenario = loadScenarioFile(file);
    const engine = new PolicyEngine(scenario.cluster);
    const reference = new ReferenceEvaluator(scenario.cluster);

    it('has only valid policies and at least one expectation', () => {
      expect(engine.errors).toEqual([]);
      expect(scenario.expectations.length).toBeGreaterThan(0);
    });

    it.each(
      scenario.expectations.map(
        (row) =>
          [
            `${row.from.namespace}/${row.from.name} -> ${row.to.namespace}/${row.to.name}:${row.port}/${row.protocol}`,
            row,
          ] as const,
      ),
    )('%s', (_label, row) => {
      const compiled = engine.verdict(row);
      expect(compiled.allowed).toBe(row.allowed);
      expect(reference.verdict(row)).toEqual(compiled);
    });
  },
);
