/**
 * `npm run build` only when dist/ is older than its sources: tests of the built CLI then skip a
 * full TypeScript build (tens of seconds on a busy machine) when nothing changed since the last.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ if any file under src/ (or the build config) is newer than dist/cli/main.js. */
export function ensureBuilt(): { status: number | null; output: string; built: boolean } {
  const main = join(ROOT, 'dist', 'cli', 'main.js');
  const inputs = Math.max(
    newestMtime(join(ROOT, 'src')),
    statSync(join(ROOT, 'tsconfig.build.json')).mtimeMs,
    statSync(join(ROOT, 'package.json')).mtimeMs,
  );
  if (existsSync(main) && statSync(main).mtimeMs >= inputs) return { status: 0, output: '', built: false };
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`, built: true };
}
