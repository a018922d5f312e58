//! The fields Partner Center lets a row change and the checks a cell passes before it is sent
//! (country codes, lengths, user principal names). Uses only `core` and `targets`.

use crate::core::text::shorten;
use crate::targets::Field;

/// The fields a Partner Center user update may set.
pub const FIELDS: &[Field] = &[
    Field::UsageLocation,
    Field::DisplayName,
    Field::FirstName,
    Field::LastName,
    Field::UserPrincipalName,
    Field::Password,
];

/// The value to send for a cell, or why it is refused. Passwords are checked by the input's
/// password rules and pass through here unchanged.
pub fn check(field: Field, v: &str) -> Result<String, String> {
    match field {
        Field::UsageLocation => check_country(v),
        Field::DisplayName => check_length(field, v, 256),
        Field::FirstName | Field::LastName => check_length(field, v, 64),
        Field::UserPrincipalName => check_upn(v),
        Field::Password => Ok(v.to_string()),
        other => Err(format!(
            "{} cannot be changed through Partner Center",
            other.column()
        )),
    }
}

fn check_country(v: &str) -> Result<String, String> {
    let upper = v.to_ascii_uppercase();
    if upper.len() == 2 && isocountry::CountryCode::for_alpha2(&upper).is_ok() {
        return Ok(upper);
    }
    let hint = match upper.as_str() {
        "UK" => " (the United Kingdom's code is GB)",
        "EL" => " (Greece's code is GR)",
        _ => " (such as DE, US, GB)",
    };
    Err(format!(
        "usage_location \"{}\" is not an ISO 3166-1 alpha-2 country code{hint}",
        shorten(v, 40)
    ))
}

fn check_length(field: Field, v: &str, max: usize) -> Result<String, String> {
    let n = v.chars().count();
    if n > max {
        Err(format!(
            "{} is {n} characters long; the limit is {max}",
            field.column()
        ))
    } else {
        Ok(v.to_string())
    }
}

fn check_upn(v: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "new_user_principal_name \"{}\" does not look like local@domain with the characters Entra allows (A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @)",
            shorten(v, 60)
        )
    };
    let (local, domain) = v.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && local.chars().count() <= 64
        && v.chars().count() <= 113
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c))
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(v.to_string())
    } else {
        Err(bad())
    }
}
