/**
 * `scepter revoke --data DIR --serial S [--reason R]`: marks a certificate revoked in the
 * store and, in the same run, signs and stores a new CRL for its issuer (current or retired
 * CA). A running server serves that CRL from the store at once (GetCRL and /crl).
 */
import { CrlPublisher, REVOCATION_REASONS, revocationReasonName } from '../../ca/crl.js';
import { OperatorError, parseReason, parseSerial, revokeCertificate } from '../../ra/operator.js';
import { parseOptions, req, str, UsageError, type Command } from '../command.js';
import { resolvePassphrase } from './ca.js';
import { loadCaSet, withStore } from './data-store.js';

const USAGE = `Usage: scepter revoke --data DIR --serial SERIAL [--reason REASON]

Revokes a certificate issued by this CA and publishes a new CRL for its issuer.

  --data DIR              the server's data directory (required)
  --serial SERIAL         certificate serial in hex (colons, 0x and leading zeros are ignored)
  --reason REASON         RFC 5280 reason: ${Object.keys(REVOCATION_REASONS).join(', ')}
                          (or its number; default unspecified)
  --crl-validity-hours N  nextUpdate of the new CRL (default 168)
  --db URL                store URL (or env SCEPTER_DB; default sqlite:DIR/scepter.db)
  --passphrase-file F     CA key passphrase (or env SCEPTER_CA_PASSPHRASE)`;

export const revokeCommand: Command = {
  name: 'revoke',
  summary: 'revoke a certificate and publish a new CRL',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(argv, {
      data: { type: 'string' },
      serial: { type: 'string' },
      reason: { type: 'string' },
      'crl-validity-hours': { type: 'string' },
      db: { type: 'string' },
      'passphrase-file': { type: 'string' },
    });
    const data = req(p, 'data');
    let serial: string;
    let reason: ReturnType<typeof parseReason>;
    try {
      serial = parseSerial(req(p, 'serial'));
      reason = parseReason(str(p, 'reason'));
    } catch (e) {
      if (e instanceof OperatorError) throw new UsageError(e.message);
      throw e;
    }
    const hours = str(p, 'crl-validity-hours');
    if (hours !== undefined && !/^\d+$/.test(hours))
      throw new UsageError('--crl-validity-hours must be a whole number');
    const cas = loadCaSet(data, resolvePassphrase(str(p, 'passphrase-file')));
    return withStore(data, str(p, 'db'), async (store) => {
      const crls = new CrlPublisher({
        store,
        cas,
        ...(hours !== undefined ? { validitySeconds: Number(hours) * 3600 } : {}),
      });
      let r;
      try {
        r = await revokeCertificate({ store, crls }, serial, reason);
      } catch (e) {
        if (!(e instanceof OperatorError)) throw e;
        process.stderr.write(`scepter revoke: ${e.message}\n`);
        return 1;
      }
      const out = (s: string) => process.stdout.write(s + '\n');
      if (r.changed) out(`revoked ${serial} (${r.cert.subject}), reason ${revocationReasonName(reason)}`);
      else out(`${serial} was already revoked (reason ${revocationReasonName(r.cert.revocationReason)})`);
      out(`CRL #${r.crl.crlNumber.toString()} published, next update ${r.crl.nextUpdate.toISOString()}`);
      return 0;
    });
  },
};
