//! Partner Center's audit reads: compares a row's desired values with the user's live values (from a GET): which fields would change, from what to what.

use serde_json::{Map, Value};

use crate::targets::{Changes, Field, FieldChange};

/// Every field the row sets, compared with the live user. A password always counts as a change:
/// it cannot be read back.
/// The fields an undo file restores: the API's name and the input column that sets it.
pub const UNDO_COLUMNS: &[(&str, Field)] = &[
    ("usageLocation", Field::UsageLocation),
    ("displayName", Field::DisplayName),
    ("firstName", Field::FirstName),
    ("lastName", Field::LastName),
    ("userPrincipalName", Field::UserPrincipalName),
];

pub fn compare(changes: &Changes, live: &Map<String, Value>) -> Vec<FieldChange> {
    let fields: [(&'static str, &Option<String>, bool); 5] = [
        ("usageLocation", &changes.usage_location, true),
        ("displayName", &changes.display_name, false),
        ("firstName", &changes.first_name, false),
        ("lastName", &changes.last_name, false),
        ("userPrincipalName", &changes.user_principal_name, true),
    ];
    let mut out = Vec::new();
    for (field, desired, case_insensitive) in fields {
        let Some(desired) = desired else { continue };
        let current = live.get(field).and_then(Value::as_str).map(str::to_string);
        let same = current.as_deref().is_some_and(|c| {
            if case_insensitive {
                c.trim().eq_ignore_ascii_case(desired)
            } else {
                c.trim() == desired
            }
        });
        out.push(FieldChange {
            field,
            current,
            desired: Some(desired.clone()),
            changes: !same,
        });
    }
    if changes.password.is_some() {
        out.push(FieldChange {
            field: "password",
            current: None,
            desired: None,
            changes: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use serde_json::json;

    #[test]
    fn unchanged_changed_missing_and_password_fields() {
        let changes = Changes {
            usage_location: Some("DE".into()),
            display_name: Some("Anna Berg".into()),
            user_principal_name: Some("Anna@Contoso.com".into()),
            last_name: Some("Berg".into()),
            password: Some(SecretString::from("Pw-123456!".to_string())),
            ..Changes::default()
        };
        let live = json!({"usageLocation": "de", "displayName": "Anna  Berg", "userPrincipalName": "anna@contoso.com"});
        let got = compare(&changes, live.as_object().unwrap());
        let summary: Vec<(&str, Option<&str>, bool)> = got
            .iter()
            .map(|c| (c.field, c.current.as_deref(), c.changes))
            .collect();
        assert_eq!(
            summary,
            [
                ("usageLocation", Some("de"), false),
                ("displayName", Some("Anna  Berg"), true),
                ("lastName", None, true),
                ("userPrincipalName", Some("anna@contoso.com"), false),
                ("password", None, true),
            ]
        );
        assert_eq!(got[4].desired, None, "a password is never shown");
    }
}
