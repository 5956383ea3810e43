#!/usr/bin/env bash
# Server benchmark: Kura against PostgreSQL 15 (Debian) on the same machine and the same data,
# in one run. Measures round trips per second of `SELECT 1` with 1, 16 and 64 clients
# (tokio-postgres, simple protocol), the same for a one-row table lookup (which, unlike the
# constant `SELECT 1`, Kura plans every time), and rows per second streaming a 10-million-row
# result to psycopg 3. Writes bench/results/server.json and prints ratios (Kura / PostgreSQL).
#
# usage: bench/server.sh [ROWS=10000000] [SECONDS=5]
# needs: postgresql-15 (apt-get install postgresql-15), a release build
#        (cargo build --release -p kura -p kura-bench), psycopg in ~/.cache/kura-test/venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
SECONDS_PER=${2:-5}
TARGET=${CARGO_TARGET_DIR:-target}/release
PGBIN=/usr/lib/postgresql/15/bin
PY=${KURA_PY:-$HOME/.cache/kura-test/venv/bin/python}
WORK=$(mktemp -d /tmp/kura-server-bench.XXXXXX)
PG_PORT=55432
KURA_PORT=55433
PASSWORD=bench-pw
cleanup() {
  [ -n "${KURA_PID:-}" ] && kill "$KURA_PID" 2>/dev/null || true
  if [ -d "$WORK/pg" ]; then su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m fast stop" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== PostgreSQL 15"
mkdir -p "$WORK/pg" && chown postgres "$WORK" "$WORK/pg"
echo "$PASSWORD" > "$WORK/pwfile" && chown postgres "$WORK/pwfile"
su postgres -c "$PGBIN/initdb -D $WORK/pg -U bench --auth=scram-sha-256 --pwfile=$WORK/pwfile" >/dev/null
su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -o '-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200' -l $WORK/pg.log start" >/dev/null
PG="host=127.0.0.1 port=$PG_PORT user=bench password=$PASSWORD dbname=postgres sslmode=disable"
psql "$PG" -qX -c "CREATE TABLE one AS SELECT 1::bigint AS id, 'x'::text AS v"
psql "$PG" -qX -c "CREATE TABLE t AS SELECT n::bigint AS n, n * 0.5::float8 AS x, 'row ' || n AS s FROM generate_series(1, $ROWS) AS n"

echo "== Kura"
KURA_ADMIN_PASSWORD=$PASSWORD "$TARGET/kura" init --data "$WORK/kura" >/dev/null
"$TARGET/kura" serve --data "$WORK/kura" --listen 127.0.0.1:$KURA_PORT 2>"$WORK/kura.log" &
KURA_PID=$!
for _ in $(seq 1 100); do grep -q "serving on" "$WORK/kura.log" && break; sleep 0.1; done
KURA="host=127.0.0.1 port=$KURA_PORT user=kura password=$PASSWORD dbname=kura sslmode=disable"
psql "$KURA" -qX -c "CREATE TABLE one AS SELECT CAST(1 AS BIGINT) AS id, 'x' AS v"
psql "$KURA" -qX -c "CREATE TABLE t AS SELECT value AS n, CAST(value AS DOUBLE) * 0.5 AS x, concat('row ', CAST(value AS TEXT)) AS s FROM generate_series(1, $ROWS)"

echo "== round trips (SELECT 1, then a one-row table lookup), ${SECONDS_PER}s per point"
"$TARGET/roundtrips" --seconds "$SECONDS_PER" postgres="$PG" kura="$KURA" | tee "$WORK/rt.jsonl"
"$TARGET/roundtrips" --seconds "$SECONDS_PER" --query "SELECT v FROM one WHERE id = 1" postgres="$PG" kura="$KURA" \
  | tee -a "$WORK/rt.jsonl"
echo "== streaming $ROWS rows to psycopg (3 runs each, alternating)"
: > "$WORK/stream.jsonl"
for _ in 1 2 3; do
  "$PY" bench/server_stream.py postgres "$PG" "SELECT n, x, s FROM t" 1 | tee -a "$WORK/stream.jsonl"
  "$PY" bench/server_stream.py kura "$KURA" "SELECT n, x, s FROM t" 1 | tee -a "$WORK/stream.jsonl"
done

"$PY" - "$WORK/rt.jsonl" "$WORK/stream.jsonl" "$ROWS" <<'PY'
import json, statistics, sys, datetime, pathlib
rt = [json.loads(l) for l in open(sys.argv[1])]
st = [json.loads(l) for l in open(sys.argv[2])]
out = {"date": datetime.datetime.utcnow().isoformat() + "Z", "rows": int(sys.argv[3]), "round_trips": [], "streaming": {}}
print("\n| measure | PostgreSQL 15 | Kura | ratio |\n| --- | ---: | ---: | ---: |")
for q in dict.fromkeys(r["query"] for r in rt):
    for n in sorted({r["clients"] for r in rt if r["query"] == q}):
        pg = next(r["round_trips_per_s"] for r in rt if r["query"] == q and r["clients"] == n and r["server"] == "postgres")
        ku = next(r["round_trips_per_s"] for r in rt if r["query"] == q and r["clients"] == n and r["server"] == "kura")
        out["round_trips"].append({"query": q, "clients": n, "postgres": pg, "kura": ku, "ratio": ku / pg})
        print(f"| `{q}` round trips/s, {n} clients | {pg:,.0f} | {ku:,.0f} | {ku / pg:.2f} |")
pg = statistics.median(r["rows_per_s"] for r in st if r["server"] == "postgres")
ku = statistics.median(r["rows_per_s"] for r in st if r["server"] == "kura")
out["streaming"] = {"postgres_rows_per_s": pg, "kura_rows_per_s": ku, "ratio": ku / pg}
print(f"| rows/s streamed to psycopg | {pg:,.0f} | {ku:,.0f} | {ku / pg:.2f} |")
path = pathlib.Path("bench/results/server.json")
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=2))
print(f"wrote {path}")
PY
