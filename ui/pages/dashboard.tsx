/** Dashboard: issued per day (chart), failures by reason, pending count, CAs, rate. */
import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';
import { api, ApiError, type Dashboard as DashboardData, type FailureList } from '../api';
import { Loading, useLoad, when } from '../util';

function IssuedChart(props: { days: DashboardData['issuedPerDay'] }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const box = el.current;
    if (!box) return;
    const xs = props.days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
    const ys = props.days.map((d) => d.count);
    const width = () => Math.max(260, box.clientWidth || 600);
    const chart = new uPlot(
      {
        width: width(),
        height: 220,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: true, range: (_u, min, max) => [min - 43_200, max + 43_200] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
        },
        axes: [{}, { label: 'certificates' }],
        series: [
          {},
          {
            label: 'issued',
            stroke: '#1d5fa8',
            fill: 'rgba(29,95,168,0.35)',
            paths: uPlot.paths.bars!({ size: [0.7, 40] }),
            points: { show: false },
          },
        ],
      },
      [xs, ys],
      box,
    );
    const resize = () => chart.setSize({ width: width(), height: 220 });
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      chart.destroy();
    };
  }, [props.days]);
  const total = props.days.reduce((a, d) => a + d.count, 0);
  return (
    <figure>
      <div
        ref={el}
        class="chart"
        role="img"
        aria-label={`Certificates issued per day over ${props.days.length} days: ${total} in all`}
      />
      <figcaption>
        Certificates issued per day (UTC), last {props.days.length} days: {total} in all.
      </figcaption>
      <table class="sr-only">
        <caption>Certificates issued per day</caption>
        <thead>
          <tr>
            <th scope="col">Day</th>
            <th scope="col">Issued</th>
          </tr>
        </thead>
        <tbody>
          {props.days.map((d) => (
            <tr key={d.day}>
              <td>{d.day}</td>
              <td>{d.count}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

/** Failures grouped by reason, from the audit trail when the server has it. */
function FailuresByReason() {
  const { data, error } = useLoad(() => api<FailureList>('GET', '/admin/failures?limit=500'));
  if (error instanceof ApiError && error.status === 404)
    return <p>Failure records are not available on this server.</p>;
  if (!data) return <Loading error={error} />;
  const counts = new Map<string, number>();
  for (const f of data.items) {
    const reason = f.reason ?? f.failInfo ?? 'unknown';
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) return <p>No refused enrollments recorded.</p>;
  return (
    <table>
      <caption>Recent refused enrollments by reason (last {data.items.length})</caption>
      <thead>
        <tr>
          <th scope="col">Reason</th>
          <th scope="col">Count</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([reason, n]) => (
          <tr key={reason}>
            <td>{reason}</td>
            <td>{n}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Dashboard() {
  const { data, error, reload } = useLoad(() => api<DashboardData>('GET', '/admin/dashboard'));
  useEffect(() => {
    const t = setInterval(reload, 10_000);
    return () => clearInterval(t);
  }, []);
  return (
    <section aria-labelledby="dash-h">
      <h1 id="dash-h">Dashboard</h1>
      {!data ? (
        <Loading error={error} />
      ) : (
        <>
          <div class="cards">
            <a class="card" href="#/pending">
              <span class="big" data-testid="pending-count">
                {data.pending}
              </span>
              <span>pending requests</span>
            </a>
            <div class="card">
              <span class="big">{data.issuedPerSecond.toFixed(2)}</span>
              <span>enrollments/s (last minute)</span>
            </div>
            <div class="card">
              <span class="big">
                {data.cas.filter((c) => c.current).map((c) => when(c.notAfter).slice(0, 10))}
              </span>
              <span>current CA expires</span>
            </div>
          </div>
          <h2>Issued certificates</h2>
          <IssuedChart days={data.issuedPerDay} />
          <h2>Failures by reason</h2>
          <FailuresByReason />
          <h2>Certificate authorities</h2>
          <CaTable cas={data.cas} />
          <p class="muted">Updated {when(data.generatedAt)}; refreshes every 10 seconds.</p>
        </>
      )}
    </section>
  );
}

export function CaTable(props: { cas: DashboardData['cas'] }) {
  return (
    <div class="scroll">
      <table class="cards-on-phone">
        <caption>Certificate authorities, their expiry and CRL</caption>
        <thead>
          <tr>
            <th scope="col">CA</th>
            <th scope="col">Role</th>
            <th scope="col">Expires</th>
            <th scope="col">CRL number</th>
            <th scope="col">CRL next update</th>
          </tr>
        </thead>
        <tbody>
          {props.cas.map((c) => (
            <tr key={c.fingerprint}>
              <td data-label="CA">{c.subject}</td>
              <td data-label="Role">
                {c.current ? 'current' : 'retired'}
                {c.ca !== 'default' ? ` (CA ${c.ca})` : ''}
              </td>
              <td data-label="Expires">{when(c.notAfter)}</td>
              <td data-label="CRL number">{c.crl?.crlNumber ?? '—'}</td>
              <td data-label="CRL next update">{when(c.crl?.nextUpdate)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
