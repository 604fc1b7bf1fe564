/**
 * The web console (docs/console.md) in a real browser: Debian's Chromium driven by
 * playwright-core against a real server, with the real micromdm `scepclient` as the device and
 * `openssl crl` reading the CRL fetched with GetCRL. The operator logs in, approves the pending
 * request scepclient made (scepclient then finishes with its certificate), revokes that
 * certificate and finds its serial in the CRL; a request without the session or without the
 * CSRF token is refused; the CSP header is there and no request leaves the server's origin.
 *
 * SCEPTER_SCREENSHOTS=1 (`npm run screenshots`) also writes docs/screenshots/*.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ScepClient } from '../../src/client/client.js';
import { ScepFailureError } from '../../src/client/errors.js';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import { openBrowser } from '../helpers/browser.js';
import { ensureConsoleBuilt } from '../helpers/build.js';
import { hasChromium, hasCommand, needPeer } from '../helpers/peers.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { waitFor } from '../helpers/run.js';
import { scepclient } from '../helpers/scepclient.js';
import { TEST_CHALLENGE, tempDir, testServer } from '../helpers/scep-server.js';

const ADMIN_TOKEN = 'console-test-token-0123456789';
const SHOTS =
  process.env.SCEPTER_SCREENSHOTS === '1' ? join(process.cwd(), 'docs', 'screenshots') : undefined;

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** A link of the main navigation. */
function nav(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
}

async function login(page: Page, origin: string): Promise<void> {
  await page.goto(`${origin}/ui/`);
  await page.getByLabel('Admin token').fill('wrong-token-wrong-token');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'wrong admin token' }).waitFor();
  await shot(page, 'login');
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}

test(
  'console in Chromium: log in, approve scepclient’s request, revoke, GetCRL lists the serial; CSP; nothing offsite',
  { timeout: 240_000 },
  async (t) => {
    if (!needPeer(t, hasChromium(), 'chromium (/usr/bin/chromium)')) return;
    if (!needPeer(t, hasCommand('scepclient'), 'micromdm scepclient')) return;
    if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
    const s = await testServer(t, {
      enrollment: { allowSingleDes: true },
      lifecycle: { approval: { mode: 'challenge-or-manual' } },
      challenges: { adminToken: ADMIN_TOKEN },
      console: { dir: ensureConsoleBuilt() },
    });
    const store = s.enrollment!.store;
    const ca = s.dataDir!.loaded.caCert;

    // A few certificates issued with the challenge, for the dashboard and the search.
    const client = new ScepClient({ url: s.url });
    for (let i = 0; i < 3; i++)
      await client.enroll({
        subject: `CN=printer-${i},O=Example`,
        sans: `dns:printer-${i}.example.net`,
        challenge: TEST_CHALLENGE,
        key: pooledRsaKey(10 + i),
      });

    const { page, offsite } = await openBrowser(t, s.origin);
    const first = await page.goto(`${s.origin}/ui/`);
    const csp = first?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline script');
    assert.match(csp, /style-src 'self'(;|$)/, 'no inline style');
    await login(page, s.origin);
    await page.getByTestId('pending-count').waitFor();
    await shot(page, 'dashboard');

    // scepclient asks without a challenge: it waits PENDING and polls.
    const dir = tempDir(t);
    const device = scepclient(s.url, dir, 'kiosk-7', { hangLimitMs: 150_000 });
    const tx = await waitFor(async () => {
      const p = await store.listTransactions({ state: 'pending' });
      return p.items.find((x) => x.subject?.includes('kiosk-7'));
    }, 60_000);

    await nav(page, 'Pending requests').click();
    const row = page.locator('#pending-table tbody tr').filter({ hasText: 'kiosk-7' });
    await row.waitFor();
    const rowText = await row.innerText();
    assert.match(rowText, /O=scep-client/, 'the whole subject of the CSR');
    assert.match(rowText, /rsa 2048/i, 'key type and size');
    assert.match(rowText, /absent/, 'no challenge in the CSR');
    assert.match(rowText, /127\.0\.0\.1/, 'the source address');
    assert.ok(rowText.includes(tx.transactionId));
    await shot(page, 'pending');
    await row.getByRole('button', { name: /^Approve/ }).click();
    await page.getByRole('status').filter({ hasText: 'kiosk-7' }).filter({ hasText: 'approved' }).waitFor();

    // scepclient's next poll gets the certificate.
    const done = await device;
    assert.equal(done.code, 0, done.output);
    const issued = parseCertificate(fromPem(readFileSync(join(dir, 'client.pem'), 'utf8'))[0]!);
    assert.ok(issued.issuerRaw.equals(ca.subjectRaw));
    const serial = issued.serialHex;

    // Find it, open it, revoke it.
    await nav(page, 'Certificates').click();
    await page.getByLabel('Common name contains').fill('kiosk-7');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('status').filter({ hasText: '1 certificate found' }).waitFor();
    await shot(page, 'certificates');
    await page
      .locator('#certs-table')
      .getByRole('link', { name: /kiosk-7/ })
      .click();
    await page.getByRole('heading', { name: `Certificate ${serial}` }).waitFor();
    assert.equal(await page.getByTestId('cert-status').innerText(), 'valid');
    const pem = await page.getByLabel('Certificate PEM').innerText();
    assert.ok(fromPem(pem)[0]!.equals(issued.der), 'the PEM shown is the certificate scepclient got');
    assert.ok(fromPem(await page.getByLabel('Chain certificate 1').innerText())[0]!.equals(ca.der));
    await page.getByLabel('Reason').selectOption('keyCompromise');
    await shot(page, 'certificate');
    await page.getByRole('button', { name: 'Revoke certificate' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /Revoked \(keyCompromise\); CRL number \d+ published/ })
      .waitFor();
    // The detail is fetched again after the revocation: wait for it rather than read it once.
    await page
      .getByTestId('cert-status')
      .filter({ hasText: /^revoked \(keyCompromise\)/ })
      .waitFor();

    // GetCRL (scepter's client, signed with a fixture key) lists the serial: read by openssl.
    const signerKey = pooledRsaKey(20);
    const signer = makeSelfSigned({ subject: 'CN=crl reader', key: signerKey, days: 1 });
    const { crl } = await client.getCrl(issued, { signer: { cert: signer.cert, key: signerKey } });
    const text = spawnSync('openssl', ['crl', '-inform', 'DER', '-noout', '-text'], {
      input: crl,
      encoding: 'utf8',
    });
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`Serial Number: ${serial.toUpperCase()}\\b`));
    assert.match(text.stdout, /Key Compromise/);

    // A refused enrollment (an RSA key below the 2048-bit minimum) with its exact reason.
    const refused = await client
      .enroll({ subject: 'CN=old-phone,O=Example', challenge: TEST_CHALLENGE, key: pooledRsaKey(0, 1024) })
      .then(
        () => assert.fail('a 1024-bit key was accepted'),
        (e: unknown) => {
          assert.ok(e instanceof ScepFailureError, String(e));
          return e;
        },
      );
    await nav(page, 'Failures').click();
    const failure = page.locator('#failures-table tbody tr').filter({ hasText: refused.transactionId });
    await failure.waitFor();
    const failureText = await failure.innerText();
    assert.match(failureText, /1024/, 'the exact reason names the key size');
    assert.match(failureText, /127\.0\.0\.1/, 'the source');
    await shot(page, 'failures');

    // The other pages render.
    await nav(page, 'CA status').click();
    await page.getByRole('heading', { name: 'Rollover' }).waitFor();
    await shot(page, 'ca-status');
    await nav(page, 'Challenges').click();
    await page.getByRole('button', { name: 'Mint challenge' }).click();
    const minted = await page.getByLabel('Challenge', { exact: true }).inputValue();
    assert.match(minted, /^[A-Za-z0-9]{8,}$/);
    await shot(page, 'challenges');
    // The minted challenge enrolls a device once.
    const r = await client.enroll({
      subject: 'CN=one-time,O=Example',
      challenge: minted,
      key: pooledRsaKey(14),
    });
    assert.equal(r.status, 'issued');

    // Within the page: a state change without the CSRF token is refused and changes nothing.
    const noCsrf = await page.evaluate(async (id) => {
      const a = await fetch(`/admin/pending/${encodeURIComponent(id)}/reject`, {
        method: 'POST',
        body: '{}',
      });
      return a.status;
    }, tx.transactionId);
    assert.equal(noCsrf, 401);

    // Phone-sized screen: the pending table becomes cards, the navigation wraps.
    await page.setViewportSize({ width: 390, height: 844 });
    await nav(page, 'Dashboard').click();
    await page.getByTestId('pending-count').waitFor();
    await shot(page, 'dashboard-phone');

    // Log out: the session cookie is gone and the admin API refuses the browser.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Admin token').waitFor();
    const after = await page.evaluate(async () => (await fetch('/admin/dashboard')).status);
    assert.equal(after, 401);

    assert.deepEqual(offsite(), [], 'no request left the server');
  },
);
