"""Splink (DuckDB backend) on the linkage benchmark's records, timed by phase.

Input: the Parquet file `bench/linkage/run` exports from Kura's linkage sources, one row per
source row (the same rows `kura link` reads), with the identity fields already split and
normalised as Kura normalises them (see bench/linkage/prepare.sql), plus the true person_id,
which is used for scoring only and never reaches Splink.

The model follows Kura's `default_settings` (engine/src/linkage.rs) as closely as Splink can
express it:
  surname / given kana: exact, Jaro-Winkler >= 0.92, >= 0.80, else (term-frequency adjusted);
                       Kura: the same levels
  kanji name: blocking only, no comparison. Kura puts the kanji and the two kana names in one
              group (one name, written twice); Splink adds comparisons as independent evidence,
              and with the kanji name compared too it counted one name twice and took namesakes
              for one person (precision 0.74 at 20,000 persons, against 0.99 without it)
  birth date: exact, one typo (Damerau-Levenshtein <= 1 on YYYYMMDD, or day and month
              swapped), same year, else; Kura: the same levels
  sex: exact, else; postal code: exact, same 3-digit prefix, else
  insurance card (insurer:symbol:number): exact, Damerau-Levenshtein <= 1, else
  insured suffix: exact, else
  prediction blocking: birth_date+sex, surname+given kana, insurance card, kanji name,
                       given kana+postal code (Kura's five rules; Kura's two deterministic
                       passes are subsets of the first)
  u: random sampling of 2,000,000 pairs (Kura's u_sample_pairs); m: EM on birth_date+sex and
  on insurance card+suffix (Kura trains on card+suffix+sex; without sex here so that Splink
  can estimate sex's m at all); lambda from Kura's two deterministic rules (recall 0.9)
  match at probability 0.9 (Kura's match threshold); pairs kept from 0.6 (Kura's review
  threshold) so that predict does not write every scored pair.

Rows of one source key are one entry in Kura (must-link); the same is given to Splink's
clustering as extra edges, so that every source key lands in one cluster and the pairwise
quality is measured over source keys, Kura's unit.

Writes a JSON result (phases, comparisons, quality) to --out.
"""

import argparse
import json
import os
import sys
import time

import duckdb
import splink
import splink.comparison_library as cl
import splink.comparison_level_library as cll
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.clustering import cluster_pairwise_predictions_at_threshold

MATCH = 0.9
REVIEW = 0.6


def name_comparison(col):
    return cl.JaroWinklerAtThresholds(col, [0.92, 0.80]).configure(term_frequency_adjustments=True)


def settings():
    birth = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel(
                "damerau_levenshtein(birth_date_l, birth_date_r) <= 1 OR "
                "(substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
                "substr(birth_date_l, 5, 2) = substr(birth_date_r, 7, 2) AND "
                "substr(birth_date_l, 7, 2) = substr(birth_date_r, 5, 2))",
                label_for_charts="one typo or day-month swapped",
            ),
            cll.CustomLevel("substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4)", label_for_charts="same year"),
            cll.ElseLevel(),
        ],
    )
    postal = cl.CustomComparison(
        output_column_name="postal_code",
        comparison_levels=[
            cll.NullLevel("postal_code"),
            cll.ExactMatchLevel("postal_code"),
            cll.CustomLevel("substr(postal_code_l, 1, 3) = substr(postal_code_r, 1, 3)", label_for_charts="3-digit prefix"),
            cll.ElseLevel(),
        ],
    )
    card = cl.CustomComparison(
        output_column_name="insurance_card",
        comparison_levels=[
            cll.NullLevel("insurance_card"),
            cll.ExactMatchLevel("insurance_card"),
            cll.DamerauLevenshteinLevel("insurance_card", 1),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            name_comparison("surname_kana"),
            name_comparison("given_kana"),
            birth,
            cl.ExactMatch("sex"),
            postal,
            card,
            cl.ExactMatch("insured_suffix"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("birth_date", "sex"),
            block_on("surname_kana", "given_kana"),
            block_on("insurance_card"),
            block_on("name_kanji"),
            block_on("given_kana", "postal_code"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        max_iterations=50,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="18GB")
    ap.add_argument("--temp-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--u-max-pairs", type=float, default=2e6)
    ap.add_argument("--predict-chunks", type=int, default=1, help="predict in N chunks of the left records (Splink's own chunking, for memory)")
    ap.add_argument("--no-count", action="store_true", help="skip counting the scored pairs")
    args = ap.parse_args()

    result = {
        "system": "splink",
        "version": splink.__version__,
        "duckdb": duckdb.__version__,
        "threads": args.threads,
        "phases": {},
        "phase_reached": None,
        "completed": False,
    }

    def save():
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)

    def phase(name):
        result["phase_reached"] = name
        save()
        print(f"[splink] {time.strftime('%H:%M:%S')} {name}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    last = [started]

    def done(name):
        now = time.perf_counter()
        result["phases"][name] = round(now - last[0], 3)
        last[0] = now
        save()

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET temp_directory = '{args.temp_dir}'")
    con.execute("SET preserve_insertion_order = false")

    phase("load")
    # Splink sees only the identity fields; source, source_key and person_id stay in `truth`.
    con.execute(
        f"""CREATE TABLE records AS
        SELECT unique_id, surname_kana, given_kana, name_kanji, birth_date, sex, postal_code,
               insurance_card, insured_suffix
        FROM read_parquet('{args.input}')"""
    )
    con.execute(
        f"CREATE TABLE truth AS SELECT unique_id, source, source_key, person_id FROM read_parquet('{args.input}')"
    )
    result["records"] = con.execute("SELECT count(*) FROM records").fetchone()[0]
    db_api = DuckDBAPI(connection=con)
    df = db_api.register("records")
    linker = Linker(df, settings())
    done("load")

    phase("train")
    t = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("insurance_card", "insured_suffix", "birth_date", "sex"),
            block_on("surname_kana", "given_kana", "birth_date", "sex"),
        ],
        recall=0.9,
    )
    result["phases"]["train: lambda"] = round(time.perf_counter() - t, 3)
    save()
    t = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=args.u_max_pairs, seed=42)
    result["phases"]["train: u"] = round(time.perf_counter() - t, 3)
    save()
    t = time.perf_counter()
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("birth_date", "sex"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("insurance_card", "insured_suffix"), estimate_without_term_frequencies=True
    )
    result["phases"]["train: em"] = round(time.perf_counter() - t, 3)
    done("train")

    phase("predict")
    result["predict_chunks"] = args.predict_chunks
    if args.predict_chunks > 1:
        predictions = linker.inference.predict(
            threshold_match_probability=REVIEW, num_chunks_left=args.predict_chunks, num_chunks_right=1
        )
    else:
        predictions = linker.inference.predict(threshold_match_probability=REVIEW)
    predictions_table = predictions.physical_name
    result["pairs_at_or_above_review"] = con.execute(f"SELECT count(*) FROM {predictions_table}").fetchone()[0]
    done("predict")

    phase("cluster")
    # Splink's edges at the match threshold, plus the rows of one source key (Kura's must-link).
    con.execute(
        f"""CREATE TABLE edges AS
        SELECT unique_id_l, unique_id_r, match_probability FROM {predictions_table}
        WHERE match_probability >= {MATCH}
        UNION ALL
        SELECT unique_id_l, unique_id_r, 1.0 FROM (
            SELECT lag(unique_id) OVER (PARTITION BY source, source_key ORDER BY unique_id) AS unique_id_l,
                   unique_id AS unique_id_r
            FROM truth) WHERE unique_id_l IS NOT NULL"""
    )
    clusters = cluster_pairwise_predictions_at_threshold(
        "records", "edges", db_api, node_id_column_name="unique_id", threshold_match_probability=MATCH
    )
    clusters_table = clusters.physical_name
    result["persons"] = con.execute(f"SELECT count(DISTINCT cluster_id) FROM {clusters_table}").fetchone()[0]
    done("cluster")
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["completed"] = True
    phase("evaluate")

    # Pairwise quality over source keys (Kura's unit): every key has one cluster (its rows are
    # joined by the must-link edges) and one true person.
    q = con.execute(
        f"""WITH keys AS (
              SELECT DISTINCT t.source, t.source_key, c.cluster_id, t.person_id
              FROM truth t JOIN {clusters_table} c USING (unique_id)),
            cells AS (SELECT count(*) AS n FROM keys GROUP BY cluster_id, person_id),
            pred AS (SELECT count(*) AS n FROM keys GROUP BY cluster_id),
            tru AS (SELECT count(*) AS n FROM keys GROUP BY person_id)
            SELECT (SELECT count(*) FROM keys),
                   (SELECT count(*) FROM (SELECT DISTINCT source, source_key FROM keys)),
                   (SELECT sum(n * (n - 1) / 2) FROM cells)::BIGINT,
                   (SELECT sum(n * (n - 1) / 2) FROM pred)::BIGINT,
                   (SELECT sum(n * (n - 1) / 2) FROM tru)::BIGINT"""
    ).fetchone()
    key_rows, keys, tp, pp, tt = q
    if key_rows != keys:
        print(f"[splink] warning: {key_rows - keys} source keys fall in more than one cluster", file=sys.stderr)
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    result["quality"] = {
        "unit": "source keys",
        "keys": keys,
        "true_positives": tp,
        "predicted_pairs": pp,
        "true_pairs": tt,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    # The same over Splink's own unit, the records (rows), for reference.
    r = con.execute(
        f"""WITH j AS (SELECT c.cluster_id, t.person_id FROM truth t JOIN {clusters_table} c USING (unique_id))
            SELECT (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY cluster_id, person_id))::BIGINT,
                   (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY cluster_id))::BIGINT,
                   (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY person_id))::BIGINT"""
    ).fetchone()
    rp, rr = r[0] / r[1], r[0] / r[2]
    result["quality_records"] = {"unit": "records", "precision": rp, "recall": rr, "f1": 2 * rp * rr / (rp + rr)}
    save()

    if not args.no_count:
        # Pairs Splink scored: its own count of the distinct pairs its prediction rules generate
        # (the rows predict scores before the threshold). Timed apart, not part of `seconds`.
        phase("count comparisons")
        from splink.blocking_analysis import count_comparisons_from_blocking_rules

        t = time.perf_counter()
        counts = count_comparisons_from_blocking_rules(
            df,
            blocking_rules=settings().blocking_rules_to_generate_predictions,
            link_type="dedupe_only",
            unique_id_column_name="unique_id",
            record_sample_proportion=1.0,
        )
        result["comparisons"] = int(counts[-1]["cumulative_comparison_count"])
        result["comparisons_per_rule"] = {c["blocking_rule"]: int(c["marginal_comparison_count"]) for c in counts}
        result["count_seconds"] = round(time.perf_counter() - t, 3)
    result["phase_reached"] = "done"
    save()


if __name__ == "__main__":
    main()
