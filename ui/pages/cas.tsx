/** CA status and rollover state. */
import { api, type Dashboard } from '../api';
import { Loading, useLoad, when } from '../util';
import { CaTable } from './dashboard';

export function CaPage() {
  const { data, error } = useLoad(() => api<Dashboard>('GET', '/admin/dashboard'));
  return (
    <section aria-labelledby="cas-h">
      <h1 id="cas-h">CA status</h1>
      {!data ? (
        <Loading error={error} />
      ) : (
        <>
          <CaTable cas={data.cas} />
          <h2>Rollover</h2>
          {data.rollover.staged && data.rollover.next ? (
            <dl>
              <dt>State</dt>
              <dd>
                A next CA is staged (GetNextCACert offers it); make it current with{' '}
                <code>scepter ca activate</code>.
              </dd>
              <dt>Next CA</dt>
              <dd>{data.rollover.next.subject}</dd>
              <dt>Valid</dt>
              <dd>
                {when(data.rollover.next.notBefore)} to {when(data.rollover.next.notAfter)}
              </dd>
            </dl>
          ) : (
            <p>No rollover in progress: no next CA is staged.</p>
          )}
        </>
      )}
    </section>
  );
}
