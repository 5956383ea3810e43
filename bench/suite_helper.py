"""Query runner for the benchmark suite (`kura-bench-suite`): DuckDB in-process, or Kura over the
PostgreSQL protocol with psycopg 3.

The Rust harness starts one helper per system and talks JSON lines over stdin/stdout, so that
every system is timed inside its own client the same way: from sending the query to holding the
whole result (DuckDB as an Arrow table, psycopg as fetched rows).

    python suite_helper.py duckdb THREADS      then {"setup": [SQL, ...]}
    python suite_helper.py pg CONNINFO

Requests, one JSON object a line:
    {"setup": [SQL, ...]}                 run statements, answer {"ok": true}
    {"sql": SQL, "rows": true|false}      answer {"ms": F, "nrows": N[, "rows": [[...], ...]]}
Errors answer {"error": "..."}; the harness decides whether that fails the run.
"""

import datetime
import decimal
import json
import sys
import time


def cell(v):
    """A value as JSON: numbers as numbers, dates and times in ISO form, the rest as text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    return str(v)


class DuckDB:
    def __init__(self, threads):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {int(threads)}")
        # Kura and DataFusion keep Parquet footers in memory between queries; so does DuckDB
        # with this setting (off by default).
        self.con.execute("SET parquet_metadata_cache = true")
        self.version = duckdb.__version__

    def setup(self, stmts):
        for s in stmts:
            self.con.execute(s)

    def run(self, sql, want_rows):
        t = time.perf_counter()
        result = self.con.execute(sql)
        table = result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()
        ms = (time.perf_counter() - t) * 1e3
        out = {"ms": ms, "nrows": table.num_rows}
        if want_rows:
            cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
            out["rows"] = [[cell(c[r]) for c in cols] for r in range(table.num_rows)]
        return out


class Postgres:
    def __init__(self, conninfo):
        import psycopg

        self.con = psycopg.connect(conninfo, autocommit=True)
        self.version = psycopg.__version__

    def setup(self, stmts):
        with self.con.cursor() as cur:
            for s in stmts:
                cur.execute(s)

    def run(self, sql, want_rows):
        t = time.perf_counter()
        with self.con.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        ms = (time.perf_counter() - t) * 1e3
        out = {"ms": ms, "nrows": len(rows)}
        if want_rows:
            out["rows"] = [[cell(v) for v in r] for r in rows]
        return out


def main():
    kind = sys.argv[1]
    system = DuckDB(sys.argv[2]) if kind == "duckdb" else Postgres(sys.argv[2])
    print(json.dumps({"ready": True, "version": system.version}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            if "setup" in req:
                system.setup(req["setup"])
                out = {"ok": True}
            else:
                out = system.run(req["sql"], req.get("rows", False))
        except Exception as e:  # reported to the harness, which names the query
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
