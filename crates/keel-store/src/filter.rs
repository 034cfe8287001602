//! The incident list query, built once for both engines: a WHERE clause with
//! numbered placeholders (`?1` for SQLite, `$1` for PostgreSQL) and its values.

use crate::{IncidentFilter, Page};

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Builds `SELECT doc FROM incidents WHERE … ORDER BY number DESC LIMIT n`.
pub(crate) fn list_query(filter: &IncidentFilter, page: Page, placeholder: char) -> (String, Vec<Bind>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    let next = |bind: Bind, binds: &mut Vec<Bind>| {
        binds.push(bind);
        format!("{placeholder}{}", binds.len())
    };
    // The open states in the order the partial indexes name them.
    let open_only = {
        let mut states: Vec<&str> = filter.states.iter().map(String::as_str).collect();
        states.sort_unstable();
        states.dedup();
        states == ["accepted", "new", "on_hold"]
    };
    let open_states: Vec<String> = ["new", "accepted", "on_hold"].map(String::from).to_vec();
    for (column, values) in [
        ("state", if open_only { &open_states } else { &filter.states }),
        ("priority", &filter.priorities),
        ("sla_state", &filter.sla_states),
    ] {
        // Names from a fixed set are written as literals so that the
        // planner can use the partial indexes over open incidents.
        let literal = values
            .iter()
            .all(|v| !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !values.is_empty() && literal {
            let names: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            clauses.push(format!("{column} IN ({})", names.join(", ")));
        } else if !values.is_empty() {
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
        // A literal too, for the partial index over major incidents.
        clauses.push(match (major, placeholder) {
            (true, '$') => "major = TRUE".to_string(),
            (false, '$') => "major = FALSE".to_string(),
            (true, _) => "major = 1".to_string(),
            (false, _) => "major = 0".to_string(),
        });
    }
    if let Some(text) = &filter.text {
        let text = text.to_lowercase();
        if placeholder == '?' {
            // SQLite: the trigram index answers GLOB; brackets quote its wildcards.
            let quoted: String = text
                .chars()
                .map(|c| match c {
                    '*' | '?' | '[' => format!("[{c}]"),
                    other => other.to_string(),
                })
                .collect();
            let mark = next(Bind::Text(format!("*{quoted}*")), &mut binds);
            clauses.push(format!("incidents_search.search GLOB {mark}"));
        } else {
            // PostgreSQL: the trigram GIN index answers LIKE.
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let mark = next(Bind::Text(format!("%{escaped}%")), &mut binds);
            clauses.push(format!("search LIKE {mark} ESCAPE '\\'"));
        }
    }
    if let Some(after) = page.after_number {
        let mark = next(Bind::Int(after), &mut binds);
        // With a text search on SQLite, the index walk starts below the cursor.
        let column = if placeholder == '?' && filter.text.is_some() {
            "incidents_search.rowid"
        } else {
            "number"
        };
        clauses.push(format!("{column} < {mark}"));
    }
    let limit = next(Bind::Int(i64::from(page.limit)), &mut binds);
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    // SQLite plans without statistics: name the index that walks the
    // newest matching rows first, so no sort (of whole documents) is needed.
    let sqlite_text = placeholder == '?' && filter.text.is_some();
    let hint = if placeholder != '?' || sqlite_text {
        ""
    } else if filter.major == Some(true) {
        " INDEXED BY incidents_major"
    } else if open_only && filter.team.is_none() {
        " INDEXED BY incidents_open_number"
    } else {
        ""
    };
    if sqlite_text {
        // Walk the text matches newest first (FTS5 hands out rowids, the
        // incident numbers, in order) and stop at the page's end, rather
        // than collecting every match and sorting.
        return (
            format!(
                "SELECT incidents.doc FROM incidents_search CROSS JOIN incidents
                 ON incidents.number = incidents_search.rowid{where_clause}
                 ORDER BY incidents_search.rowid DESC LIMIT {limit}"
            ),
            binds,
        );
    }
    (
        format!("SELECT doc FROM incidents{hint}{where_clause} ORDER BY number DESC LIMIT {limit}"),
        binds,
    )
}
