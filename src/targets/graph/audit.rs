//! Graph's audit reads: the `$select` list of a read, and the comparison of a row's desired
//! values with the user's live ones (which fields would change, from what to what). Uses only
//! `targets`.

use serde_json::{Map, Value};

use crate::targets::graph::fields::{property, FIELDS};
use crate::targets::{Changes, Field, FieldChange, CLEAR};

/// For an undo file: every field a read returns, by its property name (all but the password).
pub const UNDO_COLUMNS: &[(&str, Field)] = &[
    ("usageLocation", Field::UsageLocation),
    ("displayName", Field::DisplayName),
    ("givenName", Field::FirstName),
    ("surname", Field::LastName),
    ("userPrincipalName", Field::UserPrincipalName),
    ("jobTitle", Field::JobTitle),
    ("department", Field::Department),
    ("officeLocation", Field::OfficeLocation),
    ("companyName", Field::CompanyName),
    ("employeeId", Field::EmployeeId),
    ("mobilePhone", Field::MobilePhone),
    ("businessPhones", Field::BusinessPhones),
    ("city", Field::City),
    ("state", Field::State),
    ("country", Field::Country),
    ("postalCode", Field::PostalCode),
    ("streetAddress", Field::StreetAddress),
    ("preferredLanguage", Field::PreferredLanguage),
    ("accountEnabled", Field::AccountEnabled),
];

/// The `$select` of a read: the id and every changeable property (not the password profile).
pub fn select() -> String {
    let mut names = vec!["id"];
    names.extend(
        FIELDS
            .iter()
            .filter(|f| **f != Field::Password)
            .map(|f| property(*f)),
    );
    names.join(",")
}

/// A live property as text: a string, a boolean, the first business phone; None when absent,
/// null or empty.
fn live_text(field: Field, live: &Map<String, Value>) -> Option<String> {
    let v = live.get(property(field))?;
    let text = match (field, v) {
        (Field::BusinessPhones, Value::Array(a)) => a.first()?.as_str()?.to_string(),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::String(s)) => s.clone(),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// Every field the row sets or clears, compared with the live user. A password always counts
/// as a change: it cannot be read back. A cleared field shows as desired `<clear>`.
pub fn compare(changes: &Changes, live: &Map<String, Value>) -> Vec<FieldChange> {
    let mut wanted: Vec<(Field, Option<&str>)> = [
        (Field::UsageLocation, &changes.usage_location),
        (Field::DisplayName, &changes.display_name),
        (Field::FirstName, &changes.first_name),
        (Field::LastName, &changes.last_name),
        (Field::UserPrincipalName, &changes.user_principal_name),
    ]
    .into_iter()
    .filter_map(|(f, v)| Some((f, Some(v.as_deref()?))))
    .collect();
    wanted.extend(changes.more.iter().map(|(f, v)| (*f, v.as_deref())));
    let mut out: Vec<FieldChange> = wanted
        .into_iter()
        .map(|(field, desired)| {
            let current = live_text(field, live);
            let case_insensitive = matches!(field, Field::UsageLocation | Field::UserPrincipalName);
            let same = match (&current, desired) {
                (None, None) => true,
                (Some(c), Some(d)) if case_insensitive => c.trim().eq_ignore_ascii_case(d),
                (Some(c), Some(d)) => c.trim() == d,
                _ => false,
            };
            FieldChange {
                field: property(field),
                current,
                desired: Some(desired.unwrap_or(CLEAR).to_string()),
                changes: !same,
            }
        })
        .collect();
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
    use serde_json::json;

    #[test]
    fn the_select_names_every_property_but_the_password() {
        let s = select();
        assert!(
            s.starts_with("id,usageLocation,displayName,givenName,surname,"),
            "{s}"
        );
        assert!(s.ends_with(",preferredLanguage,accountEnabled"), "{s}");
        assert!(!s.contains("password"));
    }

    #[test]
    fn every_field_but_the_password_can_be_undone_by_its_own_property() {
        let fields: Vec<Field> = FIELDS
            .iter()
            .copied()
            .filter(|f| *f != Field::Password)
            .collect();
        let undo: Vec<Field> = UNDO_COLUMNS.iter().map(|(_, f)| *f).collect();
        assert_eq!(undo, fields);
        for (name, field) in UNDO_COLUMNS {
            assert_eq!(*name, property(*field));
        }
    }

    #[test]
    fn strings_booleans_arrays_and_clears_compare() {
        let changes = Changes {
            first_name: Some("Anna".into()),
            more: vec![
                (Field::AccountEnabled, Some("false".into())),
                (Field::BusinessPhones, Some("+1 555".into())),
                (Field::Department, None),
                (Field::JobTitle, None),
            ]
            .into(),
            ..Changes::default()
        };
        let live = json!({"givenName": "Anna", "accountEnabled": true,
            "businessPhones": ["+1 555"], "department": "Sales", "jobTitle": null});
        let got: Vec<(&str, Option<String>, bool)> = compare(&changes, live.as_object().unwrap())
            .into_iter()
            .map(|c| (c.field, c.current, c.changes))
            .collect();
        assert_eq!(
            got,
            [
                ("givenName", Some("Anna".into()), false),
                ("accountEnabled", Some("true".into()), true),
                ("businessPhones", Some("+1 555".into()), false),
                ("department", Some("Sales".into()), true),
                ("jobTitle", None, false),
            ]
        );
    }
}
