//! Result batches as `DataRow` messages.
//!
//! arrow-pg encodes each value (its per-type text and binary forms are used here unchanged), but
//! its row encoder gives every row a buffer of its own, and those allocations were a quarter of
//! the CPU time of streaming a large result. Here all rows of a batch are written into one buffer
//! and split off it, so a batch costs a few allocations instead of one or more per row.

use std::sync::Arc;

use arrow_pg::encoder::{Encoder, encode_value};
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};

/// Drops the zeros that end a time's fractional seconds, and the dot if nothing is left, as
/// PostgreSQL prints them (`09:00:00`, `09:00:00.5`, `09:00:00+00`); returns the new length.
fn trim_fraction(text: &mut [u8]) -> usize {
    let Some(dot) = text.iter().position(|b| *b == b'.') else { return text.len() };
    let digits = text[dot + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
    let keep = text[dot + 1..dot + 1 + digits].iter().rposition(|b| *b != b'0').map(|i| i + 1).unwrap_or(0);
    let cut_from = if keep == 0 { dot } else { dot + 1 + keep };
    let rest = dot + 1 + digits;
    let tail = text.len() - rest;
    text.copy_within(rest.., cut_from);
    cut_from + tail
}

/// The schema as sent to clients. datafusion-pg-catalog tags some object-identifier columns of
/// its tables as `regclass`, `regtype` or `regnamespace` (`pg_attribute.atttypid`,
/// `pg_class.relnamespace`), and arrow-pg would describe them with those types, whose text form
/// in PostgreSQL is a name: drivers then decode the number as a string (psycopg gives `'20'` for
/// `atttypid`, DBeaver's column query compares it with type OIDs). PostgreSQL declares these
/// catalog columns `oid`, and so does Kura.
pub(crate) fn wire_schema(schema: &SchemaRef) -> SchemaRef {
    const KEY: &str = arrow_pg::datatypes::PG_OID_ALIAS_KEY;
    // Only numbers: some static tables keep `regproc` columns as text (`typinput`, `-`).
    let is_alias = |f: &Field| {
        *f.data_type() == DataType::Int32 && f.metadata().get(KEY).is_some_and(|kind| kind != "oid")
    };
    if !schema.fields().iter().any(|f| is_alias(f)) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut f = f.as_ref().clone();
            if is_alias(&f) {
                let mut metadata = f.metadata().clone();
                metadata.insert(KEY.to_string(), "oid".to_string());
                f = f.with_metadata(metadata);
            }
            f
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Bytes reserved per value beyond the batch's Arrow size, for the length prefixes.
const PER_VALUE: usize = 4;
/// Largest buffer reserved up front; a larger batch takes another when this one is full.
const MAX_RESERVE: usize = 8 << 20;

/// Writes the fields of consecutive rows into one shared buffer.
struct BatchEncoder {
    buf: BytesMut,
    fields: i16,
}

impl Encoder for BatchEncoder {
    type Item = DataRow;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        // The length is written after the value, as pgwire's own DataRowEncoder does.
        let start = self.buf.len();
        self.buf.put_i32(-1);
        let is_null = if pg_field.format() == FieldFormat::Text {
            let written = value.to_sql_text(pg_field.datatype(), &mut self.buf, pg_field.format_options())?;
            let t = pg_field.datatype();
            if *t == postgres_types::Type::TIMESTAMP || *t == postgres_types::Type::TIMESTAMPTZ || *t == postgres_types::Type::TIME {
                let trimmed = trim_fraction(&mut self.buf[start + 4..]);
                self.buf.truncate(start + 4 + trimmed);
            }
            written
        } else {
            value.to_sql(pg_field.datatype(), &mut self.buf)?
        };
        if let IsNull::No = is_null {
            let len = (self.buf.len() - start - 4) as i32;
            self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        self.fields += 1;
        Ok(())
    }

    fn take_row(&mut self) -> DataRow {
        let row = DataRow::new(self.buf.split(), self.fields);
        self.fields = 0;
        row
    }
}

/// The rows of `batch` as `DataRow`s for a client expecting `fields`; stops at the first value
/// that cannot be encoded, returning its error last.
pub(crate) fn encode_batch(fields: &Arc<Vec<FieldInfo>>, batch: &RecordBatch) -> Vec<PgWireResult<DataRow>> {
    let rows = batch.num_rows();
    let reserve = (batch.get_array_memory_size() + rows * batch.num_columns() * PER_VALUE).min(MAX_RESERVE);
    let mut encoder = BatchEncoder { buf: BytesMut::with_capacity(reserve), fields: 0 };
    let schema = wire_schema(batch.schema_ref());
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        for (col, array) in batch.columns().iter().enumerate() {
            if let Err(e) = encode_value(&mut encoder, array, row, schema.field(col), &fields[col]) {
                out.push(Err(e));
                return out;
            }
        }
        out.push(Ok(encoder.take_row()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
    use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use pgwire::api::results::FieldFormat;
    use pgwire::api::portal::Format;

    #[test]
    fn fractions_of_seconds_print_as_postgres_prints_them() {
        for (given, expected) in [
            ("2024-04-01 09:00:00.000000", "2024-04-01 09:00:00"),
            ("2024-04-01 09:00:00.500000", "2024-04-01 09:00:00.5"),
            ("2024-04-01 09:00:00.000000+00:00", "2024-04-01 09:00:00+00:00"),
            ("2024-04-01 09:00:00.123456+09:00", "2024-04-01 09:00:00.123456+09:00"),
            ("09:30:00", "09:30:00"),
        ] {
            let mut bytes = given.as_bytes().to_vec();
            let n = trim_fraction(&mut bytes);
            assert_eq!(std::str::from_utf8(&bytes[..n]).unwrap(), expected);
        }
    }

    /// Every row is byte for byte what arrow-pg's own row encoder makes, in text and binary.
    #[test]
    fn rows_match_arrow_pg() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(-42), Some(i64::MAX)])),
            Arc::new(Float64Array::from(vec![Some(0.5), Some(1e300), None, Some(-0.1)])),
            Arc::new(StringArray::from(vec![Some("row 1"), Some(""), Some("日本語"), None])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None, Some(true)])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        for (format, expected) in [(Format::UnifiedText, FieldFormat::Text), (Format::UnifiedBinary, FieldFormat::Binary)] {
            let fields = Arc::new(arrow_schema_to_pg_fields(&schema, &format, None).unwrap());
            assert!(fields.iter().all(|f| f.format() == expected));
            let ours: Vec<DataRow> = encode_batch(&fields, &batch).into_iter().map(Result::unwrap).collect();
            let theirs: Vec<DataRow> = encode_recordbatch(fields.clone(), batch.clone()).map(Result::unwrap).collect();
            assert_eq!(ours.len(), 4);
            assert_eq!(ours, theirs);
        }
    }
}
