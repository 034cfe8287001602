//! The incident list query, built once for both engines: a WHERE clause with
//! numbered placeholders (`?1` for SQLite, `$1` for PostgreSQL) and its values.

use crate::{IncidentFilter, Page};

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// Builds `SELECT doc FROM incidents WHERE … ORDER BY number DESC LIMIT n`.
pub(crate) fn list_query(filter: &IncidentFilter, page: Page, placeholder: char) -> (String, Vec<Bind>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    let next = |bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        format!("{placeholder}{}", binds.len())
    };
    for (column, values) in [
        ("state", &filter.states),
        ("priority", &filter.priorities),
        ("sla_state", &filter.sla_states),
    ] {
        if !values.is_empty() {
            let marks: Vec<String> = values.iter().map(|v| next(Bind::Text(v.clone()), &mut binds)).collect();
            clauses.push(format!("{column} IN ({})", marks.join(", ")));
        }
    }
    for (column, value) in [
        ("service", &filter.service),
        ("team", &filter.team),
        ("owner", &filter.owner),
        ("reported_by", &filter.reported_by),
    ] {
        if let Some(value) = value {
            let mark = next(Bind::Text(value.clone()), &mut binds);
            clauses.push(format!("{column} = {mark}"));
        }
    }
    if let Some(user) = &filter.involved {
        let mark = next(Bind::Text(user.clone()), &mut binds);
        // The collaborators live in the projection's JSON document.
        clauses.push(if placeholder == '$' {
            format!("(owner = {mark} OR doc->'collaborators' ? {mark})")
        } else {
            format!("(owner = {mark} OR EXISTS (SELECT 1 FROM json_each(doc, '$.collaborators') WHERE value = {mark}))")
        });
    }
    if let Some(major) = filter.major {
        let mark = next(Bind::Bool(major), &mut binds);
        clauses.push(format!("major = {mark}"));
    }
    if let Some(text) = &filter.text {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mark = next(Bind::Text(format!("%{escaped}%")), &mut binds);
        clauses.push(format!("search LIKE {mark} ESCAPE '\\'"));
    }
    if let Some(after) = page.after_number {
        let mark = next(Bind::Int(after), &mut binds);
        clauses.push(format!("number < {mark}"));
    }
    let limit = next(Bind::Int(i64::from(page.limit)), &mut binds);
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (
        format!("SELECT doc FROM incidents{where_clause} ORDER BY number DESC LIMIT {limit}"),
        binds,
    )
}
