// Jest runs the TypeScript sources directly as native ES modules (node
// --experimental-vm-modules, see package.json), transformed by swc. See
// docs/adr/0002-jest-in-esm-mode-with-swc.md.
//
// Three tiers, one project each:
//   unit         *.spec.ts       pure code and fakes; no root, no services
//   integration  *.int.spec.ts   real HTTP, TLS, kubectl, NATS, PostgreSQL, SQLite
//   lab          *.lab.spec.ts   root: real network namespaces, nftables and nmap
const swcTransform = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2023',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      keepClassNames: true,
    },
    sourceMaps: 'inline',
  },
];

const shared = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swcTransform },
  moduleNameMapper: {
    '^#lumen/(.*)$': '<rootDir>/libs/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testEnvironment: 'node',
};

const roots = [
  '<rootDir>/libs/*/test/**/',
  '<rootDir>/cli/test/**/',
  '<rootDir>/services/*/test/**/',
  '<rootDir>/deploy/test/**/',
];

/** @type {import('jest').Config} */
export default {
  // Jest reads the timeout from the top level only; lab tests probe real networks.
  testTimeout: 180_000,
  // Jest's default on two cores is one worker. Lab suites mostly wait for nmap and
  // timeouts, so a second worker runs the CPU-bound unit suites beside them.
  maxWorkers: 2,
  // Jest's own order (on a clean clone: largest file first, which starts the longest lab
  // suite first). Grouping every lab suite first was tried and measured slower (1072 s
  // against 772 s): two lab suites side by side on two cores slow each other far more
  // than a lab suite beside unit suites.
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: roots.map((r) => `${r}*.spec.ts`),
      testPathIgnorePatterns: ['\\.int\\.spec\\.ts$', '\\.lab\\.spec\\.ts$'],
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: roots.map((r) => `${r}*.int.spec.ts`),
    },
    {
      ...shared,
      displayName: 'lab',
      testMatch: roots.map((r) => `${r}*.lab.spec.ts`),
      globalSetup: '<rootDir>/libs/testing/hooks/lab-global-setup.mjs',
      globalTeardown: '<rootDir>/libs/testing/hooks/lab-global-teardown.mjs',
    },
  ],
};
