//! Kura's core benchmark: load the generator's output, then run scan-heavy queries in Kura and
//! in plain DataFusion reading the same data as Parquet, alternating systems in one run, and
//! report medians and ratios.
//!
//! `cargo run --release -p kura-bench -- [--persons 1000000] [--dir bench/work] [--runs 5] [--reuse] [--policies]`
//! (`--policies` defaults to `--dir bench/work/policies`)
//!
//! `--reuse` queries the warehouse a previous run loaded instead of loading it again (the report
//! then has no load figures). `--policies` measures what policies cost instead: the same queries
//! as a user whose policies are all the identity (`operators`) and as one with masks and a
//! consent row filter (`analysts`), alternating in one run (see `policies.rs`).

mod policies;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use std::sync::Arc;

use kura_engine::datafusion::arrow::datatypes::{DataType, Schema};
use kura_engine::datafusion::datasource::file_format::parquet::ParquetFormat;
use kura_engine::datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use kura_engine::datafusion::prelude::SessionContext;
use kura_engine::{Engine, Session, StatementOutput};

/// Scan-heavy queries over claims and checkups: (name, SQL).
pub(crate) const QUERIES: &[(&str, &str)] = &[
    (
        "claims_by_fy",
        "SELECT fiscal_year, count(*) AS claims, sum(total_points) * 10 AS yen FROM claims.medical_claims GROUP BY fiscal_year ORDER BY fiscal_year",
    ),
    (
        "claims_by_age_sex",
        "SELECT sex, (fiscal_year - extract(year FROM birth_date)) / 10 AS decade, count(*), avg(total_points) FROM claims.medical_claims GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "distinct_patients",
        "SELECT fiscal_year, count(DISTINCT insurer_number || insured_number || insured_suffix) FROM claims.pharmacy_claims GROUP BY 1 ORDER BY 1",
    ),
    (
        "diabetes_claims",
        "SELECT d.fiscal_year, count(*), sum(m.total_points) FROM claims.claim_diagnoses d JOIN claims.medical_claims m ON d.claim_id = m.claim_id AND d.fiscal_year = m.fiscal_year WHERE d.icd10 LIKE 'E11%' AND d.is_main GROUP BY 1 ORDER BY 1",
    ),
    (
        "checkup_hba1c",
        "SELECT sex, age / 5 * 5 AS band, count(*), avg(hba1c), sum(CASE WHEN hba1c >= 6.5 THEN 1 ELSE 0 END) FROM checkup.results WHERE fiscal_year = 2024 GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    ("filtered_fy_scan", "SELECT count(*), max(total_points) FROM claims.medical_claims WHERE fiscal_year = 2023 AND total_points > 2000"),
];

/// The tables the queries read, exported to Parquet for plain DataFusion.
const TABLES: &[&str] = &["claims.medical_claims", "claims.pharmacy_claims", "claims.claim_diagnoses", "checkup.results"];

struct Args {
    persons: u64,
    dir: PathBuf,
    runs: usize,
    reuse: bool,
    policies: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { persons: 1_000_000, dir: PathBuf::new(), runs: 5, reuse: false, policies: false };
    let mut dir = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--persons" => args.persons = value()?.parse()?,
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--runs" => args.runs = value()?.parse()?,
            "--reuse" => args.reuse = true,
            "--policies" => args.policies = true,
            other => bail!("unknown argument {other}"),
        }
    }
    // The policy benchmark declares and drops linkage sources: a warehouse of its own, apart from
    // the one the suite links for its cohort queries.
    args.dir = dir.unwrap_or_else(|| PathBuf::from(if args.policies { "bench/work/policies" } else { "bench/work" }));
    Ok(args)
}

fn dir_bytes(dir: &Path, ext: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

pub(crate) async fn run_rows(session: &Session, sql: &str) -> Result<usize> {
    let mut stmts = kura_engine::parse_sql(sql)?;
    let out = session.execute(stmts.remove(0)).await?;
    let (_, batches) = out.collect().await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

async fn run_plain(ctx: &SessionContext, sql: &str) -> Result<usize> {
    let df = ctx.sql(sql).await?;
    let batches: Vec<_> = df.execute_stream().await?.try_collect().await?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let source = args.dir.join(format!("source-{}", args.persons));
    if !source.join("load.sql").exists() {
        eprintln!("generating {} persons into {}", args.persons, source.display());
        let started = Instant::now();
        kura_datagen::generate(&kura_datagen::Config {
            persons: args.persons,
            seed: 42,
            out_dir: source.clone(),
            progress: true,
            receipts: false,
        })?;
        eprintln!("generated in {:.1}s", started.elapsed().as_secs_f64());
    }

    // 1. Load throughput.
    let warehouse = args.dir.join(format!("warehouse-{}", args.persons));
    let reuse = args.reuse && warehouse.join("_kura").exists();
    if warehouse.exists() && !reuse {
        std::fs::remove_dir_all(&warehouse)?;
    }
    let engine = Engine::open(&warehouse.to_string_lossy()).await?;
    let mut session = engine.session("kura");
    session.set_base_dir(&source);
    let load = if reuse {
        eprintln!("reusing the loaded warehouse {}", warehouse.display());
        serde_json::Value::Null
    } else {
        let script = std::fs::read_to_string(source.join("load.sql"))?;
        let csv_bytes = dir_bytes(&source, "csv");
        let started = Instant::now();
        let mut rows = 0u64;
        for stmt in kura_engine::parse_sql(&script)? {
            if let StatementOutput::Command { rows: Some(n), .. } = session.execute(stmt).await? {
                rows += n;
            }
        }
        let load_secs = started.elapsed().as_secs_f64();
        eprintln!(
            "load: {:.0} MB of CSV, {rows} rows in {load_secs:.1}s = {:.1} MB/s, {:.0} rows/s",
            csv_bytes as f64 / 1e6,
            csv_bytes as f64 / 1e6 / load_secs,
            rows as f64 / load_secs
        );
        serde_json::json!({
            "csv_bytes": csv_bytes, "rows": rows, "seconds": load_secs,
            "mb_per_s": csv_bytes as f64 / 1e6 / load_secs, "rows_per_s": rows as f64 / load_secs,
        })
    };

    if args.policies {
        return policies::run(&engine, &session, args.persons, args.runs).await;
    }

    // 2. Plain DataFusion reads the very Parquet files of Kura's Delta tables (as a Hive-style
    //    listing), so the ratio is what Kura's Delta log, catalog and session layers cost.
    let plain = SessionContext::new();
    let warehouse_dir = warehouse.canonicalize()?;
    for table in TABLES {
        let (schema_name, table_name) = table.split_once('.').unwrap();
        let entry = engine.catalog().cached().state.table(schema_name, table_name)?.clone();
        let table_dir = warehouse_dir.join(&entry.location);
        if std::fs::read_dir(table_dir.join("_delta_log"))?.flatten().any(|e| e.file_name().to_string_lossy().contains("checkpoint")) {
            bail!("{table} has a checkpoint; the plain listing would read it as data");
        }
        let mut stmts = kura_engine::parse_sql(&format!("SELECT * FROM {table} LIMIT 0"))?;
        let StatementOutput::Rows(stream) = session.execute(stmts.remove(0)).await? else { bail!("no schema") };
        let full = stream.schema();
        let partition_cols: Vec<(String, DataType)> = entry
            .partition_columns
            .iter()
            .map(|c| Ok((c.clone(), full.field_with_name(c)?.data_type().clone())))
            .collect::<Result<_>>()?;
        let file_fields: Vec<_> =
            full.fields().iter().filter(|f| !entry.partition_columns.contains(f.name())).cloned().collect();
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let url = ListingTableUrl::parse(format!("{}/", table_dir.display()))?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(Arc::new(Schema::new(file_fields)));
        plain.sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema_name}")).await?.collect().await?;
        plain.register_table(*table, Arc::new(ListingTable::try_new(config)?))?;
    }

    // 3. Queries, alternating systems, one warm-up each.
    let mut results = Vec::new();
    println!("| query | Kura ms | DataFusion on the same Parquet files ms | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    let mut log_ratio_sum = 0.0;
    for (name, sql) in QUERIES {
        let kura_rows = run_rows(&session, sql).await?;
        let plain_rows = run_plain(&plain, sql).await?;
        if kura_rows != plain_rows {
            bail!("{name}: Kura returned {kura_rows} rows, DataFusion {plain_rows}");
        }
        let (mut k, mut p) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let t = Instant::now();
            run_rows(&session, sql).await?;
            k.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            run_plain(&plain, sql).await?;
            p.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (km, pm) = (median(k), median(p));
        log_ratio_sum += (km / pm).ln();
        println!("| {name} | {km:.1} | {pm:.1} | {:.2} |", km / pm);
        results.push(serde_json::json!({"query": name, "kura_ms": km, "datafusion_ms": pm, "ratio": km / pm}));
    }
    let geomean = (log_ratio_sum / QUERIES.len() as f64).exp();
    println!("| geometric mean | | | {geomean:.2} |");
    let report = serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339(), "persons": args.persons, "runs": args.runs,
        "load": load, "queries": results, "geomean_ratio": geomean,
    });
    let name = if reuse { format!("core-{}-queries.json", args.persons) } else { format!("core-{}.json", args.persons) };
    let out = PathBuf::from("bench/results").join(name);
    std::fs::create_dir_all(out.parent().unwrap())?;
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
