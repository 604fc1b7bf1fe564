/**
 * `scepter revoke --data DIR --serial S [--reason R]`: marks a certificate revoked in the
 * store and, in the same run, signs and stores a new CRL for its issuer (current or retired
 * CA). A running server serves that CRL from the store at once (GetCRL and /crl).
 */
import {
  CrlPublisher,
  parseRevocationReason,
  REVOCATION_REASONS,
  revocationReasonName,
} from '../../ca/crl.js';
import { normalizeSerial } from '../../store/index.js';
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
    try {
      serial = normalizeSerial(req(p, 'serial'));
    } catch {
      throw new UsageError('--serial must be hexadecimal');
    }
    const reasonText = str(p, 'reason');
    const reason = reasonText === undefined ? 0 : parseRevocationReason(reasonText);
    if (reason === undefined) throw new UsageError(`unknown --reason ${JSON.stringify(reasonText)}`);
    const hours = str(p, 'crl-validity-hours');
    if (hours !== undefined && !/^\d+$/.test(hours))
      throw new UsageError('--crl-validity-hours must be a whole number');
    const cas = loadCaSet(data, resolvePassphrase(str(p, 'passphrase-file')));
    return withStore(data, str(p, 'db'), async (store) => {
      const cert = await store.getCertificate(serial);
      if (!cert) {
        process.stderr.write(`scepter revoke: no certificate with serial ${serial}\n`);
        return 1;
      }
      const issuer = cas.byFingerprint(cert.issuer);
      if (!issuer) {
        process.stderr.write(
          `scepter revoke: the issuer of ${serial} (${cert.issuer}) is not a CA of ${data}\n`,
        );
        return 1;
      }
      const changed = await store.revoke(serial, reason, new Date());
      const crls = new CrlPublisher({
        store,
        cas,
        ...(hours !== undefined ? { validitySeconds: Number(hours) * 3600 } : {}),
      });
      const crl = await crls.regenerate(issuer.cert.fingerprint);
      const out = (s: string) => process.stdout.write(s + '\n');
      if (changed) out(`revoked ${serial} (${cert.subject}), reason ${revocationReasonName(reason)}`);
      else {
        const now = await store.getCertificate(serial);
        out(`${serial} was already revoked (reason ${revocationReasonName(now?.revocationReason ?? null)})`);
      }
      out(`CRL #${crl.crlNumber.toString()} published, next update ${crl.nextUpdate.toISOString()}`);
      return 0;
    });
  },
};
