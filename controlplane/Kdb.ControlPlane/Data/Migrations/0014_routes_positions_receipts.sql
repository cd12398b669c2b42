-- Route versions in commit order (docs/controlplane-routes.md): a version is handed out only under a
-- transaction-scoped advisory lock, so the transaction holding version v commits (or aborts) before any
-- other can take v + 1, and a proxy that has seen v can never later find a smaller one committed.

-- Gives each listed database a new version and returns the highest (0 when none). The lock's key is
-- 'kdbroute' read as a big-endian int64. Rows are locked in id order before the version lock is taken, so
-- this never waits for a row while holding that lock: a transaction that changed one of the rows first and
-- then asks for a version cannot deadlock with it.
CREATE FUNCTION kdb_bump_routes(ids character varying[]) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    highest bigint;
BEGIN
    PERFORM 1 FROM databases WHERE "Id" = ANY(ids) ORDER BY "Id" FOR UPDATE;
    PERFORM pg_advisory_xact_lock(7738418303365117029);
    WITH bumped AS (
        UPDATE databases SET "RouteVersion" = nextval('route_version_seq') WHERE "Id" = ANY(ids) RETURNING "RouteVersion")
    SELECT max("RouteVersion") INTO highest FROM bumped;
    RETURN coalesce(highest, 0);
END $$;

-- A new row is no change a proxy must see until something bumps it (its placement, a restore, a failure);
-- a default from the sequence would be a version taken outside the lock.
ALTER TABLE databases ALTER COLUMN "RouteVersion" SET DEFAULT 0;

-- Per-proxy route-feed positions, shared by every control-plane instance (they decide "every live proxy has
-- fetched version v" before a change returns).
CREATE TABLE proxy_positions (
    "ProxyId" character varying(64) NOT NULL,
    "Since" bigint NOT NULL,
    "SeenAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_proxy_positions" PRIMARY KEY ("ProxyId")
);

-- Usage receipts as ranges of sequences per source: one row per batch instead of one per record.
CREATE TABLE usage_receipt_ranges (
    "Source" character varying(64) NOT NULL,
    "First" bigint NOT NULL,
    "Last" bigint NOT NULL,
    CONSTRAINT "PK_usage_receipt_ranges" PRIMARY KEY ("Source", "First")
);

INSERT INTO usage_receipt_ranges ("Source", "First", "Last") SELECT "Source", "Sequence", "Sequence" FROM usage_receipts;
DROP TABLE usage_receipts;
