/**
 * Fuzzes the production PKIOperation path (see test/fuzz/production.ts): seeded mutations of
 * valid PKCSReq/RenewalReq/CertPoll messages — outer DER, signed attributes, envelope, CSR,
 * CertPoll content — through `service.pkiOperation`, one in 20 through the fastify app.
 * No throw, no 5xx, no hang, every answer a 4xx text or a CertRep that verifies.
 *
 * CI runs SCEPTER_FUZZ_COUNT (default 2,000, about 5 s of CPU) cases; reproduce a failure with
 * SCEPTER_FUZZ_SEED=<seed> (printed), or replay one case with
 * `npm run fuzz -- --seed <seed> --only <index>`. The big campaign is `npm run fuzz`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { campaign, KNOWN_BUGS, setupTarget, summaryLine } from './production.js';
import { tempDir } from '../helpers/scep-server.js';

test('production PKIOperation path: mutated requests never crash, hang, 5xx or get an unverifiable answer', async (t) => {
  const seed = process.env.SCEPTER_FUZZ_SEED
    ? Number(process.env.SCEPTER_FUZZ_SEED)
    : randomBytes(4).readUInt32BE(0);
  const count = Number(process.env.SCEPTER_FUZZ_COUNT ?? 2_000);
  t.diagnostic(`fuzz seed ${seed} (reproduce with SCEPTER_FUZZ_SEED=${seed}), ${count} messages`);
  const target = await setupTarget(tempDir(t, 'scepter-fuzz-'));
  t.after(() => target.close());
  const s = await campaign(target, { seed, count });
  t.diagnostic(summaryLine(s));
  for (const [id, n] of s.known)
    t.diagnostic(`known bug ${id} hit ${n} times: ${KNOWN_BUGS.find((b) => b.id === id)?.what ?? ''}`);
  for (const f of s.findings)
    t.diagnostic(`finding #${f.index} ${f.kind}/${f.layer}: ${f.verdict} ${f.answer} ${f.detail ?? ''}`);
  assert.deepEqual(
    s.findings.map((f) => `#${f.index} ${f.kind}/${f.layer} ${f.verdict} ${f.answer} ${f.detail ?? ''}`),
    [],
    `seed ${seed}`,
  );
  // The mutations reach every layer and both kinds of answer.
  for (const layer of ['outer', 'attrs', 'envelope', 'csr', 'content'])
    assert.ok(
      [...s.layers.keys()].some((k) => k.endsWith(`/${layer}`)),
      `layer ${layer} exercised`,
    );
  const answers = [...s.answers.keys()];
  assert.ok(
    answers.some((a) => a.startsWith('4')),
    'some requests are refused with a 4xx',
  );
  assert.ok(
    answers.some((a) => a.startsWith('200 FAILURE')),
    'some requests get a FAILURE CertRep',
  );
  assert.ok(answers.includes('200 SUCCESS'), 'valid and benign mutations still enroll');
  assert.ok(s.viaHttp > 0);
});

test('production PKIOperation path with manual approval: PENDING answers and CertPoll of pending requests', async (t) => {
  const seed = process.env.SCEPTER_FUZZ_SEED
    ? Number(process.env.SCEPTER_FUZZ_SEED)
    : randomBytes(4).readUInt32BE(0);
  const count = Math.ceil(Number(process.env.SCEPTER_FUZZ_COUNT ?? 2_000) / 4);
  t.diagnostic(
    `fuzz seed ${seed} (reproduce with SCEPTER_FUZZ_SEED=${seed}), ${count} messages, manual approval`,
  );
  const target = await setupTarget(tempDir(t, 'scepter-fuzz-manual-'), { approval: 'manual' });
  t.after(() => target.close());
  const s = await campaign(target, { seed, count });
  t.diagnostic(summaryLine(s));
  assert.deepEqual(
    s.findings.map((f) => `#${f.index} ${f.kind}/${f.layer} ${f.verdict} ${f.answer} ${f.detail ?? ''}`),
    [],
    `seed ${seed}`,
  );
  assert.ok(s.answers.has('200 PENDING'), 'mutated but valid PKCSReqs wait for approval');
});
