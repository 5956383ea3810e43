//! Data for the suites: TPC-H generated as Parquet and loaded into Kura, the generator's
//! warehouse, and the Parquet files of Kura's tables laid out for the other systems.
//!
//! DataFusion and DuckDB read *the data files of the current version of Kura's Delta tables*:
//! each live file is hard-linked (the same bytes on disk, no copy) into `plain/<table>/`, with
//! its Hive-style partition folder. So the ratios measure engines and layers, not file layouts,
//! and a change of layout (compaction, sorting) reaches all systems alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kura_engine::datafusion::arrow::datatypes::DataType;
use kura_engine::datafusion::datasource::file_format::parquet::ParquetFormat;
use kura_engine::datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use kura_engine::datafusion::prelude::SessionContext;
use kura_engine::{Engine, Session, StatementOutput};
use kura_storage::TableVersionSpec;

use crate::systems::kura_command;
use crate::tpch;

/// A table as the plain systems see it.
pub struct PlainTable {
    /// Name in SQL (`lineitem`, `claims.medical_claims`).
    pub name: String,
    pub dir: PathBuf,
    pub partitions: Vec<(String, DataType)>,
    pub files: usize,
    pub bytes: u64,
}

/// Generates TPC-H at `sf` with `tpchgen-cli` into `dir/parquet` unless it is there.
pub fn generate_tpch(tpchgen: &Path, sf: f64, dir: &Path) -> Result<PathBuf> {
    let out = dir.join("parquet");
    let done = out.join(".complete");
    if done.exists() {
        return Ok(out);
    }
    std::fs::create_dir_all(&out)?;
    eprintln!("generating TPC-H SF{sf} with {}", tpchgen.display());
    let started = Instant::now();
    let status = std::process::Command::new(tpchgen)
        .args(["parquet", "--scale-factor", &sf.to_string(), "--overwrite", "--output-dir"])
        .arg(&out)
        .status()
        .with_context(|| format!("running {}", tpchgen.display()))?;
    if !status.success() {
        bail!("tpchgen-cli failed ({status})");
    }
    std::fs::write(&done, "")?;
    eprintln!("generated in {:.1}s", started.elapsed().as_secs_f64());
    Ok(out)
}

/// Loads the TPC-H Parquet files into Kura (`CREATE TABLE`, `COPY ... FROM ... (FORMAT parquet)`)
/// unless a previous run did; returns the load's seconds and rows when it ran.
pub async fn load_tpch(session: &Session, warehouse: &Path, parquet: &Path) -> Result<Option<(f64, u64)>> {
    let done = warehouse.join(".bench-loaded");
    if done.exists() {
        return Ok(None);
    }
    eprintln!("loading TPC-H into Kura at {}", warehouse.display());
    let started = Instant::now();
    let mut rows = 0;
    for (table, columns) in tpch::TABLES {
        kura_command(session, &format!("DROP TABLE IF EXISTS {table}")).await?;
        kura_command(session, &format!("CREATE TABLE {table} ({columns})")).await?;
        let file = parquet.join(format!("{table}.parquet"));
        let n = kura_command(session, &format!("COPY {table} FROM '{}' WITH (FORMAT parquet)", file.display())).await?;
        rows += n.unwrap_or(0);
    }
    let secs = started.elapsed().as_secs_f64();
    std::fs::write(&done, "")?;
    eprintln!("loaded {rows} rows in {secs:.1}s");
    Ok(Some((secs, rows)))
}

/// Generates the 1,000,000-person (or `persons`) municipality and loads it with its
/// `load.sql`, as the core benchmark does, unless the warehouse exists; then links it into
/// research IDs and makes the research tables the cohort queries read, unless done before.
pub async fn ensure_cohort_warehouse(dir: &Path, persons: u64) -> Result<PathBuf> {
    let warehouse = dir.join(format!("warehouse-{persons}"));
    if !warehouse.join("_kura").exists() {
        load_cohort_warehouse(dir, persons, &warehouse).await?;
    }
    let linked = warehouse.join(".bench-linked");
    if !linked.exists() {
        eprintln!("linking {} into research IDs and making the research tables", warehouse.display());
        let started = Instant::now();
        let engine = Engine::open(&warehouse.to_string_lossy()).await?;
        let session = engine.session("kura");
        // Linked tables are read with the rights of the linkage sources' owner: `kura` must be a
        // role (a warehouse loaded by another benchmark may have other users only).
        if !engine.catalog().cached().state.roles.contains_key("kura") {
            let password = crate::systems::BENCH_PASSWORD;
            session.execute_all(&format!("CREATE USER kura WITH SUPERUSER PASSWORD '{password}'")).await?;
        }
        session.execute_all(include_str!("../../../cli/src/linkage.sql")).await?;
        session.query("LINK").await?;
        session.execute_all(include_str!("../../queries/cohort_research.sql")).await?;
        std::fs::write(&linked, "")?;
        eprintln!("linked in {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(warehouse)
}

async fn load_cohort_warehouse(dir: &Path, persons: u64, warehouse: &Path) -> Result<()> {
    let source = dir.join(format!("source-{persons}"));
    if !source.join("load.sql").exists() {
        eprintln!("generating {persons} persons into {}", source.display());
        kura_datagen::generate(&kura_datagen::Config { persons, seed: 42, out_dir: source.clone(), progress: true, receipts: false })?;
    }
    eprintln!("loading {} into {}", source.display(), warehouse.display());
    let engine = Engine::open(&warehouse.to_string_lossy()).await?;
    let mut session = engine.session("kura");
    session.set_base_dir(&source);
    let script = std::fs::read_to_string(source.join("load.sql"))?;
    for stmt in kura_engine::parse_sql(&script)? {
        session.execute(stmt).await?.collect().await?;
    }
    Ok(())
}

/// Hard-links the live data files of each table's current version under `plain`, replacing
/// what an earlier run put there.
pub async fn export_plain(engine: &Arc<Engine>, session: &Session, warehouse: &Path, tables: &[&str], plain: &Path) -> Result<Vec<PlainTable>> {
    if plain.exists() {
        std::fs::remove_dir_all(plain)?;
    }
    let warehouse = warehouse.canonicalize()?;
    let mut out = Vec::new();
    for name in tables {
        let (schema, table) = name.split_once('.').unwrap_or(("public", name));
        let entry = engine.catalog().cached().state.table(schema, table)?.clone();
        let delta = engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
        let root = warehouse.join(&entry.location);
        let marker = format!("{}/", entry.location.trim_end_matches('/'));
        let dir = plain.join(name);
        std::fs::create_dir_all(&dir)?;
        let (mut files, mut bytes) = (0, 0);
        for uri in delta.get_file_uris()? {
            let relative = uri.split_once(&marker).map(|(_, r)| r.to_string()).with_context(|| format!("file {uri} outside {marker}"))?;
            let relative = percent_decode(&relative);
            let source = root.join(&relative);
            let target = dir.join(&relative);
            std::fs::create_dir_all(target.parent().expect("file has a folder"))?;
            if std::fs::hard_link(&source, &target).is_err() {
                std::fs::copy(&source, &target).with_context(|| format!("copying {}", source.display()))?;
            }
            files += 1;
            bytes += std::fs::metadata(&target)?.len();
        }
        let mut stmts = kura_engine::parse_sql(&format!("SELECT * FROM {name} LIMIT 0"))?;
        let StatementOutput::Rows(stream) = session.execute(stmts.remove(0)).await? else { bail!("no schema for {name}") };
        let full = stream.schema();
        let partitions = entry
            .partition_columns
            .iter()
            .map(|c| Ok((c.clone(), full.field_with_name(c)?.data_type().clone())))
            .collect::<Result<_>>()?;
        out.push(PlainTable { name: name.to_string(), dir, partitions, files, bytes });
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Registers the plain tables in a DataFusion context as Parquet listings (schemas inferred
/// from the files, so strings are read as views, DataFusion's default).
pub async fn register_datafusion(ctx: &SessionContext, tables: &[PlainTable]) -> Result<()> {
    for t in tables {
        if let Some((schema, _)) = t.name.split_once('.') {
            ctx.sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?.collect().await?;
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(t.partitions.clone());
        let url = ListingTableUrl::parse(format!("{}/", t.dir.canonicalize()?.display()))?;
        let config = ListingTableConfig::new(url).with_listing_options(options).infer_schema(&ctx.state()).await?;
        ctx.register_table(t.name.as_str(), Arc::new(ListingTable::try_new(config)?))?;
    }
    Ok(())
}

/// DuckDB views over the same files.
pub fn duckdb_setup(tables: &[PlainTable]) -> Result<Vec<String>> {
    let mut stmts = Vec::new();
    for t in tables {
        if let Some((schema, _)) = t.name.split_once('.') {
            stmts.push(format!("CREATE SCHEMA IF NOT EXISTS {schema}"));
        }
        let dir = t.dir.canonicalize()?;
        let source = if t.partitions.is_empty() {
            format!("read_parquet('{}/*.parquet')", dir.display())
        } else {
            let types = t
                .partitions
                .iter()
                .map(|(c, ty)| Ok(format!("'{c}': '{}'", duckdb_type(ty)?)))
                .collect::<Result<Vec<_>>>()?
                .join(", ");
            let depth = "/*".repeat(t.partitions.len());
            format!("read_parquet('{}{depth}/*.parquet', hive_partitioning = true, hive_types = {{{types}}})", dir.display())
        };
        stmts.push(format!("CREATE OR REPLACE VIEW {} AS SELECT * FROM {source}", t.name));
    }
    Ok(stmts)
}

fn duckdb_type(t: &DataType) -> Result<&'static str> {
    Ok(match t {
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "VARCHAR",
        DataType::Date32 => "DATE",
        DataType::Boolean => "BOOLEAN",
        other => bail!("no DuckDB type for partition column type {other}"),
    })
}

/// Sort orders for `--layout sorted`: (table, ORDER BY). TPC-H's fact tables by date, as
/// warehouses cluster them; the cohort tables by person (the insurance key, standing in for
/// `research_id`) and date, or by the code the queries filter on.
pub const SORTED_TPCH: &[(&str, &str)] = &[("lineitem", "l_shipdate"), ("orders", "o_orderdate")];
pub const SORTED_COHORT: &[(&str, &str)] = &[
    // The research tables are linked tables, stored sorted by research_id by Kura itself.
    ("claims.claim_diagnoses", "icd10, claim_id"),
];

/// Copies warehouse `from` to `to` (once) and rewrites each table's rows in the given order with
/// `OPTIMIZE ... ORDER BY`: a new Delta version whose files hold the rows sorted, so row-group
/// statistics prune.
pub async fn sorted_copy(from: &Path, to: &Path, orders: &[(&str, &str)]) -> Result<PathBuf> {
    let done = to.join(".bench-sorted");
    if done.exists() {
        return Ok(to.to_path_buf());
    }
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to.parent().expect("warehouse has a parent"))?;
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        bail!("copying {} to {} failed", from.display(), to.display());
    }
    let engine = Engine::open(&to.to_string_lossy()).await?;
    let session = engine.session("kura");
    for (table, order) in orders {
        eprintln!("sorting {table} by {order}");
        let started = Instant::now();
        // Kura's own clustering: one commit with the rows sorted.
        kura_command(&session, &format!("OPTIMIZE {table} ORDER BY ({order})")).await?;
        eprintln!("  {:.1}s", started.elapsed().as_secs_f64());
    }
    std::fs::write(&done, "")?;
    Ok(to.to_path_buf())
}
