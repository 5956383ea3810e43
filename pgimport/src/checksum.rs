//! The content checksum on Kura's side: the same canonical row text as PostgreSQL's query
//! ([`crate::types::SourceTable::checksum_sql`]), its MD5, the first 8 bytes as a signed
//! big-endian integer, summed (exactly, as an i128) over all rows. The sum is order-independent,
//! so neither side needs to sort.

use std::io::Write;

use futures::StreamExt;
use kura_engine::datafusion::arrow::array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
};
use kura_engine::datafusion::arrow::compute::cast;
use kura_engine::datafusion::arrow::datatypes::DataType;
use md5::{Digest as _, Md5};

use crate::types::{ColumnType, Scalar, SourceTable};
use crate::{Error, Result};

/// Rows and checksum of one side.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    /// Row count.
    pub rows: u64,
    /// The sum, in decimal.
    pub sum: String,
}

/// Appends a value's canonical text (without its field prefix).
fn value(out: &mut Vec<u8>, array: &dyn Array, kind: ColumnType, row: usize) {
    if kind.array {
        let list = array.as_any().downcast_ref::<ListArray>().expect("list column");
        let elements = list.value(row);
        out.push(b'{');
        let scalar = ColumnType { scalar: kind.scalar, array: false };
        for i in 0..elements.len() {
            field(out, elements.as_ref(), scalar, i);
        }
        out.push(b'}');
        return;
    }
    let any = array.as_any();
    let _ = match kind.scalar {
        Scalar::Int2 => write!(out, "{}", any.downcast_ref::<Int16Array>().expect("int2").value(row)),
        Scalar::Int4 => write!(out, "{}", any.downcast_ref::<Int32Array>().expect("int4").value(row)),
        Scalar::Int8 => write!(out, "{}", any.downcast_ref::<Int64Array>().expect("int8").value(row)),
        Scalar::Float4 => write!(out, "{:08x}", any.downcast_ref::<Float32Array>().expect("float4").value(row).to_bits()),
        Scalar::Float8 => write!(out, "{:016x}", any.downcast_ref::<Float64Array>().expect("float8").value(row).to_bits()),
        Scalar::Numeric(_, s) => {
            decimal(out, any.downcast_ref::<Decimal128Array>().expect("numeric").value(row), s);
            Ok(())
        }
        Scalar::Bool => {
            out.extend_from_slice(if any.downcast_ref::<BooleanArray>().expect("bool").value(row) { b"true" } else { b"false" });
            Ok(())
        }
        Scalar::Text | Scalar::Jsonb | Scalar::Uuid => {
            out.extend_from_slice(any.downcast_ref::<StringArray>().expect("text").value(row).as_bytes());
            Ok(())
        }
        Scalar::Date => write!(out, "{}", any.downcast_ref::<Date32Array>().expect("date").value(row)),
        Scalar::Timestamp | Scalar::TimestampTz => {
            write!(out, "{}", any.downcast_ref::<TimestampMicrosecondArray>().expect("timestamp").value(row))
        }
        Scalar::Bytea => {
            let bytes = any.downcast_ref::<BinaryArray>().expect("bytea").value(row);
            out.extend_from_slice(hex::encode(bytes).as_bytes());
            Ok(())
        }
    };
}

/// `N`, or `<byte length>:<value>`.
fn field(out: &mut Vec<u8>, array: &dyn Array, kind: ColumnType, row: usize) {
    if array.is_null(row) {
        out.push(b'N');
        return;
    }
    let start = out.len();
    value(out, array, kind, row);
    let text = out.split_off(start);
    let _ = write!(out, "{}:", text.len());
    out.extend_from_slice(&text);
}

/// An unscaled decimal as PostgreSQL prints `numeric(p, s)`: `-12.50`, `0.05`, `7`.
fn decimal(out: &mut Vec<u8>, unscaled: i128, scale: i8) {
    let digits = unscaled.unsigned_abs().to_string();
    if unscaled < 0 {
        out.push(b'-');
    }
    let s = scale.max(0) as usize;
    if s == 0 {
        out.extend_from_slice(digits.as_bytes());
        return;
    }
    let padded = format!("{digits:0>width$}", width = s + 1);
    let (int, frac) = padded.split_at(padded.len() - s);
    out.extend_from_slice(int.as_bytes());
    out.push(b'.');
    out.extend_from_slice(frac.as_bytes());
}

/// The signed 64-bit hash of one canonical row.
fn row_hash(row: &[u8]) -> i64 {
    let digest = Md5::digest(row);
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
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
                let mut buf = Vec::with_capacity(256);
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
                    for row in 0..batch.num_rows() {
                        buf.clear();
                        for (c, (kind, _)) in columns.iter().zip(&kinds) {
                            field(&mut buf, c.as_ref(), *kind, row);
                        }
                        sum += row_hash(&buf) as i128;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_as_postgres_does() {
        let text = |v, s| {
            let mut out = vec![];
            decimal(&mut out, v, s);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(-1250, 2), "-12.50");
        assert_eq!(text(5, 2), "0.05");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(7, 0), "7");
        assert_eq!(text(0, 3), "0.000");
    }
}
