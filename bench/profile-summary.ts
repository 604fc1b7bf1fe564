/**
 * Summarises V8 `.cpuprofile` files (from `npm run bench -- --profile DIR`, i.e. node
 * --cpu-prof): self time per function and per source file, as shares of all samples, and
 * (`--categories`) the busy samples by what they were doing: each sample goes to the first of
 * the categories below that matches its leaf frame or, walking towards the root, a caller (the
 * idle samples and the module loading at start-up are left out, so the shares are of the time
 * spent serving).
 *
 *   node --import tsx bench/profile-summary.ts DIR_OR_FILE [--top 25] [--categories] [--per N]
 *
 * `--per N` adds the milliseconds per request when the profile covers N requests.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** Self samples per key (function or file) of one profile. */
export function selfTimes(p: CpuProfile, key: (n: ProfileNode) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const k = key(n);
    out.set(k, (out.get(k) ?? 0) + hits);
  }
  return out;
}

function shortUrl(url: string): string {
  if (url === '') return '(native/V8)';
  const i = url.indexOf('node_modules/');
  if (i >= 0) return url.slice(i + 'node_modules/'.length).split('/')[0] ?? url;
  const s = url.indexOf('/src/');
  if (s >= 0) return url.slice(s + 1);
  if (url.startsWith('node:')) return url;
  return basename(url);
}

function files(path: string): string[] {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .flatMap((f) => files(join(path, f)))
    .filter((f) => f.endsWith('.cpuprofile'));
}

function print(title: string, m: Map<string, number>, total: number, top: number): void {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}\n`);
  }
}

type Frame = ProfileNode['callFrame'];

/** Categories of a leaf frame alone (the RSA private and public operations, V8's own work). */
function leafCategory(f: Frame): string | undefined {
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(garbage collector)') return 'GC';
  if (f.functionName === '(program)') return 'V8 other (program)';
  if (f.url === 'node:internal/crypto/sig') return 'RSA sign / verify';
  if (f.url === 'node:internal/crypto/cipher' && f.functionName === '') return 'RSA decrypt / encrypt';
  return undefined;
}

/** Categories of any frame, tried leaf first and then each caller in turn. */
const FRAME_CATEGORIES: ReadonlyArray<readonly [string, (f: Frame) => boolean]> = [
  ['start-up (module loading)', (f) => /node:internal\/modules\//.test(f.url)],
  [
    'log line (pino)',
    (f) =>
      /node_modules\/(pino|sonic-boom|thread-stream)\/|\/server\/log-format/.test(f.url) ||
      f.functionName === 'logRequest',
  ],
  [
    'store (SQLite, group commit, audit chain)',
    (f) => /\/store\/|node_modules\/better-sqlite3\//.test(f.url),
  ],
  [
    'node HTTP, sockets, streams',
    (f) => /^node:(_http_|net$|internal\/streams|stream$|internal\/http)/.test(f.url),
  ],
  [
    'fastify (routing, hooks, reply)',
    (f) =>
      /node_modules\/(fastify|find-my-way|avvio|@fastify|light-my-request|fast-json-stringify|fast-querystring)/.test(
        f.url,
      ),
  ],
  ['other crypto (hash, HMAC, AES, random, key import)', (f) => /^node:internal\/crypto\//.test(f.url)],
  [
    'DER codec, CMS, SCEP messages (src/asn1, pkix, cms, scep, crypto)',
    (f) => /\/(asn1|pkix|cms|scep|crypto)\//.test(f.url),
  ],
  ['RA and CA logic (src/ra, src/ca)', (f) => /\/(ra|ca)\//.test(f.url)],
  ['server glue (src/server)', (f) => /\/server\//.test(f.url)],
];

/** Busy samples by category (see the file comment). */
export function categoryTimes(p: CpuProfile): Map<string, number> {
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const out = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    let cat = leafCategory(n.callFrame);
    for (let f: ProfileNode | undefined = n; cat === undefined && f; f = parent.get(f.id)) {
      cat = FRAME_CATEGORIES.find(([, test]) => test(f!.callFrame))?.[0];
    }
    cat ??= 'other (event loop, promises, timers)';
    if (cat === 'idle' || cat.startsWith('start-up')) continue;
    out.set(cat, (out.get(cat) ?? 0) + hits);
  }
  return out;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '25' },
      categories: { type: 'boolean', default: false },
      per: { type: 'string' },
    },
  });
  const top = Number(values.top);
  for (const f of positionals.flatMap(files)) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
    const byFn = selfTimes(
      p,
      (n) =>
        `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`,
    );
    const byFile = selfTimes(p, (n) => shortUrl(n.callFrame.url));
    const total = [...byFn.values()].reduce((a, b) => a + b, 0);
    const seconds = (p.endTime - p.startTime) / 1e6;
    process.stdout.write(`${f}: ${total} samples over ${seconds.toFixed(1)} s\n`);
    if (values.categories) {
      const cats = categoryTimes(p);
      const busy = [...cats.values()].reduce((a, b) => a + b, 0);
      const perRequest = values.per ? Number(values.per) : undefined;
      process.stdout.write(`\nbusy samples by category (${busy} of ${total})\n`);
      process.stdout.write(
        `| category | share of busy | ${perRequest ? 'ms per request |' : ''}\n|---|---:|${perRequest ? '---:|' : ''}\n`,
      );
      for (const [k, v] of [...cats].sort((a, b) => b[1] - a[1])) {
        const ms = perRequest ? ` ${(((v / total) * seconds * 1000) / perRequest).toFixed(3)} |` : '';
        process.stdout.write(`| ${k} | ${((v / busy) * 100).toFixed(1)}% |${ms}\n`);
      }
      continue;
    }
    print('self time by function', byFn, total, top);
    print('self time by file / package', byFile, total, top);
  }
}

main();
