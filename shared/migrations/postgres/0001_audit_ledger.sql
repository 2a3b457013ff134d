-- The audit ledger in PostgreSQL: one row per entry, hash-chained per chain exactly as the file ledger is.
-- Run by `idvctl ledger migrate` with a role that owns the schema; the services connect with a role that has
-- been granted idv_ledger_writer, which may INSERT and SELECT and nothing else.

CREATE TABLE IF NOT EXISTS audit_ledger (
    chain      text        NOT NULL,
    seq        bigint      NOT NULL CHECK (seq > 0),
    prev       text        NOT NULL,
    -- The record exactly as hashed (text, not jsonb: jsonb would reorder keys and break the hash).
    record     text        NOT NULL,
    hash       text        NOT NULL,
    checkpoint boolean     NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, seq)
);

-- Append-only for everyone, owner included: rows are never changed or removed.
CREATE OR REPLACE FUNCTION audit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_ledger is append-only';
END
$$;
CREATE OR REPLACE TRIGGER audit_ledger_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_ledger FOR EACH ROW EXECUTE FUNCTION audit_ledger_append_only();
CREATE OR REPLACE TRIGGER audit_ledger_no_truncate
    BEFORE TRUNCATE ON audit_ledger FOR EACH STATEMENT EXECUTE FUNCTION audit_ledger_append_only();

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'idv_ledger_writer') THEN
        CREATE ROLE idv_ledger_writer NOLOGIN;
    END IF;
END
$$;
REVOKE ALL ON audit_ledger FROM PUBLIC;
GRANT SELECT, INSERT ON audit_ledger TO idv_ledger_writer;
