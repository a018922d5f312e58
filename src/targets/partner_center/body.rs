//! The PATCH body of a user update: the fields a row changes, as Partner Center takes them
//! (camelCase, `passwordProfile`, `attributes.objectType`), and the fields a shown body sets,
//! for a plan. Uses only `targets`.

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::targets::Changes;

/// Shown in place of a password wherever a body is displayed.
pub const REDACTED: &str = "<redacted>";

#[derive(Serialize)]
struct Attributes {
    #[serde(rename = "objectType")]
    object_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PasswordProfile<'a> {
    password: &'a str,
    force_change_password: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_location: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_principal_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_profile: Option<PasswordProfile<'a>>,
    attributes: Attributes,
}

/// The fields a shown body sets (the API's names) and their values, in the body's field order;
/// the password as None (never its value). Anything that is not such a body gives nothing.
pub fn shown_fields(shown: &str) -> Vec<(&'static str, Option<String>)> {
    const TEXT_FIELDS: [&str; 5] = [
        "usageLocation",
        "displayName",
        "firstName",
        "lastName",
        "userPrincipalName",
    ];
    let Ok(serde_json::Value::Object(body)) = serde_json::from_str(shown) else {
        return Vec::new();
    };
    let mut out: Vec<(&'static str, Option<String>)> = TEXT_FIELDS
        .into_iter()
        .filter_map(|f| Some((f, Some(body.get(f)?.as_str()?.to_string()))))
        .collect();
    if body.contains_key("passwordProfile") {
        out.push(("password", None));
    }
    out
}

impl Changes {
    fn body(&self, redact: bool) -> Vec<u8> {
        serde_json::to_vec(&Body {
            usage_location: self.usage_location.as_deref(),
            display_name: self.display_name.as_deref(),
            first_name: self.first_name.as_deref(),
            last_name: self.last_name.as_deref(),
            user_principal_name: self.user_principal_name.as_deref(),
            password_profile: self.password.as_ref().map(|p| PasswordProfile {
                password: if redact { REDACTED } else { p.expose_secret() },
                force_change_password: self.force_change_password,
            }),
            attributes: Attributes {
                object_type: "CustomerUser",
            },
        })
        .expect("a body of strings serialises")
    }

    /// The exact PATCH body: the changed fields in camelCase plus `attributes.objectType`.
    /// It holds the password in clear: send it, never show it.
    pub fn to_body(&self) -> Vec<u8> {
        self.body(false)
    }

    /// The body as it may be shown (dry-run plans): the password replaced by `<redacted>`.
    pub fn to_redacted_body(&self) -> String {
        String::from_utf8(self.body(true)).expect("JSON is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn a_shown_body_gives_its_fields_and_never_a_password() {
        let changes = Changes {
            usage_location: Some("DE".into()),
            display_name: Some("<b>Anna</b>".into()),
            password: Some(SecretString::from("Pw-123456!".to_string())),
            ..Changes::default()
        };
        let fields = shown_fields(&changes.to_redacted_body());
        assert_eq!(
            fields,
            [
                ("usageLocation", Some("DE".to_string())),
                ("displayName", Some("<b>Anna</b>".to_string())),
                ("password", None),
            ]
        );
        // Even a body holding a password in clear gives none.
        let clear = String::from_utf8(changes.to_body()).unwrap();
        assert!(!format!("{:?}", shown_fields(&clear)).contains("Pw-123456"));
        for crafted in ["", "[1]", "{\"usageLocation\": 5}", "<html>"] {
            assert!(shown_fields(crafted).is_empty(), "{crafted}");
        }
    }
}
