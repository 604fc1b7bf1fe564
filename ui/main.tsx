/**
 * The scepter web console (docs/console.md): a preact single-page app served at /ui/. Pages by
 * URL hash: #/ dashboard, #/pending, #/certificates, #/certificates/<serial>, #/failures,
 * #/challenges, #/cas. Every value from the server is rendered as text by preact (never as
 * HTML): subjects, SANs and reasons are client-supplied.
 */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, login, setCsrfToken, whenLoggedOut, type SessionInfo } from './api';
import { Dashboard } from './pages/dashboard';
import { Pending } from './pages/pending';
import { Certificates, CertificateDetailPage } from './pages/certificates';
import { Failures } from './pages/failures';
import { Challenges } from './pages/challenges';
import { CaPage } from './pages/cas';

const PAGES = [
  { hash: '#/', label: 'Dashboard' },
  { hash: '#/pending', label: 'Pending requests' },
  { hash: '#/certificates', label: 'Certificates' },
  { hash: '#/failures', label: 'Failures' },
  { hash: '#/challenges', label: 'Challenges' },
  { hash: '#/cas', label: 'CA status' },
] as const;

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const f = () => setHash(location.hash || '#/');
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function Login(props: { onLogin: (s: SessionInfo) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      props.onLogin(await login(token.trim()));
    } catch (err) {
      setError(err instanceof Error ? err.message : 'login failed');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login">
      <h1>scepter console</h1>
      <form onSubmit={submit} aria-describedby="login-error">
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={busy}>
          Log in
        </button>
        <p id="login-error" role="alert" class="error">
          {error}
        </p>
      </form>
    </main>
  );
}

function Page(props: { hash: string }) {
  const h = props.hash;
  if (h === '#/' || h === '#') return <Dashboard />;
  if (h === '#/pending') return <Pending />;
  if (h === '#/certificates') return <Certificates />;
  if (h.startsWith('#/certificates/'))
    return <CertificateDetailPage serial={h.slice('#/certificates/'.length)} />;
  if (h === '#/failures') return <Failures />;
  if (h === '#/challenges') return <Challenges />;
  if (h === '#/cas') return <CaPage />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no such page. <a href="#/">Back to the dashboard</a>.
      </p>
    </section>
  );
}

function App() {
  const [state, setState] = useState<'loading' | 'out' | 'in'>('loading');
  const [admin, setAdmin] = useState('');
  const hash = useHash();
  const logged = (s: SessionInfo) => {
    setCsrfToken(s.csrfToken);
    setAdmin(s.admin);
    setState('in');
  };
  useEffect(() => whenLoggedOut(() => setState('out')), []);
  // The session is renewed on start and on every page change.
  useEffect(() => {
    api<SessionInfo>('GET', '/ui/api/session').then(logged, () => setState('out'));
  }, [hash]);
  const logout = async () => {
    try {
      await api('POST', '/ui/api/logout');
    } finally {
      setState('out');
    }
  };
  if (state === 'loading') return <p aria-live="polite">Loading…</p>;
  if (state === 'out') return <Login onLogin={logged} />;
  const current = hash.startsWith('#/certificates/') ? '#/certificates' : hash;
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}
      >
        Skip to content
      </a>
      <header>
        <span class="brand">scepter</span>
        <nav aria-label="Main">
          <ul>
            {PAGES.map((p) => (
              <li key={p.hash}>
                <a href={p.hash} aria-current={current === p.hash ? 'page' : undefined}>
                  {p.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">Signed in as {admin}</span>
        <button type="button" class="logout" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page hash={hash} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
