//! A sqllogictest connection backed by a Kura session.

use std::sync::Arc;

use async_trait::async_trait;
use kura_engine::datafusion::arrow::array::{Array, RecordBatch};
use kura_engine::datafusion::arrow::datatypes::DataType;
use kura_engine::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kura_engine::{Engine, Session, StatementOutput};
use sqllogictest::{DBOutput, DefaultColumnType};

/// One connection of a test file; connections of one file share one warehouse.
///
/// `SET SESSION AUTHORIZATION user` (as in PostgreSQL) makes the connection a logged-in session
/// of `user`, with privileges and policies enforced, and `RESET SESSION AUTHORIZATION` makes it
/// the embedded administrator again: so one file can test what each role sees.
pub struct KuraDb {
    engine: Arc<Engine>,
    base_dir: std::path::PathBuf,
    session: Session,
}

impl KuraDb {
    /// A new session on `engine`, resolving relative file paths against `base_dir`.
    pub fn new(engine: &Arc<Engine>, base_dir: &std::path::Path) -> Self {
        let mut session = engine.session("kura");
        session.set_base_dir(base_dir);
        Self { engine: engine.clone(), base_dir: base_dir.to_path_buf(), session }
    }

    /// Handles the harness's own statements; `None` when `sql` is not one of them.
    async fn switch_user(&mut self, sql: &str) -> Option<Result<(), SltError>> {
        let words: Vec<String> = sql.split_whitespace().map(|w| w.trim_end_matches(';').to_string()).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut session = match words.as_slice() {
            [set, s, a, user] if set.eq_ignore_ascii_case("SET") && s.eq_ignore_ascii_case("SESSION")
                && a.eq_ignore_ascii_case("AUTHORIZATION") =>
            {
                match self.engine.login_session(user.trim_matches('\'').trim_matches('"')).await {
                    Ok(s) => s,
                    Err(e) => return Some(Err(SltError(e.to_string()))),
                }
            }
            [reset, s, a] if reset.eq_ignore_ascii_case("RESET") && s.eq_ignore_ascii_case("SESSION")
                && a.eq_ignore_ascii_case("AUTHORIZATION") =>
            {
                self.engine.session("kura")
            }
            _ => return None,
        };
        session.set_base_dir(&self.base_dir);
        self.session = session;
        Some(Ok(()))
    }
}

/// The error a test sees: the engine's message.
#[derive(Debug)]
pub struct SltError(pub String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

fn column_type(dt: &DataType) -> DefaultColumnType {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt8 | DataType::UInt16
        | DataType::UInt32 | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .map_err(|e| SltError(e.to_string()))?;
        for r in 0..batch.num_rows() {
            let values: Vec<String> = formatters
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| {
                    if c.is_null(r) {
                        "NULL".to_string()
                    } else {
                        let v = f.value(r).to_string();
                        if v.is_empty() { "(empty)".to_string() } else { v }
                    }
                })
                .collect();
            // A multi-line value (an EXPLAIN plan) continues on rows of its own, one per line,
            // so expected results are written as the plan prints.
            let mut first = Vec::new();
            let mut more = Vec::new();
            for v in values {
                let mut lines = v.lines();
                first.push(lines.next().unwrap_or_default().to_string());
                more.extend(lines.map(|l| vec![l.to_string()]));
            }
            out.push(first);
            out.extend(more);
        }
    }
    Ok(out)
}

#[async_trait]
impl sqllogictest::AsyncDB for KuraDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        if let Some(switched) = self.switch_user(sql).await {
            return switched.map(|()| DBOutput::StatementComplete(0));
        }
        let statements = kura_engine::parse_sql(sql).map_err(|e| SltError(e.to_string()))?;
        let mut last = DBOutput::StatementComplete(0);
        for stmt in statements {
            let output = self.session.execute(stmt).await.map_err(|e| SltError(e.to_string()))?;
            last = match output {
                StatementOutput::Command { rows, .. } => DBOutput::StatementComplete(rows.unwrap_or(0)),
                StatementOutput::CopyIn(_) | StatementOutput::CopyOut(_) => {
                    return Err(SltError("COPY FROM STDIN / TO STDOUT needs a client; test it through the server".into()));
                }
                rows_output @ StatementOutput::Rows(_) => {
                    let (schema, batches) = rows_output.collect().await.map_err(|e| SltError(e.to_string()))?;
                    let schema = schema.expect("rows have a schema");
                    DBOutput::Rows {
                        types: schema.fields().iter().map(|f| column_type(f.data_type())).collect(),
                        rows: rows(&batches)?,
                    }
                }
            };
        }
        Ok(last)
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "kura"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}
