/**
 * CA rollover (RFC 8894 §4.7): a next CA is staged in `DIR/ca/next/`, announced to clients by
 * GetNextCACert while it is staged, and made current by `activate`:
 *
 *   DIR/ca/next/ca.key     the next CA's key (0600, same passphrase protection as ca.key)
 *   DIR/ca/next/ca.crt     its self-signed certificate
 *   DIR/ca/next/ra.key     RA mode only: the next RA key ...
 *   DIR/ca/next/ra.crt     ... and its certificate, issued by the next CA
 *   DIR/ca/next/cross.crt  the next CA's key certified by the current CA (for relying parties
 *                          that only trust the current root; not served over SCEP)
 *
 * The next CA gets a different subject from the current one (a generation suffix " G<n>" on
 * its CN by default), because issuer lookups (GetCert, GetCRL, CertPoll, renewal) select CAs
 * by Name first.
 *
 * `activate` copies the current CA files to `DIR/ca/previous/<sha256 fingerprint>/` (the layout
 * src/ca/authorities.ts loads, so the old CA keeps serving its certificates, renewals,
 * revocations and CRL) and renames the staged files into place, `ca.crt` last. Every step is
 * a copy or an atomic rename, and a run interrupted half way can simply be repeated.
 *
 * A named CA (ca-location.ts) rolls over the same way inside its own directory `DIR/cas/NAME/`.
 */
import { KeyObject } from 'node:crypto';
import { keyHandle, type PrivateKeyHandle } from '../crypto/private-key.js';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate, toPem, type Certificate } from '../pkix/certificate.js';
import { buildCertificate, wholeSeconds } from '../pkix/certificate-builder.js';
import {
  buildAuthorityKeyIdentifier,
  buildBasicConstraints,
  buildKeyUsage,
  buildSubjectKeyIdentifier,
  keyIdentifier,
} from '../pkix/extensions.js';
import { buildName, formatName, namesEqual, parseName, type ParsedName } from '../pkix/name.js';
import { OID } from '../asn1/oids.js';
import { createSigner } from '../pkix/signature.js';
import { previousCaDir } from './authorities.js';
import { caCommandArgs, type CaLocation } from './ca-location.js';
import { fsyncDir, writeFileDurably } from './durable-file.js';
import { caDigest, caKeyUsage, CaError, CertificateAuthority, keyMatchesSpki } from './issuer.js';
import {
  buildRaCertificate,
  buildRootCertificate,
  caPaths,
  exportKey,
  caKeyTypeOf,
  loadCa,
  newCaKey,
  newRsaKey,
  readCertificates,
  readPrivateKey,
  writePublic,
  writeSecret,
  type CaKeySize,
} from './keystore.js';
import { randomSerial } from './serial.js';

export interface NextCaPaths {
  dir: string;
  key: string;
  cert: string;
  raKey: string;
  raCert: string;
  cross: string;
}

/** File locations of a staged next CA. */
export function nextCaPaths(at: CaLocation): NextCaPaths {
  const dir = join(caPaths(at).dir, 'next');
  return {
    dir,
    key: join(dir, 'ca.key'),
    cert: join(dir, 'ca.crt'),
    raKey: join(dir, 'ra.key'),
    raCert: join(dir, 'ra.crt'),
    cross: join(dir, 'cross.crt'),
  };
}

/** True when a next CA is staged (or a staging/activation was left half done). */
export function nextCaStaged(at: CaLocation): boolean {
  const p = nextCaPaths(at);
  return existsSync(p.cert) || existsSync(p.key);
}

export interface RolloverOptions {
  /** RSA modulus size of the new keys; default: the current CA key's size (else 3072). */
  keySize?: CaKeySize;
  /** Subject of the next CA; default the current subject with a generation suffix on its CN. */
  subject?: string;
  /** Validity of the next CA in days; default 3650. */
  days?: number;
  /** Passphrase of the current keys; the new keys are encrypted with it too. */
  passphrase?: string;
  /** Also write `cross.crt` (the next CA key certified by the current CA); default true. */
  cross?: boolean;
}

export interface RolloverResult {
  paths: NextCaPaths;
  caCert: Certificate;
  raCert?: Certificate;
  crossCert?: Certificate;
  encrypted: boolean;
}

/**
 * The Name with a generation suffix on its (last) CN: "X" → "X G2", "X G2" → "X G3". A Name
 * without a CN gets "CN=scepter CA G2" in front. Used for the next CA's and RA's subjects.
 */
export function nextGenerationName(raw: Buffer): string {
  const name: ParsedName = parseName(raw).map((rdn) => rdn.map((a) => ({ ...a })));
  let last: { value: string } | undefined;
  for (const rdn of name) for (const a of rdn) if (a.oid === OID.commonName) last = a;
  const bump = (cn: string) => {
    const m = / G(\d+)$/.exec(cn);
    return m ? `${cn.slice(0, m.index)} G${Number(m[1]) + 1}` : `${cn} G2`;
  };
  if (!last) {
    const rest = formatName(name);
    return rest === '' ? 'CN=scepter CA G2' : `CN=scepter CA G2,${rest}`;
  }
  last.value = bump(last.value);
  return formatName(name);
}

function keyBits(key: KeyObject | PrivateKeyHandle): number {
  const pub = key instanceof KeyObject ? key : key.publicKey;
  return pub.asymmetricKeyDetails?.modulusLength ?? 0;
}

/** `newKey` certified by `issuer` as a CA (same Name and key id as the next CA's own cert). */
function buildCrossCertificate(issuer: CertificateAuthority, next: Certificate): Buffer {
  const notBefore = wholeSeconds(new Date(Date.now() - 5 * 60_000));
  const notAfter = next.notAfter > issuer.cert.notAfter ? issuer.cert.notAfter : next.notAfter;
  return buildCertificate(
    {
      serial: randomSerial(),
      issuerRaw: issuer.cert.subjectRaw,
      subjectRaw: next.subjectRaw,
      spki: next.spki,
      notBefore,
      notAfter,
      extensions: [
        buildBasicConstraints(true),
        buildKeyUsage(caKeyUsage(next.publicKey())),
        buildSubjectKeyIdentifier(next.subjectKeyId ?? keyIdentifier(next.spki)),
        buildAuthorityKeyIdentifier(issuer.keyId),
      ],
    },
    createSigner(issuer.key, caDigest(issuer.key)),
  );
}

/**
 * Stages a next CA in `DIR/ca/next/`: a new RSA key and self-signed certificate with a
 * different subject, in RA mode a new RA key and certificate issued by it, and a cross
 * certificate from the current CA. Refuses when one is already staged. Needs the current CA
 * (its passphrase when encrypted) to sign the cross certificate.
 */
export async function stageRollover(at: CaLocation, o: RolloverOptions = {}): Promise<RolloverResult> {
  const paths = nextCaPaths(at);
  if (nextCaStaged(at)) {
    throw new CaError(
      `a next CA is already staged in ${paths.dir}: activate it (scepter ca activate) or remove that directory`,
    );
  }
  const current = loadCa(at, o.passphrase);
  const days = o.days ?? 3650;
  if (!Number.isInteger(days) || days < 1 || days > 36500)
    throw new CaError('days must be between 1 and 36500');
  // RSA size of the new keys: the CA's, or for an EC CA (whose key type is kept) the RA's.
  const currentBits = keyBits(
    keyHandle(current.ca.key).type === 'rsa' ? current.ca.key : (current.ra?.key ?? current.ca.key),
  );
  const keySize = o.keySize ?? ([2048, 3072, 4096].includes(currentBits) ? (currentBits as CaKeySize) : 3072);
  if (![2048, 3072, 4096].includes(keySize)) throw new CaError('key size must be 2048, 3072 or 4096');
  const subject = o.subject ?? nextGenerationName(current.caCert.subjectRaw);
  const subjectRaw = buildName(subject);
  if (namesEqual(current.caCert.subjectRaw, subjectRaw)) {
    throw new CaError('the next CA must have a different subject from the current CA');
  }

  // The next CA keeps the current key type (an EC CA stays EC on its curve; its RA stays RSA).
  const key = await newCaKey(caKeyTypeOf(current.ca.key) ?? 'rsa', keySize);
  const caCert = parseCertificate(buildRootCertificate(key, subject, days));
  const next = new CertificateAuthority({ cert: caCert, key, chain: [] });
  let ra: { key: KeyObject; cert: Certificate } | undefined;
  if (current.ra) {
    // The next RA keeps the current RA's size and lifetime (`ca init --ra-key-size` /
    // `--ra-validity`); for an EC CA `keySize` is already the RA's.
    const raBits = keyBits(current.ra.key);
    const raKeySize =
      keyHandle(current.ca.key).type === 'rsa' && [2048, 3072, 4096].includes(raBits)
        ? (raBits as CaKeySize)
        : keySize;
    const raKey = await newRsaKey(raKeySize);
    const currentRaDays = Math.round(
      (current.ra.cert.notAfter.getTime() - current.ra.cert.notBefore.getTime()) / 86_400_000,
    );
    const raDays = Math.min(currentRaDays >= 1 ? currentRaDays : 730, days);
    ra = {
      key: raKey,
      cert: parseCertificate(
        buildRaCertificate(next, raKey, nextGenerationName(current.ra.cert.subjectRaw), raDays),
      ),
    };
  }
  const crossCert =
    o.cross === false ? undefined : parseCertificate(buildCrossCertificate(current.ca, caCert));

  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  // Public files and the RA first, ca.crt last: `nextCaStaged` sees a complete next CA.
  writeSecret(paths.key, exportKey(key, o.passphrase));
  if (crossCert) writePublic(paths.cross, toPem(crossCert.der));
  if (ra) {
    writeSecret(paths.raKey, exportKey(ra.key, o.passphrase));
    writePublic(paths.raCert, toPem(ra.cert.der));
  }
  writePublic(paths.cert, toPem(caCert.der));
  const out: RolloverResult = {
    paths,
    caCert,
    encrypted: o.passphrase !== undefined && o.passphrase !== '',
  };
  if (ra) out.raCert = ra.cert;
  if (crossCert) out.crossCert = crossCert;
  return out;
}

/** The staged next CA's public certificates (CA first, then the RA when staged), or undefined. */
export function readStagedCertificates(at: CaLocation): Certificate[] | undefined {
  const p = nextCaPaths(at);
  if (!existsSync(p.cert)) return undefined;
  const certs = [readCertificates(p.cert, 'next/ca.crt')[0]!];
  if (existsSync(p.raCert)) certs.push(readCertificates(p.raCert, 'next/ra.crt')[0]!);
  return certs;
}

/**
 * What a running server knows about a staged next CA, re-read from disk only when `next/`
 * changes: at most one `stat` per `ttlMs` (default 1 s), so GetCACaps and GetNextCACert notice a
 * rollover staged (or activated) by the CLI in another process within a second, cheaply.
 */
export class NextCaWatcher {
  private checkedAt = -Infinity;
  private stamp = '';
  private certs: Certificate[] | undefined;

  constructor(
    private readonly at: CaLocation,
    private readonly ttlMs = 1000,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** The staged certificates (next CA first, then next RA), or undefined when none is staged. */
  current(): readonly Certificate[] | undefined {
    const now = this.clock();
    if (now - this.checkedAt < this.ttlMs) return this.certs;
    this.checkedAt = now;
    const p = nextCaPaths(this.at);
    const stamp = [p.cert, p.raCert].map(statStamp).join('|');
    if (stamp === this.stamp) return this.certs;
    this.stamp = stamp;
    try {
      this.certs = readStagedCertificates(this.at);
    } catch {
      this.certs = undefined; // half-written or damaged: not offered (the CLI reports it)
      this.stamp = ''; // look again next time
    }
    return this.certs;
  }
}

function statStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '-';
  }
}

export interface ActivateResult {
  /** The CA that is now current. */
  caCert: Certificate;
  /** The retired CA and where its files went. */
  previous: { caCert: Certificate; dir: string };
  raCert?: Certificate;
}

/** Copies `src` to `dst` unless `dst` already holds the same bytes; refuses to overwrite different content. */
function copyOnce(src: string, dst: string): void {
  if (existsSync(dst)) {
    if (readFileSync(dst).equals(readFileSync(src))) return;
    throw new CaError(`${dst} exists with different content; not overwriting it`);
  }
  writeFileDurably(dst, readFileSync(src), { mode: statSync(src).mode & 0o777 });
}

/**
 * Makes the staged next CA current: the current CA's files (key, cert, chain, RA, cross cert)
 * are copied to `DIR/ca/previous/<fingerprint>/`, the staged files are renamed into `DIR/ca/`
 * (`ca.crt` last), old files without a staged successor (chain.pem; an RA when none is staged)
 * are removed from `DIR/ca/`, and `next/` is removed. Checks first that the staged keys open
 * with `passphrase` and match their certificates. Takes effect at the next server start. Safe
 * to re-run after an interruption: a file already renamed is recognised as the new one.
 */
export function activateRollover(at: CaLocation, passphrase?: string): ActivateResult {
  const cur = { cross: '', ...caPaths(at) };
  cur.cross = join(cur.dir, 'cross.crt');
  const next = nextCaPaths(at);
  if (!existsSync(next.cert)) {
    throw new CaError(
      `no next CA is staged in ${next.dir}: run \`scepter ca rollover ${caCommandArgs(at)}\` first`,
    );
  }
  const nextCert = readCertificates(next.cert, 'next/ca.crt')[0]!;
  const oldCert = readCertificates(cur.cert, 'ca.crt')[0]!;
  if (oldCert.fingerprint === nextCert.fingerprint) throw new CaError('the staged CA is already current');

  // Which files in DIR/ca/ already are the new CA's (renamed by an interrupted earlier run)?
  const curRaIsNew =
    !existsSync(next.raCert) &&
    existsSync(cur.raCert) &&
    namesEqual(readCertificates(cur.raCert, 'ra.crt')[0]!.issuerRaw, nextCert.subjectRaw);
  const crossIsNew =
    existsSync(cur.cross) && readCertificates(cur.cross, 'cross.crt')[0]!.spki.equals(nextCert.spki);
  const files: Array<{ file: string; staged: string; name: string; isNew: boolean }> = [
    { file: cur.raKey, staged: next.raKey, name: 'ra.key', isNew: !existsSync(next.raKey) && curRaIsNew },
    { file: cur.raCert, staged: next.raCert, name: 'ra.crt', isNew: curRaIsNew },
    { file: cur.chain, staged: join(next.dir, 'chain.pem'), name: 'chain.pem', isNew: false },
    { file: cur.cross, staged: next.cross, name: 'cross.crt', isNew: crossIsNew },
    { file: cur.key, staged: next.key, name: 'ca.key', isNew: !existsSync(next.key) },
    { file: cur.cert, staged: next.cert, name: 'ca.crt', isNew: false },
  ];

  // The staged keys must open with this passphrase and match their certificates.
  const nextKey = readPrivateKey(existsSync(next.key) ? next.key : cur.key, passphrase, 'the next CA key');
  if (!keyMatchesSpki(nextKey, nextCert.spki))
    throw new CaError('the next CA key does not match next/ca.crt');
  if (existsSync(next.raCert) || curRaIsNew) {
    const raCertPath = existsSync(next.raCert) ? next.raCert : cur.raCert;
    const raKey = readPrivateKey(
      existsSync(next.raKey) ? next.raKey : cur.raKey,
      passphrase,
      'the next RA key',
    );
    if (!keyMatchesSpki(raKey, readCertificates(raCertPath, 'the next ra.crt')[0]!.spki))
      throw new CaError('the next RA key does not match its certificate');
  }

  // 1. Keep a copy of every file of the old CA.
  const prevDir = join(previousCaDir(at), oldCert.fingerprint);
  mkdirSync(prevDir, { recursive: true, mode: 0o700 });
  for (const f of files) if (existsSync(f.file) && !f.isNew) copyOnce(f.file, join(prevDir, f.name));
  // 2. Staged files into place (ca.crt last); old files without a successor go.
  for (const f of files) {
    if (existsSync(f.staged)) renameSync(f.staged, f.file);
    else if (existsSync(f.file) && !f.isNew) unlinkSync(f.file);
  }
  fsyncDir(cur.dir); // the renames and removals survive a power cut
  try {
    rmdirSync(next.dir);
  } catch {
    // an unexpected file left in next/: harmless, the staged CA itself has moved
  }
  const loaded = loadCa(at, passphrase);
  if (loaded.caCert.fingerprint !== nextCert.fingerprint)
    throw new CaError('activation did not complete: ca.crt is not the staged CA');
  const out: ActivateResult = { caCert: loaded.caCert, previous: { caCert: oldCert, dir: prevDir } };
  if (loaded.ra) out.raCert = loaded.ra.cert;
  return out;
}
