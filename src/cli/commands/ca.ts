/**
 * `scepter ca <subcommand>`: CA key material. Subcommands live in `caSubcommands`; add one
 * entry per subcommand (rollover/activate come later).
 */
import { readFileSync } from 'node:fs';
import { caExists, initCa, type CaKeySize, type InitCaOptions } from '../../ca/keystore.js';
import { nameToString } from '../../pkix/name.js';
import { flag, intOpt, parseOptions, req, str, UsageError, type Command } from '../command.js';

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
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new UsageError(`cannot read --passphrase-file ${file}`);
    }
    const first = text.split(/\r?\n/)[0] ?? '';
    if (first === '') throw new UsageError('--passphrase-file is empty');
    return first;
  }
  const env = process.env.SCEPTER_CA_PASSPHRASE;
  return env !== undefined && env !== '' ? env : undefined;
}

const INIT_USAGE = `Usage: scepter ca init --data DIR [options]

Creates the CA in DIR/ca/ (refuses to overwrite an existing one).

  --data DIR              data directory (required)
  --key-size N            RSA key size for generated keys: 2048, 3072 (default) or 4096
  --subject DN            CA subject, e.g. "CN=Example SCEP CA,O=Example" (default: random CN)
  --days N                CA validity in days (default 3650)
  --ra                    also create a separate RA key and certificate issued by the CA
  --passphrase-file F     encrypt the private keys with the passphrase in F
                          (or set SCEPTER_CA_PASSPHRASE)
  --import-key K          import an existing CA key (PEM or DER) ...
  --import-cert C         ... and its certificate (root or intermediate)
  --import-chain CH       certificates above an imported intermediate (PEM)`;

async function init(argv: string[]): Promise<number> {
  const p = parseOptions(argv, {
    data: { type: 'string' },
    'key-size': { type: 'string' },
    subject: { type: 'string' },
    days: { type: 'string' },
    ra: { type: 'boolean' },
    'passphrase-file': { type: 'string' },
    'import-key': { type: 'string' },
    'import-cert': { type: 'string' },
    'import-chain': { type: 'string' },
  });
  const data = req(p, 'data');
  const keySize = intOpt(p, 'key-size', 3072, 2048, 4096);
  if (keySize !== 2048 && keySize !== 3072 && keySize !== 4096)
    throw new UsageError('--key-size must be 2048, 3072 or 4096');
  const o: InitCaOptions = {
    keySize: keySize as CaKeySize,
    days: intOpt(p, 'days', 3650, 1, 36500),
    ra: flag(p, 'ra'),
  };
  const subject = str(p, 'subject');
  if (subject !== undefined) o.subject = subject;
  const importKey = str(p, 'import-key');
  const importCert = str(p, 'import-cert');
  const importChain = str(p, 'import-chain');
  if ((importKey === undefined) !== (importCert === undefined)) {
    throw new UsageError('--import-key and --import-cert go together');
  }
  if (importChain !== undefined && importCert === undefined)
    throw new UsageError('--import-chain needs --import-cert');
  if (importKey !== undefined && subject !== undefined)
    throw new UsageError('--subject cannot be used with --import-cert');
  if (importKey !== undefined) o.importKey = importKey;
  if (importCert !== undefined) o.importCert = importCert;
  if (importChain !== undefined) o.importChain = importChain;
  const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
  if (passphrase !== undefined) o.passphrase = passphrase;
  if (caExists(data)) {
    process.stderr.write(`scepter ca init: a CA already exists in ${data}/ca; not overwriting it\n`);
    return 1;
  }
  const res = await initCa(data, o);
  const out = process.stdout;
  out.write(`${res.imported ? 'imported' : 'created'} CA ${nameToString(res.caCert.subjectRaw)}\n`);
  out.write(`  certificate  ${res.paths.cert} (valid until ${res.caCert.notAfter.toISOString()})\n`);
  out.write(`  key          ${res.paths.key} (mode 0600${res.encrypted ? ', encrypted' : ''})\n`);
  if (res.chain.length > 0)
    out.write(`  chain        ${res.paths.chain} (${res.chain.length} certificate(s))\n`);
  if (res.raCert) {
    out.write(`  RA cert      ${res.paths.raCert} (${nameToString(res.raCert.subjectRaw)})\n`);
    out.write(`  RA key       ${res.paths.raKey}\n`);
  }
  out.write(`  fingerprint  sha256:${res.caCert.fingerprint}\n`);
  return 0;
}

/** `scepter ca` subcommands; add one entry per subcommand. */
export const caSubcommands: Record<string, Subcommand> = {
  init: { summary: 'create or import the CA (and optionally an RA)', usage: INIT_USAGE, run: init },
};

function usage(): string {
  const lines = ['Usage: scepter ca <subcommand> [options]', '', 'Subcommands:'];
  for (const [name, s] of Object.entries(caSubcommands)) lines.push(`  ${name.padEnd(10)} ${s.summary}`);
  lines.push('', 'Run `scepter ca <subcommand> --help` for its options.');
  return lines.join('\n');
}

export const caCommand: Command = {
  name: 'ca',
  summary: 'manage the certificate authority (init)',
  get usage() {
    return usage();
  },
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined) throw new UsageError('missing subcommand');
    const s = caSubcommands[sub];
    if (!s) throw new UsageError(`unknown subcommand '${sub}'`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(s.usage + '\n');
      return 0;
    }
    return s.run(rest);
  },
};
