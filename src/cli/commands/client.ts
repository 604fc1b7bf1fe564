/**
 * Client commands over `ScepClient`: `enroll`, `renew`, `getcaps`, `getca`, `getnextca`,
 * `getcert`, `getcrl`. Human output by default, `--json` for scripts; exit codes in
 * client-common.ts and docs/client.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  keyTypeOf,
  ScepClient,
  type IssuedResult,
  type EnrollResult,
  type KeySize,
  type KeyType,
} from '../../client/client.js';
import { formatFingerprint, type CaCertificates } from '../../client/ca-certs.js';
import { negotiate } from '../../client/negotiate.js';
import { ScepArgumentError, ScepFailureError, ScepPendingTimeoutError } from '../../client/errors.js';
import {
  loadPendingState,
  PENDING_FILE,
  PendingStateError,
  removePendingState,
  savePendingState,
} from '../../client/pending-state.js';
import { certsToPem, writeFileAtomic, writePairFiles } from '../../client/files.js';
import { privateKeyFrom } from '../../crypto/keys.js';
import { fromPem, parseCertificate, toPem, type Certificate } from '../../pkix/certificate.js';
import { buildName, nameText } from '../../pkix/name.js';
import { parseSanSpec } from '../../pkix/extensions.js';
import { durationOpt, flag, intOpt, parseOptions, req, str, UsageError, type Command } from '../command.js';
import {
  challengeFrom,
  clientOptions,
  COMMON_OPTIONS,
  COMMON_USAGE,
  EXIT,
  EXIT_USAGE,
  printJson,
  reportError,
  say,
  warn,
} from './client-common.js';

function certSummary(c: Certificate): Record<string, unknown> {
  return {
    subject: nameText(c.subjectRaw),
    issuer: nameText(c.issuerRaw),
    serial: c.serialHex,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    fingerprint: formatFingerprint(c.fingerprint),
  };
}

function readCert(path: string, what: string): Certificate {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    throw new UsageError(`cannot read ${what} ${path}`);
  }
  const der = data.subarray(0, 64).toString('latin1').includes('-----BEGIN')
    ? fromPem(data.toString('latin1'))[0]
    : data;
  if (!der) throw new UsageError(`${what} ${path} holds no certificate`);
  try {
    return parseCertificate(der);
  } catch {
    throw new UsageError(`${what} ${path} is not a certificate`);
  }
}

function readKey(path: string, what: string) {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    throw new UsageError(`cannot read ${what} ${path}`);
  }
  try {
    const k = privateKeyFrom(data, process.env.SCEPTER_KEY_PASSPHRASE);
    if (!keyTypeOf(k))
      throw new UsageError(`${what} ${path} is neither an RSA key nor an EC key on P-256 or P-384`);
    return k;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${what} ${path} is not a usable private key`);
  }
}

/** `--key-type rsa|ec-p256|ec-p384`, or undefined when not given. */
function keyTypeOpt(p: ReturnType<typeof parseOptions>): KeyType | undefined {
  const v = str(p, 'key-type');
  if (v === undefined) return undefined;
  if (v !== 'rsa' && v !== 'ec-p256' && v !== 'ec-p384')
    throw new UsageError('--key-type must be rsa, ec-p256 or ec-p384');
  return v;
}

function keySizeOpt(p: ReturnType<typeof parseOptions>): KeySize {
  const n = intOpt(p, 'key-size', 2048, 2048, 4096);
  if (n !== 2048 && n !== 3072 && n !== 4096) throw new UsageError('--key-size must be 2048, 3072 or 4096');
  return n;
}

function pinNote(ca: CaCertificates, pinned: boolean): string | undefined {
  return pinned
    ? undefined
    : `note: the CA was not pinned; its fingerprint is ${formatFingerprint(ca.anchorFingerprint)} (pass --ca-fingerprint to pin it)`;
}

const DES_WARNING =
  'WARNING: the server answered in single DES, which is insecure; scepter opened it only as a compatibility fallback';

const POLL_USAGE = `  --poll-interval DURATION  wait between polls while pending (default 10s; bare number: seconds)
  --poll-timeout DURATION   give up polling after DURATION (default 5m; exit 4, request saved)
  --resume                continue the request saved in DIR/pending.json (a rerun does so
                          by itself; --resume fails when there is none)`;

const POLL_OPTIONS = {
  resume: { type: 'boolean' },
  'poll-interval': { type: 'string' },
  'poll-timeout': { type: 'string' },
} as const;

type Parsed = ReturnType<typeof parseOptions>;

/** A pending request saved under --out by an earlier run (see src/client/pending-state.ts). */
type Saved = Awaited<ReturnType<typeof loadPendingState>>;

/**
 * The saved pending request in `out`, checked against this run: `--resume` needs one, and one
 * sent to another URL is refused rather than polled somewhere it does not exist.
 */
async function savedRequest(p: Parsed, out: string, url: string): Promise<Saved> {
  let saved: Saved;
  try {
    saved = await loadPendingState(out);
  } catch (e) {
    if (e instanceof PendingStateError)
      throw new UsageError(`${e.message}; remove ${join(out, PENDING_FILE)} to start a new request`);
    throw e;
  }
  if (flag(p, 'resume') && !saved) throw new UsageError(`--resume: no pending request in ${out}`);
  if (saved && saved.url !== url)
    throw new UsageError(
      `${join(out, PENDING_FILE)} is a pending request to ${saved.url}; use that --url, or remove the file to start over`,
    );
  return saved;
}

/**
 * Sends the request (or, when a saved one exists, polls it once at once), then polls while
 * PENDING. A pending request is saved under `out` first, so that a poll timeout (exit 4) or an
 * interruption leaves it to resume; an answer that ends the transaction removes the state.
 */
async function settle(
  client: ScepClient,
  send: () => Promise<EnrollResult>,
  saved: Saved,
  p: Parsed,
  json: boolean,
  out: string,
  url: string,
): Promise<IssuedResult> {
  let first: EnrollResult;
  try {
    if (saved) {
      if (!json)
        warn(
          `resuming pending request ${saved.pending.transactionId} (first sent ${saved.createdAt}) from ${join(out, PENDING_FILE)}`,
        );
      first = await client.poll(saved.pending);
    } else {
      first = await send();
    }
  } catch (e) {
    if (saved && e instanceof ScepFailureError) await removePendingState(out);
    throw e;
  }
  if (first.status === 'issued') return first;
  await savePendingState(out, url, first);
  const intervalS = durationOpt(p, 'poll-interval', 10, 1, 86_400, 1);
  const timeoutS = durationOpt(p, 'poll-timeout', 300, 0, 7 * 86_400, 1);
  if (!json)
    warn(
      `pending: the server holds request ${first.transactionId} for approval; polling every ${intervalS} s for up to ${timeoutS} s`,
    );
  try {
    return await client.waitForCertificate(first, {
      intervalMs: intervalS * 1000,
      timeoutMs: timeoutS * 1000,
      onPoll: (n, ms) => {
        if (!json) warn(`pending: poll ${n} (${Math.round(ms / 1000)} s elapsed)…`);
      },
    });
  } catch (e) {
    if (e instanceof ScepFailureError) await removePendingState(out);
    throw e;
  }
}

/** reportError, plus where a timed-out pending request was saved and how to resume it. */
function reportRequestError(e: unknown, json: boolean, command: string, out: string): number {
  if (e instanceof ScepPendingTimeoutError) {
    const file = join(out, PENDING_FILE);
    if (!json)
      warn(
        `scepter ${command}: the request is saved in ${file}: run the same command again (or with --resume) to continue it`,
      );
    return reportError(e, json, command, { resumeFile: file });
  }
  return reportError(e, json, command);
}

async function issuedOutput(
  r: IssuedResult,
  out: string,
  json: boolean,
  ca: CaCertificates,
  pinned: boolean,
  verb: string,
): Promise<number> {
  const paths = await writePairFiles(out, { key: r.key, certificate: r.certificate, chain: r.chain });
  await removePendingState(out);
  if (json) {
    printJson({
      ok: true,
      status: 'issued',
      via: r.via,
      transactionId: r.transactionId,
      certificate: certSummary(r.certificate),
      files: paths,
      negotiated: r.negotiated,
      replyCipher: r.replyCipher ?? null,
      insecureCipher: r.insecureCipher ?? null,
      caFingerprint: formatFingerprint(ca.anchorFingerprint),
      caPinned: pinned,
    });
    return EXIT.ok;
  }
  if (r.insecureCipher) warn(DES_WARNING);
  const note = pinNote(ca, pinned);
  if (note) warn(note);
  say(`${verb} certificate ${r.certificate.serialHex} for ${nameText(r.certificate.subjectRaw)} (${r.via})`);
  say(`  issuer   ${nameText(r.certificate.issuerRaw)}`);
  say(`  valid    ${r.certificate.notBefore.toISOString()} → ${r.certificate.notAfter.toISOString()}`);
  say(
    `  sent     ${r.negotiated.cipher}/${r.negotiated.digest} via ${r.negotiated.post ? 'POST' : 'GET'}; reply ${r.replyCipher ?? '?'}`,
  );
  say(`  wrote    ${paths.key} (0600), ${paths.cert}, ${paths.chain}`);
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------

export const enrollCommand: Command = {
  name: 'enroll',
  summary: 'enroll for a certificate (PKCSReq) and write key.pem, cert.pem, chain.pem',
  usage: `Usage: scepter enroll --url URL --subject DN --out DIR [options]

Generates an RSA key (or uses --key), sends a PKCSReq with the challenge, polls while the
server says PENDING, and writes DIR/key.pem (0600), DIR/cert.pem and DIR/chain.pem atomically.
A request still pending at --poll-timeout is saved in DIR/pending.json (+ its key, 0600): the
next run with the same --out resumes that transaction instead of sending a new request.

  --subject DN            e.g. "CN=dev1,O=Acme" (required, except when resuming)
  --san LIST              subjectAltNames: dev1.example,10.0.0.1 (bare: DNS name or IP address)
                          or with a type: dns:…,ip:…,email:x@y,uri:…
  --challenge X           challenge password (or --challenge-file F, or $SCEPTER_CHALLENGE)
  --challenge-file F      read the challenge from the first line of F
  --out DIR               output directory (required)
  --force                 replace an existing DIR/key.pem and DIR/cert.pem (refused otherwise)
  --key FILE              use this RSA or EC private key (PEM/DER; $SCEPTER_KEY_PASSPHRASE if
                          encrypted)
  --key-type T            type of a generated key: rsa (default), ec-p256 or ec-p384 (the
                          CertRep of an EC key is encrypted to the challenge, RFC 8894 §3.1)
  --key-size N            size of a generated RSA key: 2048 (default), 3072 or 4096
${POLL_USAGE}
${COMMON_USAGE}

${EXIT_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, {
      ...COMMON_OPTIONS,
      ...POLL_OPTIONS,
      subject: { type: 'string' },
      san: { type: 'string' },
      challenge: { type: 'string' },
      'challenge-file': { type: 'string' },
      out: { type: 'string' },
      key: { type: 'string' },
      'key-size': { type: 'string' },
      'key-type': { type: 'string' },
      force: { type: 'boolean' },
    });
    const json = flag(p, 'json');
    const opts = clientOptions(p);
    const out = req(p, 'out');
    const saved = await savedRequest(p, out, opts.url);
    const subject = str(p, 'subject');
    if (subject === undefined && !saved) throw new UsageError('--subject is required');
    try {
      if (subject !== undefined) buildName(subject);
    } catch (e) {
      throw new UsageError(`--subject: ${(e as Error).message}`);
    }
    const sanSpec = str(p, 'san');
    let sans;
    try {
      sans = sanSpec === undefined ? [] : parseSanSpec(sanSpec);
    } catch (e) {
      throw new UsageError(`--san: ${(e as Error).message}`);
    }
    if (!flag(p, 'force')) {
      for (const f of ['key.pem', 'cert.pem']) {
        if (existsSync(join(out, f)))
          throw new UsageError(
            `${join(out, f)} exists: pass --force to replace it (or renew it with scepter renew)`,
          );
      }
    }
    const keyFile = str(p, 'key');
    const key = keyFile === undefined ? undefined : readKey(keyFile, '--key');
    const keySize = keySizeOpt(p);
    const keyType = keyTypeOpt(p);
    if (key && keyType) throw new UsageError('--key-type is for a generated key, not with --key');
    const challenge = challengeFrom(p);
    const client = new ScepClient(opts);
    try {
      const ca = await client.getCaCert();
      const send = () =>
        client.enroll({
          subject: subject!,
          sans,
          keySize,
          ...(keyType ? { keyType } : {}),
          ...(key ? { key } : {}),
          ...(challenge !== undefined ? { challenge } : {}),
        });
      const r = await settle(client, send, saved, p, json, out, opts.url);
      return await issuedOutput(r, out, json, ca, opts.caFingerprint !== undefined, 'issued');
    } catch (e) {
      return reportRequestError(e, json, 'enroll', out);
    }
  },
};

export const renewCommand: Command = {
  name: 'renew',
  summary: 'renew a certificate (RenewalReq, or PKCSReq signed by it) and write the new pair',
  usage: `Usage: scepter renew --url URL --cert C --key K --out DIR [options]

Signs the request with the current certificate and key: a RenewalReq when the server
advertises Renewal, else a PKCSReq signed by the current certificate. Keeps subject and
subjectAltNames of the current certificate. Writes DIR/key.pem (0600), cert.pem, chain.pem.

  --cert FILE             the current certificate (PEM or DER; required)
  --key FILE              its private key (required)
  --new-key               renew with a freshly generated key (recommended)
  --key-type T            type of the new key: rsa, ec-p256 or ec-p384 (default: that of K).
                          An EC certificate renewed without a challenge gets its reply by ECDH
                          key agreement (a scepter server extension)
  --key-size N            size of a new RSA key: 2048 (default), 3072 or 4096
  --challenge X           also send a challenge (some servers, e.g. micromdm, want one)
  --challenge-file F      read it from F (or $SCEPTER_CHALLENGE)
  --out DIR               output directory (required; may be where C and K live)
${POLL_USAGE}
${COMMON_USAGE}

${EXIT_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, {
      ...COMMON_OPTIONS,
      ...POLL_OPTIONS,
      cert: { type: 'string' },
      key: { type: 'string' },
      'new-key': { type: 'boolean' },
      'key-size': { type: 'string' },
      'key-type': { type: 'string' },
      challenge: { type: 'string' },
      'challenge-file': { type: 'string' },
      out: { type: 'string' },
    });
    const json = flag(p, 'json');
    const opts = clientOptions(p);
    const cert = readCert(req(p, 'cert'), '--cert');
    const key = readKey(req(p, 'key'), '--key');
    const out = req(p, 'out');
    const saved = await savedRequest(p, out, opts.url);
    const keySize = keySizeOpt(p);
    const keyType = keyTypeOpt(p);
    if (keyType && !flag(p, 'new-key')) throw new UsageError('--key-type needs --new-key');
    const challenge = challengeFrom(p);
    const client = new ScepClient(opts);
    try {
      const ca = await client.getCaCert();
      const send = () =>
        client.renew({
          cert,
          key,
          newKey: flag(p, 'new-key'),
          keySize,
          ...(keyType ? { keyType } : {}),
          ...(challenge !== undefined ? { challenge } : {}),
        });
      const r = await settle(client, send, saved, p, json, out, opts.url);
      return await issuedOutput(r, out, json, ca, opts.caFingerprint !== undefined, 'renewed:');
    } catch (e) {
      if (e instanceof ScepArgumentError && e.code === 'key-cert-mismatch') {
        throw new UsageError('--key is not the private key of --cert');
      }
      return reportRequestError(e, json, 'renew', out);
    }
  },
};

export const getcapsCommand: Command = {
  name: 'getcaps',
  summary: "show a SCEP server's capabilities (GetCACaps) and what the client would use",
  usage: `Usage: scepter getcaps --url URL [options]

${COMMON_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, COMMON_OPTIONS);
    const json = flag(p, 'json');
    const client = new ScepClient(clientOptions(p));
    try {
      const caps = await client.getCaCaps();
      const n = negotiate(caps);
      if (json) {
        printJson({ ok: true, capabilities: caps.keywords, negotiated: n, renewal: caps.has('Renewal') });
        return EXIT.ok;
      }
      if (caps.keywords.length === 0) say('(no capabilities advertised)');
      for (const k of caps.keywords) say(k);
      say(
        `# the client would use ${n.cipher}/${n.digest} via ${n.post ? 'POST' : 'GET'}${caps.has('Renewal') ? ', RenewalReq for renewals' : ', PKCSReq for renewals'}`,
      );
      return EXIT.ok;
    } catch (e) {
      return reportError(e, json, 'getcaps');
    }
  },
};

function roleOf(c: Certificate, ca: CaCertificates): string[] {
  const roles: string[] = [];
  if (ca.caChain.includes(c)) roles.push(c === ca.ca ? 'issuing CA' : 'CA');
  if (ca.ra && c === ca.encryption) roles.push('RA encryption');
  if (ca.ra && ca.signers.includes(c) && !ca.caChain.includes(c)) roles.push('RA signing');
  if (roles.length === 0) roles.push('untrusted (does not chain to the CA)');
  return roles;
}

export const getcaCommand: Command = {
  name: 'getca',
  summary: 'fetch the CA (and RA) certificates (GetCACert); print fingerprints, write PEM',
  usage: `Usage: scepter getca --url URL [--out FILE] [options]

Prints each certificate with its role and SHA-256 fingerprint; with --out writes them as a
PEM bundle (in the server's order). Without --ca-fingerprint this is trust on first use:
check the fingerprint out of band.

  --out FILE              write the certificates as PEM
${COMMON_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, { ...COMMON_OPTIONS, out: { type: 'string' } });
    const json = flag(p, 'json');
    const opts = clientOptions(p);
    const client = new ScepClient(opts);
    try {
      const ca = await client.getCaCert();
      const out = str(p, 'out');
      if (out !== undefined) await writeFileAtomic(out, certsToPem(ca.all));
      if (json) {
        printJson({
          ok: true,
          ra: ca.ra,
          pinned: opts.caFingerprint !== undefined,
          certificates: ca.all.map((c) => ({ roles: roleOf(c, ca), ...certSummary(c) })),
          ...(out !== undefined ? { file: out } : {}),
        });
        return EXIT.ok;
      }
      for (const c of ca.all) {
        say(`${roleOf(c, ca).join(', ')}: ${nameText(c.subjectRaw)}`);
        say(`  fingerprint ${formatFingerprint(c.fingerprint)}`);
        say(`  serial ${c.serialHex}, valid until ${c.notAfter.toISOString()}`);
      }
      if (out !== undefined) say(`wrote ${out}`);
      return EXIT.ok;
    } catch (e) {
      return reportError(e, json, 'getca');
    }
  },
};

export const getnextcaCommand: Command = {
  name: 'getnextca',
  summary: 'fetch the rollover CA certificate(s) (GetNextCACert), verified under the current CA',
  usage: `Usage: scepter getnextca --url URL [--out FILE] [options]

  --out FILE              write the new certificates as PEM
${COMMON_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, { ...COMMON_OPTIONS, out: { type: 'string' } });
    const json = flag(p, 'json');
    const client = new ScepClient(clientOptions(p));
    try {
      const certs = await client.getNextCaCert();
      const out = str(p, 'out');
      if (out !== undefined) await writeFileAtomic(out, certsToPem(certs));
      if (json) {
        printJson({
          ok: true,
          certificates: certs.map(certSummary),
          ...(out !== undefined ? { file: out } : {}),
        });
        return EXIT.ok;
      }
      for (const c of certs) {
        say(`next CA: ${nameText(c.subjectRaw)}`);
        say(`  fingerprint ${formatFingerprint(c.fingerprint)}`);
        say(`  valid ${c.notBefore.toISOString()} → ${c.notAfter.toISOString()}`);
      }
      if (out !== undefined) say(`wrote ${out}`);
      return EXIT.ok;
    } catch (e) {
      return reportError(e, json, 'getnextca');
    }
  },
};

const SIGNER_OPTIONS = { cert: { type: 'string' }, key: { type: 'string' } } as const;

function signerFrom(p: ReturnType<typeof parseOptions>) {
  const c = str(p, 'cert');
  const k = str(p, 'key');
  if ((c === undefined) !== (k === undefined)) throw new UsageError('--cert and --key go together');
  if (c === undefined || k === undefined) return undefined;
  return { cert: readCert(c, '--cert'), key: readKey(k, '--key') };
}

/** --issuer-cert FILE: the CA certificate that issued the certificate asked about. */
function issuerCertFrom(p: ReturnType<typeof parseOptions>): Certificate | undefined {
  const f = str(p, 'issuer-cert');
  return f === undefined ? undefined : readCert(f, '--issuer-cert');
}

export const getcertCommand: Command = {
  name: 'getcert',
  summary: 'fetch an issued certificate by serial number (GetCert)',
  usage: `Usage: scepter getcert --url URL --serial HEX [options]

  --serial HEX            serial number of the certificate (hex; required)
  --issuer DN             issuer name (default: the issuing CA)
  --issuer-cert FILE      the CA certificate that issued it, e.g. a CA retired by a rollover:
                          names the issuer, and the answer may be signed by it
  --out FILE              write the certificate as PEM (default: print it)
  --cert FILE --key FILE  sign the request with this certificate (default: a throwaway one)
${COMMON_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, {
      ...COMMON_OPTIONS,
      ...SIGNER_OPTIONS,
      serial: { type: 'string' },
      issuer: { type: 'string' },
      'issuer-cert': { type: 'string' },
      out: { type: 'string' },
    });
    const json = flag(p, 'json');
    const serial = req(p, 'serial');
    if (!/^(0x)?[0-9a-fA-F:]+$/.test(serial)) throw new UsageError('--serial must be hex digits');
    const issuer = str(p, 'issuer');
    let issuerRaw: Buffer | undefined;
    try {
      issuerRaw = issuer === undefined ? undefined : buildName(issuer);
    } catch (e) {
      throw new UsageError(`--issuer: ${(e as Error).message}`);
    }
    const issuerCert = issuerCertFrom(p);
    const signer = signerFrom(p);
    const client = new ScepClient(clientOptions(p));
    try {
      const cert = await client.getCert(serial, {
        ...(issuerRaw ? { issuerRaw } : {}),
        ...(issuerCert ? { issuer: issuerCert } : {}),
        ...(signer ? { signer } : {}),
      });
      const out = str(p, 'out');
      if (out !== undefined) await writeFileAtomic(out, toPem(cert.der));
      if (json) {
        printJson({
          ok: true,
          certificate: certSummary(cert),
          pem: toPem(cert.der),
          ...(out !== undefined ? { file: out } : {}),
        });
        return EXIT.ok;
      }
      if (out !== undefined) {
        say(
          `certificate ${cert.serialHex}: ${nameText(cert.subjectRaw)}, valid until ${cert.notAfter.toISOString()}`,
        );
        say(`wrote ${out}`);
      } else {
        process.stdout.write(toPem(cert.der));
      }
      return EXIT.ok;
    } catch (e) {
      return reportError(e, json, 'getcert');
    }
  },
};

export const getcrlCommand: Command = {
  name: 'getcrl',
  summary: 'fetch the CRL for a certificate (GetCRL)',
  usage: `Usage: scepter getcrl --url URL (--serial HEX | --for FILE) [options]

Asks for the CRL covering a certificate (named by --for, or by --serial under the CA).
The CRL's signature is verified under the CA, or under --issuer-cert.

  --for FILE              the certificate whose revocation status is wanted
  --serial HEX            ... or its serial number (issuer: the CA, or --issuer-cert)
  --issuer-cert FILE      the CA certificate that issued it, e.g. a CA retired by a rollover
                          (whose CRL the server still serves): the CRL may be signed by it
  --out FILE              where to write the CRL (default: print PEM)
  --form der|pem          format of --out (default der)
  --cert FILE --key FILE  sign the request with this certificate (default: a throwaway one)
${COMMON_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, {
      ...COMMON_OPTIONS,
      ...SIGNER_OPTIONS,
      for: { type: 'string' },
      serial: { type: 'string' },
      'issuer-cert': { type: 'string' },
      out: { type: 'string' },
      form: { type: 'string' },
    });
    const json = flag(p, 'json');
    const forFile = str(p, 'for');
    const serial = str(p, 'serial');
    if ((forFile === undefined) === (serial === undefined))
      throw new UsageError('give exactly one of --for and --serial');
    if (serial !== undefined && !/^(0x)?[0-9a-fA-F:]+$/.test(serial))
      throw new UsageError('--serial must be hex digits');
    const form = str(p, 'form') ?? 'der';
    if (form !== 'der' && form !== 'pem') throw new UsageError('--form must be der or pem');
    const target = forFile !== undefined ? readCert(forFile, '--for') : { serial: serial! };
    const issuerCert = issuerCertFrom(p);
    const signer = signerFrom(p);
    const client = new ScepClient(clientOptions(p));
    try {
      const r = await client.getCrl(target, {
        ...(signer ? { signer } : {}),
        ...(issuerCert ? { issuer: issuerCert } : {}),
      });
      const out = str(p, 'out');
      const pem = toPem(r.crl, 'X509 CRL');
      if (out !== undefined) await writeFileAtomic(out, form === 'pem' ? pem : r.crl);
      const sha256 = createHash('sha256').update(r.crl).digest('hex');
      if (json) {
        printJson({
          ok: true,
          bytes: r.crl.length,
          sha256,
          pem,
          insecureCipher: r.insecureCipher ?? null,
          ...(out !== undefined ? { file: out } : {}),
        });
        return EXIT.ok;
      }
      if (r.insecureCipher) warn(DES_WARNING);
      if (out !== undefined)
        say(`wrote ${out} (${form.toUpperCase()}, ${r.crl.length} bytes, sha256 ${sha256})`);
      else process.stdout.write(pem);
      return EXIT.ok;
    } catch (e) {
      return reportError(e, json, 'getcrl');
    }
  },
};

/** Every client command, in help order. */
export const clientCommands: Command[] = [
  enrollCommand,
  renewCommand,
  getcapsCommand,
  getcaCommand,
  getnextcaCommand,
  getcertCommand,
  getcrlCommand,
];
