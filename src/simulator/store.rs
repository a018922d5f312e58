//! The user store: a synthesized default user per id, with the fields written to it over the default.

use super::*;

/// The user a GET answers when nothing was stored or seeded.
pub(super) fn default_user(customer: Uuid, user: Uuid) -> Map<String, Value> {
    let short = first8(user);
    let value = json!({
        "id": user.to_string(),
        "userPrincipalName": format!("user-{short}@contoso.onmicrosoft.com"),
        "firstName": "User",
        "lastName": short,
        "displayName": format!("User {short}"),
        "usageLocation": "US",
        "userDomainType": "none",
        "state": "active",
        "links": {"self": {"uri": format!("/customers/{customer}/users/{user}"), "method": "GET", "headers": []}},
        "attributes": {"objectType": "CustomerUser"},
    });
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(super) const PASSWORD_PROFILE: &str = "passwordProfile";

/// The fields written to a user over its default, in the order they were first set.
pub(super) type Overrides = Vec<(Cow<'static, str>, Value)>;

/// Sets one field of a user's overrides.
pub(super) fn set(overrides: &mut Overrides, key: Cow<'static, str>, value: Value) {
    match overrides.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value,
        None => overrides.push((key, value)),
    }
}

pub(super) fn stored_password_profile(force: bool) -> Value {
    json!({"forceChangePassword": force, "passwordSet": true})
}
