//! `kura`: the command-line front door of the Kura lakehouse.
//!
//! `kura demo` builds a demo warehouse from synthetic data; `kura sql` runs SQL against a
//! warehouse in-process; `kura datagen` writes synthetic source files.

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
    },
    /// Build a demo warehouse from synthetic data and open it.
    Demo {
        /// Folder for the demo (source files and warehouse).
        #[arg(long, default_value = "./kura-demo")]
        data: PathBuf,
        /// Number of synthetic persons.
        #[arg(long, default_value_t = 10_000)]
        persons: u64,
        /// Address the server will listen on once `kura serve` lands.
        #[arg(long, default_value = "127.0.0.1:5433")]
        listen: String,
        /// Rebuild even if the demo warehouse already exists.
        #[arg(long)]
        fresh: bool,
        /// Do not open the interactive prompt afterwards.
        #[arg(long)]
        no_prompt: bool,
    },
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
            let engine = Engine::open(&data).await.with_context(|| format!("cannot open warehouse {data}"))?;
            let mut session = engine.session("kura");
            session.set_progress(progress::TerminalProgress::new());
            let out = render::Output { csv, timing: !no_timing };
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
        Command::Datagen { persons, seed, out } => {
            datagen(persons, seed, &out)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Demo { data, persons, listen, fresh, no_prompt } => demo(data, persons, listen, fresh, no_prompt).await,
    }
}

fn datagen(persons: u64, seed: u64, out: &std::path::Path) -> Result<()> {
    let started = Instant::now();
    let config = kura_datagen::Config { persons, seed, out_dir: out.to_path_buf(), progress: render::stderr_is_terminal() };
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

async fn demo(dir: PathBuf, persons: u64, listen: String, fresh: bool, no_prompt: bool) -> Result<std::process::ExitCode> {
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
        datagen(persons, 42, &source)?;
        let engine = Engine::open(&warehouse.to_string_lossy()).await?;
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
        std::fs::write(&marker, b"")?;
    }
    let data = warehouse.to_string_lossy().to_string();
    println!();
    println!("Kura demo warehouse is ready: {data}");
    println!("Query it in-process:");
    println!("  kura sql --data {data}");
    println!("  kura sql --data {data} -c \"SELECT sex, count(*) FROM resident.residents GROUP BY sex\"");
    println!("(`kura serve` on {listen} with psql lines per role arrives with the server issue.)");
    if !no_prompt && render::stdin_is_terminal() {
        let engine = Engine::open(&data).await?;
        let mut session = engine.session("kura");
        repl::run(&mut session, render::Output { csv: false, timing: true }).await?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
