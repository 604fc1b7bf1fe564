/** Certificates: search, detail with PEM download and chain, revoke with a reason. */
import { useState } from 'preact/hooks';
import { api, query, type CertificateDetail, type CertificateView, type ListPage } from '../api';
import { Loading, message, Status, useLoad, when } from '../util';

interface Filters {
  cn: string;
  san: string;
  serial: string;
  status: string;
  expiringDays: string;
}

const EMPTY: Filters = { cn: '', san: '', serial: '', status: '', expiringDays: '' };

function Field(props: {
  id: keyof Filters;
  label: string;
  value: string;
  set: (v: string) => void;
  numeric?: boolean;
}) {
  return (
    <div class="field">
      <label for={`f-${props.id}`}>{props.label}</label>
      <input
        id={`f-${props.id}`}
        name={props.id}
        type="text"
        inputMode={props.numeric ? 'numeric' : 'text'}
        value={props.value}
        onInput={(e) => props.set((e.target as HTMLInputElement).value)}
      />
    </div>
  );
}

export function Certificates() {
  const [form, setForm] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const { data, error } = useLoad(
    () => api<ListPage<CertificateView>>('GET', `/admin/certificates${query({ ...filters, limit: 100 })}`),
    [filters],
  );
  const set = (k: keyof Filters) => (v: string) => setForm({ ...form, [k]: v });
  return (
    <section aria-labelledby="certs-h">
      <h1 id="certs-h">Certificates</h1>
      <form
        class="search"
        role="search"
        aria-label="Search certificates"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters({ ...form });
        }}
      >
        <Field id="cn" label="Common name contains" value={form.cn} set={set('cn')} />
        <Field id="san" label="SAN (exact)" value={form.san} set={set('san')} />
        <Field id="serial" label="Serial (hex)" value={form.serial} set={set('serial')} />
        <div class="field">
          <label for="f-status">Status</label>
          <select
            id="f-status"
            value={form.status}
            onChange={(e) => set('status')((e.target as HTMLSelectElement).value)}
          >
            <option value="">any</option>
            <option value="valid">valid</option>
            <option value="revoked">revoked</option>
          </select>
        </div>
        <Field
          id="expiringDays"
          label="Expiring within days"
          numeric
          value={form.expiringDays}
          set={set('expiringDays')}
        />
        <button type="submit">Search</button>
      </form>
      {!data ? (
        <Loading error={error} />
      ) : (
        <>
          <Status>
            {data.total} certificate{data.total === 1 ? '' : 's'} found
            {data.total > data.items.length ? `, showing ${data.items.length}` : ''}
          </Status>
          {data.items.length > 0 && (
            <div class="scroll">
              <table class="cards-on-phone" id="certs-table">
                <caption class="sr-only">Search results</caption>
                <thead>
                  <tr>
                    <th scope="col">Subject</th>
                    <th scope="col">SANs</th>
                    <th scope="col">Serial</th>
                    <th scope="col">Status</th>
                    <th scope="col">Expires</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((c) => (
                    <tr key={c.serial}>
                      <td data-label="Subject">
                        <a href={`#/certificates/${c.serial}`}>{c.subject || c.serial}</a>
                      </td>
                      <td data-label="SANs">{c.sans.join(', ') || '—'}</td>
                      <td data-label="Serial" class="mono">
                        {c.serial}
                      </td>
                      <td data-label="Status">
                        {c.status === 'revoked'
                          ? `revoked (${c.revocationReason ?? 'unspecified'})`
                          : 'valid'}
                      </td>
                      <td data-label="Expires">{when(c.notAfter)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

const REASONS = [
  'unspecified',
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const;

interface RevokeAnswer extends CertificateView {
  crl: { crlNumber: string; thisUpdate: string; nextUpdate: string };
}

export function CertificateDetailPage(props: { serial: string }) {
  const serial = /^[0-9a-fA-F:]{1,128}$/.test(props.serial) ? props.serial : '';
  const { data, error, reload } = useLoad(
    () => api<CertificateDetail>('GET', `/admin/certificates/${encodeURIComponent(serial)}`),
    [serial],
  );
  const [reason, setReason] = useState<string>('unspecified');
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });
  const [busy, setBusy] = useState(false);
  const revoke = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api<RevokeAnswer>('POST', `/admin/certificates/${encodeURIComponent(serial)}/revoke`, {
        reason,
      });
      setStatus({
        text: `Revoked (${r.revocationReason ?? reason}); CRL number ${r.crl.crlNumber} published.`,
      });
      reload();
    } catch (err) {
      setStatus({ text: message(err), error: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="cert-h">
      <p>
        <a href="#/certificates">← Certificates</a>
      </p>
      <h1 id="cert-h">Certificate {serial}</h1>
      <Status error={status.error}>{status.text}</Status>
      {!data ? (
        <Loading error={error} />
      ) : (
        <>
          <dl class="detail">
            <dt>Subject</dt>
            <dd>{data.subject}</dd>
            <dt>SANs</dt>
            <dd>{data.sans.join(', ') || '—'}</dd>
            <dt>Serial</dt>
            <dd class="mono">{data.serial}</dd>
            <dt>Status</dt>
            <dd data-testid="cert-status">
              {data.status === 'revoked'
                ? `revoked (${data.revocationReason ?? 'unspecified'}) at ${when(data.revokedAt)}`
                : 'valid'}
            </dd>
            <dt>Valid</dt>
            <dd>
              {when(data.notBefore)} to {when(data.notAfter)}
            </dd>
            <dt>transactionID</dt>
            <dd class="mono">{data.transactionId ?? '—'}</dd>
            <dt>Issuer fingerprint (SHA-256)</dt>
            <dd class="mono">{data.issuer}</dd>
          </dl>
          <p>
            <a class="button" href={`/admin/certificates/${data.serial}/pem`} download={`${data.serial}.pem`}>
              Download PEM with chain
            </a>
          </p>
          {data.status === 'valid' && (
            <form class="revoke" onSubmit={revoke} aria-labelledby="revoke-h">
              <h2 id="revoke-h">Revoke</h2>
              <label for="revoke-reason">Reason</label>
              <select
                id="revoke-reason"
                value={reason}
                onChange={(e) => setReason((e.target as HTMLSelectElement).value)}
              >
                {REASONS.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
              <button type="submit" class="danger" disabled={busy}>
                Revoke certificate
              </button>
              <p class="muted">The CRL is signed again at once.</p>
            </form>
          )}
          <h2>Certificate (PEM)</h2>
          <pre class="pem" tabIndex={0} aria-label="Certificate PEM">
            {data.pem}
          </pre>
          <h2>Chain</h2>
          {data.chain.length === 0 ? (
            <p>The issuing CA is not one of this server's.</p>
          ) : (
            data.chain.map((p, i) => (
              <pre key={i} class="pem" tabIndex={0} aria-label={`Chain certificate ${i + 1}`}>
                {p}
              </pre>
            ))
          )}
        </>
      )}
    </section>
  );
}
