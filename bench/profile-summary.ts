/**
 * Summarises V8 `.cpuprofile` files (from `npm run bench -- --profile DIR`, i.e. node
 * --cpu-prof): self time per function and per source file, as shares of all samples.
 *
 *   node --import tsx bench/profile-summary.ts DIR_OR_FILE [--top 25]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
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

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
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
    process.stdout.write(`${f}: ${total} samples over ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s\n`);
    print('self time by function', byFn, total, top);
    print('self time by file / package', byFile, total, top);
  }
}

main();
