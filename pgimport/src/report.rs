//! The report of an import: per table rows, seconds, rows per second and whether both sides
//! agreed; as text for people and JSON for machines.

use serde::Serialize;

/// What happened to one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Loaded and verified in this run.
    Imported,
    /// Loaded by an earlier run that died before verifying; verified now.
    Resumed,
    /// Verified by an earlier run; not read again.
    Skipped,
    /// Loaded but the two sides disagree.
    Mismatch,
    /// Not loaded (see its error).
    Failed,
}

/// One table's line.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// `schema.table` in PostgreSQL.
    pub source: String,
    /// `schema.table` in Kura.
    pub target: String,
    /// What happened.
    pub status: Status,
    /// Rows in Kura.
    pub rows: u64,
    /// Rows PostgreSQL counted (in the snapshot that was copied).
    pub source_rows: u64,
    /// Seconds, load and verification.
    pub seconds: f64,
    /// Rows per second over those seconds.
    pub rows_per_second: f64,
    /// Whether rows and checksums agree.
    pub verified: bool,
    /// PostgreSQL's checksum.
    pub source_checksum: String,
    /// Kura's checksum.
    pub checksum: String,
    /// Bytes of binary COPY data received.
    pub bytes: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The whole import.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `postgres://host:port/db`.
    pub source: String,
    /// Kura schema the tables went to.
    pub target_schema: String,
    /// One line per table, by name.
    pub tables: Vec<TableReport>,
    /// Rows in all imported tables.
    pub rows: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Whether every table is verified.
    pub ok: bool,
}

impl Report {
    /// A text summary, one line per table.
    pub fn to_text(&self) -> String {
        let mut out = format!("Import: {} -> Kura schema {}\n", self.source, self.target_schema);
        for t in &self.tables {
            let status = match t.status {
                Status::Imported => "ok  ",
                Status::Resumed => "ok* ",
                Status::Skipped => "skip",
                Status::Mismatch => "DIFF",
                Status::Failed => "FAIL",
            };
            out.push_str(&format!(
                "  {status} {:<40} {:>12} rows {:>8.1} s {:>12.0} rows/s  {}\n",
                t.target,
                t.rows,
                t.seconds,
                t.rows_per_second,
                match (&t.error, t.status) {
                    (Some(e), _) => e.clone(),
                    (None, Status::Mismatch) => format!(
                        "PostgreSQL {} rows checksum {}, Kura {} rows checksum {}",
                        t.source_rows, t.source_checksum, t.rows, t.checksum
                    ),
                    (None, Status::Skipped) => "verified by an earlier run".into(),
                    (None, _) => format!("verified (rows and checksum {})", t.checksum),
                }
            ));
        }
        let verified = self.tables.iter().filter(|t| t.verified).count();
        out.push_str(&format!(
            "  {} of {} tables verified; {} rows in {:.1} s ({:.0} rows/s)\n",
            verified,
            self.tables.len(),
            self.rows,
            self.seconds,
            if self.seconds > 0.0 { self.rows as f64 / self.seconds } else { 0.0 }
        ));
        out
    }
}
