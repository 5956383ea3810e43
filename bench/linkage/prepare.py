"""Exports Splink's input from a Kura warehouse: the rows of Kura's linkage sources.

usage: prepare.py --kura BIN --data WAREHOUSE --sources cli/src/linkage.sql --out DIR

1. Each linkage source's query (as declared in cli/src/linkage.sql, the same queries `kura link`
   reads) is exported by Kura itself (`COPY (query) TO ... (FORMAT parquet)`), with the identity
   fields brought to the form Kura compares them in:
   - kana name split at its first space (any width) or middle dot into surname and given name,
     each through Kura's own `kana_normalize` (half-width to full-width, hiragana to katakana,
     small kana to large, ヂ/ヅ/ヴ folded);
   - kanji name through `kana_normalize` (NFKC, separators dropped), old kanji forms folded
     (髙 高, 﨑 崎, ...: the table of linkage/src/kana.rs);
   - birth date as YYYYMMDD text, sex as 1/2 (M/F and 男/女 mapped as Kura maps them);
   - insurance card as insurer:symbol:number (Kura's card field), suffix trimmed;
   - empty text as NULL.
2. Names written without a separator (some claims files) are split as Kura splits them: at the
   cut whose parts are both known family and given names (seen with a separator) and most
   frequent together, else after the longest known family name (DuckDB, below).
3. The true person of each row (truth.person_map) is attached for scoring only.

Writes DIR/splink_input.parquet and prints a JSON summary on stdout.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import duckdb

IDENTITY = [
    "name_kana",
    "name_kanji",
    "birth_date",
    "sex",
    "postal_code",
    "insurer_number",
    "insured_symbol",
    "insured_number",
    "insured_suffix",
]

# linkage/src/kana.rs fold_kanji.
OLD_KANJI = "髙﨑嵜邊邉齋齊櫻澤濱濵瀧澁廣國嶋嶌德惠榮冨槇淵萬龍壽實藏眞"
NEW_KANJI = "高崎崎辺辺斎斎桜沢浜浜滝渋広国島島徳恵栄富槙渕万竜寿実蔵真"
assert len(OLD_KANJI) == len(NEW_KANJI)

SEP = r"[\s・･·]"
NOSEP = r"[^\s・･·]"


def sources(path):
    text = open(path, encoding="utf-8").read()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    out = []
    for stmt in text.split(";"):
        m = re.match(
            r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?LINKAGE\s+SOURCE\s+(\w+)(?:\s+WITH\s+UNIQUE\s+KEYS)?\s+AS\s+(.*)$",
            stmt,
            re.S | re.I,
        )
        if m:
            out.append((m.group(1), m.group(2).strip()))
    if not out:
        sys.exit(f"no linkage sources in {path}")
    return out


def kura_sql(kura, data, sql, csv=False):
    cmd = [kura, "sql", "--data", data, "--no-timing", "-c", sql]
    if csv:
        cmd.insert(2, "--csv")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"kura sql failed: {p.stderr.strip()}\nSQL: {sql[:500]}")
    return p.stdout


def text(col):
    """Kura's text(): NULL, or the value when it is not blank."""
    return f"CASE WHEN trim(CAST({col} AS TEXT)) = '' THEN NULL ELSE CAST({col} AS TEXT) END"


def source_select(name, query, columns):
    have = lambda c: c in columns
    null = "CAST(NULL AS TEXT)"
    kana = f"regexp_replace({text('name_kana')}, '^\\s+|\\s+$', '', 'g')" if have("name_kana") else null
    has_sep = f"regexp_like({kana}, '{SEP}')"
    family = f"kana_normalize(regexp_replace({kana}, '^({NOSEP}*){SEP}.*$', '\\1'))"
    given = f"kana_normalize(regexp_replace({kana}, '^{NOSEP}*{SEP}', ''))"
    kanji = (
        f"translate(kana_normalize({text('name_kanji')}), '{OLD_KANJI}', '{NEW_KANJI}')" if have("name_kanji") else null
    )
    birth = f"replace(CAST(CAST(birth_date AS DATE) AS TEXT), '-', '')" if have("birth_date") else null
    sex = (
        "CASE trim(CAST(sex AS TEXT)) WHEN '1' THEN '1' WHEN 'M' THEN '1' WHEN 'm' THEN '1' WHEN '男' THEN '1' "
        "WHEN 'male' THEN '1' WHEN '男性' THEN '1' WHEN '2' THEN '2' WHEN 'F' THEN '2' WHEN 'f' THEN '2' "
        "WHEN '女' THEN '2' WHEN 'female' THEN '2' WHEN '女性' THEN '2' END"
        if have("sex")
        else null
    )
    postal = text("postal_code") if have("postal_code") else null
    if have("insurer_number") and have("insured_number"):
        symbol = f"coalesce(trim({text('insured_symbol')}), '')" if have("insured_symbol") else "''"
        card = (
            f"CASE WHEN {text('insurer_number')} IS NULL OR {text('insured_number')} IS NULL THEN NULL "
            f"ELSE trim(CAST(insurer_number AS TEXT)) || ':' || {symbol} || ':' || trim(CAST(insured_number AS TEXT)) END"
        )
    else:
        card = null
    suffix = f"trim({text('insured_suffix')})" if have("insured_suffix") else null
    return f"""SELECT '{name}' AS source, CAST(source_key AS TEXT) AS source_key,
  CASE WHEN {has_sep} THEN {family} END AS family_part,
  CASE WHEN {has_sep} THEN {given} END AS given_part,
  kana_normalize({kana}) AS kana_whole,
  {kanji} AS name_kanji, {birth} AS birth_date, {sex} AS sex, {postal} AS postal_code,
  {card} AS insurance_card, {suffix} AS insured_suffix
FROM ({query}) s
WHERE {text('source_key')} IS NOT NULL"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kura", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--sources", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth", default="SELECT source, source_key, person_id FROM truth.person_map")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()

    selects = []
    for name, query in sources(args.sources):
        header = kura_sql(args.kura, args.data, f"SELECT * FROM ({query}) s LIMIT 0", csv=True).splitlines()
        columns = set(header[0].split(",")) if header else set()
        if "source_key" not in columns:
            sys.exit(f"source {name}: no source_key column (got {sorted(columns)})")
        selects.append(source_select(name, query, columns))
    raw = os.path.join(os.path.abspath(args.out), "records_raw.parquet")
    truth = os.path.join(os.path.abspath(args.out), "truth.parquet")
    union = "\nUNION ALL\n".join(selects)
    kura_sql(args.kura, args.data, f"COPY ({union}) TO '{raw}' (FORMAT parquet)")
    kura_sql(args.kura, args.data, f"COPY ({args.truth}) TO '{truth}' (FORMAT parquet)")
    exported = time.perf_counter()

    con = duckdb.connect()
    con.execute("SET threads = 2")
    step = [time.perf_counter()]

    def took(what):
        now = time.perf_counter()
        print(f"prepare: {what} {now - step[0]:.1f}s", file=sys.stderr, flush=True)
        step[0] = now

    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_parquet('{raw}')")
    # Kura's NameSplitter: family and given names seen written with a separator.
    con.execute(
        """CREATE TABLE fam AS SELECT family_part AS part, count(*) AS n FROM raw
           WHERE family_part <> '' AND given_part <> '' GROUP BY ALL;
           CREATE TABLE giv AS SELECT given_part AS part, count(*) AS n FROM raw
           WHERE family_part <> '' AND given_part <> '' GROUP BY ALL;
           CREATE TABLE unsplit AS SELECT DISTINCT kana_whole AS name FROM raw
           WHERE (family_part IS NULL OR family_part = '' OR given_part IS NULL OR given_part = '')
             AND kana_whole IS NOT NULL AND kana_whole <> '';
           CREATE TABLE cuts AS SELECT name, i, left(name, i) AS f, substr(name, i + 1) AS g
           FROM unsplit, range(1, 64) r(i) WHERE i < length(name);
           CREATE TABLE split AS
           WITH both_known AS (
             SELECT c.name, c.i, fam.n * giv.n AS score FROM cuts c
             JOIN fam ON fam.part = c.f JOIN giv ON giv.part = c.g),
           best AS (SELECT name, arg_max(i, (score, -i)) AS i FROM both_known GROUP BY name),
           longest AS (SELECT c.name, max(c.i) AS i FROM cuts c JOIN fam ON fam.part = c.f
                       AND NOT EXISTS (SELECT 1 FROM best b WHERE b.name = c.name) GROUP BY c.name)
           SELECT name, left(name, i) AS surname, substr(name, i + 1) AS given
           FROM (SELECT * FROM best UNION ALL SELECT * FROM longest);"""
    )
    took("name splits learnt")
    con.execute(
        f"""COPY (
          SELECT row_number() OVER (ORDER BY r.source, r.source_key) AS unique_id,
                 r.source, r.source_key, t.person_id,
                 CASE WHEN r.family_part <> '' AND r.given_part <> '' THEN r.family_part
                      WHEN s.name IS NOT NULL THEN s.surname ELSE nullif(r.kana_whole, '') END AS surname_kana,
                 CASE WHEN r.family_part <> '' AND r.given_part <> '' THEN r.given_part
                      WHEN s.name IS NOT NULL THEN s.given END AS given_kana,
                 nullif(r.name_kanji, '') AS name_kanji, r.birth_date, r.sex, r.postal_code,
                 r.insurance_card, r.insured_suffix
          FROM raw r
          LEFT JOIN split s ON s.name = r.kana_whole
          LEFT JOIN read_parquet('{truth}') t ON t.source = r.source AND t.source_key = r.source_key
        ) TO '{os.path.join(args.out, 'splink_input.parquet')}' (FORMAT parquet)"""
    )
    took("records written")
    summary = con.execute(
        f"""SELECT count(*), count(DISTINCT (source, source_key)), count(person_id),
                   count(*) FILTER (WHERE given_kana IS NULL AND surname_kana IS NOT NULL)
            FROM read_parquet('{os.path.join(args.out, 'splink_input.parquet')}')"""
    ).fetchone()
    unsplit = con.execute("SELECT count(*) FROM raw WHERE NOT coalesce(family_part <> '' AND given_part <> '', false) AND kana_whole <> ''").fetchone()[0]
    os.remove(raw)
    print(
        json.dumps(
            {
                "records": summary[0],
                "keys": summary[1],
                "records_with_truth": summary[2],
                "records_without_separator": unsplit,
                "records_left_unsplit": summary[3],
                "export_seconds": round(exported - started, 3),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
