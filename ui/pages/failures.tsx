/** Recent refused enrollments with their exact reason, transactionID and source. */
import { api, ApiError, type FailureList } from '../api';
import { Loading, Status, useLoad, when } from '../util';

export function Failures() {
  const { data, error, reload } = useLoad(() => api<FailureList>('GET', '/admin/failures?limit=200'));
  return (
    <section aria-labelledby="fail-h">
      <h1 id="fail-h">Enrollment failures</h1>
      <p>
        Every refused enrollment with the exact reason the device was given.{' '}
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </p>
      {error instanceof ApiError && error.status === 404 ? (
        <Status>Failure records are not available on this server.</Status>
      ) : !data ? (
        <Loading error={error} />
      ) : (
        <>
          <Status>
            {data.items.length} recent failure{data.items.length === 1 ? '' : 's'} recorded
          </Status>
          {data.items.length > 0 && (
            <div class="scroll">
              <table class="cards-on-phone" id="failures-table">
                <caption class="sr-only">Recent failures, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Reason</th>
                    <th scope="col">transactionID</th>
                    <th scope="col">Source</th>
                    <th scope="col">failInfo</th>
                    <th scope="col">Message</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((f) => (
                    <tr key={f.seq}>
                      <td data-label="When">{when(f.at)}</td>
                      <td data-label="Reason">{f.reason ?? '—'}</td>
                      <td data-label="transactionID" class="mono">
                        {f.transactionId ?? '—'}
                      </td>
                      <td data-label="Source">{f.source ?? '—'}</td>
                      <td data-label="failInfo">{f.failInfo ?? '—'}</td>
                      <td data-label="Message">{f.messageType ?? '—'}</td>
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
