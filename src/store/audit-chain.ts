/**
 * The audit trail's hash chain (docs/security.md "Audit trail"). Rows are numbered 1, 2, 3, …
 * (`seq`, no gaps); each row's hash is SHA-256 over the previous row's hash and the row's
 * canonical content, the first row's previous hash is 64 zeros. So editing, deleting,
 * inserting or reordering a row breaks the chain at that row. What the chain cannot show
 * alone is a rewrite of the whole chain from some row on, or rows cut off at the end: an
 * operator anchors it by recording the head (`seq` and hash) that `scepter audit verify`
 * prints and checking it later (`--head SEQ:HASH`).
 *
 * Both adapters chain rows inside their serialized append (SQLite: `chainEntries` under the
 * write lock of the group commit; PostgreSQL: `chainPrepared` under a transaction-scoped
 * advisory lock, for a whole batch of appends at once — src/store/pg-batch.ts), and
 * `AuditChainVerifier` checks rows read back in order.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord, AuditRow, JsonObject, JsonValue, NewAuditEntry } from './types.js';

/** The previous hash of the first row. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

/** Longest `details` of one record (canonical JSON, characters). */
export const MAX_AUDIT_DETAILS = 8192;
/** Longest actor, action and target. */
export const MAX_AUDIT_FIELD = 512;

/** JSON with object keys sorted at every level: one text for one value. */
export function canonicalJson(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(v)
    .filter((k) => v[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k] as JsonValue)}`).join(',')}}`;
}

/** The canonical content of a row: what its hash covers besides the previous hash. */
export function auditContent(r: Omit<AuditRow, 'prevHash' | 'hash'>): string {
  return JSON.stringify([r.seq, r.at.toISOString(), r.actor, r.action, r.target, r.details]);
}

export function auditHash(prevHash: string, content: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

function field(name: string, v: string): string {
  if (v.length === 0 || v.length > MAX_AUDIT_FIELD)
    throw new RangeError(`audit ${name} must be 1 to ${MAX_AUDIT_FIELD} characters`);
  return v;
}

/** An entry checked and canonicalized, ready to be chained (`at` still optional). */
export interface PreparedAuditEntry {
  at: Date | undefined;
  actor: string;
  action: string;
  target: string | null;
  details: string | null;
}

/**
 * Checks `entries` (field lengths, details size) and canonicalizes their details, outside the
 * serialized append: an entry that cannot be stored is refused before anything is written.
 */
export function prepareAuditEntries(entries: readonly NewAuditEntry[]): PreparedAuditEntry[] {
  return entries.map((e) => {
    const details = e.details ? canonicalJson(e.details) : null;
    if (details !== null && details.length > MAX_AUDIT_DETAILS)
      throw new RangeError(`audit details longer than ${MAX_AUDIT_DETAILS} characters`);
    return {
      at: e.at,
      actor: field('actor', e.actor),
      action: field('action', e.action),
      target: e.target === undefined || e.target === null ? null : field('target', e.target),
      details,
    };
  });
}

/**
 * The rows that follow `head` (null: an empty chain) for prepared entries, in order; an entry
 * without `at` gets `now`. Run inside the adapter's serialized append, with `head` read there.
 */
export function chainPrepared(
  head: { seq: number; hash: string } | null,
  entries: readonly PreparedAuditEntry[],
  now: Date,
): AuditRow[] {
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? AUDIT_GENESIS_HASH;
  return entries.map((e) => {
    const base = {
      seq: ++seq,
      // Whole milliseconds: what both dialects store exactly.
      at: new Date(Math.trunc((e.at ?? now).getTime())),
      actor: e.actor,
      action: e.action,
      target: e.target,
      details: e.details,
    };
    const hash = auditHash(prev, auditContent(base));
    const row: AuditRow = Object.assign(base, { prevHash: prev, hash });
    prev = hash;
    return row;
  });
}

/**
 * The rows that follow `head` (null: an empty chain) for `entries`, in order. Run inside the
 * adapter's serialized append, with `head` read there.
 */
export function chainEntries(
  head: { seq: number; hash: string } | null,
  entries: readonly NewAuditEntry[],
  now: Date,
): AuditRow[] {
  return chainPrepared(head, prepareAuditEntries(entries), now);
}

/** A stored row as a record (details parsed; a row whose details do not parse keeps them as text). */
export function auditRecordOf(r: AuditRow): AuditRecord {
  let details: JsonObject | null = null;
  if (r.details !== null) {
    try {
      details = JSON.parse(r.details) as JsonObject;
    } catch {
      details = { unparsable: r.details };
    }
  }
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    details,
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

/** The first broken row found by `AuditChainVerifier`. */
export interface AuditBreak {
  seq: number;
  problem: string;
}

/**
 * Checks rows fed in ascending `seq` order (in pages): numbering from 1 without gaps, each
 * previous hash equal to the row before's hash, each hash equal to the recomputed one.
 */
export class AuditChainVerifier {
  private prevSeq = 0;
  private prevHash = AUDIT_GENESIS_HASH;
  /** Rows checked so far. */
  checked = 0;
  broken: AuditBreak | undefined;

  /** Feeds the next rows; returns false once the chain is broken (stop feeding). */
  feed(rows: readonly AuditRow[]): boolean {
    for (const r of rows) {
      if (this.broken) return false;
      const problem =
        r.seq !== this.prevSeq + 1
          ? r.seq > this.prevSeq + 1
            ? r.seq === this.prevSeq + 2
              ? `row ${this.prevSeq + 1} before it is missing`
              : `rows ${this.prevSeq + 1}–${r.seq - 1} before it are missing`
            : 'out of order'
          : r.prevHash !== this.prevHash
            ? 'its previous hash is not the hash of the row before (a row was removed, inserted or rewritten)'
            : auditHash(r.prevHash, auditContent(r)) !== r.hash
              ? 'its content does not match its hash (the row was altered)'
              : undefined;
      if (problem) {
        this.broken = { seq: r.seq, problem };
        return false;
      }
      this.prevSeq = r.seq;
      this.prevHash = r.hash;
      this.checked++;
    }
    return true;
  }

  /** The last good row (seq 0 and the genesis hash while empty). */
  get head(): { seq: number; hash: string } {
    return { seq: this.prevSeq, hash: this.prevHash };
  }
}
