/**
 * Numbered schema migrations, one SQL script per dialect per step, recorded in
 * `schema_migrations` and applied in order on open (see sqlite.ts / postgres.ts for locking).
 * Never edit a released step: add a new one.
 */

export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

/** Column types that differ between the dialects. */
function ddl(d: { ts: string; blob: string; bigint: string; withoutRowid: string }): string {
  return `
CREATE TABLE certificates (
  serial            TEXT PRIMARY KEY,
  issuer            TEXT NOT NULL,
  subject           TEXT NOT NULL,
  common_name       TEXT,
  sans              TEXT NOT NULL,
  not_before        ${d.ts} NOT NULL,
  not_after         ${d.ts} NOT NULL,
  key_hash          TEXT NOT NULL,
  transaction_id    TEXT,
  status            TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
  revoked_at        ${d.ts},
  revocation_reason INTEGER,
  created_at        ${d.ts} NOT NULL,
  der               ${d.blob} NOT NULL
);
CREATE UNIQUE INDEX certificates_transaction_id_key ON certificates (transaction_id)
  WHERE transaction_id IS NOT NULL;
CREATE INDEX certificates_key_hash ON certificates (key_hash);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_issuer ON certificates (issuer);
CREATE INDEX certificates_created_at ON certificates (created_at);
CREATE INDEX certificates_common_name ON certificates (lower(common_name));
CREATE INDEX certificates_revoked ON certificates (issuer, serial) WHERE status = 'revoked';

-- One row per SAN so a SAN value is found through an index; type is dns/email/ip/uri/...
-- The primary key is the search index (value first); SQLite keeps it as one B-tree.
CREATE TABLE certificate_sans (
  value  TEXT NOT NULL,
  type   TEXT NOT NULL,
  serial TEXT NOT NULL,
  PRIMARY KEY (value, type, serial)
)${d.withoutRowid};

CREATE TABLE transactions (
  transaction_id  TEXT PRIMARY KEY,
  signer_key_hash TEXT NOT NULL,
  message_type    INTEGER NOT NULL,
  state           TEXT NOT NULL
    CHECK (state IN ('pending', 'approved', 'issued', 'rejected', 'failed', 'expired')),
  csr             ${d.blob},
  subject         TEXT,
  requester       TEXT,
  created_at      ${d.ts} NOT NULL,
  updated_at      ${d.ts} NOT NULL,
  expires_at      ${d.ts},
  cert_serial     TEXT,
  fail_info       INTEGER,
  fail_text       TEXT,
  meta            TEXT,
  CHECK (state <> 'issued' OR cert_serial IS NOT NULL)
);
CREATE INDEX transactions_state ON transactions (state, created_at);

CREATE TABLE crl_counters (
  issuer TEXT PRIMARY KEY,
  value  ${d.bigint} NOT NULL
);

CREATE TABLE crls (
  issuer      TEXT PRIMARY KEY,
  crl_number  ${d.bigint} NOT NULL,
  this_update ${d.ts} NOT NULL,
  next_update ${d.ts} NOT NULL,
  der         ${d.blob} NOT NULL
);

CREATE TABLE secrets (
  hash        TEXT PRIMARY KEY,
  expires_at  ${d.ts} NOT NULL,
  consumed_at ${d.ts},
  created_at  ${d.ts} NOT NULL,
  meta        TEXT
);
CREATE INDEX secrets_expires_at ON secrets (expires_at);

CREATE TABLE settings (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at ${d.ts} NOT NULL
);
`;
}

/**
 * Migration 2: fixed-window event counters shared by every worker and instance on one store
 * (challenge-failure throttling, the pending-request limiter). `window_start` is the window's
 * start in ms since the epoch in both dialects (it is a key, never shown).
 */
const COUNTERS = `
CREATE TABLE rate_counters (
  scope        TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  count        INTEGER NOT NULL,
  PRIMARY KEY (scope, window_start)
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);
`;

/**
 * Migration 3: several CAs and profiles. Every certificate and transaction records the name of
 * the CA that issues it and the profile it was asked under (existing rows: `default`), and a
 * serial is unique per CA, not globally: two CAs may issue the same serial, so certificates are
 * keyed (ca, serial) and a SAN row names its certificate's CA. SQLite cannot change a primary
 * key in place, so it rebuilds the two tables (same indexes, same names); PostgreSQL alters them.
 */
function caProfileSqlite(): string {
  return `
CREATE TABLE certificates_v3 (
  ca                TEXT NOT NULL DEFAULT 'default',
  serial            TEXT NOT NULL,
  issuer            TEXT NOT NULL,
  subject           TEXT NOT NULL,
  common_name       TEXT,
  sans              TEXT NOT NULL,
  not_before        INTEGER NOT NULL,
  not_after         INTEGER NOT NULL,
  key_hash          TEXT NOT NULL,
  transaction_id    TEXT,
  status            TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
  revoked_at        INTEGER,
  revocation_reason INTEGER,
  created_at        INTEGER NOT NULL,
  der               BLOB NOT NULL,
  profile           TEXT NOT NULL DEFAULT 'default',
  PRIMARY KEY (ca, serial)
);
INSERT INTO certificates_v3 (serial, issuer, subject, common_name, sans, not_before, not_after, key_hash,
  transaction_id, status, revoked_at, revocation_reason, created_at, der)
SELECT serial, issuer, subject, common_name, sans, not_before, not_after, key_hash,
  transaction_id, status, revoked_at, revocation_reason, created_at, der FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v3 RENAME TO certificates;
${certificateIndexes}
CREATE TABLE certificate_sans_v3 (
  value  TEXT NOT NULL,
  type   TEXT NOT NULL,
  ca     TEXT NOT NULL DEFAULT 'default',
  serial TEXT NOT NULL,
  PRIMARY KEY (value, type, ca, serial)
) WITHOUT ROWID;
INSERT INTO certificate_sans_v3 (value, type, serial) SELECT value, type, serial FROM certificate_sans;
DROP TABLE certificate_sans;
ALTER TABLE certificate_sans_v3 RENAME TO certificate_sans;
${transactionColumns}`;
}

/** The certificate indexes of migration 1, plus lookups by serial alone and by profile. */
const certificateIndexes = `
CREATE UNIQUE INDEX certificates_transaction_id_key ON certificates (transaction_id)
  WHERE transaction_id IS NOT NULL;
CREATE INDEX certificates_key_hash ON certificates (key_hash);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_issuer ON certificates (issuer);
CREATE INDEX certificates_created_at ON certificates (created_at);
CREATE INDEX certificates_common_name ON certificates (lower(common_name));
CREATE INDEX certificates_revoked ON certificates (issuer, serial) WHERE status = 'revoked';
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_profile ON certificates (profile, created_at);
`;

const transactionColumns = `
ALTER TABLE transactions ADD COLUMN ca TEXT NOT NULL DEFAULT 'default';
ALTER TABLE transactions ADD COLUMN profile TEXT NOT NULL DEFAULT 'default';
`;

const CA_PROFILE_POSTGRES = `
ALTER TABLE certificates ADD COLUMN ca TEXT NOT NULL DEFAULT 'default',
  ADD COLUMN profile TEXT NOT NULL DEFAULT 'default';
ALTER TABLE certificates DROP CONSTRAINT certificates_pkey,
  ADD CONSTRAINT certificates_pkey PRIMARY KEY (ca, serial);
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_profile ON certificates (profile, created_at);
ALTER TABLE certificate_sans ADD COLUMN ca TEXT NOT NULL DEFAULT 'default';
ALTER TABLE certificate_sans DROP CONSTRAINT certificate_sans_pkey,
  ADD CONSTRAINT certificate_sans_pkey PRIMARY KEY (value, type, ca, serial);
${transactionColumns}`;

/**
 * Migration 4: the audit trail (src/store/audit-chain.ts), a hash chain numbered by `seq`.
 * Append-only for the application: UPDATE, DELETE (and in PostgreSQL TRUNCATE) are refused by
 * triggers — a speed bump, not a guarantee (whoever may write the database may drop them); the
 * chain is what detects a change.
 */
function auditDdl(d: { ts: string; seq: string }): string {
  return `
CREATE TABLE audit_log (
  seq       ${d.seq},
  at        ${d.ts} NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  target    TEXT,
  details   TEXT,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
`;
}

const AUDIT_SQLITE = `${auditDdl({ ts: 'INTEGER', seq: 'INTEGER PRIMARY KEY' })}
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
`;

const AUDIT_POSTGRES = `${auditDdl({ ts: 'TIMESTAMPTZ', seq: 'BIGINT PRIMARY KEY' })}
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
  'BEGIN RAISE EXCEPTION ''audit_log is append-only''; END';
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
`;

/** SQLite stores times as INTEGER milliseconds since the epoch (UTC). */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sqlite: ddl({ ts: 'INTEGER', blob: 'BLOB', bigint: 'INTEGER', withoutRowid: ' WITHOUT ROWID' }),
    postgres: ddl({ ts: 'TIMESTAMPTZ', blob: 'BYTEA', bigint: 'BIGINT', withoutRowid: '' }),
  },
  { version: 2, name: 'rate counters', sqlite: COUNTERS, postgres: COUNTERS },
  { version: 3, name: 'CA and profile', sqlite: caProfileSqlite(), postgres: CA_PROFILE_POSTGRES },
  { version: 4, name: 'audit trail', sqlite: AUDIT_SQLITE, postgres: AUDIT_POSTGRES },
  {
    version: 5,
    name: 'last poll of a pending request',
    sqlite: 'ALTER TABLE transactions ADD COLUMN last_poll_at INTEGER;',
    postgres: 'ALTER TABLE transactions ADD COLUMN last_poll_at TIMESTAMPTZ;',
  },
];

export const MIGRATIONS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`;
