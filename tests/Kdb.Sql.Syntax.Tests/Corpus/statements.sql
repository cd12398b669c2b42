-- Hand-written corpus: every statement kind and expression form of the AST, EF Core (Npgsql provider)
-- migration SQL, pgbench's built-in scripts. Entries are separated by '-- @@@@' lines.
SELECT 1
-- @@@@
SELECT abalance FROM pgbench_accounts WHERE aid = $1
-- @@@@
SELECT * FROM t
-- @@@@
SELECT t.*, u.a AS "Mixed Case", u.b bare_alias, 1 + 2 * 3 - 4 / 5 % 6 ^ 7 FROM t, u WHERE t.id = u.id
-- @@@@
SELECT DISTINCT a, b FROM t ORDER BY a DESC NULLS LAST, b ASC NULLS FIRST, 1 LIMIT 10 OFFSET 20
-- @@@@
SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b DESC
-- @@@@
SELECT a, count(*), sum(b), avg(c), min(d), max(e), string_agg(f, ',' ORDER BY f), bool_and(g), bool_or(h) FROM t GROUP BY a HAVING count(*) > 1
-- @@@@
SELECT count(DISTINCT a) FILTER (WHERE b > 0) FROM t
-- @@@@
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t
-- @@@@
SELECT CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' ELSE 'zero' END, CASE a WHEN 1 THEN 'one' END FROM t
-- @@@@
SELECT a BETWEEN 1 AND 10, a NOT BETWEEN SYMMETRIC 10 AND 1, b LIKE 'x%', b NOT LIKE 'y%' ESCAPE '!', b ILIKE 'z', b NOT ILIKE 'w' FROM t
-- @@@@
SELECT * FROM t WHERE a IN (1, 2, 3) AND b NOT IN ('x', 'y') AND c IN (SELECT c FROM u) AND d NOT IN (SELECT d FROM u WHERE u.e = t.e)
-- @@@@
SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id) AND NOT EXISTS (SELECT 1 FROM v)
-- @@@@
SELECT (SELECT max(b) FROM u WHERE u.a = t.a) AS m FROM t
-- @@@@
SELECT * FROM a INNER JOIN b ON a.id = b.id LEFT JOIN c ON c.id = b.id RIGHT OUTER JOIN d ON d.id = c.id FULL OUTER JOIN e ON e.id = d.id CROSS JOIN f
-- @@@@
SELECT * FROM a JOIN b USING (id, k) NATURAL JOIN c
-- @@@@
SELECT * FROM a JOIN b JOIN c ON b.x = c.x ON a.y = b.y
-- @@@@
SELECT * FROM (a JOIN b ON a.id = b.id) LEFT JOIN (c CROSS JOIN d) ON c.k = a.k
-- @@@@
SELECT * FROM t1, t2, t3, t4, t5 WHERE t1.a = t2.a AND t2.b = t3.b AND t3.c = t4.c AND t4.d = t5.d
-- @@@@
SELECT 1 UNION SELECT 2 UNION ALL SELECT 3 INTERSECT SELECT 4 EXCEPT ALL SELECT 5 ORDER BY 1 LIMIT 3
-- @@@@
(SELECT a FROM t ORDER BY a LIMIT 1) UNION ALL (SELECT b FROM u ORDER BY b DESC LIMIT 1)
-- @@@@
SELECT * FROM (SELECT 1 UNION SELECT 2) AS s (x)
-- @@@@
WITH x AS (SELECT 1 AS a), y (b) AS (SELECT a FROM x) SELECT * FROM x, y
-- @@@@
WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r
-- @@@@
SELECT row_number() OVER (PARTITION BY a ORDER BY b), rank() OVER (ORDER BY b DESC), dense_rank() OVER w, sum(c) OVER (PARTITION BY a ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), avg(c) OVER (ORDER BY b ROWS 2 PRECEDING), count(*) OVER () FROM t WINDOW w AS (PARTITION BY a ORDER BY b)
-- @@@@
SELECT sum(x) OVER (w ORDER BY y RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t WINDOW w AS (PARTITION BY z)
-- @@@@
SELECT * FROM t FOR UPDATE
-- @@@@
SELECT * FROM t WHERE id = 1 FOR SHARE NOWAIT
-- @@@@
SELECT * FROM t FOR NO KEY UPDATE OF t SKIP LOCKED
-- @@@@
SELECT * FROM t FETCH FIRST 5 ROWS ONLY
-- @@@@
SELECT * FROM t OFFSET 5 ROWS FETCH NEXT ROW ONLY
-- @@@@
VALUES (1, 'a'), (2, 'b')
-- @@@@
SELECT * FROM generate_series(1, 10) AS g (n)
-- @@@@
SELECT * FROM generate_series(1, 10) WITH ORDINALITY AS g (n, i)
-- @@@@
SELECT * FROM pg_catalog.generate_series(1, 3) s, LATERAL (SELECT s * 2 AS d) AS l
-- @@@@
SELECT abs(-1), round(2.5), round(2.567, 2), coalesce(a, b, 0), nullif(a, 0), greatest(1, 2), least(1, 2), lower('A'), upper('a'), length('abc'), concat('a', 'b', 1), 'a' || 'b' || c, replace('abc', 'b', 'x') FROM t
-- @@@@
SELECT now(), current_timestamp, current_date, current_time, localtimestamp, localtime, current_user, session_user, user, current_schema, current_schema(), current_catalog, current_role, version(), current_database(), gen_random_uuid()
-- @@@@
SELECT extract(year FROM ts), EXTRACT(EPOCH FROM now()), extract('month' FROM d), date_trunc('day', ts) FROM t
-- @@@@
SELECT substring('hello' FROM 2 FOR 3), substring('hello' FROM 2), substring('hello' FOR 2), substring('hello', 1, 2)
-- @@@@
SELECT trim('  x  '), trim(BOTH 'x' FROM 'xxyxx'), trim(LEADING FROM '  x'), trim(TRAILING 'y' FROM 'xyy'), btrim('x'), position('b' IN 'abc')
-- @@@@
SELECT CAST(a AS integer), a::bigint, '1'::numeric(10,2), 'x'::varchar(20), 'x'::character varying(20), '1.5'::double precision, now()::timestamp with time zone, now()::timestamp(3) without time zone, 'a'::text[], '{1}'::int[][], '1'::pg_catalog.int4, '12:00'::time with time zone FROM t
-- @@@@
SELECT DATE '2024-01-01', INTERVAL '1 day', TIMESTAMP '2024-01-01 00:00:00', timestamptz '2024-01-01', TIME '12:00', double precision '1.5', timestamp with time zone '2024-01-01 00:00:00+00', boolean 'true', uuid 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', jsonb '{"a": 1}'
-- @@@@
SELECT j -> 'a', j ->> 'b', j -> 0 ->> 'c', j @> '{"a":1}', j ? 'k', 'abc' ~ 'b', 'abc' !~ 'x', 'abc' ~* 'B', 'abc' !~* 'X', 5 & 3, 5 | 3, 1 << 4, 16 >> 2, ~ 5 FROM t
-- @@@@
SELECT a IS NULL, a IS NOT NULL, a ISNULL, a NOTNULL, b IS TRUE, b IS NOT FALSE, b IS UNKNOWN, a IS DISTINCT FROM b, a IS NOT DISTINCT FROM b FROM t
-- @@@@
SELECT * FROM t WHERE a = ANY (ARRAY[1, 2, 3]) AND b <> ALL (SELECT b FROM u) AND c = SOME (SELECT c FROM u) AND d LIKE ANY (ARRAY['a%', 'b%'])
-- @@@@
SELECT ARRAY[1, 2], ARRAY[[1, 2], [3, 4]], ARRAY[]::int[], ARRAY(SELECT a FROM t), (ARRAY[1, 2])[1], arr[2], ROW(1, 2), (1, 'a'), ROW()
-- @@@@
SELECT -1, - 1, -a, +a, -(-1), 2 ^ -1, -2 ^ 2, (-2)::int, -2::int, 1.5e3, .5, 1., 12345678901234567890123, -9223372036854775808
-- @@@@
SELECT NOT a AND b OR c, NOT (a OR b), a = ANY (b) = c, a IN (b) IN (c), a IS NULL IS NULL, (a = b) IS TRUE, a + b * c, (a + b) * c, a - (b - c), a - b - c, a || b = c, a < b AND b < c
-- @@@@
SELECT 'it''s', E'tab\there\nnew \\ \'q\' \x41 \101 \u00e9', $$dollar 'quoted'$$, $tag$with $$ inside$tag$, 'multi'
'line'
-- @@@@
SELECT "Quoted ""Ident""", "select", "CamelCase".col, MixedCase.Col FROM "Some Table" AS "Alias"
-- @@@@
SELECT a COLLATE "C", b COLLATE pg_catalog."default", c COLLATE "en_US.utf8" FROM t ORDER BY a COLLATE "POSIX"
-- @@@@
SELECT ts AT TIME ZONE 'UTC', (ts AT TIME ZONE 'UTC') AT TIME ZONE 'Europe/Paris' FROM t
-- @@@@
SELECT $1::int, $2 + $10, $3::text[] FROM t WHERE a = $1 AND b = ANY ($2)
-- @@@@
SELECT left('abc', 2), right('abc', 1), "left"('x', 1), pg_catalog.left('a', 1)
-- @@@@
SELECT
-- @@@@
SELECT * FROM ONLY t
-- @@@@
TABLE t
-- @@@@
INSERT INTO t VALUES (1, 'a', DEFAULT), (2, 'b', NULL)
-- @@@@
INSERT INTO t (a, b) SELECT x, y FROM u WHERE z > 0
-- @@@@
INSERT INTO t DEFAULT VALUES RETURNING id
-- @@@@
INSERT INTO t AS x (id, v) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET v = excluded.v + x.v WHERE x.v < 100 RETURNING *
-- @@@@
INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING
-- @@@@
INSERT INTO t (id) VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING
-- @@@@
INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT aid, (aid - 1) / 100000 + 1, 0, '' FROM generate_series(1, 100000) AS aid
-- @@@@
WITH src AS (SELECT 1 AS a) INSERT INTO t (a) SELECT a FROM src
-- @@@@
UPDATE t SET a = 1, b = b + 1 WHERE id = 2 RETURNING a, b AS bee
-- @@@@
UPDATE t AS x SET (a, b) = (1, 2) FROM u WHERE u.id = x.id
-- @@@@
UPDATE t x SET c = DEFAULT
-- @@@@
DELETE FROM t WHERE id = 1 RETURNING *
-- @@@@
DELETE FROM t AS x USING u WHERE u.id = x.id
-- @@@@
TRUNCATE TABLE a, b RESTART IDENTITY CASCADE
-- @@@@
TRUNCATE a CONTINUE IDENTITY RESTRICT
-- @@@@
COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL '')
-- @@@@
COPY t TO STDOUT WITH CSV HEADER DELIMITER AS ','
-- @@@@
COPY (SELECT * FROM t) TO STDOUT
-- @@@@
copy pgbench_accounts from stdin with (freeze on)
-- @@@@
CREATE TABLE t (id bigserial PRIMARY KEY, name varchar(100) NOT NULL DEFAULT 'x', price numeric(10,2) CHECK (price > 0), created timestamptz DEFAULT now(), flag boolean NULL, u uuid UNIQUE, parent bigint REFERENCES t (id) ON DELETE CASCADE ON UPDATE SET NULL)
-- @@@@
CREATE TABLE IF NOT EXISTS s.t (a int, b int, c text COLLATE "C", CONSTRAINT pk PRIMARY KEY (a, b), CONSTRAINT uq UNIQUE (c), CHECK (a < b), FOREIGN KEY (b) REFERENCES u (id) ON DELETE RESTRICT, CONSTRAINT fk2 FOREIGN KEY (a, b) REFERENCES v ON DELETE SET DEFAULT DEFERRABLE INITIALLY DEFERRED)
-- @@@@
CREATE TEMP TABLE tmp (x int) WITH (fillfactor=70, autovacuum_enabled = false, toast.autovacuum_enabled = off)
-- @@@@
CREATE TABLE ct AS SELECT * FROM t WHERE a > 1
-- @@@@
CREATE TABLE ct2 (x, y) AS SELECT 1, 2 WITH DATA
-- @@@@
CREATE TABLE d (a int DEFAULT 1 + 2, b int DEFAULT -1, c text DEFAULT ('a' || 'b'), e boolean DEFAULT (1 = 1), f int GENERATED ALWAYS AS IDENTITY, g int GENERATED BY DEFAULT AS IDENTITY (START WITH 10 INCREMENT BY 2))
-- @@@@
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix ON t USING btree (a DESC NULLS LAST, lower(b), (c + d)) INCLUDE (e) WHERE a > 0
-- @@@@
CREATE INDEX ON t (a)
-- @@@@
CREATE INDEX ix2 ON s.t (b text_pattern_ops ASC)
-- @@@@
CREATE OR REPLACE VIEW v (a, b) AS SELECT x, y FROM t WHERE x > 1
-- @@@@
CREATE VIEW v2 AS SELECT 1
-- @@@@
CREATE SEQUENCE IF NOT EXISTS seq AS bigint INCREMENT BY 2 MINVALUE -10 MAXVALUE 1000 START WITH 5 CACHE 10 NO CYCLE OWNED BY t.id
-- @@@@
CREATE SEQUENCE s2 INCREMENT 1 NO MINVALUE NO MAXVALUE START 1 CYCLE
-- @@@@
CREATE SCHEMA IF NOT EXISTS app
-- @@@@
DROP TABLE IF EXISTS a, s.b CASCADE
-- @@@@
DROP INDEX ix
-- @@@@
DROP VIEW IF EXISTS v RESTRICT
-- @@@@
DROP SEQUENCE seq
-- @@@@
DROP SCHEMA app CASCADE
-- @@@@
ALTER TABLE t ADD COLUMN c int DEFAULT 0 NOT NULL, ADD d text, DROP COLUMN IF EXISTS e CASCADE, DROP f
-- @@@@
ALTER TABLE IF EXISTS ONLY t ADD CONSTRAINT ck CHECK (a > 0), DROP CONSTRAINT IF EXISTS old_ck, ADD PRIMARY KEY (id), ADD UNIQUE (x), ADD FOREIGN KEY (p) REFERENCES parent (id)
-- @@@@
ALTER TABLE t ALTER COLUMN a SET DEFAULT 5, ALTER b DROP DEFAULT, ALTER COLUMN c SET NOT NULL, ALTER COLUMN d DROP NOT NULL, ALTER COLUMN e TYPE bigint USING e::bigint, ALTER f SET DATA TYPE text
-- @@@@
ALTER TABLE t RENAME TO u
-- @@@@
ALTER TABLE t RENAME COLUMN a TO b
-- @@@@
ALTER TABLE t RENAME c TO d
-- @@@@
BEGIN
-- @@@@
BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE
-- @@@@
START TRANSACTION ISOLATION LEVEL READ COMMITTED READ WRITE
-- @@@@
BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ
-- @@@@
BEGIN WORK ISOLATION LEVEL READ UNCOMMITTED
-- @@@@
COMMIT
-- @@@@
COMMIT WORK AND NO CHAIN
-- @@@@
END
-- @@@@
ROLLBACK
-- @@@@
ABORT TRANSACTION
-- @@@@
SAVEPOINT sp1
-- @@@@
RELEASE SAVEPOINT sp1
-- @@@@
RELEASE sp1
-- @@@@
ROLLBACK TO SAVEPOINT sp1
-- @@@@
ROLLBACK TRANSACTION TO sp1
-- @@@@
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
-- @@@@
SET search_path TO public, "$user"
-- @@@@
SET search_path = 'public'
-- @@@@
SET LOCAL statement_timeout = 5000
-- @@@@
SET SESSION datestyle TO 'ISO, MDY'
-- @@@@
SET extra_float_digits = -3
-- @@@@
SET TIME ZONE 'UTC'
-- @@@@
SET TIME ZONE LOCAL
-- @@@@
SET NAMES 'UTF8'
-- @@@@
SET SCHEMA 'app'
-- @@@@
SET client_min_messages TO DEFAULT
-- @@@@
SET myext.setting = on
-- @@@@
SHOW ALL
-- @@@@
SHOW server_version
-- @@@@
SHOW TIME ZONE
-- @@@@
SHOW TRANSACTION ISOLATION LEVEL
-- @@@@
RESET ALL
-- @@@@
RESET search_path
-- @@@@
EXPLAIN SELECT * FROM t WHERE id = 1
-- @@@@
EXPLAIN ANALYZE VERBOSE SELECT 1
-- @@@@
EXPLAIN (ANALYZE, COSTS OFF, FORMAT TEXT) UPDATE t SET a = 1
-- @@@@
PREPARE q (int, text) AS SELECT * FROM t WHERE a = $1 AND b = $2
-- @@@@
PREPARE ins AS INSERT INTO t VALUES ($1)
-- @@@@
EXECUTE q (1, 'x')
-- @@@@
EXECUTE ins
-- @@@@
DEALLOCATE q
-- @@@@
DEALLOCATE PREPARE ALL
-- @@@@
VACUUM
-- @@@@
VACUUM (VERBOSE, ANALYZE) t
-- @@@@
vacuum analyze pgbench_branches
-- @@@@
ANALYZE t, u
-- @@@@
SET SESSION AUTHORIZATION DEFAULT
-- @@@@
CLOSE ALL
-- @@@@
UNLISTEN *
-- @@@@
LISTEN jobs
-- @@@@
DISCARD ALL
-- @@@@
DISCARD TEMPORARY
-- @@@@
LOCK TABLE t IN ACCESS EXCLUSIVE MODE
-- @@@@
LOCK t, u IN SHARE ROW EXCLUSIVE MODE NOWAIT
-- @@@@
DO $$BEGIN RAISE NOTICE 'x'; END$$
-- @@@@
DO LANGUAGE plpgsql 'BEGIN NULL; END'
-- @@@@
CREATE TABLE IF NOT EXISTS "__EFMigrationsHistory" (
    "MigrationId" character varying(150) NOT NULL,
    "ProductVersion" character varying(32) NOT NULL,
    CONSTRAINT "PK___EFMigrationsHistory" PRIMARY KEY ("MigrationId")
);
-- @@@@
START TRANSACTION;
LOCK TABLE "__EFMigrationsHistory" IN ACCESS EXCLUSIVE MODE;
SELECT "MigrationId", "ProductVersion"
FROM "__EFMigrationsHistory"
ORDER BY "MigrationId";
-- @@@@
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid=c.relnamespace
    WHERE n.nspname='public' AND
          c.relname='__EFMigrationsHistory'
)
-- @@@@
CREATE TABLE "Blogs" (
    "Id" integer GENERATED BY DEFAULT AS IDENTITY,
    "Url" text NOT NULL,
    "Rating" integer NOT NULL DEFAULT 0,
    "CreatedAt" timestamp with time zone NOT NULL,
    CONSTRAINT "PK_Blogs" PRIMARY KEY ("Id")
);

CREATE TABLE "Posts" (
    "PostId" integer GENERATED BY DEFAULT AS IDENTITY,
    "Title" text NULL,
    "BlogId" integer NOT NULL,
    CONSTRAINT "PK_Posts" PRIMARY KEY ("PostId"),
    CONSTRAINT "FK_Posts_Blogs_BlogId" FOREIGN KEY ("BlogId") REFERENCES "Blogs" ("Id") ON DELETE CASCADE
);

CREATE INDEX "IX_Posts_BlogId" ON "Posts" ("BlogId");

INSERT INTO "__EFMigrationsHistory" ("MigrationId", "ProductVersion")
VALUES ('20240101000000_Initial', '10.0.0');

COMMIT;
-- @@@@
DO $EF$
BEGIN
    IF NOT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = 'app') THEN
        CREATE SCHEMA app;
    END IF;
END $EF$;
-- @@@@
INSERT INTO "Blogs" ("Url", "Rating", "CreatedAt")
VALUES ($1, $2, $3)
RETURNING "Id";
-- @@@@
SELECT b."Id", b."CreatedAt", b."Rating", b."Url"
FROM "Blogs" AS b
WHERE b."Rating" > 3 AND b."Url" LIKE 'https://%'
ORDER BY b."Id"
LIMIT $1 OFFSET $2
-- @@@@
UPDATE "Blogs" SET "Rating" = $1
WHERE "Id" = $2;
-- @@@@
ALTER TABLE "Blogs" ADD "Title" character varying(200) NOT NULL DEFAULT '';
-- @@@@
ALTER TABLE "Posts" DROP CONSTRAINT "FK_Posts_Blogs_BlogId";
-- @@@@
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;
SELECT abalance FROM pgbench_accounts WHERE aid = $2;
UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $3;
UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $4;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($3, $4, $2, $1, CURRENT_TIMESTAMP);
END;
-- @@@@
create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)
-- @@@@
alter table pgbench_accounts add constraint pgbench_accounts_bid_fkey foreign key (bid) references pgbench_branches
-- @@@@
SELECT pg_catalog.set_config('search_path', '', false)
-- @@@@
COMMENT ON TABLE t IS 'a table'
-- @@@@
SELECT a FROM t WHERE a::text ~ '^[0-9]+$' AND b OPERATOR(pg_catalog.=) 1 AND c OPERATOR(pg_catalog.~) 'x'
-- @@@@
SELECT 1 AS "from", 2 AS select, 3 "order" FROM t AS "where"
-- @@@@
SELECT count(*) AS total, t.a IS NOT NULL AS flag FROM t GROUP BY t.a
-- @@@@
SELECT t.oid::regclass::text, x::pg_catalog.regtype, typname::name FROM pg_type t
-- @@@@
SELECT /* a /* nested */ comment */ 1 -- trailing
-- @@@@
select * from t where not a between 1 and 2 and b is not null or c in (1) and not d
-- @@@@
SELECT interval '1 hour' * 2, now() - interval '1 day', date '2024-01-01' + 1
-- @@@@
SELECT to_char(now(), 'YYYY'), json_build_object('a', 1), jsonb_agg(x ORDER BY y DESC) FROM t
-- @@@@
SELECT a FROM t WHERE b = 1 UNION (SELECT a FROM u INTERSECT SELECT a FROM v)
-- @@@@
SELECT 1 FROM t WHERE (a, b) IN ((1, 2), (3, 4)) AND (a, b) = (1, 2)
-- @@@@
CREATE SEQUENCE "EntityFrameworkHiLoSequence" START WITH 1 INCREMENT BY 10 NO CYCLE;
SELECT nextval('"EntityFrameworkHiLoSequence"');
-- @@@@
ALTER TABLE "Blogs" ALTER COLUMN "Url" TYPE character varying(500);
ALTER TABLE "Blogs" ALTER COLUMN "Url" SET NOT NULL;
ALTER TABLE "Blogs" ALTER COLUMN "Url" SET DEFAULT '';
ALTER TABLE "Blogs" RENAME COLUMN "Url" TO "Address";
ALTER TABLE "Posts" ADD CONSTRAINT "FK_Posts_Blogs_BlogId" FOREIGN KEY ("BlogId") REFERENCES "Blogs" ("Id") ON DELETE CASCADE;
CREATE UNIQUE INDEX "IX_Blogs_Address" ON "Blogs" ("Address") WHERE "Address" IS NOT NULL;
DROP INDEX "IX_Posts_BlogId";
ALTER TABLE "Blogs" ADD "Modified" timestamp with time zone NOT NULL DEFAULT TIMESTAMPTZ '-infinity';
ALTER TABLE "Blogs" ADD "Stamp" timestamp with time zone NOT NULL DEFAULT (now());
-- @@@@
SELECT b."Id", b."Url", p."PostId", p."Title"
FROM "Blogs" AS b
LEFT JOIN "Posts" AS p ON b."Id" = p."BlogId"
WHERE b."Url" LIKE '%' || $1 || '%' AND b."Id" = ANY ($2) AND strpos(b."Url", 'x') > 0
ORDER BY b."Id", p."PostId"
-- @@@@
SELECT EXISTS (
    SELECT 1
    FROM "Blogs" AS b)
-- @@@@
SELECT count(*)::int FROM "Blogs" AS b WHERE b."Rating" >= 3
-- @@@@
SELECT COALESCE(sum(b."Rating"), 0)::int, CASE WHEN b."Rating" > 3 THEN TRUE ELSE FALSE END AS "Good" FROM "Blogs" AS b GROUP BY b."Rating"
-- @@@@
SELECT b0."Id", b0."Url"
FROM (
    SELECT b."Id", b."Url"
    FROM "Blogs" AS b
    ORDER BY b."Id"
    LIMIT $1 OFFSET $2
) AS b0
ORDER BY b0."Id"
-- @@@@
SELECT t."Id", t."Name" FROM "Tags" AS t WHERE t."Name" IN ('a', 'b') OR t."Name" IS NULL
-- @@@@
UPDATE "Blogs" AS b SET "Rating" = b."Rating" + 1 WHERE b."Rating" < 5
-- @@@@
DELETE FROM "Blogs" AS b WHERE b."Rating" = 0
-- @@@@
SELECT t.oid, typname, typtype, typnamespace FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ANY (current_schemas(false))
-- @@@@
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid WHERE c.relkind = ANY (ARRAY['r', 'v']) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum
-- @@@@
SELECT * FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
-- @@@@
SELECT setting FROM pg_settings WHERE name = 'max_index_keys'
-- @@@@
SELECT a, b FROM t ORDER BY a NULLS FIRST, b DESC NULLS LAST FETCH FIRST 10 ROWS ONLY
-- @@@@
SELECT d.x, sum(d.y) FILTER (WHERE d.y > 0), rank() OVER (PARTITION BY d.x ORDER BY sum(d.y) DESC) FROM d GROUP BY d.x HAVING sum(d.y) > 0 ORDER BY 2 DESC
