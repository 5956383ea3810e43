"""Rows per second streaming a large result to psycopg 3; part of bench/server.sh.

usage: server_stream.py NAME CONNINFO SQL RUNS  -> one JSON line per run
"""
import json
import sys
import time

import psycopg

name, conninfo, sql, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with psycopg.connect(conninfo, autocommit=True) as conn:
    for _ in range(runs):
        started = time.perf_counter()
        rows = 0
        with conn.cursor() as cur:
            cur.execute(sql)
            while True:
                chunk = cur.fetchmany(100_000)
                if not chunk:
                    break
                rows += len(chunk)
        seconds = time.perf_counter() - started
        print(json.dumps({"server": name, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}), flush=True)
