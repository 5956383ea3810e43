#!/usr/bin/env bash
# Audit overhead (issue 7): 10,000 small queries over the PostgreSQL protocol against three
# servers that differ only in --audit (off, on, sync), each on its own copy of one warehouse, in
# one run with rotating order. Writes bench/results/audit.json and prints the ratios.
# Usage: bench/audit.sh [--queries N] [--rounds R]
# env: CARGO_TARGET_DIR (honoured), KURA_BIN_DIR (release kura and audit_overhead already built)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
QUERIES=10000
ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --queries) QUERIES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
BIN=${KURA_BIN_DIR:-}
if [ -z "$BIN" ]; then
  cargo build --release -p kura -p kura-bench --quiet
  BIN=$CARGO_TARGET_DIR/release
fi
KURA=$BIN/kura
WORK=$ROOT/bench/work/audit
rm -rf "$WORK" && mkdir -p "$WORK"
KURA_ADMIN_PASSWORD=bench "$KURA" init --data "$WORK/base" >/dev/null
"$KURA" sql --data "$WORK/base" --no-timing -c "
  CREATE SCHEMA bench;
  CREATE TABLE bench.visits AS
    SELECT value AS visit_id, concat('w', value % 10) AS ward, (value * 37 % 1000) / 10.0 AS cost
    FROM generate_series(0, 9999);" >/dev/null
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
ARGS=()
for MODE in off on sync; do
  cp -r "$WORK/base" "$WORK/$MODE"
  "$KURA" serve --data "$WORK/$MODE" --listen 127.0.0.1:0 --audit "$MODE" 2>"$WORK/$MODE.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q "serving on" "$WORK/$MODE.log" && break; sleep 0.1; done
  PORT=$(sed -n 's/.*serving on [0-9.]*:\([0-9]*\).*/\1/p' "$WORK/$MODE.log")
  ARGS+=("$MODE=host=127.0.0.1 port=$PORT user=kura password=bench dbname=kura")
done
OUT=$ROOT/bench/results/audit.json
{
  for CLIENTS in 1 8; do
    "$BIN/audit_overhead" --queries "$QUERIES" --rounds "$ROUNDS" --clients "$CLIENTS" "${ARGS[@]}"
  done
} | tee "$WORK/lines.json"
# Every audited statement must be on record: the audit table of "on" holds them all.
kill "${PIDS[@]}"; wait 2>/dev/null || true; PIDS=()
RECORDED=$("$KURA" sql --data "$WORK/on" --csv --no-timing -c "SELECT count(*) FROM audit.statements WHERE client <> 'local'" | tail -1)
python3 - "$WORK/lines.json" "$OUT" "$RECORDED" <<'PY'
import json, sys, platform, os
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = {"machine": f"{os.cpu_count()} cores, {platform.machine()}", "results": lines, "records_in_audit_table_of_on": int(sys.argv[3])}
for c in sorted({l["clients"] for l in lines}):
    base = next(l for l in lines if l["clients"] == c and l["server"] == "off")["seconds"]
    for l in lines:
        if l["clients"] == c:
            l["ratio_to_off"] = l["seconds"] / base
            print(f'clients={c:>2} audit={l["server"]:<4} {l["queries"]} queries in {l["seconds"]:.2f}s '
                  f'({l["ms_per_query"]:.3f} ms/query)  {l["ratio_to_off"]:.3f}x off')
json.dump(out, open(sys.argv[2], "w"), indent=2)
print(f'audit table of "on" holds {sys.argv[3]} wire records')
PY
