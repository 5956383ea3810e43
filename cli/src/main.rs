//! `kura`: the command-line front door of the Kura lakehouse.
//!
//! `kura demo` builds and serves a demo warehouse from synthetic data; `kura init` and
//! `kura serve` set up and serve a warehouse over the PostgreSQL protocol; `kura sql` runs SQL
//! against a warehouse in-process; `kura datagen` writes synthetic source files; `kura migrate`
//! moves a warehouse between locations.

mod progress;
mod render;
mod repl;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kura_engine::{Engine, Session};

#[derive(Parser, Debug)]
#[command(name = "kura", version, about = "Kura (蔵): an analytical lakehouse for Japanese medical data")]
struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run SQL against a warehouse: -c "SQL", -f file.sql, or an interactive prompt.
    Sql {
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
        /// SQL to run (may be repeated; each may hold several statements).
        #[arg(short = 'c', long = "command")]
        commands: Vec<String>,
        /// A SQL script to run. Relative COPY paths in it resolve against its folder.
        #[arg(short = 'f', long = "file")]
        files: Vec<PathBuf>,
        /// Print results as CSV instead of aligned tables.
        #[arg(long)]
        csv: bool,
        /// Do not print statement timings.
        #[arg(long)]
        no_timing: bool,
    },
    /// Write a synthetic municipality's source files (resident register, claims, checkups, care,
    /// vaccinations, hospital records), a ground-truth file and load.sql.
    Datagen {
        /// Number of persons.
        #[arg(long, default_value_t = 10_000)]
        persons: u64,
        /// Random seed; the same seed gives the same files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Do not also write the claims as electronic receipt files (receipts/, for
        /// `kura import receipts`).
        #[arg(long)]
        no_receipts: bool,
    },
    /// Build a demo warehouse from synthetic data and open it.
    Demo {
        /// Folder for the demo (source files and warehouse).
        #[arg(long, default_value = "./kura-demo")]
        data: PathBuf,
        /// Number of synthetic persons.
        #[arg(long, default_value_t = 10_000)]
        persons: u64,
        /// Address to serve the demo on (PostgreSQL protocol).
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: std::net::SocketAddr,
        /// Rebuild even if the demo warehouse already exists.
        #[arg(long)]
        fresh: bool,
        /// Build the demo warehouse, print how to use it, and exit without serving.
        #[arg(long, alias = "no-prompt")]
        no_serve: bool,
    },
    /// Link the declared linkage sources into research IDs (名寄せ) and print the quality report
    /// (the SQL statement `LINK`; declare sources with CREATE LINKAGE SOURCE).
    Link {
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
        /// A query returning (source, source_key, person) to measure precision, recall and F1 against.
        #[arg(long)]
        ground_truth: Option<String>,
        /// Link only keys that have no research ID yet into the existing persons (LINK NEW),
        /// instead of re-examining every pair (LINK ALL).
        #[arg(long)]
        new: bool,
        /// Print the report as CSV.
        #[arg(long)]
        csv: bool,
    },
    /// Create a warehouse's first superuser `kura` (password from KURA_ADMIN_PASSWORD, or
    /// generated and printed once).
    Init {
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
    },
    /// Import tables from another database into this warehouse.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Copy a whole warehouse to another location (folder <-> S3, S3 -> S3), resumably and
    /// verified; run it again to copy what changed; --cutover to finish the move.
    Migrate {
        /// Source warehouse: a folder, file:// or s3://bucket/prefix.
        #[arg(long)]
        from: String,
        /// Destination: an empty location, or one an earlier run of this migration filled.
        #[arg(long, required_unless_present = "reopen")]
        to: Option<String>,
        /// Only list what would be copied and removed.
        #[arg(long)]
        dry_run: bool,
        /// Make the source read-only, copy the last changes, verify, and print the new URL.
        #[arg(long)]
        cutover: bool,
        /// Lift the read-only flag a cutover left on --from (roll back to the old location).
        #[arg(long, conflicts_with_all = ["to", "dry_run", "cutover"])]
        reopen: bool,
        /// Objects transferred at once.
        #[arg(long, default_value_t = 16)]
        jobs: usize,
        /// Bandwidth cap across all transfers, per second (e.g. 50MB).
        #[arg(long, value_parser = parse_size)]
        bandwidth: Option<usize>,
        /// Objects this large or larger are uploaded in parts (e.g. 32MB).
        #[arg(long, default_value = "200MB", value_parser = parse_size)]
        multipart_threshold: usize,
        /// Part size of multipart uploads (at least 5MB for S3).
        #[arg(long, default_value = "16MB", value_parser = parse_size)]
        part_size: usize,
        /// Also write the report as JSON to this file (and as text next to it, .txt).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Seconds a location may take to answer before it is called unreachable.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Serve a warehouse over the PostgreSQL protocol (psql, drivers, BI tools).
    Serve {
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: std::net::SocketAddr,
        /// TLS certificate chain (PEM).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Refuse connections without TLS, except from loopback.
        #[arg(long)]
        require_tls: bool,
        /// Memory one statement may use (e.g. 512MB, 2GB); sorts and joins spill to disk beyond
        /// it, other statements fail alone. 0 means no limit.
        #[arg(long, default_value = "2GB", value_parser = parse_size)]
        query_memory: usize,
        /// Audit trail: `on` (each statement's record journaled before it is acknowledged),
        /// `sync` (also fsynced: survives a machine crash), or `off` (for benchmarks only).
        #[arg(long, default_value = "on", value_parser = ["on", "sync", "off"])]
        audit: String,
    },
    /// The audit trail: `kura audit verify` checks its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Provisions (made with the SQL statement PROVIDE): `kura provision verify DIR` checks a
    /// provision's files against its manifest.
    Provision {
        #[command(subcommand)]
        command: ProvisionCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// Copy tables from a live PostgreSQL server (types mapped, streamed, verified by row counts
    /// and checksums on both sides); run it again to resume after a failure.
    Postgres {
        /// postgres://user@host:port/db or "host=... dbname=..."; without a password in it,
        /// PGPASSWORD is used.
        #[arg(long, env = "KURA_IMPORT_DSN")]
        dsn: String,
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
        /// PostgreSQL schema to read.
        #[arg(long, default_value = "public")]
        schema: String,
        /// Tables to import, comma-separated (default: every table of the schema).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Kura schema to create the tables in (default: the PostgreSQL schema's name).
        #[arg(long)]
        into: Option<String>,
        /// Tables imported at once.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Load claims files in the electronic receipt format (レセプト電算: *.UKE, Shift_JIS) into
    /// normalised tables: claims, insurers, diagnoses, procedures, drugs, materials.
    Receipts {
        /// A claims file or a folder of them (searched at any depth).
        dir: PathBuf,
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
        /// Schema of the tables (created if missing).
        #[arg(long, default_value = "receipts")]
        schema: String,
        /// What a malformed record does: abort (load nothing) or skip (leave out its receipt,
        /// list it in <schema>.receipt_rejects, load the rest).
        #[arg(long, default_value = "abort", value_parser = ["abort", "skip"])]
        on_error: String,
        /// Encoding of the files.
        #[arg(long, default_value = "shift_jis", value_parser = ["shift_jis", "utf8"])]
        encoding: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProvisionCommand {
    /// Check each file's SHA-256 against manifest.json and, with --data, the manifest against the
    /// warehouse's record of the provision.
    Verify {
        /// The provision's folder.
        dir: PathBuf,
        /// The warehouse that made it.
        #[arg(long, env = "KURA_DATA")]
        data: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check that no audit record was changed, removed or reordered; prints the chain's head
    /// (keep it outside the warehouse and pass it to later runs with --head).
    Verify {
        /// Warehouse location: a folder, file://, s3://bucket/prefix or memory://name.
        #[arg(long, env = "KURA_DATA", default_value = "./kura-data")]
        data: String,
        /// A head printed by an earlier verify (`SEQ:HASH`): the chain must still reach it.
        #[arg(long)]
        head: Option<String>,
    },
}

/// Opens a warehouse with the audit trail on (every command's statements are audited).
async fn open_audited(data: &str) -> Result<std::sync::Arc<Engine>> {
    let options = kura_engine::EngineOptions { audit: kura_engine::audit::AuditOptions::on(), ..Default::default() };
    Engine::open_with(data, options).await.with_context(|| format!("cannot open warehouse {data}"))
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info,kura=info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kura: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ERROR: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Sql { data, commands, files, csv, no_timing } => {
            let engine = open_audited(&data).await?;
            let code = run_sql(&engine, commands, files, render::Output { csv, timing: !no_timing }).await;
            engine.flush_audit().await.context("the audit trail could not be written")?;
            code
        }
        Command::Audit { command: AuditCommand::Verify { data, head } } => {
            let head = match head {
                Some(h) => {
                    let (seq, hash) = h.split_once(':').context("--head takes SEQ:HASH as printed by `kura audit verify`")?;
                    Some((seq.parse().context("--head: SEQ must be a number")?, hash.to_string()))
                }
                None => None,
            };
            let engine = Engine::open(&data).await.with_context(|| format!("cannot open warehouse {data}"))?;
            let report = kura_engine::audit::verify(&engine, head).await?;
            for p in &report.problems {
                println!("TAMPERED: {p}");
            }
            let head = report.head.as_ref().map(|(s, h)| format!("{s}:{h}")).unwrap_or_else(|| "none".into());
            if report.ok() {
                println!("audit trail intact: {} records; head {head}", report.records);
                Ok(std::process::ExitCode::SUCCESS)
            } else {
                println!("audit trail NOT intact: {} problem(s) in {} records; head {head}", report.problems.len(), report.records);
                Ok(std::process::ExitCode::FAILURE)
            }
        }
        Command::Provision { command: ProvisionCommand::Verify { dir, data } } => {
            let engine = match &data {
                Some(d) => Some(Engine::open(d).await.with_context(|| format!("cannot open warehouse {d}"))?),
                None => None,
            };
            let (id, problems) = kura_engine::verify_provision(&dir, engine.as_deref()).await?;
            for p in &problems {
                println!("NOT VERIFIED: {p}");
            }
            if problems.is_empty() {
                let against = if data.is_some() { "its manifest and the warehouse's record" } else { "its manifest" };
                println!("provision {id} verifies against {against}");
                Ok(std::process::ExitCode::SUCCESS)
            } else {
                Ok(std::process::ExitCode::FAILURE)
            }
        }
        Command::Link { data, ground_truth, new, csv } => {
            let engine = open_audited(&data).await?;
            let mut session = engine.session("kura");
            session.set_progress(progress::TerminalProgress::new());
            let mode = if new { "LINK NEW" } else { "LINK ALL" };
            let sql = match ground_truth {
                Some(q) => format!("{mode} WITH GROUND TRUTH ({q})"),
                None => mode.to_string(),
            };
            let out = render::Output { csv, timing: true };
            let ok = run_script(&session, &sql, &out).await;
            engine.flush_audit().await.context("the audit trail could not be written")?;
            Ok(if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
        }
        Command::Datagen { persons, seed, out, no_receipts } => {
            datagen(persons, seed, &out, !no_receipts)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Demo { data, persons, listen, fresh, no_serve } => demo(data, persons, listen, fresh, no_serve).await,
        Command::Init { data } => init(&data).await,
        Command::Import { command: ImportCommand::Postgres { dsn, data, schema, tables, into, jobs, report } } => {
            let mut options = kura_pgimport::ImportOptions::new(dsn);
            options.schema = schema;
            options.tables = tables;
            options.into = into;
            options.jobs = jobs;
            import_postgres(&data, &options, report.as_deref()).await
        }
        Command::Import { command: ImportCommand::Receipts { dir, data, schema, on_error, encoding } } => {
            import_receipts(&data, &dir, &schema, &on_error, &encoding).await
        }
        Command::Migrate {
            from,
            to,
            dry_run,
            cutover,
            reopen,
            jobs,
            bandwidth,
            multipart_threshold,
            part_size,
            report,
            timeout,
        } => {
            if reopen {
                return migrate_reopen(&from).await;
            }
            let mut options = kura_migrate::MigrateOptions::new(from, to.unwrap_or_default());
            options.dry_run = dry_run;
            options.cutover = cutover;
            options.jobs = jobs;
            options.bandwidth = bandwidth.map(|b| b as u64);
            options.transfer.multipart_threshold = multipart_threshold as u64;
            options.transfer.part_size = part_size;
            options.progress = render::stderr_is_terminal();
            options.timeout = std::time::Duration::from_secs(timeout);
            migrate(&options, report.as_deref()).await
        }
        Command::Serve { data, listen, tls_cert, tls_key, require_tls, query_memory, audit } => {
            let audit = match audit.as_str() {
                "off" => {
                    tracing::warn!("the audit trail is off: statements are not recorded");
                    kura_engine::audit::AuditOptions::default()
                }
                "sync" => kura_engine::audit::AuditOptions { sync_each: true, ..kura_engine::audit::AuditOptions::on() },
                _ => kura_engine::audit::AuditOptions::on(),
            };
            let options = kura_engine::EngineOptions { query_memory_limit: (query_memory > 0).then_some(query_memory), audit };
            let engine =
                Engine::open_with(&data, options).await.with_context(|| format!("cannot open warehouse {data}"))?;
            if engine.catalog().cached().state.roles.is_empty() {
                bail!("warehouse {data} has no users yet; run `kura init --data {data}` first");
            }
            let config = kura_server::ServerConfig { listen, tls: tls_cert.zip(tls_key), require_tls };
            serve(engine, config).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// Parses sizes such as `512MB`, `2GB`, `1048576`.
fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim().to_ascii_uppercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("\"{text}\" is not a size such as 512MB or 2GB"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "KB" | "K" | "KIB" => 1 << 10,
        "MB" | "M" | "MIB" => 1 << 20,
        "GB" | "G" | "GIB" => 1 << 30,
        _ => return Err(format!("\"{text}\": unknown unit (use B, KB, MB or GB)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("\"{text}\" is too large"))
}

/// Runs a migration and prints its report (and, with --dry-run, what would move).
async fn migrate(options: &kura_migrate::MigrateOptions, report_file: Option<&std::path::Path>) -> Result<std::process::ExitCode> {
    let report = kura_migrate::migrate(options).await?;
    if options.dry_run {
        for (path, bytes) in &report.would_copy {
            println!("copy   {path} ({bytes} bytes)");
        }
        for path in &report.would_remove {
            println!("remove {path}");
        }
    }
    print!("{}", report.to_text());
    if let Some(file) = report_file {
        std::fs::write(file, serde_json::to_vec_pretty(&report)?).with_context(|| format!("cannot write {}", file.display()))?;
        std::fs::write(file.with_extension("txt"), report.to_text())?;
    }
    if !report.ok {
        eprintln!("ERROR: the copy does not match the source (see the tables marked DIFF); the source is unchanged{}",
            if report.cutover { " but read-only: lift that with `kura migrate --reopen --from SOURCE`" } else { "" });
        return Ok(std::process::ExitCode::FAILURE);
    }
    if report.cutover {
        println!("The warehouse now lives at {}; serve it with:", report.destination);
        println!("  kura serve --data {}", report.destination);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn import_postgres(data: &str, options: &kura_pgimport::ImportOptions, report_file: Option<&std::path::Path>) -> Result<std::process::ExitCode> {
    let engine = open_audited(data).await?;
    let session = engine.session("kura");
    let report = kura_pgimport::import(&session, options).await;
    engine.flush_audit().await.context("the audit trail could not be written")?;
    let report = report?;
    print!("{}", report.to_text());
    if let Some(file) = report_file {
        std::fs::write(file, serde_json::to_vec_pretty(&report)?).with_context(|| format!("cannot write {}", file.display()))?;
    }
    if !report.ok {
        eprintln!("ERROR: some tables were not imported or do not match PostgreSQL (see FAIL/DIFF above); run the command again to resume");
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `kura import receipts`: `COPY schema FROM 'dir' WITH (FORMAT receipt ...)` as superuser
/// `kura`, then a summary of what was loaded and rejected.
async fn import_receipts(data: &str, dir: &std::path::Path, schema: &str, on_error: &str, encoding: &str) -> Result<std::process::ExitCode> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let engine = open_audited(data).await?;
    let mut session = engine.session("kura");
    session.set_progress(progress::TerminalProgress::new());
    let ident = format!("\"{}\"", schema.replace('"', "\"\""));
    let literal = dir.to_string_lossy().replace('\'', "''");
    let started = Instant::now();
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let result = async {
        session.execute_all(&format!("CREATE SCHEMA IF NOT EXISTS {ident}")).await?;
        let copy = format!("COPY {ident} FROM '{literal}' WITH (FORMAT receipt, ON_ERROR '{on_error}', ENCODING '{encoding}')");
        session.execute_all(&copy).await
    }
    .await;
    let outcome = match result {
        Ok(outputs) => {
            let loaded = outputs.last().and_then(|(_, o)| match o {
                kura_engine::StatementOutput::Command { rows, .. } => *rows,
                _ => None,
            });
            let secs = started.elapsed().as_secs_f64();
            println!("loaded {} receipts from {} into {schema}.claims in {secs:.1}s", loaded.unwrap_or(0), dir.display());
            let rejects = session
                .query(&format!(
                    "SELECT file, line, record_type, error FROM {ident}.receipt_rejects \
                     WHERE CAST(rejected_at AS BIGINT) >= {since} ORDER BY file, line"
                ))
                .await?;
            let rows: usize = rejects.iter().map(|b| b.num_rows()).sum();
            if let (true, Some(first)) = (rows > 0, rejects.first()) {
                println!("rejected (their receipts were left out; listed in {schema}.receipt_rejects):");
                render::print_table(&first.schema(), &rejects)?;
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    engine.flush_audit().await.context("the audit trail could not be written")?;
    outcome
}

/// Lifts a cutover's read-only flag.
async fn migrate_reopen(from: &str) -> Result<std::process::ExitCode> {
    match kura_migrate::reopen(from).await? {
        Some(moved_to) => println!("{from} accepts writes again (it had been moved to {moved_to}; that copy is left as it is)."),
        None => println!("{from} was not read-only; nothing changed."),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Creates the first superuser of a warehouse.
async fn init(data: &str) -> Result<std::process::ExitCode> {
    let engine = open_audited(data).await?;
    if !engine.catalog().cached().state.roles.is_empty() {
        bail!("warehouse {data} is already initialised (it has users); manage them with CREATE/ALTER USER");
    }
    let (password, generated) = match std::env::var("KURA_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (random_password(), true),
    };
    let session = engine.session("kura");
    session
        .execute_all(&format!("CREATE USER kura WITH SUPERUSER PASSWORD '{}'", password.replace('\'', "''")))
        .await?;
    engine.flush_audit().await.context("the audit trail could not be written")?;
    println!("Initialised warehouse {data} with superuser `kura`.");
    if generated {
        println!("Its password (shown once, store it now): {password}");
    } else {
        println!("Its password is the one in KURA_ADMIN_PASSWORD.");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..24).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// Serves until SIGTERM or Ctrl-C.
async fn serve(engine: std::sync::Arc<Engine>, config: kura_server::ServerConfig) -> Result<()> {
    let engine_for_flush = engine.clone();
    let server = kura_server::Server::bind(engine, config).await?;
    // Handlers first: a SIGTERM right after the address is announced must stop the server
    // cleanly, not kill it.
    let shutdown = shutdown_signal()?;
    eprintln!("Kura is serving on {} (stop with Ctrl-C).", server.local_addr()?);
    server.run(shutdown).await;
    if let Err(e) = engine_for_flush.flush_audit().await {
        eprintln!("WARNING: the last audit records stay in the journal (flushed at the next start): {e}");
    }
    eprintln!("Kura stopped.");
    Ok(())
}

/// Installs the SIGTERM and Ctrl-C handlers now and returns the future that waits for either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
    })
}

fn datagen(persons: u64, seed: u64, out: &std::path::Path, receipts: bool) -> Result<()> {
    let started = Instant::now();
    let config =
        kura_datagen::Config { persons, seed, out_dir: out.to_path_buf(), progress: render::stderr_is_terminal(), receipts };
    let summary = kura_datagen::generate(&config).context("data generation failed")?;
    let bytes: u64 = summary.files.iter().map(|f| f.bytes).sum();
    eprintln!(
        "generated {} files ({:.1} MB) for {persons} persons in {:.1}s into {}",
        summary.files.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// `kura sql`: the commands, then the files, or the interactive prompt without either.
async fn run_sql(engine: &std::sync::Arc<Engine>, commands: Vec<String>, files: Vec<PathBuf>, out: render::Output) -> Result<std::process::ExitCode> {
    let mut session = engine.session("kura");
    session.set_progress(progress::TerminalProgress::new());
    if commands.is_empty() && files.is_empty() {
        repl::run(&mut session, out).await?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    for sql in &commands {
        if !run_script(&session, sql, &out).await {
            return Ok(std::process::ExitCode::FAILURE);
        }
    }
    for file in &files {
        let sql = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let dir = file.canonicalize()?.parent().map(PathBuf::from).unwrap_or_default();
        session.set_base_dir(dir);
        if !run_script(&session, &sql, &out).await {
            return Ok(std::process::ExitCode::FAILURE);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs a script, printing each result; returns false after the first error (which it prints).
async fn run_script(session: &Session, sql: &str, out: &render::Output) -> bool {
    let statements = match kura_engine::parse_sql(sql) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return false;
        }
    };
    for stmt in statements {
        let started = Instant::now();
        let first_line = stmt.text.lines().next().unwrap_or("").to_string();
        let result = match session.execute(stmt).await {
            Ok(output) => render::print_output(output, out).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                if out.timing {
                    eprintln!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
                }
            }
            Err(e) => {
                eprintln!("ERROR: {e}");
                eprintln!("STATEMENT: {first_line}");
                return false;
            }
        }
    }
    true
}

/// Demo users and what they may do; `demo.sql` creates them with their roles and policies.
const DEMO_USERS: [(&str, &str); 6] = [
    ("kura", "superuser: every table, roles, grants and policies"),
    ("operator", "secure zone: raw data, opted-out persons included"),
    ("researcher", "pseudonymised (仮名加工): clinical detail, no names or insured numbers"),
    ("analyst", "anonymised (匿名加工): no identifiers, birth month, 3-digit postal code, opt-outs removed"),
    ("municipal_user", "aggregate-only: groups of at least 10 persons of the resident register"),
    ("auditor", "audit trail: every statement's record (audit.statements), no data"),
];

/// Passwords for the demo users: `KURA_DEMO_PASSWORD` for all, or a fresh random one each.
fn demo_passwords() -> Vec<(&'static str, String)> {
    let shared = std::env::var("KURA_DEMO_PASSWORD").ok().filter(|p| !p.is_empty());
    DEMO_USERS
        .iter()
        .map(|(user, _)| {
            let password = shared.clone().unwrap_or_else(random_password);
            (*user, password)
        })
        .collect()
}

async fn demo(dir: PathBuf, persons: u64, listen: std::net::SocketAddr, fresh: bool, no_serve: bool) -> Result<std::process::ExitCode> {
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let source = dir.join("source");
    let warehouse = dir.join("warehouse");
    let marker = dir.join(".loaded");
    if fresh || !marker.exists() {
        if warehouse.exists() {
            std::fs::remove_dir_all(&warehouse)?;
        }
        eprintln!("Generating a synthetic municipality of {persons} persons...");
        datagen(persons, 42, &source, false)?;
        let engine = open_audited(&warehouse.to_string_lossy()).await?;
        let mut session = engine.session("kura");
        session.set_progress(progress::TerminalProgress::new());
        session.set_base_dir(&source);
        let script = std::fs::read_to_string(source.join("load.sql"))?;
        eprintln!("Loading it into the warehouse at {}...", warehouse.display());
        let started = Instant::now();
        let quiet = render::Output { csv: false, timing: false };
        let mut loaded = 0u64;
        for stmt in kura_engine::parse_sql(&script)? {
            let text = stmt.text.lines().next().unwrap_or("").to_string();
            match session.execute(stmt).await {
                Ok(kura_engine::StatementOutput::Command { rows, .. }) => loaded += rows.unwrap_or(0),
                Ok(rows) => render::print_output(rows, &quiet).await?,
                Err(e) => bail!("loading the demo failed at `{text}`: {e}"),
            }
        }
        eprintln!("Loaded {loaded} rows in {:.1}s.", started.elapsed().as_secs_f64());
        let setup = format!("CREATE USER kura WITH SUPERUSER PASSWORD 'unset';{}", include_str!("demo.sql"));
        session.execute_all(&setup).await.context("creating the demo roles and policies failed")?;
        eprintln!("Linking the sources into research IDs (名寄せ)...");
        let started = Instant::now();
        session.execute_all(include_str!("linkage.sql")).await.context("declaring the demo's linkage sources failed")?;
        let linked = session.query("LINK").await.context("linking the demo's sources failed")?;
        let persons_found = linked
            .iter()
            .flat_map(|b| {
                let items = b.column(0).as_any().downcast_ref::<kura_engine::datafusion::arrow::array::StringArray>();
                let values = b.column(1).as_any().downcast_ref::<kura_engine::datafusion::arrow::array::StringArray>();
                (0..b.num_rows()).filter_map(move |i| match (items, values) {
                    (Some(it), Some(v)) if it.value(i) == "persons" => Some(v.value(i).to_string()),
                    _ => None,
                })
            })
            .next()
            .unwrap_or_default();
        eprintln!("Linked into {persons_found} persons in {:.1}s (linkage.research_ids; report in linkage.runs).", started.elapsed().as_secs_f64());
        session.execute_all(include_str!("research.sql")).await.context("creating the research tables failed")?;
        engine.flush_audit().await?;
        std::fs::write(&marker, b"")?;
    }
    let data = warehouse.to_string_lossy().to_string();
    // Fresh passwords on every start (or KURA_DEMO_PASSWORD), so they are only ever printed here.
    let passwords = demo_passwords();
    {
        let engine = open_audited(&data).await?;
        let session = engine.session("kura");
        for (user, password) in &passwords {
            let sql = format!("ALTER USER {user} PASSWORD '{}'", password.replace('\'', "''"));
            session.execute_all(&sql).await.with_context(|| format!("setting the password of {user} failed"))?;
        }
        engine.flush_audit().await?;
    }
    println!();
    println!("Kura demo warehouse is ready: {data}");
    println!("Connect with psql (one line per role):");
    for ((user, what), (_, password)) in DEMO_USERS.iter().zip(&passwords) {
        println!(
            "  PGPASSWORD={password} psql \"host={} port={} user={user} dbname=kura sslmode=disable\"   # {what}",
            listen.ip(),
            listen.port()
        );
    }
    println!("Or in-process, without the server:");
    println!("  kura sql --data {data} -c \"SELECT sex, count(*) FROM resident.residents GROUP BY sex\"");
    if no_serve {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let engine = open_audited(&data).await?;
    let config = kura_server::ServerConfig { listen, tls: None, require_tls: false };
    serve(engine, config).await?;
    Ok(std::process::ExitCode::SUCCESS)
}
