//! CSV source: a header row, one user per row; a `groups` column lists the user's groups.

use super::directory::{SourceDirectory, SourceGroup, SourceUser};
use super::{Names, Origin, Record, SourceConfig, SourceError, UserRecord, Value};
use crate::model::SourceKey;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

const KEY_COLUMNS: [&str; 3] = ["id", "externalid", "dn"];
const NAME_COLUMNS: [&str; 3] = ["username", "email", "mail"];

/// Reads a CSV export completely, or fails naming `path:line`.
pub fn read(input: impl Read, path: &str, cfg: &SourceConfig) -> Result<SourceDirectory, SourceError> {
    let mut reader = csv::ReaderBuilder::new().delimiter(cfg.delimiter).flexible(false).from_reader(input);
    let err = |line: u64, message: String| SourceError::Parse { path: path.to_owned(), line, message };
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(err(1, "the file has no header row: the first line must name the columns".into()));
    }
    let mut seen = BTreeSet::new();
    for h in &headers {
        if !seen.insert(h) {
            return Err(err(1, format!("column {h:?} appears twice in the header row")));
        }
    }
    let groups_col = cfg.groups_column.to_ascii_lowercase();
    let key_cols: Vec<String> = cfg
        .directory
        .key_attributes
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .chain(KEY_COLUMNS.iter().chain(NAME_COLUMNS.iter()).map(|s| s.to_string()))
        .collect();
    let mut dir = SourceDirectory::default();
    let mut groups: BTreeMap<String, SourceGroup> = BTreeMap::new();
    let mut attr_names = Names::default();
    let origin_path: std::sync::Arc<str> = path.into();
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            err(line, format!("{e}: every row needs as many fields as the header, quoted where they contain the delimiter"))
        })?;
        let line = row.position().map_or(0, |p| p.line());
        dir.records_read += 1;
        let attrs: Vec<(String, Value)> = headers
            .iter()
            .zip(row.iter())
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(h, v)| (h.clone(), Value::Text(v.trim().to_owned())))
            .collect();
        let record = Record { origin: Origin { path: origin_path.clone(), line }, dn: String::new(), attrs };
        let key = key_cols.iter().find_map(|c| record.first_text(c)).map(|k| SourceKey(k.to_lowercase()));
        let Some(key) = key else {
            dir.skipped.push(crate::model::Skip {
                origin: record.origin.to_string(),
                key: None,
                reason: "row has no id, externalId, userName or email column value".into(),
            });
            continue;
        };
        let active = !record
            .first_text("active")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no" | "disabled"));
        let mut names = BTreeSet::new();
        if let Some(list) = record.first_text(&groups_col) {
            for name in list.split(cfg.groups_separator.as_str()).map(str::trim).filter(|n| !n.is_empty()) {
                names.insert(name.to_owned());
                let g = groups.entry(name.to_lowercase()).or_insert_with(|| SourceGroup {
                    key: SourceKey(format!("group:{}", name.to_lowercase())),
                    origin: format!("{path}:{line}"),
                    name: name.to_owned(),
                    members: BTreeSet::new(),
                });
                g.members.insert(key.clone());
            }
        }
        dir.users.push(SourceUser {
            key,
            record: UserRecord::keep(record, None, &mut attr_names),
            active,
            groups: names,
        });
    }
    dir.groups = groups.into_values().collect();
    Ok(dir)
}
