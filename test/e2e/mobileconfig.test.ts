/**
 * `scepter mobileconfig` (issue #12), run as a subprocess against scepter's server: the profile
 * is a well-formed XML plist with the keys Apple documents for a Configuration profile, a
 * com.apple.security.root payload holding the CA certificate and a com.apple.security.scep
 * payload; `--one-time` mints a challenge that enrolls exactly once; client text is escaped.
 *
 * No plist parser is in node_modules, so the test parses the XML with the strict parser below
 * (only the plist DTD's elements, only XML's five entities, duplicate keys and stray text
 * refused) and, when python3 is installed, cross-checks with Python's plistlib.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { fromPem } from '../../src/pkix/certificate.js';
import { ScepClient, ScepFailureError, type IssuedResult } from '../../src/client/index.js';
import { buildPlist, PlistError } from '../../src/cli/plist.js';
import { scepterCli } from '../helpers/cli.js';
import { hasCommand } from '../helpers/peers.js';
import { seeded } from '../helpers/scep-server.js';

const dirs: string[] = [];
const running: RunningServer[] = [];
const stores: Store[] = [];
after(async () => {
  for (const s of running) await s.close();
  for (const s of stores) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Plist = string | number | boolean | Buffer | Plist[] | { [k: string]: Plist };

/** A strict parser for the XML plists buildPlist writes (Apple PropertyList-1.0 DTD). */
function parsePlist(xml: string): Plist {
  const head =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
    '<plist version="1.0">';
  assert.ok(xml.startsWith(head), 'XML declaration, plist DOCTYPE and <plist version="1.0">');
  let i = head.length;
  const ws = () => {
    while (i < xml.length && /[ \t\r\n]/.test(xml[i]!)) i++;
  };
  const eat = (s: string) => {
    if (!xml.startsWith(s, i)) throw new Error(`expected ${s} at ${i}: ${xml.slice(i, i + 40)}`);
    i += s.length;
  };
  const text = (close: string): string => {
    const end = xml.indexOf(close, i);
    if (end < 0) throw new Error(`unterminated, expected ${close}`);
    const raw = xml.slice(i, end);
    i = end + close.length;
    if (raw.includes('<') || raw.includes('>')) throw new Error(`markup inside text: ${raw}`);
    return raw.replace(/&[^;]*;?/g, (m) => {
      const e = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'" }[m];
      if (e === undefined) throw new Error(`bad entity ${m}`);
      return e;
    });
  };
  const value = (): Plist => {
    ws();
    if (xml.startsWith('<dict/>', i)) return ((i += 7), {});
    if (xml.startsWith('<array/>', i)) return ((i += 8), []);
    if (xml.startsWith('<true/>', i)) return ((i += 7), true);
    if (xml.startsWith('<false/>', i)) return ((i += 8), false);
    if (xml.startsWith('<string>', i)) return ((i += 8), text('</string>'));
    if (xml.startsWith('<integer>', i)) {
      i += 9;
      const t = text('</integer>');
      if (!/^-?\d+$/.test(t)) throw new Error(`bad integer ${t}`);
      return Number(t);
    }
    if (xml.startsWith('<data>', i)) {
      i += 6;
      const t = text('</data>').replace(/[ \t\r\n]/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) throw new Error('bad base64');
      return Buffer.from(t, 'base64');
    }
    if (xml.startsWith('<array>', i)) {
      i += 7;
      const out: Plist[] = [];
      for (ws(); !xml.startsWith('</array>', i); ws()) out.push(value());
      i += 8;
      return out;
    }
    if (xml.startsWith('<dict>', i)) {
      i += 6;
      const out: { [k: string]: Plist } = {};
      for (ws(); !xml.startsWith('</dict>', i); ws()) {
        eat('<key>');
        const k = text('</key>');
        if (Object.hasOwn(out, k)) throw new Error(`duplicate key ${k}`);
        out[k] = value();
      }
      i += 7;
      return out;
    }
    throw new Error(`unexpected at ${i}: ${xml.slice(i, i + 40)}`);
  };
  const root = value();
  ws();
  eat('</plist>');
  ws();
  assert.equal(i, xml.length, 'nothing after </plist>');
  return root;
}

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'scepter-mobileconfig-'));
  dirs.push(d);
  return d;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return scepterCli(args, { env });
}

const UUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

function dict(v: Plist | undefined): { [k: string]: Plist } {
  assert.ok(v !== undefined && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v), 'a dict');
  return v;
}

test('mobileconfig --one-time: an Apple profile with CA and SCEP payloads whose challenge enrolls once', async () => {
  const dir = tmp();
  const data = join(dir, 'data');
  const dbPath = join(dir, 'store.db');
  const store = await openStore(`sqlite:${dbPath}`);
  stores.push(store);
  const srv = await startServer(
    seeded({ dataDir: data, challenge: 'static-pw', keySize: 2048, store, logLevel: 'silent' }),
  );
  running.push(srv);
  const caDer = fromPem(readFileSync(join(data, 'ca', 'ca.crt'), 'latin1'))[0]!;

  const subject = 'CN=iphone-7,O=Acme & Co <R&D>';
  const args = ['mobileconfig', '--url', srv.url, '--data', data, '--db', `sqlite:${dbPath}`, '--one-time'];
  const r = await cli([...args, '--subject', subject, '--organization', 'Acme "R&D" <x>']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /one-time challenge in this profile valid until/);
  assert.ok(r.stdout.includes('Acme &amp; Co &lt;R&amp;D&gt;'), 'text is XML-escaped');

  const top = dict(parsePlist(r.stdout));
  assert.equal(top.PayloadType, 'Configuration');
  assert.equal(top.PayloadVersion, 1);
  assert.match(String(top.PayloadUUID), UUID);
  assert.match(String(top.PayloadIdentifier), /^scepter\.1\.0\.0\.127$/);
  assert.equal(top.PayloadOrganization, 'Acme "R&D" <x>');
  const content = top.PayloadContent as Plist[];
  assert.equal(content.length, 2);
  const root = dict(content[0]);
  assert.equal(root.PayloadType, 'com.apple.security.root');
  assert.equal(root.PayloadVersion, 1);
  assert.ok(Buffer.isBuffer(root.PayloadContent) && root.PayloadContent.equals(caDer), 'the CA certificate');
  const scepPayload = dict(content[1]);
  assert.equal(scepPayload.PayloadType, 'com.apple.security.scep');
  assert.equal(scepPayload.PayloadVersion, 1);
  const uuids = [top.PayloadUUID, root.PayloadUUID, scepPayload.PayloadUUID];
  assert.equal(new Set(uuids).size, 3, 'every payload has its own UUID');
  for (const u of uuids) assert.match(String(u), UUID);
  const scep = dict(scepPayload.PayloadContent);
  assert.equal(scep.URL, srv.url);
  assert.equal(scep.Name, '127.0.0.1');
  // Apple lists the RDNs in encoded order, most significant first (the DN text is RFC 4514: last first).
  assert.deepEqual(scep.Subject, [[['O', 'Acme & Co <R&D>']], [['CN', 'iphone-7']]]);
  assert.equal(scep.Keysize, 2048);
  assert.equal(scep['Key Type'], 'RSA');
  assert.equal(scep['Key Usage'], 5);
  assert.equal(scep.Retries, 3);
  assert.equal(scep.RetryDelay, 10);
  const fp = scep.CAFingerprint;
  assert.ok(Buffer.isBuffer(fp) && fp.equals(createHash('sha256').update(caDer).digest()));
  const challenge = scep.Challenge;
  assert.ok(typeof challenge === 'string' && challenge.length >= 16 && challenge !== 'static-pw');

  // A second profile gets another challenge.
  const r2 = await cli([...args, '--fingerprint-digest', 'sha1', '--key-usage', 'signing']);
  assert.equal(r2.status, 0, r2.stderr);
  const scep2 = dict(dict((dict(parsePlist(r2.stdout)).PayloadContent as Plist[])[1]).PayloadContent);
  assert.notEqual(scep2.Challenge, challenge);
  assert.equal(scep2['Key Usage'], 1);
  assert.ok(
    Buffer.isBuffer(scep2.CAFingerprint) &&
      scep2.CAFingerprint.equals(createHash('sha1').update(caDer).digest()),
  );
  assert.deepEqual(scep2.Subject, [[['CN', 'device']]]);

  // The minted challenge is real and one-time: it enrolls once, then is refused.
  const client = new ScepClient({ url: srv.url });
  const issued = (await client.enroll({ subject: 'CN=iphone-7', challenge })) as IssuedResult;
  assert.equal(issued.status, 'issued');
  await assert.rejects(client.enroll({ subject: 'CN=other', challenge }), ScepFailureError);

  // --out writes it 0600 (the profile holds the challenge).
  const out = join(dir, 'device.mobileconfig');
  const r3 = await cli([...args, '--out', out]);
  assert.equal(r3.status, 0, r3.stderr);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  dict(parsePlist(readFileSync(out, 'utf8')));

  if (hasCommand('python3')) {
    const py = spawnSync(
      'python3',
      [
        '-c',
        'import plistlib,sys,json,base64\n' +
          'd=plistlib.loads(sys.stdin.buffer.read())\n' +
          's=d["PayloadContent"][1]["PayloadContent"]\n' +
          'print(json.dumps({"t":d["PayloadType"],"subj":s["Subject"],"fp":base64.b64encode(s["CAFingerprint"]).decode(),"ku":s["Key Usage"]}))',
      ],
      { input: r.stdout, encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    assert.deepEqual(JSON.parse(py.stdout), {
      t: 'Configuration',
      subj: [[['O', 'Acme & Co <R&D>']], [['CN', 'iphone-7']]],
      fp: createHash('sha256').update(caDer).digest('base64'),
      ku: 5,
    });
  }
});

test('mobileconfig without --data: the CA certificate from GetCACert; usage errors', async () => {
  const dir = tmp();
  const store = await openStore(`sqlite:${join(dir, 'store.db')}`);
  stores.push(store);
  const srv = await startServer(
    seeded({ dataDir: join(dir, 'data'), challenge: 'pw', keySize: 2048, store, logLevel: 'silent' }),
  );
  running.push(srv);
  const caDer = fromPem(readFileSync(join(dir, 'data', 'ca', 'ca.crt'), 'latin1'))[0]!;
  const r = await cli(['mobileconfig', '--url', srv.url], { SCEPTER_CHALLENGE: 'pw' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /unpinned; its fingerprint is sha256:/);
  const top = dict(parsePlist(r.stdout));
  const content = top.PayloadContent as Plist[];
  assert.ok((dict(content[0]).PayloadContent as Buffer).equals(caDer));
  assert.equal(dict(dict(content[1]).PayloadContent).Challenge, 'pw');

  const noData = await cli(['mobileconfig', '--url', srv.url, '--one-time']);
  assert.equal(noData.status, 2);
  assert.match(noData.stderr, /--one-time needs --data/);
  const both = await cli(['mobileconfig', '--url', srv.url, '--one-time', '--challenge', 'x']);
  assert.equal(both.status, 2);
});

test('plist writer: escapes text, refuses what XML cannot carry', () => {
  const xml = buildPlist({ a: 'x<y>&"\'', b: [1, true, Buffer.from('hi')], c: {} });
  assert.deepEqual(parsePlist(xml), { a: 'x<y>&"\'', b: [1, true, Buffer.from('hi')], c: {} });
  assert.throws(() => buildPlist({ a: 'bell\u0007' }), PlistError);
  assert.throws(() => buildPlist({ a: 1.5 }), PlistError);
});
