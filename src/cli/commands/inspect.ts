/**
 * `scepter inspect FILE|-` — decodes a captured SCEP pkiMessage (DER, PEM or base64) and
 * prints what it says; with `--key` opens its envelope. Never prints a challenge password.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OID, oidName } from '../../asn1/oids.js';
import {
  decryptEnvelopedData,
  findSignerCertificate,
  parseDegenerate,
  parseEnvelopedData,
  verifySignerInfo,
  type EnvelopedData,
  type SignerId,
} from '../../cms/index.js';
import { digestFromOid } from '../../crypto/algorithms.js';
import { RsaKeyTransport } from '../../crypto/key-transport.js';
import { parseCertificate, type Certificate } from '../../pkix/certificate.js';
import { parseCsr, verifyCsrSignature } from '../../pkix/csr.js';
import type { GeneralName } from '../../pkix/extensions.js';
import { nameText } from '../../pkix/name.js';
import { escapeJsonText, escapeText } from '../../pkix/text.js';
import { buildSelfSignedCertificate } from '../../pkix/self-signed.js';
import {
  decodeGetMessage,
  failInfoName,
  MessageType,
  messageTypeName,
  parseIssuerAndSerial,
  parseIssuerAndSubject,
  peekAttributes,
  pkiStatusName,
} from '../../scep/index.js';
import { flag, parseOptions, str, UsageError, type Command } from '../command.js';

const USAGE = `Usage: scepter inspect FILE|- [--key KEY.pem] [--json]

Decodes a captured SCEP pkiMessage (DER, PEM or base64 text) and prints its message type,
transactionID, nonces, status, signer and algorithms. With --key (the CA/RA private key for a
request, the client key for a CertRep) it decrypts the envelope and shows the CSR or the
certificates. Challenge passwords are reported as present/absent, never printed.`;

const MAX_INPUT = 1024 * 1024;

const CIPHER_NAMES: Record<string, string> = {
  [OID.desCbc]: 'des-cbc (single DES)',
  [OID.desEde3Cbc]: 'des-ede3-cbc',
  [OID.aes128Cbc]: 'aes-128-cbc',
  [OID.aes192Cbc]: 'aes-192-cbc',
  [OID.aes256Cbc]: 'aes-256-cbc',
};

/** Reads the input as DER whatever its armour. */
export function readPkiMessage(data: Buffer): Buffer {
  if (data.length === 0) throw new Error('empty input');
  if (data[0] === 0x30) return data;
  const text = data.toString('latin1');
  const pem = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/.exec(text);
  const b64 = pem ? pem[1]! : text.trim();
  try {
    return decodeGetMessage(b64);
  } catch {
    throw new Error('input is neither DER, PEM nor base64');
  }
}

function hex(b: Buffer | undefined): string | undefined {
  return b?.toString('hex');
}

function sanText(n: GeneralName): string {
  return 'value' in n ? `${n.type}:${n.value}` : `${n.type}:${n.raw.toString('hex')}`;
}

function ridText(id: SignerId): string {
  return 'subjectKeyId' in id
    ? `subjectKeyId ${id.subjectKeyId.toString('hex')}`
    : `${nameText(id.issuerRaw)} serial ${id.serial.toString('hex')}`;
}

function keyTransportName(oid: string, hash: string | undefined): string {
  if (oid === OID.rsaEncryption) return 'rsa (PKCS#1 v1.5)';
  if (oid === OID.rsaesOaep) return `rsaes-oaep${hash ? `-${hash}` : ''}`;
  return oidName(oid);
}

/** Decrypts with a bare private key: every recipient is tried as if it named this key. */
function decryptWithKey(env: EnvelopedData, key: KeyObject): { content: Buffer; cipher: string } {
  const certDer = buildSelfSignedCertificate({
    subject: 'CN=scepter inspect',
    key,
    publicKey: createPublicKey(key),
  });
  const cert = parseCertificate(certDer);
  const transport = new RsaKeyTransport(key);
  let last: unknown;
  for (const ri of env.recipients) {
    try {
      const one: EnvelopedData = {
        ...env,
        recipients: [{ ...ri, rid: { issuerRaw: cert.issuerRaw, serial: cert.serial } }],
      };
      return decryptEnvelopedData(one, [{ cert, transport }], { allowSingleDes: true });
    } catch (e) {
      last = e;
    }
  }
  throw new Error(
    `cannot decrypt the envelope with this key${last instanceof Error ? ` (${last.message})` : ''}`,
  );
}

function certSummary(c: Certificate): Record<string, string> {
  return {
    subject: nameText(c.subjectRaw),
    issuer: nameText(c.issuerRaw),
    serial: c.serialHex,
    notAfter: c.notAfter.toISOString(),
  };
}

/** Everything `inspect` reports, as plain data. */
export function inspectMessage(input: Buffer, key?: KeyObject): Record<string, unknown> {
  const der = readPkiMessage(input);
  const peek = peekAttributes(der);
  const sd = peek.signed;
  const si = sd.signerInfos[0]!;
  const out: Record<string, unknown> = {};
  const mt = peek.messageType;
  out.messageType = mt === undefined ? 'missing' : `${messageTypeName(mt)} (${Number.isNaN(mt) ? '?' : mt})`;
  out.transactionId = peek.transactionId ?? 'missing';
  if (peek.senderNonce) out.senderNonce = hex(peek.senderNonce);
  if (peek.recipientNonce) out.recipientNonce = hex(peek.recipientNonce);
  if (peek.pkiStatus !== undefined) out.pkiStatus = `${pkiStatusName(peek.pkiStatus)} (${peek.pkiStatus})`;
  if (peek.failInfo !== undefined) out.failInfo = `${failInfoName(peek.failInfo)} (${peek.failInfo})`;
  if (peek.failInfoText !== undefined) out.failInfoText = peek.failInfoText;
  if (peek.problems.length || peek.fatal.length) out.attributeProblems = [...peek.fatal, ...peek.problems];
  let digest: string;
  try {
    digest = digestFromOid(si.digestAlgorithm);
  } catch {
    digest = oidName(si.digestAlgorithm);
  }
  out.digest = digest;
  const signer = findSignerCertificate(sd, si);
  if (signer) {
    out.signer = {
      subject: nameText(signer.subjectRaw),
      issuer: nameText(signer.issuerRaw),
      serial: signer.serialHex,
    };
    try {
      verifySignerInfo(sd, si, signer);
      out.signature = 'valid';
    } catch (e) {
      out.signature = `INVALID: ${e instanceof Error ? e.message : 'unknown error'}`;
    }
  } else {
    out.signer = 'not in the message';
  }
  out.certificates = sd.certificates.length;
  if (!sd.eContent || sd.eContent.length === 0) {
    out.envelope = 'none';
    return out;
  }
  let env: EnvelopedData;
  try {
    env = parseEnvelopedData(sd.eContent);
  } catch {
    out.envelope = 'content is not an EnvelopedData';
    return out;
  }
  const ri = env.recipients[0];
  out.envelope = {
    cipher: CIPHER_NAMES[env.contentEncryptionAlgorithm] ?? oidName(env.contentEncryptionAlgorithm),
    keyTransport: ri ? keyTransportName(ri.keyEncryptionAlgorithm, ri.oaepHash) : 'none',
    recipients: env.recipients.map((x) => ridText(x.rid)),
  };
  if (!key) return out;

  const { content } = decryptWithKey(env, key);
  if (mt === MessageType.PKCSReq || mt === MessageType.RenewalReq) {
    const csr = parseCsr(content);
    out.csr = {
      subject: nameText(csr.subjectRaw),
      subjectAltNames: csr.subjectAltNames.map(sanText),
      key: `${csr.keyType} ${csr.keyBits}`,
      challenge: csr.challengePassword !== undefined ? 'present' : 'absent',
      signature: verifyCsrSignature(csr) ? 'valid' : 'INVALID',
    };
  } else if (mt === MessageType.CertPoll) {
    const p = parseIssuerAndSubject(content);
    out.issuerAndSubject = { issuer: nameText(p.issuerRaw), subject: nameText(p.subjectRaw) };
  } else if (mt === MessageType.GetCert || mt === MessageType.GetCRL) {
    const p = parseIssuerAndSerial(content);
    out.issuerAndSerial = { issuer: nameText(p.issuerRaw), serial: p.serial.toString('hex') };
  } else if (mt === MessageType.CertRep) {
    const d = parseDegenerate(content);
    out.issued = d.certificates.map(certSummary);
    out.crls = d.crls.length;
  } else {
    out.content = `${content.length} bytes`;
  }
  return out;
}

function toText(o: Record<string, unknown>, indent = ''): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (Array.isArray(v)) {
      if (v.length === 0) lines.push(`${indent}${k}: (none)`);
      else if (v.every((x) => typeof x !== 'object'))
        lines.push(`${indent}${k}: ${v.map((x) => escapeText(String(x))).join(', ')}`);
      else {
        lines.push(`${indent}${k}:`);
        v.forEach((x, i) => {
          lines.push(`${indent}  [${i}]`);
          lines.push(toText(x as Record<string, unknown>, `${indent}    `));
        });
      }
    } else if (v !== null && typeof v === 'object') {
      lines.push(`${indent}${k}:`);
      lines.push(toText(v as Record<string, unknown>, `${indent}  `));
    } else {
      lines.push(`${indent}${k}: ${escapeText(String(v))}`);
    }
  }
  return lines.join('\n');
}

function loadKey(path: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch {
    throw new Error(`cannot read the key file ${path}`);
  }
  try {
    const k = createPrivateKey(pem[0] === 0x30 ? { key: pem, format: 'der', type: 'pkcs8' } : pem);
    if (k.asymmetricKeyType !== 'rsa') throw new Error('not RSA');
    return k;
  } catch {
    throw new Error(`${path} is not an unencrypted RSA private key`);
  }
}

async function readInput(file: string): Promise<Buffer> {
  if (file !== '-') {
    try {
      const b = readFileSync(file);
      if (b.length > MAX_INPUT) throw new Error('too large');
      return b;
    } catch (e) {
      throw new Error(
        e instanceof Error && e.message === 'too large' ? `${file} is too large` : `cannot read ${file}`,
      );
    }
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    const b = c as Buffer;
    n += b.length;
    if (n > MAX_INPUT) throw new Error('input is too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'decode a captured SCEP message (optionally decrypting it)',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(argv, { key: { type: 'string' }, json: { type: 'boolean' } }, true);
    if (p.positionals.length !== 1) throw new UsageError('give exactly one FILE (or - for stdin)');
    const keyPath = str(p, 'key');
    const key = keyPath ? loadKey(keyPath) : undefined;
    const data = await readInput(p.positionals[0]!);
    let info: Record<string, unknown>;
    try {
      info = inspectMessage(data, key);
    } catch (e) {
      // One line, no stack: the main dispatcher prints "scepter inspect: <reason>".
      throw new Error((e instanceof Error ? e.message : String(e)).split('\n')[0]);
    }
    process.stdout.write(
      flag(p, 'json') ? escapeJsonText(JSON.stringify(info, null, 2)) + '\n' : toText(info) + '\n',
    );
    return 0;
  },
};
