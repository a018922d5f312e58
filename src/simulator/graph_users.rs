//! Microsoft Graph's users in the simulator: the synthesized default user, the store per
//! tenant, lookups by object id or user principal name, `$select`, and the PATCH body checked
//! the way Graph checks it (an unknown property or a wrong type is a 400 `Request_BadRequest`,
//! `null` clears).

use super::*;

/// How a Graph property takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string up to this many characters; `null` clears it.
    Text(usize),
    /// A string that may not be cleared.
    Required(usize),
    Country,
    Boolean,
    /// An array of at most one string; `[]` or `null` clears it.
    Phones,
    Password,
}

/// Every property a PATCH may set, with its kind.
const PROPERTIES: &[(&str, Kind)] = &[
    ("usageLocation", Kind::Country),
    ("displayName", Kind::Required(256)),
    ("givenName", Kind::Text(64)),
    ("surname", Kind::Text(64)),
    ("userPrincipalName", Kind::Required(113)),
    ("jobTitle", Kind::Text(128)),
    ("department", Kind::Text(64)),
    ("officeLocation", Kind::Text(128)),
    ("companyName", Kind::Text(64)),
    ("employeeId", Kind::Text(16)),
    ("mobilePhone", Kind::Text(64)),
    ("businessPhones", Kind::Phones),
    ("city", Kind::Text(128)),
    ("state", Kind::Text(128)),
    ("country", Kind::Text(128)),
    ("postalCode", Kind::Text(40)),
    ("streetAddress", Kind::Text(1024)),
    ("preferredLanguage", Kind::Text(10)),
    ("accountEnabled", Kind::Boolean),
    ("passwordProfile", Kind::Password),
];

/// What `GET /users/{id}` answers without `$select` (Graph's default set, besides `id`).
const DEFAULT_SELECT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// A refused request: status, Graph code and message.
pub(super) struct GraphRefusal {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

fn bad_request(message: String) -> GraphRefusal {
    GraphRefusal {
        status: StatusCode::BAD_REQUEST,
        code: "Request_BadRequest",
        message,
    }
}

/// The user a tenant has for an object id nobody seeded or wrote.
pub(super) fn default_graph_user(id: Uuid) -> Map<String, Value> {
    let short = first8(id);
    let mut user = Map::new();
    for (name, kind) in PROPERTIES {
        if *kind != Kind::Password {
            user.insert((*name).to_string(), Value::Null);
        }
    }
    for (k, v) in [
        ("id", json!(id.to_string())),
        (
            "userPrincipalName",
            json!(format!("user-{short}@contoso.onmicrosoft.com")),
        ),
        ("displayName", json!(format!("User {short}"))),
        ("givenName", json!("User")),
        ("surname", json!(short)),
        ("usageLocation", json!("US")),
        ("accountEnabled", json!(true)),
        ("businessPhones", json!([])),
        ("mail", Value::Null),
    ] {
        user.insert(k.to_string(), v);
    }
    user
}

/// The users of every tenant, by (tenant, object id).
pub(super) type GraphUsers = HashMap<(Uuid, Uuid), Map<String, Value>>;

/// How a path names a user.
pub(super) enum GraphKey {
    Id(Uuid),
    Name(String),
}

impl GraphKey {
    /// `{guid}`, `{upn}` (percent-decoded) or `('{upn}')`.
    pub(super) fn parse(segment: &str) -> Option<GraphKey> {
        let decoded = percent_decode(segment)?;
        if let Some(id) = parse_guid(&decoded) {
            return Some(GraphKey::Id(id));
        }
        let name = match decoded
            .strip_prefix("('")
            .and_then(|r| r.strip_suffix("')"))
        {
            Some(quoted) => quoted.replace("''", "'"),
            None => decoded,
        };
        (!name.is_empty()).then_some(GraphKey::Name(name))
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The object id of the user `key` names in `tenant`, if there is one (`unknown` ids never are).
pub(super) fn find(
    users: &GraphUsers,
    tenant: Uuid,
    key: &GraphKey,
    unknown: &HashSet<Uuid>,
) -> Option<Uuid> {
    match key {
        // A user seeded in another tenant only is not this tenant's (as in Graph: 404).
        GraphKey::Id(id) => {
            let elsewhere = !users.contains_key(&(tenant, *id))
                && users.keys().any(|(t, u)| u == id && *t != tenant);
            (!unknown.contains(id) && !elsewhere).then_some(*id)
        }
        GraphKey::Name(name) => users.iter().find_map(|((t, id), user)| {
            let upn = user.get("userPrincipalName").and_then(Value::as_str)?;
            (*t == tenant && upn.eq_ignore_ascii_case(name)).then_some(*id)
        }),
    }
}

/// The properties a `$select` asks for (from the query), or the default set.
pub(super) fn selected(query: Option<&str>) -> Result<Vec<String>, GraphRefusal> {
    let select = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| percent_decode(k).is_some_and(|k| k == "$select"))
        .map(|(_, v)| percent_decode(v).unwrap_or_default());
    let Some(select) = select else {
        let mut names = vec!["id".to_string()];
        names.extend(DEFAULT_SELECT.iter().map(|s| s.to_string()));
        return Ok(names);
    };
    let mut names = Vec::new();
    for name in select.split(',').map(str::trim) {
        let known = name == "id"
            || name == "mail"
            || PROPERTIES
                .iter()
                .any(|(p, k)| *p == name && *k != Kind::Password);
        if !known {
            return Err(bad_request(format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.user'."
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Checks one property's new value, as Graph would.
fn check_value(name: &str, kind: Kind, v: &Value) -> Result<(), GraphRefusal> {
    let invalid = || {
        bad_request(format!(
            "Invalid value specified for property '{name}' of resource 'User'."
        ))
    };
    let ok = match (kind, v) {
        (Kind::Text(_) | Kind::Country | Kind::Phones, Value::Null) => true,
        (Kind::Text(max) | Kind::Required(max), Value::String(s)) => s.chars().count() <= max,
        (Kind::Country, Value::String(s)) => {
            s.len() == 2 && isocountry::CountryCode::for_alpha2(s).is_ok()
        }
        (Kind::Boolean, Value::Bool(_)) => true,
        (Kind::Phones, Value::Array(a)) => {
            a.len() <= 1
                && a.iter()
                    .all(|p| p.as_str().is_some_and(|p| p.chars().count() <= 64))
        }
        (Kind::Password, Value::Object(p)) => {
            p.keys()
                .all(|k| k == "password" || k == "forceChangePasswordNextSignIn")
                && p.get("password")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                && p.get("forceChangePasswordNextSignIn")
                    .is_none_or(Value::is_boolean)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// The body of a PATCH, checked: the properties to set (`passwordProfile` already reduced to
/// what is stored: never the password).
pub(super) fn check_patch(body: &[u8]) -> Result<Vec<(String, Value)>, GraphRefusal> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad_request("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.".into()));
    };
    if fields.is_empty() {
        return Err(bad_request("Empty Payload. JSON content expected.".into()));
    }
    let mut out = Vec::new();
    for (name, value) in fields {
        let Some((_, kind)) = PROPERTIES.iter().find(|(p, _)| *p == name) else {
            return Err(bad_request(format!(
                "Property '{}' does not exist on type 'microsoft.graph.user'.",
                name.chars().take(64).collect::<String>()
            )));
        };
        check_value(&name, *kind, &value)?;
        let stored = match (*kind, value) {
            (Kind::Password, v) => json!({
                "passwordSet": true,
                "forceChangePasswordNextSignIn": v.get("forceChangePasswordNextSignIn").and_then(Value::as_bool).unwrap_or(true),
            }),
            (Kind::Phones, Value::Null) => json!([]),
            (_, v) => v,
        };
        out.push((name, stored));
    }
    Ok(out)
}

/// The user as a GET with these properties answers it.
pub(super) fn project(user: &Map<String, Value>, names: &[String]) -> Value {
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!("https://graph.microsoft.com/v1.0/$metadata#users/$entity"),
    );
    for name in names {
        out.insert(name.clone(), user.get(name).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}
