//! Which fields a run sends (`--fields`) and how a target's own column names are read: the
//! names a user may give, with the likely intended one for a typo. Uses only `targets`.

use crate::targets::{Field, Target};

/// How alike (normalised Damerau-Levenshtein) a name must be to a field's to be suggested.
const SUGGEST_AT_LEAST: f64 = 0.7;

/// Lower case without spaces, `-` and `_`: the form column and field names are compared in.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field `name` means for `target` (its column name, or the target's own name for it,
/// such as an Entra export's `usageLocation`), or why it is none.
pub fn field_named(target: &dyn Target, name: &str) -> Result<Field, String> {
    let n = normalize(name);
    let by_column = |n: &str| {
        target
            .fields()
            .iter()
            .copied()
            .find(|f| normalize(f.column()) == n)
    };
    if let Some(f) = by_column(&n).or_else(|| target.column_alias(&n).and_then(by_column)) {
        return Ok(f);
    }
    let shown = crate::core::text::shorten(name.trim(), 60);
    if n == "userprincipalname" || n == "upn" {
        return Err(format!(
            "\"{shown}\" is not a field that can be changed: user_principal_name names the user; renaming uses new_user_principal_name"
        ));
    }
    let best = target
        .fields()
        .iter()
        .map(|f| {
            (
                strsim::normalized_damerau_levenshtein(&n, &normalize(f.column())),
                f,
            )
        })
        .filter(|(score, _)| *score >= SUGGEST_AT_LEAST)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = match best {
        Some((_, f)) => format!(", did you mean \"{}\"?", f.column()),
        None if target.unchangeable_column(&n) => {
            format!(": it cannot be changed through {}", target.title())
        }
        None => String::new(),
    };
    let all: Vec<&str> = target.fields().iter().map(|f| f.column()).collect();
    Err(format!(
        "\"{shown}\" is not a field that can be changed{hint} (the fields: {})",
        all.join(", ")
    ))
}

/// The fields of a comma-separated list such as `usage_location,display_name`, each once, in
/// the list's order; every name that is not a field is named in the one error.
pub fn parse_fields(target: &dyn Target, list: &str) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    let mut problems = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match field_named(target, name) {
            Ok(f) if !fields.contains(&f) => fields.push(f),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if fields.is_empty() {
        return Err("names no field (such as usage_location or display_name)".into());
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::partner_center::PartnerCenter;

    #[test]
    fn fields_are_named_by_column_or_by_the_target_s_own_name() {
        let got = parse_fields(
            &PartnerCenter,
            "usage_location, displayName,givenName,usage-location",
        );
        assert_eq!(
            got.unwrap(),
            [Field::UsageLocation, Field::DisplayName, Field::FirstName]
        );
        assert_eq!(
            parse_fields(&PartnerCenter, "new_user_principal_name").unwrap(),
            [Field::UserPrincipalName]
        );
    }

    #[test]
    fn every_name_that_is_no_field_is_named_with_the_likely_one() {
        let e = parse_fields(&PartnerCenter, "usage_locaton,jobTitle,upn,colour").unwrap_err();
        assert!(e.contains("\"usage_locaton\" is not a field that can be changed, did you mean \"usage_location\"?"), "{e}");
        assert!(e.contains("\"jobTitle\" is not a field that can be changed: it cannot be changed through Partner Center"), "{e}");
        assert!(e.contains("renaming uses new_user_principal_name"), "{e}");
        assert!(
            e.contains(
                "\"colour\" is not a field that can be changed (the fields: usage_location,"
            ),
            "{e}"
        );
        assert!(parse_fields(&PartnerCenter, " , ").is_err());
    }

    #[test]
    fn graph_s_own_fields_are_fields_through_graph_only() {
        use crate::targets::graph::Graph;
        let got = parse_fields(
            &Graph,
            "job_title,department,telephoneNumber,accountEnabled",
        );
        assert_eq!(
            got.unwrap(),
            [
                Field::JobTitle,
                Field::Department,
                Field::BusinessPhones,
                Field::AccountEnabled
            ]
        );
        let e = parse_fields(&Graph, "job_titel,mail").unwrap_err();
        assert!(e.contains("did you mean \"job_title\"?"), "{e}");
        assert!(e.contains("\"mail\" is not a field that can be changed: it cannot be changed through Microsoft Graph"), "{e}");
        let e = parse_fields(&PartnerCenter, "job_title").unwrap_err();
        assert!(
            e.contains("cannot be changed through Partner Center"),
            "{e}"
        );
    }
}
