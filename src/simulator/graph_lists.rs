//! Microsoft Graph's listings in the simulator: a tenant's users (`GET /users?$select=...&$top=N`)
//! and a user's directory roles (`GET /users/{id}/memberOf/microsoft.graph.directoryRole`), in
//! pages of at most `$top` and [`SimConfig::page_size`] items, each page but the last naming the
//! next in `@odata.nextLink` (an absolute URL with a `$skiptoken`). The users are the tenant's
//! seeded or written ones, in object-id order; the roles are [`SimConfig::roles`].

use super::graph_users::*;
use super::*;

/// A listing a path names.
#[derive(Clone, Copy, Debug)]
pub(super) enum List {
    Users,
    Roles(Uuid),
}

/// The listing `path` (under the Graph prefix) names, if it names one.
pub(super) fn route(path: &str) -> Option<List> {
    if path == "/users" {
        return Some(List::Users);
    }
    let rest = path.strip_prefix("/users/")?;
    let user = rest.strip_suffix("/memberOf/microsoft.graph.directoryRole")?;
    parse_guid(user).map(List::Roles)
}

/// A query parameter's (percent-decoded) value.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.replace("%24", "$") == name)
        .map(|(_, v)| v.replace("%24", "$").replace("%2C", ","))
}

fn bad(message: &str) -> GraphRefusal {
    GraphRefusal {
        status: StatusCode::BAD_REQUEST,
        code: "Request_BadRequest",
        message: message.into(),
    }
}

/// The page of `list` the request asks for, in `tenant`.
pub(super) fn answer(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    tenant: Uuid,
    list: List,
) -> Result<Response, GraphRefusal> {
    if parts.method != Method::GET {
        return Err(bad(
            "The requested method is not supported by this resource.",
        ));
    }
    let query = parts.uri.query();
    let top = match param(query, "$top") {
        None => 100,
        Some(t) => match t.parse::<usize>() {
            Ok(n @ 1..=999) => n,
            _ => {
                return Err(bad(
                    "Invalid page size specified: must be between 1 and 999.",
                ))
            }
        },
    };
    let skip = match param(query, "$skiptoken") {
        None => 0,
        Some(t) => t
            .strip_prefix(&format!("{}-", shared.salt))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| bad("Invalid $skiptoken."))?,
    };
    let (items, total) = match list {
        List::Users => users(shared, tenant, query, skip, top)?,
        List::Roles(user) => roles(shared, user, skip, top),
    };
    let shown = items.len();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": items,
    });
    if skip + shown < total {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let mut next = format!(
            "http://{host}{GRAPH_PREFIX}{}?",
            parts.uri.path().strip_prefix(GRAPH_PREFIX).unwrap_or("")
        );
        if let Some(select) = param(query, "$select") {
            next.push_str(&format!("$select={select}&"));
        }
        next.push_str(&format!(
            "$top={top}&$skiptoken={}-{}",
            shared.salt,
            skip + shown
        ));
        body["@odata.nextLink"] = Value::String(next);
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// The page of `tenant`'s users from `skip`, and how many it has.
fn users(
    shared: &Shared,
    tenant: Uuid,
    query: Option<&str>,
    skip: usize,
    top: usize,
) -> Result<(Vec<Value>, usize), GraphRefusal> {
    let names = selected(query)?;
    let users = lock(&shared.graph.users);
    let mut ids: Vec<Uuid> = users
        .keys()
        .filter(|(t, _)| *t == tenant)
        .map(|(_, u)| *u)
        .collect();
    ids.sort();
    let page = ids
        .iter()
        .skip(skip)
        .take(top.min(shared.page_size))
        .filter_map(|id| users.get(&(tenant, *id)))
        .map(|user| {
            let mut item = project(user, &names);
            if let Some(m) = item.as_object_mut() {
                m.remove("@odata.context");
            }
            item
        })
        .collect();
    Ok((page, ids.len()))
}

/// The page of `user`'s directory roles from `skip`, and how many it holds.
fn roles(shared: &Shared, user: Uuid, skip: usize, top: usize) -> (Vec<Value>, usize) {
    let held = shared.roles.get(&user).cloned().unwrap_or_default();
    let page = held
        .iter()
        .enumerate()
        .skip(skip)
        .take(top.min(shared.page_size))
        .map(|(i, name)| {
            json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": Uuid::from_u128(0x0d1e_0000_0000_4000_8000_0000_0000_0000 | i as u128),
                "displayName": name,
            })
        })
        .collect();
    (page, held.len())
}
