import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// Libraries that adapt Lumen to a framework or an external system. Every other library
// under libs/ holds domain logic and must stay framework-free.
const adapterLibs = ['kube', 'store', 'messaging', 'telemetry', 'service'];

// One library per pipeline stage. A stage talks to the others only through libs/contracts
// messages, and reaches the bus, store, metrics and spans only through its ports.
const stageLibs = ['planner', 'scheduler', 'prober', 'reporter'];

const frameworkImports = {
  group: ['@nestjs/*', 'typeorm', 'typeorm/*', '@kubernetes/client-node'],
  message:
    'Domain libraries stay framework-free: put Nest, TypeORM and client-node code in a service or an adapter library.',
};

const stageBoundaries = stageLibs.map((stage) => {
  const otherStages =
    'Stages talk to each other only through libs/contracts messages: a stage library never imports another.';
  const throughPorts =
    'A stage reaches the bus, store, metrics and spans only through its ports (src/ports.ts); the services pass the real ones in.';
  return {
    files: [`libs/${stage}/src/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          // Exact module names: in patterns a leading # would read as a gitignore comment.
          paths: [
            ...stageLibs
              .filter((s) => s !== stage)
              .map((s) => ({ name: `#lumen/${s}`, message: otherStages })),
            ...adapterLibs.map((lib) => ({ name: `#lumen/${lib}`, message: throughPorts })),
            { name: 'nats', message: throughPorts },
            { name: 'prom-client', message: throughPorts },
          ],
          patterns: [frameworkImports, { group: ['@opentelemetry/*'], message: throughPorts }],
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'deploy/helm/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-extraneous-class': ['error', { allowWithDecorator: true }],
      complexity: ['error', 15],
      'max-depth': ['error', 4],
      'max-params': ['error', 5],
      eqeqeq: ['error', 'always'],
      // client-node's models are data classes built from object literals by design.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    files: ['libs/**/*.ts'],
    // Tests may drive a library through the real clients (client-node against the lab).
    ignores: [...adapterLibs.map((lib) => `libs/${lib}/**`), 'libs/*/test/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [frameworkImports] }],
    },
  },
  ...stageBoundaries,
  {
    files: ['**/test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Test doubles implement async interfaces without awaiting anything.
      '@typescript-eslint/require-await': 'off',
      complexity: 'off',
    },
  },
  {
    // The dashboard runs in the browser; its components are Preact function components,
    // whose return type is JSX, and its views are long by nature of markup.
    files: ['services/reporter/ui/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/explicit-module-boundary-types': 'off',
      complexity: ['error', 25],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { '@typescript-eslint/explicit-module-boundary-types': 'off' },
  },
);
