//! The table a user sees when policies apply to it: a provider over the policy plan, and a leaf
//! execution node that keeps the policy's inside out of reach of the query around it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties, SendableRecordBatchStream,
};

use crate::Error;

/// What a policy does to one table for one user, for `EXPLAIN PRIVACY` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// A column shown through a masking policy.
    Masked { column: String, policy: String },
    /// Rows limited by a row access policy.
    Filtered { policy: String },
    /// A column removed by a projection policy.
    Denied { column: String, policy: String },
    /// Results must aggregate at least `k` entities per group.
    Aggregated { policy: String, k: u64, entity_key: Vec<String> },
}

impl Applied {
    /// A short description for the audit trail (`mask m_name on name_kana`).
    pub(crate) fn label(&self) -> String {
        match self {
            Applied::Masked { column, policy } => format!("mask {policy} on {column}"),
            Applied::Filtered { policy } => format!("row filter {policy}"),
            Applied::Denied { column, policy } => format!("projection {policy} hides {column}"),
            Applied::Aggregated { policy, k, .. } => format!("aggregation {policy} (k={k})"),
        }
    }
}

/// A protected table as one user sees it. Its plan is `Projection(masks) <- Filter(row access
/// policies) <- TableScan(raw table)`, already decided for the user (identity checks folded).
#[derive(Debug)]
pub(crate) struct PolicedTable {
    /// `schema.table`, for messages.
    pub(crate) label: String,
    plan: LogicalPlan,
    schema: SchemaRef,
    pub(crate) applied: Vec<Applied>,
    /// Columns whose (mask) expression could fail: filters on them are not pushed below.
    fallible_columns: std::collections::HashSet<String>,
}

impl PolicedTable {
    pub(crate) fn new(label: String, plan: LogicalPlan, applied: Vec<Applied>) -> Self {
        // Masked values may be NULL even where the raw column is NOT NULL.
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let fallible_columns = match &plan {
            LogicalPlan::Projection(p) => p
                .expr
                .iter()
                .zip(plan.schema().fields())
                .filter(|(e, _)| !super::leakproof::is_leakproof(e, p.input.schema()))
                .map(|(_, f)| f.name().clone())
                .collect(),
            // Not the shape policy::plan builds: push nothing down.
            _ => plan.schema().fields().iter().map(|f| f.name().clone()).collect(),
        };
        Self { label, plan, schema, applied, fallible_columns }
    }

    /// The plan of what the user sees: `Projection(masks) <- Filter(row filters) <- raw scan`.
    pub(crate) fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// The aggregation rule for this user, if the table has one.
    pub(crate) fn aggregation(&self) -> Option<(u64, &[String], &str)> {
        self.applied.iter().find_map(|a| match a {
            Applied::Aggregated { policy, k, entity_key } => Some((*k, entity_key.as_slice(), policy.as_str())),
            _ => None,
        })
    }
}

/// `expr` with bare column names. Filters reach a provider qualified by the query's name for the
/// table; the policy plan's columns are unqualified, and delta-rs resolves columns by bare name.
pub(crate) fn unqualify(expr: Expr) -> DFResult<Expr> {
    Ok(expr
        .transform(|e| match e {
            Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

#[async_trait]
impl TableProvider for PolicedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // SECURITY: only leak-proof predicates may run where hidden rows still exist; the rest
        // stay above PolicedScanExec and see visible, masked rows only.
        // SECURITY: pushed down, a filter on a masked column carries the mask's expression
        // below the row filters; a mask that can fail would then fail on hidden rows.
        let schema = self.plan.schema();
        Ok(filters
            .iter()
            .map(|f| {
                let columns_safe = f.column_refs().iter().all(|c| !self.fallible_columns.contains(&c.name));
                if columns_safe && super::leakproof::is_leakproof(f, schema) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let mut plan = LogicalPlanBuilder::from(self.plan.clone());
        // These filters were accepted as leak-proof; they apply to the masked values (above the
        // masks), and the optimiser may push them further down for pruning.
        let filters = filters.iter().cloned().map(unqualify).collect::<DFResult<Vec<_>>>()?;
        if let Some(filter) = conjunction(filters) {
            plan = plan.filter(filter)?;
        }
        if let Some(projection) = projection {
            let columns: Vec<Expr> = projection
                .iter()
                .map(|i| Expr::Column(Column::new_unqualified(self.schema.field(*i).name())))
                .collect();
            plan = plan.project(columns)?;
        }
        if let Some(limit) = limit {
            plan = plan.limit(0, Some(limit))?;
        }
        let inner = state.create_physical_plan(&plan.build()?).await?;
        Ok(Arc::new(PolicedScanExec::new(self.label.clone(), inner)))
    }

    async fn insert_into(
        &self,
        _state: &dyn CatalogSession,
        _input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Err(Error::PermissionDenied(format!(
            "permission denied: {} is protected by policies for this user and cannot be written through them",
            self.label
        ))
        .into())
    }
}

/// The execution side of a [`PolicedTable`]: a leaf whose inner plan is not a child, so the
/// physical optimiser cannot push filters, projections, limits or dynamic filters into it, and
/// `EXPLAIN` (even `ANALYZE`) shows neither the policy plan nor its values.
#[derive(Debug)]
pub(crate) struct PolicedScanExec {
    label: String,
    inner: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl PolicedScanExec {
    fn new(label: String, inner: Arc<dyn ExecutionPlan>) -> Self {
        // SECURITY: no equivalences or orderings from inside (they could carry constants of the
        // policy); only the partitioning, which carries no values.
        let properties = PlanProperties::new(
            EquivalenceProperties::new(inner.schema()),
            inner.output_partitioning().clone(),
            inner.pipeline_behavior(),
            inner.boundedness(),
        );
        Self { label, inner, properties: Arc::new(properties) }
    }
}

impl DisplayAs for PolicedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PolicedScanExec: table={}", self.label)
    }
}

impl ExecutionPlan for PolicedScanExec {
    fn name(&self) -> &str {
        "PolicedScanExec"
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn datafusion::physical_expr::PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        // SECURITY: the policy's expressions are not shown to the plan around it.
        Ok(TreeNodeRecursion::Continue)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DFResult<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }

    fn partition_statistics(&self, _partition: Option<usize>) -> DFResult<Arc<Statistics>> {
        // SECURITY: statistics of the inner plan come from raw file statistics (min/max of
        // protected columns, counts of hidden rows); none of them leaves the policy.
        Ok(Arc::new(Statistics::new_unknown(&self.schema())))
    }
}
