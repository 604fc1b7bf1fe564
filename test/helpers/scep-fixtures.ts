/**
 * Shared fixtures for the SCEP codec tests: a CA, a client with a self-signed signer cert and
 * a CSR carrying a challenge, and helpers to build request messages.
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto';
import * as der from '../../src/asn1/writer.js';
import * as r from '../../src/asn1/reader.js';
import { OID } from '../../src/asn1/oids.js';
import { buildEnvelopedData } from '../../src/cms/index.js';
import { pooledRsaKey, makeSelfSigned, type TestCert } from './pki.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { encodePkiRequest, MessageType, type PkiRequestOptions } from '../../src/scep/index.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';

export const CHALLENGE = 'sekrit-challenge-4711';

export interface ScepFixture {
  ca: TestCert;
  client: TestCert;
  csr: Buffer;
  caRecipient: { cert: TestCert['cert']; transport: RsaKeyTransport };
}

let cached: ScepFixture | undefined;

/** One CA and one client (pooled keys, so cheap to call repeatedly). */
export function fixture(): ScepFixture {
  if (cached) return cached;
  const caKey = pooledRsaKey(0);
  const clientKey = pooledRsaKey(1);
  const ca = makeSelfSigned({ subject: 'CN=Scepter Test CA,O=Scepter', key: caKey, ca: true, days: 365 });
  const client = makeSelfSigned({ subject: 'CN=device-1,O=Scepter', key: clientKey, days: 1 });
  const csr = buildCsr({
    subject: 'CN=device-1,O=Scepter',
    key: clientKey,
    publicKey: createPublicKey(clientKey),
    challengePassword: CHALLENGE,
    subjectAltNames: [{ type: 'dns', value: 'device-1.example' }],
  });
  cached = { ca, client, csr, caRecipient: { cert: ca.cert, transport: new RsaKeyTransport(caKey) } };
  return cached;
}

/** A request from the fixture client to the fixture CA. */
export function makeRequest(over: Partial<PkiRequestOptions> = {}): { der: Buffer; senderNonce: Buffer } {
  const f = fixture();
  return encodePkiRequest({
    messageType: MessageType.PKCSReq,
    transactionId: 'tx-0001',
    signerCert: f.client.cert,
    signerKey: f.client.key as KeyObject,
    digest: 'sha256',
    recipient: f.ca.cert,
    cipher: 'aes128',
    content: f.csr,
    ...over,
  });
}

/** One signed attribute as complete DER: SEQUENCE { OID, SET { values… } } (values kept in order). */
export function attr(oid: string, ...values: der.Der[]): Buffer {
  return der.encode(der.seq(der.oid(oid), der.set(...values)));
}

export interface RawSignOptions {
  /** The SCEP (and any extra) attributes; contentType/messageDigest are added unless `bare`. */
  attrs: Buffer[];
  content?: Buffer;
  eContentType?: string;
  /** node:crypto digest name used for messageDigest and the signature. */
  hash?: string;
  digestOid?: string;
  signerCert?: TestCert;
  /** Key that actually signs (defaults to the signer cert's). */
  signingKey?: KeyObject;
  /** Override the messageDigest value. */
  messageDigest?: Buffer;
  /** Certificates to embed (default: the signer's). */
  certificates?: Buffer[];
}

/**
 * A hand-built ContentInfo(SignedData) for tests that need what our builder refuses to
 * produce (MD5, duplicate attributes, odd content types, forged signatures).
 */
export function rawSignedData(o: RawSignOptions): Buffer {
  const f = fixture();
  const signer = o.signerCert ?? f.client;
  const hash = o.hash ?? 'sha256';
  const digestOid = o.digestOid ?? OID.sha256;
  const eType = o.eContentType ?? OID.data;
  const content = o.content;
  const md =
    o.messageDigest ??
    createHash(hash)
      .update(content ?? Buffer.alloc(0))
      .digest();
  const all = [
    attr(OID.contentType, der.oid(eType)),
    attr(OID.messageDigest, der.octetString(md)),
    ...o.attrs,
  ].sort(Buffer.compare);
  const signedAttrs = der.encode(der.set(...all));
  const signature = sign(hash, signedAttrs, o.signingKey ?? signer.key);
  signedAttrs[0] = 0xa0;
  const si = der.seq(
    der.int(1),
    der.seq(signer.cert.issuerRaw, der.intRaw(signer.cert.serial)),
    der.algorithm(digestOid, der.nul()),
    signedAttrs,
    der.algorithm(OID.rsaEncryption, der.nul()),
    der.octetString(signature),
  );
  const encap = content
    ? der.seq(der.oid(eType), der.explicit(0, der.octetString(content)))
    : der.seq(der.oid(eType));
  const sd = der.seq(
    der.int(1),
    der.set(der.algorithm(digestOid, der.nul())),
    encap,
    der.implicitConstructed(0, o.certificates ?? [signer.certDer]),
    der.set(si),
  );
  return der.encode(der.seq(der.oid(OID.signedData), der.explicit(0, sd)));
}

/** The standard SCEP request attributes for `rawSignedData`. */
export function requestAttrs(
  o: { messageType?: string; transactionId?: string; nonce?: Buffer } = {},
): Buffer[] {
  return [
    attr(OID.scepMessageType, der.printable(o.messageType ?? '19')),
    attr(OID.scepTransactionId, der.printable(o.transactionId ?? 'tx-raw')),
    attr(OID.scepSenderNonce, der.octetString(o.nonce ?? Buffer.alloc(16, 7))),
  ];
}

/** An EnvelopedData of the fixture CSR to the fixture CA. */
export function envelope(cipher: 'aes128' | 'des' = 'aes128'): Buffer {
  const f = fixture();
  return buildEnvelopedData({ content: f.csr, recipient: f.ca.cert, cipher, allowSingleDes: true });
}

/**
 * Re-wraps a DER ContentInfo(SignedData) the way iOS and BouncyCastle send it: indefinite
 * lengths down to the eContent, which becomes a constructed OCTET STRING of `chunk`-byte
 * segments. Signed attributes, certificates and signerInfos stay as they are.
 */
export function toBer(input: Buffer, chunk = 100): Buffer {
  const indef = (tag: number, parts: Buffer[]) =>
    Buffer.concat([Buffer.from([tag, 0x80]), ...parts, Buffer.alloc(2)]);
  const top = r.parse(input);
  const ci = r.children(top);
  const sdT = r.children(ci[1]!)[0]!;
  const sdKids = r.children(sdT);
  const parts: Buffer[] = [];
  for (const k of sdKids) {
    if (k.tag === 0x30 && parts.length === 2) {
      const ek = r.children(k);
      const inner: Buffer[] = [r.raw(ek[0]!)];
      if (ek[1]) {
        const octs = r.octets(r.children(ek[1])[0]!);
        const segs: Buffer[] = [];
        for (let i = 0; i < octs.length; i += chunk) {
          segs.push(der.encode(der.octetString(octs.subarray(i, i + chunk))));
        }
        inner.push(indef(0xa0, [indef(0x24, segs)]));
      }
      parts.push(indef(0x30, inner));
    } else {
      parts.push(r.raw(k));
    }
  }
  return indef(0x30, [r.raw(ci[0]!), indef(0xa0, [indef(0x30, parts)])]);
}
