/**
 * The audit trail's vocabulary and its recorders (docs/server.md "Audit trail"): who did what
 * to which object, appended to the store's hash chain (src/store/audit-chain.ts).
 *
 * - device enrollments, from the one enrollment path: `enroll.issued` (inside the store's
 *   `recordIssued` transaction, src/ra/issuance.ts) and `enroll.refused` (every signed
 *   FAILURE of PKCSReq, RenewalReq and CertPoll, src/ra/service.ts);
 * - operator actions, from the code the CLI and the admin API share: `request.approved`,
 *   `request.rejected`, `certificate.revoked` (src/ra/operator.ts), `challenge.minted`
 *   (src/ra/one-time-challenge.ts), `ca.rollover.staged`, `ca.activated` (the `scepter ca`
 *   commands) and `config.reloaded` (`recordConfigReload`, for the configuration reload).
 *
 * Actors: the admin token's name (admin API), `cli:<os user>` (CLI), `device` (enrollments).
 * Never recorded: a challenge, a token, key material. Client-supplied text (reasons, subjects)
 * is stored as it is, bounded, and escaped where it is shown.
 */
import { AuditChainVerifier } from '../store/audit-chain.js';
import type { AuditRecord, JsonObject, JsonValue, NewAuditEntry, Store } from '../store/index.js';

export const AUDIT_ACTIONS = [
  'enroll.issued',
  'enroll.refused',
  'request.approved',
  'request.rejected',
  'certificate.revoked',
  'challenge.minted',
  'ca.rollover.staged',
  'ca.activated',
  'config.reloaded',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** The actor of enrollment records. */
export const DEVICE_ACTOR = 'device';

/** Longest client-supplied text (reason, subject) kept in a record. */
export const MAX_AUDIT_TEXT = 1024;

/** `s` cut to MAX_AUDIT_TEXT characters. */
export function auditText(s: string): string {
  return s.length > MAX_AUDIT_TEXT ? `${s.slice(0, MAX_AUDIT_TEXT)}…` : s;
}

/** One audit entry (details without undefined values). */
export function auditEntry(
  actor: string,
  action: AuditAction,
  target: string | null,
  details?: Record<string, string | number | boolean | null | undefined>,
): NewAuditEntry {
  const d: JsonObject = {};
  for (const [k, v] of Object.entries(details ?? {})) if (v !== undefined) d[k] = v;
  return { actor, action, target, ...(Object.keys(d).length ? { details: d } : {}) };
}

/** Appends one operator action. */
export function recordAudit(
  store: Store,
  actor: string,
  action: AuditAction,
  target: string | null,
  details?: Record<string, string | number | boolean | null | undefined>,
): Promise<void> {
  return store.appendAudit([auditEntry(actor, action, target, details)]);
}

/**
 * Records a configuration reload (for the code that reloads the configuration): `actor` is
 * who asked (`cli:<user>`, an admin name, `system` for a signal), `details` what changed
 * (names of settings or profiles, never their secret values).
 */
export function recordConfigReload(
  store: Store,
  actor: string,
  details: Record<string, string | number | boolean | null | undefined> = {},
): Promise<void> {
  return recordAudit(store, actor, 'config.reloaded', null, details);
}

// ---------------------------------------------------------------- reading (CLI and admin API)

/** Most records one listing returns. */
export const MAX_AUDIT_PAGE = 500;
export const DEFAULT_AUDIT_PAGE = 100;

/** What operators see of a record (times as ISO 8601). */
export interface AuditView {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: JsonObject | null;
  hash: string;
}

export function auditView(r: AuditRecord): AuditView {
  return {
    seq: r.seq,
    at: r.at.toISOString(),
    actor: r.actor,
    action: r.action,
    target: r.target,
    details: r.details,
    hash: r.hash,
  };
}

/** A bad filter of an audit listing (the caller maps it to a usage error or HTTP 400). */
export class AuditQueryError extends Error {
  override name = 'AuditQueryError';
}

/** `action` is one of AUDIT_ACTIONS or a prefix of some ending in `.` (`enroll.`). */
export function checkAuditAction(action: string): string {
  const ok = action.endsWith('.')
    ? AUDIT_ACTIONS.some((a) => a.startsWith(action))
    : (AUDIT_ACTIONS as readonly string[]).includes(action);
  if (!ok)
    throw new AuditQueryError(
      `unknown action; use one of ${AUDIT_ACTIONS.join(', ')} or a prefix such as enroll.`,
    );
  return action;
}

export interface AuditFilters {
  action?: string;
  since?: Date;
  /** Records with seq below this (the previous page's last seq). */
  before?: number;
  limit?: number;
}

/** Audit records, newest first; `nextBefore` continues the listing. */
export async function listAuditRecords(
  store: Store,
  f: AuditFilters,
): Promise<{ items: AuditView[]; nextBefore?: number }> {
  const limit = f.limit ?? DEFAULT_AUDIT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE)
    throw new AuditQueryError(`limit must be a whole number from 1 to ${MAX_AUDIT_PAGE}`);
  if (f.before !== undefined && (!Number.isSafeInteger(f.before) || f.before < 1))
    throw new AuditQueryError('before must be a positive whole number (a seq)');
  const rows = await store.listAudit({
    limit,
    ...(f.action !== undefined ? { action: checkAuditAction(f.action) } : {}),
    ...(f.since ? { since: f.since } : {}),
    ...(f.before !== undefined ? { beforeSeq: f.before } : {}),
  });
  const items = rows.map(auditView);
  const last = items[items.length - 1];
  return { items, ...(items.length === limit && last && last.seq > 1 ? { nextBefore: last.seq } : {}) };
}

/** A recent enrollment refusal, as the console and `GET /admin/failures` show it. */
export interface FailureView {
  seq: number;
  at: string;
  transactionId: string | null;
  reason: string | null;
  failInfo: string | null;
  messageType: string | null;
  source: string | null;
  profile: string | null;
}

const text = (v: JsonValue | undefined): string | null => (typeof v === 'string' ? v : null);

/** The most recent `enroll.refused` records, newest first. */
export async function recentFailures(store: Store, limit = DEFAULT_AUDIT_PAGE): Promise<FailureView[]> {
  const { items } = await listAuditRecords(store, { action: 'enroll.refused', limit });
  return items.map((r) => ({
    seq: r.seq,
    at: r.at,
    transactionId: r.target,
    reason: text(r.details?.reason),
    failInfo: text(r.details?.failInfo),
    messageType: text(r.details?.messageType),
    source: text(r.details?.source),
    profile: text(r.details?.profile),
  }));
}

/** The outcome of checking the whole chain. */
export interface AuditVerification {
  ok: boolean;
  /** Rows checked and found good. */
  rows: number;
  /** The last good row: operators record it and check it later (`--head`). */
  head: { seq: number; hash: string };
  /** The first broken row. */
  broken?: { seq: number; problem: string };
  /** Set when an expected head was given and the chain does not contain it. */
  headMismatch?: string;
}

/**
 * Reads the whole chain in order (pages of `pageSize`) and checks it; with `expectHead`
 * (a head recorded earlier) also that row `seq` still has that hash.
 */
export async function verifyAuditTrail(
  store: Store,
  o: { expectHead?: { seq: number; hash: string }; pageSize?: number } = {},
): Promise<AuditVerification> {
  const v = new AuditChainVerifier();
  const pageSize = o.pageSize ?? 1000;
  const expect = o.expectHead;
  let seen: string | undefined;
  let after = 0;
  for (;;) {
    const rows = await store.readAuditChain(after, pageSize);
    if (rows.length === 0) break;
    const good = v.feed(rows);
    if (expect) {
      const r = rows.find((x) => x.seq === expect.seq);
      if (r && (v.broken === undefined || r.seq < v.broken.seq)) seen = r.hash;
    }
    if (!good) break;
    after = rows[rows.length - 1]!.seq;
  }
  const out: AuditVerification = { ok: v.broken === undefined, rows: v.checked, head: v.head };
  if (v.broken) out.broken = v.broken;
  if (expect && out.ok) {
    if (seen === undefined)
      out.headMismatch = `row ${expect.seq} is not in the chain (rows were removed from the end, or the chain was rebuilt)`;
    else if (seen !== expect.hash.toLowerCase())
      out.headMismatch = `row ${expect.seq} has another hash than recorded (the chain was rewritten)`;
    if (out.headMismatch) out.ok = false;
  }
  return out;
}

/** Parses `SEQ:HASH` (what `scepter audit verify` prints as the head). */
export function parseAuditHead(s: string): { seq: number; hash: string } {
  const m = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(s.trim());
  if (!m || Number(m[1]) < 1)
    throw new AuditQueryError('the head must be SEQ:HASH (as `scepter audit verify` prints it)');
  return { seq: Number(m[1]), hash: m[2]!.toLowerCase() };
}
