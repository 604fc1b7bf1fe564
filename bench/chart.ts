/**
 * Draws the bench results (`npm run bench -- --json FILE`) as a small SVG bar chart: one panel
 * per JSON file, one bar per server configuration, the RSA bound of one core and of all cores
 * as dashed lines.
 *
 *   node --import tsx bench/chart.ts OUT.svg RESULT.json [RESULT.json …]
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface Result {
  keySize: number;
  db: string;
  cores: number;
  n: number;
  c: number;
  signPerSec: number;
  rows: Array<{ name: string; perSecond: number; failures: number; n: number }>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** One panel: bars scaled to the larger of the fastest row and the all-cores bound. */
function panel(r: Result, y0: number, width: number): { svg: string; height: number } {
  const bound1 = r.signPerSec / 3;
  const boundAll = bound1 * r.cores;
  const max = Math.max(boundAll, ...r.rows.map((x) => x.perSecond)) * 1.05;
  const left = 250;
  const plot = width - left - 70;
  const barH = 22;
  const top = y0 + 30;
  const x = (v: number) => left + (v / max) * plot;
  const parts: string[] = [
    `<text x="10" y="${y0 + 18}" font-weight="bold">RSA-${r.keySize} CA, ${esc(r.db)}, C=${r.c}, n=${r.n} (enrollments/s)</text>`,
  ];
  r.rows.forEach((row, i) => {
    const y = top + i * (barH + 8);
    const color = row.name.startsWith('micromdm') ? '#c0504d' : '#4f81bd';
    const fail = row.failures > 0 ? ` (${((row.failures / row.n) * 100).toFixed(0)}% failed)` : '';
    parts.push(
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(row.name)}</text>`,
      `<rect x="${left}" y="${y}" width="${(x(row.perSecond) - left).toFixed(1)}" height="${barH}" fill="${color}"/>`,
      `<text x="${(x(row.perSecond) + 4).toFixed(1)}" y="${y + 15}">${row.perSecond.toFixed(0)}${fail}</text>`,
    );
  });
  const bottom = top + r.rows.length * (barH + 8);
  for (const [v, label] of [
    [bound1, 'RSA bound, 1 core'],
    [boundAll, `RSA bound, ${r.cores} cores`],
  ] as const) {
    parts.push(
      `<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${top - 6}" y2="${bottom}" stroke="#555" stroke-dasharray="4 3"/>`,
      `<text x="${x(v).toFixed(1)}" y="${bottom + 14}" text-anchor="middle" font-size="11">${label} (${v.toFixed(0)})</text>`,
    );
  }
  return { svg: parts.join('\n'), height: bottom - y0 + 30 };
}

function main(): void {
  const [out, ...inputs] = process.argv.slice(2);
  if (!out || inputs.length === 0) throw new Error('usage: bench/chart.ts OUT.svg RESULT.json…');
  const width = 820;
  let y = 0;
  const panels: string[] = [];
  for (const f of inputs) {
    const p = panel(JSON.parse(readFileSync(f, 'utf8')) as Result, y, width);
    panels.push(p.svg);
    y += p.height;
  }
  writeFileSync(
    out,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="13">\n` +
      `<rect width="100%" height="100%" fill="white"/>\n${panels.join('\n')}\n</svg>\n`,
  );
}

main();
