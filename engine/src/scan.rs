//! Reading a Delta table version as DataFusion reads a folder of Parquet files.
//!
//! delta-rs's own provider replays the file list through delta-kernel on every scan and tags each
//! row with its file, which costs a fixed few milliseconds per query and some work per row. The
//! table state Kura already holds has everything a plain Parquet scan needs: the files, their
//! sizes, partition values and statistics. [`DeltaFileIndex`] keeps that per table version (built
//! once, shared by every query on that version), and [`DeltaParquetTable`] plans DataFusion's own
//! Parquet scan over it: partition filters pick files exactly, file statistics skip files and give
//! the planner row counts, and the Parquet reader prunes row groups as it does for any Parquet.
//!
//! Only tables whose files can be read as plain Parquet take this path: no deletion vectors, no
//! column mapping, no reader features beyond a known-safe set. Anything else is read by
//! delta-rs's provider, which implements the whole protocol.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{Column, ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result as DFResult;
use datafusion::execution::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_optimizer::pruning::{PruningPredicateBuilder, PruningStatistics};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use deltalake::DeltaTable;
use deltalake::kernel::EagerSnapshot;
use object_store::path::Path;
use parking_lot::{Mutex, RwLock};

/// The URL under which each session's runtime knows the warehouse's object store; file paths
/// are relative to the warehouse prefix.
pub(crate) const WAREHOUSE_STORE_URL: &str = "kura-warehouse://store";

/// Reader features whose tables are still plain Parquet files plus a log.
const PLAIN_READER_FEATURES: [&str; 3] = ["timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"];

/// Indexes kept for recently read table versions.
const CACHED_INDEXES: usize = 256;

/// The object store URL all warehouse files are read through.
pub(crate) fn warehouse_store_url() -> ObjectStoreUrl {
    ObjectStoreUrl::parse(WAREHOUSE_STORE_URL).expect("valid object store URL")
}

/// One data file of a table version.
#[derive(Debug, Clone)]
struct IndexedFile {
    /// Path below the warehouse prefix.
    path: Path,
    size: u64,
    /// Values of the partition columns, in the order of [`DeltaFileIndex::partition_fields`].
    partition_values: Vec<ScalarValue>,
    /// Statistics over file columns then partition columns.
    statistics: Arc<Statistics>,
    /// The file's refusal layout tag (`kura.refusals`), if a linked-table rewrite wrote it.
    refusals: Option<String>,
}

/// Per-file statistics as columns (one row per file), for pruning.
#[derive(Debug, Default)]
struct FileStats {
    num_files: usize,
    row_counts: Option<ArrayRef>,
    min: HashMap<String, ArrayRef>,
    max: HashMap<String, ArrayRef>,
    nulls: HashMap<String, ArrayRef>,
}

impl PruningStatistics for FileStats {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.min.get(&column.name).cloned()
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.max.get(&column.name).cloned()
    }

    fn num_containers(&self) -> usize {
        self.num_files
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.nulls.get(&column.name).cloned()
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        self.row_counts.clone()
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// What planning a scan of one table version needs, built once from the Delta table state.
#[derive(Debug)]
pub(crate) struct DeltaFileIndex {
    /// The table's columns in table order.
    schema: SchemaRef,
    /// The same, for turning filters into physical expressions.
    df_schema: DFSchema,
    /// Columns stored in the files, in table order.
    file_schema: SchemaRef,
    /// Partition columns, in the table's partitioning order.
    partition_fields: Vec<FieldRef>,
    /// For each table column, its position among file columns followed by partition columns.
    scan_positions: Vec<usize>,
    files: Vec<IndexedFile>,
    stats: FileStats,
    /// One row per file with its partition values (and their schema), to evaluate partition
    /// filters exactly.
    partition_values: Option<(RecordBatch, DFSchema)>,
}

impl DeltaFileIndex {
    /// The index of `table`'s loaded version, from the shared cache or built now. `None` when the
    /// table uses Delta features a plain Parquet read would get wrong.
    pub(crate) fn of(location: &str, table: &DeltaTable) -> Option<Arc<Self>> {
        static CACHE: LazyLock<Mutex<(HashMap<(String, u64), Arc<DeltaFileIndex>>, VecDeque<(String, u64)>)>> =
            LazyLock::new(Mutex::default);
        let state = table.snapshot().ok()?;
        let key = (location.to_string(), state.version());
        if let Some(index) = CACHE.lock().0.get(&key) {
            return Some(index.clone());
        }
        let index = match Self::build(location, state.snapshot()) {
            Ok(Some(index)) => Arc::new(index),
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(table = location, error = %e, "reading through delta-rs");
                return None;
            }
        };
        let mut cache = CACHE.lock();
        let (map, order) = &mut *cache;
        if map.insert(key.clone(), index.clone()).is_none() {
            order.push_back(key);
            while order.len() > CACHED_INDEXES {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        Some(index)
    }

    fn build(location: &str, snapshot: &EagerSnapshot) -> DFResult<Option<Self>> {
        if !reads_as_plain_parquet(snapshot) {
            return Ok(None);
        }
        // Strings and binaries are read as view arrays, as DataFusion reads Parquet by default.
        let schema = Arc::new(Schema::new(snapshot.arrow_schema().fields().iter().cloned().map(view_types).collect::<Vec<_>>()));
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        let partition_fields: Vec<FieldRef> = partition_columns
            .iter()
            .map(|name| Ok(Arc::new(schema.field_with_name(name)?.clone())))
            .collect::<DFResult<_>>()?;
        let file_fields: Vec<FieldRef> =
            schema.fields().iter().filter(|f| !partition_columns.contains(f.name())).cloned().collect();
        let file_schema = Arc::new(Schema::new(file_fields.clone()));
        let scan_positions = schema
            .fields()
            .iter()
            .map(|f| match partition_columns.iter().position(|p| p == f.name()) {
                Some(p) => file_fields.len() + p,
                None => file_fields.iter().position(|x| x.name() == f.name()).expect("file column"),
            })
            .collect();

        let log = snapshot.log_data();
        let num_files = log.num_files();
        let mut paths = Vec::with_capacity(num_files);
        let mut row_counts = Vec::with_capacity(num_files);
        let mut tags = Vec::with_capacity(num_files);
        let table_prefix = Path::from(location.trim_matches('/'));
        for file in log.iter() {
            let raw = file.path();
            if raw.contains("://") || file.deletion_vector_descriptor().is_some() {
                return Ok(None);
            }
            let relative = file.object_store_path();
            let path = Path::from_iter(table_prefix.parts().chain(relative.parts()));
            paths.push((path, u64::try_from(file.size()).unwrap_or(0)));
            row_counts.push(file.num_records().map(|n| n as u64));
            // The file's Add action is the only public way to its tags.
            #[allow(deprecated)]
            let tag = file.add_action().tags.and_then(|mut t| t.remove(crate::refusals::TAG).flatten());
            tags.push(tag);
        }

        // Statistics per column, one row per file, typed as the table's columns.
        let mut stats = FileStats {
            num_files,
            row_counts: Some(Arc::new(UInt64Array::from(row_counts.clone())) as ArrayRef),
            ..Default::default()
        };
        let typed = |array: Option<ArrayRef>, field: &Field| -> Option<ArrayRef> {
            let array = array?;
            if array.len() != num_files {
                return None;
            }
            if array.data_type() == field.data_type() { Some(array) } else { cast(&array, field.data_type()).ok() }
        };
        for field in schema.fields() {
            let column = Column::new_unqualified(field.name());
            if partition_columns.contains(field.name()) {
                let values = typed(snapshot.min_values(&column), field)
                    .ok_or_else(|| datafusion::error::DataFusionError::Plan(format!("partition values of {}", field.name())))?;
                let nulls: UInt64Array = (0..num_files)
                    .map(|i| Some(if values.is_null(i) { row_counts[i].unwrap_or(0) } else { 0 }))
                    .collect();
                stats.min.insert(field.name().clone(), values.clone());
                stats.max.insert(field.name().clone(), values);
                stats.nulls.insert(field.name().clone(), Arc::new(nulls));
                continue;
            }
            if let Some(min) = typed(snapshot.min_values(&column), field) {
                stats.min.insert(field.name().clone(), min);
            }
            if let Some(max) = typed(snapshot.max_values(&column), field) {
                stats.max.insert(field.name().clone(), max);
            }
            if let Some(nulls) = snapshot.null_counts(&column).and_then(|a| cast(&a, &datafusion::arrow::datatypes::DataType::UInt64).ok())
            {
                if nulls.len() == num_files {
                    stats.nulls.insert(field.name().clone(), nulls);
                }
            }
        }

        let column_stats = |name: &str, i: usize, is_partition: bool| -> DFResult<ColumnStatistics> {
            let at = |m: &HashMap<String, ArrayRef>| -> DFResult<Precision<ScalarValue>> {
                match m.get(name) {
                    Some(a) if a.is_valid(i) => {
                        let v = ScalarValue::try_from_array(a, i)?;
                        // Delta truncates long string statistics: only partition values are exact.
                        Ok(if is_partition { Precision::Exact(v) } else { Precision::Inexact(v) })
                    }
                    Some(a) if is_partition => Ok(Precision::Exact(ScalarValue::try_from_array(a, i)?)),
                    _ => Ok(Precision::Absent),
                }
            };
            let null_count = match stats.nulls.get(name).and_then(|a| a.as_any().downcast_ref::<UInt64Array>()) {
                Some(a) if a.is_valid(i) => Precision::Exact(a.value(i) as usize),
                _ => Precision::Absent,
            };
            Ok(ColumnStatistics {
                null_count,
                min_value: at(&stats.min)?,
                max_value: at(&stats.max)?,
                distinct_count: if is_partition { Precision::Exact(1) } else { Precision::Absent },
                ..ColumnStatistics::new_unknown()
            })
        };
        let mut files = Vec::with_capacity(num_files);
        for (i, ((path, size), refusals)) in paths.into_iter().zip(tags).enumerate() {
            let mut column_statistics = Vec::with_capacity(schema.fields().len());
            for f in file_schema.fields() {
                column_statistics.push(column_stats(f.name(), i, false)?);
            }
            let mut partition_values = Vec::with_capacity(partition_fields.len());
            for f in &partition_fields {
                column_statistics.push(column_stats(f.name(), i, true)?);
                partition_values.push(ScalarValue::try_from_array(&stats.min[f.name()], i)?);
            }
            let num_rows = match row_counts[i] {
                Some(n) => Precision::Exact(n as usize),
                None => Precision::Absent,
            };
            let statistics = Statistics { num_rows, total_byte_size: Precision::Inexact(size as usize), column_statistics };
            files.push(IndexedFile { path, size, partition_values, statistics: Arc::new(statistics), refusals });
        }

        let partition_values = if partition_fields.is_empty() {
            None
        } else {
            let columns = partition_fields.iter().map(|f| stats.min[f.name()].clone()).collect();
            let fields: Vec<FieldRef> =
                partition_fields.iter().map(|f| Arc::new(f.as_ref().clone().with_nullable(true))).collect();
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
            let df_schema = DFSchema::try_from(batch.schema())?;
            Some((batch, df_schema))
        };
        let df_schema = DFSchema::try_from(schema.clone())?;
        Ok(Some(Self { schema, df_schema, file_schema, partition_fields, scan_positions, files, stats, partition_values }))
    }

    /// The refusal layout tag of each file, in file order.
    pub(crate) fn refusal_tags(&self) -> impl Iterator<Item = Option<&str>> {
        self.files.iter().map(|f| f.refusals.as_deref())
    }

    fn partition_names(&self) -> Vec<&str> {
        self.partition_fields.iter().map(|f| f.name().as_str()).collect()
    }

    /// Whether `expr` reads only partition columns and can be decided per file.
    fn is_partition_filter(&self, expr: &Expr) -> bool {
        let names = self.partition_names();
        !names.is_empty() && expr_applicable_for_cols(&names, expr) && !contains_subquery(expr)
    }
}

/// `field` with strings and binaries (also nested ones) as view types.
fn view_types(field: FieldRef) -> FieldRef {
    use datafusion::arrow::datatypes::DataType;
    let data_type = match field.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        DataType::Struct(fields) => DataType::Struct(fields.iter().cloned().map(view_types).collect()),
        DataType::List(inner) => DataType::List(view_types(inner.clone())),
        DataType::LargeList(inner) => DataType::LargeList(view_types(inner.clone())),
        _ => return field,
    };
    Arc::new(field.as_ref().clone().with_data_type(data_type))
}

/// Whether every file of the snapshot is plain Parquet holding exactly the rows it lists.
fn reads_as_plain_parquet(snapshot: &EagerSnapshot) -> bool {
    let Ok(protocol) = serde_json::to_value(snapshot.protocol()) else { return false };
    match protocol.get("minReaderVersion").and_then(|v| v.as_i64()) {
        Some(1) => true,
        Some(3) => protocol.get("readerFeatures").and_then(|f| f.as_array()).is_none_or(|features| {
            features.iter().all(|f| f.as_str().is_some_and(|f| PLAIN_READER_FEATURES.contains(&f)))
        }),
        // Version 2 is column mapping; anything else is unknown.
        _ => false,
    }
}

fn contains_subquery(expr: &Expr) -> bool {
    use datafusion::common::tree_node::TreeNode;
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::ScalarSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::ScalarVariable(..)
        ))
    })
    .unwrap_or(true)
}

/// A Delta table version read by DataFusion's Parquet scan over a [`DeltaFileIndex`]. Writes go
/// to delta-rs's provider for the same table state.
#[derive(Debug)]
pub(crate) struct DeltaParquetTable {
    index: Arc<DeltaFileIndex>,
    table: DeltaTable,
    session: Weak<RwLock<SessionState>>,
    /// When set, only the files marked true are read (the others hold rows kept from the reader).
    only: Option<Arc<Vec<bool>>>,
}

impl DeltaParquetTable {
    pub(crate) fn new(index: Arc<DeltaFileIndex>, table: DeltaTable, session: Weak<RwLock<SessionState>>) -> Self {
        Self { index, table, session, only: None }
    }

    /// The same table version restricted to the files `only` marks (one flag per file, in the
    /// index's order).
    pub(crate) fn with_only_files(index: Arc<DeltaFileIndex>, table: DeltaTable, session: Weak<RwLock<SessionState>>, only: Vec<bool>) -> Self {
        assert_eq!(only.len(), index.files.len(), "one flag per file");
        Self { index, table, session, only: Some(Arc::new(only)) }
    }

    /// Files that may hold rows matching `filters`: partition filters decide exactly, the rest
    /// by file statistics.
    fn select_files(&self, state: &dyn Session, filters: &[Expr]) -> DFResult<Vec<bool>> {
        let index = &self.index;
        let mut keep = match &self.only {
            Some(only) => only.as_ref().clone(),
            None => vec![true; index.files.len()],
        };
        let (partition_filters, other): (Vec<&Expr>, Vec<&Expr>) =
            filters.iter().partition(|f| index.is_partition_filter(f));
        if let (Some((batch, df_schema)), Some(predicate)) =
            (&index.partition_values, conjunction(partition_filters.into_iter().cloned()))
        {
            let physical = state.create_physical_expr(predicate, df_schema)?;
            let result = physical.evaluate(batch)?.into_array(batch.num_rows())?;
            let result = result
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| datafusion::error::DataFusionError::Plan("partition filter is not boolean".into()))?;
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= result.is_valid(i) && result.value(i);
            }
        }
        if let Some(predicate) = conjunction(other.into_iter().cloned()) {
            // A filter the statistics cannot judge keeps every file; it is still applied to rows.
            if let Ok(physical) = state.create_physical_expr(predicate, &index.df_schema)
                && let Ok(pruning) = PruningPredicateBuilder::new()
                    .with_file_schema(index.schema.clone())
                    .with_max_in_list_size(state.config_options().execution.parquet.max_in_list_size)
                    .try_build(physical)
                && !pruning.always_true()
                && let Ok(result) = pruning.prune(&index.stats)
            {
                for (k, r) in keep.iter_mut().zip(result) {
                    *k &= r;
                }
            }
        }
        Ok(keep)
    }
}

#[async_trait]
impl TableProvider for DeltaParquetTable {
    fn schema(&self) -> SchemaRef {
        self.index.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// The table version's row count from the Delta log (an upper bound when only some files
    /// are read); the optimizer's rules use it to tell small tables (see `dimjoin`).
    fn statistics(&self) -> Option<Statistics> {
        let rows = self.index.files.iter().fold(Precision::Exact(0), |total, f| total.add(&f.statistics.num_rows));
        let num_rows = if self.only.is_some() { rows.to_inexact() } else { rows };
        Some(Statistics { num_rows, total_byte_size: Precision::Absent, column_statistics: Statistics::unknown_column(&self.index.schema) })
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.index.is_partition_filter(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let writer = crate::provider::delta_rs_provider(&self.table, &self.session).await?;
        writer.insert_into(state, input, insert_op).await
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let index = &self.index;
        let keep = self.select_files(state, filters)?;
        let mut files = Vec::new();
        let mut rows_so_far = 0usize;
        for (file, _) in index.files.iter().zip(keep).filter(|(_, k)| *k) {
            // Without filters, a LIMIT needs only as many files as hold that many rows.
            if filters.is_empty()
                && let Some(limit) = limit
                && rows_so_far >= limit
            {
                break;
            }
            if let Precision::Exact(n) = file.statistics.num_rows {
                rows_so_far += n;
            } else {
                rows_so_far = 0;
            }
            // From the object path as is: `PartitionedFile::new` would escape its `%` again.
            let mut pf = PartitionedFile::new_from_meta(object_store::ObjectMeta {
                location: file.path.clone(),
                last_modified: chrono::DateTime::<chrono::Utc>::MIN_UTC,
                size: file.size,
                e_tag: None,
                version: None,
            });
            pf.partition_values = file.partition_values.clone();
            pf.statistics = Some(file.statistics.clone());
            files.push(pf);
        }
        let scan_projection: Vec<usize> = match projection {
            Some(p) => p.iter().map(|&i| index.scan_positions[i]).collect(),
            None => index.scan_positions.clone(),
        };
        if files.is_empty() {
            let all: Vec<usize> = (0..index.schema.fields().len()).collect();
            let schema = index.schema.project(projection.unwrap_or(&all))?;
            return Ok(Arc::new(EmptyExec::new(Arc::new(schema))));
        }

        let table_schema = TableSchema::builder(index.file_schema.clone()).with_table_partition_cols(index.partition_fields.clone()).build();
        let scan_schema = table_schema.table_schema().clone();
        let target = state.config().target_partitions().max(1);
        let threshold = state.config_options().optimizer.preserve_file_partitions;
        let group = FileGroup::new(files);
        let (groups, by_partition) = if threshold > 0 && !index.partition_fields.is_empty() {
            let grouped = group.group_by_partition_values(target);
            if grouped.len() >= threshold {
                (grouped, true)
            } else {
                let all: Vec<_> = grouped.into_iter().flat_map(|g| g.into_inner()).collect();
                (FileGroup::new(all).split_files(target), false)
            }
        } else {
            (group.split_files(target), false)
        };
        let (groups, statistics) =
            datafusion_datasource::compute_all_files_statistics(groups, scan_schema.clone(), true, false)?;
        let output_partitioning = by_partition
            .then(|| {
                datafusion_datasource::file_scan_config::output_partitioning_from_partition_fields(
                    &scan_schema,
                    &index.partition_fields.clone().into(),
                    groups.len(),
                )
            })
            .flatten();

        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(table_schema);
        let config = FileScanConfigBuilder::new(warehouse_store_url(), source)
            .with_file_groups(groups)
            .with_statistics(statistics)
            .with_projection_indices(Some(scan_projection))?
            .with_limit(limit)
            .with_output_partitioning(output_partitioning)
            .build();
        format.create_physical_plan(state, config).await
    }
}
