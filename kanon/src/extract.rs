//! The pipeline: check the spec against the schema, encode, group, search, apply, report.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringBuilder};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::group::{Classes, Grouper, Tuples};
use crate::hierarchy::ColumnDomain;
use crate::search::{self, Criteria, Evaluator};
use crate::spec::{AppliedLevel, ExtractSpec, Report};

/// Makes `batches` k-anonymous (and optionally l-diverse) under `spec`.
///
/// Returns the output schema, the output batches and a report. In the output, every
/// quasi-identifier column is replaced by its generalised labels (`Utf8`, NULL where the input
/// was NULL below the top level), other columns pass through unchanged, and the rows of every
/// equivalence class that is smaller than k (or less than l-diverse) are removed. Batches left
/// empty are dropped. Among all nodes of the generalisation lattice that satisfy the spec with
/// at most `spec.max_suppression` of the rows removed, the one with the least information loss
/// is applied (ties: fewer suppressed rows, then less generalisation).
///
/// Empty input yields empty output and a report with `k_reached = 0`.
///
/// # Errors
/// A spec that does not fit the schema or the data: unknown or repeated columns, types a
/// hierarchy does not accept, values it cannot read, `k` above the row count, `l` above the
/// sensitive column's distinct values; see [`Error`]. Messages name columns and counts only.
pub fn anonymize(
    schema: SchemaRef,
    batches: &[RecordBatch],
    spec: &ExtractSpec,
) -> Result<(SchemaRef, Vec<RecordBatch>, Report)> {
    spec.validate()?;
    let qi_index = spec
        .quasi_identifiers
        .iter()
        .map(|qi| {
            let i = column_index(&schema, &qi.column)?;
            qi.hierarchy
                .check_type(&qi.column, schema.field(i).data_type())?;
            Ok(i)
        })
        .collect::<Result<Vec<usize>>>()?;
    let sensitive_index = match &spec.l_diversity {
        None => None,
        Some(ld) => {
            let i = column_index(&schema, &ld.column)?;
            let data_type = schema.field(i).data_type();
            if !RowConverter::supports_fields(&[SortField::new(data_type.clone())]) {
                return Err(Error::UnsupportedType {
                    column: ld.column.clone(),
                    data_type: data_type.clone(),
                    used_as: "l-diversity (as the sensitive column)",
                });
            }
            Some(i)
        }
    };
    for (b, batch) in batches.iter().enumerate() {
        let matches = batch.num_columns() == schema.fields().len()
            && batch
                .schema()
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a.data_type() == b.data_type());
        if !matches {
            return Err(Error::BatchSchemaMismatch { batch: b });
        }
    }
    let out_schema = output_schema(&schema, &qi_index);

    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    // Codes are u32; keep one value free as the grouper's empty-slot marker.
    let limit = u32::MAX as usize - 1;
    if rows > limit {
        return Err(Error::TooManyRows { rows, limit });
    }
    if rows == 0 {
        let report = Report {
            k_requested: spec.k,
            k_reached: 0,
            l_requested: spec.l_diversity.as_ref().map(|ld| ld.l),
            l_reached: spec.l_diversity.as_ref().map(|_| 0),
            rows_in: 0,
            rows_out: 0,
            rows_suppressed: 0,
            levels: applied_levels(spec, &vec![0; qi_index.len()]),
            information_loss: 0.0,
            discernibility: 0,
            nodes_evaluated: 0,
            lattice_size: 0,
        };
        return Ok((out_schema, Vec::new(), report));
    }
    if spec.k > rows {
        return Err(Error::KUnreachable { k: spec.k, rows });
    }

    let domains = spec
        .quasi_identifiers
        .iter()
        .zip(&qi_index)
        .map(|(qi, &i)| {
            let arrays: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(i))).collect();
            qi.hierarchy.encode(&qi.column, &arrays)
        })
        .collect::<Result<Vec<ColumnDomain>>>()?;
    let sensitive = match (&spec.l_diversity, sensitive_index) {
        (Some(ld), Some(i)) => {
            let (codes, distinct) = encode_sensitive(batches, i)?;
            if distinct < ld.l {
                return Err(Error::LUnreachable {
                    column: ld.column.clone(),
                    l: ld.l,
                    distinct,
                });
            }
            Some(codes)
        }
        _ => None,
    };

    let mut grouper = Grouper::default();
    let tuples = Tuples::build(&domains, sensitive.as_deref(), &mut grouper);
    drop(sensitive);
    let criteria = Criteria {
        k: spec.k as u64,
        l: spec.l_diversity.as_ref().map(|ld| ld.l),
        allowed: spec.allowed_suppression(rows),
    };
    let mut eval = Evaluator {
        domains: &domains,
        tuples: &tuples,
        criteria: &criteria,
        rows: rows as u64,
        grouper,
        classes: Classes::default(),
    };
    let outcome = search::search(&mut eval)?;

    // Apply the chosen node: recompute its classes and keep the rows of the passing ones.
    let best = &outcome.best;
    let (suppressed, loss) = eval.evaluate(&best.levels);
    debug_assert_eq!(suppressed, best.suppressed);
    let classes = &eval.classes;
    let keep_class: Vec<bool> = (0..classes.size.len())
        .map(|c| !classes.fails(c, criteria.k, criteria.l))
        .collect();
    let keep_tuple: Vec<bool> = classes
        .of_tuple
        .iter()
        .map(|&c| keep_class[c as usize])
        .collect();
    let kept: Vec<usize> = (0..classes.size.len()).filter(|&c| keep_class[c]).collect();
    let k_reached = kept.iter().map(|&c| classes.size[c]).min().unwrap_or(0) as usize;
    let l_reached = criteria.l.map(|_| {
        let fewest = kept.iter().map(|&c| classes.diversity[c]).min();
        fewest.unwrap_or(0) as usize
    });
    let discernibility = kept
        .iter()
        .map(|&c| classes.size[c] * classes.size[c])
        .sum::<u64>()
        + suppressed * rows as u64;

    let mut output = Vec::new();
    let mut offset = 0;
    for batch in batches {
        let n = batch.num_rows();
        let keep: Vec<bool> = tuples.row_tuple[offset..offset + n]
            .iter()
            .map(|&t| keep_tuple[t as usize])
            .collect();
        let kept_rows = keep.iter().filter(|&&k| k).count();
        if kept_rows > 0 {
            let mask = BooleanArray::from(keep.clone());
            let mut columns = Vec::with_capacity(batch.num_columns());
            for (i, array) in batch.columns().iter().enumerate() {
                match qi_index.iter().position(|&q| q == i) {
                    Some(p) => {
                        let table = &domains[p].levels[best.levels[p]];
                        let mut labels = StringBuilder::with_capacity(kept_rows, kept_rows * 8);
                        let codes = &domains[p].codes[offset..offset + n];
                        for (&code, _) in codes.iter().zip(&keep).filter(|(_, k)| **k) {
                            labels.append_option(
                                table.labels[table.map[code as usize] as usize].as_deref(),
                            );
                        }
                        columns.push(Arc::new(labels.finish()) as ArrayRef);
                    }
                    None => columns.push(filter(array, &mask)?),
                }
            }
            output.push(RecordBatch::try_new(Arc::clone(&out_schema), columns)?);
        }
        offset += n;
    }

    let rows_suppressed = suppressed as usize;
    let report = Report {
        k_requested: spec.k,
        k_reached,
        l_requested: criteria.l,
        l_reached,
        rows_in: rows,
        rows_out: rows - rows_suppressed,
        rows_suppressed,
        levels: applied_levels(spec, &best.levels),
        information_loss: loss,
        discernibility,
        nodes_evaluated: outcome.nodes_evaluated,
        lattice_size: outcome.lattice_size,
    };
    Ok((out_schema, output, report))
}

fn column_index(schema: &Schema, column: &str) -> Result<usize> {
    schema.index_of(column).map_err(|_| Error::UnknownColumn {
        column: column.to_string(),
    })
}

/// The input schema with every quasi-identifier turned into nullable `Utf8` (metadata kept).
fn output_schema(schema: &Schema, qi_index: &[usize]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if qi_index.contains(&i) {
                Field::new(f.name(), DataType::Utf8, true).with_metadata(f.metadata().clone())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn applied_levels(spec: &ExtractSpec, levels: &[usize]) -> Vec<AppliedLevel> {
    spec.quasi_identifiers
        .iter()
        .zip(levels)
        .map(|(qi, &level)| AppliedLevel {
            column: qi.column.clone(),
            level,
            max_level: qi.hierarchy.max_level(),
        })
        .collect()
}

/// Codes the sensitive column's values (any comparable type; NULL is a value) and counts the
/// distinct ones.
fn encode_sensitive(batches: &[RecordBatch], index: usize) -> Result<(Vec<u32>, usize)> {
    let data_type = batches[0].schema().field(index).data_type().clone();
    let converter = RowConverter::new(vec![SortField::new(data_type)])?;
    let mut map: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
    let mut codes = Vec::new();
    for batch in batches {
        let rows = converter.convert_columns(&[Arc::clone(batch.column(index))])?;
        for row in rows.iter() {
            let bytes = row.as_ref();
            let code = match map.get(bytes) {
                Some(&code) => code,
                None => {
                    let code = map.len() as u32;
                    map.insert(bytes.into(), code);
                    code
                }
            };
            codes.push(code);
        }
    }
    Ok((codes, map.len()))
}
