//! Partner Center's collections: `GET /v1/customers?size=N` and
//! `GET /v1/customers/{customer}/users?size=N`, each page `{"items": [...], "links": {"next":
//! {"uri": ..., "headers": [{"key": "MS-ContinuationToken", "value": ...}]}}}`; the next page
//! is the `links.next.uri` (relative to `/v1`) sent with its continuation token. Every answer
//! is hostile: the next link must stay in the same collection, headers other than the
//! continuation token are ignored, texts and counts are bounded. Uses `core` and `targets`.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::targets::listing::{MAX_ITEM_TEXT, MAX_PAGE_ITEMS};
use crate::targets::{
    Collection, CustomerItem, Ids, Method, NextLink, Page, PageError, Request, UserItem,
};

/// Users asked for per page (the service allows up to 500; 100 keeps a page of long names
/// well under the 1 MiB an answer may have).
pub const PAGE_SIZE: usize = 100;
/// Customers asked for per page (the service's most: a partner's customers take few pages).
pub const CUSTOMERS_PAGE_SIZE: usize = 500;
/// The longest next-page URI accepted.
const MAX_URI: usize = 2048;
/// The longest continuation token accepted.
const MAX_TOKEN: usize = 8192;
/// The header a next page is asked with.
const CONTINUATION: &str = "ms-continuationtoken";

/// The path of a collection under `/v1`.
fn collection_path(collection: Collection) -> String {
    match collection {
        Collection::Customers => "/customers".into(),
        Collection::Users { customer } => format!("/customers/{customer}/users"),
    }
}

/// The request for a page: the first (`?size=N`) or the one `next` names.
pub fn request(collection: Collection, next: Option<&NextLink>, ids: Ids) -> Request {
    let mut headers = vec![
        ("ms-requestid", ids.request.to_string()),
        ("ms-correlationid", ids.correlation.to_string()),
    ];
    let path_and_query = match next {
        Some(next) => {
            headers.extend(next.headers.iter().cloned());
            next.path_and_query.clone()
        }
        None => {
            let size = match collection {
                Collection::Customers => CUSTOMERS_PAGE_SIZE,
                Collection::Users { .. } => PAGE_SIZE,
            };
            format!("/v1{}?size={size}", collection_path(collection))
        }
    };
    Request {
        method: Method::Get,
        path_and_query,
        headers,
        body: Vec::new(),
    }
}

/// A page of customers.
pub fn customers(body: &Map<String, Value>) -> Result<Page<CustomerItem>, PageError> {
    page(body, Collection::Customers, |item| {
        let profile = item.get("companyProfile").and_then(Value::as_object);
        let text_in = |key: &str| match profile.and_then(|p| p.get(key)) {
            None => text(item, key),
            Some(v) => text_value(v),
        };
        Some(CustomerItem {
            id: guid(item.get("id")?)?,
            domain: text_in("domain")?,
            name: text_in("companyName")?,
        })
    })
}

/// A page of `customer`'s users.
pub fn users(customer: Uuid, body: &Map<String, Value>) -> Result<Page<UserItem>, PageError> {
    page(body, Collection::Users { customer }, |item| {
        Some(UserItem {
            id: guid(item.get("id")?)?,
            user_principal_name: text(item, "userPrincipalName")?,
            display_name: text(item, "displayName")?,
            first_name: text(item, "firstName")?,
            last_name: text(item, "lastName")?,
            usage_location: text(item, "usageLocation")?,
        })
    })
}

/// The items (each read by `read`, None for a malformed one) and the next link of a page.
fn page<T>(
    body: &Map<String, Value>,
    collection: Collection,
    read: impl Fn(&Map<String, Value>) -> Option<T>,
) -> Result<Page<T>, PageError> {
    let items = body
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| PageError("the answer has no `items` list".into()))?;
    if items.len() > MAX_PAGE_ITEMS {
        return Err(PageError(format!(
            "the answer holds {} items, more than the {MAX_PAGE_ITEMS} a page may",
            items.len()
        )));
    }
    let mut page = Page {
        items: Vec::with_capacity(items.len()),
        malformed: 0,
        next: next_link(body, collection)?,
    };
    for item in items {
        match item.as_object().and_then(&read) {
            Some(item) => page.items.push(item),
            None => page.malformed += 1,
        }
    }
    Ok(page)
}

/// A GUID id, in any case.
fn guid(value: &Value) -> Option<Uuid> {
    crate::core::ids::parse_guid(value.as_str()?).ok()
}

/// A text field: empty when absent or null, None (malformed) when not a string or too long.
fn text(item: &Map<String, Value>, key: &str) -> Option<String> {
    item.get(key).map_or(Some(String::new()), text_value)
}

fn text_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(s) if s.chars().count() <= MAX_ITEM_TEXT => Some(s.clone()),
        _ => None,
    }
}

/// The next page, when the answer names one: its URI must stay in `collection` (relative to
/// `/v1`, printable ASCII, bounded), and only its continuation token is sent with it.
fn next_link(
    body: &Map<String, Value>,
    collection: Collection,
) -> Result<Option<NextLink>, PageError> {
    let next = match body.get("links").and_then(|l| l.get("next")) {
        None | Some(Value::Null) => return Ok(None),
        Some(next) => next,
    };
    let bad = |why: &str| PageError(format!("the answer's next-page link {why}"));
    let uri = next
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("has no `uri`"))?;
    if uri.len() > MAX_URI || !uri.starts_with('/') {
        return Err(bad("is not a relative URI of at most 2048 characters"));
    }
    if !uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'#' && b != b'\\')
    {
        return Err(bad("has characters a URI may not"));
    }
    let relative = match uri.get(..4) {
        Some(v1) if v1.eq_ignore_ascii_case("/v1/") => &uri[3..],
        _ => uri,
    };
    let path = relative.split('?').next().unwrap_or_default();
    if !same_collection(path, collection) {
        return Err(bad("leaves the collection being listed"));
    }
    let mut headers = Vec::new();
    let listed = next.get("headers").and_then(Value::as_array);
    for header in listed.into_iter().flatten() {
        let key = header
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if key.eq_ignore_ascii_case(CONTINUATION) && headers.is_empty() {
            headers.push((
                CONTINUATION,
                token(header.get("value"))
                    .ok_or_else(|| bad("has an unusable continuation token"))?,
            ));
        }
    }
    if headers.is_empty() {
        if let Some(t) = body.get("continuationToken").filter(|v| !v.is_null()) {
            headers.push((
                CONTINUATION,
                token(Some(t)).ok_or_else(|| bad("has an unusable continuation token"))?,
            ));
        }
    }
    Ok(Some(NextLink {
        path_and_query: format!("/v1{relative}"),
        headers,
    }))
}

/// A continuation token that can be sent as a header value.
fn token(value: Option<&Value>) -> Option<String> {
    let t = value?.as_str()?;
    let printable = t.bytes().all(|b| (0x20..0x7f).contains(&b));
    (!t.is_empty() && t.len() <= MAX_TOKEN && printable).then(|| t.to_string())
}

/// Whether `path` (under `/v1`) is the collection's own path.
fn same_collection(path: &str, collection: Collection) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match (collection, parts.as_slice()) {
        (Collection::Customers, ["", c]) => c.eq_ignore_ascii_case("customers"),
        (Collection::Users { customer }, ["", c, id, u]) => {
            c.eq_ignore_ascii_case("customers")
                && u.eq_ignore_ascii_case("users")
                && crate::core::ids::parse_guid(id).ok() == Some(customer)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn ids() -> Ids {
        Ids {
            request: Uuid::from_u128(1),
            correlation: Uuid::from_u128(2),
        }
    }

    #[test]
    fn first_pages_ask_for_a_size_and_next_pages_carry_the_continuation_token() {
        let c = Uuid::from_u128(7);
        let first = request(Collection::Users { customer: c }, None, ids());
        assert_eq!(first.method, Method::Get);
        assert_eq!(
            first.path_and_query,
            format!("/v1/customers/{c}/users?size=100")
        );
        assert_eq!(first.headers.len(), 2);
        let body = obj(json!({"items": [], "links": {"next": {
            "uri": format!("/customers/{c}/users?size=100&seekOperation=Next"),
            "method": "GET",
            "headers": [{"key": "Host", "value": "evil"}, {"key": "MS-ContinuationToken", "value": "abc=="}]}}}));
        let page = users(c, &body).unwrap();
        let next = page.next.unwrap();
        assert_eq!(
            next.path_and_query,
            format!("/v1/customers/{c}/users?size=100&seekOperation=Next")
        );
        assert_eq!(
            next.headers,
            [("ms-continuationtoken", "abc==".to_string())]
        );
        let second = request(Collection::Users { customer: c }, Some(&next), ids());
        assert_eq!(
            second.headers[2],
            ("ms-continuationtoken", "abc==".to_string())
        );
        let customers_first = request(Collection::Customers, None, ids());
        assert_eq!(customers_first.path_and_query, "/v1/customers?size=500");
        let last = obj(json!({"items": [], "links": {"self": {"uri": "/customers"}}}));
        assert_eq!(customers(&last).unwrap().next, None);
    }

    #[test]
    fn a_next_link_that_leaves_the_collection_or_is_malformed_is_refused() {
        let c = Uuid::from_u128(7);
        let other = Uuid::from_u128(8);
        for uri in [
            format!("/customers/{other}/users?size=1"),
            format!("/customers/{c}/users/{other}"),
            "https://evil.example/customers".to_string(),
            "//evil.example/customers".to_string(),
            format!("/customers/{c}/users?x=1#frag"),
            format!("/customers/{c}/users?x=\u{7f}"),
            format!("/customers/{c}/users?{}", "x".repeat(3000)),
        ] {
            let body = obj(json!({"items": [], "links": {"next": {"uri": uri}}}));
            assert!(users(c, &body).is_err(), "{uri}");
        }
        let token = obj(
            json!({"items": [], "links": {"next": {"uri": "/customers", "headers": [{"key": "MS-ContinuationToken", "value": "a\r\nX-Evil: 1"}]}}}),
        );
        assert!(customers(&token).is_err());
        let v1 = obj(
            json!({"items": [], "links": {"next": {"uri": "/v1/customers?seek=1"}}, "continuationToken": "t"}),
        );
        let next = customers(&v1).unwrap().next.unwrap();
        assert_eq!(next.path_and_query, "/v1/customers?seek=1");
        assert_eq!(next.headers, [("ms-continuationtoken", "t".to_string())]);
    }

    #[test]
    fn items_are_read_with_bounded_texts_and_malformed_ones_counted() {
        let c = Uuid::from_u128(7);
        let u = Uuid::from_u128(9);
        let body = obj(json!({"totalCount": 4, "items": [
            {"id": u.to_string(), "userPrincipalName": "a@b.c", "displayName": "=cmd|' /C calc'!A0",
             "firstName": null, "lastName": "L", "usageLocation": "DE"},
            {"id": "not-a-guid"},
            {"id": u.to_string(), "displayName": "x".repeat(MAX_ITEM_TEXT + 1)},
            {"id": u.to_string(), "displayName": 5},
            "text"
        ]}));
        let page = users(c, &body).unwrap();
        assert_eq!(page.malformed, 4);
        assert_eq!(page.items[0].display_name, "=cmd|' /C calc'!A0");
        assert_eq!(page.items[0].first_name, "");
        let many = obj(json!({"items": vec![json!({}); MAX_PAGE_ITEMS + 1]}));
        assert!(users(c, &many).is_err());
        assert!(users(c, &obj(json!({"value": []}))).is_err());
        let customer = obj(
            json!({"items": [{"id": c.to_string(), "companyProfile": {"domain": "contoso.onmicrosoft.com", "companyName": "Contoso"}}]}),
        );
        let got = customers(&customer).unwrap().items;
        assert_eq!(
            got,
            [CustomerItem {
                id: c,
                domain: "contoso.onmicrosoft.com".into(),
                name: "Contoso".into()
            }]
        );
    }
}
