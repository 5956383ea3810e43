#!/usr/bin/env bash
# Client compatibility checks against a running Kura server:
#   - clients.py: psycopg 3, asyncpg, SQLAlchemy 2 (inspector and Core), and the catalog queries
#     DBeaver, Metabase and Superset send on connection test and schema sync;
#   - JdbcCheck.java: pgjdbc (what DBeaver and Metabase use), including DatabaseMetaData.
# The user must be a superuser: clients.py (re)creates its fixture (schemas claims and
# clientcheck, user ana) before the checks.
#
# Usage: tests/clients/run.sh PORT USER PASSWORD
# Installs what it needs: the Python packages into $KURA_TEST_CACHE/venv (default
# ~/.cache/kura-test/venv, the test suite's), pgjdbc from Debian's libpostgresql-jdbc-java.
# Exits non-zero if any check fails; the last line is "N passed, N failed" over both programs.
set -uo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 PORT USER PASSWORD" >&2
  exit 2
fi
PORT=$1 USER_NAME=$2 PASSWORD=$3
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KURA_TEST_CACHE:-$HOME/.cache/kura-test}
VENV=$CACHE/venv
JAR=/usr/share/java/postgresql.jar

set -e
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'psycopg[binary]>=3.2' asyncpg 'sqlalchemy>=2'
if [ ! -f "$JAR" ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libpostgresql-jdbc-java
fi
command -v javac >/dev/null || { echo "javac not found (install a JDK, e.g. openjdk-17-jdk-headless)" >&2; exit 2; }
set +e

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "=== Python drivers and BI-tool queries (clients.py)"
"$VENV/bin/python" "$HERE/clients.py" --port "$PORT" --user "$USER_NAME" --password "$PASSWORD" 2>&1 | tee "$WORK/py.out"
PY=${PIPESTATUS[0]}

echo
echo "=== pgjdbc (JdbcCheck.java)"
if javac -cp "$JAR" -d "$WORK/classes" "$HERE/JdbcCheck.java"; then
  java -cp "$WORK/classes:$JAR" JdbcCheck "$PORT" "$USER_NAME" "$PASSWORD" 2>&1 | tee "$WORK/java.out"
  JV=${PIPESTATUS[0]}
else
  echo "0 passed, 1 failed" > "$WORK/java.out"
  JV=1
fi

# Sum the two "N passed, N failed" lines into one.
totals() { grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1; }
read -r P1 _ F1 _ < <(totals "$WORK/py.out" || echo "0 passed, 1 failed")
read -r P2 _ F2 _ < <(totals "$WORK/java.out" || echo "0 passed, 1 failed")
P1=${P1:-0} F1=${F1:-1} P2=${P2:-0} F2=${F2:-1}
echo
echo "python: exit $PY, java: exit $JV"
echo "$((P1 + P2)) passed, $((F1 + F2)) failed"

# Known gaps are listed in known-failures.txt; anything else failing, or a listed check that
# now passes, fails the run.
KNOWN="$HERE/known-failures.txt"
grep -h '^FAIL  ' "$WORK/py.out" "$WORK/java.out" | sed 's/^FAIL  //' | sort -u > "$WORK/failed"
grep -h '^ok    ' "$WORK/py.out" "$WORK/java.out" | sed 's/^ok    //' | sort -u > "$WORK/passed"
grep -v '^#' "$KNOWN" | sed '/^$/d' | sort -u > "$WORK/known"
UNEXPECTED=$(comm -23 "$WORK/failed" "$WORK/known")
FIXED=$(comm -12 "$WORK/passed" "$WORK/known")
STATUS=0
if [ -n "$UNEXPECTED" ]; then
  echo "unexpected failures:"; echo "$UNEXPECTED" | sed 's/^/  /'; STATUS=1
fi
if [ -n "$FIXED" ]; then
  echo "listed as known failures but passing now (remove them from known-failures.txt):"; echo "$FIXED" | sed 's/^/  /'; STATUS=1
fi
if [ "$((P1 + P2))" -eq 0 ]; then
  echo "no check ran"; STATUS=1
fi
[ "$STATUS" -eq 0 ] && echo "all failures are known gaps ($(wc -l < "$WORK/known") listed)"
exit $STATUS
