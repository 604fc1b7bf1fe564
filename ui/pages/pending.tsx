/** Pending requests: what each CSR asks for, how its challenge was judged; approve or reject. */
import { useState } from 'preact/hooks';
import { api, type ListPage, type RequestView } from '../api';
import { Loading, message, Status, useLoad, when } from '../util';

function challengeText(c: string | null): string {
  if (c === 'valid') return 'valid';
  if (c === 'invalid') return 'invalid';
  if (c === 'absent') return 'absent';
  if (c === 'one-time') return 'one-time (redeemed)';
  return 'unknown';
}

function Row(props: { r: RequestView; onDone: (text: string, error?: boolean) => void }) {
  const { r } = props;
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const decide = async (decision: 'approve' | 'reject') => {
    setBusy(true);
    try {
      const body = decision === 'reject' && reason.trim() !== '' ? { reason: reason.trim() } : {};
      const v = await api<RequestView>(
        'POST',
        `/admin/pending/${encodeURIComponent(r.transactionId)}/${decision}`,
        body,
      );
      props.onDone(`${r.subject ?? r.transactionId}: ${v.state}`);
    } catch (e) {
      props.onDone(`${r.subject ?? r.transactionId}: ${message(e)}`, true);
    } finally {
      setBusy(false);
    }
  };
  const id = `reason-${r.transactionId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <tr>
      <td data-label="Subject">{r.subject ?? '—'}</td>
      <td data-label="SANs">{r.sans.length ? r.sans.join(', ') : '—'}</td>
      <td data-label="Key">{r.key ?? '—'}</td>
      <td data-label="Challenge">{challengeText(r.challenge)}</td>
      <td data-label="Source">{r.requester ?? '—'}</td>
      <td data-label="First poll">{when(r.createdAt)}</td>
      <td data-label="Last poll">{r.lastPollAt ? when(r.lastPollAt) : 'not yet'}</td>
      <td data-label="transactionID" class="mono">
        {r.transactionId}
      </td>
      <td data-label="Decision" class="actions">
        <button
          type="button"
          disabled={busy}
          onClick={() => decide('approve')}
          aria-label={`Approve ${r.subject ?? r.transactionId}`}
        >
          Approve
        </button>
        <label for={id} class="sr-only">
          Reason for rejecting {r.subject ?? r.transactionId}
        </label>
        <input
          id={id}
          type="text"
          maxLength={512}
          placeholder="reason"
          value={reason}
          onInput={(e) => setReason((e.target as HTMLInputElement).value)}
        />
        <button
          type="button"
          class="danger"
          disabled={busy}
          onClick={() => decide('reject')}
          aria-label={`Reject ${r.subject ?? r.transactionId}`}
        >
          Reject
        </button>
      </td>
    </tr>
  );
}

export function Pending() {
  const { data, error, reload } = useLoad(() =>
    api<ListPage<RequestView>>('GET', '/admin/pending?state=pending&limit=200'),
  );
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });
  const done = (text: string, error?: boolean) => {
    setStatus({ text, ...(error ? { error } : {}) });
    reload();
  };
  return (
    <section aria-labelledby="pending-h">
      <h1 id="pending-h">Pending requests</h1>
      <p>
        Requests waiting for an operator. The device gets its certificate (or the rejection with your reason)
        at its next poll.{' '}
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </p>
      <Status error={status.error}>{status.text}</Status>
      {!data ? (
        <Loading error={error} />
      ) : data.items.length === 0 ? (
        <p>No pending requests.</p>
      ) : (
        <div class="scroll">
          <table class="cards-on-phone" id="pending-table">
            <caption>{data.total} pending</caption>
            <thead>
              <tr>
                <th scope="col">Subject</th>
                <th scope="col">SANs</th>
                <th scope="col">Key</th>
                <th scope="col">Challenge</th>
                <th scope="col">Source</th>
                <th scope="col">First poll</th>
                <th scope="col">Last poll</th>
                <th scope="col">transactionID</th>
                <th scope="col">Decision</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((r) => (
                <Row key={r.transactionId} r={r} onDone={done} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
