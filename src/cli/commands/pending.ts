/**
 * `scepter pending list|show|approve|reject`: the manual-approval queue (see docs/server.md).
 * Works while the server runs: decisions go to the shared store and the server answers the
 * device's next CertPoll or resent PKCSReq accordingly (the certificate is issued then).
 */
import { decideRequest, getRequest, listRequests, OperatorError, requestView } from '../../ra/operator.js';
import { flag, parseOptions, req, str, UsageError, type Command } from '../command.js';
import { table, withStore } from './data-store.js';

const USAGE = `Usage: scepter pending <list|show|approve|reject> --data DIR [options]

Certificate requests held for an operator (scepter serve --approval manual).

  list [--all] [--json]              pending requests (--all: every state)
  show <transactionID> [--json]      one request in detail (subject, SANs, key, challenge verdict)
  approve <transactionID>            approve: the device's next poll or resend gets the certificate
  reject <transactionID> [--reason TEXT]
                                     reject: the device gets FAILURE badRequest (reason included)

  --data DIR        the server's data directory (required)
  --db URL          store URL (or env SCEPTER_DB; default sqlite:DIR/scepter.db)`;

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
        data: { type: 'string' },
        db: { type: 'string' },
        json: { type: 'boolean' },
        all: { type: 'boolean' },
        reason: { type: 'string' },
      },
      true,
    );
    const [sub, id, ...extra] = p.positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]!}`);
    const data = req(p, 'data');
    const out = (s: string) => process.stdout.write(s + '\n');
    const fail = (e: OperatorError) => {
      process.stderr.write(`scepter pending ${sub ?? ''}: ${e.message}\n`);
      return 1;
    };
    return withStore(data, str(p, 'db'), async (store) => {
      // listRequests/getRequest expire overdue requests first, so nobody approves an expired one.
      switch (sub) {
        case 'list': {
          const all = flag(p, 'all');
          const page = await listRequests(store, { all, limit: 10_000 });
          const rows = page.items;
          if (flag(p, 'json')) out(JSON.stringify(rows, null, 2));
          else if (rows.length === 0) out(all ? 'no requests' : 'no pending requests');
          else
            out(
              table(
                ['TRANSACTION', 'STATE', 'CHALLENGE', 'CREATED', 'EXPIRES', 'SUBJECT'],
                rows.map((r) => [
                  String(r.transactionId),
                  String(r.state),
                  String(r.challenge ?? '-'),
                  String(r.createdAt).slice(0, 19),
                  r.expiresAt ? String(r.expiresAt).slice(0, 19) : '-',
                  String(r.subject ?? ''),
                ]),
              ),
            );
          return 0;
        }
        case 'show': {
          if (!id) throw new UsageError('show needs a transactionID');
          const t = await operator(() => getRequest(store, id), fail);
          if (typeof t === 'number') return t;
          const v = requestView(t);
          if (flag(p, 'json')) out(JSON.stringify(v, null, 2));
          else
            for (const [k, val] of Object.entries(v))
              out(`${k.padEnd(14)} ${Array.isArray(val) ? val.join(', ') : String(val ?? '-')}`);
          return 0;
        }
        case 'approve':
        case 'reject': {
          if (!id) throw new UsageError(`${sub} needs a transactionID`);
          const reason = str(p, 'reason');
          if (reason !== undefined && sub === 'approve') throw new UsageError('--reason goes with reject');
          const t = await operator(() => decideRequest(store, id, sub, reason), fail);
          if (typeof t === 'number') return t;
          out(`${sub === 'approve' ? 'approved' : 'rejected'} ${id} (${t.subject ?? 'no subject'})`);
          if (sub === 'approve')
            out('the certificate is issued when the device polls or resends the request');
          return 0;
        }
        default:
          throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand');
      }
    });
  },
};
