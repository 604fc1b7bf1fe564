/**
 * The transient self-signed certificate a SCEP client signs its first request with
 * (RFC 8894 §2.3): keyUsage digitalSignature + keyEncipherment, random positive serial.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import type { DigestName } from '../crypto/algorithms.js';
import { buildCertificate, wholeSeconds } from './certificate-builder.js';
import { buildKeyUsage, buildSubjectKeyIdentifier, keyIdentifier, type KeyUsageName } from './extensions.js';
import { buildName } from './name.js';
import { createSigner } from './signature.js';

export interface SelfSignedOptions {
  /** Name text or Name DER. */
  subject: string | Buffer;
  /** Private key (signs the certificate). */
  key: KeyObject;
  publicKey: KeyObject;
  /** Validity in days from one minute ago; default 30. */
  days?: number;
  digest?: DigestName;
  /** Default digitalSignature + keyEncipherment. */
  keyUsage?: KeyUsageName[];
}

/** A positive random serial of 16 octets (top bit clear, never zero). */
function serial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

/** Builds the self-signed signer certificate (DER). */
export function buildSelfSignedCertificate(o: SelfSignedOptions): Buffer {
  const name = typeof o.subject === 'string' ? buildName(o.subject) : o.subject;
  const spki = o.publicKey.export({ type: 'spki', format: 'der' });
  const notBefore = wholeSeconds(new Date(Date.now() - 60_000));
  const notAfter = new Date(notBefore.getTime() + (o.days ?? 30) * 86_400_000);
  return buildCertificate(
    {
      serial: serial(),
      issuerRaw: name,
      subjectRaw: name,
      spki,
      notBefore,
      notAfter,
      extensions: [
        buildKeyUsage(o.keyUsage ?? ['digitalSignature', 'keyEncipherment']),
        buildSubjectKeyIdentifier(keyIdentifier(spki)),
      ],
    },
    createSigner(o.key, o.digest ?? 'sha256'),
  );
}
