//! Running policy statements: definitions and attachments are catalog commits, made by
//! superusers only; `SHOW POLICIES` lists them, to superusers only.

use datafusion::arrow::datatypes::DataType;
use kura_catalog::{PolicyAttachment, PolicyEntry, PolicyKind};
use kura_storage::TableVersionSpec;

use super::PolicyStatement;
use crate::names::{QualifiedName, qualified, validate_new_name};
use crate::session::{Session, StatementOutput};
use crate::{Error, Result};

pub(crate) async fn execute(session: &Session, stmt: PolicyStatement) -> Result<StatementOutput> {
    match stmt {
        PolicyStatement::Create { kind, name, or_replace, if_not_exists, params, returns, body, comment } => {
            session.require_superuser("create policies")?;
            validate_new_name("policy", &name)?;
            for (i, p) in params.iter().enumerate() {
                if params[..i].iter().any(|q| q.name == p.name) {
                    return Err(Error::Invalid(format!("parameter \"{}\" appears twice", p.name)));
                }
            }
            match kind {
                PolicyKind::Masking if params.is_empty() => {
                    return Err(Error::Invalid("a masking policy takes the masked value as its first parameter".into()));
                }
                PolicyKind::RowAccess if params.is_empty() => {
                    return Err(Error::Invalid("a row access policy takes at least one column parameter".into()));
                }
                PolicyKind::Projection | PolicyKind::Aggregation if !params.is_empty() => {
                    return Err(Error::Invalid(format!(
                        "a {kind} takes no parameters: it decides by the user (current_user, is_member), not by data"
                    )));
                }
                _ => {}
            }
            let entry = PolicyEntry {
                name: name.clone(),
                kind,
                params,
                returns,
                body,
                owner: session.user.clone(),
                created_at: chrono::Utc::now(),
                comment,
            };
            let snapshot = session.snapshot();
            if if_not_exists && snapshot.state.policies.contains_key(&name) {
                return Ok(StatementOutput::command("CREATE POLICY"));
            }
            super::plan::validate(session.ctx.state(), &session.engine.keys, &entry).await.map_err(|e| match e {
                Error::Invalid(_) => e,
                other => Error::Invalid(format!("the body of {kind} \"{name}\" does not plan: {other}")),
            })?;
            let op = format!("CREATE {} POLICY {name}", kind.sql());
            session
                .engine
                .catalog()
                .commit(&session.user, &op, |s| s.create_policy(entry.clone(), or_replace))
                .await
                .map_err(Error::catalog)?;
            Ok(StatementOutput::command("CREATE POLICY"))
        }
        PolicyStatement::Drop { kind, names, if_exists } => {
            session.require_superuser("drop policies")?;
            let op = format!("DROP POLICY {}", names.join(", "));
            session
                .engine
                .catalog()
                .commit(&session.user, &op, |s| {
                    for n in &names {
                        match s.policy(n) {
                            Err(kura_catalog::Error::NotFound { .. }) if if_exists => continue,
                            Err(e) => return Err(e),
                            Ok(p) if kind.is_some_and(|k| k != p.kind) => {
                                return Err(kura_catalog::Error::Invalid(format!("\"{n}\" is a {}", p.kind)));
                            }
                            Ok(_) => {}
                        }
                        s.drop_policy(n)?;
                    }
                    Ok(())
                })
                .await
                .map_err(Error::catalog)?;
            Ok(StatementOutput::command("DROP POLICY"))
        }
        PolicyStatement::Attach { table, change } => {
            session.require_superuser("attach policies")?;
            let qn = qualified(&table)?;
            check_attachment(session, &qn, &change).await?;
            let op = format!("ALTER TABLE {qn} (policy)");
            session
                .engine
                .catalog()
                .commit(&session.user, &op, |s| s.attach_policy(&qn.schema, &qn.name, change.clone()))
                .await
                .map_err(Error::catalog)?;
            Ok(StatementOutput::command("ALTER TABLE"))
        }
        PolicyStatement::CreateKey { name } => {
            session.require_superuser("create pseudonym keys")?;
            session.engine.keys.create(&name).await?;
            Ok(StatementOutput::command("CREATE PSEUDONYM KEY"))
        }
        PolicyStatement::ShowKeys => {
            session.require_superuser("list pseudonym keys")?;
            let names = session.engine.keys.names().await?;
            crate::constant::text_rows(&["name"], names.into_iter().map(|n| vec![n]).collect())
        }
        PolicyStatement::Show { table } => {
            // SECURITY: policy definitions tell how data is protected; only administrators see them.
            session.require_superuser("list policies")?;
            let filter = table.as_ref().map(qualified).transpose()?;
            show(session, filter.as_ref())
        }
    }
}

/// Text types are interchangeable for binding columns to parameters.
fn same_type(a: &DataType, b: &DataType) -> bool {
    let text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    a == b || (text(a) && text(b))
}

/// Checks that the columns named exist and have the types the policy's parameters declare.
async fn check_attachment(session: &Session, qn: &QualifiedName, change: &PolicyAttachment) -> Result<()> {
    let snapshot = session.snapshot();
    if snapshot.state.view(&qn.schema, &qn.name).is_ok() {
        return Err(Error::Invalid(format!(
            "policies attach to tables, not views; \"{qn}\" is a view (the policies of its tables apply through it)"
        )));
    }
    let entry = snapshot.state.table(&qn.schema, &qn.name).map_err(Error::catalog)?;
    let table = session.engine.warehouse().open_table(&entry.location, &TableVersionSpec::Latest).await?;
    let schema = table.snapshot()?.snapshot().arrow_schema();
    let column_type = |c: &str| {
        schema
            .field_with_name(c)
            .map(|f| f.data_type().clone())
            .map_err(|_| Error::UndefinedObject(format!("column \"{c}\" of relation \"{qn}\" does not exist")))
    };
    let state = session.ctx.state();
    let (policy_name, columns, masked) = match change {
        PolicyAttachment::SetMask { column, mask } => (&mask.policy, mask.using.clone(), Some(column)),
        PolicyAttachment::AddRowFilter(rf) => (&rf.policy, rf.columns.clone(), None),
        PolicyAttachment::SetAggregation(a) => {
            if a.entity_key.len() > 1 {
                return Err(Error::Unsupported("an ENTITY KEY of more than one column; use one ID column".into()));
            }
            for c in &a.entity_key {
                column_type(c)?;
            }
            return Ok(());
        }
        PolicyAttachment::SetProjection { column, .. }
        | PolicyAttachment::UnsetMask { column }
        | PolicyAttachment::UnsetProjection { column } => {
            column_type(column)?;
            return Ok(());
        }
        PolicyAttachment::DropRowFilter { .. } | PolicyAttachment::UnsetAggregation => return Ok(()),
    };
    let policy = snapshot.state.policy(policy_name).map_err(Error::catalog)?;
    let expected = if masked.is_some() { PolicyKind::Masking } else { PolicyKind::RowAccess };
    if policy.kind != expected {
        return Err(Error::Invalid(format!("\"{}\" is a {}, not a {expected}", policy.name, policy.kind)));
    }
    for (column, param) in columns.iter().zip(&policy.params) {
        let actual = column_type(column)?;
        let declared = super::plan::arrow_type(&state, &param.sql_type).await?;
        if !same_type(&actual, &declared) {
            return Err(Error::Invalid(format!(
                "column \"{column}\" is {actual} but parameter \"{}\" of policy \"{}\" is {}",
                param.name, policy.name, param.sql_type
            )));
        }
    }
    if let Some(column) = masked {
        let actual = column_type(column)?;
        let returns = super::plan::arrow_type(&state, &policy.returns).await?;
        if !same_type(&actual, &returns) {
            return Err(Error::Invalid(format!(
                "masking policy \"{}\" returns {} but column \"{column}\" is {actual}: a mask keeps the column's type",
                policy.name, policy.returns
            )));
        }
    }
    Ok(())
}

fn show(session: &Session, table: Option<&QualifiedName>) -> Result<StatementOutput> {
    let snapshot = session.snapshot();
    let state = &snapshot.state;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let attachments = |policy: &str| -> Vec<String> {
        let mut out = Vec::new();
        for (s, schema) in &state.schemas {
            for (t, entry) in &schema.tables {
                if table.is_some_and(|q| q.schema != *s || q.name != *t) {
                    continue;
                }
                let p = &entry.policies;
                for (c, m) in &p.masks {
                    if m.policy == policy {
                        out.push(format!("{s}.{t}.{c}"));
                    }
                }
                for rf in &p.row_filters {
                    if rf.policy == policy {
                        out.push(format!("{s}.{t} ON ({})", rf.columns.join(", ")));
                    }
                }
                for (c, name) in &p.projections {
                    if name == policy {
                        out.push(format!("{s}.{t}.{c}"));
                    }
                }
                if let Some(a) = &p.aggregation
                    && a.policy == policy
                {
                    out.push(format!("{s}.{t} ENTITY KEY ({})", a.entity_key.join(", ")));
                }
            }
        }
        out
    };
    for policy in state.policies.values() {
        let on = attachments(&policy.name);
        if table.is_some() && on.is_empty() {
            continue;
        }
        let params: Vec<String> = policy.params.iter().map(|p| format!("{} {}", p.name, p.sql_type)).collect();
        rows.push(vec![
            policy.name.clone(),
            policy.kind.sql().to_string(),
            format!("({}) RETURNS {}", params.join(", "), policy.returns),
            policy.body.clone(),
            on.join("; "),
            policy.owner.clone(),
            policy.comment.clone(),
        ]);
    }
    crate::constant::text_rows(&["name", "kind", "signature", "body", "attached_to", "owner", "comment"], rows)
}
