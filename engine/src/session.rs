//! The engine (one per warehouse) and its sessions (one per user connection or CLI run).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{SendableRecordBatchStream, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::TryStreamExt;
use kura_catalog::{Catalog, Snapshot};
use kura_storage::Warehouse;

use crate::names::{CATALOG_NAME, DEFAULT_SCHEMA};
use crate::parser::{ParsedStatement, StatementKind, parse_sql};
use crate::provider::{KuraCatalogProvider, rewrite_time_travel};
use crate::{Error, Result};

/// One warehouse, opened. Shared by all sessions.
#[derive(Debug)]
pub struct Engine {
    warehouse: Warehouse,
    catalog: Arc<Catalog>,
    options: EngineOptions,
    /// Pseudonym keys (see `keys.rs`); only policy bodies use them.
    pub(crate) keys: Arc<crate::keys::WarehouseKeys>,
    /// Groups released to aggregate-only users, for the differencing check.
    pub(crate) histories: Arc<crate::policy::differencing::Histories>,
    /// One `LINK` at a time: two would each replace the research-ID map from the same previous one.
    pub(crate) linkage: tokio::sync::Mutex<()>,
    /// The audit trail, when statements are audited.
    pub(crate) auditor: Option<Arc<crate::audit::Auditor>>,
}

/// Limits and resources for the queries an engine runs.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Memory one statement may use for sorts, joins and aggregations. Operators that can spill
    /// to disk do so when they reach it; others fail with "resources exhausted" (SQLSTATE
    /// 53200) and only that statement fails. `None`: no limit.
    pub query_memory_limit: Option<usize>,
    /// The audit trail (off by default for embedded use; `kura sql` and `kura serve` turn it on).
    pub audit: crate::audit::AuditOptions,
}

impl Engine {
    /// Opens the warehouse at `location` (see [`kura_storage::WarehouseLocation`]) and makes sure
    /// it has the default `public` schema.
    pub async fn open(location: &str) -> Result<Arc<Self>> {
        Self::open_with(location, EngineOptions::default()).await
    }

    /// [`Engine::open`] with limits.
    pub async fn open_with(location: &str, options: EngineOptions) -> Result<Arc<Self>> {
        let warehouse = Warehouse::open(location).await?;
        let catalog = Arc::new(Catalog::open(&warehouse).await?);
        if !catalog.cached().state.schemas.contains_key(DEFAULT_SCHEMA) {
            catalog
                .commit("kura", "CREATE SCHEMA public", |s| {
                    s.create_schema(kura_catalog::SchemaEntry::new(DEFAULT_SCHEMA), true)
                })
                .await?;
        }
        let keys = Arc::new(crate::keys::WarehouseKeys::new(warehouse.store()));
        keys.preload().await?;
        let histories = Arc::new(crate::policy::differencing::Histories::new(warehouse.store()));
        let auditor = match options.audit.enabled {
            true => Some(crate::audit::Auditor::start(&warehouse, &catalog, options.audit.clone()).await?),
            false => None,
        };
        Ok(Arc::new(Self { warehouse, catalog, options, keys, histories, linkage: tokio::sync::Mutex::new(()), auditor }))
    }

    /// The warehouse location.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The durable catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// An embedded session acting as `user` with every right: for callers that already hold the
    /// warehouse's storage credentials (the `kura sql` CLI, loaders, tests), who could read the
    /// files directly anyway. Servers use [`Engine::login_session`]. Its statements are audited
    /// (client `local`) when the engine audits.
    pub fn session(self: &Arc<Self>, user: &str) -> Session {
        self.new_session(user, false, true)
    }

    /// A session for Kura's own statements on behalf of a statement being run (not audited on
    /// their own: the statement that asked for them is).
    pub(crate) fn internal_session(self: &Arc<Self>, user: &str) -> Session {
        self.new_session(user, false, false)
    }

    /// Commits every audit record journaled so far to `audit.statements` (the flusher does so
    /// every second; call this before exiting).
    pub async fn flush_audit(&self) -> Result<()> {
        match &self.auditor {
            Some(a) => a.flush().await,
            None => Ok(()),
        }
    }

    /// Whether statements are audited.
    pub fn audits(&self) -> bool {
        self.auditor.is_some()
    }

    /// A session for a user who logged in: it must be a role with LOGIN, and every statement is
    /// checked against its privileges.
    pub async fn login_session(self: &Arc<Self>, user: &str) -> Result<Session> {
        let snapshot = self.catalog.refresh().await?;
        match snapshot.state.roles.get(user) {
            Some(role) if role.login => Ok(self.new_session(user, true, true)),
            Some(_) => Err(Error::PermissionDenied(format!("role \"{user}\" is not permitted to log in"))),
            None => Err(Error::PermissionDenied(format!("role \"{user}\" does not exist"))),
        }
    }

    pub(crate) fn new_session(self: &Arc<Self>, user: &str, enforced: bool, audited: bool) -> Session {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            // Kura mounts its own information_schema (crate::information_schema), which extends
            // DataFusion's; SHOW reads it through the catalog.
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // TIMESTAMP WITH TIME ZONE values are in UTC, the TimeZone the server reports.
            .set_str("datafusion.execution.time_zone", "+00:00");
        let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new();
        if let Some(limit) = self.options.query_memory_limit {
            // One pool per session: a session runs one statement at a time, so this is the
            // statement's limit. Spilling operators write to the OS temp folder.
            runtime = runtime.with_memory_pool(Arc::new(datafusion::execution::memory_pool::TrackConsumersPool::new(
                datafusion::execution::memory_pool::FairSpillPool::new(limit),
                std::num::NonZeroUsize::new(3).expect("non-zero"),
            )));
        }
        let runtime = runtime.build_arc().expect("runtime environment builds from defaults");
        // Table scans read data files through the warehouse's store (see `scan.rs`).
        runtime.register_object_store(crate::scan::warehouse_store_url().as_ref(), self.warehouse.store());
        // delta-rs lowers its own logical nodes (DELETE/UPDATE metrics, write validation) with its
        // planner; without it DML planned with this session would fail.
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .build();
        let ctx = SessionContext::new_with_state(state);
        // After type coercion, so it sees every cast to text, including coerced ones.
        ctx.add_analyzer_rule(Arc::new(crate::pg_text::PgTextCasts));
        // Correlated scalar subqueries as PostgreSQL answers them (catalog queries of SQLAlchemy).
        ctx.add_analyzer_rule(Arc::new(crate::pg_subquery::CorrelatedScalarSubqueries));
        // After DataFusion's own rules have decorrelated subqueries into joins with aggregates.
        ctx.add_optimizer_rule(Arc::new(crate::semijoin::ReduceGroupedJoins));
        ctx.add_optimizer_rule(Arc::new(crate::dimjoin::DimensionJoinsFirst));
        kura_udfs::register_all(&ctx);
        crate::pg::register_session_functions(&ctx, user);
        let pinned = Arc::new(parking_lot::Mutex::new(self.catalog.cached()));
        ctx.register_udf(crate::policy::IsMember::udf(user, pinned.clone()));
        let extra_schemas = Arc::new(crate::provider::ExtraSchemas::default());
        extra_schemas.mount(
            crate::information_schema::SCHEMA,
            Arc::new(crate::information_schema::KuraInformationSchema::new(ctx.state().catalog_list())),
        );
        let session = Session {
            engine: self.clone(),
            ctx,
            user: user.to_string(),
            enforced,
            base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            progress: None,
            pinned,
            extra_schemas,
            constants: Default::default(),
            audit: if audited { self.auditor.clone() } else { None },
            audit_note: Default::default(),
            client: "local".into(),
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        };
        session.register_catalog(session.snapshot());
        session
    }
}

/// What a statement produced.
pub enum StatementOutput {
    /// Rows, streamed.
    Rows(SendableRecordBatchStream),
    /// `COPY ... FROM STDIN`: the caller feeds the client's data to it and finishes it.
    CopyIn(crate::copy::CopyIn),
    /// `COPY ... TO STDOUT`: encoded rows for the caller to pass on.
    CopyOut(crate::copy::CopyOut),
    /// A command's completion tag (`CREATE TABLE`, `INSERT 0 5`) and affected row count.
    Command {
        /// PostgreSQL-style command tag.
        tag: String,
        /// Rows inserted, deleted, updated or copied, when the command counts rows.
        rows: Option<u64>,
    },
}

impl std::fmt::Debug for StatementOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rows(s) => f.debug_tuple("Rows").field(&s.schema()).finish(),
            Self::Command { tag, rows } => f.debug_struct("Command").field("tag", tag).field("rows", rows).finish(),
            Self::CopyIn(c) => c.fmt(f),
            Self::CopyOut(c) => c.fmt(f),
        }
    }
}

impl StatementOutput {
    pub(crate) fn command(tag: impl Into<String>) -> Self {
        Self::Command { tag: tag.into(), rows: None }
    }

    pub(crate) fn counted(tag: &str, rows: u64) -> Self {
        Self::Command { tag: format!("{tag} {rows}"), rows: Some(rows) }
    }

    /// Collects a row stream (an empty list for commands).
    pub async fn collect(self) -> Result<(Option<SchemaRef>, Vec<RecordBatch>)> {
        match self {
            Self::Rows(stream) => {
                let schema = stream.schema();
                let batches = stream.try_collect().await.map_err(Error::from_datafusion)?;
                Ok((Some(schema), batches))
            }
            Self::Command { .. } | Self::CopyIn(_) | Self::CopyOut(_) => Ok((None, vec![])),
        }
    }
}

/// A user's session: settings, current directory for file paths, and the DataFusion context.
pub struct Session {
    pub(crate) engine: Arc<Engine>,
    pub(crate) ctx: SessionContext,
    pub(crate) user: String,
    /// Whether privileges are checked (sessions of logged-in users).
    pub(crate) enforced: bool,
    pub(crate) base_dir: PathBuf,
    pub(crate) progress: Option<Arc<dyn ProgressSink>>,
    /// The catalog version the current statement runs against.
    /// Shared with `is_member()`, which answers for this version.
    pinned: Arc<parking_lot::Mutex<Arc<Snapshot>>>,
    /// Schemas mounted beside the warehouse's own (pg_catalog).
    pub(crate) extra_schemas: Arc<crate::provider::ExtraSchemas>,
    /// Rows of constant queries (`SELECT 1`), valid until the settings change.
    constants: crate::constant::ConstantResults,
    /// Where this session's statements are audited (None: not audited).
    audit: Option<Arc<crate::audit::Auditor>>,
    /// What the running statement read and which policies applied, for its audit record.
    pub(crate) audit_note: Arc<parking_lot::Mutex<crate::audit::Note>>,
    /// The client's address, for audit records (`local` for embedded sessions).
    client: String,
    /// Identifies this session in audit records.
    id: String,
}

/// Receives progress of long operations (loads), e.g. to draw a progress bar on a terminal.
pub trait ProgressSink: Send + Sync {
    /// `done` units (bytes) of `total` for the operation named `label`.
    fn update(&self, label: &str, done: u64, total: Option<u64>);
    /// The operation named `label` ended.
    fn finish(&self, label: &str);
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user", &self.user).finish()
    }
}

impl Session {
    /// The user this session runs as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Identifies this session in audit records (`session_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this session's statements are checked against the user's privileges.
    pub fn is_enforced(&self) -> bool {
        self.enforced
    }

    /// The catalog version the current (or last) statement ran against.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.pinned.lock().clone()
    }

    /// A second handle on this session (same user, settings and functions) that a background
    /// task can own, e.g. a load fed by the client connection.
    pub(crate) fn fork(&self) -> Session {
        Session {
            engine: self.engine.clone(),
            ctx: self.ctx.clone(),
            user: self.user.clone(),
            enforced: self.enforced,
            base_dir: self.base_dir.clone(),
            progress: None,
            pinned: self.pinned.clone(),
            extra_schemas: self.extra_schemas.clone(),
            constants: Default::default(),
            // The statement that forked it is audited; the fork's own work is part of it.
            audit: None,
            audit_note: self.audit_note.clone(),
            client: self.client.clone(),
            id: self.id.clone(),
        }
    }

    /// A session for Kura's own statements run on behalf of this session's current statement:
    /// not subject to the user's grants, not audited on its own, noting what it reads into the
    /// current statement's record.
    pub(crate) fn internal(&self) -> Session {
        let mut s = self.engine.internal_session(&self.user);
        s.audit_note = self.audit_note.clone();
        s
    }

    /// Names the client (`address:port`) in this session's audit records.
    pub fn set_client(&mut self, client: impl Into<String>) {
        self.client = client.into();
    }

    /// Audits a statement the caller answered itself (a server's `SET`, `SHOW`, `BEGIN`):
    /// `outcome` is Ok, or the error message the client got.
    pub fn record_statement(&self, text: &str, outcome: std::result::Result<(), String>) -> Result<()> {
        let Some(auditor) = &self.audit else { return Ok(()) };
        let snapshot = self.snapshot();
        crate::audit::StatementAudit::local(auditor.clone(), self.actor(&snapshot), text, outcome)
    }

    fn actor<'a>(&'a self, snapshot: &'a Snapshot) -> crate::audit::Actor<'a> {
        crate::audit::Actor { user: &self.user, client: &self.client, session: &self.id, snapshot }
    }

    /// Mounts `pg_catalog` (tables and functions client tools query) in this session; with
    /// `shared` (from [`Engine::pg_catalog_for`]) the user's connections share one, and so its
    /// OIDs.
    pub fn enable_pg_catalog(&self, shared: Option<Arc<dyn datafusion::catalog::SchemaProvider>>) -> Result<()> {
        self.constants.clear();
        crate::pg::setup_pg_catalog(self, shared)
    }

    /// The engine behind this session.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Relative file paths in `COPY` resolve against this directory (default: the process's
    /// current directory; `kura sql -f script.sql` uses the script's directory).
    pub fn set_base_dir(&mut self, dir: impl Into<PathBuf>) {
        self.base_dir = dir.into();
    }

    /// Reports progress of long operations to `sink`.
    pub fn set_progress(&mut self, sink: Arc<dyn ProgressSink>) {
        self.progress = Some(sink);
    }

    pub(crate) fn resolve_path(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() { p } else { self.base_dir.join(p) }
    }

    /// Runs every statement in `sql`, stopping at the first error. Row results are collected.
    pub async fn execute_all(&self, sql: &str) -> Result<Vec<(String, StatementOutput)>> {
        let mut out = Vec::new();
        for stmt in parse_sql(sql)? {
            let text = stmt.text.clone();
            out.push((text, self.execute(stmt).await?));
        }
        Ok(out)
    }

    /// Runs one SQL statement and collects its rows; for tests and simple callers.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut stmts = parse_sql(sql)?;
        if stmts.len() != 1 {
            return Err(Error::Invalid(format!("expected one statement, got {}", stmts.len())));
        }
        let out = self.execute(stmts.remove(0)).await?;
        Ok(out.collect().await?.1)
    }

    /// Runs one parsed statement.
    pub async fn execute(&self, stmt: ParsedStatement) -> Result<StatementOutput> {
        crate::names::CURRENT_SCHEMA.scope(self.current_schema(), self.execute_audited(stmt)).await
    }

    /// Runs a statement and journals its audit record when it ends (see `audit.rs`).
    async fn execute_audited(&self, stmt: ParsedStatement) -> Result<StatementOutput> {
        // Boxed: statements nest (linkage runs its own), and debug builds run them on small stacks.
        let Some(auditor) = &self.audit else { return Box::pin(self.execute_in_schema(stmt)).await };
        let snapshot = self.snapshot();
        let mut audit = crate::audit::StatementAudit::start(auditor.clone(), self.actor(&snapshot), &stmt, self.audit_note.clone());
        if stmt.text.as_bytes().windows(kura_catalog::AUDIT_SCHEMA.len()).any(|w| w.eq_ignore_ascii_case(kura_catalog::AUDIT_SCHEMA.as_bytes())) {
            // Whoever reads the audit trail sees every statement acknowledged before this one.
            if let Err(e) = auditor.flush().await {
                tracing::warn!(error = %e, "audit: flush before reading the audit trail failed");
            }
        }
        match Box::pin(self.execute_in_schema(stmt)).await {
            Err(e) => {
                if let Err(journal) = audit.finish(Err(&e)) {
                    tracing::error!(error = %journal, "audit: could not journal a failed statement");
                }
                Err(e)
            }
            Ok(StatementOutput::Command { tag, rows }) => {
                audit.finish(Ok(rows))?;
                Ok(StatementOutput::Command { tag, rows })
            }
            Ok(StatementOutput::Rows(stream)) => Ok(StatementOutput::Rows(crate::audit::AuditedStream::wrap(stream, audit))),
            Ok(StatementOutput::CopyOut(mut copy)) => {
                copy.rows = crate::audit::audit_chunks(copy.rows, audit);
                Ok(StatementOutput::CopyOut(copy))
            }
            Ok(StatementOutput::CopyIn(mut copy)) => {
                copy.set_audit(audit);
                Ok(StatementOutput::CopyIn(copy))
            }
        }
    }

    /// The schema unqualified names resolve to (`SET search_path`): the planner's default schema,
    /// so Kura's own name resolution and DataFusion's always agree.
    pub fn current_schema(&self) -> String {
        self.ctx.state_ref().read().config_options().catalog.default_schema.clone()
    }

    /// Makes unqualified names resolve to the first schema of `path` (`SET search_path TO a, b`;
    /// later entries and `"$user"` are ignored, as Kura has no per-user schemas).
    pub fn set_search_path(&self, path: &str) -> Result<()> {
        let first = path
            .split(',')
            .map(|p| p.trim())
            .map(|p| if p.starts_with('"') { p.trim_matches('"').to_string() } else { p.to_lowercase() })
            .find(|p| !p.is_empty() && p != "$user")
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        crate::names::validate_new_name("schema", &first)?;
        self.constants.clear();
        self.ctx.state_ref().write().config_mut().options_mut().catalog.default_schema = first.clone();
        self.ctx.register_udf(crate::pg::current_schema_udf(&first));
        Ok(())
    }

    async fn execute_in_schema(&self, stmt: ParsedStatement) -> Result<StatementOutput> {
        crate::read_only::check(self, &stmt.kind).await?;
        match stmt.kind {
            StatementKind::Copy(copy) => {
                self.pin_catalog().await?;
                crate::copy::execute(self, *copy).await
            }
            StatementKind::Access(access) => {
                self.pin_catalog().await?;
                crate::access::execute(self, *access).await
            }
            StatementKind::Policy(policy) => {
                self.pin_catalog().await?;
                crate::policy::execute(self, *policy).await
            }
            StatementKind::Extract(extract) => {
                self.pin_catalog().await?;
                crate::extract::execute(self, *extract).await
            }
            StatementKind::ExplainPrivacy(explain) => {
                self.pin_catalog().await?;
                crate::policy::explain::execute(self, *explain).await
            }
            StatementKind::Optimize(optimize) => {
                self.pin_catalog().await?;
                Box::pin(crate::optimize::execute(self, *optimize)).await
            }
            StatementKind::Erase(erase) => {
                self.pin_catalog().await?;
                Box::pin(crate::erase::execute(self, *erase)).await
            }
            StatementKind::Provide(provide) => {
                self.pin_catalog().await?;
                Box::pin(crate::provision::execute(self, *provide, &stmt.text)).await
            }
            StatementKind::Linkage(linkage) => {
                self.pin_catalog().await?;
                // Boxed: a linkage's future is large, and debug builds run it on small stacks.
                Box::pin(crate::linkage::execute(self, *linkage)).await
            }
            StatementKind::Sql(sql) => {
                let sql = crate::pg::rewrite_for_compatibility(&stmt.text, *sql);
                // A constant query answered before (`SELECT 1`) needs neither catalog nor planner.
                let constant_key = matches!(sql, Statement::Query(_)).then(|| sql.to_string());
                if let Some(rows) = constant_key.as_deref().and_then(|k| self.constants.get(k)) {
                    return Ok(StatementOutput::Rows(rows));
                }
                self.pin_catalog().await?;
                self.execute_sql(sql, constant_key).await
            }
        }
    }

    /// Pins the newest catalog version for the next statement.
    pub(crate) async fn pin_catalog(&self) -> Result<()> {
        let snapshot = self.engine.catalog.refresh().await?;
        *self.pinned.lock() = snapshot.clone();
        self.register_catalog(snapshot);
        Ok(())
    }

    fn register_catalog(&self, snapshot: Arc<Snapshot>) {
        let access = crate::provider::Visibility {
            user: self.user.clone(),
            enforced: self.enforced,
            keys: self.engine.keys.clone(),
        };
        let provider = KuraCatalogProvider::new(
            self.engine.warehouse.clone(),
            snapshot,
            self.ctx.state_weak_ref(),
            access,
            self.extra_schemas.clone(),
        );
        self.ctx.register_catalog(CATALOG_NAME, Arc::new(provider));
    }

    async fn execute_sql(&self, mut stmt: Statement, constant_key: Option<String>) -> Result<StatementOutput> {
        rewrite_time_travel(&mut stmt)?;
        match stmt {
            Statement::CreateSchema { .. }
            | Statement::CreateTable(_)
            | Statement::CreateView(_)
            | Statement::Drop { .. }
            | Statement::AlterTable(_) => crate::ddl::execute(self, stmt).await,
            Statement::Insert(_) | Statement::Delete(_) | Statement::Update(_) | Statement::Truncate(_) => {
                crate::dml::execute(self, stmt).await
            }
            Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. } => Err(
                Error::Unsupported("transactions: each statement commits on its own (autocommit)".into()),
            ),
            other => self.run_generic(other, constant_key).await,
        }
    }

    /// Plans a statement with DataFusion.
    pub(crate) async fn plan(&self, stmt: Statement) -> Result<LogicalPlan> {
        let state = self.ctx.state();
        state.statement_to_plan(DFStatement::Statement(Box::new(stmt))).await.map_err(Error::from_datafusion)
    }

    /// Queries, EXPLAIN, SHOW and SET: anything that reads or changes only session settings.
    async fn run_generic(&self, stmt: Statement, constant_key: Option<String>) -> Result<StatementOutput> {
        // One copy of the session state serves planning and execution (copies are not free).
        let state = self.ctx.state();
        let plan =
            state.statement_to_plan(DFStatement::Statement(Box::new(stmt))).await.map_err(Error::from_datafusion)?;
        let plan = self.police_plan(plan)?;
        match &plan {
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_) => {
                Err(Error::Unsupported(format!("statement of kind {}", plan.display())))
            }
            LogicalPlan::Statement(datafusion::logical_expr::Statement::Prepare(_)) if self.enforced => {
                // SECURITY: a plan prepared in SQL would keep the privileges and table versions
                // of the moment it was prepared; clients prepare through the protocol instead.
                Err(Error::Unsupported("PREPARE in SQL; prepare statements through the driver (extended protocol)".into()))
            }
            LogicalPlan::Statement(statement) => {
                // SECURITY: runtime settings replace the session's memory pool and disk manager,
                // i.e. the limits the operator set; only superusers may change them.
                let variable = match statement {
                    datafusion::logical_expr::Statement::SetVariable(set) => Some(&set.variable),
                    datafusion::logical_expr::Statement::ResetVariable(reset) => Some(&reset.variable),
                    _ => None,
                };
                let variable = variable.map(|v| v.to_ascii_lowercase()).unwrap_or_default();
                if variable.starts_with("datafusion.runtime.") {
                    self.require_superuser("change runtime settings (memory and disk limits)")?;
                }
                // SECURITY: name resolution must stay in step with Kura's own (search_path).
                if variable.starts_with("datafusion.catalog.") {
                    return Err(Error::Unsupported(format!(
                        "SET {variable}; use SET search_path to choose the schema for unqualified names"
                    )));
                }
                self.constants.clear();
                let df = self.ctx.execute_logical_plan(plan).await.map_err(Error::from_datafusion)?;
                df.collect().await.map_err(Error::from_datafusion)?;
                Ok(StatementOutput::command("SET"))
            }
            _ => {
                let constant = constant_key.filter(|_| crate::constant::is_constant(&plan));
                let plan = crate::cte::materialize_repeated(&state, plan).await?;
                let stream = start_plan(&state, &plan).await?;
                match constant {
                    Some(key) => {
                        let schema = stream.schema();
                        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(Error::from_datafusion)?;
                        self.constants.keep(key, schema.clone(), batches.clone());
                        Ok(StatementOutput::Rows(crate::constant::replay(batches, schema)?))
                    }
                    None => Ok(StatementOutput::Rows(stream)),
                }
            }
        }
    }

    /// Optimises, plans and starts executing a logical plan.
    pub(crate) async fn stream_plan(&self, plan: LogicalPlan) -> Result<SendableRecordBatchStream> {
        start_plan(&self.ctx.state(), &plan).await
    }
}

/// Optimises, plans and starts executing `plan` with one copy of the session state (planning and
/// execution share it: copies of the state are not free).
pub(crate) async fn start_plan(state: &SessionState, plan: &LogicalPlan) -> Result<SendableRecordBatchStream> {
    let physical = state.create_physical_plan(plan).await.map_err(Error::from_datafusion)?;
    let stream = execute_stream(physical, Arc::new(datafusion::execution::TaskContext::from(state)))
        .map_err(Error::from_datafusion)?;
    Ok(if crate::policy::reads_policed(plan) { crate::policy::scrub_errors(stream) } else { stream })
}

/// What a statement takes and returns, for a client that prepares it before running it.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// Types of `$1`, `$2`, ... as far as they can be inferred (None: unknown).
    pub parameters: Vec<Option<datafusion::arrow::datatypes::DataType>>,
    /// Columns of the rows it returns; None for commands.
    pub columns: Option<SchemaRef>,
}

impl Session {
    /// Plans `stmt` without running it, to tell a client its parameter and result types.
    /// `declared` holds the types the client gave for `$1`, `$2`, ... (None: let Kura infer).
    pub async fn describe(
        &self,
        stmt: &ParsedStatement,
        declared: &[Option<datafusion::arrow::datatypes::DataType>],
    ) -> Result<Described> {
        let sql = match &stmt.kind {
            StatementKind::Sql(sql) => sql,
            StatementKind::Extract(_) | StatementKind::ExplainPrivacy(_) => {
                return Ok(Described { parameters: vec![], columns: Some(crate::extract::report_schema()) });
            }
            StatementKind::Linkage(l) => {
                return Ok(Described { parameters: vec![], columns: crate::linkage::result_schema(l) });
            }
            _ => return Ok(Described::default()),
        };
        let mut sql = crate::pg::rewrite_for_compatibility(&stmt.text, (**sql).clone());
        crate::params::declare_parameter_types(&mut sql, declared);
        let returns_rows = matches!(
            sql,
            Statement::Query(_) | Statement::Explain { .. } | Statement::ShowVariable { .. } | Statement::ShowTables { .. }
                | Statement::ShowColumns { .. }
        );
        let plannable = returns_rows || matches!(sql, Statement::Insert(_));
        if !plannable {
            return Ok(Described::default());
        }
        self.pin_catalog().await?;
        rewrite_time_travel(&mut sql)?;
        let mut written = crate::params::written_parameter_types(&sql);
        for (i, t) in declared.iter().enumerate() {
            if let Some(t) = t {
                written.insert(i + 1, t.clone());
            }
        }
        let plan = self.plan(sql).await?;
        let types = plan.get_parameter_types().map_err(Error::from_datafusion)?;
        let count = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .chain(written.keys().copied())
            .max()
            .unwrap_or(0);
        // A type written in the statement (`$1::bigint`, `LIMIT $1`) wins over inference, as in
        // PostgreSQL; an untyped parameter is text.
        let parameters = (1..=count)
            .map(|i| {
                written
                    .get(&i)
                    .cloned()
                    .or_else(|| types.get(&format!("${i}")).cloned().flatten())
                    .filter(|t| *t != datafusion::arrow::datatypes::DataType::Null)
            })
            .collect();
        let columns = returns_rows.then(|| Arc::new(plan.schema().as_arrow().clone()));
        Ok(Described { parameters, columns })
    }
}
