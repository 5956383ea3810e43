//! The opt-out filter of linked tables as one vectorised function: `__kura_not_refused(research_id)`
//! is true for a row whose research ID is known and not refused. The refused IDs are read once
//! per version of `linkage.optout_ids` (cached per warehouse table) and looked up in a hash set,
//! so the filter costs a lookup per row instead of an anti join.
//!
//! The function exists only in the state that plans policy bodies: no user can call it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::scalar::ScalarValue;
use kura_storage::{TableVersionSpec, Warehouse};
use rustc_hash::FxHashSet;

use crate::{Error, Result};

/// Name of the function in policy plans.
pub(crate) const NOT_REFUSED: &str = "__kura_not_refused";

/// Refused research IDs as of one version of `linkage.optout_ids`.
type Refused = Arc<FxHashSet<i64>>;

static CACHE: parking_lot::Mutex<Option<(String, Option<u64>, Refused)>> = parking_lot::Mutex::new(None);

/// The refused research IDs now (the newest version of the table at `location`).
pub(crate) async fn refused(warehouse: &Warehouse, location: &str) -> Result<Refused> {
    let table = warehouse.open_table(location, &TableVersionSpec::Latest).await?;
    let key = format!("{}/{location}", warehouse.url());
    if let Some((k, v, set)) = CACHE.lock().as_ref()
        && *k == key
        && *v == table.version()
    {
        return Ok(set.clone());
    }
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("ids", table.table_provider().await?).map_err(Error::from_datafusion)?;
    let batches = ctx
        .sql("SELECT research_id FROM ids")
        .await
        .map_err(Error::from_datafusion)?
        .collect()
        .await
        .map_err(Error::from_datafusion)?;
    let mut set = FxHashSet::default();
    for b in &batches {
        let ids = datafusion::arrow::compute::cast(b.column(0), &DataType::Int64).map_err(|e| Error::Invalid(e.to_string()))?;
        let ids = ids.as_primitive::<Int64Type>();
        set.extend(ids.iter().flatten());
    }
    let set = Arc::new(set);
    *CACHE.lock() = Some((key, table.version(), set.clone()));
    Ok(set)
}

/// `__kura_not_refused(research_id)` over `refused`.
#[derive(Debug)]
pub(crate) struct NotRefused {
    signature: Signature,
    refused: Refused,
}

impl NotRefused {
    pub(crate) fn udf(refused: Refused) -> ScalarUDF {
        ScalarUDF::from(Self { signature: Signature::exact(vec![DataType::Int64], Volatility::Stable), refused })
    }
}

impl PartialEq for NotRefused {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.refused, &other.refused)
    }
}
impl Eq for NotRefused {}
impl std::hash::Hash for NotRefused {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.refused.len().hash(state);
    }
}

impl ScalarUDFImpl for NotRefused {
    fn name(&self) -> &str {
        NOT_REFUSED
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let keep = |id: Option<i64>| id.is_some_and(|id| !self.refused.contains(&id));
        match &args.args[0] {
            ColumnarValue::Scalar(v) => {
                let id = match v {
                    ScalarValue::Int64(id) => *id,
                    other => other.cast_to(&DataType::Int64)?.try_into().ok(),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(keep(id)))))
            }
            ColumnarValue::Array(array) => {
                let ids = array.as_primitive::<Int64Type>();
                let out: BooleanArray = if self.refused.is_empty() {
                    (0..ids.len()).map(|i| Some(ids.is_valid(i))).collect()
                } else {
                    ids.iter().map(|id| Some(keep(id))).collect()
                };
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}
