/**
 * `scepter certs list|show`: search the issued certificates (see CertificateQuery in
 * src/store/types.ts) as a table or JSON. Read-only; works while the server runs.
 */
import { toPem } from '../../pkix/certificate.js';
import {
  certificateView,
  getCertificate,
  OperatorError,
  searchCertificates,
  type CertificateFilters,
} from '../../ra/operator.js';
import { flag, intOpt, parseOptions, req, str, UsageError, type Command } from '../command.js';
import { table, withStore } from './data-store.js';

const USAGE = `Usage: scepter certs <list|show> --data DIR [options]

  list [filters] [--json] [--limit N]   certificates, newest first
  show <serial> [--json | --pem]        one certificate

Filters (all must match):
  --subject TEXT      substring of the subject DN (case-insensitive)
  --cn TEXT           substring of the common name
  --san VALUE         subjectAltName, exact: dns:host.example or just host.example
  --serial HEX        exact serial
  --status S          valid or revoked
  --expiring-days N   valid until within the next N days

  --data DIR          the server's data directory (required)
  --db URL            store URL (or env SCEPTER_DB; default sqlite:DIR/scepter.db)`;

export const certsCommand: Command = {
  name: 'certs',
  summary: 'list and show issued certificates (filters, table or JSON)',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(
      argv,
      {
        data: { type: 'string' },
        db: { type: 'string' },
        json: { type: 'boolean' },
        pem: { type: 'boolean' },
        subject: { type: 'string' },
        cn: { type: 'string' },
        san: { type: 'string' },
        serial: { type: 'string' },
        status: { type: 'string' },
        'expiring-days': { type: 'string' },
        limit: { type: 'string' },
      },
      true,
    );
    const [sub, arg, ...extra] = p.positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]!}`);
    const data = req(p, 'data');
    const out = (s: string) => process.stdout.write(s + '\n');
    if (sub === 'show') {
      if (!arg) throw new UsageError('show needs a serial');
      return withStore(data, str(p, 'db'), async (store) => {
        let c;
        try {
          c = await getCertificate(store, arg);
        } catch (e) {
          if (!(e instanceof OperatorError)) throw e;
          if (e.kind === 'invalid') throw new UsageError(e.message);
          process.stderr.write(`scepter certs: ${e.message}\n`);
          return 1;
        }
        if (flag(p, 'pem')) process.stdout.write(toPem(c.der));
        else if (flag(p, 'json')) out(JSON.stringify(certificateView(c), null, 2));
        else
          for (const [k, v] of Object.entries(certificateView(c)))
            out(`${k.padEnd(17)} ${Array.isArray(v) ? v.join(', ') : String(v ?? '-')}`);
        return 0;
      });
    }
    if (sub !== 'list') throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
    const f: CertificateFilters = { limit: intOpt(p, 'limit', 100, 1, 10_000) };
    for (const [key, opt] of [
      ['subject', 'subject'],
      ['cn', 'cn'],
      ['san', 'san'],
      ['serial', 'serial'],
      ['status', 'status'],
    ] as const) {
      const v = str(p, opt);
      if (v !== undefined) f[key] = v;
    }
    if (str(p, 'expiring-days') !== undefined) f.expiringDays = intOpt(p, 'expiring-days', 30, 0, 36500);
    return withStore(data, str(p, 'db'), async (store) => {
      let page;
      try {
        page = await searchCertificates(store, f);
      } catch (e) {
        if (e instanceof OperatorError) throw new UsageError(e.message);
        throw e;
      }
      if (flag(p, 'json')) {
        out(JSON.stringify({ total: page.total, items: page.items }, null, 2));
        return 0;
      }
      if (page.items.length === 0) {
        out('no matching certificates');
        return 0;
      }
      out(
        table(
          ['SERIAL', 'STATUS', 'NOT AFTER', 'SUBJECT'],
          page.items.map((c) => [c.serial, c.status, c.notAfter.slice(0, 10), c.subject]),
        ),
      );
      if (page.total > page.items.length) out(`(${page.items.length} of ${page.total}; use --limit)`);
      return 0;
    });
  },
};
