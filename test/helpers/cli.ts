/**
 * The `scepter` CLI in a child process, as a user runs it: from the sources (through tsx) or,
 * with `main`, the built CLI (test/helpers/build.ts `ensureBuilt().main`). The environment is
 * this process's with SCEPTER_DB cleared (a store URL set outside never leaks into a test) and
 * `env` on top. Asynchronous (test/helpers/run.ts): the server under test may run in this
 * process. The hang limit (default 120 s) kills the CLI; no timing is asserted.
 */
import { join } from 'node:path';
import { run } from './run.js';

const ROOT = join(import.meta.dirname, '..', '..');
/** The CLI's entry point in the sources. */
export const CLI_SOURCE = join(ROOT, 'src', 'cli', 'main.ts');

export interface CliRun {
  /** The exit status (null when killed). */
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** The built CLI's main.js instead of the sources. */
  main?: string;
  hangLimitMs?: number;
  /** Called with all of stderr so far, at each piece of it. */
  onStderr?: (stderr: string) => void;
  /** Closes the CLI's stdout at once (its writes then fail with EPIPE). */
  closeStdout?: boolean;
}

export async function scepterCli(args: readonly string[], o: CliOptions = {}): Promise<CliRun> {
  const entry = o.main !== undefined ? [o.main] : ['--import', 'tsx', CLI_SOURCE];
  const r = await run(process.execPath, [...entry, ...args], {
    cwd: o.cwd ?? ROOT,
    env: { ...process.env, SCEPTER_DB: '', ...o.env },
    hangLimitMs: o.hangLimitMs ?? 120_000,
    ...(o.onStderr ? { onStderr: o.onStderr } : {}),
    ...(o.closeStdout ? { closeStdout: true } : {}),
  });
  return { status: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
}
