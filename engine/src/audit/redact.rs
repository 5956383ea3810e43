//! Redaction of the statement text the audit trail keeps: literal values that touch identity
//! columns (a name compared, a key inserted) and passwords never reach the audit table or its
//! journal.
//!
//! A statement that mentions no identity column (most analysts' queries: research tables carry
//! a research ID instead) is kept as written, after one substring scan. Otherwise:
//! - a plain SQL statement is parsed and, in every comparison, function call or CASE that
//!   involves an identity column, every literal is replaced; so are the values an INSERT puts
//!   into identity columns and the values an UPDATE assigns to them;
//! - role statements (`PASSWORD '...'`) and Kura's other statements that mention identity (OPT
//!   OUT's keys, policies) lose all their literals;
//! - text that cannot be read back at all is replaced whole.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, Query, Spanned, Statement, Value, Visit, visit_expressions,
};
use datafusion::sql::sqlparser::tokenizer::{Location, Span, Token, Tokenizer};

use crate::dialect::KuraDialect;
use crate::parser::{CopySource, StatementKind, parse_sql};

/// What replaces a redacted literal.
pub(crate) const REDACTED: &str = "'<redacted>'";

/// `text` as the audit trail keeps it. `identity` holds lower-case identity column names.
pub(crate) fn redact(text: &str, identity: &HashSet<String>) -> String {
    let lower = text.to_lowercase();
    let mentions_identity = identity.iter().any(|c| lower.contains(c.as_str()));
    // Passwords, and the keys of OPT OUT / OPT IN (source keys are identifiers).
    let mentions_secret = lower.contains("password") || lower.trim_start().starts_with("opt");
    // An INSERT without a column list may put values into identity columns unnamed.
    let insert = lower.trim_start().starts_with("insert");
    if !mentions_identity && !mentions_secret && !insert {
        return text.to_string();
    }
    let spans = match parse_sql(text) {
        Ok(stmts) if stmts.len() == 1 => match &stmts[0].kind {
            StatementKind::Sql(stmt) if !mentions_secret => Some(statement_spans(stmt, identity)),
            StatementKind::Copy(copy) if !mentions_secret => Some(match &copy.source {
                CopySource::Query(q) => query_spans(q, identity),
                CopySource::Table { .. } => vec![],
            }),
            _ => None,
        },
        _ => None,
    };
    match spans {
        Some(spans) => replace_spans(text, spans),
        None => redact_all_literals(text),
    }
}

/// `identity` plus every alias the statement gives an expression over identity columns
/// (`SELECT name_kana AS n ...`), so that `WHERE n = '...'` outside is redacted too.
fn with_aliases<V: Visit>(node: &V, identity: &HashSet<String>) -> HashSet<String> {
    use datafusion::sql::sqlparser::ast::{SelectItem, Visitor};
    struct Aliases<'a> {
        known: &'a HashSet<String>,
        found: Vec<String>,
    }
    impl Visitor for Aliases<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> std::ops::ControlFlow<()> {
            let mut selects = Vec::new();
            collect_selects(&q.body, &mut selects);
            for select in selects {
                for item in &select.projection {
                    if let SelectItem::ExprWithAlias { expr, alias } = item
                        && mentions_identity(expr, self.known)
                    {
                        self.found.push(alias.value.to_lowercase());
                    }
                }
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    fn collect_selects<'a>(body: &'a datafusion::sql::sqlparser::ast::SetExpr, out: &mut Vec<&'a datafusion::sql::sqlparser::ast::Select>) {
        use datafusion::sql::sqlparser::ast::SetExpr;
        match body {
            SetExpr::Select(s) => out.push(s),
            SetExpr::SetOperation { left, right, .. } => {
                collect_selects(left, out);
                collect_selects(right, out);
            }
            SetExpr::Query(q) => collect_selects(&q.body, out),
            _ => {}
        }
    }
    let mut names = identity.clone();
    // Aliases of aliases: until nothing new turns up (bounded by the statement's size).
    loop {
        let mut v = Aliases { known: &names, found: vec![] };
        let _ = node.visit(&mut v);
        let before = names.len();
        names.extend(v.found);
        if names.len() == before {
            return names;
        }
    }
}

/// Spans of the literals of `stmt` that touch identity columns.
fn statement_spans(stmt: &Statement, identity: &HashSet<String>) -> Vec<Span> {
    let identity = &with_aliases(stmt, identity);
    let mut spans = touching_spans(stmt, identity);
    match stmt {
        Statement::Insert(insert) => {
            let names: Vec<String> = insert.columns.iter().map(|c| c.to_string().trim_matches('"').to_lowercase()).collect();
            // Without a column list the values' columns are unknown here: all of them go.
            if names.is_empty() || names.iter().any(|n| identity.contains(n)) {
                if let Some(source) = &insert.source {
                    spans.extend(literal_spans(source.as_ref()));
                }
            }
        }
        Statement::Update(update) => {
            for a in &update.assignments {
                let targets: Vec<String> = match &a.target {
                    AssignmentTarget::ColumnName(n) => vec![n.to_string()],
                    AssignmentTarget::Tuple(ns) => ns.iter().map(|n| n.to_string()).collect(),
                };
                if targets.iter().any(|t| is_identity_name(t, identity)) {
                    spans.extend(literal_spans(&a.value));
                }
            }
        }
        _ => {}
    }
    spans
}

fn query_spans(query: &Query, identity: &HashSet<String>) -> Vec<Span> {
    touching_spans(query, &with_aliases(query, identity))
}

/// Literals inside every comparison, call or CASE that involves an identity column.
fn touching_spans<V: Visit>(node: &V, identity: &HashSet<String>) -> Vec<Span> {
    let mut spans = Vec::new();
    let _ = visit_expressions(node, |e: &Expr| {
        let connective = matches!(
            e,
            Expr::BinaryOp { op: BinaryOperator::And | BinaryOperator::Or | BinaryOperator::Xor, .. }
                | Expr::Nested(_)
                | Expr::Value(_)
                | Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
        ) || matches!(e, Expr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Not, .. });
        if !connective && mentions_identity(e, identity) {
            spans.extend(literal_spans(e));
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    spans
}

fn is_identity_name(name: &str, identity: &HashSet<String>) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name).trim_matches('"');
    identity.contains(&last.to_lowercase())
}

fn mentions_identity(e: &Expr, identity: &HashSet<String>) -> bool {
    let mut found = false;
    let _ = visit_expressions(e, |x: &Expr| {
        match x {
            Expr::Identifier(i) => found |= identity.contains(&i.value.to_lowercase()),
            Expr::CompoundIdentifier(parts) => {
                found |= parts.last().is_some_and(|i| identity.contains(&i.value.to_lowercase()))
            }
            _ => {}
        }
        if found { std::ops::ControlFlow::Break(()) } else { std::ops::ControlFlow::Continue(()) }
    });
    found
}

fn literal_spans<V: Visit>(node: &V) -> Vec<Span> {
    let mut spans = Vec::new();
    let _ = visit_expressions(node, |x: &Expr| {
        if let Expr::Value(v) = x
            && !matches!(v.value, Value::Null | Value::Boolean(_) | Value::Placeholder(_))
        {
            spans.push(v.span());
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    spans
}

/// Every string and number literal of `text` replaced (role statements, Kura's statements).
fn redact_all_literals(text: &str) -> String {
    let dialect = KuraDialect::default();
    let Ok(tokens) = Tokenizer::new(&dialect, text).tokenize_with_location() else {
        return "<statement not kept: it could not be read and may hold identity values>".to_string();
    };
    let spans = tokens
        .into_iter()
        .filter(|t| {
            matches!(
                t.token,
                Token::SingleQuotedString(_)
                    | Token::NationalStringLiteral(_)
                    | Token::EscapedStringLiteral(_)
                    | Token::UnicodeStringLiteral(_)
                    | Token::HexStringLiteral(_)
                    | Token::DollarQuotedString(_)
                    | Token::SingleQuotedByteStringLiteral(_)
                    | Token::Number(..)
            )
        })
        .map(|t| t.span)
        .collect();
    replace_spans(text, spans)
}

/// Replaces each span (1-based line and column, in characters) of `text` by [`REDACTED`].
fn replace_spans(text: &str, mut spans: Vec<Span>) -> String {
    spans.retain(|s| s.start.line > 0 && s.end.line > 0);
    if spans.is_empty() {
        return text.to_string();
    }
    let offset = |loc: Location| -> Option<usize> {
        let line_start = if loc.line == 1 {
            0
        } else {
            text.match_indices('\n').nth(loc.line as usize - 2).map(|(i, _)| i + 1)?
        };
        let line = &text[line_start..];
        let col = loc.column as usize - 1;
        Some(line_start + line.char_indices().nth(col).map(|(i, _)| i).unwrap_or(line.len()))
    };
    let mut ranges: Vec<(usize, usize)> =
        spans.iter().filter_map(|s| Some((offset(s.start)?, offset(s.end)?))).filter(|(a, b)| a < b).collect();
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start < at {
            continue; // nested in a range already replaced
        }
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// Single-quoted parts of an error message (values the engine quoted) replaced.
pub(crate) fn redact_error(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find('\'') {
        out.push_str(&rest[..i]);
        match rest[i + 1..].find('\'') {
            Some(j) => {
                out.push_str(REDACTED);
                rest = &rest[i + 1 + j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> HashSet<String> {
        ["name_kana", "source_key", "birth_date", "kanji_name"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn statements_without_identity_are_kept() {
        let q = "SELECT count(*) FROM research.checkups WHERE fiscal_year = 2024 AND sex = '1'";
        assert_eq!(redact(q, &ids()), q);
    }

    #[test]
    fn comparisons_with_identity_columns_lose_their_values() {
        let got = redact("SELECT * FROM p WHERE name_kana = 'ヤマダ タロウ' AND fiscal_year = 2024", &ids());
        assert_eq!(got, "SELECT * FROM p WHERE name_kana = '<redacted>' AND fiscal_year = 2024");
        let got = redact("select 1 from p where upper(p.kanji_name) like '山田%'\n  or birth_date between '1950-01-01' and '1950-12-31'", &ids());
        assert!(!got.contains("山田") && !got.contains("1950"), "{got}");
        let got = redact("SELECT * FROM p WHERE source_key IN ('A-1', 'A-2')", &ids());
        assert!(!got.contains("A-1") && !got.contains("A-2"), "{got}");
        let got = redact("SELECT * FROM p WHERE 'ヤマダ' = NAME_KANA", &ids());
        assert!(!got.contains("ヤマダ"), "{got}");
    }

    #[test]
    fn aliases_of_identity_columns_are_followed() {
        let got = redact("SELECT * FROM (SELECT name_kana AS n, ward FROM p) q WHERE q.n = 'ヤマダ' AND ward = 'east'", &ids());
        assert!(!got.contains("ヤマダ") && got.contains("ward = 'east'"), "{got}");
        let got = redact(
            "WITH a AS (SELECT upper(kanji_name) AS k FROM p), b AS (SELECT k AS kk FROM a) SELECT * FROM b WHERE kk LIKE '山田%'",
            &ids(),
        );
        assert!(!got.contains("山田"), "{got}");
    }

    #[test]
    fn written_identity_values_are_redacted() {
        let got = redact("INSERT INTO p (id, name_kana) VALUES (1, 'ヤマダ'), (2, 'スズキ')", &ids());
        assert!(!got.contains("ヤマダ") && !got.contains("スズキ"), "{got}");
        let got = redact("INSERT INTO hospital.p VALUES (1, 'ヤマダ')", &ids());
        assert!(!got.contains("ヤマダ"), "{got}");
        let got = redact("UPDATE p SET name_kana = 'サトウ' WHERE id = 3", &ids());
        assert!(!got.contains("サトウ") && got.contains("id = 3"), "{got}");
    }

    #[test]
    fn passwords_and_kura_statements_lose_all_literals() {
        let got = redact("CREATE USER alice PASSWORD 'secret-pw'", &ids());
        assert!(!got.contains("secret-pw"), "{got}");
        let got = redact("OPT OUT hospital KEY 'H-0001' NOTE 'letter'", &ids());
        assert!(!got.contains("H-0001"), "{got}");
        let got = redact("SELECT * FROM p WHERE name_kana = 'unterminated", &ids());
        assert!(!got.contains("unterminated"), "{got}");
    }

    #[test]
    fn error_values_are_redacted() {
        assert_eq!(redact_error("Cannot cast string 'ヤマダ' to Int64"), "Cannot cast string '<redacted>' to Int64");
        assert_eq!(redact_error("table \"x\" not found"), "table \"x\" not found");
    }
}
