"""The SQL each dialect generates: what Redshift lacks (ON CONFLICT, IF NOT EXISTS on columns,
COPY from the client, ON COMMIT DROP) is not in its statements, and its type names are."""

from __future__ import annotations

from collector.destinations.postgres.dialect import POSTGRES, REDSHIFT
from collector.destinations.postgres.schema import DATETIME, FLOAT, INT, STRING


def test_postgres_tables_have_a_primary_key_and_merge_with_on_conflict() -> None:
    ddl = POSTGRES.create_table("web", "tracks", {"id": STRING, "received_at": DATETIME, "n": INT})
    assert ddl == ('CREATE TABLE IF NOT EXISTS "web"."tracks" ("id" text NOT NULL PRIMARY KEY, '
                   '"received_at" timestamptz, "n" bigint)')
    assert POSTGRES.add_column("web", "t", "x", FLOAT) == 'ALTER TABLE "web"."t" ADD COLUMN IF NOT EXISTS "x" numeric'
    [merge] = POSTGRES.merge_events("web", "t", "staging_0", ["id", "n"])
    assert merge == ('INSERT INTO "web"."t" ("id", "n") SELECT "id", "n" FROM "staging_0" '
                     'ON CONFLICT ("id") DO NOTHING')
    [upsert] = POSTGRES.merge_users("web", "staging_1", ["id", "received_at", "plan", "uuid_ts"], [])
    assert 'ON CONFLICT ("id") DO UPDATE SET' in upsert
    assert ('"plan" = CASE WHEN EXCLUDED."received_at" >= u."received_at" THEN COALESCE(EXCLUDED."plan", u."plan") '
            'ELSE COALESCE(u."plan", EXCLUDED."plan") END') in upsert
    assert POSTGRES.create_staging("web", "t", "staging_0").endswith("ON COMMIT DROP")
    assert POSTGRES.drop_staging("staging_0") == []
    assert POSTGRES.copy_from_client


def test_redshift_uses_its_types_keys_and_no_on_conflict() -> None:
    ddl = REDSHIFT.create_table("web", "tracks", {"id": STRING, "received_at": DATETIME, "f": FLOAT})
    assert ddl == ('CREATE TABLE IF NOT EXISTS "web"."tracks" ("id" varchar(65535) NOT NULL, '
                   '"received_at" timestamp, "f" double precision) '
                   'DISTSTYLE KEY DISTKEY("id") SORTKEY("received_at")')
    assert REDSHIFT.add_column("web", "t", "x", STRING) == 'ALTER TABLE "web"."t" ADD COLUMN "x" varchar(65535)'
    assert REDSHIFT.create_staging("web", "t", "staging_0") == 'CREATE TEMP TABLE "staging_0" (LIKE "web"."t")'
    assert REDSHIFT.drop_staging("staging_0") == ['DROP TABLE IF EXISTS "staging_0"']
    delete, insert = REDSHIFT.merge_events("web", "t", "staging_0", ["id", "received_at"])
    assert delete == 'DELETE FROM "staging_0" USING "web"."t" WHERE "staging_0"."id" = "web"."t"."id"'
    assert "ROW_NUMBER() OVER (PARTITION BY \"id\" ORDER BY \"received_at\" DESC)" in insert and "WHERE rn = 1" in insert
    statements = REDSHIFT.merge_users("web", "staging_1", ["id", "received_at", "plan"], ["id", "received_at", "plan", "email"])
    assert all("ON CONFLICT" not in s for s in statements)
    assert statements[1] == 'DELETE FROM "web"."users" USING "staging_1" WHERE "web"."users"."id" = "staging_1"."id"'
    assert 'u."email"' in statements[0]  # a column this load does not touch keeps its value
    assert not REDSHIFT.copy_from_client and REDSHIFT.identifier_limit == 127


def test_reading_types_back() -> None:
    assert REDSHIFT.logical_type("character varying(512)") == STRING
    assert POSTGRES.logical_type("timestamp with time zone") == DATETIME
    assert POSTGRES.logical_type("point") is None
