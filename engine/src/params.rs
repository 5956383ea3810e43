//! Binding values to `$1`, `$2`, ... placeholders of a prepared statement. Values are put into the
//! statement's syntax tree as typed literals (never spliced into text), so a value can never
//! change what the statement does.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, ExactNumberInfo, TimezoneInfo, Value, VisitMut, VisitorMut,
};

use crate::parser::{ParsedStatement, StatementKind};
use crate::{Error, Result};

/// Replaces the placeholders of `stmt` by `values` (`$1` is `values[0]`).
pub fn bind_parameters(stmt: &mut ParsedStatement, values: &[ScalarValue]) -> Result<()> {
    let StatementKind::Sql(sql) = &mut stmt.kind else {
        return if values.is_empty() {
            Ok(())
        } else {
            Err(Error::Unsupported("parameters in COPY and role statements".into()))
        };
    };
    let mut binder = Binder { values, error: None };
    let _ = sql.visit(&mut binder);
    match binder.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Binder<'a> {
    values: &'a [ScalarValue],
    error: Option<Error>,
}

impl VisitorMut for Binder<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Value(v) = expr else { return ControlFlow::Continue(()) };
        let Value::Placeholder(p) = &v.value else { return ControlFlow::Continue(()) };
        let index = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).filter(|n| *n >= 1);
        let Some(value) = index.and_then(|i| self.values.get(i - 1)) else {
            self.error = Some(Error::Invalid(format!("there is no parameter {p}")));
            return ControlFlow::Break(());
        };
        match literal(value) {
            Ok(e) => *expr = e,
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn cast(text: String, data_type: SqlType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::value(Value::SingleQuotedString(text))),
        data_type,
        array: false,
        format: None,
    }
}

/// A literal expression with the value's type.
fn literal(value: &ScalarValue) -> Result<Expr> {
    if value.is_null() {
        let text = Expr::value(Value::Null);
        return Ok(match sql_type(&value.data_type()) {
            Some(t) => Expr::Cast { kind: CastKind::Cast, expr: Box::new(text), data_type: t, array: false, format: None },
            None => text,
        });
    }
    let data_type = value.data_type();
    Ok(match value {
        ScalarValue::Boolean(Some(b)) => Expr::value(Value::Boolean(*b)),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            Expr::value(Value::SingleQuotedString(s.clone()))
        }
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Expr::Function(datafusion::sql::sqlparser::ast::Function {
                name: datafusion::sql::sqlparser::ast::ObjectName::from(vec![
                    datafusion::sql::sqlparser::ast::Ident::new("decode"),
                ]),
                uses_odbc_syntax: false,
                parameters: datafusion::sql::sqlparser::ast::FunctionArguments::None,
                args: datafusion::sql::sqlparser::ast::FunctionArguments::List(
                    datafusion::sql::sqlparser::ast::FunctionArgumentList {
                        duplicate_treatment: None,
                        args: vec![
                            datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                                datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::value(
                                    Value::SingleQuotedString(hex),
                                )),
                            ),
                            datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                                datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(Expr::value(
                                    Value::SingleQuotedString("hex".into()),
                                )),
                            ),
                        ],
                        clauses: vec![],
                    },
                ),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            })
        }
        _ => match sql_type(&data_type) {
            Some(t) => {
                // Arrow's cast gives the canonical text (ISO dates and timestamps, exact decimals).
                let text = match value.cast_to(&DataType::Utf8) {
                    Ok(ScalarValue::Utf8(Some(s))) => s,
                    _ => value.to_string(),
                };
                cast(text, t)
            }
            None => {
                return Err(Error::Unsupported(format!("parameters of type {data_type}")));
            }
        },
    })
}

fn sql_type(data_type: &DataType) -> Option<SqlType> {
    Some(match data_type {
        DataType::Boolean => SqlType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::SmallInt(None),
        DataType::Int32 | DataType::UInt16 => SqlType::Integer(None),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::BigInt(None),
        DataType::Float16 | DataType::Float32 => SqlType::Real,
        DataType::Float64 => SqlType::DoublePrecision,
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            SqlType::Decimal(ExactNumberInfo::PrecisionAndScale(*p as u64, *s as i64))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::Text,
        DataType::Date32 | DataType::Date64 => SqlType::Date,
        DataType::Timestamp(_, None) => SqlType::Timestamp(None, TimezoneInfo::None),
        DataType::Timestamp(_, Some(_)) => SqlType::Timestamp(None, TimezoneInfo::WithTimeZone),
        DataType::Time32(_) | DataType::Time64(_) => SqlType::Time(None, TimezoneInfo::None),
        DataType::Interval(_) => SqlType::Interval { fields: None, precision: None },
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytea,
        DataType::Null => return None,
        _ => return None,
    })
}
