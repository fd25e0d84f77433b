//! Reading the server, not guessing: what its ServiceProviderConfig declares and its `/Schemas`
//! define, read at the start of a run and honoured for the rest of it, over the dialect's
//! choices the config did not make itself.

use super::body::USER_SCHEMA;
use super::dialect::Members;
use super::TargetClient;
use serde_json::Value;

/// A schema attribute by name (case-insensitively) among `attrs`.
fn attribute<'a>(attrs: &'a Value, name: &str) -> Option<&'a Value> {
    attrs.as_array()?.iter().find(|a| a["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// What the User schema says of the create body: whether `name.formatted` is required, and
/// whether `emails` entries have a `type`. `None` where the schema does not say.
pub(super) fn user_schema_body(schemas: &Value) -> (Option<bool>, Option<bool>) {
    let list = match schemas.get("Resources") {
        Some(r) => r,
        None => schemas,
    };
    let user = list.as_array().and_then(|l| l.iter().find(|s| s["id"].as_str() == Some(USER_SCHEMA)));
    let Some(attrs) = user.map(|u| &u["attributes"]) else { return (None, None) };
    let sub =
        |attr: &str, sub: &str| attribute(attrs, attr).and_then(|a| attribute(&a["subAttributes"], sub));
    let formatted_required = attribute(attrs, "name")
        .map(|_| sub("name", "formatted").and_then(|f| f["required"].as_bool()).unwrap_or(false));
    let typed = attribute(attrs, "emails")
        .filter(|e| e["subAttributes"].is_array())
        .map(|_| sub("emails", "type").is_some());
    (formatted_required, typed)
}

impl TargetClient {
    /// Reads the ServiceProviderConfig and `/Schemas` and honours them for the rest of this
    /// client's life (a run): no PATCH → updates and member changes by PUT; no filter → no
    /// filtered lookups; `name.formatted` required → sent; `emails` without `type` → entries
    /// without it. A choice written in the config stays. A target that serves neither keeps
    /// the configured dialect; a refused token is left for the run's first write to report.
    pub async fn discover(&self) {
        match self.service_provider_config().await {
            Ok(spc) => self.honour_config(&spc),
            Err(e) => {
                tracing::debug!(error = %e, "No ServiceProviderConfig; the configured dialect is used.")
            }
        }
        match self.probe("Schemas", &[]).await {
            Ok(Some(schemas)) => self.honour_schemas(&schemas),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "No /Schemas; the configured dialect is used."),
        }
    }

    fn honour_config(&self, spc: &Value) {
        let declares =
            |feature: &str| spc.get(feature).and_then(|f| f.get("supported")).and_then(Value::as_bool);
        let (d, live) = (&self.inner.dialect, &self.inner.live);
        if declares("patch") == Some(false) {
            if !d.update_chosen && live.put_updates() {
                tracing::info!("The target declares no PATCH support: updates are sent as GET and PUT.");
            }
            if !d.members_chosen && live.degrade_members(d.members, Members::Put) {
                tracing::info!("The target declares no PATCH support: member changes are sent as PUT.");
            }
        }
        if declares("filter") == Some(false) {
            tracing::info!(
                "The target declares no filter support: scimsync does not look users or groups up \
                 by name, so a create that may have gone through is reported instead of resolved."
            );
            live.set_no_filter();
        }
    }

    fn honour_schemas(&self, schemas: &Value) {
        let d = &self.inner.dialect;
        let (formatted_required, typed) = user_schema_body(schemas);
        let formatted = match formatted_required {
            Some(true) if !d.name_formatted_chosen => true,
            _ => d.name_formatted,
        };
        let types = match typed {
            Some(false) if !d.multi_valued_type_chosen => false,
            _ => d.multi_valued_type,
        };
        if self.inner.live.set_body(formatted, types) {
            tracing::info!(
                name_formatted = formatted,
                multi_valued_type = types,
                "The target's User schema shapes the create: name.formatted sent where it is required, \
                 type left out of emails where the schema has none."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_user_schema_as_served_listed_or_bare() {
        let user = json!({"id": USER_SCHEMA, "attributes": [
            {"name": "name", "subAttributes": [{"name": "formatted", "required": true}]},
            {"name": "emails", "subAttributes": [{"name": "value"}, {"name": "primary"}]},
        ]});
        assert_eq!(user_schema_body(&json!({"Resources": [user.clone()]})), (Some(true), Some(false)));
        assert_eq!(user_schema_body(&json!([user])), (Some(true), Some(false)));
        let lenient = json!([{"id": USER_SCHEMA, "attributes": [
            {"name": "Name", "subAttributes": [{"name": "Formatted", "required": false}]},
            {"name": "Emails", "subAttributes": [{"name": "Type"}]},
        ]}]);
        assert_eq!(user_schema_body(&lenient), (Some(false), Some(true)));
        assert_eq!(user_schema_body(&json!({"Resources": []})), (None, None));
    }
}
