//! Claims in the electronic receipt format (レセプト電算処理システム), as facilities send them:
//! `receipts/<billing YYYYMM>/<facility code>-<payer>.UKE`, one file per facility, billing
//! month and payer (1 社保 social insurance, 2 国保 National Health Insurance and 後期高齢),
//! Shift_JIS, CR LF, each an `IR` facility record, the receipts (`RE`, `HO`, `SY`, `SI`, `IY`,
//! `TO`) and a `GO` trailer. The medical and dental claims are the same as in
//! `claims_medical.csv` / `claims_dental.csv` (same patients, months, days and points; the
//! procedure, drug and material lines add up to the claim's points), so a load of either can
//! be checked against the other.
//!
//! Workers build each receipt's records (without its number); the writer stages them per
//! billing month, and [`Staging::finish`] groups each month by facility and payer, numbers the
//! receipts and writes the files. Building a receipt draws no random numbers, so the CSV files
//! are the same with or without receipts.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::date::{Date, month_start};
use crate::error::{Error, Result};
use crate::medical::{CONDS, DRUGS};
use crate::rng::hash;
use crate::world::{InsKind, World};

/// One receipt's records after `RE,<number>`, Shift_JIS, for a facility, payer and month.
pub(crate) struct Block {
    pub billing: u16,
    pub facility: u32,
    pub payer: u8,
    pub points: u64,
    pub bytes: Vec<u8>,
}

/// The patient as a claim bills them.
pub(crate) struct Patient<'a> {
    pub insurer: &'a str,
    pub insurer_kind: InsKind,
    pub symbol: &'a str,
    pub number: &'a str,
    pub suffix: &'a str,
    pub name_kanji: String,
    pub name_kana: &'a str,
    pub sex: i64,
    pub birth: Date,
}

/// A claim as the generator knows it.
pub(crate) struct Claim<'a> {
    pub patient: Patient<'a>,
    pub dental: bool,
    pub inpatient: bool,
    pub service_month: usize,
    pub facility: u32,
    pub days: i64,
    pub points: i64,
    pub admission: Option<Date>,
    /// (condition index, start date, main, suspected)
    pub diagnoses: Vec<(usize, Date, bool, bool)>,
    /// Drug indices into `DRUGS`.
    pub drugs: &'a [u8],
    /// Implant or stent billed this month.
    pub material: Option<&'static str>,
    /// Seed of the line choices (the claim's ID).
    pub key: u64,
}

fn era_day(d: Date, out: &mut String) {
    let mut b = Vec::with_capacity(7);
    d.write_era_code(&mut b);
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

fn era_month(d: Date, out: &mut String) {
    let mut b = Vec::with_capacity(7);
    d.write_era_code(&mut b);
    out.push_str(std::str::from_utf8(&b[..5]).unwrap_or_default());
}

/// Lines (record type, 診療識別, code, points, times) whose points times times add up to `total`.
fn lines(c: &Claim) -> Vec<(&'static str, &'static str, String, i64, i64)> {
    let total = c.points.max(1);
    let mut out = Vec::new();
    let (base_code, base_cat, per) = match (c.dental, c.inpatient) {
        (true, _) => ("301001610", "12", 58),
        (false, true) => ("190077410", "90", (total * 6 / 10 / c.days.max(1)).max(1)),
        (false, false) => ("112007410", "12", 73),
    };
    let times = if c.inpatient { c.days.max(1) } else { 1 };
    let (per, times) = if per * times <= total { (per, times) } else { (total, 1) };
    out.push(("SI", base_cat, base_code.to_string(), per, times));
    let mut rest = total - per * times;
    if let Some(code) = c.material {
        let p = rest * 3 / 10;
        if p > 0 {
            out.push(("TO", "50", code.to_string(), p, 1));
            rest -= p;
        }
    }
    if !c.drugs.is_empty() {
        let each = rest * 3 / 10 / c.drugs.len() as i64;
        if each > 0 {
            for &d in c.drugs {
                // 9-digit receipt drug codes (6...), one per drug of the master
                let code = format!(
                    "62{:07}",
                    1_000 + d as u64 * 37 + hash(&[DRUGS[d as usize].yj.len() as u64, d as u64]) % 7
                );
                out.push(("IY", if c.inpatient { "33" } else { "21" }, code, each, 1));
                rest -= each;
            }
        }
    }
    if rest > 0 {
        // laboratory tests and treatment: the rest of the claim
        let code = ["160000410", "160008010", "140000610", "160061810"][(c.key % 4) as usize];
        out.push(("SI", if c.key % 4 == 2 { "40" } else { "60" }, code.to_string(), rest, 1));
    }
    out
}

/// The receipt's records, for the writer to number and file.
pub(crate) fn block(c: &Claim) -> std::result::Result<Block, char> {
    let mut s = String::with_capacity(256);
    let kind = if c.dental { '3' } else { '1' };
    // レセプト種別: fee table, 医保単独, 本人/家族 (here 1), 入院 odd / 入院外 even
    s.push(',');
    s.push(kind);
    s.push_str(if c.patient.insurer_kind == InsKind::Koki { "13" } else { "11" });
    s.push(if c.inpatient { '1' } else { '2' });
    s.push(',');
    era_month(month_start(c.service_month), &mut s);
    s.push(',');
    s.push_str(&c.patient.name_kanji);
    s.push(',');
    s.push_str(if c.patient.sex == 2 { "2" } else { "1" });
    s.push(',');
    era_day(c.patient.birth, &mut s);
    s.push_str(if c.patient.insurer_kind == InsKind::Koki { ",90," } else { ",70," });
    if let Some(a) = c.admission {
        era_day(a, &mut s);
    }
    // fields 10..36 empty, 37 カタカナ氏名
    for _ in 10..=37 {
        s.push(',');
    }
    s.push_str(c.patient.name_kana);
    s.push_str("\r\n");
    let burden = c.points * 10 * if c.patient.insurer_kind == InsKind::Koki { 1 } else { 3 } / 10;
    s.push_str(&format!(
        "HO,{},{},{},{},{},,,,,,{burden},,,,{}\r\n",
        c.patient.insurer, c.patient.symbol, c.patient.number, c.days, c.points, c.patient.suffix
    ));
    for (cond, start, main, suspected) in &c.diagnoses {
        s.push_str("SY,");
        s.push_str(CONDS[*cond].code);
        s.push(',');
        era_day(*start, &mut s);
        s.push_str(",1,");
        if *suspected {
            s.push_str("8002");
        }
        s.push_str(if *main { ",,01\r\n" } else { ",,\r\n" });
    }
    for (ty, cat, code, points, times) in lines(c) {
        s.push_str(&format!("{ty},{cat},1,{code},"));
        if ty != "SI" {
            s.push('1');
        }
        s.push_str(&format!(",{points},{times}"));
        if ty == "TO" {
            s.push_str(",001,,,");
        }
        s.push_str("\r\n");
    }
    let mut bytes = Vec::with_capacity(s.len());
    crate::sjis::encode(&s, &mut bytes)?;
    let payer = if matches!(c.patient.insurer_kind, InsKind::Nhi | InsKind::Koki) { 2 } else { 1 };
    Ok(Block {
        billing: (c.service_month + 1) as u16,
        facility: c.facility,
        payer,
        points: c.points.max(0) as u64,
        bytes,
    })
}

/// Receipts staged per billing month while the generator runs.
pub(crate) struct Staging {
    dir: PathBuf,
    files: BTreeMap<u16, BufWriter<File>>,
}

impl Staging {
    pub(crate) fn new(out_dir: &Path) -> Result<Staging> {
        let dir = out_dir.join("receipts").join(".staging");
        if out_dir.join("receipts").exists() {
            std::fs::remove_dir_all(out_dir.join("receipts"))
                .map_err(|source| Error::Io { path: dir.clone(), source })?;
        }
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        Ok(Staging { dir, files: BTreeMap::new() })
    }

    pub(crate) fn add(&mut self, b: &Block) -> Result<()> {
        let w = match self.files.entry(b.billing) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let path = self.dir.join(format!("{}.bin", b.billing));
                let f = File::create(&path).map_err(|source| Error::Io { path, source })?;
                e.insert(BufWriter::with_capacity(1 << 16, f))
            }
        };
        let mut head = [0u8; 17];
        head[..4].copy_from_slice(&b.facility.to_le_bytes());
        head[4] = b.payer;
        head[5..13].copy_from_slice(&b.points.to_le_bytes());
        head[13..17].copy_from_slice(&(b.bytes.len() as u32).to_le_bytes());
        w.write_all(&head)
            .and_then(|_| w.write_all(&b.bytes))
            .map_err(|source| Error::Io { path: self.dir.clone(), source })
    }

    /// Writes the files; returns (receipts, bytes, files).
    pub(crate) fn finish(self, world: &World) -> Result<(u64, u64, u64)> {
        let root = self.dir.parent().map(Path::to_path_buf).unwrap_or_default();
        let (mut receipts, mut bytes, mut files) = (0u64, 0u64, 0u64);
        for (billing, mut w) in self.files {
            let io = |source| Error::Io { path: self.dir.clone(), source };
            w.flush().map_err(io)?;
            drop(w);
            let path = self.dir.join(format!("{billing}.bin"));
            let mut data = Vec::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map_err(|source| Error::Io { path: path.clone(), source })?;
            // (facility, payer) -> [(points, range)] in generation order
            let mut groups: BTreeMap<(u32, u8), Vec<(u64, std::ops::Range<usize>)>> = BTreeMap::new();
            let mut at = 0;
            while at + 17 <= data.len() {
                let facility = u32::from_le_bytes(data[at..at + 4].try_into().unwrap_or_default());
                let payer = data[at + 4];
                let points = u64::from_le_bytes(data[at + 5..at + 13].try_into().unwrap_or_default());
                let len = u32::from_le_bytes(data[at + 13..at + 17].try_into().unwrap_or_default()) as usize;
                groups.entry((facility, payer)).or_default().push((points, at + 17..at + 17 + len));
                at += 17 + len;
            }
            let month = month_start(billing as usize);
            let (y, m, _) = month.ymd();
            let mut era = Vec::new();
            month.write_era_code(&mut era);
            let dir = root.join(format!("{y:04}{m:02}"));
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
            for ((facility, payer), list) in groups {
                let fac = &world.facilities[facility as usize];
                let mut out = Vec::with_capacity(list.iter().map(|(_, r)| r.len() + 8).sum::<usize>() + 128);
                let ir = format!(
                    "IR,{payer},{},{},{},,{},{},00,0930000000\r\n",
                    &fac.code[..2],
                    &fac.code[2..3],
                    &fac.code[3..],
                    fac.name,
                    std::str::from_utf8(&era[..5]).unwrap_or_default()
                );
                crate::sjis::encode(&ir, &mut out)
                    .map_err(|c| Error::Unencodable { file: "receipts", sample: c.to_string() })?;
                let mut total = 0u64;
                for (n, (points, range)) in list.iter().enumerate() {
                    out.extend_from_slice(format!("RE,{}", n + 1).as_bytes());
                    out.extend_from_slice(&data[range.clone()]);
                    total += points;
                }
                out.extend_from_slice(format!("GO,{},{total},99\r\n", list.len()).as_bytes());
                out.push(0x1a);
                let file = dir.join(format!("{}-{payer}.UKE", fac.code));
                std::fs::write(&file, &out).map_err(|source| Error::Io { path: file.clone(), source })?;
                receipts += list.len() as u64;
                bytes += out.len() as u64;
                files += 1;
            }
            std::fs::remove_file(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        }
        std::fs::remove_dir(&self.dir).map_err(|source| Error::Io { path: self.dir.clone(), source })?;
        Ok((receipts, bytes, files))
    }
}
