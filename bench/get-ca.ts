/**
 * GetCACaps and GetCACert throughput: `scepter serve` (built, as `npm start` runs it) pinned to
 * one core, `wrk` (when installed; else a keep-alive node client in another process) pinned to
 * the other, log level info to a file as in production.
 *
 *   node --import tsx bench/get-ca.ts [--seconds 10] [--connections 32] [--server-cpus 0]
 *                                     [--client-cpus 1] [--ca-only] [--entry dist/cli/main.js]
 *
 * Reports, per operation: requests per second as measured, the server's CPU time per request
 * (/proc, all threads) and what that is as requests per second of one core (1 / CPU per
 * request): on a shared machine the server does not get its core to itself, so the second
 * figure is the one that does not depend on the other work running.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initCa } from '../src/ca/keystore.js';
import { buildForBench, cpuSeconds, hasCommand, loadAverage, startScepter } from './lib/processes.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'server-cpus': { type: 'string', default: '0' },
    'client-cpus': { type: 'string', default: '1' },
    'ca-only': { type: 'boolean', default: false },
    /** A compiled CLI entry to run instead of compiling src/ (A/B comparisons). */
    entry: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);

/** A keep-alive GET loop in a child process (when wrk is missing): prints the request count. */
const NODE_CLIENT = `
const http = require('node:http');
const [url, conns, secs] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conns) });
let n = 0; const until = Date.now() + Number(secs) * 1000;
const one = () => new Promise((res, rej) => http.get(url, { agent }, (r) => { r.resume(); r.on('end', res); }).on('error', rej));
const loop = async () => { while (Date.now() < until) { await one(); n++; } };
Promise.all(Array.from({ length: Number(conns) }, loop)).then(() => { console.log(n); agent.destroy(); });
`;

function load(url: string): { requests: number; seconds: number; tool: string } {
  const pin = ['-c', String(args['client-cpus'])];
  if (hasCommand('wrk')) {
    const r = spawnSync('taskset', [...pin, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, url], {
      encoding: 'utf8',
    });
    const m = r.stdout.match(/(\d+) requests in ([\d.]+)s/);
    if (!m) throw new Error(`cannot read wrk output:\n${r.stdout}${r.stderr}`);
    return { requests: Number(m[1]), seconds: Number(m[2]), tool: 'wrk 1 thread' };
  }
  const t0 = Date.now();
  const r = spawnSync(
    'taskset',
    [...pin, process.execPath, '-e', NODE_CLIENT, url, String(CONNECTIONS), String(SECONDS)],
    { encoding: 'utf8' },
  );
  return { requests: Number(r.stdout.trim()), seconds: (Date.now() - t0) / 1000, tool: 'node client' };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-getca-'));
  try {
    const entry = args.entry ?? buildForBench(process.cwd(), join(process.cwd(), '.tmp/bench-dist'));
    await initCa(join(dir, 'data'), { keySize: 2048, ...(args['ca-only'] ? {} : { ra: true }) });
    const server = await startScepter({
      dataDir: join(dir, 'data'),
      challenge: 'bench-get-ca',
      builtEntry: entry,
      logFile: join(dir, 'server.log'),
      cpus: String(args['server-cpus']),
    });
    const rows: string[] = [];
    try {
      for (const op of ['GetCACaps', 'GetCACert']) {
        const url = `${server.url}?operation=${op}`;
        load(url); // warm-up run, same length
        const la = loadAverage();
        const c0 = cpuSeconds(server.pid);
        const r = load(url);
        const cpu = cpuSeconds(server.pid) - c0;
        const perReqUs = (cpu / r.requests) * 1e6;
        rows.push(
          `| ${op} | ${(r.requests / r.seconds).toFixed(0)} | ${perReqUs.toFixed(1)} | ${(1e6 / perReqUs).toFixed(0)} | ${(cpu / r.seconds).toFixed(2)} | ${la.toFixed(1)} | ${r.tool} |`,
        );
      }
    } finally {
      await server.stop();
    }
    process.stdout.write(
      [
        '',
        `GetCACaps / GetCACert, ${CONNECTIONS} connections, ${SECONDS} s, server on CPU ${args['server-cpus']}, load on CPU ${args['client-cpus']}, ${args['ca-only'] ? 'CA only' : 'RA mode'}`,
        '',
        '| operation | requests/s measured | server CPU µs/request | requests/s per core (1 / CPU) | server cores used | load avg | load generator |',
        '|---|---:|---:|---:|---:|---:|---|',
        ...rows,
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
