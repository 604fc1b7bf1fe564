/**
 * `npm run build` only when dist/ is older than its sources: tests of the built CLI then skip a
 * full TypeScript build (tens of seconds on a busy machine) when nothing changed since the last.
 *
 * Test files run in parallel and several of them need dist/: the check and the build happen
 * under an exclusive lock file (`.tmp/build.lock`, created with O_EXCL), so one process builds
 * while the others wait and then find dist/ fresh — nobody runs the CLI from a half-written
 * dist/. A lock left by a process that died is taken over.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const LOCK = join(ROOT, '.tmp', 'build.lock');
/** Hang detector for a build someone else holds the lock for (not a timing assertion). */
const LOCK_WAIT_MS = 10 * 60_000;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function fresh(): boolean {
  const main = join(ROOT, 'dist', 'cli', 'main.js');
  const inputs = Math.max(
    newestMtime(join(ROOT, 'src')),
    statSync(join(ROOT, 'tsconfig.build.json')).mtimeMs,
    statSync(join(ROOT, 'package.json')).mtimeMs,
  );
  return existsSync(main) && statSync(main).mtimeMs >= inputs;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Takes the build lock (waiting for another holder; taking over a dead holder's lock). */
function lock(): void {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(LOCK, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
      rmSync(LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`dist/ build lock ${LOCK} held by ${holder} for too long`);
    Atomics.wait(sleeper, 0, 0, 200);
  }
}

/** Builds dist/ if any file under src/ (or the build config) is newer than dist/cli/main.js. */
export function ensureBuilt(): { status: number | null; output: string; built: boolean } {
  // The check too runs under the lock: dist/cli/main.js may be written before the rest of a
  // build another process is doing.
  lock();
  try {
    if (fresh()) return { status: 0, output: '', built: false };
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    return { status: r.status, output: `${r.stdout}${r.stderr}`, built: true };
  } finally {
    rmSync(LOCK, { force: true });
  }
}
