//! The fields Microsoft Graph lets a row change, their property names, the checks a cell passes
//! before it is sent (lengths, booleans, country and language codes) and which may be cleared.
//! The fields Partner Center has too are checked as Partner Center checks them. Uses only
//! `core` and `targets`.

use crate::core::text::shorten;
use crate::targets::{partner_center, Field};

/// The fields a Graph user update may set (`Password` with `ForceChangePassword` becomes
/// `passwordProfile`).
pub const FIELDS: &[Field] = &[
    Field::UsageLocation,
    Field::DisplayName,
    Field::FirstName,
    Field::LastName,
    Field::UserPrincipalName,
    Field::Password,
    Field::JobTitle,
    Field::Department,
    Field::OfficeLocation,
    Field::CompanyName,
    Field::EmployeeId,
    Field::MobilePhone,
    Field::BusinessPhones,
    Field::City,
    Field::State,
    Field::Country,
    Field::PostalCode,
    Field::StreetAddress,
    Field::PreferredLanguage,
    Field::AccountEnabled,
];

/// Graph's name of a field's property (`Password` is inside `passwordProfile`).
pub fn property(field: Field) -> &'static str {
    match field {
        Field::UsageLocation => "usageLocation",
        Field::DisplayName => "displayName",
        Field::FirstName => "givenName",
        Field::LastName => "surname",
        Field::UserPrincipalName => "userPrincipalName",
        Field::Password => "passwordProfile",
        Field::JobTitle => "jobTitle",
        Field::Department => "department",
        Field::OfficeLocation => "officeLocation",
        Field::CompanyName => "companyName",
        Field::EmployeeId => "employeeId",
        Field::MobilePhone => "mobilePhone",
        Field::BusinessPhones => "businessPhones",
        Field::City => "city",
        Field::State => "state",
        Field::Country => "country",
        Field::PostalCode => "postalCode",
        Field::StreetAddress => "streetAddress",
        Field::PreferredLanguage => "preferredLanguage",
        Field::AccountEnabled => "accountEnabled",
    }
}

/// Whether `<clear>` may clear the field: not a password, the sign-in name, the display name
/// (Graph refuses them empty) or `accountEnabled` (a boolean has no "none").
pub fn can_clear(field: Field) -> bool {
    !matches!(
        field,
        Field::Password | Field::UserPrincipalName | Field::DisplayName | Field::AccountEnabled
    )
}

/// The value to send for a cell (as text: `true`/`false` for a boolean, one number for
/// `businessPhones`), or why it is refused. Passwords are checked by the input's rules.
pub fn check(field: Field, v: &str) -> Result<String, String> {
    let max = match field {
        Field::UsageLocation
        | Field::DisplayName
        | Field::FirstName
        | Field::LastName
        | Field::UserPrincipalName
        | Field::Password => return partner_center::fields::check(field, v),
        Field::AccountEnabled => return check_boolean(field, v),
        Field::PreferredLanguage => return check_language(v),
        Field::EmployeeId => 16,
        Field::PostalCode => 40,
        Field::Department | Field::CompanyName | Field::MobilePhone | Field::BusinessPhones => 64,
        Field::JobTitle | Field::OfficeLocation | Field::City | Field::State | Field::Country => {
            128
        }
        Field::StreetAddress => 1024,
    };
    let n = v.chars().count();
    if n > max {
        return Err(format!(
            "{} is {n} characters long; the limit is {max}",
            field.column()
        ));
    }
    if field == Field::BusinessPhones && v.contains(';') {
        return Err(
            "business_phones takes one number (Graph keeps only one business phone)".into(),
        );
    }
    Ok(v.to_string())
}

fn check_boolean(field: Field, v: &str) -> Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok("true".into()),
        "false" | "no" | "0" => Ok("false".into()),
        _ => Err(format!(
            "{} \"{}\" is not true or false (yes/no, 1/0)",
            field.column(),
            shorten(v, 20)
        )),
    }
}

/// An ISO 639-1 language, optionally with an ISO 3166 region: `en`, `en-US`.
fn check_language(v: &str) -> Result<String, String> {
    let letters = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphabetic());
    let ok = match v.split_once('-') {
        None => letters(v, 2),
        Some((lang, region)) => letters(lang, 2) && letters(region, 2),
    };
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "preferred_language \"{}\" is not a language code such as en-US",
            shorten(v, 20)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_field_is_checked() {
        assert_eq!(check(Field::UsageLocation, "de").unwrap(), "DE");
        assert!(check(Field::UsageLocation, "UK")
            .unwrap_err()
            .contains("GB"));
        assert_eq!(check(Field::AccountEnabled, "No").unwrap(), "false");
        assert_eq!(check(Field::AccountEnabled, "TRUE").unwrap(), "true");
        assert!(check(Field::AccountEnabled, "maybe")
            .unwrap_err()
            .contains("account_enabled"));
        assert!(check(Field::EmployeeId, &"1".repeat(17))
            .unwrap_err()
            .contains("limit is 16"));
        assert_eq!(check(Field::JobTitle, "Engineer").unwrap(), "Engineer");
        assert!(check(Field::BusinessPhones, "+1 1; +1 2").is_err());
        assert!(check(Field::PreferredLanguage, "en-US").is_ok());
        assert!(check(Field::PreferredLanguage, "English").is_err());
        assert!(check(Field::UserPrincipalName, "a#EXT#@contoso.onmicrosoft.com").is_ok());
        for f in FIELDS {
            assert!(!property(*f).is_empty());
        }
        assert!(!can_clear(Field::Password) && !can_clear(Field::AccountEnabled));
        assert!(can_clear(Field::JobTitle) && can_clear(Field::BusinessPhones));
    }
}
