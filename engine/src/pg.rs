//! PostgreSQL compatibility that lives in the engine because it is about SQL, not the wire:
//! `current_user` and friends, the `pg_catalog` schema (from `datafusion-pg-catalog`, reading the
//! same filtered catalog as everything else, so a user never sees a relation it may not use), and
//! the rewrites that make client tools' catalog queries plannable.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, TypeSignature, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, SelectItem,
    SetExpr, Statement, VisitMut, VisitorMut,
};
use std::ops::ControlFlow;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProviderList, SchemaProvider};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use kura_catalog::Catalog;

use crate::names::CATALOG_NAME;
use crate::params::function_call;
use crate::session::Session;

/// `json_build_object(key, value, ...)` as JSON text.
fn json_build_object(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    use datafusion::arrow::array::{Array, StringBuilder};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    if args.len() % 2 != 0 {
        return Err(DataFusionError::Plan("json_build_object needs key/value pairs".into()));
    }
    let rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let options = FormatOptions::default();
    let formatters = arrays
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let quote = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut out = StringBuilder::new();
    for row in 0..rows {
        let mut text = String::from("{");
        for pair in 0..arrays.len() / 2 {
            let (k, v) = (2 * pair, 2 * pair + 1);
            if pair > 0 {
                text.push_str(", ");
            }
            text.push_str(&quote(&formatters[k].value(row).to_string()));
            text.push_str(" : ");
            if arrays[v].is_null(row) {
                text.push_str("null");
            } else {
                let value = formatters[v].value(row).to_string();
                match arrays[v].data_type() {
                    t if t.is_numeric() || *t == DataType::Boolean => text.push_str(&value),
                    _ => text.push_str(&quote(&value)),
                }
            }
        }
        text.push('}');
        out.append_value(text);
    }
    let array = Arc::new(out.finish());
    Ok(if rows == 1 && args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(ScalarValue::try_from_array(array.as_ref(), 0)?)
    } else {
        ColumnarValue::Array(array)
    })
}

/// An identifier as PostgreSQL's `quote_ident` writes it: quoted unless plain lower case.
fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// PostgreSQL's `format(fmt, args...)`: `%s` (text, NULL as empty), `%I` (identifier), `%L`
/// (literal, NULL as `NULL`), `%%`, and positions (`%2$s`). Widths are refused.
fn pg_format(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    use datafusion::arrow::array::{Array, AsArray, StringArray};
    let rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    if args.is_empty() {
        return Err(DataFusionError::Plan("format needs a format string".into()));
    }
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let texts = arrays
        .iter()
        .map(|a| datafusion::arrow::compute::cast(a, &DataType::Utf8))
        .collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<&StringArray> = texts.iter().map(|a| a.as_string::<i32>()).collect();
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        if texts[0].is_null(row) {
            out.push(None);
            continue;
        }
        let arg = |n: usize| -> datafusion::error::Result<Option<&str>> {
            let a = texts.get(n).ok_or_else(|| DataFusionError::Execution("too few arguments for format()".into()))?;
            Ok((!a.is_null(row)).then(|| a.value(row)))
        };
        let mut text = String::new();
        let mut next = 1;
        let mut chars = texts[0].value(row).chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            let position = if !digits.is_empty() {
                if chars.next() != Some('$') {
                    return Err(DataFusionError::Execution("format(): widths are not supported".into()));
                }
                digits.parse::<usize>().map_err(|e| DataFusionError::Execution(e.to_string()))?
            } else {
                0
            };
            let kind = chars.next().ok_or_else(|| DataFusionError::Execution("unterminated format() specifier".into()))?;
            if kind == '%' {
                text.push('%');
                continue;
            }
            let n = if position > 0 { position } else { next };
            next = n + 1;
            let value = arg(n)?;
            match kind {
                's' => text.push_str(value.unwrap_or_default()),
                'I' => match value {
                    Some(v) => text.push_str(&quote_ident(v)),
                    None => return Err(DataFusionError::Execution("null values cannot be formatted as an SQL identifier".into())),
                },
                'L' => match value {
                    Some(v) => text.push_str(&format!("'{}'", v.replace('\'', "''"))),
                    None => text.push_str("NULL"),
                },
                other => return Err(DataFusionError::Execution(format!("unrecognized format() type specifier \"{other}\""))),
            }
        }
        out.push(Some(text));
    }
    let array = StringArray::from(out);
    Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(Arc::new(array))
    })
}

/// `current_setting(name [, missing_ok])` over [`crate::pg_overrides::fixed_settings`].
fn current_setting(args: &[ColumnarValue]) -> datafusion::error::Result<ColumnarValue> {
    use datafusion::arrow::array::{Array, AsArray, StringArray};
    let rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let names = arrays[0].as_string::<i32>();
    let missing_ok = arrays.get(1).map(|a| a.as_boolean().clone());
    let settings = crate::pg_overrides::fixed_settings();
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        if names.is_null(i) {
            out.push(None);
            continue;
        }
        let name = names.value(i).to_ascii_lowercase();
        match settings.iter().find(|(n, _, _)| *n == name) {
            Some((_, value, _)) => out.push(Some(value.clone())),
            None if missing_ok.as_ref().is_some_and(|m| m.is_valid(i) && m.value(i)) => out.push(None),
            None => {
                return Err(DataFusionError::Plan(format!("unrecognized configuration parameter \"{}\"", names.value(i))));
            }
        }
    }
    let array = StringArray::from(out);
    Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(Arc::new(array))
    })
}

/// The PostgreSQL version Kura answers as (the protocol and catalogs it emulates).
pub const PG_VERSION: &str = "16.6";

/// A function that answers `value` whatever its arguments (as typed by `signature`).
fn constant_udf(name: &str, signature: Signature, value: ScalarValue) -> ScalarUDF {
    let return_type = value.data_type();
    let answer = move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()));
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(name, signature, return_type, Arc::new(answer)))
}

fn constant_text_udf(name: &str, value: &str) -> ScalarUDF {
    constant_udf(name, Signature::exact(vec![], Volatility::Stable), ScalarValue::Utf8(Some(value.to_string())))
}

/// `current_user`, `session_user`, `current_role` and `user`: the session's user (Kura has no
/// `SET ROLE`, so they are always the same).
pub(crate) fn register_session_functions(ctx: &SessionContext, user: &str) {
    for name in ["current_user", "session_user", "current_role", "user"] {
        ctx.register_udf(constant_text_udf(name, user));
    }
    // Drivers (SQLAlchemy, pgjdbc) parse the version from this string.
    ctx.register_udf(constant_text_udf(
        "version",
        &format!("PostgreSQL {PG_VERSION} (Kura {}) on x86_64-pc-linux-gnu", env!("CARGO_PKG_VERSION")),
    ));
}

/// `current_schema()`: where unqualified names resolve.
pub(crate) fn current_schema_udf(schema: &str) -> ScalarUDF {
    constant_text_udf("current_schema", schema)
}

/// Roles for `pg_roles` / `pg_user`, read from the catalog.
#[derive(Debug, Clone)]
struct CatalogRoles {
    catalog: Arc<Catalog>,
}

#[async_trait]
impl PgCatalogContextProvider for CatalogRoles {
    async fn roles(&self) -> Vec<String> {
        self.catalog.cached().state.roles.keys().cloned().collect()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        let snapshot = self.catalog.cached();
        let r = snapshot.state.roles.get(name)?;
        Some(Role {
            name: r.name.clone(),
            is_superuser: r.superuser,
            can_login: r.login,
            can_create_db: false,
            can_create_role: r.superuser,
            can_create_user: r.superuser,
            can_replication: false,
            grants: vec![],
            inherited_roles: r.member_of.iter().cloned().collect(),
        })
    }
}

/// What `pg_catalog` reads about relations: the warehouse as one user sees it, at the newest
/// catalog version. One per user, shared by that user's connections, so that the OIDs it hands
/// out stay the same from one connection to the next (tools keep OIDs across connections).
#[derive(Debug, Clone)]
struct UserCatalogInfo {
    session: Arc<Session>,
}

impl UserCatalogInfo {
    async fn list(&self) -> Result<Arc<dyn CatalogProviderList>, DataFusionError> {
        self.session.pin_catalog().await.map_err(DataFusionError::from)?;
        Ok(self.session.ctx.state().catalog_list().clone())
    }
}

#[async_trait]
impl CatalogInfo for UserCatalogInfo {
    async fn catalog_names(&self) -> Result<Vec<String>, DataFusionError> {
        self.list().await?.catalog_names().await
    }

    async fn schema_names(&self, catalog: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        CatalogInfo::schema_names(&self.list().await?, catalog).await
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        CatalogInfo::table_names(&self.list().await?, catalog, schema).await
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>, DataFusionError> {
        CatalogInfo::table_schema(&self.list().await?, catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableType>, DataFusionError> {
        CatalogInfo::table_type(&self.list().await?, catalog, schema, table).await
    }
}

fn static_tables() -> crate::Result<Arc<PgCatalogStaticTables>> {
    static TABLES: OnceLock<Arc<PgCatalogStaticTables>> = OnceLock::new();
    if let Some(t) = TABLES.get() {
        return Ok(t.clone());
    }
    let tables = Arc::new(
        PgCatalogStaticTables::try_new().map_err(|e| crate::Error::Invalid(format!("pg_catalog tables: {e}")))?,
    );
    Ok(TABLES.get_or_init(|| tables).clone())
}

impl crate::Engine {
    /// A `pg_catalog` schema showing the warehouse as `user` sees it. Servers keep one per user
    /// and mount it in each of that user's sessions ([`Session::enable_pg_catalog`]).
    pub fn pg_catalog_for(self: &Arc<Self>, user: &str, enforced: bool) -> crate::Result<Arc<dyn SchemaProvider>> {
        let session = Arc::new(self.new_session(user, enforced, false));
        let roles = CatalogRoles { catalog: self.catalog().clone() };
        let info = UserCatalogInfo { session };
        let provider = PgCatalogSchemaProvider::try_new(info.clone(), static_tables()?, roles)
            .map_err(|e| crate::Error::Invalid(format!("could not set up pg_catalog: {e}")))?;
        Ok(Arc::new(crate::pg_overrides::KuraPgCatalog::new(Arc::new(provider), info)))
    }
}

/// Mounts `pg_catalog` and its functions in a session (servers do this for every connection).
pub(crate) fn setup_pg_catalog(session: &Session, shared: Option<Arc<dyn SchemaProvider>>) -> crate::Result<()> {
    let roles = CatalogRoles { catalog: session.engine.catalog().clone() };
    datafusion_pg_catalog::setup_pg_catalog(&session.ctx, CATALOG_NAME, roles)
        .map_err(|e| crate::Error::Invalid(format!("could not set up pg_catalog: {e}")))?;
    if let Some(provider) = shared {
        session.extra_schemas.mount("pg_catalog", provider);
    }
    // pg_catalog's own `session_user` and `current_schema` answer fixed names; the real ones win.
    register_session_functions(&session.ctx, &session.user);
    session.ctx.register_udf(current_schema_udf(&session.current_schema()));
    let exact = |args: Vec<DataType>| TypeSignature::Exact(args);
    let no_text = ScalarValue::Utf8(None);
    let constants = [
        // SQLAlchemy's column reflection asks for sequences behind serial columns; Kura has none.
        ("pg_get_serial_sequence", vec![exact(vec![DataType::Utf8, DataType::Utf8])], no_text.clone()),
        // Only reached if the ViewDefinition rewrite could not replace the call.
        ("pg_get_viewdef", vec![exact(vec![DataType::Int64]), exact(vec![DataType::Int64, DataType::Boolean])], no_text),
        // Kura has no indexes (pg_index is empty), so no index has a definition.
        (
            "pg_get_indexdef",
            vec![exact(vec![DataType::Int64]), exact(vec![DataType::Int64, DataType::Int64, DataType::Boolean])],
            ScalarValue::Utf8(None),
        ),
        ("pg_collation_is_visible", vec![exact(vec![DataType::Int64])], ScalarValue::Boolean(Some(true))),
        // psycopg looks up extension types (hstore) by name; Kura has none.
        ("to_regtype", vec![exact(vec![DataType::Utf8])], ScalarValue::Int64(None)),
        // psql's \df describes functions with these; Kura's functions have no SQL signatures.
        ("pg_get_function_result", vec![exact(vec![DataType::Int64])], ScalarValue::Utf8(Some(String::new()))),
        ("pg_get_function_arguments", vec![exact(vec![DataType::Int64])], ScalarValue::Utf8(Some(String::new()))),
        ("pg_get_function_identity_arguments", vec![exact(vec![DataType::Int64])], ScalarValue::Utf8(Some(String::new()))),
        // psql's \df asks this of every function; all functions are on the search path.
        ("pg_function_is_visible", vec![exact(vec![DataType::Int64])], ScalarValue::Boolean(Some(true))),
    ];
    for (name, signatures, value) in constants {
        session.ctx.register_udf(constant_udf(name, Signature::one_of(signatures, Volatility::Stable), value));
    }
    // `current_setting(name [, missing_ok])` for the fixed settings (SQLAlchemy's table options
    // read default_table_access_method); other names are PostgreSQL's error, or NULL if missing_ok.
    session.ctx.register_udf(ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "current_setting",
        Signature::one_of(vec![exact(vec![DataType::Utf8]), exact(vec![DataType::Utf8, DataType::Boolean])], Volatility::Stable),
        DataType::Utf8,
        Arc::new(current_setting),
    )));
    // PostgreSQL's format(): Metabase builds type and relation names with it.
    session.ctx.register_udf(ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "format",
        Signature::variadic_any(Volatility::Stable),
        DataType::Utf8,
        Arc::new(pg_format),
    )));
    // Kura's relations have no comments (pg_description lists none of them).
    session.ctx.register_udf(constant_udf("col_description", Signature::any(2, Volatility::Stable), ScalarValue::Utf8(None)));
    // SQLAlchemy's column reflection builds JSON objects of identity and collation details.
    session.ctx.register_udf(ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "json_build_object",
        Signature::variadic_any(Volatility::Immutable),
        DataType::Utf8,
        Arc::new(json_build_object),
    )));
    Ok(())
}

fn compatibility_parser() -> &'static PostgresCompatibilityParser {
    static PARSER: OnceLock<PostgresCompatibilityParser> = OnceLock::new();
    PARSER.get_or_init(PostgresCompatibilityParser::new)
}

/// Client tools' catalog queries (psql's `\d`, JDBC metadata, BI schema sync) use PostgreSQL
/// idioms DataFusion cannot plan (`'t'::regclass`, `OPERATOR(pg_catalog.~)`, `COLLATE`, ...).
/// Statements that touch the system catalogs are re-read through datafusion-pg-catalog's
/// rewriting parser; everything else is left exactly as written.
pub(crate) fn rewrite_for_compatibility(text: &str, stmt: Statement) -> Statement {
    if !matches!(stmt, Statement::Query(_)) {
        return stmt;
    }
    let lower = text.to_ascii_lowercase();
    let catalog_query = ["pg_", "::reg", "information_schema", "operator(", "collate", "current_schema", "version()"]
        .iter()
        .any(|needle| lower.contains(needle));
    let mut stmt = if catalog_query {
        match compatibility_parser().parse(text) {
            Ok(mut statements) if statements.len() == 1 => statements.remove(0),
            _ => compatibility_parser().rewrite(stmt),
        }
    } else {
        stmt
    };
    let _ = stmt.visit(&mut ArraySubquery);
    let _ = stmt.visit(&mut LikeEscape);
    let _ = stmt.visit(&mut ViewDefinition);
    let _ = stmt.visit(&mut NumericScale);
    let _ = stmt.visit(&mut GenerateSubscripts);
    let _ = stmt.visit(&mut ExpandArray);
    let _ = stmt.visit(&mut ComputedRegclass);
    if let Statement::Query(q) = &mut stmt {
        name_outputs_like_postgres(q);
    }
    stmt
}

/// Output columns get PostgreSQL's names (`count`, `max`, `?column?`, the column's own name)
/// instead of DataFusion's (`count(*)`, `max(t.a)`, `Int64(1)`), which is what drivers and BI
/// tools show and look up. PostgreSQL allows equal names (`SELECT id, id`); DataFusion needs
/// them unique, so repeats get a suffix (`id`, `id_1`).
fn name_outputs_like_postgres(query: &mut datafusion::sql::sqlparser::ast::Query) {
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for item in select.projection.iter_mut() {
        let (name, expr) = match item {
            SelectItem::UnnamedExpr(e) => (postgres_name(e), Some(e.clone())),
            SelectItem::ExprWithAlias { alias, .. } => (alias.value.clone(), None),
            _ => continue,
        };
        let n = seen.entry(name.clone()).or_insert(0);
        *n += 1;
        let unique = if *n == 1 { name } else { format!("{name}_{}", *n - 1) };
        if let Some(expr) = expr {
            // Plain column references keep DataFusion's qualified field, so ORDER BY and
            // GROUP BY on them keep working; only repeats need an alias.
            let is_column = matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
            if !is_column || *n > 1 {
                *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', unique) };
            }
        }
    }
}

/// The name PostgreSQL gives an unnamed output expression.
fn postgres_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.to_lowercase(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()).unwrap_or_default(),
        Expr::Function(f) => f.name.0.last().map(|p| p.to_string().trim_matches('"').to_lowercase()).unwrap_or_default(),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => match postgres_name(expr).as_str() {
            "?column?" => match e {
                Expr::Cast { data_type, .. } => data_type.to_string().to_lowercase(),
                _ => "?column?".into(),
            },
            name => name.to_string(),
        },
        Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}

/// The called function's own name (its last part), lower-cased.
fn called_name(f: &datafusion::sql::sqlparser::ast::Function) -> String {
    f.name.0.last().map(|p| p.to_string().to_ascii_lowercase()).unwrap_or_default()
}

/// `pg_get_viewdef(oid [, pretty])` becomes a lookup of the view's stored SQL
/// (`information_schema.views`) by the relation's name and schema in `pg_class`.
struct ViewDefinition;

impl VisitorMut for ViewDefinition {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else { return ControlFlow::Continue(()) };
        let name = called_name(f);
        if name != "pg_get_viewdef" {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &f.args else { return ControlFlow::Continue(()) };
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(oid))) = list.args.first() else {
            return ControlFlow::Continue(());
        };
        let sql = format!(
            "SELECT max(iv.definition) FROM information_schema.views iv \
             JOIN pg_catalog.pg_class kura_c ON kura_c.relname = iv.table_name \
             JOIN pg_catalog.pg_namespace kura_n ON kura_n.oid = kura_c.relnamespace AND kura_n.nspname = iv.table_schema \
             WHERE kura_c.oid = {oid}"
        );
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        if let Ok(mut parsed) = datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, &sql) {
            if let Some(Statement::Query(q)) = parsed.pop() {
                *expr = Expr::Subquery(q);
            }
        }
        ControlFlow::Continue(())
    }
}

/// A cast to `numeric` without precision and scale keeps the scale of what it casts, as in
/// PostgreSQL, where such a numeric carries each value's own scale: `3.14::numeric` is `3.14`,
/// not DataFusion's `DECIMAL(38, 10)` `3.1400000000`. Arrow decimals have one scale per column, so
/// this is decided where the scale is known from the text: a literal (`3.14`, `'3.14'`, also a
/// bound parameter) and a cast that already names its scale.
struct NumericScale;

impl NumericScale {
    /// The digits after the point of a plain decimal literal (`-3.140` has 3).
    fn literal_scale(text: &str) -> Option<u64> {
        let digits = text.trim().trim_start_matches(['-', '+']);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let valid = !(whole.is_empty() && fraction.is_empty())
            && whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit());
        valid.then_some(fraction.len() as u64)
    }
}

impl VisitorMut for NumericScale {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo, UnaryOperator, Value};
        let Expr::Cast { expr: inner, data_type, .. } = expr else { return ControlFlow::Continue(()) };
        if !matches!(
            data_type,
            SqlType::Numeric(ExactNumberInfo::None) | SqlType::Decimal(ExactNumberInfo::None) | SqlType::Dec(ExactNumberInfo::None)
        ) {
            return ControlFlow::Continue(());
        }
        let mut operand = inner.as_ref();
        while let Expr::Nested(e) = operand {
            operand = e;
        }
        match operand {
            // A cast to a numeric with a stated scale already has PostgreSQL's scale.
            Expr::Cast {
                data_type:
                    SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(..))
                    | SqlType::Decimal(ExactNumberInfo::PrecisionAndScale(..))
                    | SqlType::Dec(ExactNumberInfo::PrecisionAndScale(..)),
                ..
            } => *expr = operand.clone(),
            _ => {
                let (negative, literal) = match operand {
                    Expr::UnaryOp { op: UnaryOperator::Minus, expr } => (true, expr.as_ref()),
                    other => (false, other),
                };
                let text = match literal {
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => n.clone(),
                        Value::SingleQuotedString(s) if !negative => s.trim().to_string(),
                        _ => return ControlFlow::Continue(()),
                    },
                    _ => return ControlFlow::Continue(()),
                };
                let Some(scale) = Self::literal_scale(&text).filter(|s| *s <= 38) else {
                    return ControlFlow::Continue(());
                };
                // The text, not a float, is cast: the digits stay exact.
                let text = if negative { format!("-{text}") } else { text };
                **inner = Expr::value(Value::SingleQuotedString(text));
                *data_type = SqlType::Decimal(ExactNumberInfo::PrecisionAndScale(38, scale as i64));
            }
        }
        ControlFlow::Continue(())
    }
}

/// `generate_subscripts(a, 1)` (SQLAlchemy's key reflection, beside `unnest(a)`) becomes
/// `unnest(range(1, cardinality(a) + 1))`: the positions of a one-dimensional array, as rows that
/// line up with `unnest(a)` in the same select list.
struct GenerateSubscripts;

impl VisitorMut for GenerateSubscripts {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else { return ControlFlow::Continue(()) };
        let name = called_name(f);
        if name != "generate_subscripts" {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &f.args else { return ControlFlow::Continue(()) };
        // Kura's catalog arrays have one dimension; the dimension may be a parameter.
        let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array)), FunctionArg::Unnamed(FunctionArgExpr::Expr(_))] =
            list.args.as_slice()
        else {
            return ControlFlow::Continue(());
        };
        *expr = array_positions(array.clone());
        ControlFlow::Continue(())
    }
}

/// The positions `1..=cardinality(a)` of a one-dimensional array, one row each:
/// `unnest(range(1, cardinality(a) + 1))`.
fn array_positions(array: Expr) -> Expr {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, CastKind, DataType as SqlType, Value};
    let length = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(function_call("cardinality", vec![array])),
        data_type: SqlType::BigInt(None),
        array: false,
        format: None,
    };
    let one = || Expr::value(Value::Number("1".into(), false));
    let stop = Expr::BinaryOp { left: Box::new(length), op: BinaryOperator::Plus, right: Box::new(one()) };
    function_call("unnest", vec![function_call("range", vec![one(), stop])])
}

/// The array argument of a call of `name` with one argument.
fn single_array_argument<'a>(expr: &'a Expr, name: &str) -> Option<&'a Expr> {
    let Expr::Function(f) = expr else { return None };
    let called = called_name(f);
    if called != name {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else { return None };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] => Some(array),
        _ => None,
    }
}

/// `information_schema._pg_expandarray(a)` (pgjdbc's key and index metadata) is a set-returning
/// function of `(x, n)` rows: each element and its position. `(…).x` becomes `unnest(a)`, `(…).n`
/// the positions, and the bare call a struct of both, so the rows line up as in PostgreSQL.
struct ExpandArray;

impl VisitorMut for ExpandArray {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::AccessExpr;
        let Expr::CompoundFieldAccess { root, access_chain } = expr else { return ControlFlow::Continue(()) };
        let mut call = root.as_ref();
        while let Expr::Nested(inner) = call {
            call = inner;
        }
        let (Some(array), [AccessExpr::Dot(Expr::Identifier(field))]) =
            (single_array_argument(call, "_pg_expandarray"), access_chain.as_slice())
        else {
            // Any other `(composite).field` (`(result.keys).x`) reads the struct's field.
            let fields: Option<Vec<String>> = access_chain
                .iter()
                .map(|a| match a {
                    AccessExpr::Dot(Expr::Identifier(f)) => Some(f.value.clone()),
                    _ => None,
                })
                .collect();
            if let Some(fields) = fields.filter(|f| !f.is_empty()) {
                use datafusion::sql::sqlparser::ast::Value;
                let mut read = root.as_ref().clone();
                for f in fields {
                    read = function_call("get_field", vec![read, Expr::value(Value::SingleQuotedString(f))]);
                }
                *expr = read;
            }
            return ControlFlow::Continue(());
        };
        let (array, field) = (array.clone(), field.value.to_ascii_lowercase());
        match field.as_str() {
            "x" => *expr = function_call("unnest", vec![array]),
            "n" => *expr = array_positions(array),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::Value;
        let Some(array) = single_array_argument(expr, "_pg_expandarray").cloned() else {
            return ControlFlow::Continue(());
        };
        let name = |n: &str| Expr::value(Value::SingleQuotedString(n.into()));
        *expr = function_call(
            "named_struct",
            vec![name("x"), function_call("unnest", vec![array.clone()]), name("n"), array_positions(array)],
        );
        ControlFlow::Continue(())
    }
}

/// `CAST(<computed text> AS regclass)` (Metabase: `format('%I.%I', schema, table)::regclass`)
/// becomes a lookup of the relation in `pg_class`, as PostgreSQL resolves it: `schema.name`, or
/// `name` in the current schema. datafusion-pg-catalog resolves only literals; a column operand
/// (`c.oid::regclass`) is an OID already and is left alone, so only operands that compute text
/// (text functions, `||`, casts to text) are rewritten.
struct ComputedRegclass;

impl ComputedRegclass {
    fn computes_text(e: &Expr) -> bool {
        use datafusion::sql::sqlparser::ast::{BinaryOperator, DataType as SqlType};
        match e {
            Expr::Nested(inner) => Self::computes_text(inner),
            Expr::Function(f) => {
                let name = called_name(f);
                matches!(name.as_str(), "format" | "concat" | "concat_ws" | "quote_ident" | "lower" | "upper" | "btrim" | "trim")
            }
            Expr::BinaryOp { op: BinaryOperator::StringConcat, .. } => true,
            Expr::Cast { data_type: SqlType::Text | SqlType::Varchar(_), .. } => true,
            _ => false,
        }
    }
}

impl VisitorMut for ComputedRegclass {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Cast { expr: operand, data_type, .. } = expr else { return ControlFlow::Continue(()) };
        let type_name = data_type.to_string().to_ascii_lowercase();
        if type_name.trim_start_matches("pg_catalog.") != "regclass" || !Self::computes_text(operand) {
            return ControlFlow::Continue(());
        }
        let parts = format!("parse_ident(CAST({operand} AS TEXT))");
        let sql = format!(
            "SELECT kura_c.oid FROM pg_catalog.pg_class kura_c \
             JOIN pg_catalog.pg_namespace kura_n ON kura_n.oid = kura_c.relnamespace \
             WHERE kura_n.nspname = CASE WHEN array_length({parts}, 1) = 2 THEN {parts}[1] ELSE current_schema() END \
             AND kura_c.relname = {parts}[CAST(array_length({parts}, 1) AS BIGINT)]"
        );
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        if let Ok(mut parsed) = datafusion::sql::sqlparser::parser::Parser::parse_sql(&dialect, &sql) {
            if let Some(Statement::Query(q)) = parsed.pop() {
                *expr = Expr::Subquery(q);
            }
        }
        ControlFlow::Continue(())
    }
}

/// `LIKE p ESCAPE '/'` (SQLAlchemy's escape character): DataFusion knows only the backslash, so
/// the pattern's escapes are translated.
struct LikeEscape;

impl VisitorMut for LikeEscape {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let (Expr::Like { pattern, escape_char, .. } | Expr::ILike { pattern, escape_char, .. }) = expr else {
            return ControlFlow::Continue(());
        };
        let Some(escape) = escape_char.as_ref().and_then(|v| match &v.value {
            datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        }) else {
            return ControlFlow::Continue(());
        };
        if escape == "\\" || escape.chars().count() != 1 {
            return ControlFlow::Continue(());
        }
        let text = |s: &str| Expr::value(datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s.into()));
        // Backslashes become literal, then the escape character becomes the backslash.
        let literal_backslashes = function_call("replace", vec![(**pattern).clone(), text("\\"), text("\\\\")]);
        **pattern = function_call("replace", vec![literal_backslashes, text(&escape), text("\\")]);
        *escape_char = None;
        ControlFlow::Continue(())
    }
}

/// `ARRAY(SELECT x FROM ...)` (psql's `\du`) becomes `(SELECT array_agg(x) FROM ...)`, which
/// DataFusion can decorrelate.
struct ArraySubquery;

impl VisitorMut for ArraySubquery {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else { return ControlFlow::Continue(()) };
        if !f.name.to_string().eq_ignore_ascii_case("array") {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::Subquery(query) = &f.args else { return ControlFlow::Continue(()) };
        let mut query = query.clone();
        if let SetExpr::Select(select) = query.body.as_mut() {
            if let [SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }] =
                select.projection.as_mut_slice()
            {
                *item = function_call("array_agg", vec![item.clone()]);
                *expr = Expr::Subquery(query);
            }
        }
        ControlFlow::Continue(())
    }
}
