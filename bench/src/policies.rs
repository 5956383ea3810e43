//! What policies cost: the core benchmark's queries as a user whose policies fold to the
//! identity (`operators`: the raw tables), as one who reads through masks on the identity
//! columns only (`masked_only`), and as one with the masks and a consent row filter that reads
//! another table (`analysts`), alternating in one run. The goal is at most 10% (PostgreSQL Anonymizer documents 20-30% for dynamic masking),
//! with safe predicates still pruning files (`filtered_fy_scan` filters a partition column).

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

pub(crate) async fn run(engine: &std::sync::Arc<Engine>, admin: &Session, persons: u64, runs: usize) -> Result<()> {
    for stmt in kura_engine::parse_sql(SETUP)? {
        let text = stmt.text.clone();
        if let Err(e) = admin.execute(stmt).await {
            let message = e.to_string();
            if !message.contains("already") {
                anyhow::bail!("policy setup failed at `{text}`: {message}");
            }
        }
    }
    let operator = engine.login_session("bench_operator").await?;
    let masked = engine.login_session("bench_masked").await?;
    let analyst = engine.login_session("bench_analyst").await?;
    let mut results = Vec::new();
    println!("| query | no policy (operators) ms | masks (masked_only) ms | ratio | masks + consent filter (analysts) ms | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let (mut masks_log, mut log_ratio_sum, mut compared) = (0.0, 0.0, 0);
    for (name, sql) in QUERIES {
        for s in [&operator, &masked, &analyst] {
            run_rows(s, sql).await?;
        }
        let mut times: [Vec<f64>; 3] = Default::default();
        for _ in 0..runs {
            for (i, s) in [&operator, &masked, &analyst].into_iter().enumerate() {
                let t = Instant::now();
                run_rows(s, sql).await?;
                times[i].push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let [o, m, a] = times;
        let (om, mm, am) = (median(o), median(m), median(a));
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
    let report = serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339(), "persons": persons, "runs": runs,
        "queries": results, "masked_geomean_ratio": masks_geomean, "geomean_ratio": geomean,
    });
    let out = PathBuf::from("bench/results").join(format!("policies-{persons}.json"));
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
