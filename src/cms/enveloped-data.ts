/**
 * CMS EnvelopedData (RFC 5652 §6) with RSA key transport recipients (KeyTransRecipientInfo):
 * build, parse (DER or BER) and decrypt with implicit rejection. Password and key-agreement
 * recipients (for EC keys, src/cms/pwri-kari.ts) are parsed and built here too, and opened by
 * `decryptEnvelopedDataAs`.
 *
 * Decryption errors are split in two: everything decided from public data (which recipient,
 * which algorithms, IV shape) gets a precise error; everything after the RSA operation (RSA
 * padding, key length, wrong key, CBC padding) gets one uniform
 * CmsError('badMessageCheck', 'cannot decrypt the message').
 */
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID, oidName } from '../asn1/oids.js';
import type { Certificate } from '../pkix/certificate.js';
import {
  cipherFromOid,
  cipherInfo,
  digestFromOid,
  digestOid,
  UnsupportedAlgorithmError,
  type CipherInfo,
  type CipherName,
  type DigestName,
} from '../crypto/algorithms.js';
import { RsaKeyTransport, rsaEncryptOaep, rsaEncryptPkcs1v15 } from '../crypto/key-transport.js';
import { decryptContentChecked, encryptContent } from '../crypto/content-cipher.js';
import type { KeyObject } from 'node:crypto';
import {
  kariNames,
  kariRecipientInfo,
  parseKari,
  parsePwri,
  pwriRecipientInfo,
  unwrapKari,
  unwrapPwri,
  type KeyAgreeRecipient,
  type PasswordRecipient,
} from './pwri-kari.js';
import { CmsError, decoding } from './errors.js';
import { unwrapContentInfo, wrapContentInfo } from './content-info.js';
import { issuerAndSerial, parseSignerId, signerIdMatches, type SignerId } from './signer-id.js';

export type KeyTransport = 'rsa' | 'oaep-sha1' | 'oaep-sha256';

export const MAX_RECIPIENTS = 16;

/** The one error for every failure after the recipient and algorithm decisions. */
export const DECRYPT_FAILED_MESSAGE = 'cannot decrypt the message';

export interface KeyTransRecipient {
  rid: SignerId;
  /** keyEncryptionAlgorithm OID (rsaEncryption or id-RSAES-OAEP). */
  keyEncryptionAlgorithm: string;
  /** For OAEP: the hash when hash and MGF1 hash agree, are known and the label is empty. */
  oaepHash?: DigestName;
  /** keyEncryptionAlgorithm parameters as received (DER), if any. */
  keyEncryptionParams?: Buffer;
  encryptedKey: Buffer;
}

export interface EnvelopedData {
  /** KeyTransRecipientInfos. */
  recipients: KeyTransRecipient[];
  /** PasswordRecipientInfos (RFC 3211). */
  passwordRecipients: PasswordRecipient[];
  /** KeyAgreeRecipientInfos (RFC 5753); KEKRecipientInfo and other kinds are skipped. */
  agreeRecipients: KeyAgreeRecipient[];
  /** encryptedContentInfo.contentType (id-data in SCEP). */
  contentType: string;
  contentEncryptionAlgorithm: string;
  /** The IV (OCTET STRING parameter), if the parameter is an OCTET STRING. */
  contentEncryptionParams: Buffer | undefined;
  encryptedContent: Buffer;
}

/** Hash of an AlgorithmIdentifier, or undefined if not a known acceptable digest. */
function digestOrUndefined(t: r.Tlv): DigestName | undefined {
  try {
    return digestFromOid(r.algorithmIdentifier(t, 'hashAlgorithm').oid);
  } catch {
    return undefined;
  }
}

/** RSAES-OAEP-params: the hash when hash == MGF1 hash and pSource is the empty label. */
function oaepHashOf(params: r.Tlv | undefined): DigestName | undefined {
  if (!params || params.tag === r.TAG.NULL) return 'sha1';
  if (params.tag !== 0x30) return undefined;
  let hash: DigestName | undefined = 'sha1';
  let mgfHash: DigestName | undefined = 'sha1';
  const c = new r.Cursor(params);
  const h = c.optional(0xa0);
  if (h) hash = digestOrUndefined(new r.Cursor(h).next('hashAlgorithm'));
  const m = c.optional(0xa1);
  if (m) {
    const mgf = r.algorithmIdentifier(new r.Cursor(m).next('maskGenAlgorithm'), 'maskGenAlgorithm');
    mgfHash = mgf.oid === OID.mgf1 && mgf.params ? digestOrUndefined(mgf.params) : undefined;
  }
  const p = c.optional(0xa2);
  if (p) {
    const ps = r.algorithmIdentifier(new r.Cursor(p).next('pSourceAlgorithm'), 'pSourceAlgorithm');
    if (ps.oid !== OID.pSpecified || !ps.params || ps.params.tag !== r.TAG.OCTET_STRING) return undefined;
    if (r.value(ps.params).length !== 0) return undefined;
  }
  c.end('RSAES-OAEP-params');
  return hash !== undefined && hash === mgfHash ? hash : undefined;
}

function parseKtri(t: r.Tlv): KeyTransRecipient {
  const c = new r.Cursor(t);
  r.int(c.expect(r.TAG.INTEGER, 'version'));
  const rid = parseSignerId(c.next('rid'));
  const alg = r.algorithmIdentifier(c.next('keyEncryptionAlgorithm'), 'keyEncryptionAlgorithm');
  const ekT = c.next('encryptedKey');
  if (ekT.tag !== r.TAG.OCTET_STRING && ekT.tag !== 0x24) {
    throw new r.Asn1Error('unexpected-tag', 'encryptedKey: expected an OCTET STRING');
  }
  c.end('KeyTransRecipientInfo');
  const out: KeyTransRecipient = { rid, keyEncryptionAlgorithm: alg.oid, encryptedKey: r.octets(ekT) };
  if (alg.params) out.keyEncryptionParams = r.raw(alg.params);
  if (alg.oid === OID.rsaesOaep) {
    const h = oaepHashOf(alg.params);
    if (h) out.oaepHash = h;
  }
  return out;
}

/** Parses the EnvelopedData element itself (the content of its ContentInfo). */
export function parseEnvelopedDataContent(t: r.Tlv): EnvelopedData {
  r.expectTag(t, 0x30, 'EnvelopedData');
  const c = new r.Cursor(t);
  r.int(c.expect(r.TAG.INTEGER, 'version'));
  c.optional(0xa0); // originatorInfo
  const recipients: KeyTransRecipient[] = [];
  const passwordRecipients: PasswordRecipient[] = [];
  const agreeRecipients: KeyAgreeRecipient[] = [];
  let count = 0;
  for (const ri of r.children(c.expect(0x31, 'recipientInfos'))) {
    if (++count > MAX_RECIPIENTS)
      throw new CmsError('malformed', `EnvelopedData has more than ${MAX_RECIPIENTS} recipients`);
    if (ri.tag === 0x30) recipients.push(parseKtri(ri));
    else if (ri.tag === 0xa1) agreeRecipients.push(parseKari(ri));
    else if (ri.tag === 0xa3) passwordRecipients.push(parsePwri(ri)); // kekri [2], ori [4] skipped
  }
  const eci = new r.Cursor(c.expect(0x30, 'encryptedContentInfo'));
  const contentType = r.oid(eci.expect(r.TAG.OID, 'contentType'));
  const alg = r.algorithmIdentifier(
    eci.expect(0x30, 'contentEncryptionAlgorithm'),
    'contentEncryptionAlgorithm',
  );
  const ec = eci.next('encryptedContent');
  if (ec.tag !== 0x80 && ec.tag !== 0xa0)
    throw new r.Asn1Error('unexpected-tag', 'encryptedContent: expected [0]');
  eci.end('EncryptedContentInfo');
  c.optional(0xa1); // unprotectedAttrs
  c.end('EnvelopedData');
  return {
    recipients,
    passwordRecipients,
    agreeRecipients,
    contentType,
    contentEncryptionAlgorithm: alg.oid,
    contentEncryptionParams:
      alg.params && alg.params.tag === r.TAG.OCTET_STRING ? r.value(alg.params) : undefined,
    encryptedContent: r.octets(ec),
  };
}

/**
 * Parses a ContentInfo(envelopedData), DER or BER (a constructed [0] encryptedContent is
 * concatenated). Throws CmsError('malformed').
 */
export function parseEnvelopedData(contentInfo: Buffer): EnvelopedData {
  return decoding('EnvelopedData', () =>
    parseEnvelopedDataContent(unwrapContentInfo(contentInfo, OID.envelopedData, 'EnvelopedData')),
  );
}

function keyEncryptionAlgorithm(kt: KeyTransport): der.DerNode {
  switch (kt) {
    case 'rsa':
      return der.algorithm(OID.rsaEncryption, der.nul());
    case 'oaep-sha1':
      return der.algorithm(OID.rsaesOaep, der.seq());
    case 'oaep-sha256': {
      const sha256 = der.algorithm(digestOid('sha256'));
      return der.algorithm(
        OID.rsaesOaep,
        der.seq(der.explicit(0, sha256), der.explicit(1, der.algorithm(OID.mgf1, sha256))),
      );
    }
  }
}

/**
 * Builds a ContentInfo(envelopedData) DER with one recipient:
 * - `password`: a PasswordRecipientInfo (PBKDF2-SHA256, the PWRI key wrap under AES-256;
 *   EnvelopedData version 3);
 * - else an EC `recipient`: a KeyAgreeRecipientInfo (ephemeral-static ECDH, X9.63 KDF with
 *   SHA-256, AES key wrap; version 2);
 * - else an RSA `recipient`: a KeyTransRecipientInfo (v0, issuerAndSerialNumber; version 0).
 * Single DES only with `allowSingleDes`.
 */
export function buildEnvelopedData(o: {
  content: Buffer;
  recipient?: Certificate;
  /** Encrypt to this password instead of to `recipient` (RFC 3211). */
  password?: Buffer;
  cipher: CipherName;
  keyTransport?: KeyTransport;
  allowSingleDes?: boolean;
}): Buffer {
  if (o.cipher === 'des' && !o.allowSingleDes) {
    throw new CmsError('badAlg', 'single DES is not used for encryption unless explicitly allowed');
  }
  const info = cipherInfo(o.cipher);
  const kt = o.keyTransport ?? 'rsa';
  const { key, iv, ciphertext } = encryptContent(o.cipher, o.content);
  let recipientInfo: der.DerNode;
  let version = 0;
  if (o.password) {
    recipientInfo = pwriRecipientInfo(key, o.password);
    version = 3;
  } else if (!o.recipient) {
    throw new TypeError('buildEnvelopedData needs a recipient or a password');
  } else {
    const pub = o.recipient.publicKey();
    if (pub.asymmetricKeyType === 'ec') {
      recipientInfo = kariRecipientInfo(key, o.recipient);
      version = 2;
    } else {
      const ek =
        kt === 'rsa'
          ? rsaEncryptPkcs1v15(pub, key)
          : rsaEncryptOaep(pub, key, kt === 'oaep-sha1' ? 'sha1' : 'sha256');
      recipientInfo = der.seq(
        der.int(0),
        issuerAndSerial(o.recipient),
        keyEncryptionAlgorithm(kt),
        der.octetString(ek),
      );
    }
  }
  const env = der.seq(
    der.int(version),
    der.set(recipientInfo),
    der.seq(
      der.oid(OID.data),
      der.algorithm(info.oid, der.octetString(iv)),
      der.implicitPrimitive(0, ciphertext),
    ),
  );
  return wrapContentInfo(OID.envelopedData, env);
}

/** One of our decryption identities: a certificate and the transport for its private key. */
export interface Decrypter {
  cert: Certificate;
  transport: RsaKeyTransport;
}

function describeOid(oid: string): string {
  const n = oidName(oid);
  return n === oid ? oid : `${n} (${oid})`;
}

/**
 * Decrypts an EnvelopedData with the first of `ours` that a recipient names. Checks, in order:
 * - no recipient names any of our certificates → CmsError('badRequest');
 * - unsupported content cipher or key transport → CmsError('badAlg');
 * - IV missing or of the wrong length → CmsError('malformed');
 * - anything after that → CmsError('badMessageCheck', DECRYPT_FAILED_MESSAGE), identical for
 *   every cause.
 */
export function decryptEnvelopedData(
  env: EnvelopedData,
  ours: Decrypter[],
  opts?: { allowSingleDes?: boolean },
): { content: Buffer; cipher: CipherName } {
  const failed = new CmsError('badMessageCheck', DECRYPT_FAILED_MESSAGE);
  const out = openEnvelopedData(env, ours, opts);
  if (!out.ok) throw failed;
  return { content: out.content, cipher: out.cipher };
}

/** The content cipher an EnvelopedData names (badAlg when unsupported or refused). */
function contentCipherOf(env: EnvelopedData, opts: { allowSingleDes?: boolean } | undefined): CipherInfo {
  try {
    return cipherFromOid(env.contentEncryptionAlgorithm, opts);
  } catch (e) {
    if (e instanceof UnsupportedAlgorithmError) throw new CmsError('badAlg', e.message);
    throw e;
  }
}

/**
 * Like `decryptEnvelopedData`, but after the public decisions (recipient, algorithms, IV)
 * it never throws: it returns `ok: false` with the unusable decrypted bytes as `content`, so
 * a caller can run the same work (e.g. parse the content) whatever the outcome and fail in
 * one place. Use it wherever a failure after decryption must not be told apart by timing.
 */
export function openEnvelopedData(
  env: EnvelopedData,
  ours: Decrypter[],
  opts?: { allowSingleDes?: boolean },
): { ok: boolean; content: Buffer; cipher: CipherName } {
  let match: { ri: KeyTransRecipient; d: Decrypter } | undefined;
  for (const ri of env.recipients) {
    const d = ours.find((x) => signerIdMatches(ri.rid, x.cert));
    if (d) {
      match = { ri, d };
      break;
    }
  }
  if (!match) throw new CmsError('badRequest', 'the message is not encrypted to any of our certificates');
  const { ri, d } = match;
  const cipher = contentCipherOf(env, opts);
  let oaepHash: DigestName | undefined;
  if (ri.keyEncryptionAlgorithm === OID.rsaesOaep) {
    if (!ri.oaepHash) {
      throw new CmsError(
        'badAlg',
        'RSAES-OAEP parameters not supported (hash and MGF1 hash must match, empty label)',
      );
    }
    oaepHash = ri.oaepHash;
  } else if (ri.keyEncryptionAlgorithm !== OID.rsaEncryption) {
    throw new CmsError(
      'badAlg',
      `unsupported key transport algorithm ${describeOid(ri.keyEncryptionAlgorithm)}`,
    );
  }
  const iv = env.contentEncryptionParams;
  if (!iv || iv.length !== cipher.ivLength) {
    throw new CmsError('malformed', 'the content-encryption IV is missing or has the wrong length');
  }
  if (cipher.keyLength > d.transport.modulusBytes - 11) {
    throw new CmsError('badAlg', 'the RSA key is too small for this content cipher');
  }

  // From here on: one outcome for every failure, and the same work whatever the cause: the
  // key transport never throws (implicit rejection), the content decryption never throws and
  // checks the CBC padding without branches, and the error is built before the outcome is
  // known (in decryptEnvelopedData), so success and failure differ only by a throw of a ready
  // object (building an Error captures a stack trace, which costs microseconds; measured by
  // bench/marvin.ts).
  const cek =
    oaepHash === undefined
      ? d.transport.decryptPkcs1v15(ri.encryptedKey, cipher.keyLength)
      : d.transport.decryptOaep(ri.encryptedKey, oaepHash, cipher.keyLength);
  const out = decryptContentChecked(cipher.name, cek, iv, env.encryptedContent);
  return { ok: out.ok, content: out.content, cipher: cipher.name };
}

/** Who opens an envelope without RSA key transport: a certificate and its key, and/or a password. */
export interface EnvelopeOwner {
  cert: Certificate;
  key: KeyObject;
  /** The password of a PasswordRecipientInfo (SCEP: the request's challengePassword). */
  password?: Buffer;
}

/**
 * Decrypts an EnvelopedData as `me`: RSA keys through the key-transport recipient
 * (`decryptEnvelopedData`); otherwise the key-agreement recipient that names `me.cert`, or
 * else the password recipient with `me.password`. Public decisions get precise errors (no
 * recipient for us → badRequest; unsupported algorithms, curve or an iteration count over
 * PWRI_LIMITS → badAlg; bad shapes → malformed); everything after the key derivation gives
 * the one CmsError('badMessageCheck', DECRYPT_FAILED_MESSAGE).
 */
export function decryptEnvelopedDataAs(
  env: EnvelopedData,
  me: EnvelopeOwner,
  opts?: { allowSingleDes?: boolean },
): { content: Buffer; cipher: CipherName } {
  if (me.key.asymmetricKeyType === 'rsa' && env.recipients.length > 0) {
    return decryptEnvelopedData(env, [{ cert: me.cert, transport: new RsaKeyTransport(me.key) }], opts);
  }
  const kari = env.agreeRecipients.find((ri) => kariNames(ri, me.cert));
  const pwri = me.password ? env.passwordRecipients[0] : undefined;
  if (!kari && !pwri) {
    throw new CmsError(
      'badRequest',
      env.passwordRecipients.length > 0
        ? 'the message is encrypted to a password (PasswordRecipientInfo) and no password was given'
        : 'the message is not encrypted to our certificate',
    );
  }
  const cipher = contentCipherOf(env, opts);
  const iv = env.contentEncryptionParams;
  if (!iv || iv.length !== cipher.ivLength) {
    throw new CmsError('malformed', 'the content-encryption IV is missing or has the wrong length');
  }
  const cek = kari
    ? unwrapKari(kari, me.cert, me.key, cipher.keyLength)
    : unwrapPwri(pwri!, me.password!, cipher.keyLength);
  const out = decryptContentChecked(cipher.name, cek.key, iv, env.encryptedContent);
  if (!cek.ok || !out.ok) throw new CmsError('badMessageCheck', DECRYPT_FAILED_MESSAGE);
  return { content: out.content, cipher: cipher.name };
}
