//! The content checksum on Kura's side: the query PostgreSQL runs
//! ([`crate::types::SourceTable::checksum_sql`]) computed on the stored table with
//! [`crate::pghash`]. Each row's hash is the xor of its columns' PostgreSQL hashes; the checksum
//! is their exact sum as signed 64-bit integers (an i128 here, a numeric there). The sum is
//! order-independent, so neither side needs to sort.

use futures::StreamExt;
use kura_engine::datafusion::arrow::array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
};
use kura_engine::datafusion::arrow::compute::cast;
use kura_engine::datafusion::arrow::datatypes::DataType;

use crate::pghash;
use crate::types::{ColumnType, NEGATIVE_SEED, NULL_MARK, Scalar, SourceTable};
use crate::{Error, Result};

/// Rows and checksum of one side.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    /// Row count.
    pub rows: u64,
    /// The sum, in decimal.
    pub sum: String,
}

/// PostgreSQL's hash of each value of `array` (`None` for NULL) with `seed`; with `signed`, a
/// negative numeric's seed adds [`NEGATIVE_SEED`] (as the checksum query does for numeric
/// columns, not for the elements of numeric arrays).
fn scalar_hashes(array: &dyn Array, scalar: Scalar, seed: u64, signed: bool, out: &mut Vec<Option<u64>>) {
    out.clear();
    let any = array.as_any();
    macro_rules! each {
        ($t:ty, $f:expr) => {{
            let a = any.downcast_ref::<$t>().expect(stringify!($t));
            out.extend((0..a.len()).map(|i| a.is_valid(i).then(|| $f(a.value(i)))));
        }};
    }
    match scalar {
        Scalar::Int2 => each!(Int16Array, |v: i16| pghash::hash_u32(v as i32 as u32, seed)),
        Scalar::Int4 => each!(Int32Array, |v: i32| pghash::hash_u32(v as u32, seed)),
        Scalar::Int8 => each!(Int64Array, |v: i64| pghash::hash_i64(v, seed)),
        Scalar::Float4 => each!(Float32Array, |v: f32| pghash::hash_f64(v as f64, seed)),
        Scalar::Float8 => each!(Float64Array, |v: f64| pghash::hash_f64(v, seed)),
        Scalar::Numeric(_, s) => {
            each!(Decimal128Array, |v: i128| pghash::hash_numeric(v, s, if signed && v < 0 { seed + NEGATIVE_SEED } else { seed }))
        }
        Scalar::Bool => each!(BooleanArray, |v: bool| pghash::hash_u32(v as u32, seed)),
        Scalar::Text | Scalar::Jsonb | Scalar::Uuid => each!(StringArray, |v: &str| pghash::hash_bytes(v.as_bytes(), seed)),
        Scalar::Date => each!(Date32Array, |v: i32| pghash::hash_u32(v.wrapping_sub(pghash::PG_EPOCH_DAYS) as u32, seed)),
        Scalar::Timestamp | Scalar::TimestampTz => {
            each!(TimestampMicrosecondArray, |v: i64| pghash::hash_i64(v.wrapping_sub(pghash::PG_EPOCH_MICROS), seed))
        }
        Scalar::Bytea => each!(BinaryArray, |v: &[u8]| pghash::hash_bytes(v, seed)),
    }
}

/// The hashes of a scalar column's values as its row hash takes them: a `bytea` as a
/// one-element array (see [`crate::types::SourceTable::checksum_sql`]).
fn column_hashes(array: &dyn Array, scalar: Scalar, seed: u64, out: &mut Vec<Option<u64>>) {
    scalar_hashes(array, scalar, seed, true, out);
    if scalar == Scalar::Bytea {
        for h in out.iter_mut().flatten() {
            *h = pghash::combine_array([Some(*h)]);
        }
    }
}

/// Xors column `index`'s hashes into `rows` (one per row).
fn xor_column(rows: &mut [u64], array: &dyn Array, kind: ColumnType, index: usize, scratch: &mut Vec<Option<u64>>) {
    let seed = index as u64 + 1;
    let null = NULL_MARK + index as u64;
    if !kind.array {
        column_hashes(array, kind.scalar, seed, scratch);
        for (row, h) in rows.iter_mut().zip(scratch.iter()) {
            *row ^= h.unwrap_or(null);
        }
        return;
    }
    let list = array.as_any().downcast_ref::<ListArray>().expect("list column");
    // Element hashes of the whole batch at once, then combined per list.
    scalar_hashes(list.values().as_ref(), kind.scalar, seed, false, scratch);
    let elements = &scratch[..];
    let negatives = match (kind.scalar, list.values().as_any().downcast_ref::<Decimal128Array>()) {
        (Scalar::Numeric(..), Some(values)) => Some(values),
        _ => None,
    };
    let offsets = list.value_offsets();
    for (i, row) in rows.iter_mut().enumerate() {
        if list.is_null(i) {
            *row ^= null;
            continue;
        }
        let range = offsets[i] as usize..offsets[i + 1] as usize;
        let mut h = pghash::combine_array(elements[range.clone()].iter().copied());
        if let Some(values) = negatives {
            h ^= range.filter(|&e| values.is_valid(e) && values.value(e) < 0).count() as u64;
        }
        *row ^= h;
    }
}

/// Reads the imported table back from the warehouse (as stored) and computes its checksum.
pub async fn kura_side(session: &kura_engine::Session, schema: &str, table: &str, source: &SourceTable) -> Result<Checksum> {
    let streams = session.read_stored(schema, table).await?;
    let kinds: Vec<(ColumnType, DataType)> = source.columns.iter().map(|c| (c.kind, c.kind.arrow())).collect();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let kinds = kinds.clone();
            tokio::spawn(async move {
                let mut rows = 0u64;
                let mut sum = 0i128;
                let (mut hashes, mut scratch) = (Vec::new(), Vec::new());
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(kura_engine::Error::from_datafusion)?;
                    // Stored types may differ in representation (views, dictionaries): cast back.
                    let columns = batch
                        .columns()
                        .iter()
                        .zip(&kinds)
                        .map(|(c, (_, t))| if c.data_type() == t { Ok(c.clone()) } else { cast(c, t) })
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| kura_engine::Error::from_datafusion(e.into()))?;
                    hashes.clear();
                    hashes.resize(batch.num_rows(), 0u64);
                    for (i, (c, (kind, _))) in columns.iter().zip(&kinds).enumerate() {
                        xor_column(&mut hashes, c.as_ref(), *kind, i, &mut scratch);
                    }
                    sum += hashes.iter().map(|h| *h as i64 as i128).sum::<i128>();
                    rows += batch.num_rows() as u64;
                }
                Ok::<_, Error>((rows, sum))
            })
        })
        .collect();
    let (mut rows, mut sum) = (0u64, 0i128);
    for t in tasks {
        let (r, s) = t.await.map_err(|e| Error::Verify { table: format!("{schema}.{table}"), reason: e.to_string() })??;
        rows += r;
        sum += s;
    }
    Ok(Checksum { rows, sum: sum.to_string() })
}
