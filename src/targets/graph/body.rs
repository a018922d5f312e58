//! The PATCH body of a Graph user update: each changed field under its property name, a
//! cleared one as `null` (`businessPhones` as `[]`), `businessPhones` as an array, `accountEnabled` as a boolean and the
//! password in `passwordProfile{password, forceChangePasswordNextSignIn}`; and the fields a
//! shown body sets, for a plan. Uses only `targets`.

use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};

use crate::targets::graph::fields::{property, FIELDS};
use crate::targets::{Changes, Field, CLEAR};

/// Shown in place of a password wherever a body is displayed.
pub const REDACTED: &str = "<redacted>";

/// The field's value as Graph takes it.
fn value(field: Field, checked: &str) -> Value {
    match field {
        Field::AccountEnabled => Value::Bool(checked == "true"),
        Field::BusinessPhones => json!([checked]),
        _ => Value::String(checked.to_string()),
    }
}

/// The body as JSON; with `redact`, the password replaced by [`REDACTED`].
pub fn body(changes: &Changes, redact: bool) -> Vec<u8> {
    let mut m = Map::new();
    let common = [
        (Field::UsageLocation, &changes.usage_location),
        (Field::DisplayName, &changes.display_name),
        (Field::FirstName, &changes.first_name),
        (Field::LastName, &changes.last_name),
        (Field::UserPrincipalName, &changes.user_principal_name),
    ];
    for (field, v) in common {
        if let Some(v) = v {
            m.insert(property(field).into(), value(field, v));
        }
    }
    for (field, v) in &changes.more {
        let v = match (field, v) {
            (_, Some(v)) => value(*field, v),
            // A collection is cleared by emptying it.
            (Field::BusinessPhones, None) => json!([]),
            (_, None) => Value::Null,
        };
        m.insert(property(*field).into(), v);
    }
    if let Some(password) = &changes.password {
        let shown = if redact {
            REDACTED
        } else {
            password.expose_secret()
        };
        m.insert(
            "passwordProfile".into(),
            json!({"password": shown, "forceChangePasswordNextSignIn": changes.force_change_password}),
        );
    }
    serde_json::to_vec(&m).unwrap_or_default()
}

/// The fields a shown body sets (Graph's property names) and their values, in the order of
/// [`FIELDS`]: a cleared one as [`CLEAR`], a boolean as `true`/`false`, the password as None
/// (never its value). Anything that is not such a body gives nothing.
pub fn shown_fields(shown: &str) -> Vec<(&'static str, Option<String>)> {
    let Ok(Value::Object(body)) = serde_json::from_str(shown) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for field in FIELDS.iter().copied().filter(|f| *f != Field::Password) {
        let name = property(field);
        let text = match body.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Null) => CLEAR.to_string(),
            Some(Value::Array(a)) if a.is_empty() => CLEAR.to_string(),
            Some(Value::Array(a)) => match a.first() {
                Some(Value::String(s)) => s.clone(),
                _ => continue,
            },
            _ => continue,
        };
        out.push((name, Some(text)));
    }
    if body.contains_key("passwordProfile") {
        out.push(("password", None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn text(changes: &Changes, redact: bool) -> String {
        String::from_utf8(body(changes, redact)).unwrap()
    }

    #[test]
    fn each_field_kind_in_the_body() {
        let changes = Changes {
            usage_location: Some("DE".into()),
            first_name: Some("Anna".into()),
            more: vec![
                (Field::JobTitle, Some("Engineer".into())),
                (Field::BusinessPhones, Some("+49 30 1234".into())),
                (Field::AccountEnabled, Some("false".into())),
                (Field::Department, None),
                (Field::MobilePhone, None),
            ]
            .into(),
            ..Changes::default()
        };
        assert_eq!(
            text(&changes, false),
            r#"{"accountEnabled":false,"businessPhones":["+49 30 1234"],"department":null,"givenName":"Anna","jobTitle":"Engineer","mobilePhone":null,"usageLocation":"DE"}"#
        );
        let cleared = Changes {
            more: vec![(Field::BusinessPhones, None), (Field::City, None)].into(),
            ..Changes::default()
        };
        assert_eq!(
            text(&cleared, false),
            r#"{"businessPhones":[],"city":null}"#
        );
    }

    #[test]
    fn the_password_goes_in_a_password_profile_and_is_redacted_for_display() {
        let changes = Changes {
            password: Some(SecretString::from("Pw-123456!".to_string())),
            force_change_password: true,
            ..Changes::default()
        };
        assert_eq!(
            text(&changes, false),
            r#"{"passwordProfile":{"forceChangePasswordNextSignIn":true,"password":"Pw-123456!"}}"#
        );
        let shown = text(&changes, true);
        assert!(
            !shown.contains("Pw-123456!") && shown.contains(REDACTED),
            "{shown}"
        );
        // A plan counts the password, never its value, even from a body holding it in clear.
        let fields = shown_fields(&text(&changes, false));
        assert_eq!(fields, [("password", None)]);
    }

    #[test]
    fn a_shown_body_gives_each_field_kind_for_a_plan() {
        let changes = Changes {
            usage_location: Some("DE".into()),
            more: vec![
                (Field::JobTitle, Some("<b>Eng</b>".into())),
                (Field::BusinessPhones, Some("+49 30 1234".into())),
                (Field::AccountEnabled, Some("false".into())),
                (Field::Department, None),
                (Field::MobilePhone, None),
            ]
            .into(),
            ..Changes::default()
        };
        let shown = String::from_utf8(body(&changes, true)).unwrap();
        let got = shown_fields(&shown);
        let want: Vec<(&str, Option<String>)> = vec![
            ("usageLocation", Some("DE".into())),
            ("jobTitle", Some("<b>Eng</b>".into())),
            ("department", Some(CLEAR.into())),
            ("mobilePhone", Some(CLEAR.into())),
            ("businessPhones", Some("+49 30 1234".into())),
            ("accountEnabled", Some("false".into())),
        ];
        assert_eq!(got, want);
        for crafted in ["", "[1]", "{\"jobTitle\": 5}", "<html>"] {
            assert!(shown_fields(crafted).is_empty(), "{crafted}");
        }
    }
}
