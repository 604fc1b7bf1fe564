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
}

export function run(
  cmd: string,
  args: readonly string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; hangLimitMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      ...(o.cwd ? { cwd: o.cwd } : {}),
      ...(o.env ? { env: o.env } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const out: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => {
      out.push(c);
      output += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), o.hangLimitMs ?? 120_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, stdout: Buffer.concat(out) });
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
