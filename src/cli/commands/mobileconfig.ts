/**
 * `scepter mobileconfig`: an Apple configuration profile (XML plist) that enrolls an iPhone,
 * iPad or Mac against a SCEP URL: the CA certificate (`com.apple.security.root`) and a
 * `com.apple.security.scep` payload (URL, Name, Subject, Challenge, Keysize, Key Type, Key
 * Usage, CAFingerprint, Retries, RetryDelay). With `--one-time` each profile carries a fresh
 * one-time challenge minted in the server's store, as `scepter challenge new` does.
 */
import { cliActor } from '../actor.js';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScepClient } from '../../client/client.js';
import { formatFingerprint } from '../../client/ca-certs.js';
import { writeFileAtomic } from '../../client/files.js';
import { fromPem, parseCertificate, type Certificate } from '../../pkix/certificate.js';
import { buildName, parseName } from '../../pkix/name.js';
import {
  MAX_ONE_TIME_TTL_SECONDS,
  MIN_ONE_TIME_TTL_SECONDS,
  OneTimeChallenges,
} from '../../ra/one-time-challenge.js';
import { loadOrCreateChallengeKey } from '../../server/data-dir.js';
import { durationOpt, flag, intOpt, parseOptions, str, UsageError, type Command } from '../command.js';
import { buildPlist, PlistError, type PlistValue } from '../plist.js';
import {
  challengeFrom,
  clientOptions,
  COMMON_OPTIONS,
  COMMON_USAGE,
  reportError,
  warn,
} from './client-common.js';
import { storeUrlOf, withStore } from './data-store.js';

/** Attribute short names Apple's Subject takes; other attributes go by dotted OID. */
const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/**
 * `CN=dev,O=Acme` (RFC 4514 text, most significant last) → `[[["O","Acme"]],[["CN","dev"]]]`:
 * Apple's Subject lists the RDNs in encoded order, most significant first.
 */
export function appleSubject(dn: string): string[][][] {
  let parsed;
  try {
    parsed = parseName(buildName(dn));
  } catch (e) {
    throw new UsageError(`--subject: ${(e as Error).message}`);
  }
  return parsed.map((rdn) =>
    rdn.map((a) => {
      if (a.value.startsWith('#')) throw new UsageError('--subject: every value must be text');
      return [SHORT_NAMES[a.oid] ?? a.oid, a.value];
    }),
  );
}

const KEY_USAGE: Readonly<Record<string, number>> = { signing: 1, encryption: 4, both: 5 };

/** A reverse-DNS identifier part from the URL's host (`ca.example` → `example.ca`). */
function reverseHost(url: string): string {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const parts = host.split(/[.:]/).filter((x) => /^[a-z0-9-]+$/.test(x));
  return parts.length > 0 ? parts.reverse().join('.') : 'localhost';
}

function uuid(): string {
  return randomUUID().toUpperCase();
}

async function caCertificate(p: ReturnType<typeof parseOptions>): Promise<Certificate> {
  const data = str(p, 'data');
  if (data !== undefined) {
    const file = join(data, 'ca', 'ca.crt');
    let der: Buffer | undefined;
    try {
      der = fromPem(readFileSync(file, 'latin1'))[0];
    } catch {
      throw new UsageError(`cannot read ${file} (is --data the server's data directory?)`);
    }
    if (!der) throw new UsageError(`${file} holds no certificate`);
    return parseCertificate(der);
  }
  const opts = clientOptions(p);
  const ca = await new ScepClient(opts).getCaCert();
  if (opts.caFingerprint === undefined)
    warn(
      `note: the CA certificate came from GetCACert unpinned; its fingerprint is ${formatFingerprint(ca.anchorFingerprint)} (pass --ca-fingerprint to pin it, or --data DIR)`,
    );
  return ca.ca;
}

async function mintOneTime(p: ReturnType<typeof parseOptions>): Promise<{ value: string; expiresAt: Date }> {
  const data = str(p, 'data');
  if (data === undefined) throw new UsageError('--one-time needs --data DIR (the server data directory)');
  const ttlSeconds = durationOpt(p, 'ttl', 3600, MIN_ONE_TIME_TTL_SECONDS, MAX_ONE_TIME_TTL_SECONDS);
  const url = storeUrlOf(data, str(p, 'db'));
  const { key, created, file } = loadOrCreateChallengeKey(data);
  if (created)
    warn(`created ${file}; a server already running on ${data} must be restarted to accept this challenge`);
  const [minted] = await withStore(data, url, (store) =>
    new OneTimeChallenges(key).mint(store, {
      ttlSeconds,
      count: 1,
      meta: { source: 'mobileconfig' },
      actor: cliActor(),
    }),
  );
  return minted!;
}

export const mobileconfigCommand: Command = {
  name: 'mobileconfig',
  summary: 'write an Apple configuration profile (.mobileconfig) that enrolls a device by SCEP',
  usage: `Usage: scepter mobileconfig --url URL [options] > device.mobileconfig

Prints an (unsigned) Apple configuration profile, an XML plist with two payloads: the CA
certificate (com.apple.security.root) and com.apple.security.scep, which makes the device
generate its key and enroll at URL. Install it by AirDrop, e-mail, a web download or an MDM.

  --url URL               the SCEP URL devices use (required), e.g. http://ca.example:8080/scep
  --subject DN            subject the device asks for (default CN=device)
  --challenge X           challenge password (or --challenge-file F, or $SCEPTER_CHALLENGE)
  --challenge-file F      read it from the first line of F
  --one-time              mint a fresh one-time challenge for this profile (needs --data)
  --ttl DURATION          lifetime of that challenge (default 1h)
  --data DIR              the server's data directory: CA certificate from DIR/ca/ca.crt
                          (else from GetCACert at --url) and the store for --one-time
  --db URL                store URL (default as for \`scepter challenge new\`)
  --name NAME             the SCEP payload's Name (a CA identifier; default the URL's host)
  --display-name TEXT     what the device shows (default "SCEP enrollment (<host>)")
  --identifier ID         reverse-DNS PayloadIdentifier (default scepter.<reversed host>)
  --organization ORG      PayloadOrganization shown on the device
  --key-size N            2048 (default), 3072 or 4096
  --key-usage U           signing, encryption or both (default both)
  --fingerprint-digest D  sha256 (default) or sha1 for CAFingerprint
  --device-retries N      Retries: the device's polls while the server says PENDING (default 3)
  --device-retry-delay S  RetryDelay: seconds between those polls (default 10)
  --out FILE              write the profile to FILE (0600: it holds the challenge) instead of stdout
${COMMON_USAGE}`,
  async run(argv) {
    const p = parseOptions(argv, {
      ...COMMON_OPTIONS,
      subject: { type: 'string' },
      challenge: { type: 'string' },
      'challenge-file': { type: 'string' },
      'one-time': { type: 'boolean' },
      ttl: { type: 'string' },
      data: { type: 'string' },
      db: { type: 'string' },
      name: { type: 'string' },
      'display-name': { type: 'string' },
      identifier: { type: 'string' },
      organization: { type: 'string' },
      'key-size': { type: 'string' },
      'key-usage': { type: 'string' },
      'fingerprint-digest': { type: 'string' },
      'device-retries': { type: 'string' },
      'device-retry-delay': { type: 'string' },
      out: { type: 'string' },
    });
    const json = flag(p, 'json');
    if (json) throw new UsageError('--json is not supported: the output is the profile');
    const url = str(p, 'url');
    if (!url) throw new UsageError('--url is required');
    if (!/^https?:\/\/[^/]/i.test(url)) throw new UsageError('--url must start with http:// or https://');
    const host = new URL(url).hostname;
    const keySize = intOpt(p, 'key-size', 2048, 2048, 4096);
    if (![2048, 3072, 4096].includes(keySize)) throw new UsageError('--key-size must be 2048, 3072 or 4096');
    const usage = KEY_USAGE[str(p, 'key-usage') ?? 'both'];
    if (usage === undefined) throw new UsageError('--key-usage must be signing, encryption or both');
    const digest = str(p, 'fingerprint-digest') ?? 'sha256';
    if (digest !== 'sha256' && digest !== 'sha1')
      throw new UsageError('--fingerprint-digest must be sha256 or sha1');
    const retries = intOpt(p, 'device-retries', 3, 0, 100);
    const retryDelay = intOpt(p, 'device-retry-delay', 10, 0, 86_400);
    const name = str(p, 'name') ?? host;
    const subject = appleSubject(str(p, 'subject') ?? 'CN=device');
    const identifier = str(p, 'identifier') ?? `scepter.${reverseHost(url)}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(identifier))
      throw new UsageError('--identifier must be reverse-DNS style (letters, digits, dots, dashes)');
    const oneTime = flag(p, 'one-time');
    if (oneTime && (str(p, 'challenge') !== undefined || str(p, 'challenge-file') !== undefined))
      throw new UsageError('give --one-time or a challenge, not both');
    if (!oneTime && str(p, 'ttl') !== undefined) throw new UsageError('--ttl goes with --one-time');

    let ca: Certificate;
    try {
      ca = await caCertificate(p);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      return reportError(e, false, 'mobileconfig');
    }
    let challenge: string | undefined;
    let expiresAt: Date | undefined;
    if (oneTime) {
      const minted = await mintOneTime(p);
      challenge = minted.value;
      expiresAt = minted.expiresAt;
    } else {
      challenge = challengeFrom(p);
      if (challenge === undefined)
        warn('note: no challenge (--challenge, --challenge-file, $SCEPTER_CHALLENGE or --one-time)');
    }

    const scep: Record<string, PlistValue> = {
      URL: url,
      Name: name,
      Subject: subject,
      ...(challenge !== undefined ? { Challenge: challenge } : {}),
      Keysize: keySize,
      'Key Type': 'RSA',
      'Key Usage': usage,
      CAFingerprint: createHash(digest).update(ca.der).digest(),
      Retries: retries,
      RetryDelay: retryDelay,
    };
    const org = str(p, 'organization');
    const common = (type: string, id: string, display: string): Record<string, PlistValue> => ({
      PayloadType: type,
      PayloadVersion: 1,
      PayloadIdentifier: id,
      PayloadUUID: uuid(),
      PayloadDisplayName: display,
      ...(org !== undefined ? { PayloadOrganization: org } : {}),
    });
    const profile: Record<string, PlistValue> = {
      PayloadContent: [
        {
          ...common('com.apple.security.root', `${identifier}.ca`, 'SCEP CA certificate'),
          PayloadCertificateFileName: 'ca.cer',
          PayloadContent: ca.der,
        },
        {
          ...common('com.apple.security.scep', `${identifier}.scep`, `SCEP enrollment (${host})`),
          PayloadContent: scep,
        },
      ],
      ...common('Configuration', identifier, str(p, 'display-name') ?? `SCEP enrollment (${host})`),
      PayloadRemovalDisallowed: false,
    };
    let xml: string;
    try {
      xml = buildPlist(profile);
    } catch (e) {
      if (e instanceof PlistError) throw new UsageError(e.message);
      throw e;
    }
    const out = str(p, 'out');
    if (out !== undefined) {
      await writeFileAtomic(out, xml, 0o600);
      warn(`wrote ${out}`);
    } else {
      process.stdout.write(xml);
    }
    if (expiresAt !== undefined)
      warn(`one-time challenge in this profile valid until ${expiresAt.toISOString()}`);
    return 0;
  },
};
