/**
 * `GET /admin/dashboard`: the server's state at a glance, for the web console's dashboard and
 * CA pages (docs/server.md "Admin API"): certificates issued per day, pending requests,
 * issuance rate over the last minute, each CA (current and retired) with its expiry and CRL,
 * and the rollover state (a staged next CA). Everything is read from the store and the CA
 * files, so every instance sharing them answers the same. Same authentication as every
 * `/admin/*` route (src/server/admin-auth.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { CrlPublisher } from '../ca/crl.js';
import { DEFAULT_CA_NAME } from '../ca/ca-location.js';
import { readStagedCertificates } from '../ca/rollover.js';
import { nameText } from '../pkix/name.js';
import type { Store } from '../store/index.js';
import { adminGuard, type AdminAuth } from './admin-auth.js';
import { adminJsonDenied } from './admin-routes.js';
import { adminSchema } from './admin-schemas.js';

export interface AdminStatusOptions {
  /** Who may call (src/server/admin-auth.ts); disabled: 404. */
  auth: AdminAuth;
  store: Store;
  /**
   * The CRL publisher of the default CA, or of every CA served by name (several CAs: the
   * profiles' CAs, read per request so a reload shows at once).
   */
  crls: CrlPublisher | (() => ReadonlyArray<{ name: string; crls: CrlPublisher }>);
  /** Data directory (for the staged rollover of the default CA), when there is one. */
  dataDir?: string;
  now?: () => Date;
}

/** Days of the issued-per-day series (today included). */
export const DASHBOARD_DAYS = 14;
const DAY_MS = 86_400_000;
/** The window of `issuedPerSecond`, seconds. */
export const RATE_WINDOW_SECONDS = 60;

export const adminStatusRoutes: FastifyPluginAsync<AdminStatusOptions> = async (app, o) => {
  const { store, crls } = o;
  const now = o.now ?? (() => new Date());
  app.addHook('onRequest', adminGuard(o.auth, adminJsonDenied));
  // As in admin-routes.ts: the schema (admin-schemas.ts) documents; the answer is plain JSON.
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.get('/admin/dashboard', adminSchema('GET /admin/dashboard'), async (req, reply) => {
    req.scepLog = { operation: 'admin.dashboard', outcome: 'rejected' };
    const t = now();
    const today = Math.floor(t.getTime() / DAY_MS) * DAY_MS;
    const issuedPerDay = [];
    for (let i = DASHBOARD_DAYS - 1; i >= 0; i--) {
      const since = new Date(today - i * DAY_MS);
      const until = new Date(since.getTime() + DAY_MS);
      const { total } = await store.searchCertificates({ since, until, limit: 1 });
      issuedPerDay.push({ day: since.toISOString().slice(0, 10), count: total });
    }
    const lastMinute = await store.searchCertificates({
      since: new Date(t.getTime() - RATE_WINDOW_SECONDS * 1000),
      limit: 1,
    });
    const pending = (await store.listTransactions({ state: 'pending', limit: 1 })).total;
    const cas = [];
    const served = typeof crls === 'function' ? crls() : [{ name: DEFAULT_CA_NAME, crls }];
    for (const { name, crls: publisher } of served)
      for (const ca of publisher.cas.all) {
        const crl = await store.latestCrl(ca.cert.fingerprint);
        cas.push({
          ca: name,
          subject: nameText(ca.cert.subjectRaw),
          fingerprint: ca.cert.fingerprint,
          current: ca === publisher.cas.current,
          notBefore: ca.cert.notBefore.toISOString(),
          notAfter: ca.cert.notAfter.toISOString(),
          crl: crl
            ? {
                crlNumber: crl.crlNumber.toString(),
                thisUpdate: crl.thisUpdate.toISOString(),
                nextUpdate: crl.nextUpdate.toISOString(),
              }
            : null,
        });
      }
    let staged;
    try {
      staged = o.dataDir !== undefined ? readStagedCertificates(o.dataDir) : undefined;
    } catch {
      staged = undefined; // half-written or damaged: `scepter ca` reports it
    }
    const next = staged?.[0];
    req.scepLog = Object.assign({}, req.scepLog, { outcome: 'SUCCESS' });
    return reply
      .code(200)
      .header('content-type', 'application/json; charset=utf-8')
      .send({
        generatedAt: t.toISOString(),
        issuedPerDay,
        pending,
        issuedPerSecond: lastMinute.total / RATE_WINDOW_SECONDS,
        cas,
        rollover: next
          ? {
              staged: true,
              next: {
                subject: nameText(next.subjectRaw),
                notBefore: next.notBefore.toISOString(),
                notAfter: next.notAfter.toISOString(),
              },
            }
          : { staged: false },
      });
  });
};
