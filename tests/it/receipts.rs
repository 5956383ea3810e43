//! Claims files in the electronic receipt format (レセプト電算): the generator writes its
//! medical and dental claims both as CSV and as claims files; `COPY ... WITH (FORMAT receipt)`
//! must load exactly the claims the CSV holds, keep identity in the claim header (the linkage
//! zone), refuse malformed files by file, line and record type, and never load a batch twice.

use std::path::Path;

use crate::support::count;

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The first claims file under `dir` (in path order) whose text contains `needle`.
fn file_with(dir: &Path, needle: &str) -> std::path::PathBuf {
    let mut files = crate::support::files_below(dir);
    files.sort();
    files
        .into_iter()
        .find(|f| {
            let bytes = std::fs::read(f).unwrap();
            encoding_rs::SHIFT_JIS.decode(&bytes).0.contains(needle)
        })
        .unwrap_or_else(|| panic!("no claims file with {needle}"))
}

/// Rewrites a Shift_JIS file through `edit` on its text.
fn edit(file: &Path, edit: impl Fn(&str) -> String) {
    let bytes = std::fs::read(file).unwrap();
    let text = encoding_rs::SHIFT_JIS.decode(&bytes).0.into_owned();
    std::fs::write(file, encoding_rs::SHIFT_JIS.encode(&edit(&text)).0).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_files_load_the_same_claims_as_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    kura_datagen::generate(&kura_datagen::Config {
        persons: 1500,
        seed: 3,
        out_dir: source.clone(),
        progress: false,
        receipts: true,
    })
    .unwrap();
    let engine = kura_engine::Engine::open_with(
        &dir.path().join("wh").to_string_lossy(),
        kura_engine::EngineOptions { audit: kura_engine::audit::AuditOptions::on(), ..Default::default() },
    )
    .await
    .unwrap();
    let mut session = engine.session("kura");
    session.set_base_dir(&source);
    session.execute_all(&std::fs::read_to_string(source.join("load.sql")).unwrap()).await.unwrap();
    session.execute_all("CREATE SCHEMA receipts").await.unwrap();
    let loaded = session.execute_all("COPY receipts FROM 'receipts' WITH (FORMAT receipt)").await.unwrap();
    let csv_claims = count(
        &session,
        "SELECT (SELECT count(*) FROM claims.medical_claims) + (SELECT count(*) FROM claims.dental_claims)",
    )
    .await;
    assert!(csv_claims > 10_000, "{csv_claims} claims");
    match &loaded[0].1 {
        kura_engine::StatementOutput::Command { tag, rows } => {
            assert_eq!((tag.clone(), *rows), (format!("COPY {csv_claims}"), Some(csv_claims as u64)))
        }
        other => panic!("COPY answered {other:?}"),
    }

    // The same claims, field by field, as a multiset.
    let cols = "insurer_number, insured_symbol, insured_number, insured_suffix, name_kana, birth_date, sex, \
                facility_code, service_month, setting, actual_days, total_points";
    let csv = format!("(SELECT {cols} FROM claims.medical_claims UNION ALL SELECT {cols} FROM claims.dental_claims)");
    let uke = format!("SELECT {cols} FROM receipts.claims");
    assert_eq!(
        count(&session, &format!("SELECT count(*) FROM ({csv} EXCEPT ALL {uke})")).await,
        0,
        "claims in the CSV only"
    );
    assert_eq!(
        count(&session, &format!("SELECT count(*) FROM ({uke} EXCEPT ALL {csv})")).await,
        0,
        "claims in the files only"
    );
    let dx = "disease_code, start_date, is_main, is_suspected";
    let dx_csv = format!("SELECT {dx} FROM claims.claim_diagnoses");
    let dx_uke = format!("SELECT {dx} FROM receipts.diagnoses");
    assert_eq!(count(&session, &format!("SELECT count(*) FROM ({dx_csv} EXCEPT ALL {dx_uke})")).await, 0);
    assert_eq!(count(&session, &format!("SELECT count(*) FROM ({dx_uke} EXCEPT ALL {dx_csv})")).await, 0);
    // Every claim's procedure, drug and material lines add up to its points, and each file's
    // GO trailer total is what its receipts hold.
    let off = count(
        &session,
        "SELECT count(*) FROM receipts.claims c LEFT JOIN (
           SELECT claim_id, sum(points * times) AS p FROM (
             SELECT claim_id, points, times FROM receipts.procedures UNION ALL
             SELECT claim_id, points, times FROM receipts.drugs UNION ALL
             SELECT claim_id, points, times FROM receipts.materials) GROUP BY claim_id) l ON l.claim_id = c.claim_id
         WHERE l.p IS DISTINCT FROM CAST(c.total_points AS BIGINT)",
    )
    .await;
    assert_eq!(off, 0, "claims whose lines do not add up to their points");
    assert!(count(&session, "SELECT count(*) FROM receipts.drugs").await > 1000);
    assert!(count(&session, "SELECT count(*) FROM receipts.claims WHERE name_kanji IS NULL OR admission_date IS NOT NULL AND setting <> '入院'").await == 0);
    assert_eq!(
        count(&session, "SELECT sum(receipts) FROM receipts.receipt_files").await,
        csv_claims,
        "receipt_files lists every file section"
    );
    let ingested = count(&session, "SELECT count(*) FROM audit.ingestions WHERE format = 'receipt'").await;
    assert!(ingested >= 6, "each table's load is on record ({ingested})");
    let recorded = count(
        &session,
        "SELECT count(*) FROM audit.statements WHERE kind = 'COPY' AND array_has(objects_written, 'receipts.*')",
    )
    .await;
    assert_eq!(recorded, 1, "the statement's record names the schema it wrote");

    // A second load of the same files is refused, and changes nothing.
    let again =
        session.execute_all("COPY receipts FROM 'receipts' WITH (FORMAT receipt)").await.unwrap_err().to_string();
    assert!(again.contains("loaded before"), "{again}");
    assert_eq!(count(&session, "SELECT count(*) FROM receipts.claims").await, csv_claims);

    // Identity stays in the claim header: a linkage source reads it and a linked table holds
    // none of it.
    session
        .execute_all(
            "CREATE LINKAGE SOURCE uke AS SELECT insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number \
               || ':' || coalesce(insured_suffix, '') AS source_key, name_kana, name_kanji, birth_date, sex, insurer_number, \
               insured_symbol, insured_number, insured_suffix FROM receipts.claims;
             LINK;
             CREATE SCHEMA research;
             CREATE LINKED TABLE research.uke_claims FROM receipts.claims LINKAGE SOURCE uke
               KEY insurer_number || ':' || coalesce(insured_symbol, '') || ':' || insured_number || ':' || coalesce(insured_suffix, '');",
        )
        .await
        .unwrap();
    let batches = session.query("SELECT * FROM research.uke_claims LIMIT 1").await.unwrap();
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    for identity in [
        "name_kana",
        "name_kanji",
        "birth_date",
        "insured_symbol",
        "insured_number",
        "insured_suffix",
        "insured_number_public",
        "insurer_number",
        "sex",
    ] {
        assert!(!names.contains(&identity.to_string()), "{identity} reached the linked table: {names:?}");
    }
    assert!(names.contains(&"research_id".to_string()) && names.contains(&"total_points".to_string()), "{names:?}");
    assert_eq!(
        count(&session, "SELECT count(*) FROM research.uke_claims WHERE research_id IS NOT NULL").await,
        csv_claims
    );
    let persons = count(&session, "SELECT count(DISTINCT research_id) FROM research.uke_claims").await;
    assert!(persons > 1000 && persons < 1700, "{persons} persons with claims among 1,500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_claims_files_are_refused_or_left_out_by_file_line_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    kura_datagen::generate(&kura_datagen::Config {
        persons: 300,
        seed: 4,
        out_dir: source.clone(),
        progress: false,
        receipts: true,
    })
    .unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    copy_tree(&source.join("receipts"), &bad);
    let receipts_in = |d: &Path| {
        crate::support::files_below(d)
            .iter()
            .map(|f| encoding_rs::SHIFT_JIS.decode(&std::fs::read(f).unwrap()).0.matches("\r\nRE,").count() as i64)
            .sum::<i64>()
    };
    let total = receipts_in(&bad);
    // 1. A diagnosis with an impossible start date (month 13).
    let sy_file = file_with(&bad, "\r\nSY,");
    let sy_line = {
        let t = encoding_rs::SHIFT_JIS.decode(&std::fs::read(&sy_file).unwrap()).0.into_owned();
        t[..t.find("\r\nSY,").unwrap() + 2].matches("\r\n").count() + 1
    };
    edit(&sy_file, |t| {
        let at = t.find("\r\nSY,").unwrap() + 2;
        let fields: Vec<&str> = t[at..].splitn(4, ',').collect();
        format!("{}SY,{},{}13{},{}", &t[..at], fields[1], &fields[2][..3], &fields[2][5..], fields[3])
    });
    // 2. A file cut short: its GO trailer is gone.
    let mut files = crate::support::files_below(&bad);
    files.sort();
    let cut = files.iter().rev().find(|f| **f != sy_file).unwrap().clone();
    let cut_receipts = encoding_rs::SHIFT_JIS.decode(&std::fs::read(&cut).unwrap()).0.matches("\r\nRE,").count() as i64;
    edit(&cut, |t| t[..t.find("GO,").unwrap()].to_string());
    let sy_rel = sy_file.strip_prefix(&bad).unwrap().to_string_lossy().to_string();
    let cut_rel = cut.strip_prefix(&bad).unwrap().to_string_lossy().to_string();

    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let session = engine.session("kura");
    session.execute_all("CREATE SCHEMA strict; CREATE SCHEMA lenient").await.unwrap();
    let copy = |schema: &str, on_error: &str| {
        format!("COPY {schema} FROM '{}' WITH (FORMAT receipt, ON_ERROR '{on_error}')", bad.display())
    };

    // ON_ERROR 'abort': the first problem named by file, line, record type and field; nothing
    // loaded, not even the tables.
    let err = session.execute_all(&copy("strict", "abort")).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.sqlstate(), "22P04", "{text}");
    assert!(text.contains(&sy_rel) && text.contains(&format!("line {sy_line}")), "{text}");
    assert!(text.contains("SY record") && text.contains("field 3") && text.contains("2 problems"), "{text}");
    assert!(session.execute_all("SELECT count(*) FROM strict.claims").await.is_err(), "an abandoned load made tables");

    // ON_ERROR 'skip': the receipt with the bad record and the truncated file are left out and
    // listed; everything else loads.
    session.execute_all(&copy("lenient", "skip")).await.unwrap();
    let loaded = count(&session, "SELECT count(*) FROM lenient.claims").await;
    assert_eq!(loaded, total - 1 - cut_receipts, "{total} receipts, {cut_receipts} in the truncated file");
    let rejects = session
        .query("SELECT file, line, record_type, receipt_line, error FROM lenient.receipt_rejects ORDER BY file")
        .await
        .unwrap();
    let listed = kura_engine::datafusion::arrow::util::pretty::pretty_format_batches(&rejects).unwrap().to_string();
    assert_eq!(rejects.iter().map(|b| b.num_rows()).sum::<usize>(), 2, "{listed}");
    assert!(listed.contains(&sy_rel) && listed.contains("SY") && listed.contains(&format!("| {sy_line} ")), "{listed}");
    assert!(listed.contains(&cut_rel) && listed.contains("GO trailer"), "{listed}");
    assert_eq!(
        count(&session, &format!("SELECT count(*) FROM lenient.receipt_files WHERE file = '{cut_rel}'")).await,
        0,
        "the truncated file is not listed as loaded"
    );

    // A load that died after the claims' commit but before the file list's (its last): the
    // file list's commit is gone. Running it again completes it without loading twice.
    let files_before = count(&session, "SELECT count(*) FROM lenient.receipt_files").await;
    let entry = engine.catalog().cached().state.table("lenient", "receipt_files").unwrap().clone();
    let log = dir.path().join("wh").join(&entry.location).join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    std::fs::remove_file(commits.last().unwrap()).unwrap();
    // The load's process is gone: a new one opens the warehouse.
    drop(session);
    drop(engine);
    let engine = kura_engine::Engine::open(&dir.path().join("wh").to_string_lossy()).await.unwrap();
    let session = engine.session("kura");
    assert_eq!(count(&session, "SELECT count(*) FROM lenient.receipt_files").await, 0);
    session.execute_all(&copy("lenient", "skip")).await.unwrap();
    assert_eq!(count(&session, "SELECT count(*) FROM lenient.receipt_files").await, files_before);
    assert_eq!(count(&session, "SELECT count(*) FROM lenient.claims").await, loaded, "claims loaded twice");
    assert_eq!(count(&session, "SELECT count(*) FROM lenient.receipt_rejects").await, 2, "rejects listed twice");
    let again = session.execute_all(&copy("lenient", "skip")).await.unwrap_err().to_string();
    assert!(again.contains("loaded before"), "{again}");

    // Other bad input: a missing folder, a folder without claims files, a table name, STDIN.
    for (sql, expect) in [
        (format!("COPY lenient FROM '{}' WITH (FORMAT receipt)", dir.path().join("nowhere").display()), "nowhere"),
        (format!("COPY lenient FROM '{}' WITH (FORMAT receipt)", dir.path().join("wh").display()), "no claims files"),
        (format!("COPY lenient.claims FROM '{}' WITH (FORMAT receipt)", bad.display()), "name a schema"),
        ("COPY lenient FROM STDIN WITH (FORMAT receipt)".to_string(), "not STDIN"),
        (
            format!("COPY lenient FROM '{}' WITH (FORMAT receipt, HEADER true)", bad.display()),
            "ON_ERROR and ENCODING only",
        ),
        (format!("COPY lenient FROM '{}' WITH (FORMAT receipt, ON_ERROR 'maybe')", bad.display()), "'abort' or 'skip'"),
        (format!("COPY nosuch FROM '{}' WITH (FORMAT receipt)", bad.display()), "nosuch"),
    ] {
        let err = session.execute_all(&sql).await.unwrap_err().to_string();
        assert!(err.contains(expect), "{sql}: {err}");
    }
    assert_eq!(count(&session, "SELECT count(*) FROM lenient.claims").await, loaded, "bad statements changed nothing");

    // The same through `kura import receipts`: abort fails naming the record, skip loads the
    // rest and prints what it left out.
    let cli = |on_error: &str| {
        std::process::Command::new(crate::support::kura_bin())
            .args(["import", "receipts"])
            .arg(&bad)
            .arg("--data")
            .arg(dir.path().join("cli-wh"))
            .args(["--on-error", on_error])
            .output()
            .unwrap()
    };
    let out = cli("abort");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("SY record") && stderr.contains(&sy_rel), "{stderr}");
    let out = cli("skip");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("loaded {loaded} receipts")) && stdout.contains(&cut_rel) && stdout.contains("GO trailer"), "{stdout}");
}
