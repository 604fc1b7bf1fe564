/**
 * `npm run fuzz -- [--count N] [--seed S] [--only I] [--http-every K] [--approval manual]
 * [--key-bits 1024|2048]` (1024 default: RSA cost only, same code path): the
 * big campaign on
 * the production PKIOperation path (test/fuzz/production.ts). Prints progress every 10,000
 * messages, then one summary line (messages, crashes, hangs, HTTP 5xx, answers by
 * status/failInfo, seed, elapsed) and the first findings with their case index and input
 * (base64). Exit code 1 when anything was found.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { campaign, setupTarget, summaryLine } from './production.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    only: { type: 'string' },
    'http-every': { type: 'string', default: '20' },
    approval: { type: 'string', default: 'auto' },
    // 1024 by default: the same code path at a fifth of the RSA cost, so a million messages
    // fit in well under an hour of one core; CI's fuzz test uses 2048-bit keys.
    'key-bits': { type: 'string', default: '1024' },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : randomBytes(4).readUInt32BE(0);
const count = Number(values.count);
const dir = mkdtempSync(join(tmpdir(), 'scepter-fuzz-'));
if (values.approval !== 'auto' && values.approval !== 'manual') throw new Error('--approval auto|manual');
const keyBits = Number(values['key-bits']);
if (keyBits !== 1024 && keyBits !== 2048) throw new Error('--key-bits 1024|2048');
const target = await setupTarget(dir, { approval: values.approval, keyBits });
try {
  console.log(
    `fuzz: seed ${seed}, ${values.only !== undefined ? `case ${values.only}` : `${count} messages`}, RSA-${keyBits} keys`,
  );
  const s = await campaign(target, {
    seed,
    count,
    httpEvery: Number(values['http-every']),
    ...(values.only !== undefined ? { only: Number(values.only) } : {}),
    onProgress: (p) => console.log(`  … ${summaryLine(p)}`),
  });
  s.findings.forEach((f, n) =>
    console.log(
      `finding #${f.index} ${f.kind}/${f.layer}: ${f.verdict} ${f.answer} ${f.detail ?? ''}` +
        (n < 3 || values.only !== undefined ? `\n  input (base64) ${f.input}` : ''),
    ),
  );
  console.log(summaryLine(s));
  process.exitCode = s.crashes + s.hangs + s.http5xx + s.badReplies > 0 ? 1 : 0;
} finally {
  await target.close();
  rmSync(dir, { recursive: true, force: true });
}
