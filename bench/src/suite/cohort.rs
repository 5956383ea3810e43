//! The cohort suite: ten municipal and research questions over the generator's warehouse
//! (`bench/queries/cohort/*.sql`, each opening with what it asks and which joins it makes),
//! written once in SQL that Kura, DataFusion and DuckDB all read the same way (no integer `/`,
//! which DuckDB answers as a double; no `median`, which the two define differently for even
//! counts).
//!
//! The queries read what analysts get: the research tables (`bench/queries/cohort_research.sql`,
//! linked tables made after `LINK`), where every source's rows carry the person's `research_id`
//! in place of names and insured numbers, and a cohort is a join on it. Diagnoses, which hold no
//! identity, are read from `claims.claim_diagnoses` by claim ID.

/// The tables the queries read.
pub const TABLES: &[&str] = &[
    "research.residents",
    "research.resident_events",
    "research.medical_claims",
    "claims.claim_diagnoses",
    "research.checkups",
    "research.care_certifications",
    "research.care_benefits",
    "research.vaccinations",
];

/// The queries of a suite folder (`bench/queries/<suite>/*.sql`), by file name.
pub fn load_queries(suite: &str) -> anyhow::Result<Vec<(String, String)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries").join(suite);
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().expect("file name").to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&p)?;
            Ok((name, sql.trim().trim_end_matches(';').to_string()))
        })
        .collect()
}
