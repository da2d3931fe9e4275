import { describe, expect, it } from '@jest/globals';
import { basename } from 'node:path';
import { PolicyEngine, ReferenceEvaluator } from '#lumen/policy';
import {
  exampleScenarioDirs,
  loadScenarioFile,
  scenarioFiles,
  serviceRowVerdicts,
} from '#lumen/scenario';
import { conformanceScenarioFiles, repositoryRoot } from '#lumen/testing';

const examples = exampleScenarioDirs(repositoryRoot);
/**
 * NetworkPolicy scenarios, then the tier scenarios (ours and the upstream conformance
 * states), connections through Services, and dual-stack pods.
 */
const files = [
  ...conformanceScenarioFiles(),
  ...scenarioFiles(examples.tiers),
  ...scenarioFiles(examples.services),
  ...scenarioFiles(examples.dualStack),
];

describe.each(files.map((file) => [basename(file), file]))(
  'conformance scenario %s',
  (_name, file) => {
    const scenario = loadScenarioFile(file);
    const dualStack = scenario.families.length > 1;
    // Each family's view: a dual-stack pod at its address of that family, so an ipBlock
    // matches per family.
    const views = scenario.families.map((view) => ({
      view,
      engine: new PolicyEngine(view.cluster),
      reference: new ReferenceEvaluator(view.cluster),
      tag: dualStack ? ` over IPv${view.family}` : '',
    }));

    it('has only valid policies and at least one expectation', () => {
      for (const { engine } of views) expect(engine.errors).toEqual([]);
      expect(
        scenario.families.reduce(
          (n, f) => n + f.expectations.length + f.serviceExpectations.length,
          0,
        ),
      ).toBeGreaterThan(0);
    });

    const podRows = views.flatMap(({ view, engine, reference, tag }) =>
      view.expectations.map(
        (row) =>
          [
            `${row.from.namespace}/${row.from.name} -> ${row.to.namespace}/${row.to.name}:${row.port}/${row.protocol}${tag}`,
            { row, engine, reference },
          ] as const,
      ),
    );
    if (podRows.length > 0)
      it.each(podRows)('%s', (_label, { row, engine, reference }) => {
        const compiled = engine.verdict(row);
        expect(compiled.allowed).toBe(row.allowed);
        expect(reference.verdict(row)).toEqual(compiled);
      });

    const serviceRows = views.flatMap(({ view, engine, reference, tag }) =>
      view.serviceExpectations.map(
        (row) =>
          [
            `${row.from.namespace}/${row.from.name} -> svc ${row.service.namespace}/${row.service.name}:${row.port}/${row.protocol}${tag}`,
            { row, view, engine, reference },
          ] as const,
      ),
    );
    if (serviceRows.length > 0)
      it.each(serviceRows)(
        '%s: every backend gives the verdict',
        (_label, { row, view, engine, reference }) => {
          const compiled = serviceRowVerdicts(engine, view, scenario.services, row);
          expect(compiled.length).toBeGreaterThan(0);
          for (const backend of compiled) expect(backend.verdict.allowed).toBe(row.allowed);
          expect(
            serviceRowVerdicts(reference, view, scenario.services, row).map((b) => b.verdict),
          ).toEqual(compiled.map((b) => b.verdict));
        },
      );
  },
);
