//! Policy enforcement: what each user may see of a protected table. The catalog stores policy
//! definitions and their attachments (`kura_catalog::PolicyEntry`); this module is the one place
//! that applies them.
//!
//! Invariants (each has tests in `tests/slt/policies.slt` and the bypass suite):
//! - SECURITY: a protected table is never handed to the planner raw for a user whose policies are
//!   not the identity. The schema provider returns a [`table::PolicedTable`] whose rows are the
//!   table's rows after every row filter, whose columns are the masked values, and which has no
//!   column the user's projection policies deny. Every statement that names the table (queries,
//!   subqueries, CTEs, joins, views, CREATE TABLE AS, COPY TO, prepared statements) resolves it
//!   through that provider, so no path reads it any other way.
//! - SECURITY: a user predicate runs below the policy (on rows the policy hides) only when it is
//!   leak-proof ([`leakproof`]): it cannot fail or reveal anything but its boolean result.
//!   Everything else is evaluated above [`table::PolicedScanExec`], which accepts no filter,
//!   projection or limit from the optimiser and shows neither its plan nor statistics.
//! - SECURITY: policy bodies are decided for the querying (session) user, also inside views:
//!   a view never launders a policy. Subqueries in a body read tables with the policy owner's
//!   rights and without policies of their own (as PostgreSQL's SECURITY DEFINER functions).
//! - Fail closed: a policy that cannot be parsed, planned or decided makes the query fail.
//! - UPDATE and DELETE by a user whose policies on the target are not the identity touch only the
//!   rows the user sees and read masked columns as masked ([`write`]); INSERT, TRUNCATE and COPY
//!   FROM into such a table, and any write by a user restricted to aggregates, are refused.

pub(crate) mod aggregate;
mod ddl;
pub(crate) mod differencing;
pub(crate) mod explain;
pub(crate) mod leakproof;
pub(crate) mod parse;
pub(crate) mod plan;
pub(crate) mod table;
pub(crate) mod write;

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use kura_catalog::Snapshot;

pub(crate) use ddl::execute;
pub use explain::{ExplainPrivacy, PrivacyTarget};
pub use parse::PolicyStatement;
pub(crate) use parse::{at_policy_statement, parse};

tokio::task_local! {
    /// Set while a policy body is planned: tables then resolve raw (no policies), read with the
    /// rights of the role named here.
    pub(crate) static POLICY_DEFINER: String;
}

/// Whether tables resolve raw now (a policy body is being planned).
pub(crate) fn planning_policy() -> bool {
    POLICY_DEFINER.try_with(|_| ()).is_ok()
}

/// `is_member('role')`: whether the session user is (a member of) the role, as PostgreSQL's
/// `pg_has_role(role, 'MEMBER')`; superusers are members of every role. Policies use it to decide
/// per role; it is evaluated once per statement, against the catalog version the statement reads.
#[derive(Debug)]
pub(crate) struct IsMember {
    signature: Signature,
    user: String,
    snapshot: Arc<parking_lot::Mutex<Arc<Snapshot>>>,
}

impl IsMember {
    pub(crate) fn udf(user: &str, snapshot: Arc<parking_lot::Mutex<Arc<Snapshot>>>) -> ScalarUDF {
        ScalarUDF::from(Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
            user: user.to_string(),
            snapshot,
        })
    }

    fn is_member(&self, role: &str) -> bool {
        let snapshot = self.snapshot.lock().clone();
        let state = &snapshot.state;
        state.is_superuser(&self.user) || state.effective_roles(&self.user).contains(role)
    }
}

impl PartialEq for IsMember {
    fn eq(&self, other: &Self) -> bool {
        self.user == other.user && Arc::ptr_eq(&self.snapshot, &other.snapshot)
    }
}
impl Eq for IsMember {}
impl std::hash::Hash for IsMember {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.user.hash(state);
    }
}

impl ScalarUDFImpl for IsMember {
    fn name(&self) -> &str {
        "is_member"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(role)) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(role.as_deref().map(|r| self.is_member(r)))))
            }
            ColumnarValue::Array(array) => {
                let roles = datafusion::common::cast::as_string_array(array)?;
                let out: datafusion::arrow::array::BooleanArray =
                    roles.iter().map(|r| r.map(|r| self.is_member(r))).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            other => Err(datafusion::error::DataFusionError::Plan(format!(
                "is_member takes a role name, not {}",
                other.data_type()
            ))),
        }
    }
}

/// Calls `f` with every table scan of `plan` and its provider, subqueries included, and the
/// scans inside the views it reads (a view's own scan comes first).
pub(crate) fn for_each_scan(
    plan: &datafusion::logical_expr::LogicalPlan,
    f: &mut dyn FnMut(&datafusion::logical_expr::TableScan, &Arc<dyn datafusion::catalog::TableProvider>),
) {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
        {
            f(scan, &provider);
            if let Some(view) = provider.downcast_ref::<crate::provider::OpaqueView>() {
                for_each_scan(view.0.logical_plan(), f);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// Whether `plan` (subqueries and views included) reads a table through a policy.
pub(crate) fn reads_policed(plan: &datafusion::logical_expr::LogicalPlan) -> bool {
    let mut found = false;
    for_each_scan(plan, &mut |_, provider| found |= provider.is::<table::PolicedTable>());
    found
}

/// SECURITY: errors raised while a policed plan runs may quote a raw value (a mask or an
/// aggregate's input is evaluated on raw rows: "Cannot cast string 'ヤマダ'"); the user gets the
/// SQLSTATE and the kind of failure only.
pub(crate) fn scrub_errors(
    stream: datafusion::physical_plan::SendableRecordBatchStream,
) -> datafusion::physical_plan::SendableRecordBatchStream {
    use futures::TryStreamExt;
    let schema = stream.schema();
    let scrubbed = stream.map_err(|e| crate::Error::withheld(e).into());
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, scrubbed))
}
