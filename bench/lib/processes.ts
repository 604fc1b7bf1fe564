/**
 * Server processes for the benchmark: `scepter serve` and micromdm `scepserver` as child
 * processes (so their memory and CPU are their own), a peak-RSS sampler reading
 * /proc/PID/status, and `openssl speed` for the RSA bound.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync, readFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A running server child. */
export interface ServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function stopper(child: ChildProcess) {
  return async (graceMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited(child);
    clearTimeout(t);
  };
}

/** Polls `file` until `pattern` matches (or the child exits / time runs out). */
async function waitForLine(
  file: string,
  pattern: RegExp,
  child: ChildProcess,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // not created yet
    }
    const m = text.match(pattern);
    if (m) return m;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${text}`);
    }
    if (Date.now() > until) throw new Error(`server not ready after ${timeoutMs} ms:\n${text}`);
    await sleep(50);
  }
}

export interface ScepterServeOptions {
  dataDir: string;
  challenge: string;
  /** Store URL (--db). */
  db?: string;
  workers?: number;
  /** Where stdout/stderr go (the per-request log lines). */
  logFile: string;
  logLevel?: string;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Repository root (default: cwd). */
  root?: string;
  /** Compiled CLI entry (…/cli/main.js); default: the TypeScript sources through tsx. */
  builtEntry?: string;
  /** More `scepter serve` options (e.g. `--approval manual`). */
  serveArgs?: string[];
  /** Run the server under `taskset -c CPUS` (pinned to those cores). */
  cpus?: string;
  /** A command to run the server under (e.g. `strace -f -c -o FILE`). */
  wrap?: string[];
}

/**
 * Compiles src/ (tsconfig.build.json) into `outDir` inside the repository, so the server runs
 * as operators run it (plain JS, no tsx hooks in every thread). Returns the CLI entry.
 */
export function buildForBench(root: string, outDir: string): string {
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(root, 'tsconfig.build.json'),
      '--outDir',
      outDir,
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
  return join(outDir, 'cli/main.js');
}

/** Starts `scepter serve` (built, or via tsx) on 127.0.0.1, any free port; resolves once it listens. */
export async function startScepter(o: ScepterServeOptions): Promise<ServerProcess> {
  const root = o.root ?? process.cwd();
  const args = [
    ...(o.nodeFlags ?? []),
    ...(o.builtEntry ? [o.builtEntry] : ['--import', 'tsx', join(root, 'src/cli/main.ts')]),
    'serve',
    '--data',
    o.dataDir,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--challenge',
    o.challenge,
    '--log-level',
    o.logLevel ?? 'info',
    ...(o.db ? ['--db', o.db] : []),
    ...(o.workers !== undefined ? ['--workers', String(o.workers)] : []),
    ...(o.serveArgs ?? []),
  ];
  return startListening(args, o);
}

/**
 * Starts `node ARGS` in `root` (default: cwd) under `taskset -c CPUS` and `wrap`, its output
 * to `logFile`; resolves once it prints `listening on URL` (scepter serve, the floor server).
 */
export async function startListening(
  args: readonly string[],
  o: { logFile: string; root?: string; cpus?: string; wrap?: string[] },
): Promise<ServerProcess> {
  const fd = openSync(o.logFile, 'w');
  // Wrappers in front of node: `taskset -c CPUS`, then e.g. `strace -f -c -o FILE` (--server-wrap).
  const wrap = [...(o.cpus ? ['taskset', '-c', o.cpus] : []), ...(o.wrap ?? [])];
  const cwd = o.root ?? process.cwd();
  const child =
    wrap.length > 0
      ? spawn(wrap[0] as string, [...wrap.slice(1), process.execPath, ...args], {
          cwd,
          stdio: ['ignore', fd, fd],
        })
      : spawn(process.execPath, args, { cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  try {
    const m = await waitForLine(o.logFile, /listening on (http:\/\/\S+)/, child, 60_000);
    return { url: m[1] as string, pid: child.pid as number, child, stop: stopper(child) };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
}

/** A free TCP port on 127.0.0.1 (for servers that cannot report the one they picked). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** True when `cmd` is on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Creates a micromdm depot (CA) in `depot` with an RSA key of `keySize` bits. */
export function initMicromdmDepot(depot: string, keySize: number): void {
  const r = spawnSync('scepserver', ['ca', '-init', '-depot', depot, '-keySize', String(keySize)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`scepserver ca -init failed: ${r.stderr}`);
}

/** Starts micromdm `scepserver` on a free port with the depot and challenge. */
export async function startMicromdm(
  depot: string,
  challenge: string,
  logFile: string,
): Promise<ServerProcess> {
  const port = await freePort();
  const fd = openSync(logFile, 'w');
  const child = spawn(
    'scepserver',
    ['-depot', depot, '-port', String(port), '-challenge', challenge, '-allowrenew', '0'],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const url = `http://127.0.0.1:${port}/scep`;
  const until = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`scepserver exited: ${readFileSync(logFile, 'utf8')}`);
    try {
      const r = await fetch(`${url}?operation=GetCACaps`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error('scepserver did not start');
    }
    await sleep(50);
  }
  return { url, pid: child.pid as number, child, stop: stopper(child) };
}

/** Resident set size of a process in KiB (VmRSS), or 0 when it is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * CPU time (user + system, all threads) a process has used so far, in seconds, from
 * /proc/PID/stat (clock ticks of 1/100 s); NaN when unavailable.
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** One thread's counters from /proc/PID/task/TID: CPU seconds and context switches so far. */
export interface ThreadTimes {
  tid: number;
  cpuS: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** Every thread of `pid` (empty when /proc is unavailable). */
export function threadTimes(pid: number): ThreadTimes[] {
  const out: ThreadTimes[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      const v = status.match(/^voluntary_ctxt_switches:\s+(\d+)/m);
      const nv = status.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m);
      out.push({
        tid: Number(t),
        cpuS: (Number(fields[11]) + Number(fields[12])) / 100,
        voluntarySwitches: v ? Number(v[1]) : 0,
        involuntarySwitches: nv ? Number(nv[1]) : 0,
      });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * What each thread used between two `threadTimes` snapshots, per `per` operations: the main
 * thread (tid = pid), the busiest other thread (an enrollment worker when there is one) and
 * all the others together (V8 platform/GC threads, libuv's pool: fsync, log writes).
 */
export function threadReport(pid: number, before: ThreadTimes[], after: ThreadTimes[], per: number): string {
  const base = new Map(before.map((t) => [t.tid, t]));
  const deltas = after.map((t) => {
    const b = base.get(t.tid);
    return {
      tid: t.tid,
      cpuMs: ((t.cpuS - (b?.cpuS ?? 0)) * 1000) / per,
      v: (t.voluntarySwitches - (b?.voluntarySwitches ?? 0)) / per,
      nv: (t.involuntarySwitches - (b?.involuntarySwitches ?? 0)) / per,
    };
  });
  const main = deltas.find((d) => d.tid === pid);
  const others = deltas.filter((d) => d.tid !== pid).sort((a, b) => b.cpuMs - a.cpuMs);
  const top = others[0];
  const rest = others.slice(1);
  const sum = (xs: typeof deltas, k: 'cpuMs' | 'v' | 'nv') => xs.reduce((a, x) => a + x[k], 0);
  const f = (label: string, xs: typeof deltas) =>
    `${label} ${sum(xs, 'cpuMs').toFixed(2)} ms (switches ${sum(xs, 'v').toFixed(1)} + ${sum(xs, 'nv').toFixed(1)} forced)`;
  const each = rest
    .filter((d) => d.cpuMs >= 0.005)
    .map((d) => `${d.tid - pid}:${d.cpuMs.toFixed(2)}`)
    .join(' ');
  return (
    [
      f('main', main ? [main] : []),
      f(`busiest other (tid ${top?.tid ?? '-'})`, top ? [top] : []),
      f(`${rest.length} others`, rest),
    ].join('; ') + ` [others by tid − pid: ${each}]`
  );
}

/** Samples VmRSS every `everyMs` until stopped; returns the peak in KiB. */
export function sampleRss(pid: number, everyMs = 50): { stop(): number } {
  let peak = rssKiB(pid);
  const t = setInterval(() => {
    peak = Math.max(peak, rssKiB(pid));
  }, everyMs);
  return {
    stop() {
      clearInterval(t);
      return Math.max(peak, rssKiB(pid));
    },
  };
}

/** `openssl speed -seconds S rsaBITS`: private-key operations (sign) per second on one core. */
export function opensslRsaSignPerSecond(bits: number, seconds: number): number {
  const r = spawnSync('openssl', ['speed', '-seconds', String(seconds), `rsa${bits}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl speed failed: ${r.stderr}`);
  // "rsa 2048 bits 0.000622s 0.000018s   1608.4  54918.7"
  const m = r.stdout.match(new RegExp(`rsa\\s+${bits}\\s+bits\\s+\\S+\\s+\\S+\\s+([\\d.]+)\\s+([\\d.]+)`));
  if (!m) throw new Error(`cannot read openssl speed output:\n${r.stdout}`);
  return Number(m[1]);
}

/** The 1-minute load average (from /proc/loadavg). */
export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}
