/**
 * `scepter pending list|show|approve|reject`: the manual-approval queue (see docs/server.md).
 * Works while the server runs: decisions go to the shared store and the server answers the
 * device's next CertPoll or resent PKCSReq accordingly (the certificate is issued then).
 */
import { nameToString } from '../../pkix/name.js';
import { parseCsr } from '../../pkix/csr.js';
import { sanText } from '../../ra/issuance.js';
import type { Store, TransactionRecord, TransactionState } from '../../store/index.js';
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

function view(t: TransactionRecord): Record<string, unknown> {
  let sans: unknown = t.meta?.sans ?? [];
  let key = t.meta?.keyType !== undefined ? `${String(t.meta.keyType)} ${String(t.meta.keyBits)}` : undefined;
  if (t.csr && (!t.meta || key === undefined)) {
    try {
      const csr = parseCsr(t.csr);
      key = `${csr.keyType} ${csr.keyBits}`;
      sans = csr.subjectAltNames.map(sanText);
      if (!t.subject) t.subject = nameToString(csr.subjectRaw);
    } catch {
      /* shown without CSR details */
    }
  }
  return {
    transactionId: t.transactionId,
    state: t.state,
    subject: t.subject,
    sans,
    key: key ?? null,
    challenge: t.meta?.challenge ?? null,
    requester: t.requester,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null,
    certSerial: t.certSerial,
    failText: t.failText,
  };
}

async function find(store: Store, id: string): Promise<TransactionRecord> {
  const t = await store.getTransaction(id);
  if (!t) throw new UsageError(`no request with transactionID ${JSON.stringify(id)}`);
  return t;
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
    return withStore(data, str(p, 'db'), async (store) => {
      // Overdue requests become 'expired' first, so nobody approves an expired one.
      await store.expirePending(new Date());
      switch (sub) {
        case 'list': {
          const state: TransactionState | undefined = flag(p, 'all') ? undefined : 'pending';
          const page = await store.listTransactions({ ...(state ? { state } : {}), limit: 10_000 });
          const rows = page.items.map(view);
          if (flag(p, 'json')) out(JSON.stringify(rows, null, 2));
          else if (rows.length === 0) out(state ? 'no pending requests' : 'no requests');
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
          const v = view(await find(store, id));
          if (flag(p, 'json')) out(JSON.stringify(v, null, 2));
          else
            for (const [k, val] of Object.entries(v))
              out(`${k.padEnd(14)} ${Array.isArray(val) ? val.join(', ') : String(val ?? '-')}`);
          return 0;
        }
        case 'approve':
        case 'reject': {
          if (!id) throw new UsageError(`${sub} needs a transactionID`);
          const t = await find(store, id);
          const reason = str(p, 'reason');
          if (reason !== undefined && sub === 'approve') throw new UsageError('--reason goes with reject');
          const ok = await store.decide(id, sub === 'approve' ? 'approved' : 'rejected', reason);
          if (!ok) {
            process.stderr.write(`scepter pending ${sub}: ${id} is ${t.state}, not pending\n`);
            return 1;
          }
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
