/**
 * `scepter audit list|verify`: the audit trail of the data directory's store (docs/server.md
 * "Audit trail"). `list` prints records newest first (every stored text escaped); `verify`
 * checks the whole hash chain, prints the head for the operator to record, and exits 1 naming
 * the first broken row.
 */
import {
  AuditQueryError,
  DEFAULT_AUDIT_PAGE,
  listAuditRecords,
  MAX_AUDIT_PAGE,
  parseAuditHead,
  verifyAuditTrail,
  type AuditFilters,
} from '../../ra/audit.js';
import { OperatorError, parseTime } from '../../ra/operator.js';
import { flag, intOpt, noExtra, parseOptions, str, UsageError, type Command } from '../command.js';
import { OPERATOR_OPTIONS, OPERATOR_USAGE, safeJson, storeOptions, table, withStore } from './data-store.js';

const USAGE = `Usage: scepter audit <list|verify> --data DIR [options]

The audit trail: every operator action (approve, reject, revoke, challenge minted, CA rollover
and activation, configuration reload) and every enrollment issued or refused, hash-chained.

  list [--json]        records, newest first
    --action A         one action (enroll.issued, enroll.refused, request.approved,
                       request.rejected, certificate.revoked, challenge.minted,
                       ca.rollover.staged, ca.activated, config.reloaded) or a prefix (enroll.)
    --since T          at or after T (ISO 8601: 2026-01-31 or 2026-01-31T12:00Z)
    --limit N          how many (default ${DEFAULT_AUDIT_PAGE}, at most ${MAX_AUDIT_PAGE})
    --before SEQ       older than record SEQ (the next page)
  verify [--json]      check the whole chain; prints the head (SEQ:HASH): record it somewhere
                       the database's writers cannot change, and check it later with
    --head SEQ:HASH    fail unless row SEQ still has HASH (finds a rewritten or cut chain)
                       Exit 1 when the chain is broken, naming the first broken row.

${OPERATOR_USAGE}`;

export const auditCommand: Command = {
  name: 'audit',
  summary: 'list the audit trail or verify its hash chain',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(
      argv,
      {
        ...OPERATOR_OPTIONS,
        action: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        before: { type: 'string' },
        head: { type: 'string' },
      },
      true,
    );
    const [sub, ...extra] = p.positionals;
    noExtra(extra);
    if (sub !== 'list' && sub !== 'verify')
      throw new UsageError(
        sub === undefined ? 'missing subcommand (list or verify)' : `unknown subcommand '${sub}'`,
      );
    const { data, db } = storeOptions(p);
    const out = (s: string) => process.stdout.write(s + '\n');
    const json = flag(p, 'json');

    if (sub === 'verify') {
      for (const o of ['action', 'since', 'limit', 'before'])
        if (str(p, o) !== undefined) throw new UsageError(`--${o} goes with list`);
      let expectHead: { seq: number; hash: string } | undefined;
      const head = str(p, 'head');
      try {
        if (head !== undefined) expectHead = parseAuditHead(head);
      } catch (e) {
        if (e instanceof AuditQueryError) throw new UsageError(`--head: ${e.message}`);
        throw e;
      }
      const r = await withStore(data, db, (store) =>
        verifyAuditTrail(store, expectHead ? { expectHead } : {}),
      );
      if (json) out(safeJson(r));
      else if (r.broken) {
        process.stderr.write(`audit trail BROKEN at row ${r.broken.seq}: ${r.broken.problem}\n`);
        out(`rows 1–${r.head.seq} are intact; last intact head ${r.head.seq}:${r.head.hash}`);
      } else if (r.headMismatch) {
        process.stderr.write(`audit trail does not match the recorded head: ${r.headMismatch}\n`);
        out(`chain of ${r.rows} rows is consistent; head ${r.head.seq}:${r.head.hash}`);
      } else {
        out(`audit trail intact: ${r.rows} row${r.rows === 1 ? '' : 's'}`);
        out(`head ${r.head.seq}:${r.head.hash}`);
        if (expectHead) out(`row ${expectHead.seq} matches the recorded head`);
      }
      return r.ok ? 0 : 1;
    }

    if (str(p, 'head') !== undefined) throw new UsageError('--head goes with verify');
    const f: AuditFilters = { limit: intOpt(p, 'limit', DEFAULT_AUDIT_PAGE, 1, MAX_AUDIT_PAGE) };
    const action = str(p, 'action');
    if (action !== undefined) f.action = action;
    const before = str(p, 'before');
    if (before !== undefined) f.before = intOpt(p, 'before', 1, 1, Number.MAX_SAFE_INTEGER);
    const since = str(p, 'since');
    try {
      if (since !== undefined) f.since = parseTime('since', since);
    } catch (e) {
      if (e instanceof OperatorError) throw new UsageError(e.message);
      throw e;
    }
    let page;
    try {
      page = await withStore(data, db, (store) => listAuditRecords(store, f));
    } catch (e) {
      if (e instanceof AuditQueryError) throw new UsageError(`--action: ${e.message}`);
      throw e;
    }
    if (json) {
      out(safeJson(page));
      return 0;
    }
    if (page.items.length === 0) {
      out('no audit records');
      return 0;
    }
    out(
      table(
        ['SEQ', 'AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAILS'],
        page.items.map((r) => [
          String(r.seq),
          r.at,
          r.actor,
          r.action,
          r.target ?? '-',
          Object.entries(r.details ?? {})
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ') || '-',
        ]),
      ),
    );
    if (page.nextBefore !== undefined) out(`(more: --before ${page.nextBefore})`);
    return 0;
  },
};
