import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Builds the dashboard into dist/ui, served by `tidemark server`; no CDN, everything bundled.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
});
