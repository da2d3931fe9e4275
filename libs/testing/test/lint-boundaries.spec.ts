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
