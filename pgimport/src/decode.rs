//! PostgreSQL's binary COPY format decoded straight into Arrow builders.
//!
//! The stream is a signature, flags and a header extension, then tuples (a 16-bit field count,
//! then per field a 32-bit length, -1 for NULL, and the value in the type's binary `send` form),
//! then a field count of -1. PostgreSQL sends a tuple per CopyData message, but the protocol does
//! not promise that, so a tuple split across messages is carried over.

use std::sync::Arc;

use kura_engine::datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, ListArray, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use kura_engine::datafusion::arrow::array::builder::NullBufferBuilder;
use kura_engine::datafusion::arrow::buffer::OffsetBuffer;
use kura_engine::datafusion::arrow::datatypes::{Field, SchemaRef};

use crate::types::{ColumnType, Scalar, SourceTable};
use crate::{Error, Result};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// 2000-01-01 (PostgreSQL's epoch) in days and microseconds since 1970-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A column's builder: a scalar one, or a list of a scalar with its offsets and validity.
enum Builder {
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Numeric(Decimal128Builder, u8, i8),
    Bool(BooleanBuilder),
    Text(StringBuilder, Scalar),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Bytea(BinaryBuilder),
    List { offsets: Vec<i32>, nulls: NullBufferBuilder, values: Box<Builder>, field: Arc<Field> },
}

/// Why a value was refused; the column is named by the caller.
type ValueResult<T = ()> = std::result::Result<T, String>;

fn be<const N: usize>(b: &[u8]) -> ValueResult<[u8; N]> {
    b.try_into().map_err(|_| format!("a value of {} bytes where {N} were expected", b.len()))
}

impl Builder {
    fn new(kind: ColumnType, capacity: usize) -> Self {
        if kind.array {
            let values = Builder::new(ColumnType { scalar: kind.scalar, array: false }, capacity * 4);
            return Builder::List {
                offsets: {
                    let mut o = Vec::with_capacity(capacity + 1);
                    o.push(0);
                    o
                },
                nulls: NullBufferBuilder::new(capacity),
                values: Box::new(values),
                field: Arc::new(Field::new_list_field(kind.scalar.arrow(), true)),
            };
        }
        match kind.scalar {
            Scalar::Int2 => Builder::Int2(Int16Builder::with_capacity(capacity)),
            Scalar::Int4 => Builder::Int4(Int32Builder::with_capacity(capacity)),
            Scalar::Int8 => Builder::Int8(Int64Builder::with_capacity(capacity)),
            Scalar::Float4 => Builder::Float4(Float32Builder::with_capacity(capacity)),
            Scalar::Float8 => Builder::Float8(Float64Builder::with_capacity(capacity)),
            Scalar::Numeric(p, s) => Builder::Numeric(
                Decimal128Builder::with_capacity(capacity).with_precision_and_scale(p, s).expect("mapped precision"),
                p,
                s,
            ),
            Scalar::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            s @ (Scalar::Text | Scalar::Jsonb | Scalar::Uuid) => {
                Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16), s)
            }
            Scalar::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Scalar::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity)),
            Scalar::TimestampTz => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"))
            }
            Scalar::Bytea => Builder::Bytea(BinaryBuilder::with_capacity(capacity, capacity * 16)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Int2(b) => b.append_null(),
            Builder::Int4(b) => b.append_null(),
            Builder::Int8(b) => b.append_null(),
            Builder::Float4(b) => b.append_null(),
            Builder::Float8(b) => b.append_null(),
            Builder::Numeric(b, ..) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Text(b, _) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Bytea(b) => b.append_null(),
            Builder::List { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("offsets start with 0"));
                nulls.append_null();
            }
        }
    }

    fn append(&mut self, v: &[u8]) -> ValueResult {
        match self {
            Builder::Int2(b) => b.append_value(i16::from_be_bytes(be(v)?)),
            Builder::Int4(b) => b.append_value(i32::from_be_bytes(be(v)?)),
            Builder::Int8(b) => b.append_value(i64::from_be_bytes(be(v)?)),
            Builder::Float4(b) => b.append_value(f32::from_bits(u32::from_be_bytes(be(v)?))),
            Builder::Float8(b) => b.append_value(f64::from_bits(u64::from_be_bytes(be(v)?))),
            Builder::Numeric(b, p, s) => b.append_value(numeric(v, *p, *s)?),
            Builder::Bool(b) => b.append_value(be::<1>(v)?[0] != 0),
            Builder::Text(b, kind) => {
                let bytes = match kind {
                    Scalar::Jsonb => v.split_first().filter(|(version, _)| **version == 1).map(|(_, t)| t).ok_or("unknown jsonb version")?,
                    _ => v,
                };
                if *kind == Scalar::Uuid {
                    let u: [u8; 16] = be(v)?;
                    let h = hex::encode(u);
                    b.append_value(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]));
                } else {
                    b.append_value(std::str::from_utf8(bytes).map_err(|_| "text that is not UTF-8 (use a UTF8 database or client_encoding)")?);
                }
            }
            Builder::Date(b) => {
                let d = i32::from_be_bytes(be(v)?);
                if d == i32::MAX || d == i32::MIN {
                    return Err("an infinite date, which Kura cannot store".into());
                }
                b.append_value(d.checked_add(PG_EPOCH_DAYS).ok_or("a date out of range")?);
            }
            Builder::Timestamp(b) => {
                let t = i64::from_be_bytes(be(v)?);
                if t == i64::MAX || t == i64::MIN {
                    return Err("an infinite timestamp, which Kura cannot store".into());
                }
                b.append_value(t.checked_add(PG_EPOCH_MICROS).ok_or("a timestamp out of range")?);
            }
            Builder::Bytea(b) => b.append_value(v),
            Builder::List { offsets, nulls, values, .. } => {
                let count = array_elements(v, |e| match e {
                    None => {
                        values.append_null();
                        Ok(())
                    }
                    Some(e) => values.append(e),
                })?;
                let last = *offsets.last().expect("offsets start with 0");
                offsets.push(last + i32::try_from(count).map_err(|_| "an array too large")?);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int2(b) => Arc::new(b.finish()),
            Builder::Int4(b) => Arc::new(b.finish()),
            Builder::Int8(b) => Arc::new(b.finish()),
            Builder::Float4(b) => Arc::new(b.finish()),
            Builder::Float8(b) => Arc::new(b.finish()),
            Builder::Numeric(b, ..) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Text(b, _) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Bytea(b) => Arc::new(b.finish()),
            Builder::List { offsets, nulls, values, field } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(field.clone(), offsets, values.finish(), nulls.finish()))
            }
        }
    }
}

/// Walks a one-dimensional array's elements (binary `array_send`: dimensions, a NULL flag, the
/// element type, each dimension's length and lower bound, then length-prefixed elements).
/// Returns how many there were. The lower bound is not kept.
fn array_elements(v: &[u8], mut each: impl FnMut(Option<&[u8]>) -> ValueResult) -> ValueResult<usize> {
    let word = |at: usize| -> ValueResult<i32> { Ok(i32::from_be_bytes(be(v.get(at..at + 4).ok_or("a truncated array")?)?)) };
    let ndim = word(0)?;
    if ndim == 0 {
        return Ok(0);
    }
    if ndim != 1 {
        return Err(format!("a {ndim}-dimensional array; Kura imports one-dimensional arrays only"));
    }
    let count = usize::try_from(word(12)?).map_err(|_| "a negative array length")?;
    let mut at = 20;
    for _ in 0..count {
        let len = word(at)?;
        at += 4;
        if len < 0 {
            each(None)?;
            continue;
        }
        let end = at + len as usize;
        each(Some(v.get(at..end).ok_or("a truncated array")?))?;
        at = end;
    }
    Ok(count)
}

/// A binary `numeric` (digit count, weight, sign, display scale, base-10000 digits) as the
/// unscaled value of a `Decimal128(p, s)`; refuses NaN, infinities, lost decimals and overflow.
fn numeric(v: &[u8], p: u8, s: i8) -> ValueResult<i128> {
    let half = |at: usize| -> ValueResult<u16> { Ok(u16::from_be_bytes(be(v.get(at..at + 2).ok_or("a truncated numeric")?)?)) };
    let ndigits = half(0)? as usize;
    let weight = half(2)? as i16 as i32;
    let sign = half(4)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN, which a Kura decimal cannot hold".into()),
        _ => return Err("an infinite numeric, which a Kura decimal cannot hold".into()),
    }
    let overflow = || format!("a value that does not fit numeric({p},{s})");
    let mut unscaled: i128 = 0;
    for i in 0..ndigits {
        let digit = half(8 + 2 * i)? as i128;
        // This digit is worth digit * 10000^(weight - i) = digit * 10^(4 * (weight - i)); scaled by 10^s.
        let exp10 = 4 * (weight - i as i32) + s as i32;
        if exp10 >= 0 {
            let factor = 10i128.checked_pow(exp10 as u32).ok_or_else(overflow)?;
            unscaled = digit.checked_mul(factor).and_then(|x| unscaled.checked_add(x)).ok_or_else(overflow)?;
        } else {
            let divisor = 10i128.pow((-exp10).min(4) as u32);
            if (-exp10) > 4 || digit % divisor != 0 {
                if digit != 0 {
                    return Err(format!("a value with more than {s} decimals, more than numeric({p},{s}) keeps"));
                }
                continue;
            }
            unscaled = unscaled.checked_add(digit / divisor).ok_or_else(overflow)?;
        }
    }
    if unscaled >= 10i128.pow(p as u32) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -unscaled } else { unscaled })
}

/// Decodes one table's binary COPY stream into record batches of at most `batch_rows` rows.
pub struct Decoder {
    table: String,
    columns: Vec<String>,
    schema: SchemaRef,
    builders: Vec<Builder>,
    batch_rows: usize,
    rows: usize,
    header_done: bool,
    finished: bool,
    carry: Vec<u8>,
    /// Bytes received.
    pub bytes: u64,
}

impl Decoder {
    /// A decoder for `table`'s columns.
    pub fn new(table: &SourceTable, batch_rows: usize) -> Self {
        Self {
            table: table.display(),
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
            schema: table.arrow_schema(),
            builders: table.columns.iter().map(|c| Builder::new(c.kind, batch_rows)).collect(),
            batch_rows,
            rows: 0,
            header_done: false,
            finished: false,
            carry: Vec::new(),
            bytes: 0,
        }
    }

    fn protocol(&self, reason: &str) -> Error {
        Error::Protocol { table: self.table.clone(), reason: reason.into() }
    }

    /// Feeds one chunk of the stream; calls `emit` with each full batch.
    pub fn feed(&mut self, chunk: &[u8], emit: &mut impl FnMut(RecordBatch) -> Result<()>) -> Result<()> {
        self.bytes += chunk.len() as u64;
        if self.carry.is_empty() {
            let used = self.parse(chunk, emit)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut data = std::mem::take(&mut self.carry);
            data.extend_from_slice(chunk);
            let used = self.parse(&data, emit)?;
            data.drain(..used);
            self.carry = data;
        }
        Ok(())
    }

    /// Parses whole tuples from `data`; returns the bytes used.
    fn parse(&mut self, data: &[u8], emit: &mut impl FnMut(RecordBatch) -> Result<()>) -> Result<usize> {
        let mut at = 0;
        if !self.header_done {
            if data.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &data[..SIGNATURE.len()] != SIGNATURE {
                return Err(self.protocol("no PGCOPY signature"));
            }
            let ext = u32::from_be_bytes(data[15..19].try_into().expect("4 bytes")) as usize;
            if data.len() < 19 + ext {
                return Ok(0);
            }
            at = 19 + ext;
            self.header_done = true;
        }
        while at + 2 <= data.len() {
            if self.finished {
                return Err(self.protocol("data after the end marker"));
            }
            let count = i16::from_be_bytes([data[at], data[at + 1]]);
            if count == -1 {
                self.finished = true;
                at += 2;
                continue;
            }
            if count as usize != self.builders.len() {
                return Err(self.protocol("a tuple with the wrong number of fields"));
            }
            // Check the tuple is complete before touching the builders.
            let mut end = at + 2;
            let mut complete = true;
            for _ in 0..count {
                if end + 4 > data.len() {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes(data[end..end + 4].try_into().expect("4 bytes"));
                end += 4 + len.max(0) as usize;
            }
            if !complete || end > data.len() {
                break;
            }
            let mut p = at + 2;
            for i in 0..self.builders.len() {
                let len = i32::from_be_bytes(data[p..p + 4].try_into().expect("4 bytes"));
                p += 4;
                if len < 0 {
                    self.builders[i].append_null();
                    continue;
                }
                let value = &data[p..p + len as usize];
                p += len as usize;
                if let Err(reason) = self.builders[i].append(value) {
                    return Err(Error::Value { table: self.table.clone(), column: self.columns[i].clone(), reason });
                }
            }
            at = end;
            self.rows += 1;
            if self.rows >= self.batch_rows {
                emit(self.flush()?)?;
            }
        }
        Ok(at)
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| self.protocol(&e.to_string()))
    }

    /// The last rows once the stream ended; fails if it ended mid-tuple or without its marker.
    pub fn finish(mut self) -> Result<Option<RecordBatch>> {
        if !self.finished || !self.carry.is_empty() {
            return Err(self.protocol("the stream ended early"));
        }
        if self.rows == 0 { Ok(None) } else { self.flush().map(Some) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics_scale_exactly() {
        // 12345.67 = [1, 2345, 6700] weight 1
        assert_eq!(numeric(&numeric_bytes(1, 0, 2, &[1, 2345, 6700]), 12, 2), Ok(1_234_567));
        assert_eq!(numeric(&numeric_bytes(1, 0x4000, 2, &[1, 2345, 6700]), 12, 2), Ok(-1_234_567));
        // 0.05 = [500] weight -1
        assert_eq!(numeric(&numeric_bytes(-1, 0, 2, &[500]), 5, 2), Ok(5));
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, &[]), 5, 2), Ok(0));
        assert!(numeric(&numeric_bytes(-1, 0, 3, &[5]), 5, 2).is_err(), "0.0005 needs more than 2 decimals");
        assert!(numeric(&numeric_bytes(1, 0, 0, &[1, 0]), 4, 0).is_err(), "10000 does not fit numeric(4,0)");
        assert!(numeric(&numeric_bytes(0, 0xC000, 0, &[]), 4, 0).is_err(), "NaN");
    }

    #[test]
    fn tuples_split_across_chunks() {
        let table = SourceTable {
            schema: "s".into(),
            name: "t".into(),
            columns: vec![crate::types::Column {
                name: "a".into(),
                kind: ColumnType { scalar: Scalar::Int4, array: false },
                pg_type: "integer".into(),
                bpchar: false,
            }],
            estimated_rows: 0,
        };
        let mut stream = SIGNATURE.to_vec();
        stream.extend([0u8; 8]);
        for i in 0..5i32 {
            stream.extend(1i16.to_be_bytes());
            if i == 2 {
                stream.extend((-1i32).to_be_bytes());
            } else {
                stream.extend(4i32.to_be_bytes());
                stream.extend(i.to_be_bytes());
            }
        }
        stream.extend((-1i16).to_be_bytes());
        let mut decoder = Decoder::new(&table, 2);
        let mut batches = vec![];
        for chunk in stream.chunks(3) {
            decoder.feed(chunk, &mut |b| {
                batches.push(b);
                Ok(())
            })
            .unwrap();
        }
        batches.extend(decoder.finish().unwrap());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
        assert_eq!(batches[1].column(0).null_count(), 1);
    }
}
