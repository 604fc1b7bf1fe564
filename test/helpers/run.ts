/**
 * Runs a peer program asynchronously (the server under test runs in this process, so a
 * synchronous spawn would deadlock it). A hang limit kills the program; no timing is asserted.
 */
import { spawn } from 'node:child_process';

export interface Run {
  code: number | null;
  /** stdout and stderr, interleaved. */
  output: string;
  stdout: Buffer;
  stderr: string;
}

export function run(
  cmd: string,
  args: readonly string[],
  o: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    hangLimitMs?: number;
    /** Called with all of stderr so far, at each piece of it. */
    onStderr?: (stderr: string) => void;
    /** Closes the program's stdout at once (its writes then fail with EPIPE). */
    closeStdout?: boolean;
  } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      ...(o.cwd ? { cwd: o.cwd } : {}),
      ...(o.env ? { env: o.env } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    if (o.closeStdout) p.stdout.destroy();
    else
      p.stdout.on('data', (c: Buffer) => {
        out.push(c);
        output += c.toString();
      });
    p.stderr.on('data', (c: Buffer) => {
      err.push(c);
      output += c.toString();
      o.onStderr?.(Buffer.concat(err).toString('utf8'));
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), o.hangLimitMs ?? 120_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/**
 * Polls `fn` every 200 ms until it gives a value (e.g. a peer's request reaching the store); a
 * hang detector after `hangLimitMs`, not a timing assertion.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined>, hangLimitMs: number): Promise<T> {
  const end = Date.now() + hangLimitMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}
