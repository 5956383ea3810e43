//! The warehouse as DataFusion sees it: one catalog (`kura`) whose schemas, tables and views come
//! from one pinned catalog snapshot, so every table a statement touches is resolved against the
//! same catalog version.
//!
//! Time travel is resolved here too: the engine rewrites `t VERSION AS OF 3` into a reference to
//! `"t@v3"` (and `TIMESTAMP AS OF` into `"t@t<rfc3339>"`), which this provider opens at that
//! version. New names may not contain `@`, so such a reference can never hit a real table.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, Weak};

use parking_lot::RwLock;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{LogicalPlanBuilder, col};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Ident, ObjectNamePart, Statement, TableFactor, TableVersion, Value, VisitMut, VisitorMut,
};
use kura_catalog::Snapshot;
use kura_storage::{TableVersionSpec, Warehouse};

use crate::{Error, Result};

tokio::task_local! {
    /// How deep view expansion has gone in this task; stops definitions that refer to themselves.
    static VIEW_DEPTH: usize;
}
const MAX_VIEW_DEPTH: usize = 32;

/// Who is asking, for listings and lookups: relations a checked user holds no privilege on are
/// left out of listings and refused on lookup.
#[derive(Debug, Clone)]
pub(crate) struct Visibility {
    pub(crate) user: String,
    pub(crate) enforced: bool,
    /// Pseudonym keys, for policy bodies that use them.
    pub(crate) keys: Arc<crate::keys::WarehouseKeys>,
}

impl Visibility {
    /// The role whose rights apply: a view's owner while it is expanded, else the user.
    fn role(&self) -> String {
        crate::access::ACTING_ROLE.try_with(|r| r.clone()).unwrap_or_else(|_| self.user.clone())
    }

    fn can_see(&self, snapshot: &Snapshot, schema: &str, name: &str) -> bool {
        !self.enforced || snapshot.state.can_see_relation(&self.role(), schema, name)
    }
}

/// Schemas mounted beside the warehouse's own for one session (pg_catalog).
#[derive(Debug, Default)]
pub(crate) struct ExtraSchemas {
    schemas: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl ExtraSchemas {
    /// Mounts (or replaces) a schema.
    pub(crate) fn mount(&self, name: &str, schema: Arc<dyn SchemaProvider>) {
        self.schemas.write().insert(name.to_string(), schema);
    }
}

/// Schemas that may be mounted by the PostgreSQL compatibility layer.
const MOUNTABLE_SCHEMAS: [&str; 1] = ["pg_catalog"];

/// The `kura` catalog for one statement.
#[derive(Debug)]
pub(crate) struct KuraCatalogProvider {
    snapshot: Arc<Snapshot>,
    schemas: HashMap<String, Arc<KuraSchemaProvider>>,
    extra: Arc<ExtraSchemas>,
}

impl KuraCatalogProvider {
    pub(crate) fn new(
        warehouse: Warehouse,
        snapshot: Arc<Snapshot>,
        session: Weak<RwLock<SessionState>>,
        visibility: Visibility,
        extra: Arc<ExtraSchemas>,
    ) -> Self {
        let schemas = snapshot
            .state
            .schemas
            .keys()
            .map(|name| {
                let provider = KuraSchemaProvider {
                    schema: name.clone(),
                    warehouse: warehouse.clone(),
                    snapshot: snapshot.clone(),
                    session: session.clone(),
                    visibility: visibility.clone(),
                    opened: Mutex::new(HashMap::new()),
                    opened_raw: Mutex::new(HashMap::new()),
                };
                (name.clone(), Arc::new(provider))
            })
            .collect();
        Self { snapshot, schemas, extra }
    }
}

impl CatalogProvider for KuraCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.snapshot.state.schemas.keys().cloned().collect();
        // information_schema is reached by name but not listed, as with DataFusion's own (so
        // pg_namespace and the tools' schema lists stay as they were).
        names.extend(self.extra.schemas.read().keys().filter(|k| *k != crate::information_schema::SCHEMA).cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(s) = self.extra.schemas.read().get(name) {
            return Some(s.clone());
        }
        self.schemas.get(name).map(|s| s.clone() as Arc<dyn SchemaProvider>)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DFResult<Option<Arc<dyn SchemaProvider>>> {
        if MOUNTABLE_SCHEMAS.contains(&name) {
            return Ok(self.extra.schemas.write().insert(name.to_string(), schema));
        }
        Err(DataFusionError::Plan("schemas are created with CREATE SCHEMA".into()))
    }
}

/// One schema of the pinned snapshot. Opened tables are kept for the statement's lifetime so a
/// self-join reads one table version.
#[derive(Debug)]
pub(crate) struct KuraSchemaProvider {
    schema: String,
    warehouse: Warehouse,
    snapshot: Arc<Snapshot>,
    session: Weak<RwLock<SessionState>>,
    visibility: Visibility,
    opened: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
    /// Tables opened raw while a policy body was planned; SECURITY: kept apart so that no name a
    /// user can write reaches them.
    opened_raw: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

impl KuraSchemaProvider {
    /// Opens table `name` at `version`; `reference_name` is how the statement named it (with a
    /// time-travel suffix, if any), so a policy plan reads the same version.
    async fn open_table(
        &self,
        name: &str,
        version: TableVersionSpec,
        reference_name: String,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(entry) = self.snapshot.state.schemas.get(&self.schema).and_then(|s| s.tables.get(name)) else {
            return Ok(None);
        };
        let table = self.warehouse.open_table(&entry.location, &version).await?;
        let index = crate::scan::DeltaFileIndex::of(&entry.location, &table);
        let raw: Arc<dyn TableProvider> = match &index {
            Some(index) => Arc::new(crate::scan::DeltaParquetTable::new(index.clone(), table.clone(), self.session.clone())),
            None => delta_rs_provider(&table, &self.session).await?,
        };
        // SECURITY: the only place a table is handed to the planner; it goes raw only while a
        // policy body is planned, when the user's policies on it are all the identity, or to an
        // embedded session (which holds the storage credentials and could read the files).
        // A provision applies refusals to everyone, embedded sessions included (and only those).
        let refusals_only = !self.visibility.enforced;
        if crate::policy::planning_policy() || (refusals_only && !crate::policy::plan::refusals_for_all()) {
            return Ok(Some(raw));
        }
        if entry.policies.is_empty() && !self.snapshot.state.carries_refusals(&self.schema, name) {
            if !refusals_only {
                crate::linked::check_zone(&self.snapshot.state, &self.visibility.user, &self.schema, name, None)?;
            }
            return Ok(Some(raw));
        }
        let state = {
            let session = self.session.upgrade().ok_or_else(|| Error::Invalid("session closed".into()))?;
            let guard = session.read();
            guard.clone()
        };
        let raw_name = match &version {
            TableVersionSpec::Latest => name.to_string(),
            _ => reference_name,
        };
        // A linked table laid out for the current refusals is read, by those they bind, from its
        // clean files instead of through the opt-out filter ([`crate::refusals`]).
        let mut without_refusals = None;
        if let (Some(index), TableVersionSpec::Latest) = (&index, &version)
            && entry.linked.is_some()
            && crate::policy::plan::bound_by_refusals(&self.snapshot, &self.visibility.user)
            && let Some((stamp, _)) = crate::refusals::registry(&self.warehouse, &self.snapshot).await?
            && let Some(only) = crate::refusals::clean_files(&index.refusal_tags().collect::<Vec<_>>(), &stamp)
        {
            // SECURITY: registered only among the raw providers, which no name a user writes reaches.
            let clean_name = format!("{name}@without-refusals");
            let clean = crate::scan::DeltaParquetTable::with_only_files(index.clone(), table, self.session.clone(), only);
            self.opened_raw.lock().expect("poisoned").insert(clean_name.clone(), Arc::new(clean));
            without_refusals = Some(clean_name);
        }
        let policed = crate::policy::plan::policed_table(
            state,
            &self.visibility.keys,
            &self.snapshot,
            &self.schema,
            name,
            &raw_name,
            &raw.schema(),
            &self.visibility.user,
            refusals_only,
            without_refusals.as_deref(),
        )
        .await?;
        // SECURITY: the identity zone holds whatever the policies say; checked on what they did.
        if !refusals_only {
            crate::linked::check_zone(&self.snapshot.state, &self.visibility.user, &self.schema, name, policed.as_ref())?;
        }
        Ok(Some(match policed {
            Some(p) => Arc::new(p),
            None => raw,
        }))
    }

    async fn open_view(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(view) = self.snapshot.state.schemas.get(&self.schema).and_then(|s| s.views.get(name)) else {
            return Ok(None);
        };
        let depth = VIEW_DEPTH.try_with(|d| *d).unwrap_or(0);
        if depth >= MAX_VIEW_DEPTH {
            return Err(Error::Invalid(format!(
                "view \"{}.{name}\" expands more than {MAX_VIEW_DEPTH} levels deep (does it refer to itself?)",
                self.schema
            )));
        }
        let mut state = {
            let session = self.session.upgrade().ok_or_else(|| Error::Invalid("session closed".into()))?;
            let guard = session.read();
            guard.clone()
        };
        // A view's unqualified names mean the same whatever the querying session's search path.
        state.config_mut().options_mut().catalog.default_schema = crate::names::DEFAULT_SCHEMA.to_string();
        let mut statements = crate::parser::parse_sql(&view.sql)?;
        let query = match statements.pop().map(|s| s.kind) {
            Some(crate::parser::StatementKind::Sql(stmt)) if matches!(*stmt, Statement::Query(_)) => stmt,
            _ => return Err(Error::Invalid(format!("view \"{}.{name}\" has an invalid definition", self.schema))),
        };
        let mut stmt = *query;
        rewrite_time_travel(&mut stmt)?;
        // The view reads its relations with its owner's rights (checked as they are opened).
        let plan = crate::access::ACTING_ROLE
            .scope(
                view.owner.clone(),
                crate::names::CURRENT_SCHEMA.scope(
                    crate::names::DEFAULT_SCHEMA.to_string(),
                    VIEW_DEPTH.scope(depth + 1, async { state.statement_to_plan(DFStatement::Statement(Box::new(stmt))).await }),
                ),
            )
            .await?;
        let plan = if view.columns.is_empty() {
            plan
        } else {
            let fields = plan.schema().columns();
            if fields.len() != view.columns.len() {
                return Err(Error::Invalid(format!(
                    "view \"{}.{name}\" names {} columns but its query returns {}",
                    self.schema,
                    view.columns.len(),
                    fields.len()
                )));
            }
            let exprs: Vec<_> = fields.into_iter().zip(&view.columns).map(|(c, n)| col(c).alias(n)).collect();
            LogicalPlanBuilder::from(plan).project(exprs)?.build()?
        };
        Ok(Some(Arc::new(OpaqueView(ViewTable::new(plan, Some(view.sql.clone()))))))
    }
}

#[async_trait]
impl SchemaProvider for KuraSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        match self.snapshot.state.schemas.get(&self.schema) {
            Some(s) => s
                .tables
                .keys()
                .chain(s.views.keys())
                .filter(|n| self.visibility.can_see(&self.snapshot, &self.schema, n))
                .cloned()
                .collect(),
            None => vec![],
        }
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let base = name.split_once('@').map_or(name, |(b, _)| b);
        if self.table_exist(base) && !self.visibility.can_see(&self.snapshot, &self.schema, base) {
            return Err(Error::PermissionDenied(format!("permission denied for table {base}")).into());
        }
        // Raw and policed providers of one table are kept apart.
        let cache = if crate::policy::planning_policy() { &self.opened_raw } else { &self.opened };
        if let Some(p) = cache.lock().expect("poisoned").get(name) {
            return Ok(Some(p.clone()));
        }
        let provider = match name.split_once('@') {
            Some((base, spec)) => {
                let version = parse_version_suffix(spec)?;
                self.open_table(base, version, name.to_string()).await?
            }
            None => match self.open_table(name, TableVersionSpec::Latest, name.to_string()).await? {
                Some(p) => Some(p),
                None => match self.open_view(name).await {
                    Ok(view) => view,
                    // A view that does not plan for this user (it names a column a projection
                    // policy hides from them) still exists: catalog listings show it, without
                    // columns, and every query that reads it fails as planning it did.
                    Err(e) if !crate::policy::planning_policy() => Some(Arc::new(BrokenView(e)) as Arc<dyn TableProvider>),
                    Err(e) => return Err(e.into()),
                },
            },
        };
        if let Some(p) = &provider {
            cache.lock().expect("poisoned").insert(name.to_string(), p.clone());
        }
        Ok(provider)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.snapshot
            .state
            .schemas
            .get(&self.schema)
            .is_some_and(|s| s.tables.contains_key(name) || s.views.contains_key(name))
    }
}

/// A view that the planner does not inline. DataFusion's `ViewTable` hands its plan to the
/// planner, which splices the view's table scans into the query; privilege checks would then see
/// (and refuse) the tables the view reads with its owner's rights. Kept opaque, the query shows
/// one scan of the view, and the view's own reads were checked when it was expanded.
#[derive(Debug)]
pub(crate) struct OpaqueView(pub(crate) ViewTable);

#[async_trait]
impl TableProvider for OpaqueView {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.0.get_table_definition()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&datafusion::logical_expr::Expr],
    ) -> DFResult<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        // Filters stay above the view: their column qualifiers are the view's, not its plan's.
        Ok(vec![datafusion::logical_expr::TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        self.0.scan(state, projection, &[], limit).await
    }
}

/// A view that does not plan for the session user: no columns, and reading it fails with the
/// error planning it gave.
#[derive(Debug)]
pub(crate) struct BrokenView(Error);

#[async_trait]
impl TableProvider for BrokenView {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        Arc::new(datafusion::arrow::datatypes::Schema::empty())
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        Err(self.0.clone_shallow().into())
    }
}

/// delta-rs's provider for a loaded table: for writes, and for reading tables that use Delta
/// features Kura's own scan leaves to delta-rs.
pub(crate) async fn delta_rs_provider(
    table: &deltalake::DeltaTable,
    session: &Weak<RwLock<SessionState>>,
) -> DFResult<Arc<dyn TableProvider>> {
    let mut builder = table.table_provider();
    // Scan the file list the table state already holds instead of replaying the log again.
    if let Ok(state) = table.snapshot() {
        builder = builder.with_eager_snapshot(Arc::new(state.snapshot().clone()));
    }
    // Parquet read options (filter pushdown and the like) follow the session's settings.
    if let Some(session) = session.upgrade() {
        let state = session.read().clone();
        builder = builder.with_session(Arc::new(state));
    }
    Ok(builder.await?)
}

fn parse_version_suffix(spec: &str) -> Result<TableVersionSpec> {
    if let Some(v) = spec.strip_prefix('v') {
        return v
            .parse::<u64>()
            .ok()
            .map(TableVersionSpec::Version)
            .ok_or_else(|| Error::Invalid(format!("invalid table version \"{v}\"")));
    }
    if let Some(ts) = spec.strip_prefix('t') {
        return chrono::DateTime::parse_from_rfc3339(ts)
            .map(|t| TableVersionSpec::Timestamp(t.with_timezone(&chrono::Utc)))
            .map_err(|_| Error::Invalid(format!("invalid timestamp \"{ts}\"")));
    }
    Err(Error::Invalid(format!("invalid time-travel reference \"@{spec}\"")))
}

/// Parses a user-written `TIMESTAMP AS OF` value: RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in UTC.
fn parse_user_timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")));
    }
    Err(Error::Invalid(format!(
        "TIMESTAMP AS OF needs a timestamp literal such as '2026-04-01 09:00:00' (UTC), got '{text}'"
    )))
}

struct TimeTravelRewriter {
    error: Option<Error>,
}

impl VisitorMut for TimeTravelRewriter {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, version, .. } = factor {
            let Some(v) = version.take() else { return ControlFlow::Continue(()) };
            let suffix = match &v {
                TableVersion::VersionAsOf(SqlExpr::Value(val)) => match &val.value {
                    Value::Number(n, _) => Ok(format!("v{n}")),
                    _ => Err(Error::Invalid("VERSION AS OF needs a version number".into())),
                },
                TableVersion::TimestampAsOf(SqlExpr::Value(val))
                | TableVersion::ForSystemTimeAsOf(SqlExpr::Value(val)) => match &val.value {
                    Value::SingleQuotedString(s) => parse_user_timestamp(s).map(|t| format!("t{}", t.to_rfc3339())),
                    _ => Err(Error::Invalid("TIMESTAMP AS OF needs a timestamp literal".into())),
                },
                TableVersion::TimestampAsOf(SqlExpr::TypedString(ts)) => match &ts.value.value {
                    Value::SingleQuotedString(s) => parse_user_timestamp(s).map(|t| format!("t{}", t.to_rfc3339())),
                    _ => Err(Error::Invalid("TIMESTAMP AS OF needs a timestamp literal".into())),
                },
                other => Err(Error::Unsupported(format!("time travel clause {other}"))),
            };
            match suffix {
                Ok(suffix) => {
                    if let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() {
                        let base = crate::names::normalize_ident(last);
                        *last = Ident::with_quote('"', format!("{base}@{suffix}"));
                    }
                }
                Err(e) => {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites every `VERSION AS OF` / `TIMESTAMP AS OF` table reference into a versioned name.
pub(crate) fn rewrite_time_travel(stmt: &mut Statement) -> Result<()> {
    let mut rewriter = TimeTravelRewriter { error: None };
    let _ = stmt.visit(&mut rewriter);
    match rewriter.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
