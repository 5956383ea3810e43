//! Roles, users and privileges: PostgreSQL's `CREATE ROLE/USER`, `ALTER ROLE/USER`,
//! `DROP ROLE/USER`, `GRANT` and `REVOKE` (parsed here, since sqlparser follows other dialects for
//! several of them), and the checks every statement passes before it touches data.
//!
//! Sessions opened for a logged-in user ([`crate::Engine::login_session`]) are checked; embedded
//! sessions ([`crate::Engine::session`]) act for whoever holds the warehouse's storage
//! credentials and are not, since such a caller can read the files directly anyway.

use std::collections::BTreeSet;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, TableScan};
use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use kura_catalog::{CatalogState, Grant, GrantObject, Privilege, RoleEntry};

use crate::names::{normalize_ident, qualified, schema_name};
use crate::scram::ScramVerifier;
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

tokio::task_local! {
    /// The role whose rights apply while a view's definition is planned: the view's owner.
    pub(crate) static ACTING_ROLE: String;
}

/// Schemas that describe the warehouse rather than hold data; they filter themselves.
pub(crate) const SYSTEM_SCHEMAS: [&str; 2] = ["information_schema", "pg_catalog"];

/// A parsed role or privilege statement.
#[derive(Debug, Clone)]
pub enum AccessStatement {
    /// `CREATE ROLE` / `CREATE USER` (a user is a role with LOGIN).
    CreateRole {
        /// Role name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// `CREATE USER` rather than `CREATE ROLE`.
        user: bool,
        /// Options given.
        options: RoleOptions,
    },
    /// `ALTER ROLE` / `ALTER USER`.
    AlterRole {
        /// Role name.
        name: String,
        /// Options to change.
        options: RoleOptions,
    },
    /// `DROP ROLE` / `DROP USER`.
    DropRole {
        /// Role names.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `GRANT privileges ON objects TO roles` or `REVOKE ... FROM ...`.
    Privileges {
        /// Privileges; empty means `ALL`.
        privileges: Vec<Privilege>,
        /// What they are on.
        target: GrantTarget,
        /// Who receives or loses them.
        grantees: Vec<String>,
        /// `REVOKE` rather than `GRANT`.
        revoke: bool,
    },
    /// `GRANT role TO user` or `REVOKE role FROM user`.
    Membership {
        /// Roles granted.
        roles: Vec<String>,
        /// Members receiving or losing them.
        members: Vec<String>,
        /// `REVOKE` rather than `GRANT`.
        revoke: bool,
    },
}

/// Options of `CREATE/ALTER ROLE`.
#[derive(Debug, Clone, Default)]
pub struct RoleOptions {
    /// `LOGIN` / `NOLOGIN`.
    pub login: Option<bool>,
    /// `SUPERUSER` / `NOSUPERUSER`.
    pub superuser: Option<bool>,
    /// `OPERATOR` / `NOOPERATOR`: works in the identity zone (inherited by members).
    pub operator: Option<bool>,
    /// `AUDITOR` / `NOAUDITOR`: may read the audit trail.
    pub auditor: Option<bool>,
    /// `PASSWORD 'x'` (Some(Some)) or `PASSWORD NULL` (Some(None)).
    pub password: Option<Option<String>>,
    /// `IN ROLE a, b`.
    pub in_role: Vec<String>,
}

/// Objects of a `GRANT`.
#[derive(Debug, Clone)]
pub enum GrantTarget {
    /// `ON [TABLE] a, s.b`.
    Relations(Vec<ObjectName>),
    /// `ON SCHEMA s`.
    Schemas(Vec<String>),
    /// `ON ALL TABLES IN SCHEMA s` (the tables and views there now, as in PostgreSQL).
    AllTablesInSchema(Vec<String>),
}

/// Whether the parser is at a statement this module parses.
pub(crate) fn at_access_statement(parser: &Parser<'_>) -> bool {
    let word = |n: usize| match parser.peek_nth_token(n).token {
        Token::Word(w) => Some(w.keyword),
        _ => None,
    };
    match word(0) {
        Some(Keyword::GRANT | Keyword::REVOKE) => true,
        Some(Keyword::CREATE | Keyword::ALTER | Keyword::DROP) => {
            matches!(word(1), Some(Keyword::ROLE | Keyword::USER | Keyword::GROUP))
        }
        _ => false,
    }
}

fn unsupported(what: &str) -> ParserError {
    ParserError::ParserError(format!("{what} is not supported"))
}

fn at_end(parser: &Parser<'_>) -> bool {
    matches!(parser.peek_token().token, Token::SemiColon | Token::EOF)
}

fn role_name(parser: &mut Parser<'_>) -> Result<String, ParserError> {
    Ok(normalize_ident(&parser.parse_identifier()?))
}

fn role_names(parser: &mut Parser<'_>) -> Result<Vec<String>, ParserError> {
    parser.parse_comma_separated(role_name)
}

/// Parses a statement for which [`at_access_statement`] returned true.
pub(crate) fn parse(parser: &mut Parser<'_>) -> Result<AccessStatement, ParserError> {
    if parser.parse_keyword(Keyword::GRANT) {
        return parse_grant(parser, false);
    }
    if parser.parse_keyword(Keyword::REVOKE) {
        return parse_grant(parser, true);
    }
    let verb = parser.expect_one_of_keywords(&[Keyword::CREATE, Keyword::ALTER, Keyword::DROP])?;
    let user = parser.expect_one_of_keywords(&[Keyword::ROLE, Keyword::USER, Keyword::GROUP])? == Keyword::USER;
    match verb {
        Keyword::CREATE => {
            let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = role_name(parser)?;
            let options = parse_role_options(parser)?;
            Ok(AccessStatement::CreateRole { name, if_not_exists, user, options })
        }
        Keyword::ALTER => {
            let name = role_name(parser)?;
            if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
                return Err(unsupported("ALTER ROLE ... RENAME"));
            }
            let options = parse_role_options(parser)?;
            Ok(AccessStatement::AlterRole { name, options })
        }
        _ => {
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let names = role_names(parser)?;
            Ok(AccessStatement::DropRole { names, if_exists })
        }
    }
}

fn parse_role_options(parser: &mut Parser<'_>) -> Result<RoleOptions, ParserError> {
    let mut o = RoleOptions::default();
    let _ = parser.parse_keyword(Keyword::WITH);
    while !at_end(parser) {
        let word = match parser.next_token().token {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            other => return Err(ParserError::ParserError(format!("expected a role option, found {other}"))),
        };
        match word.as_str() {
            "LOGIN" => o.login = Some(true),
            "NOLOGIN" => o.login = Some(false),
            "SUPERUSER" => o.superuser = Some(true),
            "NOSUPERUSER" => o.superuser = Some(false),
            "OPERATOR" => o.operator = Some(true),
            "NOOPERATOR" => o.operator = Some(false),
            "AUDITOR" => o.auditor = Some(true),
            "NOAUDITOR" => o.auditor = Some(false),
            "ENCRYPTED" | "PASSWORD" => {
                if word == "ENCRYPTED" {
                    parser.expect_keyword(Keyword::PASSWORD)?;
                }
                o.password = Some(if parser.parse_keyword(Keyword::NULL) { None } else { Some(parser.parse_literal_string()?) });
            }
            "IN" => {
                parser.expect_one_of_keywords(&[Keyword::ROLE, Keyword::GROUP])?;
                o.in_role.extend(role_names(parser)?);
            }
            // Harmless defaults PostgreSQL tools write out.
            "INHERIT" | "NOCREATEDB" | "NOCREATEROLE" | "NOREPLICATION" | "NOBYPASSRLS" => {}
            // SECURITY: BYPASSRLS would let a role around row filters; Kura has no such escape.
            "NOINHERIT" | "CREATEDB" | "CREATEROLE" | "REPLICATION" | "BYPASSRLS" | "VALID" | "CONNECTION"
            | "SYSID" | "ADMIN" | "ROLE" | "USER" => {
                return Err(unsupported(&format!("role option {word}")));
            }
            other => return Err(ParserError::ParserError(format!("unrecognized role option \"{other}\""))),
        }
    }
    Ok(o)
}

fn parse_grant(parser: &mut Parser<'_>, revoke: bool) -> Result<AccessStatement, ParserError> {
    if revoke && parser.parse_keywords(&[Keyword::GRANT, Keyword::OPTION, Keyword::FOR]) {
        return Err(unsupported("REVOKE GRANT OPTION FOR"));
    }
    let all = parser.parse_keyword(Keyword::ALL);
    let words = if all {
        let _ = parser.parse_keyword(Keyword::PRIVILEGES);
        vec![]
    } else {
        parser.parse_comma_separated(|p| {
            let ident = p.parse_identifier()?;
            if p.peek_token().token == Token::LParen {
                return Err(unsupported("column privileges"));
            }
            Ok(ident)
        })?
    };
    let direction = if revoke { Keyword::FROM } else { Keyword::TO };
    if !all && !parser.parse_keyword(Keyword::ON) {
        // GRANT role, ... TO member, ...
        parser.expect_keyword(direction)?;
        let members = role_names(parser)?;
        if parser.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]) {
            return Err(unsupported("WITH ADMIN OPTION"));
        }
        let _ = parser.parse_one_of_keywords(&[Keyword::CASCADE, Keyword::RESTRICT]);
        let roles = words.iter().map(normalize_ident).collect();
        return Ok(AccessStatement::Membership { roles, members, revoke });
    }
    if all {
        parser.expect_keyword(Keyword::ON)?;
    }
    let privileges = words
        .iter()
        .map(|w| {
            Privilege::parse(&w.value)
                .ok_or_else(|| ParserError::ParserError(format!("unrecognized privilege type \"{}\"", w.value)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = if parser.parse_keywords(&[Keyword::ALL, Keyword::TABLES, Keyword::IN, Keyword::SCHEMA]) {
        GrantTarget::AllTablesInSchema(parser.parse_comma_separated(|p| {
            let name = p.parse_object_name(false)?;
            schema_name(&name).map_err(|e| ParserError::ParserError(e.to_string()))
        })?)
    } else if parser.parse_keyword(Keyword::SCHEMA) {
        GrantTarget::Schemas(parser.parse_comma_separated(|p| {
            let name = p.parse_object_name(false)?;
            schema_name(&name).map_err(|e| ParserError::ParserError(e.to_string()))
        })?)
    } else {
        let _ = parser.parse_keyword(Keyword::TABLE);
        GrantTarget::Relations(parser.parse_comma_separated(|p| p.parse_object_name(false))?)
    };
    parser.expect_keyword(direction)?;
    let grantees = parser.parse_comma_separated(|p| {
        let _ = p.parse_keyword(Keyword::GROUP);
        role_name(p)
    })?;
    if parser.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]) {
        return Err(unsupported("WITH GRANT OPTION"));
    }
    let _ = parser.parse_one_of_keywords(&[Keyword::CASCADE, Keyword::RESTRICT]);
    Ok(AccessStatement::Privileges { privileges, target, grantees, revoke })
}

fn verifier_for(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::Invalid("empty passwords are not allowed".into()));
    }
    if let Some(v) = ScramVerifier::parse(password) {
        return Ok(v.to_string());
    }
    if password.len() == 35 && password.starts_with("md5") {
        return Err(Error::Invalid(
            "MD5 password hashes are not accepted; give the password or a SCRAM-SHA-256 verifier".into(),
        ));
    }
    Ok(ScramVerifier::new(password).to_string())
}

fn ensure_a_superuser_remains(state: &CatalogState) -> kura_catalog::Result<()> {
    if state.roles.values().any(|r| r.superuser && r.login) {
        Ok(())
    } else {
        Err(kura_catalog::Error::Invalid(
            "the change would leave no superuser that can log in; create another one first".into(),
        ))
    }
}

fn expand_privileges(privileges: &[Privilege], on_relations: bool) -> Result<Vec<Privilege>> {
    if privileges.is_empty() {
        return Ok(if on_relations { Privilege::ON_RELATIONS.to_vec() } else { Privilege::ON_SCHEMAS.to_vec() });
    }
    for p in privileges {
        if p.applies_to_relations() != on_relations {
            let kind = if on_relations { "tables" } else { "schemas" };
            return Err(Error::Invalid(format!("privilege {p} is not valid for {kind}")));
        }
    }
    Ok(privileges.to_vec())
}

/// Runs a role or privilege statement.
pub(crate) async fn execute(session: &Session, stmt: AccessStatement) -> Result<StatementOutput> {
    let snapshot = session.snapshot();
    let me = session.user.clone();
    let superuser = !session.enforced || snapshot.state.is_superuser(&me);
    let own_password_only = matches!(&stmt, AccessStatement::AlterRole { name, options }
        if *name == me && options.login.is_none() && options.superuser.is_none() && options.operator.is_none() && options.auditor.is_none() && options.in_role.is_empty());
    if !superuser && !own_password_only {
        return Err(Error::PermissionDenied("permission denied: only superusers manage roles and privileges".into()));
    }
    let catalog = session.engine.catalog();
    let (op, tag) = match &stmt {
        AccessStatement::CreateRole { name, user, .. } => {
            (format!("CREATE {} {name}", if *user { "USER" } else { "ROLE" }), "CREATE ROLE")
        }
        AccessStatement::AlterRole { name, .. } => (format!("ALTER ROLE {name}"), "ALTER ROLE"),
        AccessStatement::DropRole { names, .. } => (format!("DROP ROLE {}", names.join(", ")), "DROP ROLE"),
        AccessStatement::Privileges { revoke, .. } | AccessStatement::Membership { revoke, .. } => {
            let tag = if *revoke { "REVOKE" } else { "GRANT" };
            (tag.to_string(), tag)
        }
    };
    match stmt {
        AccessStatement::CreateRole { name, if_not_exists, user, options } => {
            let mut entry = RoleEntry::new(&name);
            entry.login = options.login.unwrap_or(user);
            entry.superuser = options.superuser.unwrap_or(false);
            entry.operator = options.operator.unwrap_or(false);
            entry.auditor = options.auditor.unwrap_or(false);
            entry.password = match options.password.flatten() {
                Some(p) => Some(verifier_for(&p)?),
                None => None,
            };
            entry.member_of = options.in_role.iter().cloned().collect();
            catalog.commit(&me, &op, |s| s.create_role(entry.clone(), if_not_exists)).await.map_err(Error::catalog)?;
        }
        AccessStatement::AlterRole { name, options } => {
            let password = match &options.password {
                Some(Some(p)) => Some(Some(verifier_for(p)?)),
                Some(None) => Some(None),
                None => None,
            };
            catalog
                .commit(&me, &op, |s| {
                    for parent in &options.in_role {
                        s.grant_role(parent, &name)?;
                    }
                    let role = s.role_mut(&name)?;
                    if let Some(login) = options.login {
                        role.login = login;
                    }
                    if let Some(su) = options.superuser {
                        role.superuser = su;
                    }
                    if let Some(op) = options.operator {
                        role.operator = op;
                    }
                    if let Some(a) = options.auditor {
                        role.auditor = a;
                    }
                    if let Some(p) = &password {
                        role.password = p.clone();
                    }
                    // Only a change of superuser or login can lock administrators out.
                    if options.superuser.is_some() || options.login.is_some() { ensure_a_superuser_remains(s) } else { Ok(()) }
                })
                .await
                .map_err(Error::catalog)?;
        }
        AccessStatement::DropRole { names, if_exists } => {
            if names.contains(&me) {
                return Err(Error::Invalid("the current user cannot be dropped".into()));
            }
            catalog
                .commit(&me, &op, |s| {
                    for n in &names {
                        match s.drop_role(n) {
                            Err(kura_catalog::Error::NotFound { .. }) if if_exists => {}
                            other => {
                                other?;
                            }
                        }
                    }
                    Ok(())
                })
                .await
                .map_err(Error::catalog)?;
        }
        AccessStatement::Membership { roles, members, revoke } => {
            catalog
                .commit(&me, &op, |s| {
                    for r in &roles {
                        for m in &members {
                            if revoke { s.revoke_role(r, m)? } else { s.grant_role(r, m)? }
                        }
                    }
                    Ok(())
                })
                .await
                .map_err(Error::catalog)?;
        }
        AccessStatement::Privileges { privileges, target, grantees, revoke } => {
            let grants = resolve_grants(&snapshot.state, &privileges, &target, &grantees)?;
            catalog
                .commit(&me, &op, |s| {
                    for g in &grants {
                        if revoke { s.revoke(g)? } else { s.grant(g.clone())? }
                    }
                    Ok(())
                })
                .await
                .map_err(Error::catalog)?;
        }
    }
    Ok(StatementOutput::command(tag))
}

fn resolve_grants(
    state: &CatalogState,
    privileges: &[Privilege],
    target: &GrantTarget,
    grantees: &[String],
) -> Result<Vec<Grant>> {
    let mut objects = Vec::new();
    let on_relations = !matches!(target, GrantTarget::Schemas(_));
    match target {
        GrantTarget::Relations(names) => {
            for n in names {
                let qn = qualified(n)?;
                objects.push(GrantObject::Relation { schema: qn.schema, name: qn.name });
            }
        }
        GrantTarget::Schemas(names) => {
            objects.extend(names.iter().map(|n| GrantObject::Schema { name: n.clone() }));
        }
        GrantTarget::AllTablesInSchema(names) => {
            for n in names {
                let s = state.schema(n).map_err(Error::catalog)?;
                for rel in s.tables.keys().chain(s.views.keys()) {
                    objects.push(GrantObject::Relation { schema: n.clone(), name: rel.clone() });
                }
            }
        }
    }
    let privileges = expand_privileges(privileges, on_relations)?;
    let mut grants = Vec::new();
    for grantee in grantees {
        for object in &objects {
            for p in &privileges {
                grants.push(Grant { grantee: grantee.clone(), privilege: *p, object: object.clone() });
            }
        }
    }
    Ok(grants)
}

/// The relation a table scan reads, if it is a warehouse relation (not a system view).
pub(crate) fn scanned_relation(table: &TableReference, default_schema: &str) -> Option<(String, String)> {
    let (schema, name) = match table {
        TableReference::Bare { table } => (default_schema.to_string(), table.to_string()),
        TableReference::Partial { schema, table } => (schema.to_string(), table.to_string()),
        TableReference::Full { catalog, schema, table } => {
            if catalog.as_ref() != crate::names::CATALOG_NAME {
                return None;
            }
            (schema.to_string(), table.to_string())
        }
    };
    if SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return None;
    }
    // Time-travel references (`t@v3`) read the table `t`.
    let name = name.split('@').next().unwrap_or_default().to_string();
    Some((schema, name))
}

impl Session {
    /// The role whose rights apply now: a view's owner while the view is expanded, else the user.
    pub(crate) fn acting_role(&self) -> String {
        ACTING_ROLE.try_with(|r| r.clone()).unwrap_or_else(|_| self.user.clone())
    }

    /// Fails unless the acting role holds `privilege` on `schema.name`.
    pub(crate) fn require_relation(&self, privilege: Privilege, schema: &str, name: &str) -> Result<()> {
        if !self.enforced {
            return Ok(());
        }
        let role = self.acting_role();
        if self.snapshot().state.has_relation_privilege(&role, privilege, schema, name) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("permission denied for table {name} ({privilege} on {schema}.{name})")))
        }
    }

    /// Fails unless the user may create objects in `schema`.
    pub(crate) fn require_create_in(&self, schema: &str) -> Result<()> {
        if !self.enforced || self.snapshot().state.has_schema_privilege(&self.user, Privilege::Create, schema) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("permission denied for schema {schema}")))
        }
    }

    /// Fails unless the user owns `schema.name` or is a superuser (DROP, ALTER).
    pub(crate) fn require_owner(&self, schema: &str, name: &str, owner: &str) -> Result<()> {
        if !self.enforced {
            return Ok(());
        }
        let state = &self.snapshot().state;
        if state.is_superuser(&self.user) || (!owner.is_empty() && state.effective_roles(&self.user).contains(owner)) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("must be owner of {schema}.{name}")))
        }
    }

    /// Fails unless the user is a superuser (server-side files, schemas).
    pub(crate) fn require_superuser(&self, what: &str) -> Result<()> {
        if !self.enforced || self.snapshot().state.is_superuser(&self.user) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("permission denied: only superusers may {what}")))
        }
    }

    /// Checks a plan's privileges and applies the aggregation policies of the tables it reads:
    /// every statement that reads data passes through here before it is optimised.
    pub(crate) fn police_plan(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        crate::audit::note_plan(&self.audit_note, &plan);
        self.check_plan(&plan)?;
        crate::policy::aggregate::enforce(plan, || self.engine.histories.of(&self.user))
    }

    /// Checks every relation a plan reads (SELECT) or writes (INSERT), subqueries included.
    /// Views count as the relations they are; their own reads were checked, with the view
    /// owner's rights, when they were expanded.
    pub(crate) fn check_plan(&self, plan: &LogicalPlan) -> Result<()> {
        if !self.enforced {
            return Ok(());
        }
        // Bare names were resolved by the planner against the session's default schema.
        let default_schema = self.current_schema();
        let mut needed: BTreeSet<(Privilege, String, String)> = BTreeSet::new();
        plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::TableScan(TableScan { table_name, .. }) => {
                    if let Some((s, n)) = scanned_relation(table_name, &default_schema) {
                        needed.insert((Privilege::Select, s, n));
                    }
                }
                LogicalPlan::Dml(DmlStatement { table_name, op, .. }) => {
                    let privilege = match op {
                        datafusion::logical_expr::WriteOp::Insert(_) => Privilege::Insert,
                        datafusion::logical_expr::WriteOp::Delete => Privilege::Delete,
                        datafusion::logical_expr::WriteOp::Update => Privilege::Update,
                        _ => Privilege::Insert,
                    };
                    if let Some((s, n)) = scanned_relation(table_name, &default_schema) {
                        needed.insert((privilege, s, n));
                    }
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(Error::from_datafusion)?;
        for (p, s, n) in needed {
            self.require_relation(p, &s, &n)?;
        }
        Ok(())
    }
}
