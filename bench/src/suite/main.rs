//! The benchmark suite (issue 9): TPC-H and cohort queries in Kura (embedded, and over the
//! PostgreSQL protocol with psycopg), in plain DataFusion and in DuckDB, the last two reading
//! the very Parquet files of Kura's tables, with the same thread count; every Kura answer is
//! checked against DuckDB's. `bench/run` installs what it needs and calls this.
//!
//! ```text
//! kura-bench-suite [--sf 1[,10]] [--persons 1000000] [--suites tpch,cohort] [--runs 5]
//!                  [--threads 2] [--no-wire] [--dir bench/work] [--out bench/results]
//!                  [--python PY] [--tpchgen BIN] [--kura BIN] [--set NAME=VALUE]... [--tag NAME]
//!                  [--layout loaded|sorted] [--only NAME]
//! ```
//!
//! Each query runs once in every system as a warm-up (whose answers are compared), then
//! `--runs` times with the systems in a rotating order, so drift hits all alike; the median is
//! reported. `--set` applies a DataFusion setting to Kura's sessions (embedded and wire) to
//! measure a tuning; `--layout sorted` runs on a copy of each warehouse whose big tables are
//! rewritten sorted (see `data::SORTED_TPCH`, `data::SORTED_COHORT`), for all systems alike;
//! `--tag` names the result files (`bench/results/suite[-TAG].{json,csv,md,svg}`).

mod answers;
mod cohort;
mod data;
mod report;
mod systems;
mod tpch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kura_engine::datafusion::prelude::{SessionConfig, SessionContext};
use kura_engine::{Engine, Session};

use report::QueryResult;
use systems::{Helper, Server, System};

struct Args {
    sfs: Vec<f64>,
    persons: u64,
    suites: Vec<String>,
    runs: usize,
    threads: usize,
    wire: bool,
    dir: PathBuf,
    out: PathBuf,
    python: PathBuf,
    tpchgen: Option<PathBuf>,
    kura: Option<PathBuf>,
    settings: Vec<(String, String)>,
    tag: Option<String>,
    only: Option<String>,
    sorted: bool,
}

const USAGE: &str = "\
usage: kura-bench-suite [options]   (bench/run builds and calls it)
  --suites tpch,cohort   suites to run (default both)
  --sf 1[,10]            TPC-H scale factors (default 1)
  --persons N            generator persons for the cohort suite (default 1000000)
  --runs N               timed runs per query after a warm-up, median reported (default 5)
  --threads N            threads for every system (default 2)
  --no-wire              skip Kura over the Postgres protocol
  --layout loaded|sorted tables as loaded, or rewritten sorted with OPTIMIZE ... ORDER BY
  --only NAME            one query (q07, c03...)
  --set NAME=VALUE       a session setting for Kura and plain DataFusion
  --tag T                results as bench/results/suite-T.*
  --dir D, --out D       work and results folders (default bench/work, bench/results)
  --python P, --tpchgen P, --kura P   tools to use
";

fn parse_args() -> Result<Args> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut a = Args {
        sfs: vec![1.0],
        persons: 1_000_000,
        suites: vec!["tpch".into(), "cohort".into()],
        runs: 5,
        threads: 2,
        wire: true,
        dir: PathBuf::from("bench/work"),
        out: PathBuf::from("bench/results"),
        python: PathBuf::from(format!("{home}/.cache/kura-bench/venv/bin/python")),
        tpchgen: None,
        kura: None,
        settings: Vec::new(),
        tag: None,
        only: None,
        sorted: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--sf" => a.sfs = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--persons" => a.persons = value()?.parse()?,
            "--suites" => a.suites = value()?.split(',').map(String::from).collect(),
            "--runs" => a.runs = value()?.parse()?,
            "--threads" => a.threads = value()?.parse()?,
            "--no-wire" => a.wire = false,
            "--dir" => a.dir = PathBuf::from(value()?),
            "--out" => a.out = PathBuf::from(value()?),
            "--python" => a.python = PathBuf::from(value()?),
            "--tpchgen" => a.tpchgen = Some(PathBuf::from(value()?)),
            "--kura" => a.kura = Some(PathBuf::from(value()?)),
            "--set" => {
                let v = value()?;
                let (k, val) = v.split_once('=').context("--set takes NAME=VALUE")?;
                a.settings.push((k.to_string(), val.to_string()));
            }
            "--tag" => a.tag = Some(value()?),
            "--only" => a.only = Some(value()?),
            "--layout" => match value()?.as_str() {
                "sorted" => a.sorted = true,
                "loaded" => a.sorted = false,
                other => bail!("--layout is loaded or sorted, not {other}"),
            },
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (--help lists them)"),
        }
    }
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(a)
}

/// Everything one suite's queries run in.
struct Systems {
    kura: Session,
    datafusion: SessionContext,
    duckdb: Helper,
    wire: Option<(Server, Helper)>,
}

impl Systems {
    fn list(&self) -> Vec<System> {
        let mut v = vec![System::Kura];
        if self.wire.is_some() {
            v.push(System::KuraWire);
        }
        v.extend([System::DataFusion, System::DuckDb]);
        v
    }

    async fn run(&mut self, system: System, sql: &str, want_rows: bool) -> Result<systems::Outcome> {
        match system {
            System::Kura => systems::run_kura(&self.kura, sql, want_rows).await,
            System::KuraWire => self.wire.as_mut().expect("wire started").1.run(sql, want_rows),
            System::DataFusion => systems::run_datafusion(&self.datafusion, sql, want_rows).await,
            System::DuckDb => self.duckdb.run(sql, want_rows),
        }
    }
}

fn kura_settings(args: &Args) -> Vec<String> {
    let mut v = vec![format!("SET datafusion.execution.target_partitions = {}", args.threads)];
    v.extend(args.settings.iter().map(|(k, val)| format!("SET {k} = {val}")));
    v
}

/// Opens the systems over one warehouse and its tables.
async fn open_systems(
    args: &Args,
    engine: &std::sync::Arc<Engine>,
    warehouse: &Path,
    tables: &[&str],
    work: &Path,
    port: u16,
) -> Result<(Systems, Vec<data::PlainTable>)> {
    let session = engine.session("kura");
    for s in kura_settings(args) {
        systems::kura_command(&session, &s).await?;
    }
    let plain = data::export_plain(engine, &session, warehouse, tables, &work.join("plain")).await?;
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(args.threads));
    data::register_datafusion(&ctx, &plain).await?;
    let mut duckdb = Helper::start(&args.python, &["duckdb", &args.threads.to_string()])?;
    duckdb.setup(&data::duckdb_setup(&plain)?)?;
    let wire = if args.wire {
        let kura = match &args.kura {
            Some(p) => p.clone(),
            None => systems::sibling_binary("kura")?,
        };
        Server::init(&kura, warehouse, &session).await?;
        let server = Server::start(&kura, warehouse, port, &work.join("server.log"))?;
        let mut helper = Helper::start(&args.python, &["pg", &server.conninfo])?;
        helper.setup(&kura_settings(args))?;
        Some((server, helper))
    } else {
        None
    };
    Ok((Systems { kura: session, datafusion: ctx, duckdb, wire }, plain))
}

/// Runs each query: a checked warm-up in every system, then `runs` rotations.
async fn run_queries(
    args: &Args,
    suite: &str,
    queries: &[(String, String)],
    sys: &mut Systems,
    failures: &mut Vec<String>,
) -> Result<Vec<QueryResult>> {
    let all = sys.list();
    let mut results = Vec::new();
    for (name, sql) in queries {
        if args.only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let list = &all;
        // Warm-up, with answers.
        let mut answers = BTreeMap::new();
        let mut checks = BTreeMap::new();
        let mut list = list.clone();
        for &system in &list.clone() {
            match sys.run(system, sql, true).await {
                Ok(out) => {
                    answers.insert(system.key(), out);
                }
                // Plain DataFusion is a yardstick, not the system under test: a query it cannot
                // run is reported and left out of its timings.
                Err(e) if system == System::DataFusion => {
                    eprintln!("  ! {suite} {name}: plain DataFusion failed: {e:#}");
                    checks.insert(system.key(), format!("error: {e:#}"));
                    list.retain(|s| *s != system);
                }
                Err(e) => return Err(e.context(format!("{suite} {name} in {}", system.label()))),
            }
        }
        let reference = answers["duckdb"].rows.clone().unwrap_or_default();
        for &system in &list {
            if system == System::DuckDb {
                continue;
            }
            let rows = answers[system.key()].rows.as_ref().expect("rows asked for");
            let check = match answers::compare(rows, &reference) {
                None => "ok".to_string(),
                Some(diff) => {
                    // A wrong Kura answer fails the run; plain DataFusion's is reported only.
                    if system != System::DataFusion {
                        failures.push(format!("{suite} {name}: {} differs from DuckDB: {diff}", system.label()));
                    }
                    eprintln!("  ! {suite} {name}: {} differs from DuckDB: {diff}", system.label());
                    diff
                }
            };
            checks.insert(system.key(), check);
        }
        // Timed runs, rotating the order.
        let mut times: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        for run in 0..args.runs {
            for k in 0..list.len() {
                let system = list[(run + k) % list.len()];
                let out = sys.run(system, sql, false).await.with_context(|| format!("{suite} {name} in {}", system.label()))?;
                times.entry(system.key()).or_default().push(out.ms);
            }
        }
        let ms: BTreeMap<&'static str, f64> = times.into_iter().map(|(k, v)| (k, median(v))).collect();
        let r = QueryResult {
            suite: suite.to_string(),
            query: name.clone(),
            ms,
            rows: answers["duckdb"].nrows,
            checks,
        };
        eprintln!(
            "  {suite} {name}: kura {:.1} ms, wire {}, datafusion {:.1} ms, duckdb {:.1} ms, kura/duckdb {:.2}",
            r.ms["kura"],
            r.ms.get("kura_wire").map(|v| format!("{v:.1} ms")).unwrap_or("-".into()),
            r.ms.get("datafusion").copied().unwrap_or(f64::NAN),
            r.ms["duckdb"],
            r.ratio(System::Kura, System::DuckDb).unwrap_or(f64::NAN)
        );
        results.push(r);
    }
    Ok(results)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn sf_label(sf: f64) -> String {
    format!("tpch-sf{sf}")
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: Option<u64> = meminfo.lines().find(|l| l.starts_with("MemTotal")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok());
    serde_json::json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": mem_kb.map(|k| (k as f64 / 1024.0 / 1024.0).round()),
        "os": std::env::consts::OS,
    })
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let mut results: Vec<QueryResult> = Vec::new();
    let mut failures = Vec::new();
    let mut suites = Vec::new();
    let mut loads = serde_json::Map::new();
    let mut layouts = serde_json::Map::new();
    let mut duckdb_version = String::new();
    let mut psycopg_version = String::new();
    let mut all_systems = Vec::new();
    let mut port = 55_480;

    if args.suites.iter().any(|s| s == "tpch") {
        for &sf in &args.sfs {
            let label = sf_label(sf);
            let work = args.dir.join(&label);
            std::fs::create_dir_all(&work)?;
            let tpchgen = match &args.tpchgen {
                Some(p) => p.clone(),
                None => args.python.with_file_name("tpchgen-cli"),
            };
            let parquet = data::generate_tpch(&tpchgen, sf, &work)?;
            let mut warehouse = work.join("warehouse");
            {
                let engine = Engine::open(&warehouse.to_string_lossy()).await?;
                let loader = engine.session("kura");
                if let Some((secs, rows)) = data::load_tpch(&loader, &warehouse, &parquet).await? {
                    loads.insert(label.clone(), serde_json::json!({"seconds": secs, "rows": rows}));
                }
            }
            let (label, work) = if args.sorted {
                let work = args.dir.join(format!("{label}-sorted"));
                warehouse = data::sorted_copy(&warehouse, &work.join("warehouse"), data::SORTED_TPCH).await?;
                (format!("{label}-sorted"), work)
            } else {
                (label, work)
            };
            let engine = Engine::open(&warehouse.to_string_lossy()).await?;
            let tables: Vec<&str> = tpch::TABLES.iter().map(|(t, _)| *t).collect();
            let (mut sys, plain) = open_systems(&args, &engine, &warehouse, &tables, &work, port).await?;
            port += 1;
            layouts.insert(label.clone(), layout(&plain));
            duckdb_version = sys.duckdb.version.clone();
            if let Some((_, h)) = &sys.wire {
                psycopg_version = h.version.clone();
            }
            all_systems = sys.list();
            let queries: Vec<(String, String)> =
                cohort::load_queries("tpch")?.into_iter().map(|(n, q)| (n, tpch::query_text(&q, sf))).collect();
            eprintln!("== {label}: {} queries, {} runs each", queries.len(), args.runs);
            results.extend(run_queries(&args, &label, &queries, &mut sys, &mut failures).await?);
            suites.push(label);
        }
    }

    if args.suites.iter().any(|s| s == "cohort") {
        let mut label = format!("cohort-{}", args.persons);
        let mut warehouse = data::ensure_cohort_warehouse(&args.dir, args.persons).await?;
        if args.sorted {
            label.push_str("-sorted");
            let to = args.dir.join(&label).join("warehouse");
            warehouse = data::sorted_copy(&warehouse, &to, data::SORTED_COHORT).await?;
        }
        let work = args.dir.join(&label);
        std::fs::create_dir_all(&work)?;
        let engine = Engine::open(&warehouse.to_string_lossy()).await?;
        let (mut sys, plain) = open_systems(&args, &engine, &warehouse, cohort::TABLES, &work, port).await?;
        layouts.insert(label.clone(), layout(&plain));
        duckdb_version = sys.duckdb.version.clone();
        if let Some((_, h)) = &sys.wire {
            psycopg_version = h.version.clone();
        }
        all_systems = sys.list();
        let queries = cohort::load_queries("cohort")?;
        eprintln!("== {label}: {} queries, {} runs each", queries.len(), args.runs);
        results.extend(run_queries(&args, &label, &queries, &mut sys, &mut failures).await?);
        suites.push(label);
    }

    // The goal's figures: TPC-H SF1 and the cohort suite together.
    let goal_set: Vec<&QueryResult> =
        results.iter().filter(|r| [sf_label(1.0), format!("{}-sorted", sf_label(1.0))].contains(&r.suite) || r.suite.starts_with("cohort-")).collect();
    let mut per_suite = serde_json::Map::new();
    for suite in &suites {
        let rs: Vec<&QueryResult> = results.iter().filter(|r| &r.suite == suite).collect();
        per_suite.insert(suite.clone(), serde_json::to_value(report::goal_ratios(&rs))?);
    }
    let goal = report::goal_ratios(&goal_set);
    let date = chrono::Utc::now();
    let json = serde_json::json!({
        "date": date.to_rfc3339(),
        "machine": machine(),
        "versions": {
            "kura_commit": git_commit(),
            "datafusion": "55.2 (Kura's and the plain DataFusion's)",
            "duckdb": duckdb_version,
            "psycopg": psycopg_version,
        },
        "threads": args.threads,
        "runs": args.runs,
        "kura_settings": kura_settings(&args),
        "loads": loads,
        "layouts": layouts,
        "geomean": { "tpch_sf1_and_cohort": goal, "per_suite": per_suite },
        "queries": results.iter().map(|r| serde_json::json!({
            "suite": r.suite, "query": r.query, "median_ms": r.ms, "rows": r.rows, "checks": r.checks,
        })).collect::<Vec<_>>(),
        "failures": failures,
        "seconds": started.elapsed().as_secs_f64(),
    });

    let stem = match &args.tag {
        Some(t) => format!("suite-{t}"),
        None => "suite".to_string(),
    };
    std::fs::create_dir_all(&args.out)?;
    let write = |ext: &str, text: String| -> Result<()> {
        let p = args.out.join(format!("{stem}.{ext}"));
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {}", p.display());
        Ok(())
    };
    write("json", serde_json::to_string_pretty(&json)?)?;
    write("csv", report::csv(&results, &all_systems))?;
    let mut md = format!(
        "{} UTC, {} cores, threads {}, median of {} runs after a warm-up; Kura commit {}, DuckDB {}, psycopg {}.\n",
        date.format("%Y-%m-%d %H:%M"),
        json["machine"]["cores"],
        args.threads,
        args.runs,
        json["versions"]["kura_commit"].as_str().unwrap_or("?"),
        duckdb_version,
        psycopg_version
    );
    md.push_str(&report::markdown(&results, &suites));
    if !goal.is_empty() {
        md.push_str("\nGeometric means over TPC-H SF1 and the cohort suite together:\n\n");
        for (k, v) in &goal {
            md.push_str(&format!("- {k}: {v:.2}\n"));
        }
    }
    print!("{md}");
    write("md", md)?;
    let title = format!("Kura benchmark suite, {} (median ms, log scale)", date.format("%Y-%m-%d"));
    write("svg", report::svg(&results, &suites, &all_systems, &title))?;

    if !failures.is_empty() {
        for f in &failures {
            eprintln!("WRONG ANSWER: {f}");
        }
        bail!("{} wrong answer(s); see above", failures.len());
    }
    Ok(())
}

fn layout(tables: &[data::PlainTable]) -> serde_json::Value {
    tables
        .iter()
        .map(|t| (t.name.clone(), serde_json::json!({"files": t.files, "bytes": t.bytes})))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
