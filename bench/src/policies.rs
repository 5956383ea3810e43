//! What policies cost: the core benchmark's queries as a user whose policies fold to the
//! identity (`operators`: the raw tables), as one who reads through masks on the identity
//! columns only (`masked_only`), and as one with the masks and a consent row filter that reads
//! another table (`analysts`), alternating in one run. The goal is at most 10% (PostgreSQL Anonymizer documents 20-30% for dynamic masking),
//! with safe predicates still pruning files (`filtered_fy_scan` filters a partition column).
//! Then the consent filter Kura applies itself: the same queries over linked tables, as a zone
//! operator and as a researcher whose reads drop the persons refused with `OPT OUT`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use kura_engine::{Engine, Session};

use crate::{QUERIES, median, run_rows};

/// Roles, a synthetic opt-out list (about 1 in 100 insured numbers) and the policies. Statements
/// that already took effect in an earlier run fail with "already" and are skipped.
const SETUP: &str = "
CREATE ROLE operators;
CREATE ROLE analysts;
CREATE ROLE masked_only;
CREATE USER bench_operator IN ROLE operators;
CREATE USER bench_analyst IN ROLE analysts;
CREATE USER bench_masked IN ROLE masked_only;
GRANT SELECT ON ALL TABLES IN SCHEMA claims TO operators, analysts, masked_only;
GRANT SELECT ON ALL TABLES IN SCHEMA checkup TO operators, analysts, masked_only;
CREATE SCHEMA consent;
CREATE TABLE consent.optout AS SELECT DISTINCT insured_number FROM claims.medical_claims WHERE insured_number LIKE '%07';
CREATE OR REPLACE MASKING POLICY identity_text AS (v TEXT) RETURNS TEXT -> CASE WHEN is_member('operators') THEN v END;
CREATE OR REPLACE MASKING POLICY birth_month AS (v DATE) RETURNS DATE ->
  CASE WHEN is_member('operators') THEN v ELSE date_floor(v, 'month') END;
CREATE OR REPLACE ROW ACCESS POLICY optout AS (n TEXT) RETURNS BOOLEAN ->
  is_member('operators') OR is_member('masked_only') OR NOT EXISTS (SELECT 1 FROM consent.optout o WHERE o.insured_number = n);
ALTER TABLE claims.medical_claims ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE claims.medical_claims ALTER COLUMN insured_number SET MASKING POLICY identity_text;
ALTER TABLE claims.medical_claims ALTER COLUMN birth_date SET MASKING POLICY birth_month;
ALTER TABLE claims.medical_claims ADD ROW ACCESS POLICY optout ON (insured_number);
ALTER TABLE claims.pharmacy_claims ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN insured_number SET MASKING POLICY identity_text;
ALTER TABLE claims.pharmacy_claims ALTER COLUMN birth_date SET MASKING POLICY birth_month;
ALTER TABLE claims.pharmacy_claims ADD ROW ACCESS POLICY optout ON (insured_number);
ALTER TABLE checkup.results ALTER COLUMN name_kana SET MASKING POLICY identity_text;
ALTER TABLE checkup.results ALTER COLUMN birth_date SET MASKING POLICY birth_month;
";

/// The consent filter Kura applies by itself: linked tables (research_id in place of identity)
/// and refusals in the registry (`OPT OUT`), the same 1 in 100 insured persons as above.
const LINKED_SETUP: &str = "
CREATE SCHEMA research;
CREATE LINKED TABLE research.medical_claims FROM claims.medical_claims
  LINKAGE SOURCE claims KEY insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '')
  KEEP (sex) ORDER BY service_month;
CREATE LINKED TABLE research.pharmacy_claims FROM claims.pharmacy_claims
  LINKAGE SOURCE claims KEY insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '')
  KEEP (sex) ORDER BY service_month;
CREATE LINKED TABLE research.checkups FROM checkup.results
  LINKAGE SOURCE checkup KEY CAST(checkup_id AS TEXT) KEEP (sex) ORDER BY checkup_date;
CREATE ROLE zone_operators OPERATOR;
CREATE ROLE researchers;
CREATE USER bench_zone_operator IN ROLE zone_operators;
CREATE USER bench_researcher IN ROLE researchers;
GRANT SELECT ON ALL TABLES IN SCHEMA research TO zone_operators, researchers;
GRANT SELECT ON claims.claim_diagnoses TO zone_operators, researchers;
";

/// Undoes `LINKED_SETUP` and the linkage sources (the research IDs stay): declared sources put
/// the claims tables in the identity zone, which would change what the first part measures.
const LINKED_CLEANUP: &str = "
DROP TABLE IF EXISTS research.medical_claims;
DROP TABLE IF EXISTS research.pharmacy_claims;
DROP TABLE IF EXISTS research.checkups;
DROP LINKAGE SOURCE IF EXISTS resident;
DROP LINKAGE SOURCE IF EXISTS claims;
DROP LINKAGE SOURCE IF EXISTS checkup;
DROP LINKAGE SOURCE IF EXISTS care;
DROP LINKAGE SOURCE IF EXISTS vaccination;
DROP LINKAGE SOURCE IF EXISTS hospital;
";

/// The queries above, over the linked tables (birth dates stay in the identity zone: by sex).
const LINKED_QUERIES: &[(&str, &str)] = &[
    (
        "claims_by_fy",
        "SELECT fiscal_year, count(*) AS claims, sum(total_points) * 10 AS yen FROM research.medical_claims GROUP BY fiscal_year ORDER BY fiscal_year",
    ),
    ("claims_by_sex", "SELECT sex, count(*), avg(total_points) FROM research.medical_claims GROUP BY 1 ORDER BY 1"),
    ("distinct_patients", "SELECT fiscal_year, count(DISTINCT research_id) FROM research.pharmacy_claims GROUP BY 1 ORDER BY 1"),
    (
        "diabetes_claims",
        "SELECT d.fiscal_year, count(*), sum(m.total_points) FROM claims.claim_diagnoses d JOIN research.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year WHERE d.icd10 LIKE 'E11%' AND d.is_main GROUP BY 1 ORDER BY 1",
    ),
    (
        "checkup_hba1c",
        "SELECT sex, age / 5 * 5 AS band, count(*), avg(hba1c), sum(CASE WHEN hba1c >= 6.5 THEN 1 ELSE 0 END) FROM research.checkups WHERE fiscal_year = 2024 GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    ("filtered_fy_scan", "SELECT count(*), max(total_points) FROM research.medical_claims WHERE fiscal_year = 2023 AND total_points > 2000"),
];

/// Runs statements, skipping those that already took effect in an earlier run.
async fn setup(admin: &Session, sql: &str) -> Result<()> {
    for stmt in kura_engine::parse_sql(sql)? {
        let text = stmt.text.clone();
        if let Err(e) = admin.execute(stmt).await {
            let message = e.to_string();
            if !message.contains("already") {
                anyhow::bail!("policy setup failed at `{text}`: {message}");
            }
        }
    }
    Ok(())
}

/// Medians of each query for each session, alternating sessions; returns per query the medians.
async fn measure(sessions: &[&Session], queries: &[(&str, &str)], runs: usize) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    for (_, sql) in queries {
        for s in sessions {
            run_rows(s, sql).await?;
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); sessions.len()];
        for _ in 0..runs {
            for (i, s) in sessions.iter().enumerate() {
                let t = Instant::now();
                run_rows(s, sql).await?;
                times[i].push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        out.push(times.into_iter().map(median).collect());
    }
    Ok(out)
}

/// The opt-out filter on linked tables: a zone operator (sees everyone) against a researcher
/// (refused persons removed by Kura), same queries, alternating; first right after the `OPT OUT`
/// (read through the filter), then after `REFRESH LINKED TABLE` has put the refused persons'
/// rows in files of their own (read without a filter).
async fn linked(engine: &std::sync::Arc<Engine>, admin: &Session, runs: usize) -> Result<serde_json::Value> {
    setup(admin, include_str!("../../cli/src/linkage.sql")).await?;
    let linked_before = admin.query("SELECT count(*) FROM linkage.research_ids").await.is_ok();
    if !linked_before {
        eprintln!("linking the sources (LINK) ...");
        admin.query("LINK").await?;
    }
    setup(admin, LINKED_SETUP).await?;
    admin
        .query(
            "OPT OUT claims KEYS (SELECT DISTINCT insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '') \
             FROM claims.medical_claims WHERE insured_number LIKE '%07') NOTE 'bench: 1 in 100'",
        )
        .await?;
    let operator = engine.login_session("bench_zone_operator").await?;
    let researcher = engine.login_session("bench_researcher").await?;
    let mut out = serde_json::Map::new();
    for (phase, title) in [("filtered", "right after OPT OUT: through the filter"), ("layout", "after REFRESH: refused persons' files skipped")] {
        if phase == "layout" {
            for table in ["research.medical_claims", "research.pharmacy_claims", "research.checkups"] {
                admin.query(&format!("REFRESH LINKED TABLE {table}")).await?;
            }
        }
        let medians = measure(&[&operator, &researcher], LINKED_QUERIES, runs).await?;
        println!();
        println!("| query (linked tables, {title}) | zone operator ms | researcher, refusals removed ms | ratio |");
        println!("| --- | ---: | ---: | ---: |");
        let (mut log_sum, mut results) = (0.0, Vec::new());
        for ((name, _), m) in LINKED_QUERIES.iter().zip(&medians) {
            let (o, r) = (m[0], m[1]);
            log_sum += (r / o).ln();
            println!("| {name} | {o:.1} | {r:.1} | {:.2} |", r / o);
            results.push(serde_json::json!({ "query": name, "operator_ms": o, "researcher_ms": r, "ratio": r / o }));
        }
        let geomean = (log_sum / LINKED_QUERIES.len() as f64).exp();
        println!("| geometric mean | | | {geomean:.2} |");
        out.insert(phase.into(), serde_json::json!({ "queries": results, "geomean_ratio": geomean }));
    }
    setup(admin, LINKED_CLEANUP).await?;
    Ok(serde_json::Value::Object(out))
}

pub(crate) async fn run(engine: &std::sync::Arc<Engine>, admin: &Session, persons: u64, runs: usize) -> Result<()> {
    // A run stopped half-way may have left the linked part behind.
    setup(admin, LINKED_CLEANUP).await?;
    setup(admin, SETUP).await?;
    let operator = engine.login_session("bench_operator").await?;
    let masked = engine.login_session("bench_masked").await?;
    let analyst = engine.login_session("bench_analyst").await?;
    let mut results = Vec::new();
    println!("| query | no policy (operators) ms | masks (masked_only) ms | ratio | masks + consent filter (analysts) ms | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let (mut masks_log, mut log_ratio_sum, mut compared) = (0.0, 0.0, 0);
    let medians = measure(&[&operator, &masked, &analyst], QUERIES, runs).await?;
    for ((name, _), m) in QUERIES.iter().zip(&medians) {
        let (om, mm, am) = (m[0], m[1], m[2]);
        // Under the masks the identifiers distinct_patients counts are NULL: less work, not the
        // same query; it is shown but left out of the means.
        if *name != "distinct_patients" {
            masks_log += (mm / om).ln();
            log_ratio_sum += (am / om).ln();
            compared += 1;
        }
        println!("| {name} | {om:.1} | {mm:.1} | {:.2} | {am:.1} | {:.2} |", mm / om, am / om);
        results.push(serde_json::json!({
            "query": name, "operator_ms": om, "masked_ms": mm, "masked_ratio": mm / om,
            "analyst_ms": am, "ratio": am / om,
        }));
    }
    let masks_geomean = (masks_log / compared as f64).exp();
    let geomean = (log_ratio_sum / compared as f64).exp();
    println!("| geometric mean (without distinct_patients) | | | {masks_geomean:.2} | | {geomean:.2} |");
    let linked = linked(engine, admin, runs).await?;
    let report = serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339(), "persons": persons, "runs": runs,
        "queries": results, "masked_geomean_ratio": masks_geomean, "geomean_ratio": geomean,
        "linked_optout": linked,
    });
    let out = PathBuf::from("bench/results").join(format!("policies-{persons}.json"));
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
