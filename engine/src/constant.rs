//! Results of constant queries, kept per session.
//!
//! Connection pools and drivers check connections with statements such as `SELECT 1`, and BI
//! tools send many more like it. Such a query reads no table and calls only DataFusion's own
//! immutable functions, so its answer depends on nothing but its text and the session's
//! settings. The first run is planned and executed as usual; its rows are then kept and later runs
//! of the same statement answer from them without planning, and without even looking at the
//! catalog.
//!
//! What is never kept: anything that reads a relation (tables, views, `pg_catalog`, table
//! functions), calls a function that is not one of DataFusion's built-ins (session functions such
//! as `current_user`, the `pg_catalog` functions, Kura's UDFs), calls a function that is not
//! immutable (`now()`, `random()`), or holds parameters or subqueries. Any change of settings
//! (`SET`, `search_path`) starts over.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{AggregateUDF, Expr, LogicalPlan, ScalarUDF, Volatility, WindowUDF};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;
use parking_lot::Mutex;

/// Statements kept per session.
const ENTRIES: usize = 32;
/// Largest result kept, in bytes of Arrow memory.
const MAX_BYTES: usize = 64 * 1024;

/// DataFusion's built-in functions, by name. A function in a plan counts as built-in only if it
/// is this very instance: a session function registered under a built-in's name is not.
struct BuiltIns {
    scalar: HashMap<String, Arc<ScalarUDF>>,
    aggregate: HashMap<String, Arc<AggregateUDF>>,
    window: HashMap<String, Arc<WindowUDF>>,
}

static BUILT_INS: LazyLock<BuiltIns> = LazyLock::new(|| {
    let state = SessionStateBuilder::new().with_default_features().build();
    BuiltIns {
        scalar: state.scalar_functions().clone(),
        aggregate: state.aggregate_functions().clone(),
        window: state.window_functions().clone(),
    }
});

/// Kept results of one session.
#[derive(Debug, Default)]
pub(crate) struct ConstantResults {
    entries: Mutex<VecDeque<(String, Arc<Kept>)>>,
}

#[derive(Debug)]
struct Kept {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl ConstantResults {
    /// The kept rows of `key` (a statement's text after rewriting, with the settings epoch).
    pub(crate) fn get(&self, key: &str) -> Option<SendableRecordBatchStream> {
        let entries = self.entries.lock();
        let (_, kept) = entries.iter().find(|(k, _)| k == key)?;
        replay(kept.batches.clone(), kept.schema.clone()).ok()
    }

    /// Keeps the rows of `key` if they are small.
    pub(crate) fn keep(&self, key: String, schema: SchemaRef, batches: Vec<RecordBatch>) {
        let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        if bytes > MAX_BYTES {
            return;
        }
        let mut entries = self.entries.lock();
        entries.retain(|(k, _)| *k != key);
        entries.push_back((key, Arc::new(Kept { schema, batches })));
        while entries.len() > ENTRIES {
            entries.pop_front();
        }
    }

    /// Forgets everything (settings changed).
    pub(crate) fn clear(&self) {
        self.entries.lock().clear();
    }
}

/// A stream of rows already computed.
pub(crate) fn replay(batches: Vec<RecordBatch>, schema: SchemaRef) -> crate::Result<SendableRecordBatchStream> {
    let stream = MemoryStream::try_new(batches, schema, None).map_err(crate::Error::from_datafusion)?;
    Ok(Box::pin(stream))
}

/// A result of text columns `names`, one row per entry of `rows`.
pub(crate) fn text_rows(names: &[&str], rows: Vec<Vec<String>>) -> crate::Result<crate::session::StatementOutput> {
    let schema = Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect::<Vec<_>>()));
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|i| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[i].as_str()))) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| crate::Error::from_datafusion(e.into()))?;
    Ok(crate::session::StatementOutput::Rows(replay(vec![batch], schema)?))
}

/// Whether `plan`'s result depends only on its text: no relation, no parameter, no subquery, only
/// immutable built-in functions.
pub(crate) fn is_constant(plan: &LogicalPlan) -> bool {
    let mut constant = true;
    let _ = plan.apply_with_subqueries(|node| {
        let allowed = matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::Distinct(_)
        );
        if !allowed {
            constant = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        node.apply_expressions(|e| {
            e.apply(|e| {
                if !constant_expr(e) {
                    constant = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if constant { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    });
    constant
}

fn constant_expr(e: &Expr) -> bool {
    let built_ins = &*BUILT_INS;
    match e {
        Expr::ScalarFunction(f) => {
            f.func.signature().volatility == Volatility::Immutable
                && built_ins.scalar.get(f.func.name()).is_some_and(|b| Arc::ptr_eq(b, &f.func))
        }
        Expr::AggregateFunction(f) => {
            f.func.signature().volatility == Volatility::Immutable
                && built_ins.aggregate.get(f.func.name()).is_some_and(|b| Arc::ptr_eq(b, &f.func))
        }
        Expr::WindowFunction(w) => match &w.fun {
            datafusion::logical_expr::WindowFunctionDefinition::AggregateUDF(f) => {
                built_ins.aggregate.get(f.name()).is_some_and(|b| Arc::ptr_eq(b, f))
            }
            datafusion::logical_expr::WindowFunctionDefinition::WindowUDF(f) => {
                built_ins.window.get(f.name()).is_some_and(|b| Arc::ptr_eq(b, f))
            }
        },
        Expr::Placeholder(_)
        | Expr::ScalarVariable(..)
        | Expr::OuterReferenceColumn(..)
        | Expr::Exists(_)
        | Expr::InSubquery(_)
        | Expr::ScalarSubquery(_)
        | Expr::SetComparison(_)
        | Expr::HigherOrderFunction(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};
    use datafusion::prelude::SessionContext;

    async fn constant(ctx: &SessionContext, sql: &str) -> bool {
        is_constant(&ctx.state().create_logical_plan(sql).await.unwrap())
    }

    /// A function registered under a built-in's name, as session functions are.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct FakeAbs(Signature);

    impl ScalarUDFImpl for FakeAbs {
        fn name(&self) -> &str {
            "abs"
        }
        fn signature(&self) -> &Signature {
            &self.0
        }
        fn return_type(&self, _: &[datafusion::arrow::datatypes::DataType]) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
            Ok(datafusion::arrow::datatypes::DataType::Int64)
        }
        fn invoke_with_args(&self, _: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::Int64(Some(7))))
        }
    }

    #[tokio::test]
    async fn only_table_free_immutable_built_in_queries_are_constant() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a INT)").await.unwrap();
        assert!(constant(&ctx, "SELECT 1").await);
        assert!(constant(&ctx, "SELECT abs(-1) + 2, upper('x') UNION ALL SELECT 3, 'y'").await);
        assert!(constant(&ctx, "SELECT count(*) FROM (VALUES (1), (2)) AS v(x)").await);
        assert!(!constant(&ctx, "SELECT now()").await, "stable function");
        assert!(!constant(&ctx, "SELECT random()").await, "volatile function");
        assert!(!constant(&ctx, "SELECT 1 FROM t").await, "reads a table");
        assert!(!constant(&ctx, "SELECT (SELECT max(a) FROM t)").await, "subquery reads a table");
        assert!(!constant(&ctx, "SELECT * FROM generate_series(1, 3)").await, "table function");
        assert!(!constant(&ctx, "SELECT $1").await, "parameter");
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(FakeAbs(Signature::any(
            1,
            Volatility::Immutable,
        ))));
        assert!(!constant(&ctx, "SELECT abs(-1)").await, "a session function under a built-in's name");
    }

    async fn text(s: &crate::Session, sql: &str) -> String {
        let batches = s.query(sql).await.unwrap();
        array_value_to_string(batches[0].column(0), 0).unwrap()
    }

    #[tokio::test]
    async fn kept_results_follow_settings_and_leave_time_and_tables_alone() {
        let engine = crate::Engine::open("memory://constant-results").await.unwrap();
        let s = engine.session("kura");
        let ts = "SELECT CAST(CAST('2024-04-01T00:00:00Z' AS TIMESTAMP WITH TIME ZONE) AS TEXT)";
        let utc = text(&s, ts).await;
        assert_eq!(text(&s, ts).await, utc, "answered again from the kept rows");
        s.query("SET datafusion.execution.time_zone = '+09:00'").await.unwrap();
        assert_ne!(text(&s, ts).await, utc, "a setting change is seen");

        let first = text(&s, "SELECT CAST(now() AS TEXT)").await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_ne!(text(&s, "SELECT CAST(now() AS TEXT)").await, first, "now() is never kept");

        s.execute_all("CREATE TABLE n (x INT); INSERT INTO n VALUES (1)").await.unwrap();
        assert_eq!(text(&s, "SELECT count(*) FROM n").await, "1");
        s.execute_all("INSERT INTO n VALUES (2)").await.unwrap();
        assert_eq!(text(&s, "SELECT count(*) FROM n").await, "2", "table queries are never kept");

        assert_eq!(text(&s, "SELECT current_user").await, "kura");
        let other = engine.session("someone");
        assert_eq!(text(&other, "SELECT current_user").await, "someone");
    }
}
