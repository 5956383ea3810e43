//! End-to-end tests of the generator's output.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use kura_datagen::{Config, FileEncoding, Summary, generate_with_threads};

fn run_gen(dir: &Path, persons: u64, seed: u64, threads: usize) -> Summary {
    gen_with(dir, persons, seed, threads, false)
}

fn gen_with(dir: &Path, persons: u64, seed: u64, threads: usize, receipts: bool) -> Summary {
    generate_with_threads(&Config { persons, seed, out_dir: dir.to_path_buf(), progress: false, receipts }, threads).expect("generate")
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Receipts change nothing else, are the same on any thread count, and are well-formed
/// Shift_JIS claims files whose GO trailers agree with their receipts.
#[test]
fn receipts_are_deterministic_and_leave_the_csv_alone() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = gen_with(a.path(), 800, 5, 1, true);
    gen_with(b.path(), 800, 5, 3, true);
    gen_with(c.path(), 800, 5, 2, false);
    let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert_eq!(ta, tb, "receipts differ between thread counts");
    for (name, bytes) in &tc {
        assert_eq!(ta.get(name), Some(bytes), "{name} changed when receipts were written");
    }
    let receipts: Vec<_> = ta.iter().filter(|(n, _)| n.starts_with("receipts/")).collect();
    assert!(receipts.len() > 20, "{} receipt files", receipts.len());
    assert!(receipts.iter().all(|(n, _)| n.ends_with(".UKE")), "only claims files, no staging left");
    let claims = sa.files.iter().find(|f| f.name == "receipts/").expect("receipts in the summary");
    let csv_claims: u64 =
        sa.files.iter().filter(|f| f.name == "claims_medical.csv" || f.name == "claims_dental.csv").map(|f| f.rows).sum();
    assert_eq!(claims.rows, csv_claims, "one receipt per medical and dental claim");
    let mut total = 0u64;
    for (name, bytes) in receipts {
        let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes.strip_suffix(&[0x1a]).unwrap());
        assert!(!had_errors, "{name}: invalid Shift_JIS");
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert!(lines[0].starts_with("IR,"), "{name}");
        let re = lines.iter().filter(|l| l.starts_with("RE,")).count();
        let go: Vec<&str> = lines.last().unwrap().split(',').collect();
        assert_eq!((go[0], go[1].parse::<usize>().unwrap()), ("GO", re), "{name}");
        total += re as u64;
    }
    assert_eq!(total, claims.rows);
}

/// Decode a file according to its encoding.
fn text(dir: &Path, name: &str, enc: FileEncoding) -> String {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    match enc {
        FileEncoding::ShiftJis => {
            let (s, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(&bytes);
            assert!(!had_errors, "{name}: invalid Shift_JIS");
            s.into_owned()
        }
        FileEncoding::Utf8Bom => {
            assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF], "{name}: BOM missing");
            String::from_utf8(bytes[3..].to_vec()).unwrap()
        }
        FileEncoding::Utf8 => {
            assert_ne!(&bytes[..3], &[0xEF, 0xBB, 0xBF], "{name}: unexpected BOM");
            String::from_utf8(bytes).unwrap()
        }
    }
}

/// Parse a CSV (strict: every row has the header's field count).
fn rows(dir: &Path, name: &str, enc: FileEncoding) -> (Vec<String>, Vec<Vec<String>>) {
    let t = text(dir, name, enc);
    let mut r = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(t.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let data = r.records().map(|x| x.unwrap_or_else(|e| panic!("{name}: {e}")).iter().map(str::to_string).collect()).collect();
    (header, data)
}

struct Table {
    header: Vec<String>,
    data: Vec<Vec<String>>,
}

impl Table {
    fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    }
}

fn load(dir: &Path, s: &Summary, name: &str) -> Table {
    let f = s.files.iter().find(|f| f.name == name).unwrap();
    let (header, data) = rows(dir, name, f.encoding);
    assert_eq!(data.len() as u64, f.rows, "{name}: row count in summary");
    Table { header, data }
}

#[test]
fn deterministic_across_threads_and_seed_sensitive() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let sa = run_gen(a.path(), 1500, 7, 1);
    let sb = run_gen(b.path(), 1500, 7, 3);
    let sc = run_gen(c.path(), 1500, 8, 2);
    let mut differs = 0;
    for f in &sa.files {
        let x = std::fs::read(a.path().join(&f.name)).unwrap();
        let y = std::fs::read(b.path().join(&f.name)).unwrap();
        assert!(x == y, "{} differs between thread counts", f.name);
        let z = std::fs::read(c.path().join(&f.name)).unwrap();
        if x != z {
            differs += 1;
        }
    }
    assert_eq!(sa.files.len(), sb.files.len());
    assert!(differs >= 10, "another seed should change the data files ({differs} differ)");
    let _ = sc;
}

#[test]
fn output_is_valid_linked_and_realistic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = run_gen(d, 6000, 42, 2);

    // --- every Shift_JIS file decodes and round-trips; BOM only where expected (checked in text())
    for f in s.files.iter().filter(|f| f.name.ends_with(".csv")) {
        let t = text(d, &f.name, f.encoding);
        if f.encoding == FileEncoding::ShiftJis {
            let (enc, _, err) = encoding_rs::SHIFT_JIS.encode(&t);
            assert!(!err);
            assert_eq!(&enc[..], &std::fs::read(d.join(&f.name)).unwrap()[..], "{} round trip", f.name);
        }
        let _ = rows(d, &f.name, f.encoding);
        assert_eq!(std::fs::metadata(d.join(&f.name)).unwrap().len(), f.bytes, "{} size", f.name);
    }
    let checkups = s.files.iter().find(|f| f.name == "checkup_results.csv").unwrap();
    assert_eq!(checkups.encoding, FileEncoding::Utf8Bom);
    assert_eq!(s.files.iter().find(|f| f.name == "resident_residents.csv").unwrap().encoding, FileEncoding::ShiftJis);

    // --- load.sql references every CSV written, with the header's columns
    let sql = std::fs::read_to_string(d.join("load.sql")).unwrap();
    for f in s.files.iter().filter(|f| f.name.ends_with(".csv")) {
        let copy = sql.lines().find(|l| l.starts_with("COPY ") && l.contains(&format!("FROM '{}'", f.name)));
        let copy = copy.unwrap_or_else(|| panic!("load.sql does not load {}", f.name));
        let enc = if f.encoding == FileEncoding::ShiftJis { "'shift_jis'" } else { "'utf8'" };
        assert!(copy.contains(enc), "{copy}");
        let table = copy.split_whitespace().nth(1).unwrap();
        let create = sql.find(&format!("CREATE TABLE {table} (")).expect("CREATE TABLE");
        let body = &sql[create..];
        let cols: Vec<&str> = body.lines().skip(1).take_while(|l| !l.starts_with(')')).map(|l| l.split_whitespace().next().unwrap()).collect();
        let (header, _) = rows(d, &f.name, f.encoding);
        assert_eq!(cols, header, "{}", f.name);
    }
    for line in sql.lines().filter(|l| l.starts_with("COPY ")) {
        let file = line.split('\'').nth(1).unwrap();
        assert!(d.join(file).exists(), "{file} referenced but missing");
    }
    assert!(sql.contains(") PARTITIONED BY (fiscal_year);"));
    assert!(std::fs::read_to_string(d.join("README.txt")).unwrap().contains("claims_medical.csv"));

    // --- ground truth covers every source key exactly once
    let truth = load(d, &s, "ground_truth.csv");
    let mut map: HashMap<(String, String), u64> = HashMap::new();
    for r in &truth.data {
        let prev = map.insert((r[0].clone(), r[1].clone()), r[2].parse().unwrap());
        assert!(prev.is_none(), "duplicate truth key {:?}", (&r[0], &r[1]));
    }
    let mut used: HashSet<(String, String)> = HashSet::new();
    let mut check = |source: &str, key: String| {
        let k = (source.to_string(), key);
        assert!(map.contains_key(&k), "no truth for {k:?}");
        used.insert(k);
    };
    let residents = load(d, &s, "resident_residents.csv");
    assert_eq!(residents.data.len(), 6000);
    for r in &residents.data {
        check("resident", r[0].clone());
    }
    let events = load(d, &s, "resident_events.csv");
    for r in &events.data {
        check("resident", r[1].clone());
    }
    let mut claims = Vec::new();
    for name in ["claims_medical.csv", "claims_dental.csv", "claims_pharmacy.csv"] {
        let t = load(d, &s, name);
        for r in &t.data {
            check("claims", format!("{}:{}:{}:{}", r[1], r[2], r[3], r[4]));
        }
        claims.push(t);
    }
    let ck = load(d, &s, "checkup_results.csv");
    for r in &ck.data {
        check("checkup", r[0].clone());
    }
    for name in ["care_certifications.csv"] {
        for r in &load(d, &s, name).data {
            check("care", r[1].clone());
        }
    }
    for r in &load(d, &s, "care_benefits.csv").data {
        check("care", r[0].clone());
    }
    for r in &load(d, &s, "vaccinations.csv").data {
        check("vaccination", r[1].clone());
    }
    for name in ["hospital_patients.csv", "hospital_diagnoses.csv", "hospital_prescriptions.csv", "hospital_labs.csv"] {
        for r in &load(d, &s, name).data {
            check("hospital", format!("{}:{}", r[0], r[1]));
        }
    }
    for k in map.keys() {
        assert!(used.contains(k), "truth key without records: {k:?}");
    }
    // diagnoses belong to claims
    let claim_ids: HashSet<&str> = claims[0].data.iter().chain(claims[1].data.iter()).map(|r| r[0].as_str()).collect();
    let diags = load(d, &s, "claims_diagnoses.csv");
    assert!(diags.data.iter().all(|r| claim_ids.contains(r[0].as_str())));
    let all_ids: Vec<&str> = claims.iter().flat_map(|t| t.data.iter().map(|r| r[0].as_str())).collect();
    assert_eq!(all_ids.iter().collect::<HashSet<_>>().len(), all_ids.len(), "claim ids unique");

    // --- true persons
    let persons = load(d, &s, "ground_truth_persons.csv");
    let birth: HashMap<u64, String> = persons.data.iter().map(|r| (r[0].parse().unwrap(), r[3].clone())).collect();
    let death: HashMap<u64, String> = persons.data.iter().filter(|r| !r[4].is_empty()).map(|r| (r[0].parse().unwrap(), r[4].clone())).collect();

    // --- no claims before birth, (almost) none after death; birth-date noise within bounds
    let mut total = 0u64;
    let mut mistyped = 0u64;
    let mut after_death = 0u64;
    let mut half_width = 0u64;
    for t in &claims {
        let (ci_month, ci_birth, ci_kana) = (t.col("service_month"), t.col("birth_date"), t.col("name_kana"));
        for r in &t.data {
            let pid = map[&("claims".to_string(), format!("{}:{}:{}:{}", r[1], r[2], r[3], r[4]))];
            let b = &birth[&pid];
            assert!(r[ci_month].as_str() >= &b[..8], "claim for {pid} in {} before birth {b}", r[ci_month]);
            if let Some(dd) = death.get(&pid) {
                if r[ci_month].as_str() > dd.as_str() {
                    after_death += 1;
                }
            }
            total += 1;
            if &r[ci_birth] != b {
                mistyped += 1;
            }
            if r[ci_kana].chars().any(|c| ('\u{FF61}'..='\u{FF9F}').contains(&c)) {
                half_width += 1;
            }
        }
    }
    let rate = mistyped as f64 / total as f64;
    assert!(rate > 0.0005 && rate < 0.03, "mistyped birth dates in claims: {rate}");
    assert!((after_death as f64) < 0.005 * total as f64, "claims after death: {after_death}/{total}");
    let hw = half_width as f64 / total as f64;
    assert!(hw > 0.2 && hw < 0.95, "half-width kana share {hw}");

    // --- identity noise: old kanji forms in the register, surname changes, kana typos
    let old_forms = residents.data.iter().filter(|r| r[3].chars().any(|c| "髙﨑邊邉齋齊".contains(c))).count();
    assert!(old_forms > 0, "no old-form kanji in the resident register");
    let married = persons.data.iter().filter(|r| !r[8].is_empty()).count();
    assert!(married > 0 && (married as f64) < 0.05 * 6000.0, "marriages {married}");
    let surname_changes = events.data.iter().filter(|r| r[2] == "氏変更").count();
    assert!(surname_changes > 0);
    let true_kana: HashMap<u64, String> = persons.data.iter().map(|r| (r[0].parse().unwrap(), r[10].replace('　', ""))).collect();
    let (mut same, mut diff) = (0, 0);
    for r in &ck.data {
        let pid = map[&("checkup".to_string(), r[0].clone())];
        if r[8].replace('　', "") == true_kana[&pid] {
            same += 1;
        } else {
            diff += 1;
        }
    }
    let noisy = diff as f64 / (same + diff) as f64;
    assert!(noisy < 0.1, "checkup kana differing from the true kana (typos + marriages): {noisy}");

    // --- prevalence: HbA1c >= 6.5 more common in men 65-74 than women 40-49
    let (ca, cs, ch, ct) = (ck.col("age"), ck.col("sex"), ck.col("hba1c"), ck.col("checkup_type"));
    let share = |f: &dyn Fn(&Vec<String>) -> bool| {
        let sel: Vec<_> = ck.data.iter().filter(|r| f(r) && !r[ch].is_empty()).collect();
        (sel.iter().filter(|r| r[ch].parse::<f64>().unwrap() >= 6.5).count() as f64 / sel.len().max(1) as f64, sel.len())
    };
    let (men, n1) = share(&|r| r[cs] == "1" && (65..=74).contains(&r[ca].parse::<i32>().unwrap()));
    let (women, n2) = share(&|r| r[cs] == "2" && (40..=49).contains(&r[ca].parse::<i32>().unwrap()));
    assert!(n1 > 100 && n2 > 100);
    assert!(men > women + 0.03, "HbA1c>=6.5: men 65-74 {men}, women 40-49 {women}");
    assert!(men > 0.06 && men < 0.3, "men 65-74 share {men}");
    // 特定健診 only 40-74, 後期高齢者健診 75+
    for r in &ck.data {
        let age: i32 = r[ca].parse().unwrap();
        if r[ct] == "特定健診" {
            assert!((39..=75).contains(&age), "特定健診 at {age}");
        }
    }
    // ageing municipality: about 29% aged 65+ at the start
    let start_65 = persons
        .data
        .iter()
        .filter(|r| r[5].is_empty())
        .filter(|r| r[3].as_str() <= "1956-04-01")
        .count() as f64
        / persons.data.iter().filter(|r| r[5].is_empty()).count() as f64;
    assert!(start_65 > 0.22 && start_65 < 0.38, "65+ share {start_65}");
}
