/**
 * Mutation fuzzing of the PRODUCTION PKIOperation path: the bytes of an HTTP body through
 * `EnrollmentService.pkiOperation` (decode, signature, envelope, CSR parsing, policies,
 * challenge, validation, issuance, CertRep) and, for a sample, through the real fastify app
 * with `app.inject` (routing, body handling, error mapping; no socket traffic).
 *
 * Every case starts from a VALID encrypted and signed PKCSReq, RenewalReq, CertPoll, GetCert or
 * GetCRL and
 * mutates one layer:
 *   outer     the whole pkiMessage DER (bit flips, lengths, truncation, insertion, …)
 *   attrs     the signed attributes (values, types, duplicates, drops, unknown ones, raw
 *             bytes), then signed correctly so the signature check passes
 *   envelope  the EnvelopedData DER, then signed correctly
 *   csr       the CSR: odd subjects, SANs and extensions built and signed properly, or the
 *             certificationRequestInfo mutated and re-signed — then encrypted and signed
 *             correctly, so the CSR parser and the validation behind it see it
 *   content   the CertPoll IssuerAndSubject or GetCert/GetCRL IssuerAndSerialNumber (odd
 *             serials, bytes), then encrypted and signed correctly
 *
 * Oracle per call: no throw, no HTTP 5xx, no hang (a call not settled within `hangMs` — a
 * hang detector, not a timing assertion), and every answer either a 4xx one-line text/plain
 * or a CertRep signed by the CA/RA that answers this very request (transactionID, nonce).
 *
 * Each case has its own PRNG seeded from (seed, index): `--seed S --only N` replays case N.
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import * as der from '../../src/asn1/writer.js';
import * as r from '../../src/asn1/reader.js';
import { OID } from '../../src/asn1/oids.js';
import { buildEnvelopedData } from '../../src/cms/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startServer, type LogLevel, type RunningServer } from '../../src/server/index.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import { buildCsr, type BuildCsrOptions } from '../../src/pkix/csr.js';
import type { GeneralName } from '../../src/pkix/extensions.js';
import { buildSelfSignedCertificate } from '../../src/pkix/self-signed.js';
import { parseCertificate } from '../../src/pkix/certificate.js';
import {
  buildIssuerAndSerial,
  buildIssuerAndSubject,
  decodeCertRep,
  decodePkiRequest,
  FailInfo,
  MessageType,
  PkiStatus,
} from '../../src/scep/index.js';
import type { ScepService } from '../../src/ra/types.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { seedCa, seeded, TEST_CHALLENGE } from '../helpers/scep-server.js';

/** xorshift32 (small, fast, reproducible). */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** The PRNG seed of case `i` of a campaign seeded with `seed`. */
export function caseSeed(seed: number, i: number): number {
  return createHash('sha256').update(`${seed}:${i}`).digest().readUInt32BE(0);
}

type Rng = () => number;
const pick = <T>(next: Rng, xs: readonly T[]): T => xs[next() % xs.length]!;
const below = (next: Rng, n: number): number => next() % Math.max(1, n);

function randomBytesFrom(next: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

/** Generic byte-level DER mutation (1–3 rounds). */
export function mutateBytes(src: Buffer, next: Rng): Buffer {
  let b = Buffer.from(src);
  const rounds = 1 + below(next, 3);
  for (let k = 0; k < rounds && b.length > 0; k++) {
    switch (below(next, 8)) {
      case 0: {
        const i = below(next, b.length);
        b[i] = b[i]! ^ (1 << below(next, 8));
        break;
      }
      case 1: {
        const vals = [0x00, 0xff, 0x80, 0x7f, 0x30, 0x31, 0xa0, 0x04, 0x24, 0x05, 0x81, 0x82, 0x84];
        b[below(next, b.length)] = pick(next, vals);
        break;
      }
      case 2:
        b = b.subarray(0, below(next, b.length));
        break;
      case 3: {
        const i = below(next, b.length + 1);
        b = Buffer.concat([b.subarray(0, i), randomBytesFrom(next, 1 + below(next, 8)), b.subarray(i)]);
        break;
      }
      case 4: {
        // nudge the length octet after a likely tag
        for (let tries = 0; tries < 16; tries++) {
          const i = below(next, b.length - 1);
          const tag = b[i]!;
          if ([0x30, 0x31, 0x04, 0x02, 0x03, 0x06, 0x0c, 0x13, 0x16].includes(tag) || (tag & 0xe0) === 0xa0) {
            b[i + 1] = (b[i + 1]! + pick(next, [1, -1, 2, -2, 0x80, 0x7f, 0x40])) & 0xff;
            break;
          }
        }
        break;
      }
      case 5: {
        const i = below(next, b.length);
        const chunk = b.subarray(i, i + 1 + below(next, 64));
        const at = below(next, b.length + 1);
        b = Buffer.concat([b.subarray(0, at), chunk, b.subarray(at)]);
        break;
      }
      case 6: {
        // long-form length bombs: 0x84 + 4 bytes claiming a huge size
        const i = below(next, b.length);
        b = Buffer.concat([
          b.subarray(0, i + 1),
          Buffer.from([0x84, 0x7f, 0xff, 0xff, 0xff]),
          b.subarray(i + 2),
        ]);
        break;
      }
      default: {
        const i = below(next, b.length);
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + below(next, 32))]);
      }
    }
  }
  return b;
}

/** One signed attribute: SEQUENCE { OID, SET { values… } }. */
function attr(oid: string, ...values: der.Der[]): Buffer {
  return der.encode(der.seq(der.oid(oid), der.set(...values)));
}

interface Signer {
  cert: Certificate;
  key: KeyObject;
}

/**
 * ContentInfo(SignedData) over `content` with exactly the signed attributes given (already
 * complete DER; messageDigest and contentType included by the caller), signed correctly.
 * `signedAttrsOverride` replaces the whole encoded SET (still signed, then retagged [0]).
 */
function signRaw(signer: Signer, content: Buffer, attrs: Buffer[], signedAttrsOverride?: Buffer): Buffer {
  const signedAttrs = signedAttrsOverride ?? der.encode(der.setOf(attrs));
  const signature = sign('sha256', signedAttrs, signer.key);
  const implicitAttrs = Buffer.from(signedAttrs);
  if (implicitAttrs.length > 0) implicitAttrs[0] = 0xa0;
  const si = der.seq(
    der.int(1),
    der.seq(signer.cert.issuerRaw, der.intRaw(signer.cert.serial)),
    der.algorithm(OID.sha256),
    implicitAttrs,
    der.algorithm(OID.rsaEncryption, der.nul()),
    der.octetString(signature),
  );
  const sd = der.seq(
    der.int(1),
    der.set(der.algorithm(OID.sha256)),
    der.seq(der.oid(OID.data), der.explicit(0, der.octetString(content))),
    der.implicitConstructed(0, [signer.cert.der]),
    der.set(si),
  );
  return der.encode(der.seq(der.oid(OID.signedData), der.explicit(0, sd)));
}

interface Attrs {
  messageType: number;
  transactionId: string;
  senderNonce: Buffer;
}

function standardAttrs(content: Buffer, a: Attrs): Buffer[] {
  return [
    attr(OID.contentType, der.oid(OID.data)),
    attr(OID.messageDigest, der.octetString(createHash('sha256').update(content).digest())),
    attr(OID.scepMessageType, der.printable(String(a.messageType))),
    attr(OID.scepTransactionId, der.printable(a.transactionId)),
    attr(OID.scepSenderNonce, der.octetString(a.senderNonce)),
  ];
}

const ODD_STRINGS = [
  '',
  ' ',
  'x'.repeat(65),
  'x'.repeat(300),
  'a\u0000b',
  'line\nbreak',
  '\u001b[31mred',
  'é ü 日本',
  '\ud83d\ude00',
  'CN=inner,O=x',
  '../../etc/passwd',
  '*.example.com',
  '-leading.example',
  'a..b',
  '%00',
  '<script>',
  "'; drop table certificates; --",
  '\u202etxt.exe',
];

function oddString(next: Rng): string {
  switch (below(next, 4)) {
    case 0:
      return pick(next, ODD_STRINGS);
    case 1:
      return randomBytesFrom(next, below(next, 40)).toString('latin1');
    case 2:
      return `dev-${next().toString(36)}.example`;
    default:
      return pick(next, ODD_STRINGS) + String(next() % 1000);
  }
}

/** A Name DER with odd RDNs: string types, multi-valued RDNs, unknown attributes, empties. */
function oddName(next: Rng, cn: string): Buffer {
  const types = [
    (s: string) => der.utf8(s),
    (s: string) => der.primitive(0x13, Buffer.from(s, 'latin1')), // PrintableString, unchecked
    (s: string) => der.primitive(0x16, Buffer.from(s, 'latin1')), // IA5String
    (s: string) => der.primitive(0x14, Buffer.from(s, 'latin1')), // TeletexString
    (s: string) => der.primitive(0x1e, Buffer.from(s, 'utf16le').swap16()), // BMPString
    (s: string) => der.primitive(0x1c, Buffer.from(s, 'latin1')), // UniversalString (bad length)
    () => der.int(next() % 1000), // not a string at all
  ];
  const oids = [
    OID.commonName,
    OID.organizationName,
    OID.countryName,
    OID.serialNumber,
    OID.emailAddress,
    OID.domainComponent,
    '1.2.3.4.5',
    '2.5.4.3',
  ];
  const rdns: der.Der[] = [];
  const n = below(next, 6);
  for (let i = 0; i < n; i++) {
    const values: der.Der[] = [];
    const m = 1 + (below(next, 5) === 0 ? below(next, 3) : 0);
    for (let j = 0; j < m; j++)
      values.push(der.seq(der.oid(pick(next, oids)), pick(next, types)(oddString(next))));
    rdns.push(der.set(...values));
  }
  if (below(next, 3) !== 0) rdns.push(der.set(der.seq(der.oid(OID.commonName), der.utf8(cn))));
  return der.encode(der.seq(...rdns));
}

function oddSans(next: Rng): { sans: GeneralName[]; raw: der.Der[] } {
  const sans: GeneralName[] = [];
  const raw: der.Der[] = [];
  const n = below(next, 5);
  for (let i = 0; i < n; i++) {
    switch (below(next, 7)) {
      case 0:
        sans.push({ type: 'dns', value: oddString(next) });
        break;
      case 1:
        sans.push({ type: 'email', value: oddString(next) });
        break;
      case 2:
        sans.push({ type: 'uri', value: pick(next, ['https://x.example/', 'urn:uuid:1', oddString(next)]) });
        break;
      case 3:
        sans.push({ type: 'ip', value: pick(next, ['10.0.0.1', '::1', '300.1.1.1', 'fe80::1%eth0', '']) });
        break;
      case 4:
        // iPAddress of a wrong length, raw
        raw.push(der.primitive(0x87, randomBytesFrom(next, pick(next, [0, 3, 5, 8, 17, 32]))));
        break;
      case 5:
        // otherName (UPN) with junk inside
        raw.push(
          der.constructed(0xa0, [
            der.oid('1.3.6.1.4.1.311.20.2.3'),
            der.explicit(0, pick(next, [der.utf8(oddString(next)), der.int(5), der.nul()])),
          ]),
        );
        break;
      default:
        raw.push(der.primitive(0x80 | below(next, 9), randomBytesFrom(next, below(next, 20))));
    }
  }
  return { sans, raw };
}

/** Extensions a CSR may request: duplicates, unknown critical ones, garbage values. */
function oddExtensions(next: Rng): der.Der[] {
  const out: der.Der[] = [];
  const n = below(next, 4);
  for (let i = 0; i < n; i++) {
    const id = pick(next, [
      OID.basicConstraints,
      OID.keyUsage,
      OID.subjectAltName,
      '2.5.29.37', // extKeyUsage
      '2.5.29.30', // nameConstraints
      '1.2.3.4',
    ]);
    const value = pick(next, [
      () => der.encode(der.seq(der.bool(true))),
      () => der.encode(der.namedBits([0, 5, 6])),
      () => randomBytesFrom(next, below(next, 24)),
      () => der.encode(der.seq()),
      () => der.encode(der.seq(der.oid('1.3.6.1.5.5.7.3.1'), der.oid('2.5.29.37.0'))),
    ])();
    out.push(
      below(next, 2) === 0
        ? der.seq(der.oid(id), der.bool(true), der.octetString(value))
        : der.seq(der.oid(id), der.octetString(value)),
    );
  }
  return out;
}

/** Replaces the certificationRequestInfo of a CSR and signs it again with `key`. */
function resignCsr(cri: Buffer, key: KeyObject): Buffer {
  const sig = sign('sha256', cri, key);
  return der.encode(der.seq(cri, der.algorithm(OID.sha256WithRSAEncryption, der.nul()), der.bitString(sig)));
}

/** The fixed material of a campaign: the server, its CA/RA, a device and its issued certificate. */
export interface FuzzTarget {
  server: RunningServer;
  service: ScepService;
  app: FastifyInstance;
  /** The certificate requests are encrypted to (RA when present, else CA). */
  recipient: Certificate;
  /** CA and RA: every CertRep must be signed by one of them. */
  trusted: Certificate[];
  device: Signer & { subject: string };
  /** A certificate the server issued to the device (signs RenewalReqs). */
  issued: Signer;
  renewalKey: KeyObject;
  /** transactionID of the device's issued PKCSReq (CertPoll asks for it). */
  issuedTransactionId: string;
  close(): Promise<void>;
}

function selfSigned(key: KeyObject, subject: string): Certificate {
  return parseCertificate(buildSelfSignedCertificate({ subject, key, publicKey: createPublicKey(key) }));
}

/**
 * Starts an in-process server (fixture CA and RA, in-memory store) and enrolls the device once.
 * `approval: 'manual'` puts every PKCSReq in the pending queue (PENDING answers, CertPoll of
 * pending transactions); the device's own request is approved through the store.
 */
export async function setupTarget(
  dataDir: string,
  o: { approval?: 'auto' | 'manual'; keyBits?: 1024 | 2048 } = {},
): Promise<FuzzTarget> {
  const store: Store = await openStore(':memory:');
  // 1024-bit keys (campaigns only): the same code path at a fifth of the RSA cost.
  const small = o.keyBits === 1024;
  if (small) seedCa(dataDir, { ra: true, keySize: 1024, caKey: 0, raKey: 1 });
  const server = await startServer(
    seeded({
      dataDir,
      ra: true,
      keySize: 2048 as const,
      challenge: TEST_CHALLENGE,
      // SCEPTER_FUZZ_LOG=error shows the server's own log of a finding (e.g. an internal error).
      logLevel: (process.env.SCEPTER_FUZZ_LOG ?? 'silent') as LogLevel,
      store,
      metrics: false,
      ...(small ? { enrollment: { minRsaBits: 1024 } } : {}),
      ...(o.approval === 'manual' ? { lifecycle: { approval: { mode: 'manual' as const } } } : {}),
    }),
  );
  const service = server.service;
  const trusted = [
    server.dataDir!.loaded.caCert,
    ...(server.dataDir!.loaded.ra ? [server.dataDir!.loaded.ra.cert] : []),
  ];
  const recipient = server.dataDir!.loaded.ra?.cert ?? server.dataDir!.loaded.caCert;
  const subject = 'CN=fuzz-device,O=Scepter Fuzz';
  const key = small ? pooledRsaKey(2, 1024) : pooledRsaKey(5);
  const device = { key, subject, cert: selfSigned(key, subject) };
  const renewalKey = small ? pooledRsaKey(3, 1024) : pooledRsaKey(6);

  // One real enrollment: its certificate signs RenewalReqs, its transaction answers CertPoll.
  const issuedTransactionId = 'fuzz-initial-enrollment';
  const senderNonce = Buffer.alloc(16, 1);
  const csr = buildCsr({ subject, key, publicKey: createPublicKey(key), challengePassword: TEST_CHALLENGE });
  const env = buildEnvelopedData({ content: csr, recipient, cipher: 'aes128' });
  const msg = signRaw(
    device,
    env,
    standardAttrs(env, { messageType: MessageType.PKCSReq, transactionId: issuedTransactionId, senderNonce }),
  );
  let a = await service.pkiOperation(msg, {});
  if (o.approval === 'manual') {
    // PENDING; the operator approves, and the device's CertPoll fetches the certificate.
    await store.decide(issuedTransactionId, 'approved');
    const poll = buildIssuerAndSubject({
      issuerRaw: server.dataDir!.loaded.caCert.subjectRaw,
      subjectRaw: device.cert.subjectRaw,
    });
    const penv = buildEnvelopedData({ content: poll, recipient, cipher: 'aes128' });
    const pmsg = signRaw(
      device,
      penv,
      standardAttrs(penv, {
        messageType: MessageType.CertPoll,
        transactionId: issuedTransactionId,
        senderNonce,
      }),
    );
    a = await service.pkiOperation(pmsg, {});
  }
  const rep = decodeCertRep(a.body, {
    transactionId: issuedTransactionId,
    senderNonce,
    trustedSigners: trusted,
    decrypt: { cert: device.cert, key },
  });
  if (rep.status !== PkiStatus.SUCCESS)
    throw new Error(`setup enrollment failed: ${rep.failInfoText ?? rep.status}`);
  const issued = { cert: rep.certificates.find((c) => c.spki.equals(device.cert.spki))!, key };
  return {
    server,
    service,
    app: server.app,
    recipient,
    trusted,
    device,
    issued,
    renewalKey,
    issuedTransactionId,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}

/** One generated input. */
export interface FuzzCase {
  kind: 'PKCSReq' | 'RenewalReq' | 'CertPoll' | 'GetCert' | 'GetCRL';
  layer: 'outer' | 'attrs' | 'envelope' | 'csr' | 'content' | 'none';
  der: Buffer;
  /** Who signed it (the CertRep of a SUCCESS is encrypted to this certificate). */
  signer: Signer;
  /** The messageData before encryption (a CSR for PKCSReq/RenewalReq). */
  content: Buffer;
}

/**
 * Known bugs in src/ (reported, fixed outside this test suite): a finding a case provably
 * triggers is counted as `known` instead of failing the run. Remove an entry once its fix is in.
 */
export const KNOWN_BUGS: ReadonlyArray<{ id: string; what: string; matches: (c: FuzzCase) => boolean }> = [];

/** Builds case `i` of a campaign (deterministic in (seed, i)). */
export function makeCase(t: FuzzTarget, seed: number, i: number): FuzzCase {
  const next = prng(caseSeed(seed, i));
  const kind = pick(next, [
    'PKCSReq',
    'PKCSReq',
    'PKCSReq',
    'RenewalReq',
    'RenewalReq',
    'CertPoll',
    'GetCert',
    'GetCRL',
  ] as const);
  const hasCsr = kind === 'PKCSReq' || kind === 'RenewalReq';
  const inner: FuzzCase['layer'] = hasCsr ? 'csr' : 'content';
  const layers: Array<FuzzCase['layer']> = ['outer', 'attrs', 'envelope', inner, inner];
  // 1 in 50 is left valid: the oracle also checks the happy path under the same load.
  const layer: FuzzCase['layer'] = below(next, 50) === 0 ? 'none' : pick(next, layers);
  const signer: Signer = kind === 'PKCSReq' || kind === 'CertPoll' ? t.device : t.issued;
  const messageType = MessageType[kind];
  const transactionId = kind === 'CertPoll' ? t.issuedTransactionId : `fz-${seed}-${i}`;
  const senderNonce = randomBytesFrom(next, 16);

  // The messageData.
  let content: Buffer;
  if (kind === 'CertPoll') {
    content = buildIssuerAndSubject({
      issuerRaw: t.server.dataDir!.loaded.caCert.subjectRaw,
      subjectRaw: t.device.cert.subjectRaw,
    });
    if (layer === 'content') content = mutateBytes(content, next);
  } else if (kind === 'GetCert' || kind === 'GetCRL') {
    const serial = t.issued.cert.serial;
    const serials = [
      serial,
      Buffer.concat([Buffer.alloc(1), serial]), // redundant leading zero (tolerated)
      Buffer.alloc(0),
      Buffer.from([0x80]), // negative
      Buffer.alloc(1, 0),
      randomBytesFrom(next, 1 + below(next, 40)),
    ];
    content = buildIssuerAndSerial({
      issuerRaw: pick(next, [t.server.dataDir!.loaded.caCert.subjectRaw, t.device.cert.subjectRaw]),
      serial: layer === 'content' && below(next, 2) === 0 ? pick(next, serials) : serial,
    });
    if (layer === 'content' && below(next, 2) === 0) content = mutateBytes(content, next);
  } else {
    const csrKey = kind === 'RenewalReq' ? t.renewalKey : t.device.key;
    const base: BuildCsrOptions = {
      subject: t.device.subject,
      key: csrKey,
      publicKey: createPublicKey(csrKey),
      ...(kind === 'PKCSReq' ? { challengePassword: TEST_CHALLENGE } : {}),
      subjectAltNames: [{ type: 'dns', value: 'fuzz-device.example' }],
    };
    content = buildCsr(base);
    if (layer === 'csr') content = mutateCsr(next, base, csrKey);
  }

  let env = buildEnvelopedData({
    content,
    recipient: t.recipient,
    cipher: pick(next, ['aes128', 'aes256', 'des3'] as const),
  });
  if (layer === 'envelope') env = mutateBytes(env, next);

  let attrs = standardAttrs(env, { messageType, transactionId, senderNonce });
  let override: Buffer | undefined;
  if (layer === 'attrs') {
    if (below(next, 4) === 0) override = mutateBytes(der.encode(der.setOf(attrs)), next);
    else attrs = mutateAttrs(next, attrs);
  }
  let msg = signRaw(signer, env, attrs, override);
  if (layer === 'outer') msg = mutateBytes(msg, next);
  return { kind, layer, der: msg, signer, content };
}

function mutateCsr(next: Rng, base: BuildCsrOptions, key: KeyObject): Buffer {
  switch (below(next, 3)) {
    case 0: {
      // structure-aware: odd subject / SANs / extensions, properly signed
      const { sans, raw } = oddSans(next);
      const o: BuildCsrOptions = {
        ...base,
        subject: below(next, 2) === 0 ? oddName(next, 'fuzz-device') : base.subject,
        subjectAltNames: sans,
        extensions: [...oddExtensions(next)],
      };
      if (raw.length > 0)
        o.extensions!.push(
          der.seq(der.oid(OID.subjectAltName), der.octetString(der.encode(der.seq(...raw)))),
        );
      if (below(next, 5) === 0) delete o.challengePassword;
      else if (below(next, 5) === 0) o.challengePassword = oddString(next);
      try {
        return buildCsr(o);
      } catch {
        // the builder refused (e.g. an unparseable IP): use the raw-only variant
        return buildCsr({ ...o, subjectAltNames: [] });
      }
    }
    case 1: {
      // certificationRequestInfo mutated, then signed again: reaches the parser past the signature
      const csr = buildCsr(base);
      const cri = r.raw(r.children(r.parse(csr))[0]!);
      return resignCsr(mutateBytes(cri, next), key);
    }
    default:
      return mutateBytes(buildCsr(base), next);
  }
}

function mutateAttrs(next: Rng, attrs: Buffer[]): Buffer[] {
  const out = [...attrs];
  const i = below(next, out.length);
  switch (below(next, 7)) {
    case 0:
      out.splice(i, 1);
      break;
    case 1:
      out.push(out[i]!);
      break;
    case 2:
      out[i] = mutateBytes(out[i]!, next);
      break;
    case 3: {
      // same attribute type, odd value(s)
      const oid = r.oid(r.children(r.parse(attrs[i]!))[0]!);
      const values = [
        der.printable(pick(next, ['0', '3', '17', '19', '20', '21', '22', '-1', '99999999999', ''])),
        der.utf8(oddString(next)),
        der.octetString(randomBytesFrom(next, below(next, 70))),
        der.int(next()),
        der.nul(),
        der.seq(),
      ];
      const m = below(next, 3);
      out[i] = attr(oid, ...Array.from({ length: m }, () => pick(next, values)));
      break;
    }
    case 4:
      out.push(
        attr(
          pick(next, [
            OID.scepRecipientNonce,
            OID.scepPkiStatus,
            OID.scepFailInfo,
            '1.2.3.4',
            OID.signingTime,
          ]),
          der.printable('0'),
        ),
      );
      break;
    case 5:
      out[i] = attr(
        pick(next, [OID.scepMessageType, OID.scepTransactionId, OID.scepSenderNonce]),
        der.printable('2'),
      );
      break;
    default:
      out.length = below(next, out.length);
  }
  return out;
}

/** What happened to one case. */
export interface CaseResult {
  /** 'ok' or the kind of finding. */
  verdict: 'ok' | 'crash' | 'hang' | 'http5xx' | 'bad-reply';
  /** e.g. `200 FAILURE badMessageCheck`, `400`. */
  answer: string;
  detail?: string;
}

const TEXT_LINE = /^[\x20-\x7e]*\n?$/;

/**
 * Sends one case through `service.pkiOperation` (or, `viaHttp`, through the fastify app with
 * inject) and checks the answer.
 */
export async function runCase(
  t: FuzzTarget,
  c: FuzzCase,
  viaHttp: boolean,
  hangMs = 10_000,
): Promise<CaseResult> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), hangMs)));
  const call = (async () => {
    if (viaHttp) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/scep?operation=PKIOperation',
        headers: { 'content-type': 'application/x-pki-message' },
        payload: c.der,
      });
      return {
        status: res.statusCode,
        contentType: String(res.headers['content-type'] ?? ''),
        body: res.rawPayload,
      };
    }
    const a = await t.service.pkiOperation(c.der, { remoteAddress: '192.0.2.1' });
    return { status: a.httpStatus, contentType: a.contentType, body: a.body };
  })();
  let got: { status: number; contentType: string; body: Buffer } | 'hang';
  try {
    got = await Promise.race([call, hang]);
  } catch (e) {
    return {
      verdict: 'crash',
      answer: 'throw',
      detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    };
  } finally {
    clearTimeout(timer);
  }
  if (got === 'hang') return { verdict: 'hang', answer: 'hang' };
  const { status, contentType, body } = got;
  if (status >= 500)
    return { verdict: 'http5xx', answer: String(status), detail: body.toString('latin1').slice(0, 200) };
  if (status !== 200) {
    if (status < 400) return { verdict: 'bad-reply', answer: String(status), detail: 'neither 200 nor 4xx' };
    if (!contentType.startsWith('text/plain') || !TEXT_LINE.test(body.toString('latin1')))
      return {
        verdict: 'bad-reply',
        answer: String(status),
        detail: `${contentType}: ${body.toString('latin1').slice(0, 120)}`,
      };
    return { verdict: 'ok', answer: String(status) };
  }
  if (!contentType.startsWith('application/x-pki-message'))
    return { verdict: 'bad-reply', answer: '200', detail: `content type ${contentType}` };
  // A CertRep answers exactly the request the server decoded; decode it the same way.
  let q;
  try {
    q = decodePkiRequest(c.der);
  } catch (e) {
    return {
      verdict: 'bad-reply',
      answer: '200',
      detail: `CertRep for an undecodable request: ${String(e)}`,
    };
  }
  try {
    const rep = decodeCertRep(body, {
      transactionId: q.transactionId,
      senderNonce: q.senderNonce,
      trustedSigners: t.trusted,
      decrypt: { cert: q.signerCert, key: c.signer.key },
    });
    const status = PkiStatus[rep.status] ?? String(rep.status);
    if (rep.status === PkiStatus.SUCCESS) {
      const crl = q.messageType === MessageType.GetCRL;
      if (crl ? rep.crls.length === 0 : rep.certificates.length === 0)
        return {
          verdict: 'bad-reply',
          answer: '200 SUCCESS',
          detail: `SUCCESS without a ${crl ? 'CRL' : 'certificate'}`,
        };
    }
    const fi = rep.failInfo !== undefined ? ` ${FailInfo[rep.failInfo] ?? rep.failInfo}` : '';
    return { verdict: 'ok', answer: `200 ${status}${fi}` };
  } catch (e) {
    return {
      verdict: 'bad-reply',
      answer: '200',
      detail: `CertRep does not verify: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

/** Totals of a campaign. */
export interface Summary {
  seed: number;
  messages: number;
  viaHttp: number;
  crashes: number;
  hangs: number;
  http5xx: number;
  badReplies: number;
  /** Findings explained by an entry of KNOWN_BUGS, by id. */
  known: Map<string, number>;
  answers: Map<string, number>;
  layers: Map<string, number>;
  /** First findings (index, kind, layer, verdict, detail), at most 20. */
  findings: Array<{
    index: number;
    kind: string;
    layer: string;
    verdict: string;
    answer: string;
    detail?: string;
    input: string;
  }>;
  elapsedMs: number;
}

/**
 * Runs cases `from`..`from+count-1` of campaign `seed`; every `httpEvery`-th goes through the
 * HTTP app. `only` runs exactly that case index.
 */
export async function campaign(
  t: FuzzTarget,
  o: {
    seed: number;
    count: number;
    httpEvery?: number;
    only?: number;
    onProgress?: (s: Summary) => void;
    hangMs?: number;
  },
): Promise<Summary> {
  const started = process.hrtime.bigint();
  const s: Summary = {
    seed: o.seed,
    messages: 0,
    viaHttp: 0,
    crashes: 0,
    hangs: 0,
    http5xx: 0,
    badReplies: 0,
    known: new Map(),
    answers: new Map(),
    layers: new Map(),
    findings: [],
    elapsedMs: 0,
  };
  const httpEvery = o.httpEvery ?? 20;
  const indices = o.only !== undefined ? [o.only] : Array.from({ length: o.count }, (_, i) => i);
  for (const i of indices) {
    const c = makeCase(t, o.seed, i);
    const viaHttp = i % httpEvery === 0;
    const res = await runCase(t, c, viaHttp, o.hangMs);
    s.messages++;
    if (viaHttp) s.viaHttp++;
    s.answers.set(res.answer, (s.answers.get(res.answer) ?? 0) + 1);
    s.layers.set(`${c.kind}/${c.layer}`, (s.layers.get(`${c.kind}/${c.layer}`) ?? 0) + 1);
    const known = res.verdict !== 'ok' ? KNOWN_BUGS.find((b) => b.matches(c)) : undefined;
    if (known) {
      s.known.set(known.id, (s.known.get(known.id) ?? 0) + 1);
    } else if (res.verdict !== 'ok') {
      if (res.verdict === 'crash') s.crashes++;
      else if (res.verdict === 'hang') s.hangs++;
      else if (res.verdict === 'http5xx') s.http5xx++;
      else s.badReplies++;
      if (s.findings.length < 20)
        s.findings.push({
          index: i,
          kind: c.kind,
          layer: c.layer,
          verdict: res.verdict,
          answer: res.answer,
          ...(res.detail !== undefined ? { detail: res.detail } : {}),
          input: c.der.toString('base64'),
        });
    }
    if (o.onProgress && s.messages % 10_000 === 0) {
      s.elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      o.onProgress(s);
    }
  }
  s.elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  return s;
}

/** The one-line summary `npm run fuzz` prints (also logged by the CI test). */
export function summaryLine(s: Summary): string {
  const answers = [...s.answers.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return (
    `fuzz: messages ${s.messages} (${s.viaHttp} via HTTP), crashes ${s.crashes}, hangs ${s.hangs}, ` +
    `HTTP 5xx ${s.http5xx}, bad replies ${s.badReplies}` +
    (s.known.size ? `, known bugs ${[...s.known].map(([k, v]) => `${k}=${v}`).join(' ')}` : '') +
    `; answers: ${answers}; seed ${s.seed}; ` +
    `elapsed ${(s.elapsedMs / 1000).toFixed(1)} s`
  );
}
