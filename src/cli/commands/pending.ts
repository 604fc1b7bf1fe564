/**
 * `scepter pending list|show|approve|reject`: the manual-approval queue (see docs/server.md).
 * Works while the server runs: decisions go to the shared store and the server answers the
 * device's next CertPoll or resent PKCSReq accordingly (the certificate is issued then).
 * Every value a device supplied (subject, SANs, transactionID) is escaped before it is printed.
 */
import { cliActor } from '../actor.js';
import {
  decideRequest,
  DEFAULT_PAGE_LIMIT,
  getRequest,
  listRequests,
  MAX_PAGE_LIMIT,
  OperatorError,
  parseTransactionState,
  requestView,
  type RequestFilters,
} from '../../ra/operator.js';
import { flag, intOpt, noExtra, parseOptions, str, UsageError, type Command } from '../command.js';
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

const USAGE = `Usage: scepter pending <list|show|approve|reject> --data DIR [options]

Certificate requests held for an operator (scepter serve --approval manual).

  list [filters] [--json]            requests as summaries, newest first
  show <transactionID> [--json]      one request in detail (subject, SANs, key, challenge verdict)
  approve <transactionID>            approve: the device's next poll or resend gets the certificate
  reject <transactionID> [--reason TEXT]
                                     reject: the device gets FAILURE badRequest (reason included)

List filters and paging:
  --state S         pending (default), approved, issued, rejected, failed or expired
  --all             every state
  --subject TEXT    substring of the subject (case-insensitive)
  --profile NAME    only requests sent to this profile
  --ca NAME         only requests to this CA (\`default\`: the default CA)
  --since T, --until T  created at/after, before T (ISO 8601: 2026-01-31 or 2026-01-31T12:00Z)
  --oldest          oldest first
  --limit N         page size (default ${DEFAULT_PAGE_LIMIT}, at most ${MAX_PAGE_LIMIT})
  --cursor C        the next page (the "nextCursor" of the previous one)

${OPERATOR_USAGE}`;

/** Operator errors: bad input is a usage error; unknown or not pending prints and exits 1. */
async function operator<T>(fn: () => Promise<T>, onError: (e: OperatorError) => number): Promise<T | number> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof OperatorError)) throw e;
    if (e.kind === 'invalid') throw new UsageError(e.message);
    return onError(e);
  }
}

export const pendingCommand: Command = {
  name: 'pending',
  summary: 'list, show, approve or reject requests waiting for an operator',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(
      argv,
      {
        ...OPERATOR_OPTIONS,
        all: { type: 'boolean' },
        state: { type: 'string' },
        subject: { type: 'string' },
        profile: { type: 'string' },
        ca: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        oldest: { type: 'boolean' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
        reason: { type: 'string' },
      },
      true,
    );
    const [sub, id, ...extra] = p.positionals;
    noExtra(extra);
    if (sub === undefined) throw new UsageError('missing subcommand (list, show, approve or reject)');
    if (!['list', 'show', 'approve', 'reject'].includes(sub))
      throw new UsageError(`unknown subcommand '${sub}'`);
    const { data, db } = storeOptions(p);
    const out = (s: string) => process.stdout.write(s + '\n');
    const fail = (e: OperatorError) => {
      process.stderr.write(`scepter pending ${sub}: ${cell(e.message)}\n`);
      return 1;
    };
    let filters: RequestFilters | undefined;
    if (sub === 'list') {
      if (id !== undefined) noExtra([id]);
      if (flag(p, 'all') && str(p, 'state') !== undefined)
        throw new UsageError('give --all or --state, not both');
      filters = { all: flag(p, 'all'), limit: intOpt(p, 'limit', DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT) };
      const state = str(p, 'state');
      try {
        if (state !== undefined) filters.state = parseTransactionState(state);
      } catch (e) {
        throw new UsageError(`--state: ${(e as Error).message}`);
      }
      for (const k of ['subject', 'profile', 'ca', 'since', 'until', 'cursor'] as const) {
        const v = str(p, k);
        if (v !== undefined) filters[k] = v;
      }
      if (flag(p, 'oldest')) filters.order = 'oldest';
    } else {
      for (const o of [
        'all',
        'state',
        'subject',
        'profile',
        'ca',
        'since',
        'until',
        'oldest',
        'limit',
        'cursor',
      ])
        if (p.values[o] !== undefined) throw new UsageError(`--${o} goes with list`);
      if (!id) throw new UsageError(`${sub} needs a transactionID`);
      if (str(p, 'reason') !== undefined && sub !== 'reject')
        throw new UsageError('--reason goes with reject');
    }
    return withStore(data, db, async (store) => {
      // listRequests/getRequest expire overdue requests first, so nobody approves an expired one.
      switch (sub) {
        case 'list': {
          const page = await operator(() => listRequests(store, filters!), fail);
          if (typeof page === 'number') return page;
          if (flag(p, 'json')) {
            out(safeJson(page));
            return 0;
          }
          if (page.items.length === 0) out(filters!.all ? 'no requests' : 'no matching requests');
          else
            out(
              table(
                ['TRANSACTION', 'STATE', 'PROFILE', 'CHALLENGE', 'CREATED', 'EXPIRES', 'SUBJECT'],
                page.items.map((r) => [
                  r.transactionId,
                  r.state,
                  r.profile,
                  r.challenge ?? '-',
                  r.createdAt.slice(0, 19),
                  r.expiresAt ? r.expiresAt.slice(0, 19) : '-',
                  r.subject ?? '-',
                ]),
              ),
            );
          if (page.nextCursor !== undefined)
            out(`(${page.items.length} of ${page.total}; next page: --cursor ${page.nextCursor})`);
          return 0;
        }
        case 'show': {
          const t = await operator(() => getRequest(store, id!), fail);
          if (typeof t === 'number') return t;
          const v = requestView(t);
          out(flag(p, 'json') ? safeJson(v) : keyValues({ ...v }, 14));
          return 0;
        }
        default: {
          const decision = sub as 'approve' | 'reject';
          const reason = str(p, 'reason');
          const t = await operator(
            () => decideRequest({ store, actor: cliActor() }, id!, decision, reason),
            fail,
          );
          if (typeof t === 'number') return t;
          if (flag(p, 'json')) {
            out(safeJson(t));
            return 0;
          }
          out(
            `${decision === 'approve' ? 'approved' : 'rejected'} ${cell(id)} (${cell(t.subject ?? 'no subject')})`,
          );
          if (decision === 'approve')
            out('the certificate is issued when the device polls or resends the request');
          return 0;
        }
      }
    });
  },
};
