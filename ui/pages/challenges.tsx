/** One-time challenge minting: the value is shown once (it is not stored in readable form). */
import { useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { message, Status, when } from '../util';

export function Challenges() {
  const [minted, setMinted] = useState<{ challenge: string; expiresAt: string }>();
  const [ttl, setTtl] = useState('3600');
  const [status, setStatus] = useState<{ text: string; error?: boolean }>({ text: '' });
  const field = useRef<HTMLInputElement>(null);
  const mint = async (e: Event) => {
    e.preventDefault();
    try {
      const c = await api<{ challenge: string; expiresAt: string }>(
        'POST',
        `/admin/challenge?format=json&ttl=${encodeURIComponent(ttl)}`,
      );
      setMinted(c);
      setStatus({ text: `Challenge minted; valid until ${when(c.expiresAt)}. It is shown only now.` });
    } catch (err) {
      setStatus({ text: message(err), error: true });
    }
  };
  const copy = async () => {
    if (!minted) return;
    try {
      await navigator.clipboard.writeText(minted.challenge);
      setStatus({ text: 'Copied to the clipboard.' });
    } catch {
      field.current?.select();
      setStatus({ text: 'Select the value and copy it (the clipboard is not available here).' });
    }
  };
  return (
    <section aria-labelledby="ch-h">
      <h1 id="ch-h">One-time challenges</h1>
      <p>
        A one-time challenge enrolls one device once. Give it to the device (or MDM) now: it cannot be shown
        again.
      </p>
      <form onSubmit={mint} class="search">
        <div class="field">
          <label for="ttl">Valid for (seconds)</label>
          <input
            id="ttl"
            type="number"
            min={60}
            value={ttl}
            onInput={(e) => setTtl((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit">Mint challenge</button>
      </form>
      <Status error={status.error}>{status.text}</Status>
      {minted && (
        <div class="minted">
          <label for="minted">Challenge</label>
          <input id="minted" ref={field} class="mono" readOnly value={minted.challenge} />
          <button type="button" onClick={copy}>
            Copy
          </button>
        </div>
      )}
    </section>
  );
}
