//! The systems a suite runs a query in: Kura embedded, Kura over the PostgreSQL protocol
//! (psycopg), plain DataFusion and DuckDB (both reading the Parquet files of Kura's tables).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;

use kura_engine::datafusion::prelude::SessionContext;
use kura_engine::{Session, StatementOutput};

use crate::answers::{self, Rows};

/// A system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Kura,
    KuraWire,
    DataFusion,
    DuckDb,
}

impl System {
    pub fn key(self) -> &'static str {
        match self {
            Self::Kura => "kura",
            Self::KuraWire => "kura_wire",
            Self::DataFusion => "datafusion",
            Self::DuckDb => "duckdb",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Kura => "Kura embedded",
            Self::KuraWire => "Kura over the wire (psycopg)",
            Self::DataFusion => "DataFusion on the same Parquet",
            Self::DuckDb => "DuckDB on the same Parquet",
        }
    }
}

/// One timed execution: milliseconds, row count and (when asked) the rows.
pub struct Outcome {
    pub ms: f64,
    pub rows: Option<Rows>,
    pub nrows: usize,
}

pub async fn run_kura(session: &Session, sql: &str, want_rows: bool) -> Result<Outcome> {
    let started = Instant::now();
    let mut stmts = kura_engine::parse_sql(sql)?;
    if stmts.len() != 1 {
        bail!("expected one statement, got {}", stmts.len());
    }
    let out = session.execute(stmts.remove(0)).await?;
    let (_, batches) = out.collect().await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let nrows = batches.iter().map(|b| b.num_rows()).sum();
    let rows = if want_rows { Some(answers::from_batches(&batches)?) } else { None };
    Ok(Outcome { ms, rows, nrows })
}

/// Runs a statement in Kura and discards its output (DDL, COPY, SET).
pub async fn kura_command(session: &Session, sql: &str) -> Result<Option<u64>> {
    let mut rows = None;
    for stmt in kura_engine::parse_sql(sql)? {
        match session.execute(stmt).await? {
            StatementOutput::Command { rows: n, .. } => rows = n,
            other => {
                other.collect().await?;
            }
        }
    }
    Ok(rows)
}

pub async fn run_datafusion(ctx: &SessionContext, sql: &str, want_rows: bool) -> Result<Outcome> {
    let started = Instant::now();
    let df = ctx.sql(sql).await?;
    let batches: Vec<_> = df.execute_stream().await?.try_collect().await?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let nrows = batches.iter().map(|b| b.num_rows()).sum();
    let rows = if want_rows { Some(answers::from_batches(&batches)?) } else { None };
    Ok(Outcome { ms, rows, nrows })
}

/// A Python helper process (`bench/suite_helper.py`) running DuckDB or psycopg; it times each
/// query itself, from sending it to holding the whole result.
pub struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub version: String,
}

impl Helper {
    pub fn start(python: &Path, args: &[&str]) -> Result<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("suite_helper.py");
        let mut child = Command::new(python)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
        let stdin = child.stdin.take().context("helper stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("helper stdout")?);
        let mut helper = Self { child, stdin, stdout, version: String::new() };
        let ready = helper.read()?;
        helper.version = ready["version"].as_str().unwrap_or("?").to_string();
        Ok(helper)
    }

    fn read(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the Python helper exited");
        }
        Ok(serde_json::from_str(&line)?)
    }

    fn request(&mut self, req: serde_json::Value) -> Result<serde_json::Value> {
        writeln!(self.stdin, "{req}")?;
        self.stdin.flush()?;
        let answer = self.read()?;
        if let Some(e) = answer.get("error") {
            bail!("{}", e.as_str().unwrap_or("error"));
        }
        Ok(answer)
    }

    pub fn setup(&mut self, stmts: &[String]) -> Result<()> {
        self.request(serde_json::json!({ "setup": stmts }))?;
        Ok(())
    }

    pub fn run(&mut self, sql: &str, want_rows: bool) -> Result<Outcome> {
        let a = self.request(serde_json::json!({ "sql": sql, "rows": want_rows }))?;
        Ok(Outcome {
            ms: a["ms"].as_f64().context("no ms")?,
            nrows: a["nrows"].as_u64().unwrap_or(0) as usize,
            rows: want_rows.then(|| answers::from_json(&a["rows"])),
        })
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kura serve` on a warehouse, stopped when dropped.
pub struct Server {
    child: Child,
    pub conninfo: String,
}

pub const BENCH_PASSWORD: &str = "kura-bench";

impl Server {
    /// Makes sure the superuser `kura` logs in with [`BENCH_PASSWORD`]: `kura init` on a new
    /// warehouse, `ALTER USER` on one that has users already.
    pub async fn init(kura: &Path, warehouse: &Path, session: &Session) -> Result<()> {
        let init = Command::new(kura)
            .args(["init", "--data"])
            .arg(warehouse)
            .env("KURA_ADMIN_PASSWORD", BENCH_PASSWORD)
            .output()
            .with_context(|| format!("running {}", kura.display()))?;
        if !init.status.success() {
            if !String::from_utf8_lossy(&init.stderr).contains("already initialised") {
                bail!("kura init failed: {}", String::from_utf8_lossy(&init.stderr));
            }
            kura_command(session, &format!("ALTER USER kura PASSWORD '{BENCH_PASSWORD}'")).await?;
        }
        Ok(())
    }

    pub fn start(kura: &Path, warehouse: &Path, port: u16, log: &Path) -> Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(kura)
            .args(["serve", "--data"])
            .arg(warehouse)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--query-memory", "16GB"])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()?;
        let mut server = Self {
            child,
            conninfo: format!(
                "host=127.0.0.1 port={port} user=kura password={BENCH_PASSWORD} dbname=kura sslmode=disable"
            ),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::fs::read_to_string(log).unwrap_or_default().contains("serving on") {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("kura serve exited ({status}); see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!("kura serve did not start in 60 s; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder beside the current executable (where `kura` is built too).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name(name))
}
