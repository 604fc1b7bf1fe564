/**
 * `ScepClient`: the SCEP (RFC 8894) client library.
 *
 * One instance talks to one server URL. It reads GetCACaps and GetCACert once (cached),
 * authenticates the CA (pinned fingerprint, else trust on first use with the fingerprint
 * reported), negotiates cipher/digest/method, and verifies every CertRep: signature by the
 * CA or an RA certificate that chains to it, messageType, transactionID and recipientNonce.
 *
 * Single DES: micromdm `scepserver` (and other Go pkcs7-based servers) answer every CertRep
 * in single DES whatever the request used. By default the client still opens such a reply
 * (the one place single DES is ever accepted; requests are never encrypted with it) and
 * reports it as `insecureCipher: 'des'` so callers can say so. `allowSingleDesReplies: false`
 * refuses them instead.
 */
import { generateKeyPair, randomBytes, createPublicKey, type KeyObject } from 'node:crypto';
import * as r from '../asn1/reader.js';
import type { CipherName, DigestName } from '../crypto/algorithms.js';
import type { KeyTransport } from '../cms/index.js';
import {
  normalizeSerial,
  parseCertificate,
  verifyCertificateSignature,
  type Certificate,
} from '../pkix/certificate.js';
import { buildCsr } from '../pkix/csr.js';
import { parseSanSpec, subjectAltNamesOf, type GeneralName } from '../pkix/extensions.js';
import { buildName } from '../pkix/name.js';
import { buildSelfSignedCertificate } from '../pkix/self-signed.js';
import { verifySignature } from '../pkix/signature.js';
import { decodeCertRep, encodePkiRequest, type CertRep } from '../scep/client.js';
import { parseCaCertResponse, parseNextCaCertResponse } from '../scep/ca-certs.js';
import { buildIssuerAndSerial, buildIssuerAndSubject } from '../scep/message-data.js';
import { encodeGetMessage } from '../scep/get-message.js';
import { MessageType, PkiStatus, ScepError } from '../scep/types.js';
import { classifyCaCertificates, parseFingerprint, type CaCertificates } from './ca-certs.js';
import {
  ScepArgumentError,
  ScepFailureError,
  ScepPendingTimeoutError,
  ScepProtocolError,
  ScepTransportError,
  sanitize,
} from './errors.js';
import { Capabilities, negotiate, type Negotiated } from './negotiate.js';
import { fetchTrusting, safeUrl, Transport, type FetchLike } from './transport.js';

export interface ScepClientOptions {
  /** The SCEP endpoint, e.g. `http://ca.example/scep` or `…/cgi-bin/pkiclient.exe`. */
  url: string;
  /** SHA-256 fingerprint of a CA certificate (`sha256:AB:CD…` or hex): pins the CA. */
  caFingerprint?: string;
  /** Sent as `message=` with GetCACaps/GetCACert/GetNextCACert (a CA identifier). */
  caIdentifier?: string;
  /** Per-attempt HTTP timeout, ms. Default 30 000. */
  timeoutMs?: number;
  /** Retries of transport failures (connect, timeout, 429/502/503/504). Default 2. */
  retries?: number;
  /** Base backoff between retries, ms (doubled per attempt, jittered). Default 500. */
  backoffMs?: number;
  /** Replacement for the global `fetch`. */
  fetch?: FetchLike;
  /**
   * CA certificate(s), PEM, to trust for an https:// URL instead of the system store (a
   * private TLS CA). Ignored when `fetch` is given.
   */
  tlsCa?: string | Buffer;
  /** Force a content cipher instead of negotiating (never single DES). */
  cipher?: Exclude<CipherName, 'des'>;
  /** Force a digest instead of negotiating. */
  digest?: DigestName;
  /** RSA key transport for our requests. Default PKCS#1 v1.5 (what every server opens). */
  keyTransport?: KeyTransport;
  /** Open CertReps encrypted with single DES (reported as `insecureCipher`). Default true. */
  allowSingleDesReplies?: boolean;
}

export type KeySize = 2048 | 3072 | 4096;

/**
 * Type of a generated key: RSA (`keySize` bits), or EC on P-256 / P-384. An EC key's
 * CertRep comes back to the challengePassword (PasswordRecipientInfo, RFC 8894 §3.1) or, with
 * no challenge (renewal, polling), by ECDH key agreement (a scepter server extension).
 */
export type KeyType = 'rsa' | 'ec-p256' | 'ec-p384';

export interface EnrollOptions {
  /** Subject DN text (`CN=dev1,O=Acme`) or Name DER. */
  subject: string | Buffer;
  /** subjectAltNames: a spec (`dns:a,ip:1.2.3.4`) or parsed names. */
  sans?: string | GeneralName[];
  /** challengePassword; omitted from the CSR when undefined. */
  challenge?: string;
  /** Use this RSA or EC (P-256, P-384) private key, else a new one of `keyType`. */
  key?: KeyObject;
  /** Default 'rsa'. */
  keyType?: KeyType;
  /** RSA bits of a generated key (default 2048). */
  keySize?: KeySize;
}

export interface RenewOptions {
  /** The current certificate (from this CA) and its key: they sign the request. */
  cert: Certificate;
  key: KeyObject;
  /** A new key (KeyObject), `true` for a fresh one of `keyType`, or absent to keep the key. */
  newKey?: KeyObject | boolean;
  /** Type of a fresh new key; default: the type of `key`. */
  keyType?: KeyType;
  keySize?: KeySize;
  /** Some servers (micromdm) want the challenge on renewal too. */
  challenge?: string;
  /** Default: the subject of `cert`. */
  subject?: string | Buffer;
  /** Default: the subjectAltNames of `cert`. */
  sans?: string | GeneralName[];
}

/** Details common to every CertRep the client accepted. */
export interface ReplyInfo {
  transactionId: string;
  /** The negotiated request algorithms and method. */
  negotiated: Negotiated;
  /** The reply's content cipher, when it had an envelope. */
  replyCipher?: CipherName;
  /** Set when the server answered with single DES (opened as a documented fallback). */
  insecureCipher?: 'des';
}

export interface IssuedResult extends ReplyInfo {
  status: 'issued';
  /** The issued certificate (the reply certificate holding our public key). */
  certificate: Certificate;
  /** The CA chain, issuing CA first. */
  chain: Certificate[];
  /** The private key of `certificate`. */
  key: KeyObject;
  /** Whether the request was a RenewalReq, a PKCSReq, or a renewal sent as PKCSReq. */
  via: 'PKCSReq' | 'RenewalReq' | 'PKCSReq-renewal';
}

/** A request the server holds for approval; pass it to `poll()`. */
export interface PendingResult extends ReplyInfo {
  status: 'pending';
  /** The key the certificate will be for. */
  key: KeyObject;
  /** The certificate and key that signed the request (the reply is encrypted to it). */
  signer: { cert: Certificate; key: KeyObject };
  /** IssuerAndSubject for CertPoll. */
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  via: IssuedResult['via'];
}

export type EnrollResult = IssuedResult | PendingResult;

export interface WaitOptions {
  /** Delay between polls, ms. Default 30 000. */
  intervalMs?: number;
  /** Give up after this long, ms. Default 1 hour. */
  timeoutMs?: number;
  /** Give up after this many polls. Default unlimited (time-bounded). */
  maxPolls?: number;
  /** Called before each poll (for progress output). */
  onPoll?: (n: number, elapsedMs: number) => void;
  signal?: AbortSignal;
}

const MAX_BODY = 1024 * 1024;

/** A new RSA key pair with node:crypto. */
export function generateRsaKey(bits: KeySize = 2048): Promise<KeyObject> {
  if (![2048, 3072, 4096].includes(bits))
    return Promise.reject(new Error('key size must be 2048, 3072 or 4096'));
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) =>
      err ? reject(err) : resolve(priv),
    );
  });
}

/** A new EC key pair on P-256 or P-384 with node:crypto. */
export function generateEcKey(curve: 'P-256' | 'P-384'): Promise<KeyObject> {
  const namedCurve = curve === 'P-256' ? 'prime256v1' : curve === 'P-384' ? 'secp384r1' : '';
  if (!namedCurve) return Promise.reject(new Error('EC curve must be P-256 or P-384'));
  return new Promise((resolve, reject) => {
    generateKeyPair('ec', { namedCurve }, (err, _pub, priv) => (err ? reject(err) : resolve(priv)));
  });
}

/** A new key of `type` (RSA of `bits`, default 2048). */
function generateKey(type: KeyType, bits?: KeySize): Promise<KeyObject> {
  if (type === 'ec-p256') return generateEcKey('P-256');
  if (type === 'ec-p384') return generateEcKey('P-384');
  return generateRsaKey(bits ?? 2048);
}

/** The KeyType of a key, or undefined when SCEP cannot use it (other types and curves). */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  if (key.type !== 'private') return undefined;
  if (key.asymmetricKeyType === 'rsa') return 'rsa';
  if (key.asymmetricKeyType !== 'ec') return undefined;
  const c = key.asymmetricKeyDetails?.namedCurve;
  return c === 'prime256v1' ? 'ec-p256' : c === 'secp384r1' ? 'ec-p384' : undefined;
}

function usableKey(key: KeyObject, what: string): void {
  if (!keyTypeOf(key))
    throw new ScepArgumentError('not-rsa-key', `${what} needs an RSA or an EC (P-256, P-384) private key`);
}

/** ECDSA has no SHA-1/SHA-224 signatures here: EC signers use at least SHA-256. */
function digestFor(key: KeyObject, d: DigestName): DigestName {
  return key.asymmetricKeyType === 'ec' && (d === 'sha1' || d === 'sha224') ? 'sha256' : d;
}

function spkiOfKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

function newTransactionId(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

function serialBytes(serial: string | Buffer): Buffer {
  if (Buffer.isBuffer(serial)) return serial;
  let hex: string;
  try {
    hex = serial.length <= 100 ? normalizeSerial(serial) : '';
  } catch {
    hex = '';
  }
  if (hex === '' || hex.length > 80)
    throw new ScepArgumentError('invalid-serial', 'a serial number must be hex digits');
  // Minimal INTEGER content octets of a positive number: a 0x00 in front when the top bit is set.
  const b = Buffer.from(hex, 'hex');
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Verifies a CRL (CertificateList DER) signature under `issuer`. */
export function verifyCrlSignature(crl: Buffer, issuer: Certificate): boolean {
  try {
    const top = new r.Cursor(r.expectTag(r.parse(crl), 0x30, 'CertificateList'));
    const tbs = top.expect(0x30, 'tbsCertList');
    const alg = new r.Cursor(top.expect(0x30, 'signatureAlgorithm'));
    const sig = r.bitString(top.expect(r.TAG.BIT_STRING, 'signatureValue'));
    top.end('CertificateList');
    const oid = r.oid(alg.expect(r.TAG.OID, 'algorithm'));
    const params = alg.peek();
    return verifySignature(
      oid,
      params ? r.raw(params) : undefined,
      r.raw(tbs),
      issuer.publicKey(),
      sig.bytes,
    );
  } catch {
    return false;
  }
}

/**
 * The CAs whose signature is accepted on a certificate or CRL returned by GetCert/GetCRL:
 * every authenticated CA of the GetCACert answer, plus the issuer the caller named.
 */
function issuersFor(ca: CaCertificates, issuer: Certificate | undefined): Certificate[] {
  return issuer ? [issuer, ...ca.cas] : ca.cas;
}

function notSignedBy(issuer: Certificate | undefined): string {
  return issuer
    ? 'is signed neither by the CA nor by the given issuer'
    : "is not signed by the CA (a retired CA's certificate or CRL needs that CA's certificate as issuer)";
}

/** The SCEP client. Safe to reuse for many operations against one server. */
export class ScepClient {
  private readonly transport: Transport;
  private readonly pin: string | undefined;
  private caps: Capabilities | undefined;
  private caCerts: CaCertificates | undefined;

  constructor(private readonly opts: ScepClientOptions) {
    if (!/^https?:\/\//i.test(opts.url))
      throw new ScepArgumentError('invalid-url', 'the SCEP URL must start with http:// or https://');
    this.pin = opts.caFingerprint === undefined ? undefined : parseFingerprint(opts.caFingerprint);
    this.transport = new Transport({
      url: opts.url,
      timeoutMs: opts.timeoutMs ?? 30_000,
      retries: opts.retries ?? 2,
      backoffMs: opts.backoffMs ?? 500,
      fetch: opts.fetch ?? (opts.tlsCa !== undefined ? fetchTrusting(opts.tlsCa) : (u, i) => fetch(u, i)),
      maxBodyBytes: MAX_BODY,
    });
  }

  private caIdent(): string | undefined {
    return this.opts.caIdentifier === undefined ? undefined : encodeURIComponent(this.opts.caIdentifier);
  }

  /**
   * GetCACaps. A server error or an empty body means "no capabilities" (RFC 8894 §3.5.2);
   * only connect errors and timeouts throw. Cached after the first call.
   */
  async getCaCaps(refresh = false): Promise<Capabilities> {
    if (this.caps && !refresh) return this.caps;
    let text = '';
    try {
      const rep = await this.transport.get('GetCACaps', this.caIdent());
      text = rep.body.toString('utf8');
    } catch (e) {
      if (!(e instanceof ScepTransportError) || e.status === undefined) throw e;
    }
    this.caps = Capabilities.parse(text);
    return this.caps;
  }

  /**
   * GetCACert: the CA (and RA) certificates, authenticated against the pinned fingerprint
   * (or trusted on first use), classified into issuing CA, encryption and signing certs.
   */
  async getCaCert(refresh = false): Promise<CaCertificates> {
    if (this.caCerts && !refresh) return this.caCerts;
    const rep = await this.transport.get('GetCACert', this.caIdent());
    let certs: Certificate[];
    try {
      certs = parseCaCertResponse(rep.contentType, rep.body);
    } catch (e) {
      // Not an x-x509-ca(-ra)-cert answer at all: most likely a URL that is not a SCEP endpoint
      // (a health check, a web page). Say that instead of a DER parser's complaint.
      if (!/^application\/(x-x509-ca(-ra)?-cert|pkcs7-mime|x-pkcs7)/i.test(rep.contentType)) {
        throw new ScepProtocolError(
          'bad-ca-certs',
          `GetCACert: ${safeUrl(this.opts.url)} answered ${sanitize(rep.contentType || 'no Content-Type', 80)}, not CA certificates: is it a SCEP endpoint? (e.g. http://host:8080/scep)`,
          { cause: e },
        );
      }
      throw new ScepProtocolError(
        'bad-ca-certs',
        `GetCACert: ${e instanceof Error ? e.message : 'undecodable answer'}`,
        {
          cause: e,
        },
      );
    }
    this.caCerts = classifyCaCertificates(certs, this.pin);
    return this.caCerts;
  }

  /**
   * GetNextCACert: the rollover CA certificate(s), accepted only when signed by the current
   * (authenticated) CA or RA.
   */
  async getNextCaCert(): Promise<Certificate[]> {
    const ca = await this.getCaCert();
    const rep = await this.transport.get('GetNextCACert', this.caIdent());
    try {
      return parseNextCaCertResponse(rep.body, [...ca.caChain, ...ca.signers]);
    } catch (e) {
      throw new ScepProtocolError(
        'bad-next-ca-cert',
        `GetNextCACert: ${e instanceof Error ? e.message : 'rejected'}`,
        {
          cause: e,
        },
      );
    }
  }

  /** PKCSReq with a challenge, signed by a transient self-signed certificate of the new key. */
  async enroll(o: EnrollOptions): Promise<EnrollResult> {
    const key = o.key ?? (await generateKey(o.keyType ?? 'rsa', o.keySize));
    usableKey(key, 'enroll');
    const subjectRaw = typeof o.subject === 'string' ? buildName(o.subject) : o.subject;
    const publicKey = createPublicKey(key);
    const signerCert = parseCertificate(
      buildSelfSignedCertificate({ subject: subjectRaw, key, publicKey, days: 7 }),
    );
    return this.certRequest({
      messageType: MessageType.PKCSReq,
      via: 'PKCSReq',
      subjectRaw,
      sans: typeof o.sans === 'string' ? parseSanSpec(o.sans) : (o.sans ?? []),
      challenge: o.challenge,
      key,
      signer: { cert: signerCert, key },
    });
  }

  /**
   * Renews `cert`: a RenewalReq signed by it when the server advertises `Renewal`, else a
   * PKCSReq signed by it (the legacy renewal sscep and certmonger send). The reply is
   * encrypted to the current certificate's key.
   */
  async renew(o: RenewOptions): Promise<EnrollResult> {
    const caps = await this.getCaCaps();
    let key = o.key;
    usableKey(o.key, 'renew');
    if (o.newKey === true) key = await generateKey(o.keyType ?? keyTypeOf(o.key) ?? 'rsa', o.keySize);
    else if (o.newKey) key = o.newKey;
    usableKey(key, 'renew');
    if (!spkiOfKey(o.key).equals(o.cert.spki))
      throw new ScepArgumentError('key-cert-mismatch', 'the key does not belong to the certificate');
    const subjectRaw =
      o.subject === undefined
        ? o.cert.subjectRaw
        : typeof o.subject === 'string'
          ? buildName(o.subject)
          : o.subject;
    const sans =
      o.sans === undefined
        ? subjectAltNamesOf(o.cert)
        : typeof o.sans === 'string'
          ? parseSanSpec(o.sans)
          : o.sans;
    const renewal = caps.has('Renewal');
    return this.certRequest({
      messageType: renewal ? MessageType.RenewalReq : MessageType.PKCSReq,
      via: renewal ? 'RenewalReq' : 'PKCSReq-renewal',
      subjectRaw,
      sans,
      challenge: o.challenge,
      key,
      signer: { cert: o.cert, key: o.key },
    });
  }

  /** One CertPoll (IssuerAndSubject, same transactionID and signer) for a pending request. */
  async poll(p: PendingResult): Promise<EnrollResult> {
    const content = buildIssuerAndSubject({ issuerRaw: p.issuerRaw, subjectRaw: p.subjectRaw });
    const { rep, info } = await this.exchange(MessageType.CertPoll, content, p.signer, p.transactionId);
    return this.enrollOutcome(rep, info, p.key, p.signer, p.issuerRaw, p.subjectRaw, p.via);
  }

  /**
   * Polls a pending request until it is issued (returned), refused (ScepFailureError) or the
   * time/count limit passes (ScepPendingTimeoutError).
   */
  async waitForCertificate(p: PendingResult, w: WaitOptions = {}): Promise<IssuedResult> {
    const interval = w.intervalMs ?? 30_000;
    const deadline = Date.now() + (w.timeoutMs ?? 3_600_000);
    const started = Date.now();
    let cur: EnrollResult = p;
    let n = 0;
    while (cur.status === 'pending') {
      if (Date.now() + interval > deadline || (w.maxPolls !== undefined && n >= w.maxPolls)) {
        throw new ScepPendingTimeoutError(p.transactionId, n);
      }
      await sleep(interval, w.signal);
      n++;
      w.onPoll?.(n, Date.now() - started);
      cur = await this.poll(cur);
    }
    return cur;
  }

  /**
   * GetCert: the certificate with this issuer and serial. Signed with `signer` when given,
   * else with a transient self-signed certificate of a fresh key.
   *
   * The CertRep must be signed by the current CA or RA, as every reply. The certificate in it
   * must be signed by a CA of the GetCACert answer, or by `issuer`: the certificate of the CA
   * that issued it, which the caller vouches for — e.g. a retired CA's certificate kept from
   * before a rollover (the server no longer sends it). `issuer` also names the issuer in the
   * request unless `issuerRaw` is given.
   */
  async getCert(
    serial: string | Buffer,
    o: { issuerRaw?: Buffer; issuer?: Certificate; signer?: { cert: Certificate; key: KeyObject } } = {},
  ): Promise<Certificate> {
    const ca = await this.getCaCert();
    const issuerRaw = o.issuerRaw ?? o.issuer?.subjectRaw ?? ca.ca.subjectRaw;
    const serialOctets = serialBytes(serial);
    const signer = o.signer ?? (await this.transientSigner());
    const content = buildIssuerAndSerial({ issuerRaw, serial: serialOctets });
    const { rep, info } = await this.exchange(MessageType.GetCert, content, signer, newTransactionId());
    this.throwUnlessSuccess(rep, info);
    const want = BigInt('0x' + serialOctets.toString('hex'));
    const cert = rep.certificates.find((c) => BigInt('0x' + (c.serialHex || '0')) === want);
    if (!cert)
      throw new ScepProtocolError(
        'certificate-missing',
        'the GetCert reply does not hold the requested certificate',
      );
    if (!issuersFor(ca, o.issuer).some((c) => verifyCertificateSignature(cert, c.publicKey()))) {
      throw new ScepProtocolError(
        'not-signed-by-ca',
        `the certificate returned by GetCert ${notSignedBy(o.issuer)}`,
      );
    }
    return cert;
  }

  /**
   * GetCRL for the certificate named by issuer and serial (default issuer: `o.issuer`, else
   * the CA). Returns the CRL DER. The CertRep must be signed by the current CA or RA; the CRL
   * must be signed by a CA of the GetCACert answer or by `o.issuer`, the certificate of the
   * CA that issued the target, which the caller vouches for (e.g. a retired CA after a
   * rollover, whose CRL the server still publishes).
   */
  async getCrl(
    target: { serial: string | Buffer; issuerRaw?: Buffer } | Certificate,
    o: { issuer?: Certificate; signer?: { cert: Certificate; key: KeyObject } } = {},
  ): Promise<{ crl: Buffer } & ReplyInfo> {
    const ca = await this.getCaCert();
    const issuerRaw = target.issuerRaw ?? o.issuer?.subjectRaw ?? ca.ca.subjectRaw;
    const serialOctets = 'der' in target ? target.serial : serialBytes(target.serial);
    const signer = o.signer ?? (await this.transientSigner());
    const content = buildIssuerAndSerial({ issuerRaw, serial: serialOctets });
    const { rep, info } = await this.exchange(MessageType.GetCRL, content, signer, newTransactionId());
    this.throwUnlessSuccess(rep, info);
    const crl = rep.crls[0];
    if (!crl) throw new ScepProtocolError('crl-missing', 'the GetCRL reply holds no CRL');
    if (!issuersFor(ca, o.issuer).some((c) => verifyCrlSignature(crl, c))) {
      throw new ScepProtocolError('not-signed-by-ca', `the CRL ${notSignedBy(o.issuer)}`);
    }
    return { crl, ...info };
  }

  // -------------------------------------------------------------------------------------

  private async transientSigner(): Promise<{ cert: Certificate; key: KeyObject }> {
    const key = await generateRsaKey(2048);
    const cert = parseCertificate(
      buildSelfSignedCertificate({
        subject: 'CN=scepter client',
        key,
        publicKey: createPublicKey(key),
        days: 1,
      }),
    );
    return { cert, key };
  }

  private async certRequest(o: {
    messageType: MessageType.PKCSReq | MessageType.RenewalReq;
    via: IssuedResult['via'];
    subjectRaw: Buffer;
    sans: GeneralName[];
    challenge: string | undefined;
    key: KeyObject;
    signer: { cert: Certificate; key: KeyObject };
  }): Promise<EnrollResult> {
    const caps = await this.getCaCaps();
    const ca = await this.getCaCert();
    const { digest } = negotiate(caps, this.overrides());
    const csr = buildCsr({
      subject: o.subjectRaw,
      key: o.key,
      publicKey: createPublicKey(o.key),
      digest: digest === 'sha1' || digest === 'sha224' ? 'sha256' : digest,
      ...(o.challenge !== undefined ? { challengePassword: o.challenge } : {}),
      ...(o.sans.length > 0 ? { subjectAltNames: o.sans } : {}),
    });
    const { rep, info } = await this.exchange(o.messageType, csr, o.signer, newTransactionId(), o.challenge);
    return this.enrollOutcome(rep, info, o.key, o.signer, ca.ca.subjectRaw, o.subjectRaw, o.via);
  }

  private overrides(): { cipher?: CipherName; digest?: DigestName } {
    const out: { cipher?: CipherName; digest?: DigestName } = {};
    if (this.opts.cipher) out.cipher = this.opts.cipher;
    if (this.opts.digest) out.digest = this.opts.digest;
    return out;
  }

  private throwUnlessSuccess(rep: CertRep, info: ReplyInfo): void {
    if (rep.status === PkiStatus.FAILURE) {
      throw new ScepFailureError({
        failInfo: rep.failInfo,
        failInfoText: rep.failInfoText,
        transactionId: info.transactionId,
      });
    }
    if (rep.status === PkiStatus.PENDING)
      throw new ScepProtocolError('unexpected-pending', 'the server answered PENDING to a query');
  }

  private enrollOutcome(
    rep: CertRep,
    info: ReplyInfo,
    key: KeyObject,
    signer: { cert: Certificate; key: KeyObject },
    issuerRaw: Buffer,
    subjectRaw: Buffer,
    via: IssuedResult['via'],
  ): EnrollResult {
    if (rep.status === PkiStatus.FAILURE) {
      throw new ScepFailureError({
        failInfo: rep.failInfo,
        failInfoText: rep.failInfoText,
        transactionId: info.transactionId,
      });
    }
    if (rep.status === PkiStatus.PENDING) {
      return { status: 'pending', ...info, key, signer, issuerRaw, subjectRaw, via };
    }
    const ca = this.caCerts!;
    const spki = spkiOfKey(key);
    const certificate = rep.certificates.find((c) => c.spki.equals(spki));
    if (!certificate)
      throw new ScepProtocolError('certificate-missing', 'the reply holds no certificate for our public key');
    if (!ca.caChain.some((c) => verifyCertificateSignature(certificate, c.publicKey()))) {
      throw new ScepProtocolError('not-signed-by-ca', 'the issued certificate is not signed by the CA');
    }
    return { status: 'issued', ...info, certificate, chain: ca.caChain, key, via };
  }

  /** Sends one PKIOperation and returns the authenticated, decrypted CertRep. */
  private async exchange(
    messageType: MessageType,
    content: Buffer,
    signer: { cert: Certificate; key: KeyObject },
    transactionId: string,
    challenge?: string,
  ): Promise<{ rep: CertRep; info: ReplyInfo }> {
    const caps = await this.getCaCaps();
    const ca = await this.getCaCert();
    const negotiated = negotiate(caps, this.overrides());
    const { der, senderNonce } = encodePkiRequest({
      messageType,
      transactionId,
      signerCert: signer.cert,
      signerKey: signer.key,
      digest: digestFor(signer.key, negotiated.digest),
      recipient: ca.encryption,
      cipher: negotiated.cipher,
      ...(this.opts.keyTransport ? { keyTransport: this.opts.keyTransport } : {}),
      content,
    });
    const http = negotiated.post
      ? await this.transport.post('PKIOperation', der)
      : await this.transport.get('PKIOperation', encodeGetMessage(der));
    let rep: CertRep;
    try {
      rep = decodeCertRep(http.body, {
        transactionId,
        senderNonce,
        trustedSigners: ca.signers,
        // An EC signer's reply comes to the challenge we sent (PWRI) or by key agreement.
        decrypt:
          challenge !== undefined && signer.key.asymmetricKeyType !== 'rsa'
            ? Object.assign({}, signer, { password: Buffer.from(challenge, 'utf8') })
            : signer,
        allowSingleDes: this.opts.allowSingleDesReplies !== false,
      });
    } catch (e) {
      const why = e instanceof ScepError || e instanceof Error ? sanitize(e.message) : 'undecodable';
      throw new ScepProtocolError('bad-reply', `rejected the server's reply: ${why}`, { cause: e });
    }
    const info: ReplyInfo = { transactionId, negotiated };
    if (rep.cipher !== undefined) info.replyCipher = rep.cipher;
    if (rep.cipher === 'des') info.insecureCipher = 'des';
    return { rep, info };
  }
}
