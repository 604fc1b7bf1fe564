/**
 * Algorithm and method negotiation from GetCACaps (RFC 8894 §3.5.2, §2.9).
 *
 * - Cipher: AES-256-CBC when `AES` or `SCEPStandard` is offered (Go pkcs7-based servers open
 *   AES-256-CBC but not always AES-128-CBC), else DES3, which every known server accepts
 *   whether advertised or not (§7.5). Never single DES.
 * - Digest: SHA-256 when `SHA-256` or `SCEPStandard` is offered, else SHA-512 if offered, else
 *   SHA-1 (the historical default). Never MD5.
 * - PKIOperation over POST when `POSTPKIOperation` or `SCEPStandard` is offered, else GET.
 */
import type { CipherName, DigestName } from '../crypto/algorithms.js';
import { hasCapability, parseCapabilities, type Capability } from '../scep/capabilities.js';
import { ScepArgumentError } from './errors.js';

/** What a server advertised: the raw keywords (for display) and the known ones. */
export class Capabilities {
  /** Keywords exactly as the server wrote them (printable, trimmed, at most 100). */
  readonly keywords: readonly string[];
  private readonly known: Set<string>;

  private constructor(keywords: string[], known: Set<string>) {
    this.keywords = keywords;
    this.known = known;
  }

  /**
   * Parses a GetCACaps body: keywords separated by LF or CRLF, any case; unknown keywords
   * are kept for display only. The Content-Type is ignored. Empty means "no capabilities".
   */
  static parse(body: string): Capabilities {
    const raw = body
      .slice(0, 16 * 1024)
      .split(/\r?\n|\r/)
      .map((s) => s.trim())
      .filter((s) => s !== '' && s.length <= 100 && /^[\x21-\x7e]+$/.test(s))
      .slice(0, 100);
    return new Capabilities(raw, parseCapabilities(raw.join('\n')));
  }

  /** Case-insensitive test; `SCEPStandard` implies AES, POSTPKIOperation and SHA-256. */
  has(keyword: Capability): boolean {
    return hasCapability(this.known, keyword);
  }
}

export interface Negotiated {
  cipher: CipherName;
  digest: DigestName;
  /** POST for PKIOperation (else GET with `message=`). */
  post: boolean;
}

/** Chooses cipher, digest and method; explicit overrides win (single DES is refused). */
export function negotiate(
  caps: Capabilities,
  override: { cipher?: CipherName; digest?: DigestName } = {},
): Negotiated {
  let cipher: CipherName = caps.has('AES') ? 'aes256' : 'des3';
  if (override.cipher !== undefined) {
    if (override.cipher === 'des')
      throw new ScepArgumentError('single-des-refused', 'single DES is never used to encrypt requests');
    cipher = override.cipher;
  }
  let digest: DigestName = 'sha1';
  if (caps.has('SHA-256')) digest = 'sha256';
  else if (caps.has('SHA-512')) digest = 'sha512';
  if (override.digest !== undefined) digest = override.digest;
  return { cipher, digest, post: caps.has('POSTPKIOperation') };
}
