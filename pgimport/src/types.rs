//! PostgreSQL types and their Kura (Arrow) equivalents, the `SELECT` list that reads a table with
//! binary COPY, and the canonical text form both sides hash for verification.
//!
//! The canonical form of a value (the same on both sides, see [`crate::checksum`]):
//! integers and `numeric` in PostgreSQL's text form (a `numeric(p,s)` always with `s` decimals),
//! `real`/`double precision` as the hex of their IEEE bits, booleans `true`/`false`, text as is,
//! dates as days since 1970-01-01, timestamps as microseconds since 1970-01-01 00:00 (UTC for
//! `timestamptz`), `bytea` as lowercase hex, arrays as `{` + their elements' fields + `}`. A field
//! is `N` for NULL, else `<byte length>:<value>`; a row is its fields concatenated.

use std::sync::Arc;

use kura_engine::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The scale given to `numeric` columns declared without precision and scale. A value with
/// more decimals, or more than 28 digits before the point, stops the import with an error.
pub const UNCONSTRAINED_NUMERIC: (u8, i8) = (38, 10);

/// A scalar PostgreSQL type Kura imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// int2.
    Int2,
    /// int4.
    Int4,
    /// int8.
    Int8,
    /// float4.
    Float4,
    /// float8.
    Float8,
    /// numeric(p, s), or unconstrained (see [`UNCONSTRAINED_NUMERIC`]).
    Numeric(u8, i8),
    /// bool.
    Bool,
    /// text, varchar, bpchar (read as text, so without its padding), name, json.
    Text,
    /// jsonb (binary form: a version byte, then the text).
    Jsonb,
    /// uuid, imported as text.
    Uuid,
    /// date.
    Date,
    /// timestamp without time zone.
    Timestamp,
    /// timestamp with time zone (stored in UTC).
    TimestampTz,
    /// bytea.
    Bytea,
}

/// A column's PostgreSQL type as Kura imports it: a scalar or a one-dimensional array of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnType {
    /// The element type.
    pub scalar: Scalar,
    /// Whether the column is an array of `scalar`.
    pub array: bool,
}

/// A column of a PostgreSQL table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: ColumnType,
    /// PostgreSQL's name for its type (`numeric(12,2)`), for messages.
    pub pg_type: String,
    /// Whether it is `character(n)`: read as text, which drops the padding.
    pub bpchar: bool,
}

/// The catalog facts about a column that decide its mapping.
#[derive(Debug, Clone)]
pub struct PgAttribute {
    /// Column name.
    pub name: String,
    /// `pg_type.oid` of the column, or of the element for an array.
    pub type_oid: u32,
    /// Whether the column is an array.
    pub array: bool,
    /// `atttypmod`.
    pub typmod: i32,
    /// `format_type(atttypid, atttypmod)`.
    pub pg_type: String,
}

/// Maps a column, or `None` if Kura has no equivalent.
pub fn map_attribute(a: &PgAttribute) -> Option<Column> {
    let scalar = match a.type_oid {
        21 => Scalar::Int2,
        23 => Scalar::Int4,
        20 => Scalar::Int8,
        700 => Scalar::Float4,
        701 => Scalar::Float8,
        1700 => numeric(a.typmod)?,
        16 => Scalar::Bool,
        25 | 1043 | 1042 | 19 | 114 => Scalar::Text,
        3802 => Scalar::Jsonb,
        2950 => Scalar::Uuid,
        1082 => Scalar::Date,
        1114 => Scalar::Timestamp,
        1184 => Scalar::TimestampTz,
        17 => Scalar::Bytea,
        _ => return None,
    };
    Some(Column {
        name: a.name.clone(),
        kind: ColumnType { scalar, array: a.array },
        pg_type: a.pg_type.clone(),
        bpchar: a.type_oid == 1042,
    })
}

/// `numeric(p,s)` from its typmod (`((p << 16) | s) + 4`; -1 when unconstrained).
fn numeric(typmod: i32) -> Option<Scalar> {
    if typmod < 4 {
        let (p, s) = UNCONSTRAINED_NUMERIC;
        return Some(Scalar::Numeric(p, s));
    }
    let t = typmod - 4;
    let (p, s) = ((t >> 16) & 0xffff, t & 0xffff);
    // Negative scales and scales above the precision (PostgreSQL 15) have no Arrow equivalent.
    (1..=38).contains(&p).then_some(())?;
    (s <= p).then(|| Scalar::Numeric(p as u8, s as i8))
}

impl Scalar {
    /// The Arrow type of a value.
    pub fn arrow(self) -> DataType {
        match self {
            Scalar::Int2 => DataType::Int16,
            Scalar::Int4 => DataType::Int32,
            Scalar::Int8 => DataType::Int64,
            Scalar::Float4 => DataType::Float32,
            Scalar::Float8 => DataType::Float64,
            Scalar::Numeric(p, s) => DataType::Decimal128(p, s),
            Scalar::Bool => DataType::Boolean,
            Scalar::Text | Scalar::Jsonb | Scalar::Uuid => DataType::Utf8,
            Scalar::Date => DataType::Date32,
            Scalar::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Scalar::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Scalar::Bytea => DataType::Binary,
        }
    }

    /// The canonical text of value expression `v` in PostgreSQL SQL (NULL for NULL).
    fn canonical_sql(self, v: &str) -> String {
        match self {
            Scalar::Int2 | Scalar::Int4 | Scalar::Int8 | Scalar::Bool | Scalar::Text | Scalar::Jsonb | Scalar::Uuid => {
                format!("({v})::text")
            }
            Scalar::Numeric(p, s) => format!("(({v})::numeric({p},{s}))::text"),
            Scalar::Float4 => format!("encode(float4send({v}), 'hex')"),
            Scalar::Float8 => format!("encode(float8send({v}), 'hex')"),
            Scalar::Date => format!("(({v}) - date '1970-01-01')::text"),
            Scalar::Timestamp | Scalar::TimestampTz => format!("(extract(epoch from {v}) * 1000000)::bigint::text"),
            Scalar::Bytea => format!("encode({v}, 'hex')"),
        }
    }
}

impl ColumnType {
    /// The Arrow type of the column.
    pub fn arrow(self) -> DataType {
        if self.array {
            DataType::List(Arc::new(Field::new_list_field(self.scalar.arrow(), true)))
        } else {
            self.scalar.arrow()
        }
    }
}

/// A table to import, with its mapped columns.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// PostgreSQL schema.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// `pg_class.reltuples`: an estimate of its rows, for progress.
    pub estimated_rows: u64,
}

/// `"a""b"` for `a"b`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl SourceTable {
    /// `schema.table`, quoted.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// `schema.table` for messages.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The Arrow schema of the Kura table (every column NULL-able).
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns.iter().map(|c| Field::new(&c.name, c.kind.arrow(), true)).collect::<Vec<_>>(),
        ))
    }

    /// The `SELECT` list binary COPY reads: columns as they are, `character(n)` as text.
    pub fn select_list(&self) -> String {
        let list: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let q = quote_ident(&c.name);
                match (c.bpchar, c.kind.array) {
                    (true, false) => format!("{q}::text"),
                    (true, true) => format!("{q}::text[]"),
                    _ => q,
                }
            })
            .collect();
        if list.is_empty() { "".into() } else { list.join(", ") }
    }

    /// `COPY (SELECT ...) TO STDOUT (FORMAT binary)` for the table.
    pub fn copy_sql(&self) -> String {
        format!("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)", self.select_list(), self.quoted())
    }

    /// The query that gives the table's row count and content checksum in PostgreSQL: the sum,
    /// as a numeric, of the first 64 bits of the MD5 of each row's canonical text (a signed
    /// big-endian integer).
    pub fn checksum_sql(&self) -> String {
        let fields: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let v = format!("t.{}", quote_ident(&c.name));
                let text = if c.kind.array {
                    let elem = c.kind.scalar.canonical_sql("u.e");
                    format!(
                        "CASE WHEN {v} IS NULL THEN NULL ELSE '{{' || coalesce((SELECT string_agg(coalesce(octet_length({elem})::text || ':' || {elem}, 'N'), '' ORDER BY u.o) FROM unnest({v}) WITH ORDINALITY AS u(e, o)), '') || '}}' END"
                    )
                } else {
                    c.kind.scalar.canonical_sql(&v)
                };
                format!("coalesce(octet_length({text})::text || ':' || {text}, 'N')")
            })
            .collect();
        let row = if fields.is_empty() { "''".to_string() } else { fields.join(" || ") };
        format!(
            "SELECT count(*)::bigint, coalesce(sum(('x' || left(md5({row}), 16))::bit(64)::bigint), 0)::text FROM {} AS t",
            self.quoted()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(oid: u32, typmod: i32) -> PgAttribute {
        PgAttribute { name: "c".into(), type_oid: oid, array: false, typmod, pg_type: "t".into() }
    }

    #[test]
    fn numeric_typmods() {
        assert_eq!(map_attribute(&attr(1700, ((12 << 16) | 2) + 4)).unwrap().kind.scalar, Scalar::Numeric(12, 2));
        assert_eq!(map_attribute(&attr(1700, -1)).unwrap().kind.scalar, Scalar::Numeric(38, 10));
        assert!(map_attribute(&attr(1700, ((40 << 16) | 2) + 4)).is_none());
        assert!(map_attribute(&attr(600, -1)).is_none(), "point is not importable");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
