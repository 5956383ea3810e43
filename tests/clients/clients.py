#!/usr/bin/env python3
"""Client compatibility checks: real PostgreSQL drivers and BI-tool queries against a running Kura.

    python clients.py --port 55440 --user kura --password admin-pw

Needs `psycopg[binary]`, `asyncpg` and `sqlalchemy>=2` (see run.sh). The user given must be a
superuser: the script (re)creates its fixture first, unless --no-setup:

    claims.medical (id BIGINT NOT NULL, name TEXT, points INT, day DATE, amount DECIMAL(10,2),
                    ok BOOLEAN, at TIMESTAMP)  with one row
    claims.v       a view of (id, points)
    clientcheck.events  a scratch table the write checks insert into
    user ana (password --ana-password), granted SELECT on claims.v only

Every check is plain asserts. Each failure prints the SQL the client sent last (as far as this
script can see it; run the server with `-vv` for the full statement log) and the server's
SQLSTATE and message. The last line is "N passed, N failed"; the exit code is 1 if any failed.
"""

import argparse
import asyncio
import datetime as dt
import re
import signal
import sys
import traceback
from decimal import Decimal

import asyncpg
import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus

ARGS = None
RESULTS = []  # (section, name, ok)
LAST_SQL = {"sql": None}
CHECK_TIMEOUT = 60  # seconds; a protocol hang must fail the check, not the run

ROW = (1, "ヤマダ", 100, dt.date(2024, 4, 1), Decimal("12.50"), True, dt.datetime(2024, 4, 1, 9, 0))
COLUMNS = ["id", "name", "points", "day", "amount", "ok", "at"]
# PostgreSQL type oids of the columns above: int8, text, int4, date, numeric, bool, timestamp
COLUMN_OIDS = [20, 25, 23, 1082, 1700, 16, 1114]
SELECT_ROW = "SELECT id, name, points, day, amount, ok, at FROM claims.medical"


# ---------------------------------------------------------------------------------------------
# plumbing


def note_sql(sql):
    LAST_SQL["sql"] = sql
    return sql


def describe_error(e):
    """SQLSTATE and message of a server error from any of the drivers, else the exception."""
    if isinstance(e, psycopg.Error) and e.diag is not None and e.diag.sqlstate:
        return f"SQLSTATE {e.diag.sqlstate}: {e.diag.message_primary}"
    if isinstance(e, asyncpg.PostgresError):
        return f"SQLSTATE {e.sqlstate}: {e.args[0] if e.args else e}"
    if isinstance(e, sa.exc.DBAPIError) and e.orig is not None:
        return describe_error(e.orig)
    return f"{type(e).__name__}: {e}"


class CheckTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CheckTimeout(f"no answer within {CHECK_TIMEOUT}s")


def check(section, name):
    """Decorator: runs the function now as one check and records the outcome."""

    def run(fn):
        LAST_SQL["sql"] = None
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(CHECK_TIMEOUT)
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                asyncio.run(asyncio.wait_for(result, CHECK_TIMEOUT))
            ok = True
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            ok = False
            print(f"FAIL  [{section}] {name}")
            if LAST_SQL["sql"]:
                print("      sql:   " + " ".join(str(LAST_SQL["sql"]).split()))
            msg = describe_error(e)
            tb = traceback.extract_tb(e.__traceback__)
            if isinstance(e, AssertionError) and tb and tb[-1].filename == __file__:
                frame = tb[-1]
                msg = f"assert failed at clients.py:{frame.lineno}: {frame.line}" + (f"\n{e}" if str(e) else "")
            print("      error: " + msg.replace("\n", "\n             "))
            if ARGS.verbose:
                traceback.print_exc()
        finally:
            signal.alarm(0)
        if ok:
            print(f"ok    [{section}] {name}")
        RESULTS.append((section, name, ok))
        return fn

    return run


def pg_connect(user=None, password=None, autocommit=True, **kw):
    return psycopg.connect(
        host=ARGS.host,
        port=ARGS.port,
        user=user or ARGS.user,
        password=password or ARGS.password,
        dbname=ARGS.dbname,
        sslmode="disable",
        connect_timeout=10,
        autocommit=autocommit,
        **kw,
    )


def q(conn, sql, params=None, **kw):
    """Runs one statement through psycopg and returns the cursor."""
    note_sql(sql)
    return conn.execute(sql, params, **kw)


def raw(conn, sql, params=None, prepare=None):
    """Runs SQL exactly as a tool sends it ($1 placeholders, extended protocol when parameters
    or prepare=True) and returns all rows as dicts."""
    note_sql(sql)
    cur = psycopg.RawCursor(conn, row_factory=psycopg.rows.dict_row)
    cur.execute(sql, params, prepare=prepare)
    return cur.fetchall() if cur.description is not None else []


def values(conn, sql, params=None, prepare=None):
    """Like raw() but rows as tuples: for checks that must not depend on result column names."""
    note_sql(sql)
    cur = psycopg.RawCursor(conn)
    cur.execute(sql, params, prepare=prepare)
    return cur.fetchall() if cur.description is not None else []


def expect_sqlstate(fn, sqlstate):
    try:
        fn()
    except psycopg.Error as e:
        assert e.diag.sqlstate == sqlstate, f"expected SQLSTATE {sqlstate}, got {describe_error(e)}"
        return e
    raise AssertionError(f"expected an error with SQLSTATE {sqlstate}, the statement succeeded")


def sa_url(user=None, password=None):
    return sa.engine.URL.create(
        "postgresql+psycopg",
        username=user or ARGS.user,
        password=password or ARGS.password,
        host=ARGS.host,
        port=ARGS.port,
        database=ARGS.dbname,
        query={"sslmode": "disable"},
    )


def sa_engine(user=None, password=None, **kw):
    engine = sa.create_engine(sa_url(user, password), poolclass=sa.pool.NullPool, **kw)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _remember(conn, cursor, statement, parameters, context, executemany):
        note_sql(f"{statement}   -- parameters: {parameters!r}")

    # The dialect's first-connect queries go straight to the DBAPI connection; remember them too.
    @sa.event.listens_for(engine, "do_connect")
    def _connect(dialect, conn_rec, cargs, cparams):
        note_sql("(connect and dialect initialisation: select pg_catalog.version(), "
                 "select current_schema(), show standard_conforming_strings, "
                 "show transaction isolation level)")

    return engine


# ---------------------------------------------------------------------------------------------
# fixture


def setup_fixture():
    with pg_connect() as conn:
        for sql in [
            "DROP VIEW IF EXISTS claims.v",
            "DROP TABLE IF EXISTS claims.medical",
            "CREATE SCHEMA IF NOT EXISTS claims",
            "CREATE TABLE claims.medical (id BIGINT NOT NULL, name TEXT, points INT, day DATE, "
            "amount DECIMAL(10,2), ok BOOLEAN, at TIMESTAMP)",
            "INSERT INTO claims.medical VALUES (1, 'ヤマダ', 100, DATE '2024-04-01', 12.5, true, "
            "TIMESTAMP '2024-04-01 09:00:00')",
            "CREATE VIEW claims.v AS SELECT id, points FROM claims.medical",
            "DROP TABLE IF EXISTS clientcheck.events",
            "CREATE SCHEMA IF NOT EXISTS clientcheck",
            "CREATE TABLE clientcheck.events (id BIGINT NOT NULL, label TEXT, at DATE)",
            "DROP USER IF EXISTS ana",
            f"CREATE USER ana PASSWORD '{ARGS.ana_password}'",
            "GRANT SELECT ON claims.v TO ana",
        ]:
            q(conn, sql)


# ---------------------------------------------------------------------------------------------
# psycopg 3


def psycopg_checks():
    S = "psycopg"

    @check(S, "connect, server_version parameter")
    def _():
        with pg_connect() as conn:
            assert conn.info.status == psycopg.pq.ConnStatus.OK
            v = conn.info.parameter_status("server_version")
            assert v and v[0].isdigit(), f"server_version = {v!r}"
            assert conn.info.server_version >= 100000, conn.info.server_version

    @check(S, "simple query SELECT 1")
    def _():
        with pg_connect() as conn:
            assert q(conn, "SELECT 1").fetchall() == [(1,)]

    @check(S, "rows come back with Python types and PostgreSQL type oids")
    def _():
        with pg_connect() as conn:
            cur = q(conn, SELECT_ROW)
            assert [d.name for d in cur.description] == COLUMNS, cur.description
            assert [d.type_code for d in cur.description] == COLUMN_OIDS, [d.type_code for d in cur.description]
            assert cur.fetchall() == [ROW]

    @check(S, "binary result format (cursor(binary=True))")
    def _():
        with pg_connect() as conn:
            cur = conn.cursor(binary=True)
            note_sql(SELECT_ROW)
            cur.execute(SELECT_ROW)
            assert cur.fetchall() == [ROW]

    @check(S, "parameters int/text/date/decimal/bool compared with columns")
    def _():
        with pg_connect() as conn:
            rows = q(
                conn,
                SELECT_ROW + " WHERE id = %s AND name = %s AND points = %s AND day = %s AND amount = %s AND ok = %s",
                (1, "ヤマダ", 100, dt.date(2024, 4, 1), Decimal("12.50"), True),
            ).fetchall()
            assert rows == [ROW], rows

    @check(S, "parameters round-trip with casts, including None")
    def _():
        with pg_connect() as conn:
            row = q(
                conn,
                "SELECT %s::bigint, %s::text, %s::date, %s::numeric, %s::boolean, %s::int",
                (42, "テキスト", dt.date(2024, 2, 29), Decimal("3.14"), False, None),
            ).fetchone()
            assert row == (42, "テキスト", dt.date(2024, 2, 29), Decimal("3.14"), False, None), row

    @check(S, "parameters round-trip without casts (types from the driver)")
    def _():
        with pg_connect() as conn:
            row = q(
                conn,
                "SELECT %s, %s, %s, %s, %s",
                (42, "text", dt.date(2024, 2, 29), Decimal("3.14"), True),
            ).fetchone()
            assert row == (42, "text", dt.date(2024, 2, 29), Decimal("3.14"), True), row

    @check(S, "None parameter: IS NULL and IS DISTINCT FROM")
    def _():
        with pg_connect() as conn:
            assert q(conn, "SELECT count(*) FROM claims.medical WHERE %s IS NULL", (None,)).fetchone() == (1,)
            assert q(conn, "SELECT count(*) FROM claims.medical WHERE name IS DISTINCT FROM %s", (None,)).fetchone() == (1,)

    @check(S, "server-side prepared statement reused (prepare=True)")
    def _():
        with pg_connect() as conn:
            for _ in range(3):
                row = q(conn, "SELECT name FROM claims.medical WHERE id = %s", (1,), prepare=True).fetchone()
                assert row == ("ヤマダ",), row

    @check(S, "missing table -> UndefinedTable, SQLSTATE 42P01 (simple query)")
    def _():
        with pg_connect() as conn:
            e = expect_sqlstate(lambda: q(conn, "SELECT * FROM claims.nope"), "42P01")
            assert isinstance(e, psycopg.errors.UndefinedTable), type(e)
            assert q(conn, "SELECT 1").fetchone() == (1,), "connection unusable after the error"

    @check(S, "missing table with a parameter -> 42P01 (extended query), connection usable after")
    def _():
        with pg_connect() as conn:
            expect_sqlstate(lambda: q(conn, "SELECT * FROM claims.nope WHERE id = %s", (1,)), "42P01")
            assert q(conn, "SELECT %s::int", (7,)).fetchone() == (7,), "connection unusable after the error"

    @check(S, "missing column -> 42703, syntax error -> 42601, division by zero -> 22012")
    def _():
        with pg_connect() as conn:
            expect_sqlstate(lambda: q(conn, "SELECT nocol FROM claims.medical"), "42703")
            expect_sqlstate(lambda: q(conn, "SELEC 1"), "42601")
            expect_sqlstate(lambda: q(conn, "SELECT 1 / 0"), "22012")

    @check(S, "non-autocommit: driver's BEGIN puts the session in a transaction, COMMIT ends it")
    def _():
        with pg_connect(autocommit=False) as conn:
            q(conn, "SELECT 1")
            assert conn.info.transaction_status == TransactionStatus.INTRANS, conn.info.transaction_status
            note_sql("COMMIT")
            conn.commit()
            assert conn.info.transaction_status == TransactionStatus.IDLE, conn.info.transaction_status

    @check(S, "non-autocommit: INSERT then commit() is visible to another connection")
    def _():
        with pg_connect(autocommit=False) as conn:
            q(conn, "INSERT INTO clientcheck.events VALUES (%s, %s, %s)", (100, "committed", dt.date(2024, 1, 1)))
            note_sql("COMMIT")
            conn.commit()
        with pg_connect() as other:
            assert q(other, "SELECT label FROM clientcheck.events WHERE id = 100").fetchall() == [("committed",)]

    @check(S, "non-autocommit: rollback() is accepted and the session is usable after")
    def _():
        with pg_connect(autocommit=False) as conn:
            q(conn, "INSERT INTO clientcheck.events VALUES (%s, %s, %s)", (101, "rolled back", None))
            note_sql("ROLLBACK")
            conn.rollback()
            assert conn.info.transaction_status == TransactionStatus.IDLE, conn.info.transaction_status
            assert q(conn, "SELECT 1").fetchone() == (1,)
            conn.rollback()
        with pg_connect() as other:
            n = q(other, "SELECT count(*) FROM clientcheck.events WHERE id = 101").fetchone()[0]
        # Kura commits each statement on its own: report, do not assert, whether ROLLBACK undid it.
        print(f"      info: after ROLLBACK the inserted row is {'still there' if n else 'gone'} (count={n})")

    @check(S, "error inside a transaction -> INERROR; rollback() recovers")
    def _():
        with pg_connect(autocommit=False) as conn:
            q(conn, "SELECT 1")
            expect_sqlstate(lambda: q(conn, "SELECT * FROM claims.nope"), "42P01")
            assert conn.info.transaction_status == TransactionStatus.INERROR, conn.info.transaction_status
            note_sql("ROLLBACK")
            conn.rollback()
            assert q(conn, "SELECT 2").fetchone() == (2,)
            conn.rollback()

    @check(S, "with conn.transaction() on an autocommit connection (BEGIN ... COMMIT)")
    def _():
        with pg_connect() as conn:
            with conn.transaction():
                q(conn, "INSERT INTO clientcheck.events VALUES (%s, %s, %s)", (102, "tx block", None))
                assert conn.info.transaction_status == TransactionStatus.INTRANS, conn.info.transaction_status
            assert conn.info.transaction_status == TransactionStatus.IDLE
            assert q(conn, "SELECT label FROM clientcheck.events WHERE id = 102").fetchall() == [("tx block",)]

    @check(S, "nested conn.transaction() (SAVEPOINT / RELEASE SAVEPOINT)")
    def _():
        with pg_connect() as conn:
            with conn.transaction():
                with conn.transaction():
                    q(conn, "SELECT 1")

    @check(S, "executemany INSERT (pipeline mode)")
    def _():
        with pg_connect() as conn:
            rows = [(200 + i, f"many {i}", dt.date(2024, 5, i + 1)) for i in range(5)]
            cur = conn.cursor()
            note_sql("INSERT INTO clientcheck.events VALUES (%s, %s, %s)  -- executemany, 5 rows")
            cur.executemany("INSERT INTO clientcheck.events VALUES (%s, %s, %s)", rows)
            got = q(conn, "SELECT id, label, at FROM clientcheck.events WHERE id >= 200 ORDER BY id").fetchall()
            assert got == rows, got

    @check(S, "several statements in one simple query; nextset()")
    def _():
        with pg_connect() as conn:
            cur = q(conn, "SELECT 1; SELECT 'two'")
            assert cur.fetchall() == [(1,)]
            assert cur.nextset()
            assert cur.fetchall() == [("two",)]

    @check(S, "column names of unnamed expressions are PostgreSQL's (?column?, count, max)")
    def _():
        with pg_connect() as conn:
            cur = q(conn, "SELECT 1, count(*), max(points) FROM claims.medical")
            names = [d.name for d in cur.description]
            assert names == ["?column?", "count", "max"], names

    @check(S, "duplicate output column names are allowed (SELECT id, id / SELECT 1, 1)")
    def _():
        with pg_connect() as conn:
            assert q(conn, "SELECT id, id FROM claims.medical").fetchall() == [(1, 1)]
            assert q(conn, "SELECT 1, 1").fetchall() == [(1, 1)]

    @check(S, "session functions together: SELECT current_schema(), session_user, current_user")
    def _():
        with pg_connect() as conn:
            row = q(conn, "SELECT current_schema(), session_user, current_user").fetchone()
            assert row == ("public", ARGS.user, ARGS.user), row

    @check(S, "timestamp::text is PostgreSQL's '2024-04-01 09:00:00' (no ISO 'T')")
    def _():
        with pg_connect() as conn:
            v = q(conn, "SELECT at::text FROM claims.medical").fetchone()[0]
            assert v == "2024-04-01 09:00:00", v

    @check(S, "timestamp in text result format is PostgreSQL's '2024-04-01 09:00:00' (no .000000)")
    def _():
        with pg_connect() as conn:
            note_sql("SELECT at FROM claims.medical")
            res = conn.pgconn.exec_(b"SELECT at FROM claims.medical")
            v = res.get_value(0, 0)
            assert v == b"2024-04-01 09:00:00", v

    @check(S, "unconstrained numeric keeps the input scale: 3.14::numeric -> 3.14 (not 3.1400000000)")
    def _():
        with pg_connect() as conn:
            note_sql("SELECT 3.14::numeric")
            res = conn.pgconn.exec_(b"SELECT 3.14::numeric")
            v = res.get_value(0, 0)
            assert v == b"3.14", v

    @check(S, "server-side cursor (optional: DECLARE / FETCH)")
    def _():
        with pg_connect(autocommit=False) as conn:
            with conn.cursor(name="kura_ssc") as cur:
                note_sql("DECLARE \"kura_ssc\" CURSOR FOR " + SELECT_ROW)
                cur.execute(SELECT_ROW)
                assert cur.fetchmany(10) == [ROW]
            conn.commit()


# ---------------------------------------------------------------------------------------------
# asyncpg


async def apg_connect(user=None, password=None):
    return await asyncpg.connect(
        host=ARGS.host,
        port=ARGS.port,
        user=user or ARGS.user,
        password=password or ARGS.password,
        database=ARGS.dbname,
        ssl=False,
        timeout=10,
    )


def asyncpg_checks():
    S = "asyncpg"

    @check(S, "connect, server version")
    async def _():
        conn = await apg_connect()
        try:
            assert conn.get_server_version().major >= 10, conn.get_server_version()
        finally:
            await conn.close()

    @check(S, "fetch with $1, Record types")
    async def _():
        conn = await apg_connect()
        try:
            rows = await conn.fetch(note_sql(SELECT_ROW + " WHERE id = $1"), 1)
            assert [tuple(r) for r in rows] == [ROW], rows
            assert list(rows[0].keys()) == COLUMNS
        finally:
            await conn.close()

    @check(S, "fetchval count(*)")
    async def _():
        conn = await apg_connect()
        try:
            assert await conn.fetchval(note_sql("SELECT count(*) FROM claims.medical")) == 1
        finally:
            await conn.close()

    @check(S, "parameters int/text/date/decimal/bool against columns (types from ParameterDescription)")
    async def _():
        conn = await apg_connect()
        try:
            rows = await conn.fetch(
                note_sql(SELECT_ROW + " WHERE id = $1 AND name = $2 AND points = $3 AND day = $4 AND amount = $5 AND ok = $6"),
                1, "ヤマダ", 100, dt.date(2024, 4, 1), Decimal("12.50"), True,
            )
            assert [tuple(r) for r in rows] == [ROW], rows
        finally:
            await conn.close()

    @check(S, "parameters round-trip with casts, including None")
    async def _():
        conn = await apg_connect()
        try:
            row = await conn.fetchrow(
                note_sql("SELECT $1::bigint, $2::text, $3::date, $4::numeric, $5::boolean, $6::int"),
                42, "テキスト", dt.date(2024, 2, 29), Decimal("3.14"), False, None,
            )
            assert tuple(row) == (42, "テキスト", dt.date(2024, 2, 29), Decimal("3.14"), False, None), row
        finally:
            await conn.close()

    @check(S, "parameter in LIMIT $1 (described as bigint)")
    async def _():
        conn = await apg_connect()
        try:
            rows = await conn.fetch(note_sql(SELECT_ROW + " ORDER BY id LIMIT $1"), 10)
            assert [tuple(r) for r in rows] == [ROW], rows
        finally:
            await conn.close()

    @check(S, "prepared statement reuse, parameter and result types")
    async def _():
        conn = await apg_connect()
        try:
            ps = await conn.prepare(note_sql("SELECT name, amount FROM claims.medical WHERE id = $1"))
            assert [t.name for t in ps.get_parameters()] == ["int8"], ps.get_parameters()
            assert [(a.name, a.type.name) for a in ps.get_attributes()] == [("name", "text"), ("amount", "numeric")], ps.get_attributes()
            for _ in range(3):
                assert await ps.fetchval(1) == "ヤマダ"
                assert await ps.fetchrow(2) is None
        finally:
            await conn.close()

    @check(S, "missing table -> UndefinedTableError 42P01, connection usable after")
    async def _():
        conn = await apg_connect()
        try:
            try:
                await conn.fetch(note_sql("SELECT * FROM claims.nope"))
                raise AssertionError("no error")
            except asyncpg.PostgresError as e:
                assert e.sqlstate == "42P01", describe_error(e)
                assert isinstance(e, asyncpg.exceptions.UndefinedTableError), type(e)
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    @check(S, "transaction(): commit, and rollback on exception accepted")
    async def _():
        conn = await apg_connect()
        try:
            async with conn.transaction():
                await conn.execute(note_sql("INSERT INTO clientcheck.events VALUES ($1, $2, $3)"), 300, "asyncpg tx", None)
            assert await conn.fetchval("SELECT label FROM clientcheck.events WHERE id = 300") == "asyncpg tx"

            class Boom(Exception):
                pass

            try:
                async with conn.transaction():
                    await conn.execute("SELECT 1")
                    raise Boom()
            except Boom:
                pass
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT 2") == 2
        finally:
            await conn.close()

    @check(S, "executemany INSERT")
    async def _():
        conn = await apg_connect()
        try:
            rows = [(400 + i, f"am {i}", dt.date(2024, 6, i + 1)) for i in range(4)]
            await conn.executemany(note_sql("INSERT INTO clientcheck.events VALUES ($1, $2, $3)"), rows)
            got = await conn.fetch("SELECT id, label, at FROM clientcheck.events WHERE id >= 400 ORDER BY id")
            assert [tuple(r) for r in got] == rows, got
        finally:
            await conn.close()

    @check(S, "several statements in execute() (simple query)")
    async def _():
        conn = await apg_connect()
        try:
            await conn.execute(note_sql("SELECT 1; SELECT 2"))
        finally:
            await conn.close()

    @check(S, "cursor in a transaction (optional: portal with row limit)")
    async def _():
        conn = await apg_connect()
        try:
            async with conn.transaction():
                got = [tuple(r) async for r in conn.cursor(note_sql(SELECT_ROW + " WHERE id >= $1"), 0, prefetch=1)]
            assert got == [ROW], got
        finally:
            await conn.close()


# ---------------------------------------------------------------------------------------------
# SQLAlchemy 2 (psycopg driver): the inspector is what Superset and many tools use


def sqlalchemy_checks():
    S = "sqlalchemy"

    @check(S, "engine connects (dialect initialisation)")
    def _():
        with sa_engine().connect() as c:
            assert c.execute(sa.text("SELECT 1")).scalar() == 1

    @check(S, "inspector.get_schema_names()")
    def _():
        names = sa.inspect(sa_engine()).get_schema_names()
        assert "claims" in names and "public" in names, names
        assert "pg_catalog" not in names, names

    @check(S, "inspector.get_table_names(schema='claims') == ['medical']")
    def _():
        names = sa.inspect(sa_engine()).get_table_names(schema="claims")
        assert names == ["medical"], names

    @check(S, "inspector.get_view_names(schema='claims') == ['v']")
    def _():
        names = sa.inspect(sa_engine()).get_view_names(schema="claims")
        assert names == ["v"], names

    @check(S, "inspector.get_columns('medical', schema='claims'): names, types, nullability")
    def _():
        cols = sa.inspect(sa_engine()).get_columns("medical", schema="claims")
        assert [c["name"] for c in cols] == COLUMNS, cols
        types = {c["name"]: c["type"] for c in cols}
        assert isinstance(types["id"], sa.BigInteger), types
        assert isinstance(types["name"], sa.Text), types
        assert isinstance(types["points"], sa.Integer) and not isinstance(types["points"], sa.BigInteger), types
        assert isinstance(types["day"], sa.Date), types
        assert isinstance(types["amount"], sa.Numeric), types
        assert (types["amount"].precision, types["amount"].scale) == (10, 2), types["amount"]
        assert isinstance(types["ok"], sa.Boolean), types
        assert isinstance(types["at"], sa.DateTime) and not types["at"].timezone, types
        nullable = {c["name"]: c["nullable"] for c in cols}
        assert nullable["id"] is False and nullable["name"] is True, nullable

    @check(S, "inspector.get_columns('v', schema='claims')")
    def _():
        cols = sa.inspect(sa_engine()).get_columns("v", schema="claims")
        assert [c["name"] for c in cols] == ["id", "points"], cols

    @check(S, "inspector.has_table")
    def _():
        insp = sa.inspect(sa_engine())
        assert insp.has_table("medical", schema="claims")
        assert not insp.has_table("nope", schema="claims")

    @check(S, "Core select() on a reflected table, with a bound parameter")
    def _():
        engine = sa_engine()
        t = sa.Table("medical", sa.MetaData(), schema="claims", autoload_with=engine)
        with engine.connect() as c:
            rows = c.execute(sa.select(t).where(t.c.id == 1, t.c.day >= dt.date(2024, 1, 1))).all()
        assert [tuple(r) for r in rows] == [ROW], rows

    @check(S, "Core select() on a declared table (no reflection), aggregate + group by")
    def _():
        t = sa.table("medical", sa.column("name"), sa.column("points"), schema="claims")
        with sa_engine().connect() as c:
            rows = c.execute(sa.select(t.c.name, sa.func.sum(t.c.points)).group_by(t.c.name)).all()
        assert [tuple(r) for r in rows] == [("ヤマダ", 100)], rows

    @check(S, "ORM-style transaction: engine.begin() INSERT commits")
    def _():
        with sa_engine().begin() as c:
            c.execute(sa.text("INSERT INTO clientcheck.events VALUES (:i, :l, :d)"), {"i": 500, "l": "sa", "d": None})
        with sa_engine().connect() as c:
            assert c.execute(sa.text("SELECT label FROM clientcheck.events WHERE id = 500")).scalar() == "sa"

    @check(S, "as ana: inspector lists only the view v, not medical")
    def _():
        insp = sa.inspect(sa_engine("ana", ARGS.ana_password))
        assert "claims" in insp.get_schema_names()
        assert insp.get_table_names(schema="claims") == [], insp.get_table_names(schema="claims")
        assert insp.get_view_names(schema="claims") == ["v"], insp.get_view_names(schema="claims")

    @check(S, "as ana: reading claims.medical -> 42501")
    def _():
        with pg_connect("ana", ARGS.ana_password) as conn:
            expect_sqlstate(lambda: q(conn, "SELECT * FROM claims.medical"), "42501")
            assert q(conn, "SELECT id, points FROM claims.v").fetchall() == [(1, 100)]


# ---------------------------------------------------------------------------------------------
# BI tools: the statements DBeaver, Metabase and Superset send on connection test and schema sync


DBEAVER_SCHEMAS = (
    "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n\n"
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 "
    "AND d.classoid='pg_namespace'::regclass\n ORDER BY nspname"
)
DBEAVER_TABLES = (
    "SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  "
    "pg_catalog.pg_get_partkeydef(c.oid) as partition_key \n"
    "FROM pg_catalog.pg_class c\n"
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 "
    "AND d.classoid='pg_class'::regclass\n"
    "WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c')"
)


def namespace_oid(conn, name):
    """The oid DBeaver takes for a schema: from its schema list."""
    oids = [r["oid"] for r in raw(conn, DBEAVER_SCHEMAS) if r["nspname"] == name]
    assert len(oids) == 1, f"schema {name} in DBeaver's schema list: {oids}"
    return oids[0]


def class_oid(conn, schema, name):
    """The oid DBeaver takes for a table: from its table list of the schema. The namespace oid is
    inlined rather than bound, so that this lookup does not fail for the reason the parameterised
    table-list check does."""
    ns = namespace_oid(conn, schema)
    rows = raw(conn, DBEAVER_TABLES.replace("$1", str(int(ns))))
    oids = [r["oid"] for r in rows if r["relname"] == name]
    assert len(oids) == 1, f"{schema}.{name} in DBeaver's table list of namespace {ns}: {[r['relname'] for r in rows]}"
    return oids[0]


def bi_checks():
    # -- common first statements ----------------------------------------------------------
    S = "BI common"

    @check(S, "SELECT version() mentions PostgreSQL N.N (SQLAlchemy, Superset parse it)")
    def _():
        with pg_connect() as conn:
            v = values(conn, "select pg_catalog.version()")[0][0]
            assert re.match(r".*PostgreSQL \d+\.\d+", v), v

    @check(S, "SHOW search_path / SELECT current_schema() / current_database()")
    def _():
        with pg_connect() as conn:
            path = values(conn, "SHOW search_path")
            assert path in ([("public",)], [('"$user", public',)]), path
            assert values(conn, "SELECT current_schema()") == [("public",)]
            assert values(conn, "SELECT current_database()") == [(ARGS.dbname,)]

    @check(S, "result column names as PostgreSQL names them (current_schema, ?column?, version)")
    def _():
        with pg_connect() as conn:
            for sql, name in [("SELECT current_schema()", "current_schema"), ("SELECT 1", "?column?"),
                              ("SELECT version()", "version"), ("SELECT current_database()", "current_database")]:
                cur = q(conn, sql)
                assert cur.description[0].name == name, f"{sql}: column named {cur.description[0].name!r}, want {name!r}"

    @check(S, "OIDs are the same on every connection, whatever was queried first")
    def _():
        # DBeaver and the JDBC driver keep oids between statements and connections (metadata and
        # SQL editor use separate connections); PostgreSQL's oids never depend on the session.
        def oids(first_query):
            with pg_connect() as conn:
                if first_query:
                    values(conn, first_query)
                ns = dict(values(conn, "SELECT nspname, oid FROM pg_catalog.pg_namespace"))
                rel = dict(values(conn, "SELECT relname, oid FROM pg_catalog.pg_class WHERE relname IN ('medical', 'v')"))
                return {"claims": ns["claims"], "public": ns["public"], "medical": rel["medical"], "v": rel["v"]}

        a = oids(None)
        b = oids("SELECT datname, oid FROM pg_catalog.pg_database")
        assert a == b, f"fresh connection: {a}; after reading pg_database first: {b}"

    @check(S, "SHOW TRANSACTION ISOLATION LEVEL (pgjdbc getTransactionIsolation, SQLAlchemy initialise)")
    def _():
        with pg_connect() as conn:
            rows = values(conn, "show transaction isolation level")
            assert rows == [("read committed",)], rows

    @check(S, "SHOW standard_conforming_strings / client_encoding / timezone")
    def _():
        with pg_connect() as conn:
            assert values(conn, "show standard_conforming_strings") == [("on",)]
            assert values(conn, "show client_encoding") == [("UTF8",)]
            tz = raw(conn, "show timezone")
            assert len(tz) == 1 and list(tz[0].values())[0], tz

    @check(S, "SET search_path TO claims makes unqualified names resolve there")
    def _():
        with pg_connect() as conn:
            raw(conn, "SET search_path TO claims")
            assert values(conn, "SELECT current_schema()") == [("claims",)], values(conn, "SELECT current_schema()")
            assert values(conn, "SELECT id FROM medical") == [(1,)]

    # -- DBeaver (PostgreSQL driver, navigator) -----------------------------------------------
    S = "BI DBeaver"

    @check(S, "SELECT current_schema(),session_user")
    def _():
        with pg_connect() as conn:
            rows = values(conn, "SELECT current_schema(),session_user", prepare=True)
            assert rows == [("public", ARGS.user)], rows

    @check(S, "database: SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=$1")
    def _():
        with pg_connect() as conn:
            rows = raw(conn, "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=$1", [ARGS.dbname])
            assert len(rows) == 1 and rows[0]["datname"] == ARGS.dbname, rows

    @check(S, "schemas: pg_namespace LEFT JOIN pg_description ... 'pg_namespace'::regclass")
    def _():
        with pg_connect() as conn:
            rows = raw(conn, DBEAVER_SCHEMAS, prepare=True)
            assert "claims" in [r["nspname"] for r in rows], rows

    @check(S, "tables of a schema: pg_class by relnamespace=$1, pg_get_expr(relpartbound), pg_get_partkeydef")
    def _():
        with pg_connect() as conn:
            ns = namespace_oid(conn, "claims")
            rows = raw(conn, DBEAVER_TABLES, [ns])
            assert sorted((r["relname"], r["relkind"]) for r in rows) == [("medical", "r"), ("v", "v")], rows

    @check(S, "columns of a table: pg_attribute JOIN pg_class LEFT JOIN pg_attrdef/pg_description/pg_depend")
    def _():
        with pg_connect() as conn:
            oid = class_oid(conn, "claims", "medical")
            rows = raw(
                conn,
                "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,"
                "dsc.description,dep.objid\n"
                "FROM pg_catalog.pg_attribute a\n"
                "INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)\n"
                "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)\n"
                "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)\n"
                "LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' "
                "and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid\n"
                "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=$1\n"
                "ORDER BY a.attnum",
                [oid],
            )
            got = [(r["attname"], r["atttypid"], r["attnotnull"]) for r in rows if r["attnum"] > 0]
            assert got == [(n, o, n == "id") for n, o in zip(COLUMNS, COLUMN_OIDS)], got

    @check(S, "data types: pg_type LEFT JOIN pg_type/pg_class/pg_description, format_type(nullif(...))")
    def _():
        with pg_connect() as conn:
            rows = raw(
                conn,
                "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, "
                "d.description\nFROM pg_catalog.pg_type t\n"
                "LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem\n"
                "LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid\n"
                "LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid\n"
                "WHERE t.typname IS NOT NULL\n"
                "AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')",
                prepare=True,
            )
            names = {r["typname"] for r in rows}
            assert {"int8", "int4", "text", "date", "numeric", "bool", "timestamp"} <= names, sorted(names)

    @check(S, "constraints of a schema: pg_constraint ... \"substring\"(pg_get_constraintdef(c.oid), 7)")
    def _():
        with pg_connect() as conn:
            ns = namespace_oid(conn, "claims")
            rows = raw(
                conn,
                "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, "
                "case when c.contype='c' then \"substring\"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy\n"
                "FROM pg_catalog.pg_constraint c\n"
                "INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid\n"
                "LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid\n"
                "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 "
                "AND d.classoid='pg_constraint'::regclass\n"
                "WHERE t.relnamespace=$1\nORDER BY c.oid",
                [ns],
            )
            assert isinstance(rows, list)

    @check(S, "indexes of a table: pg_index ... pg_relation_size, pg_stat_get_numscans")
    def _():
        with pg_connect() as conn:
            oid = class_oid(conn, "claims", "medical")
            rows = raw(
                conn,
                "SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,"
                "dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,"
                "pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,"
                "pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,"
                "pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans\n"
                "FROM pg_catalog.pg_index i\n"
                "INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid\n"
                "INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid\n"
                "LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid\n"
                "WHERE i.indrelid=$1 ORDER BY c.relname",
                [oid],
            )
            assert rows == [], rows

    @check(S, "view definition: pg_get_viewdef(oid, true)")
    def _():
        with pg_connect() as conn:
            oid = class_oid(conn, "claims", "v")
            rows = values(conn, "SELECT pg_catalog.pg_get_viewdef($1, true)", [oid])
            text = rows[0][0]
            assert text and "medical" in text.lower(), rows

    @check(S, "keywords: string_agg(word, ',') from pg_catalog.pg_get_keywords() where word <> ALL (...)")
    def _():
        with pg_connect() as conn:
            rows = values(
                conn,
                "select string_agg(word, ',') from pg_catalog.pg_get_keywords() "
                "where word <> ALL ('{a,abs,absolute,action,ada,add,admin,after,all,allocate,alter}'::text[])",
                prepare=True,
            )
            words = rows[0][0]
            assert words and "analyze" in words.split(","), rows

    @check(S, "data preview: SELECT t.* FROM claims.medical t LIMIT 200")
    def _():
        with pg_connect() as conn:
            assert len(raw(conn, "SELECT t.* FROM claims.medical t\nLIMIT 200", prepare=True)) == 1

    # -- Metabase (postgres driver: connection test and sync) ----------------------------------
    S = "BI Metabase"

    @check(S, "connection test: SELECT 1; show timezone;")
    def _():
        with pg_connect() as conn:
            assert values(conn, "SELECT 1", prepare=True) == [(1,)]
            tz = values(conn, "show timezone;", prepare=True)
            assert len(tz) == 1 and tz[0][0], tz

    @check(S, "SET SESSION TIMEZONE TO 'UTC'; (report timezone)")
    def _():
        with pg_connect() as conn:
            raw(conn, "SET SESSION TIMEZONE TO 'UTC';")

    @check(S, "read-only transaction: BEGIN READ ONLY ... COMMIT")
    def _():
        with pg_connect() as conn:
            raw(conn, "BEGIN READ ONLY")
            assert values(conn, "SELECT count(*) AS n FROM claims.medical") == [(1,)]
            raw(conn, "COMMIT")

    @check(S, "enum types: pg_type JOIN pg_namespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)")
    def _():
        with pg_connect() as conn:
            rows = raw(
                conn,
                "SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)",
                prepare=True,
            )
            assert rows == [], rows

    metabase_privileges = "\n".join([
        "with table_privileges as (",
        " select",
        "   NULL as role,",
        "   t.schemaname as schema,",
        "   t.objectname as table,",
        "   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'update') as update,",
        "   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'select') as select,",
        "   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'insert') as insert,",
        "   pg_catalog.has_table_privilege(     current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'delete') as delete",
        " from (",
        "   select schemaname, tablename as objectname from pg_catalog.pg_tables",
        "   union",
        "   select schemaname, viewname as objectname from pg_catalog.pg_views",
        "   union",
        "   select schemaname, matviewname as objectname from pg_catalog.pg_matviews",
        " ) t",
        " where t.schemaname !~ '^pg_'",
        "   and t.schemaname <> 'information_schema'",
        "   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')",
        ")",
        "select t.*",
        "from table_privileges t",
    ])

    @check(S, "table privileges: has_any_column_privilege/has_table_privilege over pg_tables/pg_views/pg_matviews")
    def _():
        with pg_connect() as conn:
            rows = raw(conn, metabase_privileges, prepare=True)
            got = {(r["schema"], r["table"]): r["select"] for r in rows}
            assert got.get(("claims", "medical")) is True and got.get(("claims", "v")) is True, rows

    @check(S, "table privileges as ana: select only on claims.v")
    def _():
        with pg_connect("ana", ARGS.ana_password) as conn:
            rows = raw(conn, metabase_privileges, prepare=True)
            selectable = sorted((r["schema"], r["table"]) for r in rows if r["select"])
            assert selectable == [("claims", "v")], rows

    @check(S, "describe-database: pg_class JOIN pg_namespace LEFT JOIN pg_description, pg_stat_user_tables")
    def _():
        with pg_connect() as conn:
            rows = raw(
                conn,
                'SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN \'r\' THEN \'TABLE\' '
                "WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' "
                "WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS \"type\", \"d\".\"description\" AS \"description\", "
                '"stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" '
                'INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" '
                'LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = $1) '
                "AND (\"d\".\"classoid\" = 'pg_class'::regclass) "
                'LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") '
                'AND ("c"."relname" = "stat"."relname") '
                'WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ $2) AND ("n"."nspname" <> $3) '
                "AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (\"n\".\"nspname\" IN ($4)) "
                'ORDER BY "type" ASC, "schema" ASC, "name" ASC',
                [0, "^pg_", "information_schema", "claims"],
            )
            got = [(r["schema"], r["name"], r["type"]) for r in rows]
            assert got == [("claims", "medical", "TABLE"), ("claims", "v", "VIEW")], got

    @check(S, "describe-fields: information_schema.columns LEFT JOIN key_column_usage, col_description(...::regclass)")
    def _():
        with pg_connect() as conn:
            rows = raw(
                conn,
                'SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN (\'public\', \'pg_catalog\') '
                'THEN FORMAT(\'%s\', "c"."udt_name") ELSE FORMAT(\'"%s"."%s"\', "c"."udt_schema", "c"."udt_name") END '
                'AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", '
                '"c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", '
                'COL_DESCRIPTION(CAST(CAST(FORMAT(\'%I.%I\', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) '
                'AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", '
                '(("column_default" IS NULL) OR (LOWER("column_default") = \'null\')) AND ("is_nullable" = \'NO\') '
                'AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE \'%nextval(%\')) OR ("is_identity" <> \'NO\')) '
                'AS "database-required", (("column_default" IS NOT NULL) AND ("column_default" LIKE \'%nextval(%\')) '
                'OR ("is_identity" <> \'NO\') AS "database-is-auto-increment" '
                'FROM "information_schema"."columns" AS "c" '
                'LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" '
                'FROM "information_schema"."table_constraints" AS "tc" '
                'INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") '
                'AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name") '
                'WHERE "tc"."constraint_type" = \'PRIMARY KEY\') AS "pk" ON ("c"."table_schema" = "pk"."table_schema") '
                'AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name") '
                "WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' "
                'AND ("c"."table_schema" IN ($1)) AND ("c"."table_name" IN ($2)) '
                "UNION ALL "
                'SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN (\'public\', \'pg_catalog\') '
                'THEN FORMAT(\'%s\', "pt"."typname") ELSE FORMAT(\'"%s"."%s"\', "ptn"."nspname", "pt"."typname") END '
                'AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", '
                '"pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", '
                'FALSE AS "database-is-auto-increment" FROM "pg_catalog"."pg_class" AS "pc" '
                'INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" '
                'INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" '
                'INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" '
                'INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" '
                'WHERE ("pc"."relkind" = \'m\') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ($3)) '
                'AND ("pc"."relname" IN ($4)) '
                'ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC',
                ["claims", "medical", "claims", "medical"],
            )
            got = [(r["name"], r["database-type"], r["database-position"], r["database-required"]) for r in rows]
            want = [("id", "int8", 0, True), ("name", "text", 1, False), ("points", "int4", 2, False),
                    ("day", "date", 3, False), ("amount", "numeric", 4, False), ("ok", "bool", 5, False),
                    ("at", "timestamp", 6, False)]
            assert got == want, got

    @check(S, "describe-fks: pg_constraint joins, attnum = ANY(c.conkey), 'f'::char")
    def _():
        with pg_connect() as conn:
            rows = raw(
                conn,
                'SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", '
                '"fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", '
                '"pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" '
                'FROM "pg_constraint" AS "c" INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" '
                'INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" '
                'INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" '
                'INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" '
                'INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" '
                'INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" '
                "WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"contype\" = 'f'::char) "
                'AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) '
                'AND ("fk_table"."relname" IN ($1)) AND ("fk_ns"."nspname" IN ($2)) '
                'ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC',
                ["medical", "claims"],
            )
            assert rows == [], rows

    @check(S, "table sample: SELECT \"claims\".\"medical\".\"id\" ... LIMIT 10000")
    def _():
        with pg_connect() as conn:
            rows = raw(
                conn,
                'SELECT "claims"."medical"."id" AS "id", "claims"."medical"."name" AS "name" '
                'FROM "claims"."medical" LIMIT $1',
                [10000],
            )
            assert rows == [{"id": 1, "name": "ヤマダ"}], rows

    # -- Superset (SQLAlchemy inspector, postgresql+psycopg) -----------------------------------
    S = "BI Superset"

    @check(S, "connection test: dialect.do_ping (SELECT 1)")
    def _():
        engine = sa_engine()
        with engine.connect() as c:
            assert engine.dialect.do_ping(c.connection.dbapi_connection)

    @check(S, "default schema (inspector.default_schema_name)")
    def _():
        assert sa.inspect(sa_engine()).default_schema_name == "public"

    @check(S, "get_pk_constraint('medical', 'claims')")
    def _():
        pk = sa.inspect(sa_engine()).get_pk_constraint("medical", schema="claims")
        assert pk["constrained_columns"] == [], pk

    @check(S, "get_foreign_keys('medical', 'claims')")
    def _():
        assert sa.inspect(sa_engine()).get_foreign_keys("medical", schema="claims") == []

    @check(S, "get_indexes('medical', 'claims')")
    def _():
        assert sa.inspect(sa_engine()).get_indexes("medical", schema="claims") == []

    @check(S, "get_unique_constraints('medical', 'claims')")
    def _():
        assert sa.inspect(sa_engine()).get_unique_constraints("medical", schema="claims") == []

    @check(S, "get_check_constraints('medical', 'claims')")
    def _():
        assert sa.inspect(sa_engine()).get_check_constraints("medical", schema="claims") == []

    @check(S, "get_table_comment('medical', 'claims')")
    def _():
        c = sa.inspect(sa_engine()).get_table_comment("medical", schema="claims")
        assert c == {"text": None}, c

    @check(S, "get_materialized_view_names('claims')")
    def _():
        assert sa.inspect(sa_engine()).get_materialized_view_names(schema="claims") == []

    @check(S, "get_view_definition('v', 'claims')")
    def _():
        d = sa.inspect(sa_engine()).get_view_definition("v", schema="claims")
        assert d and "medical" in d.lower(), d

    @check(S, "SQL Lab schema: startup parameter options=-csearch_path=claims, unqualified SELECT")
    def _():
        # Superset's PostgresEngineSpec.adjust_engine_params puts the selected schema here.
        with pg_connect(options="-csearch_path=claims") as conn:
            note_sql("(startup options=-csearch_path=claims) SELECT count(*) FROM medical")
            assert conn.execute("SELECT count(*) FROM medical").fetchone() == (1,)

    @check(S, "data preview: SELECT ... FROM claims.medical LIMIT 100 via SQLAlchemy")
    def _():
        with sa_engine().connect() as c:
            rows = c.execute(sa.text("SELECT id, name, points, day, amount, ok, at \nFROM claims.medical\n LIMIT :param_1"),
                             {"param_1": 100}).all()
        assert [tuple(r) for r in rows] == [ROW], rows


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--dbname", default="kura")
    p.add_argument("--ana-password", default="ana-pw")
    p.add_argument("--no-setup", action="store_true", help="do not (re)create the fixture")
    p.add_argument("--only", help="run only sections whose name contains this")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    ARGS = p.parse_args()

    if not ARGS.no_setup:
        try:
            setup_fixture()
        except Exception as e:  # noqa: BLE001
            print(f"FAIL  [setup] fixture\n      sql:   {LAST_SQL['sql']}\n      error: {describe_error(e)}")
            print("0 passed, 1 failed")
            return 1

    for name, fn in [("psycopg", psycopg_checks), ("asyncpg", asyncpg_checks),
                     ("sqlalchemy", sqlalchemy_checks), ("BI", bi_checks)]:
        if ARGS.only and ARGS.only.lower() not in name.lower():
            continue
        print(f"\n== {name}")
        fn()

    passed = sum(1 for r in RESULTS if r[2])
    failed = len(RESULTS) - passed
    if failed:
        print("\nfailed checks:")
        for section, name, ok in RESULTS:
            if not ok:
                print(f"  [{section}] {name}")
    print(f"\n{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
