/**
 * The built CLI for tests, in a private output directory that no other command writes:
 * `.test-dist-<stamp>/` at the top of the checkout (so `../../package.json` still resolves), one
 * per state of the sources (`stamp` = newest mtime of src/, tsconfig.build.json, package.json).
 * It is built once (`tsc -p tsconfig.build.json --outDir …` into a temporary directory, then
 * renamed into place) and never rewritten, so a CLI started from it never sees a half-written
 * file — not even while `npm run build`, `npm ci` or `npm run lint` rewrite `dist/`.
 *
 * Test files run in parallel and several of them need the build: the check and the build happen
 * under an exclusive lock file (`.tmp/build.lock`, created with O_EXCL), so one process builds
 * while the others wait and then find it there. A lock left by a process that died is taken over.
 * `ensureConsoleBuilt` builds the web console bundle (`.test-console-<stamp>/`) the same way.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
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

/** The build directory for the sources as they are now. */
function buildDir(): string {
  const stamp = Math.max(
    newestMtime(join(ROOT, 'src')),
    statSync(join(ROOT, 'tsconfig.build.json')).mtimeMs,
    statSync(join(ROOT, 'package.json')).mtimeMs,
  );
  return join(ROOT, `.test-dist-${Math.floor(stamp).toString(36)}`);
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

/**
 * The built CLI's entry (`<build dir>/cli/main.js`), building it first when the sources changed
 * since the last build. `status` is the build's exit status (0 when nothing had to be built).
 */
export function ensureBuilt(): { status: number | null; output: string; built: boolean; main: string } {
  lock();
  try {
    const dir = buildDir();
    const main = join(dir, 'cli', 'main.js');
    if (existsSync(main)) return { status: 0, output: '', built: false, main };
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', tmp],
      { cwd: ROOT, encoding: 'utf8' },
    );
    if (r.status === 0) renameSync(tmp, dir);
    else rmSync(tmp, { recursive: true, force: true });
    return { status: r.status, output: `${r.stdout}${r.stderr}`, built: true, main };
  } finally {
    rmSync(LOCK, { force: true });
  }
}

/** The console bundle's directory for the sources as they are now (ui/ and its build script). */
function consoleDir(): string {
  const stamp = Math.max(
    newestMtime(join(ROOT, 'ui')),
    statSync(join(ROOT, 'scripts', 'build-console.mjs')).mtimeMs,
    statSync(join(ROOT, 'package.json')).mtimeMs,
  );
  return join(ROOT, `.test-console-${Math.floor(stamp).toString(36)}`);
}

/**
 * The web console bundle (scripts/build-console.mjs) in a private directory, built once per
 * state of ui/ under the same lock as `ensureBuilt`; pass it as `console.dir` to startServer.
 * Throws when the build fails.
 */
export function ensureConsoleBuilt(): string {
  lock();
  try {
    const dir = consoleDir();
    if (existsSync(join(dir, 'index.html'))) return dir;
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-console.mjs'), tmp], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(`the console build failed:\n${r.stdout}${r.stderr}`);
    }
    renameSync(tmp, dir);
    return dir;
  } finally {
    rmSync(LOCK, { force: true });
  }
}
