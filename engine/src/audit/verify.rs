//! Reading the audit chain back and checking it (`kura audit verify`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use kura_catalog::AUDIT_SCHEMA;
use kura_storage::TableVersionSpec;

use super::{AUDIT_TABLE, GENESIS, Record, chain_hash};
use crate::{Engine, Error, Result};

/// What `kura audit verify` found.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Records read.
    pub records: u64,
    /// The newest record: its sequence number and hash. Keep it outside the warehouse (it
    /// proves later that no record up to it was removed or changed).
    pub head: Option<(i64, String)>,
    /// Each problem found, in chain order; empty when the chain is intact.
    pub problems: Vec<String>,
}

impl AuditReport {
    /// Whether the chain is intact.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs `sql` over the audit table (registered as `audit`), returning its first column as text.
pub(crate) async fn query_strings(table: &deltalake::DeltaTable, sql: &str) -> Result<Vec<String>> {
    let ctx = context(table).await?;
    let batches = ctx.sql(sql).await.map_err(Error::from_datafusion)?.collect().await.map_err(Error::from_datafusion)?;
    let mut out = Vec::new();
    for b in batches {
        let col = text(b.column(0))?;
        let col = col.as_string::<i32>();
        out.extend((0..col.len()).filter(|i| col.is_valid(*i)).map(|i| col.value(i).to_string()));
    }
    Ok(out)
}

fn text(a: &Arc<dyn Array>) -> Result<Arc<dyn Array>> {
    datafusion::arrow::compute::cast(a, &DataType::Utf8).map_err(|e| Error::Invalid(format!("audit: {e}")))
}

/// Checks the whole chain of the engine's warehouse: every record's hash against its fields and
/// the previous record's hash, and sequence numbers without gaps or repeats. With `head` (a
/// `(seq, hash)` printed by an earlier verify and kept elsewhere), also that the chain still
/// reaches it unchanged: removing the newest records is evident only that way.
pub async fn verify(engine: &Engine, head: Option<(i64, String)>) -> Result<AuditReport> {
    if let Some(a) = &engine.auditor {
        a.flush().await?;
    }
    let snapshot = engine.catalog().refresh().await?;
    let entry = snapshot
        .state
        .table(AUDIT_SCHEMA, AUDIT_TABLE)
        .map_err(|_| Error::UndefinedObject("this warehouse has no audit trail (audit.statements)".into()))?;
    let mut report = AuditReport::default();
    let table = match engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await {
        Ok(t) => t,
        Err(e) => {
            report.problems.push(format!("the audit table cannot be opened: {e}"));
            return Ok(report);
        }
    };
    if let Err(e) = check_rows(&table, &mut report).await {
        report.problems.push(format!("the audit table cannot be read (a file missing or damaged): {e}"));
    }
    if let Some((seq, hash)) = head {
        let found = query_strings(&table, &format!("SELECT hash FROM audit WHERE seq = {seq}")).await.unwrap_or_default();
        match found.first() {
            None => report.problems.push(format!(
                "the chain ends before record {seq}, the head recorded earlier: the newest records were removed"
            )),
            Some(h) if *h != hash => {
                report.problems.push(format!("record {seq} no longer has the hash recorded earlier: the chain was rewritten"))
            }
            Some(_) => {}
        }
    }
    Ok(report)
}

/// A context with `table` (an audit schema table, read raw) registered as `audit`.
async fn context(table: &deltalake::DeltaTable) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    ctx.register_table("audit", table.table_provider().await?).map_err(Error::from_datafusion)?;
    Ok(ctx)
}

async fn check_rows(table: &deltalake::DeltaTable, report: &mut AuditReport) -> Result<()> {
    let ctx = context(table).await?;
    let df = ctx
        .sql(
            "SELECT seq, record_id, at, duration_us, user_name, roles, client, session_id, kind, statement, \
             objects_read, objects_written, policies, rows, outcome, sqlstate, error, prev_hash, hash \
             FROM audit ORDER BY seq",
        )
        .await
        .map_err(Error::from_datafusion)?;
    let mut stream = df.execute_stream().await.map_err(Error::from_datafusion)?;
    let mut expected = 1i64;
    let mut prev = GENESIS.to_string();
    let mut hashes = std::collections::HashMap::<String, i64>::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(Error::from_datafusion)?;
        for (seq, record, prev_hash, hash) in rows(&batch)? {
            report.records += 1;
            if seq < expected {
                report.problems.push(format!("record {seq} appears more than once"));
                continue;
            }
            if seq > expected {
                let gap = if seq == expected + 1 { format!("record {expected} is") } else { format!("records {expected} to {} are", seq - 1) };
                report.problems.push(format!("{gap} missing (removed)"));
            }
            if chain_hash(&prev_hash, seq, &record) != hash {
                report.problems.push(format!("record {seq} was changed: its fields no longer match its hash"));
            } else if prev_hash != prev && seq == expected {
                let moved = hashes.get(&prev_hash).map(|s| format!(" (it follows record {s})")).unwrap_or_default();
                report.problems.push(format!("record {seq} does not follow record {}{moved}: records were reordered or replaced", seq - 1));
            }
            hashes.insert(hash.clone(), seq);
            prev = hash.clone();
            expected = seq + 1;
            report.head = Some((seq, hash));
        }
    }
    Ok(())
}

type Row = (i64, Record, String, String);

fn rows(batch: &RecordBatch) -> Result<Vec<Row>> {
    let int = |i: usize| -> Result<Vec<Option<i64>>> {
        let a = datafusion::arrow::compute::cast(batch.column(i), &DataType::Int64).map_err(|e| Error::Invalid(e.to_string()))?;
        let a = a.as_primitive::<Int64Type>();
        Ok((0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r))).collect())
    };
    let string = |i: usize| -> Result<Vec<Option<String>>> {
        let a = text(batch.column(i))?;
        let a = a.as_string::<i32>();
        Ok((0..a.len()).map(|r| a.is_valid(r).then(|| a.value(r).to_string())).collect())
    };
    let list = |i: usize| -> Result<Vec<Vec<String>>> {
        let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let a = datafusion::arrow::compute::cast(batch.column(i), &target).map_err(|e| Error::Invalid(e.to_string()))?;
        let a = a.as_list::<i32>();
        Ok((0..a.len())
            .map(|r| {
                if a.is_null(r) {
                    return vec![];
                }
                let v = a.value(r);
                let v = v.as_string::<i32>();
                (0..v.len()).map(|k| v.value(k).to_string()).collect()
            })
            .collect())
    };
    let [seq, at, duration, rows] = [int(0)?, int(2)?, int(3)?, int(13)?];
    let [id, user, client, session, kind, statement, outcome, sqlstate, error, prev_hash, hash] =
        [1, 4, 6, 7, 8, 9, 14, 15, 16, 17, 18].map(|i| string(i));
    let (id, user, client, session, kind, statement) = (id?, user?, client?, session?, kind?, statement?);
    let (outcome, sqlstate, error, prev_hash, hash) = (outcome?, sqlstate?, error?, prev_hash?, hash?);
    let [roles, read, written, policies] = [5, 10, 11, 12].map(|i| list(i));
    let (roles, read, written, policies) = (roles?, read?, written?, policies?);
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok((0..batch.num_rows())
        .map(|r| {
            let record = Record {
                id: s(&id[r]),
                at_us: at[r].unwrap_or_default(),
                duration_us: duration[r].unwrap_or_default(),
                user: s(&user[r]),
                roles: roles[r].clone(),
                client: s(&client[r]),
                session: s(&session[r]),
                kind: s(&kind[r]),
                statement: s(&statement[r]),
                read: read[r].clone(),
                written: written[r].clone(),
                policies: policies[r].clone(),
                rows: rows[r],
                outcome: s(&outcome[r]),
                sqlstate: sqlstate[r].clone(),
                error: error[r].clone(),
            };
            (seq[r].unwrap_or_default(), record, s(&prev_hash[r]), s(&hash[r]))
        })
        .collect())
}
