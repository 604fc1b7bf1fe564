/**
 * CRLs as plain DER over HTTP (RFC 5280 §4.2.1.13 distribution points; `application/pkix-crl`,
 * RFC 2585): `GET /crl` → the default CA's current CRL; `GET /crl/<sha256-fingerprint>[.crl]` →
 * the CRL of that issuer (current or retired certificate of any of the server's CAs);
 * `GET /crl/<CA name>[.crl]` → the current CRL of the named CA (`/crl/default.crl` too). Issued
 * certificates point to the fingerprint form when a public URL is configured, so their CRL
 * stays reachable after a CA rollover.
 *
 * A CRL is cacheable until its nextUpdate (`crlCacheHeaders`); `If-None-Match` with its ETag
 * is answered 304.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_CA_NAME } from '../ca/ca-location.js';
import type { CrlRecord } from '../store/index.js';

/** Where the route gets CRLs from (the lifecycle's CrlPublisher, or `severalCaCrls`). */
export interface CrlSource {
  /** The issuer's current CRL (default: the current CA), or undefined for an unknown issuer. */
  current(issuer?: string): Promise<CrlRecord | undefined>;
  /**
   * The current CRL of the CA with this name, or undefined for an unknown name. Absent: the
   * source is one CA, known as `default`.
   */
  ofCa?(name: string): Promise<CrlRecord | undefined>;
}

/**
 * One CrlSource over several CAs (their publishers by CA name): `/crl` answers the `default`
 * CA's CRL (the first CA's when there is no default), a fingerprint whichever CA has that
 * issuer, a name that CA's.
 */
export function severalCaCrls(byName: ReadonlyMap<string, CrlSource>): CrlSource {
  const main = byName.get(DEFAULT_CA_NAME) ?? byName.values().next().value;
  return {
    async current(issuer?: string) {
      if (issuer === undefined) return main?.current();
      for (const s of byName.values()) {
        const crl = await s.current(issuer);
        if (crl) return crl;
      }
      return undefined;
    },
    async ofCa(name: string) {
      return byName.get(name)?.current();
    },
  };
}

/** A CA name in a CRL path (never 64 hex digits, so never taken for a fingerprint). */
const CA_NAME_PATH = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface CrlRoutesOptions {
  source: CrlSource;
  /** Clock for max-age (tests). */
  now?: () => Date;
}

/** Path of a named CA's current CRL under the server origin. */
export function caCrlPath(caName: string): string {
  return `/crl/${caName}.crl`;
}

/** Path of an issuer's CRL under the server origin. */
export function crlPath(issuerFingerprint: string): string {
  return `/crl/${issuerFingerprint}.crl`;
}

/** A strong ETag for a CRL: its SHA-256, shortened. */
export function crlEtag(der: Buffer): string {
  return `"${createHash('sha256').update(der).digest('hex').slice(0, 32)}"`;
}

/**
 * HTTP caching headers of a CRL (RFC 5280 §5: a CRL is valid until nextUpdate, so caches may
 * keep it that long): `Cache-Control: public, max-age=<seconds until nextUpdate>`, `Expires` =
 * nextUpdate, `Last-Modified` = thisUpdate, `ETag`.
 */
export function crlCacheHeaders(crl: CrlRecord, now: Date): Record<string, string> {
  const maxAge = Math.max(0, Math.floor((crl.nextUpdate.getTime() - now.getTime()) / 1000));
  return {
    'cache-control': `public, max-age=${maxAge}`,
    expires: crl.nextUpdate.toUTCString(),
    'last-modified': crl.thisUpdate.toUTCString(),
    etag: crlEtag(crl.der),
  };
}

/** Cache-Control of a CRL answer, set again in this plugin's onSend (the root hook sets no-store). */
const cacheControl = new WeakMap<FastifyReply, string>();

function sendCrl(
  req: FastifyRequest,
  reply: FastifyReply,
  crl: CrlRecord | undefined,
  now: Date,
): FastifyReply {
  if (!crl) return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('no such CRL\n');
  const h = crlCacheHeaders(crl, now);
  cacheControl.set(reply, h['cache-control']!);
  reply.headers(h);
  const inm = req.headers['if-none-match'];
  if (typeof inm === 'string' && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === h.etag)) {
    return reply.code(304).send();
  }
  return reply.code(200).header('content-type', 'application/pkix-crl').send(crl.der);
}

/** Registers `/crl` and `/crl/:issuer` (GET and HEAD). */
export const crlRoutes: FastifyPluginAsync<CrlRoutesOptions> = async (app, opts) => {
  const now = opts.now ?? (() => new Date());
  // Runs after the root onSend hook (which marks every answer no-store).
  app.addHook('onSend', async (_req, reply, payload) => {
    const cc = cacheControl.get(reply);
    if (cc !== undefined) reply.header('cache-control', cc);
    return payload;
  });
  app.get('/crl', async (req, reply) => {
    req.scepLog = { operation: 'CRL', outcome: 'SUCCESS' };
    return sendCrl(req, reply, await opts.source.current(), now());
  });
  app.get<{ Params: { issuer: string } }>('/crl/:issuer', async (req, reply) => {
    const key = req.params.issuer.replace(/\.crl$/i, '').toLowerCase();
    req.scepLog = { operation: 'CRL', outcome: 'SUCCESS' };
    const { source } = opts;
    let crl: CrlRecord | undefined;
    if (/^[0-9a-f]{64}$/.test(key)) crl = await source.current(key);
    else if (CA_NAME_PATH.test(key))
      crl = source.ofCa
        ? await source.ofCa(key)
        : key === DEFAULT_CA_NAME
          ? await source.current()
          : undefined;
    return sendCrl(req, reply, crl, now());
  });
};
