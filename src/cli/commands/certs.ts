/**
 * `scepter certs list|show`: search the issued certificates (see CertificateQuery in
 * src/store/types.ts) as a table or JSON. Read-only; works while the server runs. Subjects and
 * SANs (chosen by the devices) are escaped before they are printed.
 */
import { toPem } from '../../pkix/certificate.js';
import {
  certificateView,
  DEFAULT_PAGE_LIMIT,
  getCertificate,
  MAX_PAGE_LIMIT,
  OperatorError,
  searchCertificates,
  type CertificateFilters,
} from '../../ra/operator.js';
import {
  durationOrAlias,
  flag,
  intOpt,
  noExtra,
  parseOptions,
  str,
  UsageError,
  type Command,
} from '../command.js';
import {
  cell,
  keyValues,
  OPERATOR_OPTIONS,
  OPERATOR_USAGE,
  safeJson,
  storeOptions,
  table,
  withStore,
} from './data-store.js';

const USAGE = `Usage: scepter certs <list|show> --data DIR [options]

  list [filters] [--json]               certificates, newest first
  show <serial> [--ca NAME] [--json | --pem]
                                        one certificate (--ca when two CAs issued that serial)

Filters (all must match) and paging:
  --subject TEXT      substring of the subject DN (case-insensitive)
  --cn TEXT           substring of the common name
  --san VALUE         subjectAltName, exact: dns:host.example or just host.example
  --serial HEX        exact serial
  --status S          valid or revoked
  --ca NAME           issued by this CA (\`default\`: the default CA)
  --profile NAME      issued under this profile
  --expiring DURATION valid until within the next DURATION (30d, 12h; --expiring-days N too)
  --since T, --until T  issued at/after, before T (ISO 8601: 2026-01-31 or 2026-01-31T12:00Z)
  --limit N           page size (default ${DEFAULT_PAGE_LIMIT}, at most ${MAX_PAGE_LIMIT})
  --cursor C          the next page (the "nextCursor" of the previous one)

${OPERATOR_USAGE}`;

export const certsCommand: Command = {
  name: 'certs',
  summary: 'list and show issued certificates (filters, table or JSON)',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(
      argv,
      {
        ...OPERATOR_OPTIONS,
        pem: { type: 'boolean' },
        subject: { type: 'string' },
        cn: { type: 'string' },
        san: { type: 'string' },
        serial: { type: 'string' },
        status: { type: 'string' },
        ca: { type: 'string' },
        profile: { type: 'string' },
        expiring: { type: 'string' },
        'expiring-days': { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
      },
      true,
    );
    const [sub, arg, ...extra] = p.positionals;
    noExtra(extra);
    if (sub !== 'list' && sub !== 'show')
      throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand (list or show)');
    const { data, db } = storeOptions(p);
    const out = (s: string) => process.stdout.write(s + '\n');
    if (sub === 'show') {
      if (!arg) throw new UsageError('show needs a serial');
      if (flag(p, 'pem') && flag(p, 'json')) throw new UsageError('give --json or --pem, not both');
      return withStore(data, db, async (store) => {
        let c;
        try {
          c = await getCertificate(store, arg, str(p, 'ca'));
        } catch (e) {
          if (!(e instanceof OperatorError)) throw e;
          if (e.kind === 'invalid') throw new UsageError(e.message);
          process.stderr.write(`scepter certs show: ${cell(e.message)}\n`);
          return 1;
        }
        if (flag(p, 'pem')) process.stdout.write(toPem(c.der));
        else if (flag(p, 'json')) out(safeJson(certificateView(c)));
        else out(keyValues({ ...certificateView(c) }, 17));
        return 0;
      });
    }
    if (arg !== undefined) noExtra([arg]);
    const f: CertificateFilters = { limit: intOpt(p, 'limit', DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT) };
    const filters = [
      'subject',
      'cn',
      'san',
      'serial',
      'status',
      'ca',
      'profile',
      'since',
      'until',
      'cursor',
    ] as const;
    for (const k of filters) {
      const v = str(p, k);
      if (v !== undefined) f[k] = v;
    }
    if (str(p, 'expiring') !== undefined || str(p, 'expiring-days') !== undefined)
      f.expiringDays = Math.ceil(
        durationOrAlias(p, 'expiring', 'expiring-days', 86_400, 0, 0, 36_500 * 86_400) / 86_400,
      );
    return withStore(data, db, async (store) => {
      let page;
      try {
        page = await searchCertificates(store, f);
      } catch (e) {
        if (e instanceof OperatorError) throw new UsageError(e.message);
        throw e;
      }
      if (flag(p, 'json')) {
        out(safeJson(page));
        return 0;
      }
      if (page.items.length === 0) {
        out('no matching certificates');
        return 0;
      }
      out(
        table(
          ['SERIAL', 'STATUS', 'NOT AFTER', 'CA', 'PROFILE', 'SUBJECT'],
          page.items.map((c) => [c.serial, c.status, c.notAfter.slice(0, 10), c.ca, c.profile, c.subject]),
        ),
      );
      if (page.nextCursor !== undefined)
        out(`(${page.items.length} of ${page.total}; next page: --cursor ${page.nextCursor})`);
      return 0;
    });
  },
};
