//! Refused persons' rows in files of their own, so that the opt-out filter on linked tables costs
//! nothing per row.
//!
//! Every read of a linked table by a non-operator drops the rows of persons who refused
//! (`OPT OUT`) and the rows not linked yet (NULL `research_id`). As a filter, that is an anti
//! join of every row against the registry. Instead, each rewrite of a linked table (`CREATE
//! LINKED TABLE`, `REFRESH LINKED TABLE`, `LINK`) writes the rows such a reader must not see into
//! files of their own, in the same commit as the others, and tags every file it writes (the
//! `tags` of its Delta add action) `kura.refusals = clean@<stamp>` or `held@<stamp>`. The stamp
//! names the version of `linkage.optout_ids` the split was computed from.
//!
//! A reader whose registry is still at that version, on a table version whose files all carry
//! that stamp, reads the clean files and skips the held ones, with no filter. Anything else (a
//! refusal or a `LINK` since the rewrite, a file written by `UPDATE`, `DELETE`, `ERASE` or
//! `OPTIMIZE`, time travel) reads every file through the filter, which is always correct; the
//! next rewrite restores the layout.
//!
//! SECURITY: the stamp (the registry table's location and version) is read before the rows are,
//! and the rows are computed from exactly that version, so a tag never vouches for a split made
//! from other refusals. A file without a tag of the current stamp is never trusted.

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::boolean::not;
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::TryStreamExt;
use kura_catalog::Snapshot;
use kura_storage::{TableVersionSpec, Warehouse};

use crate::names::QualifiedName;
use crate::session::Session;
use crate::{Error, Result};

/// The add-action tag that records a file's side of the split.
pub(crate) const TAG: &str = "kura.refusals";

/// The column a rewrite's rows carry last: true for a row readers subject to refusals must not see.
pub(crate) const HELD_COLUMN: &str = "__kura_held";

/// Files a rewrite writes roll over at this size.
const TARGET_FILE_SIZE: u64 = 100 << 20;

/// The registry's current version: its stamp (location and Delta version) and the version, or
/// `None` when the warehouse has no registry yet.
pub(crate) async fn registry(warehouse: &Warehouse, snapshot: &Snapshot) -> Result<Option<(String, u64)>> {
    let Ok(entry) = snapshot.state.table("linkage", "optout_ids") else { return Ok(None) };
    let table = warehouse.open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let Some(version) = table.version() else { return Ok(None) };
    let version = u64::try_from(version).map_err(|_| Error::Invalid("negative table version".into()))?;
    Ok(Some((format!("{}@v{version}", entry.location), version)))
}

/// For a reader subject to refusals, the files to read instead of filtering (true for clean
/// files), given each file's tag: `Some` only when the layout is [`Layout::Current`].
pub(crate) fn clean_files(tags: &[Option<&str>], stamp: &str) -> Option<Vec<bool>> {
    (describe(tags.iter().copied(), stamp) == Layout::Current)
        .then(|| tags.iter().map(|t| t.is_some_and(|t| t.strip_prefix("clean@") == Some(stamp))).collect())
}

/// How a linked table's files stand against the current registry, as `SHOW LINKED TABLES` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Every file is of the current split: read without a filter.
    Current,
    /// Refusals or research IDs changed since the last rewrite: filtered until the next.
    RefusalsChanged,
    /// Rows were written since the last rewrite: filtered until the next.
    RowsWritten,
    /// Not known (no registry, or files read through delta-rs).
    Unknown,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Current => "current",
            Layout::RefusalsChanged => "filtered until REFRESH (refusals or research IDs changed)",
            Layout::RowsWritten => "filtered until REFRESH (rows written since)",
            Layout::Unknown => "filtered",
        })
    }
}

/// The layout of a table whose files carry `tags`, against the registry's `stamp`.
pub(crate) fn describe<'a>(tags: impl Iterator<Item = Option<&'a str>>, stamp: &str) -> Layout {
    let mut layout = Layout::Current;
    for tag in tags {
        match tag.and_then(|t| t.split_once('@')) {
            Some(("clean" | "held", s)) if s == stamp => {}
            Some(("clean" | "held", _)) => layout = Layout::RefusalsChanged,
            _ => return Layout::RowsWritten,
        }
    }
    layout
}

/// Replaces every row of linked table `qn` (at `location`) by the rows of `rows`, whose last column is
/// [`HELD_COLUMN`] and whose others are the table's columns in order, in one commit: held rows
/// and the others in separate files, tagged under `stamp`. Returns the number of rows written.
pub(crate) async fn rewrite(session: &Session, location: &str, qn: &QualifiedName, rows: LogicalPlan, stamp: &str) -> Result<u64> {
    let warehouse = session.engine.warehouse();
    let table = warehouse.open_table(location, &TableVersionSpec::Latest).await?;
    let target = table.snapshot()?.snapshot().arrow_schema();
    let width = rows.schema().fields().len();
    if width != target.fields().len() + 1 || rows.schema().field(width - 1).name() != HELD_COLUMN {
        return Err(Error::Invalid(format!("the new rows of {qn} do not match its columns")));
    }
    let state = session.ctx.state();
    let physical = state.create_physical_plan(&rows).await.map_err(Error::from_datafusion)?;
    let mut stream = execute_stream(physical, session.ctx.task_ctx()).map_err(Error::from_datafusion)?;
    let writer = || RecordBatchWriter::for_table(&table).map(|w| w.with_target_file_size(TARGET_FILE_SIZE));
    let (mut clean, mut held) = (writer()?, writer()?);
    let mut written = 0u64;
    let outcome: Result<()> = async {
        while let Some(batch) = stream.try_next().await.map_err(Error::from_datafusion)? {
            let flags = batch.column(width - 1);
            let flags = flags
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| Error::Invalid(format!("{HELD_COLUMN} is not boolean")))?;
            // A row whose flag is unknown is held: refusals fail closed.
            let is_held = match flags.nulls() {
                Some(nulls) => BooleanArray::new(flags.values() | &!nulls.inner(), None),
                None => flags.clone(),
            };
            let is_clean = not(&is_held).map_err(arrow)?;
            let columns = target
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(arrow)?;
            let data = RecordBatch::try_new(target.clone(), columns).map_err(arrow)?;
            written += data.num_rows() as u64;
            for (writer, mask) in [(&mut clean, &is_clean), (&mut held, &is_held)] {
                let part = filter_record_batch(&data, mask).map_err(arrow)?;
                if part.num_rows() > 0 {
                    writer.write(part).await?;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        // Files written so far are not in any commit; VACUUM removes them.
        clean.reset();
        held.reset();
        return Err(e);
    }
    let mut actions = Vec::new();
    for (writer, side) in [(&mut clean, "clean"), (&mut held, "held")] {
        for mut add in writer.flush().await? {
            add.tags.get_or_insert_with(Default::default).insert(TAG.to_string(), Some(format!("{side}@{stamp}")));
            actions.push(Action::Add(add));
        }
    }
    let snapshot = table.snapshot()?;
    actions.extend(snapshot.log_data().iter().map(|f| Action::Remove(f.remove_action(true))));
    let operation = DeltaOperation::Write { mode: SaveMode::Overwrite, partition_by: None, predicate: None };
    CommitBuilder::from(CommitProperties::default())
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await?;
    match warehouse.open_table(location, &TableVersionSpec::Latest).await {
        Ok(table) => crate::dml::after_write(&table).await,
        Err(e) => tracing::warn!(table = %qn, error = %e, "could not reopen the table after its rewrite"),
    }
    Ok(written)
}

fn arrow(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::DataFusion(e.into())
}

/// The held/clean split in a query's terms: a linked table's row is held when it has no research
/// ID or its person refused, as of registry version `version`.
pub(crate) fn held_join(research_id: &str, version: u64) -> (String, String) {
    (
        format!("LEFT JOIN (SELECT DISTINCT research_id FROM linkage.\"optout_ids@v{version}\") __kura_o ON __kura_o.research_id = {research_id}"),
        format!("({research_id} IS NULL OR __kura_o.research_id IS NOT NULL) AS {HELD_COLUMN}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_of_the_current_stamp_are_trusted() {
        let s = "tables/x@v3";
        assert_eq!(clean_files(&[Some("clean@tables/x@v3"), Some("held@tables/x@v3")], s), Some(vec![true, false]));
        assert_eq!(clean_files(&[], s), Some(vec![]));
        // A file from another registry version, an untagged file, or a foreign tag: filter instead.
        for other in [Some("clean@tables/x@v2"), None, Some("clean@tables/x@v3 "), Some("other@tables/x@v3"), Some("clean")] {
            assert_eq!(clean_files(&[Some("clean@tables/x@v3"), other], s), None, "{other:?}");
        }
        assert_eq!(describe([Some("held@tables/x@v2")].into_iter(), s), Layout::RefusalsChanged);
        assert_eq!(describe([Some("held@tables/x@v2"), None].into_iter(), s), Layout::RowsWritten);
    }
}
