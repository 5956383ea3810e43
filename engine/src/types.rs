//! Which Arrow types a Delta table can store, and how SQL-declared types map onto them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::{Error, Result};

/// The type a column of this declared type is stored as in Delta Lake.
///
/// Delta stores timestamps in microseconds and strings as plain UTF-8; types Delta has no
/// equivalent for are refused with a message that names the column.
pub fn storage_type(column: &str, dt: &DataType) -> Result<DataType> {
    Ok(match dt {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32
        | DataType::Utf8
        | DataType::Binary => dt.clone(),
        DataType::Float16 => DataType::Float32,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary | DataType::FixedSizeBinary(_) => DataType::Binary,
        DataType::Date64 => DataType::Date32,
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) if *p <= 38 => {
            DataType::Decimal128(*p, *s)
        }
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Null => {
            return Err(Error::Invalid(format!(
                "column \"{column}\" has no type (a bare NULL); cast it, e.g. NULL::text"
            )));
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) | DataType::FixedSizeList(f, _) => {
            let inner = storage_type(column, f.data_type())?;
            DataType::List(Arc::new(Field::new_list_field(inner, true)))
        }
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        other => {
            return Err(Error::Unsupported(format!(
                "column \"{column}\" has type {other}, which Delta Lake tables cannot store"
            )));
        }
    })
}

/// The storage schema for declared columns; keeps names and nullability.
pub fn storage_schema(schema: &Schema) -> Result<Schema> {
    let fields: Result<Vec<Field>> = schema
        .fields()
        .iter()
        .map(|f| Ok(Field::new(f.name(), storage_type(f.name(), f.data_type())?, f.is_nullable())))
        .collect();
    Ok(Schema::new(fields?))
}
