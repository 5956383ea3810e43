//! # kura-datagen: deterministic synthetic Japanese medical data
//!
//! This crate generates a synthetic municipality (a fictional designated city, 若葉市) with `N`
//! persons living in households, and writes what its data holders would deliver to a certified
//! producer under the Next Generation Medical Infrastructure Act (次世代医療基盤法):
//!
//! - the resident register (住民基本台帳, "basic resident register") and its events,
//! - medical, dental and pharmacy claims (レセプト, "receipts") with diagnoses,
//! - 特定健診 ("specific health checkups", ages 40-74) and 後期高齢者健診 (checkups for 75+),
//! - long-term care certifications (要介護認定) and care benefit records,
//! - municipal vaccination records,
//! - EHR extracts (patients, diagnoses, prescriptions, labs) from three participating hospitals,
//! - a ground truth mapping every source key to the true person, plus `load.sql` and
//!   `README.txt`.
//!
//! Files are CSV in the encodings real sources use (Shift_JIS / CP932 for municipal systems and
//! claims, UTF-8 with BOM for checkups, UTF-8 for hospital extracts), with realistic identity
//! noise (half-width kana, old kanji forms, kana typos, surname changes on marriage, insurer
//! changes at job changes and at 75, mistyped birth dates). Each source keeps its own keys.
//!
//! ## What this crate owns, and what it must not do
//! It owns synthetic data generation only. It never reads real data, performs no I/O other than
//! creating `out_dir` and writing files into it, and depends on no other Kura crate. Output is
//! deterministic: the same `persons` and `seed` give byte-identical files whatever the number
//! of threads.
//!
//! ## Example
//! ```no_run
//! use kura_datagen::{Config, generate};
//! let summary = generate(&Config {
//!     persons: 10_000,
//!     seed: 42,
//!     out_dir: "/tmp/kura-demo".into(),
//!     progress: false,
//!     receipts: false,
//! })?;
//! for f in &summary.files {
//!     println!("{} {} rows {} bytes ({:?})", f.name, f.rows, f.bytes, f.encoding);
//! }
//! # Ok::<(), kura_datagen::Error>(())
//! ```
#![deny(missing_docs)]

mod csvw;
mod date;
mod emit;
mod error;
mod kana;
mod medical;
mod names;
mod receipt;
mod rng;
mod schema;
mod sim;
mod sjis;
mod world;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use error::{Error, Result};
pub use schema::FileEncoding;

/// Generator configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of persons (everyone registered in the municipality at some time in the period).
    pub persons: u64,
    /// Random seed; the output is a pure function of (`persons`, `seed`).
    pub seed: u64,
    /// Output directory (created if missing; existing files are overwritten).
    pub out_dir: PathBuf,
    /// Show an indicatif progress bar (persons generated) on stderr.
    pub progress: bool,
    /// Also write the medical and dental claims as claims files in the electronic receipt
    /// format (レセプト電算), under `receipts/` (see the README the run writes).
    pub receipts: bool,
}

/// One written file.
#[derive(Clone, Debug)]
pub struct FileSummary {
    /// File name inside the output directory.
    pub name: String,
    /// Data rows (excluding the header); 0 for `load.sql` and `README.txt`.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Encoding on disk.
    pub encoding: FileEncoding,
}

/// What [`generate`] produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Every file written, CSV files first (in `load.sql` order), then `receipts/` (one entry for
    /// the directory of claims files, when written), `load.sql`, `README.txt`.
    pub files: Vec<FileSummary>,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Persons generated.
    pub persons: u64,
    /// Households generated.
    pub households: u64,
    /// Seed used.
    pub seed: u64,
    /// Output directory.
    pub out_dir: PathBuf,
}

impl Summary {
    /// Total bytes written.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Households per work unit (chunks are the unit of parallelism; results do not depend on it
/// being a multiple of anything, only on the fixed value).
const CHUNK_HOUSEHOLDS: usize = 1024;

/// Generate the data set into `config.out_dir` using all available cores.
pub fn generate(config: &Config) -> Result<Summary> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    generate_with_threads(config, threads)
}

/// Like [`generate`] with an explicit number of worker threads (the output is identical for
/// any value).
pub fn generate_with_threads(config: &Config, threads: usize) -> Result<Summary> {
    let started = Instant::now();
    if config.persons == 0 {
        return Err(Error::InvalidConfig("persons must be at least 1".into()));
    }
    if config.persons > 200_000_000 {
        return Err(Error::InvalidConfig("persons must be at most 200,000,000".into()));
    }
    let dir = &config.out_dir;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    let n = config.persons;
    let seed = config.seed;
    tracing::info!(persons = n, seed, out = %dir.display(), "generating synthetic data");

    let world = world::World::new(n, seed);
    let plans = sim::plan_households(n, seed);
    let mut first_pidx = Vec::with_capacity(plans.len());
    let mut acc = 0u64;
    for p in &plans {
        first_pidx.push(acc);
        acc += p.size as u64;
    }
    debug_assert_eq!(acc, n);
    let ctx = emit::Ctx { world: &world, seed, keys: emit::Keys::new(seed, n), receipts: config.receipts };
    let mut staging = if config.receipts { Some(receipt::Staging::new(dir)?) } else { None };

    // open all CSV files and write headers
    let mut writers = Vec::with_capacity(schema::f::COUNT);
    let mut bytes = vec![0u64; schema::f::COUNT];
    for (fi, t) in schema::TABLES.iter().enumerate() {
        let path = dir.join(t.file);
        let file = File::create(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut head = Vec::new();
        if t.enc == FileEncoding::Utf8Bom {
            head.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
        }
        head.extend_from_slice(schema::header(t).as_bytes()); // ASCII: identical in Shift_JIS
        w.write_all(&head).map_err(|source| Error::Io { path: path.clone(), source })?;
        bytes[fi] += head.len() as u64;
        writers.push((path, w));
    }
    let mut rows = vec![0u64; schema::f::COUNT];
    {
        let mut buf = Vec::new();
        for fi in [schema::f::FACILITIES, schema::f::INSURERS, schema::f::DISEASES] {
            buf.clear();
            rows[fi] = match fi {
                schema::f::FACILITIES => emit::emit_facilities(&world, &mut buf),
                schema::f::INSURERS => emit::emit_insurers(&world, &mut buf),
                _ => emit::emit_diseases(&mut buf),
            };
            let (path, w) = &mut writers[fi];
            w.write_all(&buf).map_err(|source| Error::Io { path: path.clone(), source })?;
            bytes[fi] += buf.len() as u64;
        }
    }

    let progress = if config.progress {
        let pb = indicatif::ProgressBar::new(n);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} persons ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };

    let n_chunks = plans.len().div_ceil(CHUNK_HOUSEHOLDS);
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let threads = threads.clamp(1, 256).min(n_chunks.max(1));
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<Chunk>)>(threads * 2);
    let mut failure: Option<Error> = None;
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (ctx, plans, first_pidx, next, abort) = (&ctx, &plans, &first_pidx, &next, &abort);
            s.spawn(move || {
                loop {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let ci = next.fetch_add(1, Ordering::Relaxed);
                    if ci >= n_chunks {
                        break;
                    }
                    let res = build_chunk(ctx, plans, first_pidx, ci);
                    if tx.send((ci, res)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Result<Chunk>> = BTreeMap::new();
        let mut want = 0usize;
        'recv: for (ci, res) in rx.iter() {
            pending.insert(ci, res);
            while let Some(res) = pending.remove(&want) {
                match res {
                    Ok(chunk) => {
                        for (fi, data) in chunk.bufs.iter().enumerate() {
                            if data.is_empty() {
                                continue;
                            }
                            let (path, w) = &mut writers[fi];
                            if let Err(source) = w.write_all(data) {
                                failure = Some(Error::Io { path: path.clone(), source });
                                abort.store(true, Ordering::Relaxed);
                                break 'recv;
                            }
                            bytes[fi] += data.len() as u64;
                            rows[fi] += chunk.rows[fi];
                        }
                        if let Some(st) = staging.as_mut() {
                            for b in &chunk.receipts {
                                if let Err(e) = st.add(b) {
                                    failure = Some(e);
                                    abort.store(true, Ordering::Relaxed);
                                    break 'recv;
                                }
                            }
                        }
                        progress.inc(chunk.persons);
                    }
                    Err(e) => {
                        failure = Some(e);
                        abort.store(true, Ordering::Relaxed);
                        break 'recv;
                    }
                }
                want += 1;
            }
        }
        // dropping rx (end of scope body) makes blocked workers stop
    });
    progress.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    if std::thread::panicking() {
        return Err(Error::WorkerPanicked);
    }
    let mut files = Vec::new();
    for (fi, (path, mut w)) in writers.into_iter().enumerate() {
        w.flush().map_err(|source| Error::Io { path: path.clone(), source })?;
        let t = &schema::TABLES[fi];
        files.push(FileSummary { name: t.file.to_string(), rows: rows[fi], bytes: bytes[fi], encoding: t.enc });
    }
    if let Some(st) = staging {
        let (receipts, bytes, count) = st.finish(&world)?;
        tracing::info!(receipts, files = count, "claims files in the receipt format written");
        files.push(FileSummary { name: "receipts/".into(), rows: receipts, bytes, encoding: FileEncoding::ShiftJis });
    }
    let sql = schema::load_sql(n, seed);
    files.push(write_text(dir, "load.sql", &sql)?);
    let readme = schema::readme(n, seed, world::CITY_NAME);
    files.push(write_text(dir, "README.txt", &readme)?);
    let summary = Summary { files, elapsed: started.elapsed(), persons: n, households: plans.len() as u64, seed, out_dir: dir.clone() };
    tracing::info!(
        persons = n,
        households = summary.households,
        bytes = summary.total_bytes(),
        elapsed_ms = summary.elapsed.as_millis() as u64,
        "synthetic data written"
    );
    Ok(summary)
}

fn write_text(dir: &Path, name: &str, text: &str) -> Result<FileSummary> {
    let path = dir.join(name);
    std::fs::write(&path, text.as_bytes()).map_err(|source| Error::Io { path, source })?;
    Ok(FileSummary { name: name.to_string(), rows: 0, bytes: text.len() as u64, encoding: FileEncoding::Utf8 })
}

/// Encoded output of one chunk of households.
struct Chunk {
    bufs: Vec<Vec<u8>>,
    rows: Vec<u64>,
    receipts: Vec<receipt::Block>,
    persons: u64,
}

fn build_chunk(ctx: &emit::Ctx, plans: &[sim::HhPlan], first_pidx: &[u64], ci: usize) -> Result<Chunk> {
    let lo = ci * CHUNK_HOUSEHOLDS;
    let hi = (lo + CHUNK_HOUSEHOLDS).min(plans.len());
    let mut out = emit::Out::new();
    let mut persons = 0;
    for h in lo..hi {
        let hh = sim::simulate_household(ctx.world, ctx.seed, h as u64, plans[h], first_pidx[h]);
        persons += hh.members.len() as u64;
        emit::emit_household(ctx, &hh, &mut out);
    }
    if let Some(c) = out.unencodable {
        return Err(Error::Unencodable { file: "receipts", sample: c.to_string() });
    }
    let mut bufs = Vec::with_capacity(out.bufs.len());
    for (fi, buf) in out.bufs.into_iter().enumerate() {
        let t = &schema::TABLES[fi];
        if t.enc == FileEncoding::ShiftJis {
            bufs.push(encode_sjis(t.file, buf)?);
        } else {
            bufs.push(buf);
        }
    }
    Ok(Chunk { bufs, rows: out.rows, receipts: out.receipts, persons })
}

/// Encode UTF-8 text as Shift_JIS (Windows-31J), failing on any unmappable character.
fn encode_sjis(file: &'static str, buf: Vec<u8>) -> Result<Vec<u8>> {
    let text = match String::from_utf8(buf) {
        Ok(t) => t,
        Err(e) => return Err(Error::Unencodable { file, sample: format!("invalid UTF-8: {e}") }),
    };
    let mut out = Vec::with_capacity(text.len());
    match sjis::encode(&text, &mut out) {
        Ok(()) => Ok(out),
        Err(c) => Err(Error::Unencodable { file, sample: c.to_string() }),
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    /// Every static string that can reach a Shift_JIS file must be encodable.
    #[test]
    fn static_text_is_shift_jis_encodable() {
        let mut all = String::new();
        for s in names::SURNAMES {
            all.push_str(s.kanji);
            all.push_str(s.kana);
            all.push_str(s.variants);
        }
        for f in [true, false] {
            for t in names::given_tables(f) {
                for g in t {
                    all.push_str(g.kanji);
                    all.push_str(g.kana);
                }
            }
        }
        for c in medical::CONDS.iter() {
            all.push_str(c.name);
            all.push_str(c.dept);
        }
        let w = world::World::new(100_000, 1);
        for ward in &w.wards {
            all.push_str(ward.name);
            for t in &ward.towns {
                all.push_str(&t.name);
            }
        }
        all.push_str(world::CITY_NAME);
        all.push_str("住民転出死亡出生転入転居氏変更世帯主妻夫子父母要支援要介護新規更新区分変更入院外医科歯科丁目");
        all.push_str("介護老人福祉施設予防通所型サービス訪問看護短期入所生活新型コロナウイルスワクチンインフルエンザ23価肺炎球菌帯状疱疹麻しん風しん混合第1期2HPV");
        all.push_str("国保後期高齢協会けんぽ健保組合共済　");
        let mut half = String::new();
        for s in names::SURNAMES {
            kana::to_half_width(s.kana, &mut half);
        }
        all.push_str(&half);
        let bad: Vec<char> = all.chars().filter(|c| encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut [0; 4])).2).collect();
        assert!(bad.is_empty(), "not encodable in Shift_JIS: {bad:?}");
        // round trip
        let (enc, _, err) = encoding_rs::SHIFT_JIS.encode(&all);
        assert!(!err);
        let (dec, _, err) = encoding_rs::SHIFT_JIS.decode(&enc);
        assert!(!err);
        assert_eq!(dec, all);
        // the IBM extension kanji are really used
        assert!(all.contains('髙') && all.contains('﨑'));
    }

    #[test]
    fn sjis_failure_is_loud() {
        let r = encode_sjis("x.csv", "abc😀".as_bytes().to_vec());
        assert!(matches!(r, Err(Error::Unencodable { .. })));
    }

    #[test]
    fn household_plan_is_exact() {
        for n in [1u64, 2, 3, 17, 1000] {
            let plans = sim::plan_households(n, 7);
            assert_eq!(plans.iter().map(|p| p.size as u64).sum::<u64>(), n);
        }
    }
}
