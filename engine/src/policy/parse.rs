//! The policy statements' grammar (modelled on Snowflake's, which sqlparser does not parse):
//!
//! ```sql
//! CREATE [OR REPLACE] MASKING POLICY [IF NOT EXISTS] name AS (v DATE [, other TEXT ...]) RETURNS DATE -> body [COMMENT 'text']
//! CREATE [OR REPLACE] ROW ACCESS POLICY name AS (rid TEXT [, ...]) RETURNS BOOLEAN -> body
//! CREATE [OR REPLACE] PROJECTION POLICY name AS () RETURNS BOOLEAN -> body
//! CREATE [OR REPLACE] AGGREGATION POLICY name AS () RETURNS INT -> body
//! DROP [MASKING | ROW ACCESS | PROJECTION | AGGREGATION] POLICY [IF EXISTS] name [, ...]
//! ALTER TABLE t ALTER [COLUMN] c SET MASKING POLICY p [USING (c, other, ...)]
//! ALTER TABLE t ALTER [COLUMN] c UNSET MASKING POLICY
//! ALTER TABLE t ALTER [COLUMN] c SET PROJECTION POLICY p
//! ALTER TABLE t ALTER [COLUMN] c UNSET PROJECTION POLICY
//! ALTER TABLE t ADD ROW ACCESS POLICY p ON (c [, ...])
//! ALTER TABLE t DROP ROW ACCESS POLICY p
//! ALTER TABLE t SET AGGREGATION POLICY p [ENTITY KEY (c [, ...])]
//! ALTER TABLE t UNSET AGGREGATION POLICY
//! SHOW POLICIES [ON t]
//! ```

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{IsOptional, Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use kura_catalog::{PolicyKind, PolicyParam};

use crate::names::normalize_ident;

/// A parsed policy statement.
#[derive(Debug, Clone)]
pub enum PolicyStatement {
    /// `CREATE ... POLICY`.
    Create {
        /// Kind of policy.
        kind: PolicyKind,
        /// Name.
        name: String,
        /// `OR REPLACE`.
        or_replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// Parameters.
        params: Vec<PolicyParam>,
        /// Return type as written.
        returns: String,
        /// Body expression as written.
        body: String,
        /// `COMMENT '...'`.
        comment: String,
    },
    /// `DROP ... POLICY`.
    Drop {
        /// The kind named, if any (it must then match).
        kind: Option<PolicyKind>,
        /// Names.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `ALTER TABLE ... {SET | UNSET | ADD | DROP} ... POLICY`.
    Attach {
        /// The table.
        table: ObjectName,
        /// The change.
        change: kura_catalog::PolicyAttachment,
    },
    /// `CREATE PSEUDONYM KEY name`: a new random key for `pseudonymize` in policy bodies.
    CreateKey {
        /// Key name.
        name: String,
    },
    /// `SHOW PSEUDONYM KEYS`: key names (never key bytes).
    ShowKeys,
    /// `SHOW POLICIES [ON t]`.
    Show {
        /// Only the policies attached to this table.
        table: Option<ObjectName>,
    },
}

pub(crate) fn word(parser: &Parser<'_>, n: usize) -> Option<String> {
    match parser.peek_nth_token(n).token {
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Whether the parser is at a policy statement.
pub(crate) fn at_policy_statement(parser: &Parser<'_>) -> bool {
    let w = |n| word(parser, n);
    match w(0).as_deref() {
        Some("SHOW") => {
            w(1).as_deref() == Some("POLICIES") || (w(1).as_deref() == Some("PSEUDONYM") && w(2).as_deref() == Some("KEYS"))
        }
        Some("CREATE") if w(1).as_deref() == Some("PSEUDONYM") => w(2).as_deref() == Some("KEY"),
        Some("CREATE") | Some("DROP") => {
            let mut i = 1;
            if w(1).as_deref() == Some("OR") && w(2).as_deref() == Some("REPLACE") {
                i = 3;
            }
            match w(i).as_deref() {
                Some("MASKING" | "PROJECTION" | "AGGREGATION") => w(i + 1).as_deref() == Some("POLICY"),
                Some("ROW") => w(i + 1).as_deref() == Some("ACCESS") && w(i + 2).as_deref() == Some("POLICY"),
                Some("POLICY") => w(0).as_deref() == Some("DROP"),
                _ => false,
            }
        }
        Some("ALTER") if w(1).as_deref() == Some("TABLE") => {
            // `ALTER TABLE` changing policies names POLICY before the statement ends.
            let mut n = 2;
            loop {
                match parser.peek_nth_token(n).token {
                    Token::SemiColon | Token::EOF => return false,
                    Token::Word(w) if w.value.eq_ignore_ascii_case("POLICY") => return true,
                    _ => n += 1,
                }
                if n > 64 {
                    return false;
                }
            }
        }
        _ => false,
    }
}

pub(crate) fn expect_word(parser: &mut Parser<'_>, expected: &str) -> Result<(), ParserError> {
    match parser.next_token().token {
        Token::Word(w) if w.value.eq_ignore_ascii_case(expected) => Ok(()),
        other => Err(ParserError::ParserError(format!("expected {expected}, found {other}"))),
    }
}

pub(crate) fn parse_word(parser: &mut Parser<'_>, expected: &str) -> bool {
    if word(parser, 0).as_deref() == Some(expected) {
        parser.next_token();
        true
    } else {
        false
    }
}

fn parse_kind(parser: &mut Parser<'_>) -> Result<Option<PolicyKind>, ParserError> {
    let kind = match word(parser, 0).as_deref() {
        Some("MASKING") => Some(PolicyKind::Masking),
        Some("PROJECTION") => Some(PolicyKind::Projection),
        Some("AGGREGATION") => Some(PolicyKind::Aggregation),
        Some("ROW") => {
            parser.next_token();
            expect_word(parser, "ACCESS")?;
            expect_word(parser, "POLICY")?;
            return Ok(Some(PolicyKind::RowAccess));
        }
        _ => None,
    };
    if kind.is_some() {
        parser.next_token();
    }
    expect_word(parser, "POLICY")?;
    Ok(kind)
}

fn name(parser: &mut Parser<'_>) -> Result<String, ParserError> {
    Ok(normalize_ident(&parser.parse_identifier()?))
}

fn column_list(parser: &mut Parser<'_>) -> Result<Vec<String>, ParserError> {
    Ok(parser
        .parse_parenthesized_column_list(IsOptional::Mandatory, false)?
        .iter()
        .map(normalize_ident)
        .collect())
}

/// Parses a statement for which [`at_policy_statement`] returned true. `sql` is the whole text
/// being parsed, from which the body is kept as written.
pub(crate) fn parse(parser: &mut Parser<'_>, sql: &str) -> Result<PolicyStatement, ParserError> {
    if word(parser, 0).as_deref() == Some("CREATE") && word(parser, 1).as_deref() == Some("PSEUDONYM") {
        parser.next_token();
        parser.next_token();
        expect_word(parser, "KEY")?;
        return Ok(PolicyStatement::CreateKey { name: name(parser)? });
    }
    if parse_word(parser, "SHOW") {
        if parse_word(parser, "PSEUDONYM") {
            expect_word(parser, "KEYS")?;
            return Ok(PolicyStatement::ShowKeys);
        }
        expect_word(parser, "POLICIES")?;
        let table = if parser.parse_keyword(Keyword::ON) { Some(parser.parse_object_name(false)?) } else { None };
        return Ok(PolicyStatement::Show { table });
    }
    if parser.parse_keyword(Keyword::DROP) {
        let kind = parse_kind(parser)?;
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let names = parser.parse_comma_separated(name)?;
        return Ok(PolicyStatement::Drop { kind, names, if_exists });
    }
    if parser.parse_keyword(Keyword::ALTER) {
        parser.expect_keyword(Keyword::TABLE)?;
        let table = parser.parse_object_name(false)?;
        return Ok(PolicyStatement::Attach { table, change: parse_attachment(parser)? });
    }
    parser.expect_keyword(Keyword::CREATE)?;
    let or_replace = parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
    let kind = parse_kind(parser)?
        .ok_or_else(|| ParserError::ParserError("CREATE POLICY needs a kind: MASKING, ROW ACCESS, PROJECTION or AGGREGATION".into()))?;
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let policy_name = name(parser)?;
    parser.expect_keyword(Keyword::AS)?;
    parser.expect_token(&Token::LParen)?;
    let mut params = Vec::new();
    if !parser.consume_token(&Token::RParen) {
        loop {
            let param = name(parser)?;
            let sql_type = parser.parse_data_type()?.to_string();
            params.push(PolicyParam { name: param, sql_type });
            if parser.consume_token(&Token::RParen) {
                break;
            }
            parser.expect_token(&Token::Comma)?;
        }
    }
    parser.expect_keyword(Keyword::RETURNS)?;
    let returns = parser.parse_data_type()?.to_string();
    parser.expect_token(&Token::Arrow)?;
    let start = parser.peek_token().span.start;
    parser.parse_expr()?;
    let end = parser.peek_token().span.start;
    let body = crate::parser::slice_between(sql, start, end).trim().to_string();
    let comment = if parser.parse_keyword(Keyword::COMMENT) {
        let _ = parser.consume_token(&Token::Eq);
        parser.parse_literal_string()?
    } else {
        String::new()
    };
    Ok(PolicyStatement::Create { kind, name: policy_name, or_replace, if_not_exists, params, returns, body, comment })
}

fn parse_attachment(parser: &mut Parser<'_>) -> Result<kura_catalog::PolicyAttachment, ParserError> {
    use kura_catalog::{AggregationAttachment, MaskAttachment, PolicyAttachment, RowFilterAttachment};
    if parser.parse_keyword(Keyword::ALTER) {
        let _ = parser.parse_keyword(Keyword::COLUMN);
        let column = name(parser)?;
        let set = match parser.parse_one_of_keywords(&[Keyword::SET, Keyword::UNSET]) {
            Some(Keyword::SET) => true,
            Some(_) => false,
            None => return parser.expected("SET or UNSET", parser.peek_token()),
        };
        let kind = parse_kind(parser)?;
        return match (kind, set) {
            (Some(PolicyKind::Masking), true) => {
                let policy = name(parser)?;
                let using = if parser.parse_keyword(Keyword::USING) { column_list(parser)? } else { vec![column.clone()] };
                if using.first() != Some(&column) {
                    return Err(ParserError::ParserError(format!(
                        "USING must list the masked column \"{column}\" first"
                    )));
                }
                Ok(PolicyAttachment::SetMask { column, mask: MaskAttachment { policy, using } })
            }
            (Some(PolicyKind::Masking), false) => Ok(PolicyAttachment::UnsetMask { column }),
            (Some(PolicyKind::Projection), true) => Ok(PolicyAttachment::SetProjection { column, policy: name(parser)? }),
            (Some(PolicyKind::Projection), false) => Ok(PolicyAttachment::UnsetProjection { column }),
            _ => Err(ParserError::ParserError("a column takes a MASKING or a PROJECTION policy".into())),
        };
    }
    if parser.parse_keyword(Keyword::ADD) {
        if parse_kind(parser)? != Some(PolicyKind::RowAccess) {
            return Err(ParserError::ParserError("ALTER TABLE ... ADD takes a ROW ACCESS POLICY".into()));
        }
        let policy = name(parser)?;
        parser.expect_keyword(Keyword::ON)?;
        let columns = column_list(parser)?;
        return Ok(PolicyAttachment::AddRowFilter(RowFilterAttachment { policy, columns }));
    }
    if parser.parse_keyword(Keyword::DROP) {
        if parse_kind(parser)? != Some(PolicyKind::RowAccess) {
            return Err(ParserError::ParserError("ALTER TABLE ... DROP takes a ROW ACCESS POLICY".into()));
        }
        return Ok(PolicyAttachment::DropRowFilter { policy: name(parser)? });
    }
    let set = match parser.parse_one_of_keywords(&[Keyword::SET, Keyword::UNSET]) {
        Some(Keyword::SET) => true,
        Some(_) => false,
        None => return parser.expected("ALTER COLUMN, ADD, DROP, SET or UNSET", parser.peek_token()),
    };
    if parse_kind(parser)? != Some(PolicyKind::Aggregation) {
        return Err(ParserError::ParserError(
            "ALTER TABLE ... SET/UNSET takes an AGGREGATION POLICY (column policies go through ALTER COLUMN)".into(),
        ));
    }
    if !set {
        return Ok(PolicyAttachment::UnsetAggregation);
    }
    let policy = name(parser)?;
    let entity_key = if parse_word(parser, "ENTITY") {
        parser.expect_keyword(Keyword::KEY)?;
        column_list(parser)?
    } else {
        vec![]
    };
    Ok(PolicyAttachment::SetAggregation(AggregationAttachment { policy, entity_key }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{StatementKind, parse_sql};

    fn policy(sql: &str) -> PolicyStatement {
        match parse_sql(sql).unwrap().remove(0).kind {
            StatementKind::Policy(p) => *p,
            other => panic!("not a policy statement: {other:?}"),
        }
    }

    #[test]
    fn create_keeps_the_body_as_written() {
        let p = policy(
            "CREATE OR REPLACE MASKING POLICY birth_month AS (v DATE) RETURNS DATE ->\n  CASE WHEN is_member('operator') THEN v ELSE date_trunc('month', v) END COMMENT 'year-month';",
        );
        match p {
            PolicyStatement::Create { kind, name, or_replace, params, returns, body, comment, .. } => {
                assert_eq!(kind, PolicyKind::Masking);
                assert_eq!(name, "birth_month");
                assert!(or_replace);
                assert_eq!(params, vec![PolicyParam { name: "v".into(), sql_type: "DATE".into() }]);
                assert_eq!(returns, "DATE");
                assert_eq!(body, "CASE WHEN is_member('operator') THEN v ELSE date_trunc('month', v) END");
                assert_eq!(comment, "year-month");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn alter_table_forms() {
        use kura_catalog::PolicyAttachment as A;
        assert!(matches!(
            policy("ALTER TABLE t ALTER COLUMN c SET MASKING POLICY m USING (c, d)"),
            PolicyStatement::Attach { change: A::SetMask { .. }, .. }
        ));
        assert!(matches!(
            policy("ALTER TABLE s.t ADD ROW ACCESS POLICY rf ON (research_id)"),
            PolicyStatement::Attach { change: A::AddRowFilter(_), .. }
        ));
        assert!(matches!(
            policy("ALTER TABLE t SET AGGREGATION POLICY k ENTITY KEY (research_id)"),
            PolicyStatement::Attach { change: A::SetAggregation(_), .. }
        ));
        assert!(matches!(policy("DROP ROW ACCESS POLICY IF EXISTS rf"), PolicyStatement::Drop { .. }));
        assert!(matches!(policy("SHOW POLICIES ON t"), PolicyStatement::Show { table: Some(_) }));
        assert!(parse_sql("ALTER TABLE t ALTER COLUMN c SET MASKING POLICY m USING (d, c)").is_err());
        // Ordinary ALTER TABLE is not taken.
        assert!(matches!(parse_sql("ALTER TABLE t ADD COLUMN c INT").unwrap()[0].kind, StatementKind::Sql(_)));
    }
}
