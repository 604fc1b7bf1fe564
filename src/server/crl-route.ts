/**
 * CRLs as plain DER over HTTP (RFC 5280 §4.2.1.13 distribution points; `application/pkix-crl`,
 * RFC 2585): `GET /crl` → the current CA's CRL; `GET /crl/<sha256-fingerprint>[.crl]` → the CRL
 * of that issuer (current or retired CA). Issued certificates point to the second form when a
 * public URL is configured, so their CRL stays reachable after a CA rollover.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { CrlRecord } from '../store/index.js';

/** Where the route gets CRLs from (the lifecycle's CrlPublisher). */
export interface CrlSource {
  /** The issuer's current CRL (default: the current CA), or undefined for an unknown issuer. */
  current(issuer?: string): Promise<CrlRecord | undefined>;
}

export interface CrlRoutesOptions {
  source: CrlSource;
}

/** Path of an issuer's CRL under the server origin. */
export function crlPath(issuerFingerprint: string): string {
  return `/crl/${issuerFingerprint}.crl`;
}

function sendCrl(reply: FastifyReply, crl: CrlRecord | undefined): FastifyReply {
  if (!crl) return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('no such CRL\n');
  const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - Date.now()) / 1000));
  return reply
    .code(200)
    .header('content-type', 'application/pkix-crl')
    .header('last-modified', crl.thisUpdate.toUTCString())
    .header('expires', crl.nextUpdate.toUTCString())
    .header('x-crl-max-age', String(maxAge))
    .send(crl.der);
}

/** Registers `/crl` and `/crl/:issuer` (GET and HEAD). */
export const crlRoutes: FastifyPluginAsync<CrlRoutesOptions> = async (app, opts) => {
  app.get('/crl', async (req, reply) => {
    req.scepLog = { operation: 'CRL', outcome: 'SUCCESS' };
    return sendCrl(reply, await opts.source.current());
  });
  app.get<{ Params: { issuer: string } }>('/crl/:issuer', async (req, reply) => {
    const fp = req.params.issuer.replace(/\.crl$/i, '').toLowerCase();
    req.scepLog = { operation: 'CRL', outcome: 'SUCCESS' };
    if (!/^[0-9a-f]{64}$/.test(fp)) return sendCrl(reply, undefined);
    return sendCrl(reply, await opts.source.current(fp));
  });
};
