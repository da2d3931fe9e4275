import { describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';
import { join } from 'node:path';
import tseslint from 'typescript-eslint';
import { repositoryRoot } from '#lumen/testing';

// The real ESLint configuration, on code that crosses (or keeps) the library boundary.
// Type-aware rules are switched off: the probe files do not exist on disk.
const eslint = new ESLint({
  cwd: repositoryRoot,
  overrideConfig: tseslint.configs.disableTypeChecked,
});

async function restrictedImportMessages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(repositoryRoot, file) });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

describe('framework-free domain libraries', () => {
  it.each([
    ["import { Injectable } from '@nestjs/common';"],
    ["import { DataSource } from 'typeorm';"],
    ["import { KubeConfig } from '@kubernetes/client-node';"],
  ])('rejects %s in libs/policy', async (code) => {
    const messages = await restrictedImportMessages(
      'libs/policy/src/boundary-probe.ts',
      `${code}\nexport {};\n`,
    );
    expect(messages).toEqual([expect.stringContaining('Domain libraries stay framework-free')]);
  });

  it('allows them in an adapter library', async () => {
    const messages = await restrictedImportMessages(
      'libs/store/src/boundary-probe.ts',
      "import { DataSource } from 'typeorm';\nexport {};\n",
    );
    expect(messages).toEqual([]);
  });
});

describe('one library per stage', () => {
  const stages = ['planner', 'scheduler', 'prober', 'reporter'] as const;
  const pairs = stages.flatMap((from) =>
    stages.filter((to) => to !== from).map((to) => [from, to] as const),
  );

  it.each(pairs)('rejects libs/%s importing the %s stage', async (from, to) => {
    const messages = await restrictedImportMessages(
      `libs/${from}/src/boundary-probe.ts`,
      `import * as other from '#lumen/${to}';\nexport { other };\n`,
    );
    expect(messages).toEqual([
      expect.stringContaining('Stages talk to each other only through libs/contracts messages'),
    ]);
  });

  it.each([
    ['#lumen/messaging'],
    ['#lumen/store'],
    ['#lumen/telemetry'],
    ['prom-client'],
    ['@opentelemetry/api'],
  ])('keeps %s out of a stage: it reaches it through its ports', async (module) => {
    const messages = await restrictedImportMessages(
      'libs/reporter/src/boundary-probe.ts',
      `import * as adapter from '${module}';\nexport { adapter };\n`,
    );
    expect(messages).toEqual([expect.stringContaining('only through its ports')]);
  });

  it('keeps the frameworks out of a stage too', async () => {
    const messages = await restrictedImportMessages(
      'libs/scheduler/src/boundary-probe.ts',
      "import { Injectable } from '@nestjs/common';\nexport { Injectable };\n",
    );
    expect(messages).toEqual([expect.stringContaining('Domain libraries stay framework-free')]);
  });

  it.each(stages)('lets libs/%s speak contracts and use the policy engine', async (stage) => {
    const messages = await restrictedImportMessages(
      `libs/${stage}/src/boundary-probe.ts`,
      "import { TestCaseContract } from '#lumen/contracts';\nimport { PolicyEngine } from '#lumen/policy';\nexport { TestCaseContract, PolicyEngine };\n",
    );
    expect(messages).toEqual([]);
  });
});
