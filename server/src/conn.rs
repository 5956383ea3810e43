//! One client connection: login, then statements run in the user's engine session.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use futures::{Sink, SinkExt, StreamExt, stream};
use kura_engine::{Described, Error as EngineError, ParsedStatement, Session, StatementKind, StatementOutput};
use parking_lot::Mutex;
use pgwire::api::auth::StartupHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, METADATA_USER, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::NoticeResponse;
use pgwire::messages::startup::{Authentication, ParameterStatus};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::types::format::FormatOptions;
use tokio::sync::watch;

use crate::Shared;
use crate::auth::{self, MECHANISM, ScramState};

/// Why a running statement stopped early.
const STOP_NONE: u8 = 0;
const STOP_CANCEL: u8 = 1;
const STOP_TIMEOUT: u8 = 2;

/// The per-connection state every handler of one connection shares.
pub(crate) struct Conn {
    pub(crate) shared: Arc<Shared>,
    session: Arc<OnceLock<Arc<Session>>>,
    scram: tokio::sync::Mutex<ScramState>,
    settings: Mutex<Settings>,
    /// Bumped by a cancel request for this connection.
    cancel: watch::Sender<u64>,
    /// Whether statements that changed data ran since BEGIN (to warn on ROLLBACK).
    wrote_in_block: AtomicBool,
    parser: Arc<StatementParser>,
    /// This connection, for the cancel registry.
    me: std::sync::Weak<Conn>,
    /// A `COPY ... FROM STDIN` waiting for the client's data.
    copy_in: tokio::sync::Mutex<Option<kura_engine::CopyIn>>,
}

impl Conn {
    pub(crate) fn new(shared: Arc<Shared>, me: std::sync::Weak<Conn>) -> Self {
        let session = Arc::new(OnceLock::new());
        Self {
            me,
            copy_in: tokio::sync::Mutex::new(None),
            shared,
            parser: Arc::new(StatementParser { session: session.clone() }),
            session,
            scram: tokio::sync::Mutex::new(ScramState::Initial),
            settings: Mutex::new(Settings::default()),
            cancel: watch::channel(0).0,
            wrote_in_block: AtomicBool::new(false),
        }
    }

    fn session(&self) -> PgWireResult<Arc<Session>> {
        self.session.get().cloned().ok_or_else(|| {
            PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), "08P01".into(), "not logged in".into())))
        })
    }

    /// Fires a cancel request (from another connection carrying this one's key).
    pub(crate) fn cancel(&self) {
        self.cancel.send_modify(|n| *n += 1);
    }
}

/// Settings clients set and show (`SET DateStyle`, `SHOW transaction_isolation`, ...).
#[derive(Debug, Clone)]
struct Settings {
    values: HashMap<String, String>,
    statement_timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        let values = [
            ("server_version", crate::SERVER_VERSION),
            ("server_version_num", "160006"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("datestyle", "ISO, MDY"),
            ("timezone", "UTC"),
            ("intervalstyle", "postgres"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("search_path", "public"),
            ("transaction_isolation", "read committed"),
            ("default_transaction_isolation", "read committed"),
            ("transaction_read_only", "off"),
            ("statement_timeout", "0"),
            ("extra_float_digits", "1"),
            ("max_identifier_length", "63"),
            ("application_name", ""),
            ("bytea_output", "hex"),
            ("lc_collate", "C"),
            ("lc_ctype", "C"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self { values, statement_timeout: None }
    }
}

/// Parses `statement_timeout` values: `0`, `5000` (ms), `'5s'`, `'250ms'`, `'1min'`.
fn parse_timeout(text: &str) -> Option<Option<Duration>> {
    let t = text.trim().to_ascii_lowercase();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
    let n: f64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1000.0,
        "min" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    };
    Some(if ms <= 0.0 { None } else { Some(Duration::from_millis(ms as u64)) })
}

/// An engine error as the client sees it: PostgreSQL's severity, SQLSTATE and message.
pub(crate) fn error_info(e: &EngineError) -> ErrorInfo {
    ErrorInfo::new("ERROR".into(), e.sqlstate().into(), e.to_string())
}

fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message.into())))
}

fn engine_error(e: EngineError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

/// PostgreSQL's limit: the protocol counts parameters in 16 bits.
const MAX_PARAMETERS: usize = 65535;

/// A statement prepared by the extended protocol.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    stmt: ParsedStatement,
    described: Described,
    parameter_types: Vec<Type>,
}

/// Parses and describes statements for the extended protocol.
pub(crate) struct StatementParser {
    session: Arc<OnceLock<Arc<Session>>>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(&self, _client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.session.get().cloned().ok_or_else(|| user_error("08P01", "not logged in"))?;
        let placeholders = count_placeholders(sql);
        if placeholders > MAX_PARAMETERS {
            return Err(user_error("54000", format!("too many parameters: {placeholders} (at most {MAX_PARAMETERS})")));
        }
        let mut statements = kura_engine::parse_sql(sql).map_err(engine_error)?;
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(user_error("42601", "cannot insert multiple commands into a prepared statement"));
        }
        let stmt = statements.remove(0);
        let described = if is_session_statement(&stmt) {
            let mut d = Described::default();
            if let StatementKind::Sql(sql) = &stmt.kind {
                if let Statement::ShowVariable { variable } = sql.as_ref() {
                    let key = setting_key(&variable_name(variable));
                    let field = datafusion::arrow::datatypes::Field::new(key, DataType::Utf8, true);
                    d.columns = Some(Arc::new(datafusion::arrow::datatypes::Schema::new(vec![field])));
                }
            }
            d
        } else {
            let declared: Vec<Option<DataType>> = types
                .iter()
                .map(|t| t.as_ref().filter(|t| **t != Type::UNKNOWN).map(arrow_type_of))
                .collect();
            session.describe(&stmt, &declared).await.map_err(engine_error)?
        };
        let count = described.parameters.len().max(types.len()).max(count_placeholders(&stmt.text));
        let parameter_types = (0..count)
            .map(|i| match types.get(i).cloned().flatten() {
                Some(t) if t != Type::UNKNOWN => t,
                _ => match described.parameters.get(i).cloned().flatten() {
                    Some(dt) => into_pg_type(&dt).unwrap_or(Type::TEXT),
                    None => Type::TEXT,
                },
            })
            .collect();
        Ok(Some(Prepared { stmt, described, parameter_types }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.parameter_types.clone())
    }

    fn get_result_schema(&self, stmt: &Prepared, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.described.columns {
            Some(schema) => arrow_schema_to_pg_fields(&crate::rows::wire_schema(schema), column_format.unwrap_or(&Format::UnifiedText), None),
            None => Ok(vec![]),
        }
    }
}

/// The highest `$n` in the text (parameters of statements DataFusion cannot plan ahead).
fn count_placeholders(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start {
                max = max.max(text[start..end].parse::<usize>().unwrap_or(0));
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    max
}

/// Statements the connection answers itself (transactions, SET, SHOW of client settings).
fn is_session_statement(stmt: &ParsedStatement) -> bool {
    let StatementKind::Sql(sql) = &stmt.kind else { return false };
    match sql.as_ref() {
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Set(_)
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. }
        | Statement::Deallocate { .. }
        | Statement::Discard { .. } => true,
        Statement::ShowVariable { variable } => !variable_name(variable).starts_with("datafusion."),
        _ => false,
    }
}

/// The settings key `SHOW` reads for a variable as written (`SHOW TRANSACTION ISOLATION LEVEL`).
fn setting_key(name: &str) -> String {
    match name {
        "time zone" => "timezone".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        other => other.replace(' ', "_"),
    }
}

fn variable_name(parts: &[datafusion::sql::sqlparser::ast::Ident]) -> String {
    parts.iter().map(|i| i.value.to_ascii_lowercase()).collect::<Vec<_>>().join(" ")
}

fn expr_text(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Canonical setting names, as PostgreSQL reports them in ParameterStatus.
fn reported_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "datestyle" => "DateStyle",
        "timezone" | "time zone" => "TimeZone",
        "intervalstyle" => "IntervalStyle",
        "application_name" => "application_name",
        "client_encoding" => "client_encoding",
        "search_path" => "search_path",
        "standard_conforming_strings" => "standard_conforming_strings",
        _ => return None,
    })
}

impl Conn {
    /// Runs one statement, returning the client's response.
    async fn run<C>(&self, client: &mut C, stmt: ParsedStatement, format: &Format, eager: bool) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let StatementKind::Sql(sql) = &stmt.kind {
            // Statements the server answers itself are audited here, the others by the engine.
            match self.session_statement(client, sql).await {
                Ok(None) => {}
                Ok(Some(resp)) => {
                    self.session()?.record_statement(&stmt.text, Ok(())).map_err(engine_error)?;
                    return Ok(resp);
                }
                Err(e) => {
                    if let Ok(session) = self.session() {
                        let _ = session.record_statement(&stmt.text, Err(e.to_string()));
                    }
                    return Err(e);
                }
            }
        }
        let session = self.session()?;
        let mut cancel_rx = self.cancel.subscribe();
        cancel_rx.borrow_and_update();
        let timeout = self.settings.lock().statement_timeout;
        let stop = Arc::new(AtomicU8::new(STOP_NONE));
        let stopper = {
            let stop = stop.clone();
            async move {
                tokio::select! {
                    _ = cancel_rx.changed() => stop.store(STOP_CANCEL, Ordering::SeqCst),
                    _ = async { match timeout { Some(t) => tokio::time::sleep(t).await, None => std::future::pending().await } } => {
                        stop.store(STOP_TIMEOUT, Ordering::SeqCst)
                    }
                }
            }
        };
        let stopper = futures::future::FutureExt::shared(Box::pin(stopper));
        let writes = matches!(&stmt.kind, StatementKind::Sql(s) if !matches!(s.as_ref(), Statement::Query(_)))
            || matches!(&stmt.kind, StatementKind::Copy(_));
        let output = tokio::select! {
            out = session.execute(stmt) => out.map_err(engine_error)?,
            _ = stopper.clone() => return Err(stopped_error(stop.load(Ordering::SeqCst))),
        };
        if writes && client.transaction_status() != pgwire::messages::response::TransactionStatus::Idle {
            self.wrote_in_block.store(true, Ordering::SeqCst);
        }
        match output {
            StatementOutput::Command { tag, rows } => Ok(Response::Execution(command_tag(&tag, rows))),
            StatementOutput::CopyOut(copy) => {
                // COPY's overall format: 0 is textual (text and CSV alike).
                let format = 0;
                // Once CopyOutResponse is sent, pgwire can only end a failing copy with CopyFail,
                // which clients take for a protocol error. Most failures (a bad cast or division
                // in the first rows, a refused read) come with the first rows: waiting for them
                // (the header line, then the first data) lets those be a proper ErrorResponse.
                let mut rows = copy.rows;
                let mut first = Vec::new();
                while first.len() < 2 {
                    let next = tokio::select! {
                        next = rows.next() => next,
                        _ = stopper.clone() => return Err(stopped_error(stop.load(Ordering::SeqCst))),
                    };
                    match next {
                        Some(Ok(chunk)) => first.push(Ok(chunk)),
                        Some(Err(e)) => return Err(engine_error(e)),
                        None => break,
                    }
                }
                let data = stream::iter(first)
                    .chain(rows)
                    .map(|chunk| chunk.map(pgwire::messages::copy::CopyData::new).map_err(engine_error))
                    .take_until(stopper);
                Ok(Response::CopyOut(pgwire::api::results::CopyResponse::new(format, copy.columns, data)))
            }
            StatementOutput::CopyIn(copy) => {
                let columns = copy.columns();
                *self.copy_in.lock().await = Some(copy);
                Ok(Response::CopyIn(pgwire::api::results::CopyResponse::new(0, columns, stream::empty())))
            }
            StatementOutput::Rows(batches) => {
                let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
                let schema = batches.schema();
                let fields = Arc::new(arrow_schema_to_pg_fields(&crate::rows::wire_schema(&schema), format, Some(options))?);
                let encode_fields = fields.clone();
                // Stop checks run per batch (a pending batch is interrupted), not per row.
                let rows = batches
                    .take_until(stopper)
                    .map(move |batch| match batch {
                        Ok(b) => stream::iter(crate::rows::encode_batch(&encode_fields, &b)),
                        Err(e) => stream::iter(vec![Err(engine_error(EngineError::from_datafusion(e)))]),
                    })
                    .flatten();
                let stop_after = stop.clone();
                let rows = rows.chain(
                    stream::once(async move { stop_after.load(Ordering::SeqCst) })
                        .filter_map(|s| async move { (s != STOP_NONE).then(|| Err(stopped_error(s))) }),
                );
                if eager {
                    // Later statements of the same query string must not run before these rows
                    // are read: collect them now.
                    let collected: Vec<_> = rows.collect().await;
                    if let Some(Err(_)) = collected.iter().find(|r| r.is_err()) {
                        return Err(collected.into_iter().find_map(|r| r.err()).expect("found above"));
                    }
                    return Ok(Response::Query(QueryResponse::new(fields, stream::iter(collected))));
                }
                Ok(Response::Query(QueryResponse::new(fields, rows)))
            }
        }
    }

    /// Transactions, SET, SHOW and friends; `None` if the engine should run the statement.
    async fn session_statement<C>(&self, client: &mut C, sql: &Statement) -> PgWireResult<Option<Response>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(Some(match sql {
            // Kura commits each statement on its own; BEGIN/COMMIT frame them for drivers.
            Statement::StartTransaction { .. } => {
                self.wrote_in_block.store(false, Ordering::SeqCst);
                Response::TransactionStart(Tag::new("BEGIN"))
            }
            Statement::Commit { .. } => Response::TransactionEnd(Tag::new("COMMIT")),
            // Savepoints frame statements for drivers (psycopg's nested transactions); as with
            // ROLLBACK, nothing already done is undone.
            Statement::Savepoint { .. } => Response::Execution(Tag::new("SAVEPOINT")),
            Statement::ReleaseSavepoint { .. } => Response::Execution(Tag::new("RELEASE")),
            Statement::Rollback { savepoint: Some(_), .. } => Response::Execution(Tag::new("ROLLBACK")),
            Statement::Rollback { .. } => {
                if self.wrote_in_block.swap(false, Ordering::SeqCst) {
                    let notice = ErrorInfo::new(
                        "WARNING".into(),
                        "25000".into(),
                        "Kura commits every statement on its own: ROLLBACK did not undo the changes made since BEGIN"
                            .into(),
                    );
                    client.send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(notice))).await?;
                }
                Response::TransactionEnd(Tag::new("ROLLBACK"))
            }
            Statement::Deallocate { .. } => Response::Execution(Tag::new("DEALLOCATE")),
            Statement::Discard { .. } => Response::Execution(Tag::new("DISCARD ALL")),
            Statement::Set(set) => return self.set(client, set).await,
            Statement::ShowVariable { variable } => {
                let name = variable_name(variable);
                if name.starts_with("datafusion.") {
                    return Ok(None);
                }
                let key = setting_key(&name);
                let settings = self.settings.lock().clone();
                let value = match key.as_str() {
                    "is_superuser" => {
                        let s = self.session()?;
                        if s.snapshot().state.is_superuser(s.user()) { "on" } else { "off" }.to_string()
                    }
                    "session_authorization" => self.session()?.user().to_string(),
                    _ => settings.values.get(&key).cloned().ok_or_else(|| {
                        user_error("42704", format!("unrecognized configuration parameter \"{name}\""))
                    })?,
                };
                let field = FieldInfo::new(key, None, None, Type::TEXT, pgwire::api::results::FieldFormat::Text);
                let fields = Arc::new(vec![field]);
                let mut encoder = DataRowEncoder::new(fields.clone());
                encoder.encode_field(&Some(value))?;
                let row = encoder.take_row();
                let mut resp = QueryResponse::new(fields, stream::iter(vec![Ok(row)]));
                resp.set_command_tag("SHOW");
                Response::Query(resp)
            }
            _ => return Ok(None),
        }))
    }

    async fn set<C>(&self, client: &mut C, set: &Set) -> PgWireResult<Option<Response>>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (name, value) = match set {
            Set::SingleAssignment { variable, values, .. } => {
                let name = variable.to_string().to_ascii_lowercase();
                if name.starts_with("datafusion.") {
                    return Ok(None);
                }
                let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
                (name, value)
            }
            Set::SetTimeZone { value, .. } => ("timezone".to_string(), expr_text(value)),
            Set::SetNames { charset_name, .. } => ("client_encoding".to_string(), charset_name.value.clone()),
            Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
                return Err(user_error("0A000", "SET ROLE and SET SESSION AUTHORIZATION are not supported; log in as the user"));
            }
            other => return Err(user_error("0A000", format!("not supported: {other}"))),
        };
        let mut settings = self.settings.lock().clone();
        let value = if value.eq_ignore_ascii_case("default") {
            Settings::default().values.get(&name).cloned().unwrap_or_default()
        } else {
            value
        };
        match name.as_str() {
            "statement_timeout" => {
                settings.statement_timeout = parse_timeout(&value)
                    .ok_or_else(|| user_error("22023", format!("invalid value for parameter \"statement_timeout\": \"{value}\"")))?;
            }
            "client_encoding" | "names" => {
                let v = value.to_ascii_uppercase().replace(['-', '_'], "");
                if v != "UTF8" && v != "UNICODE" {
                    return Err(user_error("22023", format!("client_encoding {value} is not supported; Kura speaks UTF8")));
                }
            }
            "search_path" => self.session()?.set_search_path(&value).map_err(engine_error)?,
            "transaction_isolation" | "default_transaction_isolation" => {}
            _ => {}
        }
        let key = if name == "names" { "client_encoding".to_string() } else { name.clone() };
        settings.values.insert(key.clone(), value.clone());
        *self.settings.lock() = settings;
        if let Some(reported) = reported_name(&key) {
            client.metadata_mut().insert(reported.to_string(), value.clone());
            client.send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(reported.into(), value))).await?;
        }
        Ok(Some(Response::Execution(Tag::new("SET"))))
    }
}

/// The Arrow type a parameter sent as `t` decodes to, when planning could not tell.
fn arrow_type_of(t: &Type) -> DataType {
    use datafusion::arrow::datatypes::TimeUnit;
    match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::BYTEA => DataType::Binary,
        _ => DataType::Utf8,
    }
}

/// An unconstrained `numeric` parameter keeps the scale the client sent (`3.14` stays `3.14`,
/// not `3.1400000000`), as in PostgreSQL. Arrow decimals have one scale per column, so the value
/// decoded at the default scale is narrowed to the sent one when that loses nothing.
fn keep_numeric_scale(value: ScalarValue, raw: Option<&bytes::Bytes>, binary: bool) -> ScalarValue {
    let ScalarValue::Decimal128(Some(v), p, s) = value else { return value };
    // What `numeric` without precision and scale plans as (`arrow_type_of`, DataFusion's NUMERIC).
    if (p, s) != (38, 10) {
        return value;
    }
    let Some(raw) = raw else { return value };
    let sent = if binary {
        // Binary numeric: ndigits, weight, sign, dscale (the display scale), each an int16.
        raw.get(6..8).map(|b| i16::from_be_bytes([b[0], b[1]]) as i64)
    } else {
        std::str::from_utf8(raw).ok().and_then(|t| {
            let t = t.trim();
            if t.contains(['e', 'E']) {
                return None;
            }
            Some(t.split_once('.').map_or(0, |(_, f)| f.len()) as i64)
        })
    };
    match sent {
        Some(scale) if (0..i64::from(s)).contains(&scale) => {
            let divisor = 10i128.pow((i64::from(s) - scale) as u32);
            if v % divisor == 0 {
                ScalarValue::Decimal128(Some(v / divisor), p, scale as i8)
            } else {
                value
            }
        }
        _ => value,
    }
}

/// `search_path` from the startup packet: `options=-c search_path=x` (libpq, Superset) or
/// `--search_path=x`.
fn startup_search_path(metadata: &HashMap<String, String>) -> Option<String> {
    let options = metadata.get("options")?;
    let mut words = options.split_whitespace().peekable();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next()?.to_string()
        } else if let Some(rest) = w.strip_prefix("-c").or_else(|| w.strip_prefix("--")) {
            rest.to_string()
        } else {
            continue;
        };
        if let Some(value) = setting.strip_prefix("search_path=") {
            return Some(value.replace("\\,", ",").to_string());
        }
    }
    None
}

fn stopped_error(reason: u8) -> PgWireError {
    let message = if reason == STOP_TIMEOUT {
        "canceling statement due to statement timeout"
    } else {
        "canceling statement due to user request"
    };
    user_error("57014", message)
}

/// PostgreSQL's command tag for an engine result (`INSERT 0 5`, `DELETE 3`, `CREATE TABLE`).
fn command_tag(tag: &str, rows: Option<u64>) -> Tag {
    match rows {
        Some(n) => {
            let command = tag.strip_suffix(&format!(" {n}")).unwrap_or(tag);
            match command.strip_suffix(" 0") {
                Some(insert) if insert == "INSERT" => Tag::new("INSERT").with_oid(0).with_rows(n as usize),
                _ => Tag::new(command).with_rows(n as usize),
            }
        }
        None => Tag::new(tag),
    }
}

#[async_trait]
impl SimpleQueryHandler for Conn {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match kura_engine::parse_sql(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(&e)))]),
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let count = statements.len();
        let mut responses = Vec::with_capacity(count);
        for (i, stmt) in statements.into_iter().enumerate() {
            tracing::debug!(statement = %stmt.text, "simple query");
            match self.run(client, stmt, &Format::UnifiedText, i + 1 < count).await {
                Ok(r) => responses.push(r),
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Conn {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<Prepared>, _max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let types: Vec<Option<DataType>> = prepared
            .parameter_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                prepared.described.parameters.get(i).cloned().flatten().or_else(|| Some(arrow_type_of(t)))
            })
            .collect();
        let refs: Vec<Option<&DataType>> = types.iter().map(|t| t.as_ref()).collect();
        let wire: Vec<Option<&Type>> = prepared.parameter_types.iter().map(Some).collect();
        let params = arrow_pg::datatypes::df::deserialize_parameters_with_server_types(portal, &refs, &wire)?;
        let values: Vec<ScalarValue> = match params {
            ParamValues::List(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let raw = portal.parameters.get(i).and_then(Option::as_ref);
                    keep_numeric_scale(v.value, raw, portal.parameter_format.is_binary(i))
                })
                .collect(),
            ParamValues::Map(_) => return Err(user_error("08P01", "named parameters are not supported")),
        };
        let mut stmt = prepared.stmt.clone();
        kura_engine::bind_parameters(&mut stmt, &values).map_err(engine_error)?;
        tracing::debug!(statement = %stmt.text, parameters = values.len(), "extended query");
        self.run(client, stmt, &portal.result_column_format, false).await
    }
}

#[async_trait]
impl StartupHandler for Conn {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                let addr = client.socket_addr();
                if self.shared.config.require_tls && !client.is_secure() && !addr.ip().is_loopback() {
                    tracing::warn!(%addr, "refused a connection without TLS");
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        "28000".into(),
                        "this server requires TLS (sslmode=require) for connections from other hosts".into(),
                    ))));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(vec![MECHANISM.to_string()])))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let mut state = self.scram.lock().await;
                let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
                match std::mem::take(&mut *state) {
                    ScramState::Initial => {
                        let initial = msg.into_sasl_initial_response()?;
                        if initial.auth_method != MECHANISM {
                            return Err(PgWireError::UnsupportedSASLAuthMethod(initial.auth_method));
                        }
                        let data = initial.data.unwrap_or_default();
                        let verifier = self.shared.verifier_for(&user).await;
                        let (server_first, pending) =
                            auth::client_first(&data, verifier, &user, &self.shared.secret)?;
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASLContinue(Bytes::from(
                                server_first,
                            ))))
                            .await?;
                        *state = ScramState::ServerFirstSent(Box::new(pending));
                    }
                    ScramState::ServerFirstSent(pending) => {
                        let response = msg.into_sasl_response()?;
                        let addr = client.socket_addr();
                        let Some(server_final) = auth::client_final(&response.data, &pending)? else {
                            let wait = self.shared.backoff.failed(addr.ip());
                            tracing::warn!(%addr, user, "failed login");
                            tokio::time::sleep(wait).await;
                            return Err(auth::login_failed(&user));
                        };
                        let mut session = match self.shared.engine.login_session(&user).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!(%addr, user, error = %e, "login refused after authentication");
                                return Err(auth::login_failed(&user));
                            }
                        };
                        session.set_client(addr.to_string());
                        let pg_catalog = self.shared.pg_catalog_for(&user).map_err(engine_error)?;
                        session.enable_pg_catalog(Some(pg_catalog)).map_err(engine_error)?;
                        if let Some(path) = startup_search_path(client.metadata()) {
                            session.set_search_path(&path).map_err(engine_error)?;
                            self.settings.lock().values.insert("search_path".into(), path);
                        }
                        let _ = self.session.set(Arc::new(session));
                        self.shared.backoff.succeeded(addr.ip());
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASLFinal(Bytes::from(
                                server_final,
                            ))))
                            .await?;
                        let (pid, key) = RandomPidSecretKeyGenerator::default().generate(client);
                        client.set_pid_and_secret_key(pid, key.clone());
                        self.shared.register_cancel(pid, &key, self.me.clone());
                        tracing::info!(%addr, user, pid, "logged in");
                        *state = ScramState::Finished;
                        pgwire::api::auth::finish_authentication(client, &crate::Parameters { user: user.clone() })
                            .await?;
                    }
                    ScramState::Finished => return Err(PgWireError::InvalidSASLState),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl pgwire::api::copy::CopyHandler for Conn {
    async fn on_copy_data<C>(&self, _client: &mut C, data: pgwire::messages::copy::CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self.copy_in.lock().await.as_mut() {
            Some(copy) => {
                copy.send(data.data).await;
                Ok(())
            }
            None => Err(user_error("08P01", "COPY data without a COPY FROM STDIN in progress")),
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: pgwire::messages::copy::CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let copy = self.copy_in.lock().await.take();
        let Some(copy) = copy else {
            return Err(user_error("08P01", "COPY done without a COPY FROM STDIN in progress"));
        };
        let rows = copy.finish().await.map_err(engine_error)?;
        let tag = Tag::new("COPY").with_rows(rows as usize);
        client.send(PgWireBackendMessage::CommandComplete(tag.into())).await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: pgwire::messages::copy::CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Dropping the load without finishing it leaves the table unchanged.
        drop(self.copy_in.lock().await.take());
        user_error("57014", format!("COPY from stdin failed: {}", fail.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_postgres() {
        assert_eq!(parse_timeout("0"), Some(None));
        assert_eq!(parse_timeout("1500"), Some(Some(Duration::from_millis(1500))));
        assert_eq!(parse_timeout("2s"), Some(Some(Duration::from_secs(2))));
        assert_eq!(parse_timeout("1min"), Some(Some(Duration::from_secs(60))));
        assert_eq!(parse_timeout("soon"), None);
    }

    #[test]
    fn tags_match_postgres() {
        let text = |t: Tag| pgwire::messages::response::CommandComplete::from(t).tag;
        assert_eq!(text(command_tag("INSERT 0 5", Some(5))), "INSERT 0 5");
        assert_eq!(text(command_tag("DELETE 3", Some(3))), "DELETE 3");
        assert_eq!(text(command_tag("CREATE TABLE", None)), "CREATE TABLE");
        assert_eq!(count_placeholders("SELECT $1, $12 FROM t WHERE a = '$3'"), 12);
    }
}
