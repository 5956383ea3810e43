//! What policies cost: the core benchmark's queries as a user whose policies fold to the
//! identity (`operators`: the raw tables) and as one who reads through masks on the identity
//! columns and a consent row filter that reads another table (`analysts`), alternating in one
//! run. The goal is at most 10% (PostgreSQL Anonymizer documents 20-30% for dynamic masking),
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
CREATE USER bench_operator IN ROLE operators;
CREATE USER bench_analyst IN ROLE analysts;
GRANT SELECT ON ALL TABLES IN SCHEMA claims TO operators, analysts;
GRANT SELECT ON ALL TABLES IN SCHEMA checkup TO operators, analysts;
CREATE SCHEMA consent;
CREATE TABLE consent.optout AS SELECT DISTINCT insured_number FROM claims.medical_claims WHERE insured_number LIKE '%07';
CREATE OR REPLACE MASKING POLICY identity_text AS (v TEXT) RETURNS TEXT -> CASE WHEN is_member('operators') THEN v END;
CREATE OR REPLACE MASKING POLICY birth_month AS (v DATE) RETURNS DATE ->
  CASE WHEN is_member('operators') THEN v ELSE CAST(date_trunc('month', v) AS DATE) END;
CREATE OR REPLACE ROW ACCESS POLICY optout AS (n TEXT) RETURNS BOOLEAN ->
  is_member('operators') OR NOT EXISTS (SELECT 1 FROM consent.optout o WHERE o.insured_number = n);
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
    let analyst = engine.login_session("bench_analyst").await?;
    let mut results = Vec::new();
    println!("| query | no policy (operators) ms | masks + consent filter (analysts) ms | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    let mut log_ratio_sum = 0.0;
    for (name, sql) in QUERIES {
        run_rows(&operator, sql).await?;
        run_rows(&analyst, sql).await?;
        let (mut o, mut a) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            run_rows(&operator, sql).await?;
            o.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            run_rows(&analyst, sql).await?;
            a.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (om, am) = (median(o), median(a));
        log_ratio_sum += (am / om).ln();
        println!("| {name} | {om:.1} | {am:.1} | {:.2} |", am / om);
        results.push(serde_json::json!({"query": name, "operator_ms": om, "analyst_ms": am, "ratio": am / om}));
    }
    let geomean = (log_ratio_sum / QUERIES.len() as f64).exp();
    println!("| geometric mean | | | {geomean:.2} |");
    let report = serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339(), "persons": persons, "runs": runs,
        "queries": results, "geomean_ratio": geomean,
    });
    let out = PathBuf::from("bench/results").join(format!("policies-{persons}.json"));
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
