#!/usr/bin/env node
// Builds the web console (ui/, docs/console.md) into one directory the server serves at /ui/:
// index.html, app.js (preact, uPlot and the pages, minified) and app.css. Nothing is fetched
// at run time from anywhere else. Usage: node scripts/build-console.mjs [OUTDIR] (default
// dist/console). `npm run build` runs it; the tests build into a private directory
// (test/helpers/build.ts `ensureConsoleBuilt`).
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const out = resolve(process.argv[2] ?? join(root, 'dist', 'console'));
mkdirSync(out, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { app: 'ui/main.tsx' },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(root, 'ui', 'index.html'), join(out, 'index.html'));
