//! Splits SQL text into statements and parses each, with Kura's own grammar where PostgreSQL's
//! parser has none (COPY with Kura's options).

use datafusion::sql::sqlparser::ast::{ObjectName, Query, Statement};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{IsOptional, Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token};

use crate::dialect::KuraDialect;
use crate::{Error, Result};

/// One parsed statement and the text it came from.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// What the statement is.
    pub kind: StatementKind,
    /// The statement's own text, without the trailing semicolon.
    pub text: String,
}

/// Statements Kura plans itself, beside those sqlparser knows.
#[derive(Debug, Clone)]
pub enum StatementKind {
    /// Any statement in sqlparser's grammar.
    Sql(Box<Statement>),
    /// `COPY ... FROM` / `COPY ... TO`, with Kura's options.
    Copy(Box<CopyStatement>),
    /// Roles, users, `GRANT` and `REVOKE`, in PostgreSQL's grammar.
    Access(Box<crate::access::AccessStatement>),
    /// Policies: `CREATE/DROP ... POLICY`, attaching them with `ALTER TABLE`, `SHOW POLICIES`.
    Policy(Box<crate::policy::PolicyStatement>),
    /// `CREATE EXTRACT`: a k-anonymous extract of a query.
    Extract(Box<crate::extract::ExtractStatement>),
    /// `EXPLAIN PRIVACY`: which policies a query or extract is subject to, and what they did.
    ExplainPrivacy(Box<crate::policy::ExplainPrivacy>),
    /// Research-ID linkage: `CREATE/DROP LINKAGE SOURCE`, `SHOW LINKAGE SOURCES`, `LINK`.
    Linkage(Box<crate::linkage::LinkageStatement>),
    /// `PROVIDE`: an approved export for a recipient, with its manifest and record.
    Provide(Box<crate::provision::ProvideStatement>),
    /// `ERASE PERSON`, `ERASE FROM ... WHERE`, `VACUUM ALL`: physical removal.
    Erase(Box<crate::erase::EraseStatement>),
    /// `OPTIMIZE table [ZORDER BY (...) | ORDER BY (...)]`: rewriting files for faster reads.
    Optimize(Box<crate::optimize::OptimizeStatement>),
}

/// What `COPY` reads or writes.
#[derive(Debug, Clone)]
pub enum CopySource {
    /// A table, optionally restricted to some columns.
    Table {
        /// Table name.
        name: ObjectName,
        /// Column list; empty means all.
        columns: Vec<String>,
    },
    /// A query (`COPY (SELECT ...) TO ...`).
    Query(Box<Query>),
}

/// Where `COPY` reads from or writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyEndpoint {
    /// A file path, resolved against the session's base directory.
    File(String),
    /// The client connection (`STDIN` / `STDOUT`).
    Client,
}

/// A parsed `COPY` statement.
#[derive(Debug, Clone)]
pub struct CopyStatement {
    /// The table or query.
    pub source: CopySource,
    /// `true` for `COPY ... TO`, `false` for `COPY ... FROM`.
    pub to: bool,
    /// The file or client.
    pub endpoint: CopyEndpoint,
    /// Options as (lower-case name, value) in the order written. A bare option has value "true".
    pub options: Vec<(String, String)>,
}

/// Parses SQL text holding any number of statements separated by `;`.
pub fn parse_sql(sql: &str) -> Result<Vec<ParsedStatement>> {
    let dialect = KuraDialect::default();
    let syntax_error = |e| syntax_error_in(sql, e);
    let mut parser = Parser::new(&dialect).try_with_sql(sql).map_err(syntax_error)?;
    let mut out = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        let next = parser.peek_token();
        if next.token == Token::EOF {
            break;
        }
        if expecting_delimiter {
            return Err(syntax_error(
                parser.expected::<()>("end of statement", next).unwrap_err(),
            ));
        }
        let start = next.span.start;
        let kind = if crate::extract::at_extract(&parser) {
            StatementKind::Extract(Box::new(crate::extract::parse(&mut parser).map_err(syntax_error)?))
        } else if crate::optimize::at_optimize(&parser) {
            StatementKind::Optimize(Box::new(crate::optimize::parse(&mut parser).map_err(syntax_error)?))
        } else if crate::erase::at_erase(&parser) {
            StatementKind::Erase(Box::new(crate::erase::parse(&mut parser).map_err(syntax_error)?))
        } else if crate::provision::at_provide(&parser) {
            StatementKind::Provide(Box::new(crate::provision::parse(&mut parser).map_err(syntax_error)?))
        } else if crate::linkage::at_linkage(&parser) {
            StatementKind::Linkage(Box::new(crate::linkage::parse(&mut parser).map_err(syntax_error)?))
        } else if crate::policy::explain::at_explain_privacy(&parser) {
            StatementKind::ExplainPrivacy(Box::new(crate::policy::explain::parse(&mut parser).map_err(syntax_error)?))
        } else if crate::policy::at_policy_statement(&parser) {
            StatementKind::Policy(Box::new(crate::policy::parse(&mut parser, sql).map_err(syntax_error)?))
        } else if crate::access::at_access_statement(&parser) {
            StatementKind::Access(Box::new(crate::access::parse(&mut parser).map_err(syntax_error)?))
        } else if parser.parse_keyword(Keyword::COPY) {
            StatementKind::Copy(Box::new(parse_copy(&mut parser).map_err(syntax_error)?))
        } else {
            StatementKind::Sql(Box::new(parser.parse_statement().map_err(syntax_error)?))
        };
        let end = parser.peek_token().span.start;
        out.push(ParsedStatement { kind, text: slice_between(sql, start, end).trim().to_string() });
        expecting_delimiter = true;
    }
    Ok(out)
}

fn parse_copy(parser: &mut Parser<'_>) -> Result<CopyStatement, ParserError> {
    let source = if parser.consume_token(&Token::LParen) {
        let q = parser.parse_query()?;
        parser.expect_token(&Token::RParen)?;
        CopySource::Query(q)
    } else {
        let name = parser.parse_object_name(false)?;
        let columns = parser
            .parse_parenthesized_column_list(IsOptional::Optional, false)?
            .into_iter()
            .map(|i| crate::names::normalize_ident(&i))
            .collect();
        CopySource::Table { name, columns }
    };
    let to = match parser.parse_one_of_keywords(&[Keyword::FROM, Keyword::TO]) {
        Some(Keyword::TO) => true,
        Some(_) => false,
        None => return parser.expected("FROM or TO", parser.peek_token()),
    };
    if !to && matches!(source, CopySource::Query(_)) {
        return Err(ParserError::ParserError("COPY (query) can only be used with TO".into()));
    }
    let endpoint = if parser.parse_keyword(Keyword::STDIN) || parser.parse_keyword(Keyword::STDOUT) {
        CopyEndpoint::Client
    } else {
        CopyEndpoint::File(parser.parse_literal_string()?)
    };
    let _ = parser.parse_keyword(Keyword::WITH);
    let mut options = Vec::new();
    if parser.consume_token(&Token::LParen) {
        loop {
            let name = match parser.next_token().token {
                Token::Word(w) => w.value.to_ascii_lowercase(),
                _ => return parser.expected("a COPY option name", parser.peek_token()),
            };
            let value = match parser.peek_token().token {
                Token::Comma | Token::RParen => "true".to_string(),
                _ => match parser.next_token().token {
                    Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => s,
                    Token::Number(n, _) => n,
                    Token::Word(w) => w.value,
                    other => {
                        return Err(ParserError::ParserError(format!(
                            "unexpected {other} as value of COPY option {name}"
                        )));
                    }
                },
            };
            options.push((name, value));
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            parser.expect_token(&Token::RParen)?;
            break;
        }
    }
    Ok(CopyStatement { source, to, endpoint, options })
}

/// Parses one query given as text (a stored definition).
pub(crate) fn parse_query(text: &str) -> Result<Box<datafusion::sql::sqlparser::ast::Query>> {
    let dialect = KuraDialect::default();
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(|e| syntax_error_in(text, e))?;
    let query = parser.parse_query().map_err(|e| syntax_error_in(text, e))?;
    if !matches!(parser.peek_token().token, Token::EOF | Token::SemiColon) {
        return Err(Error::Invalid(format!("expected one query, found more: {text}")));
    }
    Ok(query)
}

/// Parses a (possibly qualified) object name given as text, e.g. a COPY option value.
pub fn parse_object_name(text: &str) -> Result<ObjectName> {
    let dialect = KuraDialect::default();
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(syntax_error)?;
    let name = parser.parse_object_name(false).map_err(syntax_error)?;
    if parser.peek_token().token != Token::EOF {
        return Err(Error::Invalid(format!("\"{text}\" is not a valid object name")));
    }
    Ok(name)
}

/// A syntax error in `sql`; errors at the end of input point just after its last character.
fn syntax_error_in(sql: &str, err: ParserError) -> Error {
    match syntax_error(err) {
        Error::Syntax { message, line: 0, .. } => {
            let trimmed = sql.trim_end();
            let line = trimmed.lines().count().max(1) as u64;
            let column = trimmed.lines().last().map(|l| l.chars().count() + 1).unwrap_or(1) as u64;
            Error::Syntax { message, line, column }
        }
        other => other,
    }
}

/// Converts a parser error into a syntax error with line and column.
pub(crate) fn syntax_error(err: ParserError) -> Error {
    let text = match err {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".into(),
    };
    // sqlparser appends " at Line: L, Column: C".
    if let Some(idx) = text.rfind(" at Line: ") {
        let (msg, pos) = text.split_at(idx);
        let nums: Vec<u64> =
            pos.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
        if let [line, column] = nums[..] {
            return Error::Syntax { message: msg.trim().to_string(), line, column };
        }
    }
    Error::Syntax { message: text, line: 0, column: 0 }
}

/// The text between two token locations (1-based line and column, columns in characters).
pub(crate) fn slice_between(sql: &str, start: Location, end: Location) -> &str {
    let a = offset_of(sql, start).unwrap_or(0);
    let b = offset_of(sql, end).unwrap_or(sql.len());
    let s = sql.get(a..b.max(a)).unwrap_or("");
    s.trim_end().trim_end_matches(';')
}

fn offset_of(sql: &str, loc: Location) -> Option<usize> {
    if loc.line == 0 {
        return None;
    }
    let mut line = 1;
    let mut col = 1;
    for (i, ch) in sql.char_indices() {
        if line == loc.line && col == loc.column {
            return Some(i);
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_keeps_text() {
        let stmts = parse_sql("SELECT 1;\n  COPY t (a, b) FROM 'x.csv' WITH (FORMAT csv, HEADER, ENCODING 'shift_jis');;SELECT 2")
            .unwrap();
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[0].text, "SELECT 1");
        assert!(stmts[1].text.starts_with("COPY t (a, b) FROM"));
        match &stmts[1].kind {
            StatementKind::Copy(c) => {
                assert!(!c.to);
                assert_eq!(c.endpoint, CopyEndpoint::File("x.csv".into()));
                assert_eq!(
                    c.options,
                    vec![
                        ("format".into(), "csv".into()),
                        ("header".into(), "true".into()),
                        ("encoding".into(), "shift_jis".into())
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse_sql("SELECT 1;\nSELEC 2").unwrap_err();
        match err {
            Error::Syntax { line, column, .. } => assert_eq!((line, column), (2, 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn time_travel_parses() {
        parse_sql("SELECT * FROM t VERSION AS OF 3").unwrap();
        parse_sql("SELECT * FROM t TIMESTAMP AS OF '2026-01-01 00:00:00'").unwrap();
    }
}
