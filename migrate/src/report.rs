//! The migration report, as JSON (for tools) and text (for people).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::verify::TableCheck;

/// Counts of one kind of object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Source URL.
    pub source: String,
    /// Destination URL.
    pub destination: String,
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// Seconds spent copying (all passes).
    pub copy_seconds: f64,
    /// Seconds spent verifying tables (after the copy).
    pub verify_seconds: f64,
    /// Only planned, nothing written.
    pub dry_run: bool,
    /// The source was made read-only and the last changes copied.
    pub cutover: bool,
    /// Objects at the source (migrated ones, i.e. without the flag and journal).
    pub listed: Tally,
    /// Objects copied in this run.
    pub copied: Tally,
    /// Objects already at the destination, verified by an earlier run.
    pub skipped: Tally,
    /// Objects removed from the destination because they left the source.
    pub removed: Tally,
    /// Copied objects checked against the destination's own MD5 ETag.
    pub verified_by_etag: u64,
    /// Copied objects checked by reading them back.
    pub verified_by_reading: u64,
    /// Copy passes (a cutover makes two).
    pub passes: u32,
    /// The catalog version the destination has.
    pub catalog_version: Option<u64>,
    /// Per-table verification.
    pub tables: Vec<TableCheck>,
    /// For `--dry-run`: what would be copied (path, bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub would_copy: Vec<(String, u64)>,
    /// For `--dry-run`: what would be removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub would_remove: Vec<String>,
    /// Everything checked out.
    pub ok: bool,
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

impl Report {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run { "Dry run" } else { "Migration" };
        out.push_str(&format!("{verb}: {} -> {}\n", self.source, self.destination));
        let rate = if self.copy_seconds > 0.0 { self.copied.bytes as f64 / self.copy_seconds } else { 0.0 };
        out.push_str(&format!("  source objects   {:>8}  {:>11}\n", self.listed.objects, size(self.listed.bytes)));
        if self.dry_run {
            let bytes: u64 = self.would_copy.iter().map(|(_, b)| b).sum();
            out.push_str(&format!("  would copy       {:>8}  {:>11}\n", self.would_copy.len(), size(bytes)));
            out.push_str(&format!("  already there    {:>8}  {:>11}\n", self.skipped.objects, size(self.skipped.bytes)));
            out.push_str(&format!("  would remove     {:>8}\n", self.would_remove.len()));
            return out;
        }
        out.push_str(&format!(
            "  copied           {:>8}  {:>11}  in {:.1} s ({}/s, {} pass{})\n",
            self.copied.objects,
            size(self.copied.bytes),
            self.copy_seconds,
            size(rate as u64),
            self.passes,
            if self.passes == 1 { "" } else { "es" }
        ));
        out.push_str(&format!("  skipped (there)  {:>8}  {:>11}\n", self.skipped.objects, size(self.skipped.bytes)));
        out.push_str(&format!("  removed          {:>8}  {:>11}\n", self.removed.objects, size(self.removed.bytes)));
        out.push_str(&format!(
            "  checksums        {:>8} by the destination's MD5 ETag, {} read back\n",
            self.verified_by_etag, self.verified_by_reading
        ));
        if let Some(v) = self.catalog_version {
            out.push_str(&format!("  catalog version  {v:>8}\n"));
        }
        let good = self.tables.iter().filter(|t| t.matches).count();
        out.push_str(&format!(
            "  tables verified  {:>8} of {} (rows and content hash, both sides) in {:.1} s\n",
            good,
            self.tables.len(),
            self.verify_seconds
        ));
        for t in &self.tables {
            let mark = if t.matches { "ok  " } else { "DIFF" };
            out.push_str(&format!(
                "    {mark} {:<40} v{:<5} {:>12} rows  {}\n",
                t.name,
                t.version,
                t.destination_rows,
                if t.matches {
                    t.destination_hash.clone()
                } else {
                    format!("source {} rows {} / destination {}", t.source_rows, t.source_hash, t.destination_hash)
                }
            ));
        }
        out.push_str(&format!(
            "  {} in {:.1} s{}\n",
            if self.ok { "verified" } else { "FAILED" },
            self.seconds,
            if self.cutover { " (cutover: the source is now read-only)" } else { "" }
        ));
        out
    }
}
