/**
 * `scepter ca <subcommand>`: CA key material (init, rollover, activate, list). Subcommands live
 * in `caSubcommands`; add one entry per subcommand. `--name NAME` selects a named CA
 * (DIR/cas/NAME/) instead of the default CA (DIR/ca/).
 */
import { recordAudit } from '../../ra/audit.js';
import { cliActor } from '../actor.js';
import { OperatorCliError, storeUrlOf, withStore } from './data-store.js';
import {
  DEFAULT_CA_NAME,
  caCommandArgs,
  caDirectory,
  caLocationParts,
  checkCaName,
  listCaNames,
  type CaLocation,
} from '../../ca/ca-location.js';
import { CaError } from '../../ca/issuer.js';
import {
  caExists,
  EC_CA_NEEDS_RA,
  initCa,
  loadCa,
  type CaKeySize,
  type CaKeyType,
  type InitCaOptions,
} from '../../ca/keystore.js';
import { activateRollover, nextCaStaged, stageRollover, type RolloverOptions } from '../../ca/rollover.js';
import { nameText } from '../../pkix/name.js';
import { escapeText } from '../../pkix/text.js';
import {
  durationOpt,
  durationOrAlias,
  flag,
  intOpt,
  parseOptions,
  req,
  secretOption,
  str,
  UsageError,
  type Command,
} from '../command.js';

export interface Subcommand {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/**
 * The CA passphrase: the contents of --passphrase-file (first line, without its newline), else
 * SCEPTER_CA_PASSPHRASE, else undefined.
 */
export function resolvePassphrase(file: string | undefined): string | undefined {
  return secretOption(
    { values: file !== undefined ? { 'passphrase-file': file } : {}, positionals: [] },
    'passphrase-file',
    'SCEPTER_CA_PASSPHRASE',
    { what: 'passphrase' },
  );
}

/** The CA that `--data DIR [--name NAME]` names (no --name, or `default`: DIR/ca/). */
function caLocation(p: ReturnType<typeof parseOptions>): CaLocation {
  const dataDir = req(p, 'data');
  const name = str(p, 'name') ?? DEFAULT_CA_NAME;
  try {
    return { dataDir, name: checkCaName(name) };
  } catch (e) {
    throw new UsageError(`--name: ${(e as CaError).message}`);
  }
}

/** `--validity DURATION` (whole days) or the older `--days N`, as days. */
function caValidityDays(p: ReturnType<typeof parseOptions>): number {
  const seconds = durationOrAlias(p, 'validity', 'days', 86_400, 3650 * 86_400, 86_400, 36_500 * 86_400);
  if (seconds % 86_400 !== 0) throw new UsageError('--validity of a CA must be whole days (e.g. 3650d)');
  return seconds / 86_400;
}

const INIT_USAGE = `Usage: scepter ca init --data DIR [--name NAME] [options]

Creates the CA in DIR/ca/, or with --name a further CA in DIR/cas/NAME/ (same files and
options; a profile names it as its CA). Refuses to overwrite an existing one.

  --data DIR              data directory (required)
  --name NAME             a named CA (lower-case letters, digits, - and _); default: the
                          default CA (its name is \`default\`)
  --key-size N            RSA key size for generated keys: 2048, 3072 (default) or 4096
  --ra-key-size N         RSA key size of the RA key when it should differ (2048, 3072, 4096):
                          a 2048-bit RA under a 3072-bit CA costs less per enrollment; keep its
                          certificate short-lived (see docs/benchmarks.md)
  --ra-validity DURATION  RA certificate validity (default 730d, at most the CA's)
  --ca-key-type T         CA key: rsa (default), ec-p256 or ec-p384. An EC CA needs the RA
                          (the RA key stays RSA: it decrypts and signs the SCEP messages)
  --subject DN            CA subject, e.g. "CN=Example SCEP CA,O=Example" (default: random CN)
  --validity DURATION     CA validity: 3650d, … (default 3650d; --days N still works)
  --ca-only               no separate RA (alias --no-ra). By default the CA gets an RA key and
                          certificate issued by it, which signs and decrypts the SCEP messages
  --ra                    create the RA (the default)
  --passphrase-file F     encrypt the private keys with the passphrase in F
                          (or set SCEPTER_CA_PASSPHRASE)
  --import-key K          import an existing CA key (PEM or DER) ...
  --import-cert C         ... and its certificate (root or intermediate)
  --import-chain CH       certificates above an imported intermediate (PEM)
  --pkcs11-uri URI        the CA key on an HSM: an RFC 7512 PKCS#11 URI such as
                          "pkcs11:token=CA;object=ca-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/scepter/pin"
                          The key pair is generated on the token (sensitive, not extractable);
                          DIR/ca/ca.key records the URI (never a PIN). With --import-cert the
                          certificate of an existing token key is imported
  --ra-pkcs11-uri URI     the RA key on an HSM (same rules; may be another token)
  --pkcs11-existing       use the key objects the URIs name instead of generating them
  --allow-pin-value       accept pin-value=… in the URIs (discouraged: the PIN lands in shell
                          history and process listings); the PIN otherwise comes from the URI's
                          pin-source file or SCEPTER_PKCS11_PIN`;

async function init(argv: string[]): Promise<number> {
  const p = parseOptions(argv, {
    data: { type: 'string' },
    name: { type: 'string' },
    'key-size': { type: 'string' },
    'ra-key-size': { type: 'string' },
    'ra-validity': { type: 'string' },
    'ca-key-type': { type: 'string' },
    subject: { type: 'string' },
    validity: { type: 'string' },
    days: { type: 'string' },
    ra: { type: 'boolean' },
    'ca-only': { type: 'boolean' },
    'no-ra': { type: 'boolean' },
    'passphrase-file': { type: 'string' },
    'import-key': { type: 'string' },
    'import-cert': { type: 'string' },
    'import-chain': { type: 'string' },
    'pkcs11-uri': { type: 'string' },
    'ra-pkcs11-uri': { type: 'string' },
    'pkcs11-existing': { type: 'boolean' },
    'allow-pin-value': { type: 'boolean' },
  });
  const at = caLocation(p);
  const keySize = intOpt(p, 'key-size', 3072, 2048, 4096);
  if (keySize !== 2048 && keySize !== 3072 && keySize !== 4096)
    throw new UsageError('--key-size must be 2048, 3072 or 4096');
  const o: InitCaOptions = {
    keySize: keySize as CaKeySize,
    days: caValidityDays(p),
    ra: !(flag(p, 'ca-only') || flag(p, 'no-ra')),
  };
  if (!o.ra && flag(p, 'ra')) throw new UsageError('give --ra or --ca-only, not both');
  if (str(p, 'ra-key-size') !== undefined) {
    const raKeySize = intOpt(p, 'ra-key-size', keySize, 2048, 4096);
    if (raKeySize !== 2048 && raKeySize !== 3072 && raKeySize !== 4096)
      throw new UsageError('--ra-key-size must be 2048, 3072 or 4096');
    if (!o.ra) throw new UsageError('--ra-key-size needs an RA (not --ca-only)');
    o.raKeySize = raKeySize;
  }
  if (str(p, 'ra-validity') !== undefined) {
    if (!o.ra) throw new UsageError('--ra-validity needs an RA (not --ca-only)');
    const seconds = durationOpt(p, 'ra-validity', 730 * 86_400, 86_400, 36_500 * 86_400);
    if (seconds % 86_400 !== 0) throw new UsageError('--ra-validity must be whole days (e.g. 365d)');
    o.raDays = seconds / 86_400;
  }
  const caKeyType = caKeyTypeOpt(p);
  if (caKeyType !== 'rsa') {
    if (!o.ra) throw new UsageError(`--ca-key-type ${caKeyType}: ${EC_CA_NEEDS_RA}`);
    if (str(p, 'import-key') !== undefined)
      throw new UsageError('--ca-key-type cannot be used with --import-key');
    o.caKeyType = caKeyType;
  }
  const subject = str(p, 'subject');
  if (subject !== undefined) o.subject = subject;
  const importKey = str(p, 'import-key');
  const importCert = str(p, 'import-cert');
  const importChain = str(p, 'import-chain');
  const pkcs11Uri = str(p, 'pkcs11-uri');
  const raPkcs11Uri = str(p, 'ra-pkcs11-uri');
  if (pkcs11Uri !== undefined && importKey !== undefined)
    throw new UsageError('--pkcs11-uri and --import-key exclude each other');
  if (pkcs11Uri !== undefined && importCert !== undefined && !flag(p, 'pkcs11-existing'))
    throw new UsageError(
      '--import-cert with --pkcs11-uri needs --pkcs11-existing (the key the certificate is for)',
    );
  if (pkcs11Uri === undefined && (importKey === undefined) !== (importCert === undefined)) {
    throw new UsageError('--import-key and --import-cert go together');
  }
  if (flag(p, 'pkcs11-existing') && pkcs11Uri === undefined && raPkcs11Uri === undefined)
    throw new UsageError('--pkcs11-existing needs --pkcs11-uri or --ra-pkcs11-uri');
  if (raPkcs11Uri !== undefined && !o.ra) throw new UsageError('--ra-pkcs11-uri needs an RA (not --ca-only)');
  if (pkcs11Uri !== undefined) o.pkcs11Uri = pkcs11Uri;
  if (raPkcs11Uri !== undefined) o.raPkcs11Uri = raPkcs11Uri;
  if (flag(p, 'pkcs11-existing')) o.pkcs11Existing = true;
  if (flag(p, 'allow-pin-value')) o.allowPinValue = true;
  if (importChain !== undefined && importCert === undefined)
    throw new UsageError('--import-chain needs --import-cert');
  if (importCert !== undefined && subject !== undefined)
    throw new UsageError('--subject cannot be used with --import-cert');
  if (importKey !== undefined) o.importKey = importKey;
  if (importCert !== undefined) o.importCert = importCert;
  if (importChain !== undefined) o.importChain = importChain;
  const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
  if (passphrase !== undefined) o.passphrase = passphrase;
  if (caExists(at)) {
    process.stderr.write(`scepter ca init: a CA already exists in ${caDirectory(at)}; not overwriting it\n`);
    return 1;
  }
  const res = await initCa(at, o);
  const out = process.stdout;
  out.write(`${res.imported ? 'imported' : 'created'} CA ${nameText(res.caCert.subjectRaw)}\n`);
  if (typeof at !== 'string' && at.name !== DEFAULT_CA_NAME) out.write(`  name         ${at.name}\n`);
  out.write(`  certificate  ${res.paths.cert} (valid until ${res.caCert.notAfter.toISOString()})\n`);
  out.write(
    res.caKeyUri
      ? `  key          on the token ${escapeText(res.caKeyUri)} (recorded in ${res.paths.key})\n`
      : `  key          ${res.paths.key} (mode 0600${res.encrypted ? ', encrypted' : ''})\n`,
  );
  if (res.chain.length > 0)
    out.write(`  chain        ${res.paths.chain} (${res.chain.length} certificate(s))\n`);
  if (res.raCert) {
    out.write(`  RA cert      ${res.paths.raCert} (${nameText(res.raCert.subjectRaw)})\n`);
    out.write(
      res.raKeyUri
        ? `  RA key       on the token ${escapeText(res.raKeyUri)} (recorded in ${res.paths.raKey})\n`
        : `  RA key       ${res.paths.raKey}\n`,
    );
  }
  out.write(`  fingerprint  sha256:${res.caCert.fingerprint}\n`);
  return 0;
}

/** `--ca-key-type rsa|ec-p256|ec-p384` (default rsa). */
export function caKeyTypeOpt(p: ReturnType<typeof parseOptions>): CaKeyType {
  const v = str(p, 'ca-key-type') ?? 'rsa';
  if (v !== 'rsa' && v !== 'ec-p256' && v !== 'ec-p384')
    throw new UsageError('--ca-key-type must be rsa, ec-p256 or ec-p384');
  return v;
}

const ROLLOVER_USAGE = `Usage: scepter ca rollover --data DIR [--name NAME] [options]

Stages a next CA in DIR/ca/next/ (with --name: DIR/cas/NAME/next/): a new key (mode 0600) and self-signed certificate, in RA
mode also a new RA key and certificate issued by it, and cross.crt (the new CA key certified
by the current CA). A running server offers it at once through GetNextCACert (and lists
GetNextCACert in GetCACaps); \`scepter ca activate\` makes it current. Refuses when a next CA
is already staged (remove DIR/ca/next/ to discard it).

  --data DIR              data directory (required)
  --name NAME             the named CA to roll over (default: the default CA)
  --key-size N            RSA key size: 2048, 3072 or 4096 (default: that of the current CA;
                          the next RA keeps the current RA's key size and lifetime)
  --subject DN            subject of the next CA; must differ from the current one
                          (default: the current subject with " G2", " G3", … on its CN)
  --validity DURATION     validity (default 3650d; --days N still works)
  --no-cross              do not write cross.crt
  --db URL                store whose audit trail records the rollover (default: the one
                          \`scepter serve\` recorded in DIR/store.json)
  --passphrase-file F     passphrase of the CA keys (or SCEPTER_CA_PASSPHRASE); the new keys
                          are encrypted with it too`;

async function rollover(argv: string[]): Promise<number> {
  const p = parseOptions(argv, {
    data: { type: 'string' },
    name: { type: 'string' },
    'key-size': { type: 'string' },
    subject: { type: 'string' },
    validity: { type: 'string' },
    days: { type: 'string' },
    'no-cross': { type: 'boolean' },
    'passphrase-file': { type: 'string' },
    db: { type: 'string' },
  });
  const at = caLocation(p);
  const o: RolloverOptions = { days: caValidityDays(p) };
  if (str(p, 'key-size') !== undefined) {
    const keySize = intOpt(p, 'key-size', 3072, 2048, 4096);
    if (keySize !== 2048 && keySize !== 3072 && keySize !== 4096)
      throw new UsageError('--key-size must be 2048, 3072 or 4096');
    o.keySize = keySize;
  }
  const subject = str(p, 'subject');
  if (subject !== undefined) o.subject = subject;
  if (flag(p, 'no-cross')) o.cross = false;
  const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
  if (passphrase !== undefined) o.passphrase = passphrase;
  if (!caExists(at)) {
    process.stderr.write(
      `scepter ca rollover: no CA in ${caDirectory(at)}; run \`scepter ca init ${caCommandArgs(at)}\` first\n`,
    );
    return 1;
  }
  if (nextCaStaged(at)) {
    process.stderr.write(
      `scepter ca rollover: a next CA is already staged in ${caDirectory(at)}/next; ` +
        `activate it (\`scepter ca activate ${caCommandArgs(at)}\`) or remove that directory\n`,
    );
    return 1;
  }
  const res = await stageRollover(at, o);
  const out = process.stdout;
  out.write(`staged next CA ${nameText(res.caCert.subjectRaw)}\n`);
  out.write(`  certificate  ${res.paths.cert} (valid until ${res.caCert.notAfter.toISOString()})\n`);
  out.write(`  key          ${res.paths.key} (mode 0600${res.encrypted ? ', encrypted' : ''})\n`);
  if (res.raCert) out.write(`  RA cert      ${res.paths.raCert} (${nameText(res.raCert.subjectRaw)})\n`);
  if (res.crossCert) out.write(`  cross cert   ${res.paths.cross} (issued by the current CA)\n`);
  out.write(`  fingerprint  sha256:${res.caCert.fingerprint}\n`);
  out.write(
    `Clients can fetch it now (GetNextCACert). Switch over with \`scepter ca activate ${caCommandArgs(at)}\`, then restart the server.\n`,
  );
  await auditCa(at, str(p, 'db'), 'ca.rollover.staged', res.caCert.fingerprint, {
    subject: nameText(res.caCert.subjectRaw),
    notAfter: res.caCert.notAfter.toISOString(),
    ra: res.raCert !== undefined,
  });
  return 0;
}

/**
 * Records a CA action in the audit trail of the data directory's store (actor `cli:<user>`).
 * Without a store yet (the server never started) there is no trail: a note says so.
 */
async function auditCa(
  at: CaLocation,
  db: string | undefined,
  action: 'ca.rollover.staged' | 'ca.activated',
  fingerprint: string,
  details: Record<string, string | boolean>,
): Promise<void> {
  const { dataDir: data, name } = caLocationParts(at);
  let url: string;
  try {
    url = storeUrlOf(data, db);
  } catch (e) {
    if (!(e instanceof OperatorCliError)) throw e;
    process.stdout.write(`not recorded in the audit trail: ${e.message}\n`);
    return;
  }
  await withStore(data, url, (store) =>
    recordAudit(store, cliActor(), action, fingerprint, { ca: name, ...details }),
  );
}

const ACTIVATE_USAGE = `Usage: scepter ca activate --data DIR [--name NAME] [--passphrase-file F] [--db URL]

Makes the CA staged by \`scepter ca rollover\` current. The current CA's files move to
DIR/ca/previous/<sha256 fingerprint>/ (with --name: DIR/cas/NAME/previous/…), where the server keeps using them for the certificates
it issued (GetCert, renewal, revocation, its CRL). In RA mode the staged RA becomes the RA.
Takes effect when the server is next started; a running server keeps the old CA until then.

  --data DIR              data directory (required)
  --name NAME             the named CA (default: the default CA)
  --passphrase-file F     passphrase of the CA keys (or SCEPTER_CA_PASSPHRASE)
  --db URL                store whose audit trail records the activation (default: the one
                          \`scepter serve\` recorded in DIR/store.json)`;

async function activate(argv: string[]): Promise<number> {
  const p = parseOptions(argv, {
    data: { type: 'string' },
    name: { type: 'string' },
    'passphrase-file': { type: 'string' },
    db: { type: 'string' },
  });
  const at = caLocation(p);
  const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
  if (!nextCaStaged(at)) {
    process.stderr.write(
      `scepter ca activate: no next CA is staged in ${caDirectory(at)}/next; ` +
        `run \`scepter ca rollover ${caCommandArgs(at)}\` first\n`,
    );
    return 1;
  }
  const res = activateRollover(at, passphrase);
  const out = process.stdout;
  out.write(`activated CA ${nameText(res.caCert.subjectRaw)}\n`);
  out.write(`  fingerprint  sha256:${res.caCert.fingerprint}\n`);
  if (res.raCert) out.write(`  RA cert      ${nameText(res.raCert.subjectRaw)}\n`);
  out.write(
    `retired CA ${nameText(res.previous.caCert.subjectRaw)} (sha256:${res.previous.caCert.fingerprint})\n`,
  );
  out.write(`  kept in      ${res.previous.dir}\n`);
  out.write('Restart the server to issue under the new CA.\n');
  await auditCa(at, str(p, 'db'), 'ca.activated', res.caCert.fingerprint, {
    subject: nameText(res.caCert.subjectRaw),
    retired: res.previous.caCert.fingerprint,
  });
  return 0;
}

const LIST_USAGE = `Usage: scepter ca list --data DIR [--json] [--passphrase-file F]

Lists the CAs of the data directory: the default CA (DIR/ca/, name \`default\`) and every
named CA (DIR/cas/NAME/), with subject, fingerprint, expiry, RA and whether a next CA is staged.

  --data DIR              data directory (required)
  --json                  one JSON array
  --passphrase-file F     passphrase of the CA keys (or SCEPTER_CA_PASSPHRASE)`;

async function list(argv: string[]): Promise<number> {
  const p = parseOptions(argv, {
    data: { type: 'string' },
    json: { type: 'boolean' },
    'passphrase-file': { type: 'string' },
  });
  const dataDir = req(p, 'data');
  const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
  const rows = listCaNames(dataDir).map((name) => {
    const at = { dataDir, name };
    const l = loadCa(at, passphrase);
    return {
      name,
      dir: caDirectory(at),
      subject: nameText(l.caCert.subjectRaw),
      fingerprint: l.caCert.fingerprint,
      notAfter: l.caCert.notAfter.toISOString(),
      ra: l.ra !== undefined,
      nextStaged: nextCaStaged(at),
    };
  });
  const out = process.stdout;
  if (flag(p, 'json')) {
    out.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  if (rows.length === 0) {
    out.write(`no CA in ${dataDir}\n`);
    return 0;
  }
  for (const r of rows) {
    out.write(`${r.name}  ${r.subject}\n`);
    out.write(`  dir          ${r.dir}\n`);
    out.write(`  fingerprint  sha256:${r.fingerprint}\n`);
    out.write(
      `  valid until  ${r.notAfter}${r.ra ? '  (with RA)' : ''}${r.nextStaged ? '  (next CA staged)' : ''}\n`,
    );
  }
  return 0;
}

/** `scepter ca` subcommands; add one entry per subcommand. */
export const caSubcommands: Record<string, Subcommand> = {
  init: { summary: 'create or import the CA (with an RA unless --ca-only)', usage: INIT_USAGE, run: init },
  rollover: { summary: 'stage a next CA (offered by GetNextCACert)', usage: ROLLOVER_USAGE, run: rollover },
  activate: { summary: 'make the staged next CA current', usage: ACTIVATE_USAGE, run: activate },
  list: { summary: 'list the CAs of a data directory (default and named)', usage: LIST_USAGE, run: list },
};

function usage(): string {
  const lines = ['Usage: scepter ca <subcommand> [options]', '', 'Subcommands:'];
  for (const [name, s] of Object.entries(caSubcommands)) lines.push(`  ${name.padEnd(10)} ${s.summary}`);
  lines.push('', 'Run `scepter ca <subcommand> --help` for its options.');
  return lines.join('\n');
}

export const caCommand: Command = {
  name: 'ca',
  summary: 'manage the certificate authorities (init, rollover, activate, list)',
  get usage() {
    return usage();
  },
  helpFor(sub: string): string | undefined {
    return Object.hasOwn(caSubcommands, sub) ? caSubcommands[sub]?.usage : undefined;
  },
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined) throw new UsageError('missing subcommand');
    const s = Object.hasOwn(caSubcommands, sub) ? caSubcommands[sub] : undefined;
    if (!s) throw new UsageError(`unknown subcommand '${sub}'`);
    return s.run(rest);
  },
};
