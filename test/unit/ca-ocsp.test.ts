/**
 * The OCSP responder (src/ca/ocsp-responder.ts, src/ca/ocsp-signer.ts, src/pkix/ocsp.ts) on an
 * in-memory store and fixture CAs: good / revoked / unknown / unauthorized answers whose
 * signatures verify under the CA (or the delegated responder) key; thisUpdate/nextUpdate; the
 * response cache (same bytes again, invalidated by a revocation in the store and after half of
 * the validity); retired CAs; request bounds (certificate count, nonce length, critical
 * extensions, version, hash lengths, MD5) and random mutations of a valid request, which only
 * ever give malformedRequest, unauthorized or an answer — never an exception. Responses are
 * read with our DER reader; openssl reads them in test/interop/server-ocsp-openssl.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import * as r from '../../src/asn1/reader.js';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { CaSet } from '../../src/ca/authorities.js';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import { OcspResponder, type OcspResponderOptions } from '../../src/ca/ocsp-responder.js';
import { DEFAULT_CLIENT_PROFILE } from '../../src/ca/profile.js';
import { randomSerial } from '../../src/ca/serial.js';
import { parseCertificate, type Certificate } from '../../src/pkix/certificate.js';
import { parseExtKeyUsage, parseExtensionsTlv } from '../../src/pkix/extensions.js';
import { MAX_OCSP_CERT_IDS } from '../../src/pkix/ocsp.js';
import { openStore, type Store } from '../../src/store/index.js';
import { makeSelfSigned, nameDer, pooledRsaKey } from '../helpers/pki.js';

function makeCa(n: number, cn: string): CertificateAuthority {
  const key = pooledRsaKey(n, 2048);
  const c = makeSelfSigned({ subject: `CN=${cn},O=OCSP test`, key, ca: true, days: 3650 });
  return new CertificateAuthority({ cert: c.cert, key, chain: [] });
}

const CA = makeCa(20, 'OCSP CA');
const OLD_CA = makeCa(21, 'Retired OCSP CA');
const FOREIGN = makeCa(22, 'Foreign CA');

async function issue(store: Store, ca: CertificateAuthority, cn: string): Promise<Certificate> {
  const spki = createPublicKey(pooledRsaKey(3, 2048)).export({ type: 'spki', format: 'der' });
  const now = new Date();
  const cert = parseCertificate(
    ca.issue({
      subjectRaw: nameDer(`CN=${cn}`),
      spki,
      serial: randomSerial(),
      notBefore: now,
      notAfter: new Date(now.getTime() + 86_400_000),
      profile: DEFAULT_CLIENT_PROFILE,
    }),
  );
  await store.insertCertificate({
    serial: cert.serialHex,
    issuer: ca.cert.fingerprint,
    subject: `CN=${cn}`,
    commonName: cn,
    sans: [],
    der: cert.der,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    keyHash: 'ab',
    transactionId: null,
  });
  return cert;
}

function spkiBits(spki: Buffer): Buffer {
  const c = new r.Cursor(r.parse(spki));
  c.next();
  return r.bitString(c.next()).bytes;
}

interface IdSpec {
  issuer: CertificateAuthority;
  serial: Buffer;
  hash?: string;
  hashOid?: string;
  nameHash?: Buffer;
}

function certId(s: IdSpec): der.Der {
  const h = s.hash ?? 'sha1';
  return der.seq(
    der.algorithm(s.hashOid ?? (OID as Record<string, string>)[h]!, der.nul()),
    der.octetString(s.nameHash ?? createHash(h).update(s.issuer.cert.subjectRaw).digest()),
    der.octetString(createHash(h).update(spkiBits(s.issuer.cert.spki)).digest()),
    der.int(s.serial),
  );
}

function request(
  ids: IdSpec[],
  o: { nonce?: Buffer; exts?: der.Der[]; version?: number; singleExts?: der.Der[] } = {},
): Buffer {
  const exts: der.Der[] = [...(o.exts ?? [])];
  if (o.nonce)
    exts.push(der.seq(der.oid(OID.ocspNonce), der.octetString(der.encode(der.octetString(o.nonce)))));
  const tbs: der.Der[] = [];
  if (o.version !== undefined) tbs.push(der.explicit(0, der.int(o.version)));
  tbs.push(
    der.seq(
      ...ids.map((i) =>
        o.singleExts ? der.seq(certId(i), der.explicit(0, der.seq(...o.singleExts))) : der.seq(certId(i)),
      ),
    ),
  );
  if (exts.length) tbs.push(der.explicit(2, der.seq(...exts)));
  return der.encode(der.seq(der.seq(...tbs)));
}

interface Single {
  status: 'good' | 'revoked' | 'unknown';
  revokedAt?: Date;
  reason?: number;
  thisUpdate: Date;
  nextUpdate?: Date;
  serial: string;
}

interface Parsed {
  status: number;
  responses: Single[];
  producedAt?: Date;
  nonce?: Buffer;
  keyHash?: Buffer;
  certs: Certificate[];
  verifiedBy(cert: Certificate): boolean;
}

/** Reads an OCSPResponse with our DER reader. */
function parseResponse(body: Buffer): Parsed {
  const top = new r.Cursor(r.parse(body));
  const status = r.value(top.next())[0]!;
  const out: Parsed = { status, responses: [], certs: [], verifiedBy: () => false };
  const rb = top.optional(0xa0);
  if (!rb) return out;
  const rbc = new r.Cursor(new r.Cursor(rb).next());
  assert.equal(r.oid(rbc.next()), OID.ocspBasic);
  const basic = new r.Cursor(r.parse(r.value(rbc.next())));
  const tbsT = basic.next();
  const alg = new r.Cursor(basic.next());
  const algOid = r.oid(alg.next());
  const sig = r.bitString(basic.next()).bytes;
  const certsT = basic.optional(0xa0);
  if (certsT) out.certs = r.children(new r.Cursor(certsT).next()).map((c) => parseCertificate(r.raw(c)));
  const tbs = new r.Cursor(tbsT);
  const rid = tbs.next();
  assert.equal(rid.tag, 0xa2, 'ResponderID byKey');
  out.keyHash = r.value(new r.Cursor(rid).next());
  out.producedAt = r.time(tbs.next());
  for (const s of r.children(tbs.next())) {
    const c = new r.Cursor(s);
    const id = new r.Cursor(c.next());
    id.next();
    id.next();
    id.next();
    const serial = r.intBytes(id.next()).toString('hex');
    const st = c.next();
    const one: Single = { status: 'good', thisUpdate: new Date(0), serial };
    if (st.tag === 0x80) one.status = 'good';
    else if (st.tag === 0x82) one.status = 'unknown';
    else {
      one.status = 'revoked';
      const rc = new r.Cursor(st);
      one.revokedAt = r.time(rc.next());
      const reason = rc.optional(0xa0);
      if (reason) one.reason = r.value(new r.Cursor(reason).next())[0]!;
    }
    one.thisUpdate = r.time(c.next());
    const nu = c.optional(0xa0);
    if (nu) one.nextUpdate = r.time(new r.Cursor(nu).next());
    out.responses.push(one);
  }
  const exts = tbs.optional(0xa1);
  if (exts)
    for (const e of parseExtensionsTlv(new r.Cursor(exts).next()))
      if (e.oid === OID.ocspNonce) out.nonce = e.value;
  const data = r.raw(tbsT);
  const digest = algOid === OID.sha256WithRSAEncryption || algOid === OID.ecdsaWithSHA256 ? 'sha256' : 'none';
  out.verifiedBy = (cert) => verify(digest, data, cert.publicKey(), sig);
  return out;
}

/** The tests' clock starts now (whole seconds), inside the fixture CAs' validity. */
const START = Math.floor(Date.now() / 1000) * 1000;
const at = (seconds: number) => new Date(START + seconds * 1000).toISOString();

async function setup(o: Partial<OcspResponderOptions> = {}) {
  const store = await openStore(':memory:');
  let clock = START;
  const now = () => new Date(clock);
  const responder = new OcspResponder({ store, cas: new CaSet(CA, [OLD_CA]), now, ...o });
  return {
    store,
    responder,
    advance: (s: number) => (clock += s * 1000),
    ask: async (der_: Buffer) => parseResponse((await responder.respond(der_)).body),
  };
}

test('good, revoked (time and reason) and unknown, signed by the CA; thisUpdate/nextUpdate', async (t) => {
  const { store, ask, responder } = await setup({ validitySeconds: 1800 });
  t.after(() => store.close());
  const good = await issue(store, CA, 'good');
  const bad = await issue(store, CA, 'bad');
  await store.revoke(bad.serialHex, 1, new Date('2026-05-01T10:00:00Z'));

  const g = await ask(request([{ issuer: CA, serial: good.serial }]));
  assert.equal(g.status, 0);
  assert.ok(g.verifiedBy(CA.cert));
  assert.deepEqual(g.keyHash, createHash('sha1').update(spkiBits(CA.cert.spki)).digest());
  assert.equal(g.certs.length, 0);
  assert.equal(g.responses[0]!.status, 'good');
  assert.equal(g.responses[0]!.thisUpdate.toISOString(), at(0));
  assert.equal(g.responses[0]!.nextUpdate!.toISOString(), at(1800));

  const b = await ask(request([{ issuer: CA, serial: bad.serial, hash: 'sha256' }]));
  assert.equal(b.responses[0]!.status, 'revoked');
  assert.equal(b.responses[0]!.revokedAt!.toISOString(), '2026-05-01T10:00:00.000Z');
  assert.equal(b.responses[0]!.reason, 1);
  assert.ok(b.responses[0]!.nextUpdate);

  // Never issued; and issued by the retired CA but asked about under the current one.
  const old = await issue(store, OLD_CA, 'old');
  const u = await ask(request([{ issuer: CA, serial: Buffer.from('0badc0ffee', 'hex') }]));
  assert.equal(u.responses[0]!.status, 'unknown');
  assert.equal(u.responses[0]!.nextUpdate, undefined);
  const wrongCa = await ask(request([{ issuer: CA, serial: old.serial }]));
  assert.equal(wrongCa.responses[0]!.status, 'unknown');

  // The retired CA answers for its own certificates, with its own key.
  const o = await ask(request([{ issuer: OLD_CA, serial: old.serial, hash: 'sha384' }]));
  assert.equal(o.responses[0]!.status, 'good');
  assert.ok(o.verifiedBy(OLD_CA.cert));
  assert.ok(!o.verifiedBy(CA.cert));

  // Several certificates: each answered; another issuer in the same request is unknown.
  const m = await ask(
    request([
      { issuer: CA, serial: good.serial },
      { issuer: CA, serial: bad.serial },
      { issuer: OLD_CA, serial: old.serial },
    ]),
  );
  assert.deepEqual(
    m.responses.map((x) => x.status),
    ['good', 'revoked', 'unknown'],
  );
  const a = await responder.respond(request([{ issuer: CA, serial: good.serial }]));
  assert.equal(a.certStatus, 'good');
  assert.equal(a.serial, good.serialHex);
  assert.ok(a.cacheable);
});

test('a foreign issuer is unauthorized (unsigned answer)', async (t) => {
  const { store, responder } = await setup();
  t.after(() => store.close());
  const a = await responder.respond(request([{ issuer: FOREIGN, serial: Buffer.from([1]) }]));
  assert.equal(a.status, 6);
  assert.deepEqual(a.body, Buffer.from('30030a0106', 'hex'));
  // The right key hash with another name hash is not ours either.
  const b = await responder.respond(
    request([{ issuer: CA, serial: Buffer.from([1]), nameHash: createHash('sha1').update('x').digest() }]),
  );
  assert.equal(b.status, 6);
});

test('cache: the same signed response until half of the validity or a revocation; nonces are echoed and never cached', async (t) => {
  const { store, ask, advance } = await setup({ validitySeconds: 3600 });
  t.after(() => store.close());
  const cert = await issue(store, CA, 'cached');
  const req = request([{ issuer: CA, serial: cert.serial }]);
  const first = await ask(req);
  advance(60);
  const second = await ask(req);
  assert.equal(second.producedAt!.getTime(), first.producedAt!.getTime(), 'handed out again from the cache');
  advance(1800);
  const third = await ask(req);
  assert.ok(third.producedAt!.getTime() > first.producedAt!.getTime(), 'renewed after half of the validity');
  assert.equal(third.responses[0]!.status, 'good');

  // A revocation in the store (any process) shows at once.
  await store.revoke(cert.serialHex, 4, new Date());
  const revoked = await ask(req);
  assert.equal(revoked.responses[0]!.status, 'revoked');
  assert.equal(revoked.responses[0]!.reason, 4);

  // Nonce: echoed exactly; each answer signed afresh.
  const nonce = randomBytes(32);
  const n1 = await ask(request([{ issuer: CA, serial: cert.serial }], { nonce }));
  assert.deepEqual(n1.nonce, der.encode(der.octetString(nonce)));
  assert.ok(n1.verifiedBy(CA.cert));
  const n2 = await ask(request([{ issuer: CA, serial: cert.serial }], { nonce: Buffer.from([7]) }));
  assert.deepEqual(n2.nonce, Buffer.from('040107', 'hex'));
  assert.equal(n2.responses[0]!.status, 'revoked');
});

test('request bounds: malformedRequest for too many certificates, long nonces, critical extensions, bad versions and hashes', async (t) => {
  const { store, responder } = await setup();
  t.after(() => store.close());
  const cert = await issue(store, CA, 'bounds');
  const id = { issuer: CA, serial: cert.serial };
  const status = async (b: Buffer) => (await responder.respond(b)).status;
  const critical = der.seq(der.oid('1.2.3.4'), der.bool(true), der.octetString(Buffer.from([5, 0])));
  const nonCritical = der.seq(der.oid('1.2.3.4'), der.octetString(Buffer.from([5, 0])));

  assert.equal(await status(request(Array.from({ length: MAX_OCSP_CERT_IDS }, () => id))), 0);
  assert.equal(await status(request(Array.from({ length: MAX_OCSP_CERT_IDS + 1 }, () => id))), 1);
  assert.equal(await status(request([id], { nonce: Buffer.alloc(32, 1) })), 0);
  assert.equal(await status(request([id], { nonce: Buffer.alloc(33, 1) })), 1);
  assert.equal(await status(request([id], { exts: [critical] })), 1);
  assert.equal(await status(request([id], { exts: [nonCritical] })), 0);
  assert.equal(await status(request([id], { singleExts: [critical] })), 1);
  assert.equal(await status(request([id], { version: 0 })), 0);
  assert.equal(await status(request([id], { version: 1 })), 1);
  assert.equal(await status(request([], {})), 1);
  assert.equal(await status(request([{ ...id, hashOid: OID.md5, hash: 'md5' }])), 1);
  assert.equal(await status(request([{ ...id, hashOid: '1.2.3.4.5' }])), 1);
  // A SHA-1 OID with SHA-256-sized hashes.
  assert.equal(await status(request([{ ...id, hashOid: OID.sha1, hash: 'sha256' }])), 1);
  const twoNonces = request([id], {
    exts: [der.seq(der.oid(OID.ocspNonce), der.octetString(der.encode(der.octetString(Buffer.from([1])))))],
    nonce: Buffer.from([2]),
  });
  assert.equal(await status(twoNonces), 1);
  assert.equal(await status(Buffer.alloc(0)), 1);
  assert.equal(await status(Buffer.alloc(20_000, 0x30)), 1);
  // Deep nesting.
  let deep: der.Der = der.nul();
  for (let i = 0; i < 200; i++) deep = der.seq(deep);
  assert.equal(await status(der.encode(deep)), 1);
});

test('random mutations of a valid request never throw: malformedRequest, unauthorized or an answer', async (t) => {
  const { store, responder } = await setup();
  t.after(() => store.close());
  const cert = await issue(store, CA, 'fuzz');
  const base = request([{ issuer: CA, serial: cert.serial }], { nonce: randomBytes(16) });
  const seen = new Set<number>();
  for (let i = 0; i < 1500; i++) {
    const m = Buffer.from(base);
    const edits = 1 + (i % 4);
    for (let e = 0; e < edits; e++) m[(Math.random() * m.length) | 0] = (Math.random() * 256) | 0;
    const cut = i % 7 === 0 ? m.subarray(0, (Math.random() * m.length) | 0) : m;
    const a = await responder.respond(cut);
    assert.ok([0, 1, 6].includes(a.status), `status ${a.status}`);
    seen.add(a.status);
  }
  assert.ok(seen.has(1));
});

test('delegated responder: OCSP-signing certificate with nocheck, recorded in the store, renewed at half-life', async (t) => {
  const { store, ask, advance, responder } = await setup({
    signer: 'delegated',
    validitySeconds: 3600,
    signerValiditySeconds: 86_400,
  });
  t.after(() => store.close());
  const cert = await issue(store, CA, 'delegated');
  const req = request([{ issuer: CA, serial: cert.serial }]);
  const a = await ask(req);
  assert.equal(a.certs.length, 1);
  const rc = a.certs[0]!;
  assert.ok(a.verifiedBy(rc));
  assert.ok(!a.verifiedBy(CA.cert));
  assert.deepEqual(a.keyHash, createHash('sha1').update(spkiBits(rc.spki)).digest());
  assert.deepEqual(parseExtKeyUsage(rc.extension(OID.extKeyUsage)!.value), [OID.ekuOcspSigning]);
  assert.ok(rc.extension(OID.ocspNoCheck));
  assert.equal(rc.publicKey().asymmetricKeyType, 'ec');
  assert.equal(rc.notAfter.getTime() - rc.notBefore.getTime(), (86_400 + 300) * 1000);
  assert.ok(rc.issuerRaw.equals(CA.cert.subjectRaw));
  assert.ok((await store.getCertificate(rc.serialHex))?.subject.includes('OCSP responder'));
  assert.equal((await responder.responderFor(CA)).cert?.serialHex, rc.serialHex);

  advance(12 * 3600 + 1); // past half of the responder certificate's validity
  const b = await ask(req);
  const rc2 = b.certs[0]!;
  assert.notEqual(rc2.serialHex, rc.serialHex, 'a new responder certificate');
  assert.ok(b.verifiedBy(rc2));
  assert.ok(
    b.producedAt!.getTime() > a.producedAt!.getTime(),
    'cached answers of the old responder are dropped',
  );
  assert.ok(await store.getCertificate(rc2.serialHex));
});

test('delegated responder near the end of the CA: never longer than the CA, and not re-issued on every request', async (t) => {
  const key = pooledRsaKey(23, 2048);
  const c = makeSelfSigned({ subject: 'CN=Short CA', key, ca: true, days: 1 });
  const short = new CertificateAuthority({ cert: c.cert, key, chain: [] });
  const store = await openStore(':memory:');
  t.after(() => store.close());
  let clock = START;
  const responder = new OcspResponder({
    store,
    cas: new CaSet(short),
    signer: 'delegated',
    validitySeconds: 3600,
    signerValiditySeconds: 7 * 86_400,
    now: () => new Date(clock),
  });
  const first = await responder.responderFor(short);
  assert.equal(first.cert!.notAfter.getTime(), short.cert.notAfter.getTime());
  clock += 20 * 3600 * 1000; // past half of its validity, less than two answers before the end
  assert.equal((await responder.responderFor(short)).cert!.serialHex, first.cert!.serialHex);
  assert.equal((await store.searchCertificates({})).total, 1);
});

test('settings: validity bounds and the responder certificate outliving its answers', async () => {
  const store = await openStore(':memory:');
  try {
    const cas = new CaSet(CA);
    assert.throws(() => new OcspResponder({ store, cas, validitySeconds: 59 }), RangeError);
    assert.throws(() => new OcspResponder({ store, cas, validitySeconds: 8 * 86_400 }), RangeError);
    assert.throws(
      () => new OcspResponder({ store, cas, validitySeconds: 3600, signerValiditySeconds: 3 * 3600 }),
      RangeError,
    );
  } finally {
    await store.close();
  }
});
