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

/// The number of a `$n` placeholder (`$1` is 1).
fn placeholder_index(placeholder: &str) -> Option<usize> {
    placeholder.strip_prefix('$')?.parse().ok().filter(|n| *n >= 1)
}

/// `CAST(expr AS data_type)`.
fn cast_expr(expr: Expr, data_type: SqlType) -> Expr {
    Expr::Cast { kind: CastKind::Cast, expr: Box::new(expr), data_type, array: false, format: None }
}

/// A call of the function `name` with positional arguments, as the SQL parser would build it.
pub(crate) fn function_call(name: &str, args: Vec<Expr>) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// Parameter types the statement states itself: `$n::type`, `CAST($n AS type)`, `LIMIT $n`,
/// `OFFSET $n`.
pub(crate) fn written_parameter_types(stmt: &datafusion::sql::sqlparser::ast::Statement) -> std::collections::HashMap<usize, DataType> {
    use datafusion::sql::sqlparser::ast::{LimitClause, Query, Visit, Visitor};
    struct Finder(std::collections::HashMap<usize, DataType>);
    fn index(e: &Expr) -> Option<usize> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) => placeholder_index(p),
                _ => None,
            },
            Expr::Nested(inner) => index(inner),
            _ => None,
        }
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Cast { expr, data_type, .. } = expr {
                if let (Some(i), Some(t)) = (index(expr), arrow_type(data_type)) {
                    self.0.entry(i).or_insert(t);
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(LimitClause::LimitOffset { limit, offset, .. }) = &query.limit_clause {
                for e in limit.iter().chain(offset.iter().map(|o| &o.value)) {
                    if let Some(i) = index(e) {
                        self.0.entry(i).or_insert(DataType::Int64);
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(Default::default());
    let _ = stmt.visit(&mut finder);
    finder.0
}

/// Wraps each placeholder whose type the client declared (in Parse) in a cast to that type, so
/// planning types the statement as the client will bind it.
pub(crate) fn declare_parameter_types(stmt: &mut datafusion::sql::sqlparser::ast::Statement, declared: &[Option<DataType>]) {
    struct Declarer<'a>(&'a [Option<DataType>]);
    impl VisitorMut for Declarer<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Value(v) = expr else { return ControlFlow::Continue(()) };
            let Value::Placeholder(p) = &v.value else { return ControlFlow::Continue(()) };
            let declared = placeholder_index(p).and_then(|i| self.0.get(i - 1).cloned().flatten());
            if let Some(t) = declared.as_ref().and_then(sql_type) {
                *expr = cast_expr(expr.clone(), t);
            }
            ControlFlow::Continue(())
        }
    }
    if declared.iter().any(Option::is_some) {
        let _ = stmt.visit(&mut Declarer(declared));
    }
}

/// The Arrow type of a SQL type name, for the common scalar types.
fn arrow_type(t: &SqlType) -> Option<DataType> {
    use datafusion::arrow::datatypes::TimeUnit;
    Some(match t {
        SqlType::Boolean | SqlType::Bool => DataType::Boolean,
        SqlType::SmallInt(_) | SqlType::Int2(_) => DataType::Int16,
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => DataType::Int32,
        SqlType::BigInt(_) | SqlType::Int8(_) => DataType::Int64,
        SqlType::Real | SqlType::Float4 => DataType::Float32,
        SqlType::DoublePrecision | SqlType::Double(_) | SqlType::Float8 => DataType::Float64,
        SqlType::Numeric(_) | SqlType::Decimal(_) | SqlType::Dec(_) => DataType::Decimal128(38, 10),
        SqlType::Text | SqlType::Varchar(_) | SqlType::CharacterVarying(_) | SqlType::Char(_) | SqlType::String(_) => {
            DataType::Utf8
        }
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        SqlType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        SqlType::Bytea => DataType::Binary,
        _ => return None,
    })
}

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
    if let Some(e) = binder.error {
        return Err(e);
    }
    if !values.is_empty() {
        // Later stages may re-read the text (client catalog queries are re-parsed for
        // compatibility rewrites): it must carry the bound values too.
        stmt.text = sql.to_string();
    }
    Ok(())
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
        let Some(value) = placeholder_index(p).and_then(|i| self.values.get(i - 1)) else {
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

/// A literal expression with the value's type.
fn literal(value: &ScalarValue) -> Result<Expr> {
    if value.is_null() {
        let text = Expr::value(Value::Null);
        return Ok(match sql_type(&value.data_type()) {
            Some(t) => cast_expr(text, t),
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
            function_call(
                "decode",
                vec![Expr::value(Value::SingleQuotedString(hex)), Expr::value(Value::SingleQuotedString("hex".into()))],
            )
        }
        _ => match sql_type(&data_type) {
            Some(t) => {
                // Arrow's cast gives the canonical text (ISO dates and timestamps, exact decimals).
                let text = match value.cast_to(&DataType::Utf8) {
                    Ok(ScalarValue::Utf8(Some(s))) => s,
                    _ => value.to_string(),
                };
                cast_expr(Expr::value(Value::SingleQuotedString(text)), t)
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
