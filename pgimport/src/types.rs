//! PostgreSQL types and their Kura (Arrow) equivalents, the `SELECT` list that reads a table with
//! binary COPY, and the checksum query PostgreSQL runs for verification
//! ([`SourceTable::checksum_sql`], computed on Kura's side by [`crate::checksum`]).

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

    /// PostgreSQL's 64-bit hash of value expression `v` with `seed` (NULL for NULL), as
    /// [`crate::pghash`] computes it on the stored value. Numerics hash their sign through the seed,
    /// which PostgreSQL's numeric hash ignores.
    fn hash_sql(self, v: &str, seed: u64) -> String {
        match self {
            Scalar::Int2 => format!("hashint2extended({v}, {seed})"),
            Scalar::Int4 => format!("hashint4extended({v}, {seed})"),
            Scalar::Int8 => format!("hashint8extended({v}, {seed})"),
            Scalar::Float4 => format!("hashfloat4extended({v}, {seed})"),
            Scalar::Float8 => format!("hashfloat8extended({v}, {seed})"),
            Scalar::Numeric(..) => {
                format!("hash_numeric_extended({v}, CASE WHEN {v} < 0 THEN {} ELSE {seed} END)", seed + NEGATIVE_SEED)
            }
            Scalar::Bool => format!("hashint4extended(({v})::int4, {seed})"),
            Scalar::Text | Scalar::Jsonb | Scalar::Uuid => format!("hashtextextended(({v})::text COLLATE \"C\", {seed})"),
            Scalar::Date => format!("hashint4extended({v} - date '2000-01-01', {seed})"),
            Scalar::Timestamp => format!("timestamp_hash_extended({v}, {seed})"),
            Scalar::TimestampTz => format!("timestamp_hash_extended({v} AT TIME ZONE 'UTC', {seed})"),
            // `hashvarlenaextended` takes `internal`: reach it through a one-element array.
            Scalar::Bytea => format!("CASE WHEN {v} IS NOT NULL THEN hash_array_extended(ARRAY[{v}], {seed}) END"),
        }
    }

    /// Whether Kura stores the type as text, and PostgreSQL must hash it as text.
    pub fn hashed_as_text(self) -> bool {
        matches!(self, Scalar::Text | Scalar::Jsonb | Scalar::Uuid)
    }
}

/// Seeds of column hashes are the column's position plus one; a negative numeric's seed adds this.
pub const NEGATIVE_SEED: u64 = 1 << 32;
/// A NULL in column `i` counts as `NULL_MARK + i` in its row's hash.
pub const NULL_MARK: u64 = 0x4b75_7261_0000_0000;

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

    /// The query that gives the table's row count and content checksum in PostgreSQL: the exact
    /// sum, over rows, of each row's hash as a signed 64-bit integer. A row's hash is the xor of
    /// its columns' hashes ([`Scalar::hash_sql`], column `i` with seed `i + 1`, a NULL counting as
    /// [`NULL_MARK`]` + i`); an array hashes with `hash_array_extended`, as text elements if Kura
    /// stores them as text, and a numeric array xors in its count of negative elements. All
    /// built-in C functions of PostgreSQL 11 or newer: no text is built per row.
    pub fn checksum_sql(&self) -> String {
        let fields: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = format!("t.{}", quote_ident(&c.name));
                let seed = i as u64 + 1;
                let hash = match (c.kind.array, c.kind.scalar) {
                    (false, scalar) => scalar.hash_sql(&v, seed),
                    (true, s) if s.hashed_as_text() => format!("hash_array_extended(({v})::text[] COLLATE \"C\", {seed})"),
                    (true, Scalar::Numeric(..)) => format!(
                        "(hash_array_extended({v}, {seed}) # (SELECT count(*) FROM unnest({v}) AS e(x) WHERE e.x < 0))"
                    ),
                    (true, _) => format!("hash_array_extended({v}, {seed})"),
                };
                format!("coalesce({hash}, {})", (NULL_MARK + i as u64) as i64)
            })
            .collect();
        let row = if fields.is_empty() { "0::int8".to_string() } else { fields.join(" # ") };
        format!("SELECT count(*)::bigint, coalesce(sum({row}), 0)::text FROM {} AS t", self.quoted())
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
