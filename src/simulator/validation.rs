//! Entra-style validation of a PATCH body: known fields, ISO country codes, string limits, password rules.

use super::*;

/// The fields a PATCH may carry.
pub(super) const KNOWN_FIELDS: [&str; 7] = [
    "usageLocation",
    "displayName",
    "firstName",
    "lastName",
    "userPrincipalName",
    "passwordProfile",
    "attributes",
];

/// The symbols Entra accepts in a password (space included).
pub(super) const PASSWORD_SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

pub(super) const PASSWORD_REJECTED: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";

pub(super) struct PcError {
    pub(super) status: StatusCode,
    pub(super) code: u32,
    pub(super) description: String,
}

pub(super) fn invalid_input(description: impl Into<String>) -> PcError {
    PcError {
        status: StatusCode::BAD_REQUEST,
        code: 800002,
        description: description.into(),
    }
}

pub(super) fn invalid_property(description: impl Into<String>) -> PcError {
    PcError {
        status: StatusCode::BAD_REQUEST,
        code: 3000,
        description: description.into(),
    }
}

/// A validated PATCH: string fields, and the new password with its forceChangePassword.
#[derive(Debug)]
pub(super) struct UserPatch {
    pub(super) fields: Vec<(&'static str, String)>,
    pub(super) password: Option<(String, bool)>,
}

/// Shortens client-supplied text quoted in a description.
pub(super) fn quote(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

pub(super) fn validate_patch(body: &[u8]) -> Result<UserPatch, PcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| invalid_input("The request body is not valid JSON."))?;
    let Value::Object(obj) = value else {
        return Err(invalid_input("The request body must be a JSON object."));
    };
    let object_type_ok = obj
        .get("attributes")
        .and_then(|a| a.get("objectType"))
        .and_then(Value::as_str)
        == Some("CustomerUser");
    if !object_type_ok {
        return Err(invalid_input(
            "The request body must carry \"attributes\": {\"objectType\": \"CustomerUser\"}.",
        ));
    }
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(invalid_property(format!(
            "The property '{}' is not a valid property of a CustomerUser.",
            quote(unknown)
        )));
    }
    let mut patch = UserPatch {
        fields: Vec::new(),
        password: None,
    };
    for name in KNOWN_FIELDS {
        let Some(v) = obj.get(name) else { continue };
        match name {
            "attributes" => {}
            "passwordProfile" => patch.password = Some(validate_password_profile(v)?),
            _ => {
                let Some(s) = v.as_str() else {
                    return Err(invalid_property(format!(
                        "The property '{name}' must be a string."
                    )));
                };
                validate_string_field(name, s)?;
                patch.fields.push((name, s.to_owned()));
            }
        }
    }
    Ok(patch)
}

pub(super) fn validate_string_field(name: &str, s: &str) -> Result<(), PcError> {
    let len = s.chars().count();
    match name {
        "usageLocation" => {
            if s.len() != 2 || isocountry::CountryCode::for_alpha2(s).is_err() {
                return Err(invalid_property(format!(
                    "The property 'usageLocation' value '{}' is not a valid ISO 3166-1 alpha-2 country code.",
                    quote(s)
                )));
            }
        }
        "userPrincipalName" => {
            if !valid_upn(s) {
                return Err(invalid_property(format!(
                    "The property 'userPrincipalName' value '{}' is not a valid user principal name (alias@domain).",
                    quote(s)
                )));
            }
        }
        "displayName" => {
            if s.trim().is_empty() || len > 256 {
                return Err(invalid_property(
                    "The property 'displayName' must be 1 to 256 characters long and not blank.",
                ));
            }
        }
        _ => {
            if len > 64 {
                return Err(invalid_property(format!(
                    "The property '{name}' must be at most 64 characters long."
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn valid_upn(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c));
    let domain_ok = domain.contains('.')
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

pub(super) fn validate_password_profile(v: &Value) -> Result<(String, bool), PcError> {
    let shape = || {
        invalid_property(
            "The property 'passwordProfile' must be an object with a string 'password' and a boolean 'forceChangePassword'.",
        )
    };
    let Value::Object(profile) = v else {
        return Err(shape());
    };
    if let Some(unknown) = profile
        .keys()
        .find(|k| k.as_str() != "password" && k.as_str() != "forceChangePassword")
    {
        return Err(invalid_property(format!(
            "The property 'passwordProfile.{}' is not a valid property.",
            quote(unknown)
        )));
    }
    let Some(password) = profile.get("password").and_then(Value::as_str) else {
        return Err(shape());
    };
    let force = match profile.get("forceChangePassword") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(shape()),
    };
    if let Some(problem) = password_problem(password) {
        // Never quote the password.
        return Err(invalid_property(format!("{PASSWORD_REJECTED} {problem}")));
    }
    Ok((password.to_owned(), force))
}

/// Why a password breaks the Entra rules, or None if it is acceptable.
pub(super) fn password_problem(p: &str) -> Option<&'static str> {
    let len = p.chars().count();
    if !(8..=256).contains(&len) {
        return Some("A password must be 8 to 256 characters long.");
    }
    let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
    for c in p.chars() {
        if c.is_ascii_lowercase() {
            lower = true;
        } else if c.is_ascii_uppercase() {
            upper = true;
        } else if c.is_ascii_digit() {
            digit = true;
        } else if PASSWORD_SYMBOLS.contains(c) {
            symbol = true;
        } else {
            return Some("A password contains a character that is not allowed.");
        }
    }
    let classes = [lower, upper, digit, symbol].iter().filter(|b| **b).count();
    if classes < 3 {
        return Some("A password must contain at least 3 of: lower case letters, upper case letters, digits and symbols.");
    }
    None
}
