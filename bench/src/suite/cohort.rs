//! The cohort suite: ten municipal and research questions over the generator's warehouse
//! (`bench/queries/cohort/*.sql`, each opening with what it asks and which joins it makes),
//! written once in SQL that Kura, DataFusion and DuckDB all read the same way (no integer `/`,
//! which DuckDB answers as a double; no `median`, which the two define differently for even
//! counts).
//!
//! Persons are not linked yet (no `research_id`): within claims and checkups a person is the
//! insurance key (insurer number, insured number, suffix); across sources the queries join
//! through `truth.person_map`, the generator's ground-truth map from each source key to the
//! person. That map stands in for the linkage table: once linkage lands, each such join becomes
//! a join on `research_id`, of the same shape.

/// The tables the queries read.
pub const TABLES: &[&str] = &[
    "resident.residents",
    "resident.events",
    "claims.medical_claims",
    "claims.claim_diagnoses",
    "checkup.results",
    "care.certifications",
    "care.benefits",
    "vaccination.records",
    "truth.person_map",
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
