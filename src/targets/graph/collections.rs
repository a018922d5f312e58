//! Microsoft Graph's listings: a tenant's users (`GET /users?$select=...&$top=999`) and a
//! user's directory roles (`GET /users/{id}/memberOf/microsoft.graph.directoryRole?$select=
//! displayName`), each page `{"value": [...], "@odata.nextLink": "https://.../users?...&$skiptoken=..."}`.
//! Graph has no list of a partner's customers: tenants are named (by GUID). Every answer is
//! hostile: a next link must name the same collection (its path must end with the
//! collection's), only its query is taken, and the next page is asked of the run's own base
//! URL, so a link naming another host never gets the token; texts and counts are bounded.
//! The tenant is the token's (one per tenant: see `send::tenant_tokens`). Uses `core` and `targets`.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::targets::listing::{MAX_ITEM_TEXT, MAX_PAGE_ITEMS};
use crate::targets::{Collection, Ids, Method, NextLink, Page, PageError, Request, UserItem};

/// The user properties a listing asks for.
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,usageLocation";
/// Users asked for per page (Graph's most).
pub const PAGE_SIZE: usize = 999;
/// The longest next link accepted.
const MAX_LINK: usize = 4096;

/// The path of a collection under the base URL.
fn collection_path(collection: Collection) -> Result<String, PageError> {
    match collection {
        Collection::Customers => Err(PageError(
            "Microsoft Graph has no list of a partner's customers: name each customer tenant by its GUID (a domain cannot be resolved without a partner API)".into(),
        )),
        Collection::Users { .. } => Ok("/users".into()),
        Collection::Roles { user, .. } => Ok(format!(
            "/users/{user}/memberOf/microsoft.graph.directoryRole"
        )),
    }
}

/// The request for a page: the first, or the one `next` names.
pub fn request(
    collection: Collection,
    next: Option<&NextLink>,
    ids: Ids,
) -> Result<Request, PageError> {
    let path = collection_path(collection)?;
    let path_and_query = match (next, collection) {
        (Some(next), _) => next.path_and_query.clone(),
        (None, Collection::Roles { .. }) => format!("{path}?$select=displayName"),
        (None, _) => format!("{path}?$select={USER_SELECT}&$top={PAGE_SIZE}"),
    };
    Ok(Request {
        method: Method::Get,
        path_and_query,
        headers: vec![
            ("client-request-id", ids.correlation.to_string()),
            ("request-id", ids.request.to_string()),
        ],
        body: Vec::new(),
    })
}

/// The next page `@odata.nextLink` names, checked to stay in `collection`.
fn next_link(
    body: &Map<String, Value>,
    collection: Collection,
) -> Result<Option<NextLink>, PageError> {
    let Some(link) = body.get("@odata.nextLink") else {
        return Ok(None);
    };
    let refuse = |why: &str| PageError(format!("the next-page link was refused: {why}"));
    let link = link.as_str().ok_or_else(|| refuse("not a text"))?;
    if link.len() > MAX_LINK {
        return Err(refuse("too long"));
    }
    let url = reqwest::Url::parse(link).map_err(|_| refuse("not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(refuse("not a plain web address"));
    }
    let path = collection_path(collection)?;
    if !url.path().ends_with(&path) {
        return Err(refuse("it names another collection"));
    }
    let query = url.query().unwrap_or("");
    if query.is_empty() || query.bytes().any(|b| !b.is_ascii_graphic() || b == b'#') {
        return Err(refuse("its query is missing or malformed"));
    }
    Ok(Some(NextLink {
        path_and_query: format!("{path}?{query}"),
        headers: Vec::new(),
    }))
}

/// A text property: None when present but not a (bounded) text; empty when absent or null.
fn text(item: &Map<String, Value>, key: &str) -> Option<String> {
    match item.get(key) {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) if s.len() <= MAX_ITEM_TEXT => Some(s.clone()),
        _ => None,
    }
}

/// The items of a page, each read by `read` (None: malformed, counted and left out).
fn page<T>(
    body: &Map<String, Value>,
    collection: Collection,
    read: impl Fn(&Map<String, Value>) -> Option<T>,
) -> Result<Page<T>, PageError> {
    let values = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| PageError("the answer has no list of items (`value`)".into()))?;
    if values.len() > MAX_PAGE_ITEMS {
        return Err(PageError(format!(
            "a page of {} items (at most {MAX_PAGE_ITEMS} are read)",
            values.len()
        )));
    }
    let items: Vec<T> = values
        .iter()
        .filter_map(|v| v.as_object().and_then(&read))
        .collect();
    Ok(Page {
        malformed: values.len() - items.len(),
        items,
        next: next_link(body, collection)?,
    })
}

/// A page of `customer`'s users.
pub fn users(customer: Uuid, body: &Map<String, Value>) -> Result<Page<UserItem>, PageError> {
    page(body, Collection::Users { customer }, |item| {
        let id = item.get("id")?.as_str()?;
        let upn = text(item, "userPrincipalName")?;
        Some(UserItem {
            id: Uuid::parse_str(id).ok()?,
            user_principal_name: (!upn.is_empty()).then_some(upn)?,
            display_name: text(item, "displayName")?,
            first_name: text(item, "givenName")?,
            last_name: text(item, "surname")?,
            usage_location: text(item, "usageLocation")?,
        })
    })
}

/// A page of a user's directory role names.
pub fn roles(
    customer: Uuid,
    user: Uuid,
    body: &Map<String, Value>,
) -> Result<Page<String>, PageError> {
    page(body, Collection::Roles { customer, user }, |item| {
        let name = text(item, "displayName")?;
        (!name.is_empty()).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pages_of_users_follow_a_next_link_only_within_the_collection() {
        let c = Uuid::from_u128(1);
        let u = Uuid::from_u128(2);
        let body = obj(json!({"value": [
            {"id": u.to_string(), "userPrincipalName": "a@x.com", "displayName": "A", "givenName": null, "surname": "S", "usageLocation": "DE"},
            {"id": "not-a-guid", "userPrincipalName": "b@x.com"},
            {"id": Uuid::from_u128(3).to_string(), "userPrincipalName": "c@x.com", "displayName": "x".repeat(2000)},
        ], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$select=id&$top=999&$skiptoken=X1"}));
        let page = users(c, &body).unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.malformed, 2);
        assert_eq!(
            (
                page.items[0].first_name.as_str(),
                page.items[0].last_name.as_str()
            ),
            ("", "S")
        );
        assert_eq!(
            page.next.unwrap().path_and_query,
            "/users?$select=id&$top=999&$skiptoken=X1"
        );
        for bad in [
            json!("https://evil.example/v1.0/groups?$skiptoken=1"),
            json!("/v1.0/users?$skiptoken=1"),
            json!("https://user:pw@graph.microsoft.com/v1.0/users?$skiptoken=1"),
            json!("https://graph.microsoft.com/v1.0/users"),
            json!(7),
        ] {
            let body = obj(json!({"value": [], "@odata.nextLink": bad}));
            assert!(users(c, &body).is_err(), "{bad}");
        }
        // Another host with the same path: only the query is taken, asked of the run's own base.
        let body = obj(
            json!({"value": [], "@odata.nextLink": "https://evil.example/v1.0/users?$skiptoken=2"}),
        );
        assert_eq!(
            users(c, &body).unwrap().next.unwrap().path_and_query,
            "/users?$skiptoken=2"
        );
        assert!(users(c, &obj(json!({"items": []}))).is_err());
    }

    #[test]
    fn roles_are_read_by_name_and_customers_cannot_be_listed() {
        let (c, u) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let body =
            obj(json!({"value": [{"displayName": "Global Administrator"}, {"displayName": 5}]}));
        let page = roles(c, u, &body).unwrap();
        assert_eq!(
            (page.items, page.malformed),
            (vec!["Global Administrator".to_string()], 1)
        );
        let ids = Ids {
            request: u,
            correlation: c,
        };
        let first = request(
            Collection::Roles {
                customer: c,
                user: u,
            },
            None,
            ids,
        )
        .unwrap();
        assert_eq!(
            first.path_and_query,
            format!("/users/{u}/memberOf/microsoft.graph.directoryRole?$select=displayName")
        );
        let users = request(Collection::Users { customer: c }, None, ids).unwrap();
        assert_eq!(
            users.path_and_query,
            format!("/users?$select={USER_SELECT}&$top=999")
        );
        let refused = request(Collection::Customers, None, ids).unwrap_err();
        assert!(refused.0.contains("GUID"), "{refused}");
    }
}
