//! `kura demo` over the wire: the four demo roles see what the README says they see.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::support::kura_bin;

struct Demo {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PASSWORD: &str = "demo-test-pw";

fn start() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(kura_bin())
        .args(["demo", "--data", dir.path().join("demo").to_str().unwrap(), "--persons", "2000", "--listen", "127.0.0.1:0"])
        .env("KURA_DEMO_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    for pipe in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let port = loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(300)).unwrap_or_else(|_| panic!("no address announced: {seen:?}"));
        if let Some(rest) = line.split("Kura is serving on ").nth(1) {
            break rest.split_whitespace().next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    Demo { child, port, _dir: dir }
}

async fn connect(demo: &Demo, user: &str) -> Client {
    let conninfo = format!("host=127.0.0.1 port={} user={user} password={PASSWORD} dbname=kura", demo.port);
    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap_or_else(|e| panic!("{user} logs in: {e}"));
    tokio::spawn(connection);
    client
}

/// Rows as text cells (NULL as "NULL").
async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect()),
            _ => None,
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_roles_see_what_the_readme_says() {
    let demo = start();
    let people = "SELECT atena_number, name_kana, birth_date, postal_code FROM resident.residents ORDER BY birth_date, postal_code";

    // operator: the secure zone, raw, opted-out persons included.
    let operator = connect(&demo, "operator").await;
    let raw = rows(&operator, people).await.unwrap();
    let total = raw.len();
    assert!(total >= 2000, "{total}");
    assert!(raw.iter().all(|r| r[1] != "NULL" && r[3].len() == 7), "{:?}", &raw[..3]);

    // researcher: pseudonymised, no names; the pseudonym is not the number.
    let researcher = connect(&demo, "researcher").await;
    let pseudo = rows(&researcher, people).await.unwrap();
    assert!(pseudo.iter().all(|r| r[1] == "NULL" && r[0].len() == 32 && r[0].chars().all(|c| c.is_ascii_hexdigit())), "{:?}", &pseudo[..3]);
    let numbers: std::collections::HashSet<&String> = raw.iter().map(|r| &r[0]).collect();
    assert!(pseudo.iter().all(|r| !numbers.contains(&r[0])));

    // researcher: a cohort across checkups, claims and care, joined on research_id (the demo
    // links its sources at start); opted-out persons are not in it; the map itself stays closed.
    let cohort = "SELECT count(DISTINCT k.research_id) FROM research.checkups k \
                  JOIN research.medical_claims m ON m.research_id = k.research_id \
                  JOIN research.care_certifications c ON c.research_id = k.research_id \
                  WHERE k.hba1c >= 6.0 AND m.fiscal_year >= k.fiscal_year";
    let linked = rows(&researcher, cohort).await.unwrap();
    let linked: i64 = linked[0][0].parse().unwrap();
    assert!(linked > 0, "no checkup participant linked to claims and care");
    let all = rows(&operator, cohort).await.unwrap();
    assert!(all[0][0].parse::<i64>().unwrap() >= linked);
    let opted = "SELECT count(*) FROM research.checkups k WHERE k.research_id IN (SELECT r.research_id FROM linkage.research_ids r \
                 JOIN consent.optout o ON r.source = 'resident' AND r.source_key = o.atena_number)";
    let admin = connect(&demo, "kura").await;
    assert!(rows(&admin, opted).await.unwrap()[0][0] != "0", "the demo has opted-out checkup participants");
    let visible = rows(&researcher, "SELECT count(*) FROM research.checkups").await.unwrap()[0][0].parse::<i64>().unwrap();
    let every = rows(&admin, "SELECT count(*) FROM research.checkups").await.unwrap()[0][0].parse::<i64>().unwrap();
    assert!(visible < every, "opted-out persons are removed for researchers: {visible} of {every}");
    let err = rows(&researcher, "SELECT * FROM linkage.research_ids LIMIT 1").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");

    // A refusal an operator records applies at once, with no policy changed: the person's
    // checkups leave the researcher's results, and the claims leave the analyst's.
    let person = rows(
        &admin,
        "SELECT r.source_key, k.research_id FROM linkage.research_ids r JOIN research.checkups k ON k.research_id = r.research_id \
         JOIN linkage.research_ids c ON c.research_id = r.research_id AND c.source = 'claims' \
         WHERE r.source = 'resident' AND r.source_key NOT IN (SELECT atena_number FROM consent.optout) ORDER BY 1 LIMIT 1",
    )
    .await
    .unwrap();
    let (atena, rid) = (&person[0][0], &person[0][1]);
    let theirs = format!("SELECT count(*) FROM research.checkups WHERE research_id = {rid}");
    assert_ne!(rows(&researcher, &theirs).await.unwrap()[0][0], "0");
    let err = rows(&researcher, &format!("OPT OUT resident KEY '{atena}'")).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");
    rows(&operator, &format!("OPT OUT resident KEY '{atena}' NOTE 'test'")).await.unwrap();
    assert_eq!(rows(&researcher, &theirs).await.unwrap()[0][0], "0");
    assert_ne!(rows(&operator, &theirs).await.unwrap()[0][0], "0");

    // The research tables hold no identity column: Kura kept names, birth dates, insured numbers
    // and every source key (and renderings such as birth_date_era) in the identity zone.
    let columns = rows(
        &admin,
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'research'",
    )
    .await
    .unwrap();
    let tables: std::collections::BTreeSet<&str> = columns.iter().map(|r| r[0].as_str()).collect();
    assert!(tables.len() >= 8, "{tables:?}");
    let identity = [
        "name_kana", "name_kanji", "birth_date", "birth_date_era", "postal_code", "insured_number", "insured_symbol",
        "insured_suffix", "insurer_number", "atena_number", "care_insured_number", "health_person_number", "patient_id",
        "hospital_code", "checkup_id",
    ];
    let leaked: Vec<&Vec<String>> = columns.iter().filter(|r| identity.contains(&r[1].as_str())).collect();
    assert!(leaked.is_empty(), "identity columns outside the zone: {leaked:?}");
    for t in tables.iter().filter(|t| **t != "claim_diagnoses") {
        assert!(columns.iter().any(|r| r[0] == *t && r[1] == "research_id"), "{t} has no research_id");
    }
    // Each linked table's rows carry research IDs (the demo's data all links) and sit in person order.
    let unlinked = rows(&admin, "SELECT count(*) FROM research.medical_claims WHERE research_id IS NULL").await.unwrap();
    assert_eq!(unlinked, vec![vec!["0".to_string()]]);
    // The identity zone fails closed: a table granted by mistake to a non-operator without masks
    // stays shut, while operators read it raw.
    rows(&admin, "GRANT SELECT ON hospital.patients TO researchers").await.unwrap();
    let err = rows(&researcher, "SELECT count(*) FROM hospital.patients").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");
    let message = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
    assert!(message.contains("identity zone"), "{message}");
    rows(&admin, "REVOKE SELECT ON hospital.patients FROM researchers").await.unwrap();
    let names = rows(&operator, "SELECT name_kana FROM hospital.patients LIMIT 1").await.unwrap();
    assert!(names[0][0] != "NULL" && !names[0][0].is_empty(), "{names:?}");
    let linked_tables = rows(&admin, "SHOW LINKED TABLES").await.unwrap();
    assert!(linked_tables.len() >= 8 && linked_tables.iter().any(|r| r[4].contains("name_kana (name_kana)")), "{linked_tables:?}");

    // analyst: anonymised; no identifiers, birth month, 3-digit postal code, opt-outs removed.
    let analyst = connect(&demo, "analyst").await;
    let anon = rows(&analyst, people).await.unwrap();
    assert!(anon.len() < total, "opted-out persons are removed: {} of {total}", anon.len());
    assert!(anon.iter().all(|r| r[0] == "NULL" && r[1] == "NULL" && r[2].ends_with("-01") && r[3].len() == 3), "{:?}", &anon[..3]);
    let err = rows(&analyst, "SELECT address FROM resident.residents").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42703", "{err}");
    let raw_name = &raw[0][1];
    let found = rows(&analyst, &format!("SELECT count(*) FROM resident.residents WHERE name_kana = '{raw_name}'")).await.unwrap();
    assert_eq!(found, vec![vec!["0".to_string()]]);

    // municipal_user: aggregates of at least 10 persons only.
    let municipal = connect(&demo, "municipal_user").await;
    let wards = rows(&municipal, "SELECT ward_name, count(*) FROM resident.residents GROUP BY 1").await.unwrap();
    assert!(!wards.is_empty() && wards.iter().all(|r| r[1].parse::<i64>().unwrap() >= 10), "{wards:?}");
    let err = rows(&municipal, "SELECT * FROM resident.residents LIMIT 1").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");
    let one = rows(&municipal, &format!("SELECT count(*) FROM resident.residents WHERE atena_number = '{}'", raw[0][0])).await.unwrap();
    assert!(one.is_empty(), "one person's group is suppressed: {one:?}");
    let explained = rows(&municipal, "EXPLAIN PRIVACY SELECT sex, count(*) FROM resident.residents GROUP BY 1").await.unwrap();
    assert!(explained.iter().any(|r| r[1].contains("aggregates only, each group at least 10")), "{explained:?}");

    let err = rows(&analyst, "SELECT count(*) FROM research.checkups").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");

    // kura, the superuser: policies are listed for administrators.
    let policies = rows(&admin, "SHOW POLICIES").await.unwrap();
    assert!(policies.len() >= 4, "{policies:?}");
    let err = rows(&analyst, "SHOW POLICIES").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");

    // auditor: the audit trail, with the municipal user's suppressed probe on record (its
    // identity literal redacted), and no data.
    let auditor = connect(&demo, "auditor").await;
    let probes = rows(
        &auditor,
        "SELECT statement, rows, array_to_string(policies, '; ') FROM audit.statements          WHERE user_name = 'municipal_user' AND statement LIKE '%atena_number%'",
    )
    .await
    .unwrap();
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert!(probes[0][0].contains("atena_number = '<redacted>'"), "{probes:?}");
    assert!(!probes[0][0].contains(&raw[0][0]), "the atena number reached the audit trail: {probes:?}");
    assert!(probes[0][2].contains("aggregation"), "{probes:?}");
    let err = rows(&auditor, "SELECT count(*) FROM resident.residents").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501", "{err}");
    for user in ["analyst", "researcher", "municipal_user"] {
        let c = connect(&demo, user).await;
        let err = rows(&c, "SELECT count(*) FROM audit.statements").await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{user}: {err}");
    }
}
