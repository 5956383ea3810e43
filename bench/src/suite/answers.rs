//! Answers as comparable rows: numbers as `f64`, everything else as text, and the comparison
//! that decides whether two systems gave the same answer.

use anyhow::Result;
use kura_engine::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use kura_engine::datafusion::arrow::compute::cast;
use kura_engine::datafusion::arrow::datatypes::{DataType, Float64Type};

/// One value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Num(f64),
    Text(String),
}

pub type Rows = Vec<Vec<Cell>>;

/// Arrow batches as rows: integers, floats and decimals become numbers; dates, strings and
/// booleans become their text (dates in ISO form, as the Python helper writes them).
pub fn from_batches(batches: &[RecordBatch]) -> Result<Rows> {
    let mut rows = Vec::new();
    for batch in batches {
        let mut columns = Vec::new();
        for col in batch.columns() {
            let numeric = col.data_type().is_numeric();
            let converted = if numeric { cast(col, &DataType::Float64)? } else { cast(col, &DataType::Utf8)? };
            columns.push((numeric, converted));
        }
        for r in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|(numeric, a)| {
                        if a.is_null(r) {
                            Cell::Null
                        } else if *numeric {
                            Cell::Num(a.as_primitive::<Float64Type>().value(r))
                        } else {
                            Cell::Text(a.as_string::<i32>().value(r).to_string())
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Rows as the Python helper sends them (JSON arrays).
pub fn from_json(rows: &serde_json::Value) -> Rows {
    rows.as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|cells| {
                            cells
                                .iter()
                                .map(|v| match v {
                                    serde_json::Value::Null => Cell::Null,
                                    serde_json::Value::Number(n) => Cell::Num(n.as_f64().unwrap_or(f64::NAN)),
                                    serde_json::Value::Bool(b) => Cell::Text(b.to_string()),
                                    serde_json::Value::String(s) => Cell::Text(s.clone()),
                                    other => Cell::Text(other.to_string()),
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Numbers agree within 1e-6 relative or 1e-4 absolute: systems differ in the scale they keep
/// for decimal division and averages (DataFusion rounds `avg` of a decimal to its scale + 4,
/// DuckDB answers a double).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-4 || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

fn cells_match(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Num(x), Cell::Num(y)) => close(*x, *y),
        // A number written as text by one client (e.g. a count the wire sends as text) still
        // compares as a number.
        (Cell::Num(x), Cell::Text(s)) | (Cell::Text(s), Cell::Num(x)) => s.parse::<f64>().is_ok_and(|y| close(*x, y)),
        (Cell::Text(x), Cell::Text(y)) => x == y || dates_match(x, y),
        (Cell::Null, Cell::Null) => true,
        _ => false,
    }
}

/// `2024-09-01` and `2024-09-01T00:00:00` name the same day (a date plus an interval is a
/// timestamp in DuckDB, a date in DataFusion).
fn dates_match(x: &str, y: &str) -> bool {
    let strip = |s: &str| s.strip_suffix("T00:00:00").or_else(|| s.strip_suffix(" 00:00:00")).map(str::to_string);
    strip(x).as_deref() == Some(y) || strip(y).as_deref() == Some(x)
}

/// A sort key that tolerates the small differences `close` accepts (numbers rounded to five
/// significant digits).
fn sort_key(row: &[Cell]) -> Vec<String> {
    row.iter()
        .map(|c| match c {
            Cell::Null => String::from("\u{0}"),
            Cell::Num(x) => format!("{x:.4e}"),
            Cell::Text(s) => s.clone(),
        })
        .collect()
}

fn rows_match(a: &Rows, b: &Rows) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} rows against {}", a.len(), b.len()));
    }
    for (i, (ra, rb)) in a.iter().zip(b).enumerate() {
        if ra.len() != rb.len() {
            return Some(format!("row {i}: {} columns against {}", ra.len(), rb.len()));
        }
        if let Some(j) = ra.iter().zip(rb).position(|(x, y)| !cells_match(x, y)) {
            return Some(format!("row {i}, column {}: {:?} against {:?}", j + 1, ra[j], rb[j]));
        }
    }
    None
}

/// Compares two answers as sorted row sets (then, should rounding have ordered two nearly equal
/// rows differently, in the order given). `None` when they agree, else what differs.
pub fn compare(a: &Rows, b: &Rows) -> Option<String> {
    let sorted = |rows: &Rows| {
        let mut rows = rows.clone();
        rows.sort_by_cached_key(|r| sort_key(r));
        rows
    };
    let difference = rows_match(&sorted(a), &sorted(b))?;
    rows_match(a, b)?;
    Some(difference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_and_order() {
        let a = vec![vec![Cell::Text("x".into()), Cell::Num(1.0)], vec![Cell::Text("y".into()), Cell::Num(2.000_000_01)]];
        let b = vec![vec![Cell::Text("y".into()), Cell::Num(2.0)], vec![Cell::Text("x".into()), Cell::Num(1.0)]];
        assert_eq!(compare(&a, &b), None);
        let c = vec![vec![Cell::Text("y".into()), Cell::Num(2.1)], vec![Cell::Text("x".into()), Cell::Num(1.0)]];
        assert!(compare(&a, &c).is_some());
        assert!(compare(&a, &a[..1].to_vec()).is_some());
    }
}
