/**
 * `scepter revoke --data DIR --serial S [--reason R] [--ca NAME]`: marks a certificate revoked
 * in the store and, in the same run, signs and stores a new CRL for its issuer (current or
 * retired CA of its CA). A running server serves that CRL from the store at once (GetCRL and
 * /crl). `--ca` names the CA when several CAs issued that serial.
 */
import { cliActor } from '../actor.js';
import { caExists } from '../../ca/keystore.js';
import { CrlPublisher, REVOCATION_REASONS, revocationReasonName } from '../../ca/crl.js';
import {
  certificateView,
  OperatorError,
  parseReason,
  parseSerial,
  revokeCertificate,
} from '../../ra/operator.js';
import {
  crlValidityOpt,
  flag,
  noExtra,
  parseOptions,
  req,
  str,
  UsageError,
  type Command,
} from '../command.js';
import { resolvePassphrase } from './ca.js';
import {
  cell,
  loadCaSet,
  OPERATOR_OPTIONS,
  OPERATOR_USAGE,
  safeJson,
  storeOptions,
  storeUrlOf,
  withStore,
} from './data-store.js';

const USAGE = `Usage: scepter revoke --data DIR --serial SERIAL [--reason REASON] [--ca NAME]

Revokes a certificate issued by one of the data directory's CAs and publishes a new CRL for
its issuer.

  --serial SERIAL         certificate serial in hex (colons, 0x and leading zeros are ignored)
  --ca NAME               the CA that issued it (needed only when several CAs issued that
                          serial; \`default\` is the default CA)
  --reason REASON         RFC 5280 reason: ${Object.keys(REVOCATION_REASONS).join(', ')}
                          (or its number; default unspecified)
  --crl-validity DURATION nextUpdate of the new CRL: 12h, 7d ... (default 7d;
                          --crl-validity-hours N still works)
  --passphrase-file F     CA key passphrase (or env SCEPTER_CA_PASSPHRASE)

${OPERATOR_USAGE}`;

export const revokeCommand: Command = {
  name: 'revoke',
  summary: 'revoke a certificate and publish a new CRL',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(
      argv,
      {
        ...OPERATOR_OPTIONS,
        serial: { type: 'string' },
        reason: { type: 'string' },
        ca: { type: 'string' },
        'crl-validity': { type: 'string' },
        'crl-validity-hours': { type: 'string' },
        'passphrase-file': { type: 'string' },
      },
      true,
    );
    noExtra(p.positionals);
    const { data, db } = storeOptions(p);
    let serial: string;
    let reason: ReturnType<typeof parseReason>;
    try {
      serial = parseSerial(req(p, 'serial'));
      reason = parseReason(str(p, 'reason'));
    } catch (e) {
      if (e instanceof OperatorError) throw new UsageError(e.message);
      throw e;
    }
    const validitySeconds = crlValidityOpt(p);
    const url = storeUrlOf(data, db);
    const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
    return withStore(data, url, async (store) => {
      // The publisher of the certificate's CA, loaded once its CA is known.
      const crls = (name: string) =>
        caExists({ dataDir: data, name })
          ? new CrlPublisher({ store, cas: loadCaSet(data, passphrase, name), validitySeconds })
          : undefined;
      let r;
      try {
        r = await revokeCertificate(
          { store, crls, actor: cliActor() },
          serial,
          reason,
          new Date(),
          str(p, 'ca'),
        );
      } catch (e) {
        if (!(e instanceof OperatorError)) throw e;
        process.stderr.write(`scepter revoke: ${cell(e.message)}\n`);
        return 1;
      }
      const out = (s: string) => process.stdout.write(s + '\n');
      if (flag(p, 'json')) {
        out(
          safeJson({
            ...certificateView(r.cert),
            changed: r.changed,
            crl: {
              crlNumber: r.crl.crlNumber.toString(),
              thisUpdate: r.crl.thisUpdate.toISOString(),
              nextUpdate: r.crl.nextUpdate.toISOString(),
            },
          }),
        );
        return 0;
      }
      if (r.changed)
        out(`revoked ${serial} (${cell(r.cert.subject)}), reason ${revocationReasonName(reason)}`);
      else out(`${serial} was already revoked (reason ${revocationReasonName(r.cert.revocationReason)})`);
      out(`CRL #${r.crl.crlNumber.toString()} published, next update ${r.crl.nextUpdate.toISOString()}`);
      return 0;
    });
  },
};
