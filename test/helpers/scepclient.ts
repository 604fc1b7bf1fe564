/**
 * The real micromdm `scepclient` as a device (needs the peer: `hasCommand('scepclient')` in
 * test/helpers/peers.ts). It keeps its key in DIR/client.key and writes its certificate to
 * DIR/client.pem; run again in the same directory, it renews (RenewalReq) with them.
 */
import { join } from 'node:path';
import { run, type Run } from './run.js';

/**
 * Enrolls with `scepclient` for CN `cn` at the SCEP `url` (a 2048-bit RSA key); `extra` is
 * appended to its arguments (e.g. `-challenge`). Without a challenge the request waits for an
 * operator: scepclient polls while PENDING. The hang limit (default 120 s) kills it; no timing
 * is asserted.
 */
export function scepclient(
  url: string,
  dir: string,
  cn: string,
  o: { extra?: readonly string[]; hangLimitMs?: number } = {},
): Promise<Run> {
  return run(
    'scepclient',
    [
      '-server-url',
      url,
      '-private-key',
      join(dir, 'client.key'),
      '-certificate',
      join(dir, 'client.pem'),
      '-cn',
      cn,
      '-keySize',
      '2048',
      ...(o.extra ?? []),
    ],
    { hangLimitMs: o.hangLimitMs ?? 120_000 },
  );
}
