/**
 * `scepter serve` OCSP options (src/cli/commands/serve.ts): contradictory or out-of-range
 * values are refused with a usage error before anything starts; `startServer` refuses bad OCSP
 * settings and closes what it had opened (the worker pool, the store); the OCSP URL goes into
 * issued certificates with --public-url unless OCSP is off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/cli/command.js';
import { serveCommand } from '../../src/cli/commands/serve.js';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import type { EnrollmentConfig } from '../../src/ra/config.js';
import { withCrlDistributionPoint } from '../../src/server/lifecycle-setup.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { testServer } from '../helpers/scep-server.js';

test('serve: bad OCSP options are usage errors', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--ocsp-signer', 'hsm'], /--ocsp-signer must be ca or delegated/],
    [['--no-ocsp', '--ocsp-validity', '1h'], /--no-ocsp and --ocsp-validity/],
    [['--ocsp-validity', '10s'], /ocsp-validity/],
    [['--ocsp-validity', '8d'], /ocsp-validity/],
    [['--ocsp-signer-validity', '2d'], /needs --ocsp-signer delegated/],
    [
      ['--ocsp-signer', 'delegated', '--ocsp-validity', '1d', '--ocsp-signer-validity', '3d'],
      /ocsp-signer-validity/,
    ],
  ];
  for (const [args, want] of cases) {
    await assert.rejects(
      serveCommand.run(['--data', '/nonexistent/scepter-ocsp-options', ...args]),
      (e: unknown) => e instanceof UsageError && want.test(e.message),
      args.join(' '),
    );
  }
});

test('startServer: bad OCSP settings fail the start, with nothing left open', async (t) => {
  await assert.rejects(
    testServer(t, { workers: 2, lifecycle: { ocsp: { validitySeconds: 10 } } }),
    /OCSP response validity must be between 60 seconds and 7 days/,
  );
});

const NO_CONFIG: Omit<EnrollmentConfig, 'challenges'> = {};

test('issued certificates point to URL/ocsp only while OCSP is on', () => {
  const key = pooledRsaKey(24, 2048);
  const c = makeSelfSigned({ subject: 'CN=AIA CA', key, ca: true, days: 30 });
  const ca = new CertificateAuthority({ cert: c.cert, key, chain: [] });
  const on = withCrlDistributionPoint(NO_CONFIG, { publicUrl: 'http://ca.example:8080/' }, ca);
  assert.equal(on.profile?.ocspUrl, 'http://ca.example:8080/ocsp');
  const off = withCrlDistributionPoint(NO_CONFIG, { publicUrl: 'http://ca.example:8080', ocsp: false }, ca);
  assert.equal(off.profile?.ocspUrl, undefined);
  assert.match(off.profile?.crlDistributionPoint ?? '', /^http:\/\/ca\.example:8080\/crl\//);
});
