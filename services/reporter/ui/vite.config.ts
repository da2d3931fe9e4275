import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * The dashboard (issue 18): Preact and uPlot bundled into static files under dist/ui, which
 * the reporter serves at /ui. Nothing is fetched from elsewhere at run time (air-gapped).
 */
export default defineConfig({
  root: here,
  base: '/ui/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../../dist/ui', import.meta.url)),
    emptyOutDir: true,
    // The reporter's CSP allows no inline script: one module file, its CSS beside it.
    modulePreload: false,
    assetsInlineLimit: 0,
    sourcemap: true,
    target: 'es2022',
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
});
