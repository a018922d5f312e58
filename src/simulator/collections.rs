//! The collections: `GET /v1/customers?size=N[&filter=..]` and
//! `GET /v1/customers/{customer}/users?size=N`, paged from the directory. A page holds at
//! most `size` items (and at most [`SimConfig::page_size`]); the next page is
//! `links.next.uri` sent with the `MS-ContinuationToken` header the link names, and a
//! `seekOperation=Next` request without a valid token is refused (400, code 800002). The
//! customers filter is Partner Center's `{"Field":"Domain","Value":..,"Operator":"starts_with"}`.
//! Faults scripted for a customer's id apply to the listing of its users; throttles and the
//! token check apply as to any request.

use super::*;

/// The most items a page holds whatever is asked (the service's limit).
const MAX_SIZE: usize = 500;

/// A collection request's route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Listing {
    Customers,
    Users(Uuid),
    /// `/v1/customers/{not a GUID}/users`.
    BadCustomer,
}

/// The collection a path names, if it names one.
pub(super) fn route(path: &str) -> Option<Listing> {
    let rest = path.strip_prefix("/v1/customers")?;
    if rest.is_empty() || rest == "/" {
        return Some(Listing::Customers);
    }
    let customer = rest.strip_prefix('/')?.strip_suffix("/users")?;
    if customer.contains('/') {
        return None;
    }
    Some(parse_guid(customer).map_or(Listing::BadCustomer, Listing::Users))
}

/// Answers a collection request: faults and throttles, the token, then the page.
pub(super) async fn answer(
    ctx: &mut Ctx,
    conn: Option<&ConnCtl>,
    parts: &axum::http::request::Parts,
    body: &Bytes,
    listing: Listing,
) -> Response {
    let key = match listing {
        Listing::Users(c) => Some(c),
        _ => None,
    };
    if let Some(answer) = injected(ctx, conn, key, key, body).await {
        return answer;
    }
    let shared = Arc::clone(&ctx.shared);
    if !shared.authorized(&parts.headers) {
        return ctx.finish(unauthorized());
    }
    if parts.method != Method::GET {
        let mut resp = pc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            800002,
            "The requested method is not supported by this resource.",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return ctx.finish(resp);
    }
    ctx.finish(page(&shared, listing, parts).unwrap_or_else(|e| *e))
}

/// The query's parameters, decoded.
fn query(parts: &axum::http::request::Parts) -> Vec<(String, String)> {
    let query = parts.uri.query().unwrap_or_default();
    match reqwest::Url::parse(&format!("http://sim/?{query}")) {
        Ok(url) => url.query_pairs().into_owned().collect(),
        Err(_) => Vec::new(),
    }
}

type Refusal = Box<Response>;

fn bad_request(description: &str) -> Refusal {
    Box::new(pc_error(StatusCode::BAD_REQUEST, 800002, description))
}

/// One page of the collection.
fn page(
    shared: &Shared,
    listing: Listing,
    parts: &axum::http::request::Parts,
) -> Result<Response, Refusal> {
    let params = query(parts);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let size = match param("size").map(str::parse::<usize>) {
        None | Some(Ok(0)) => shared.page_size,
        Some(Ok(n)) => n.min(shared.page_size),
        Some(Err(_)) => return Err(bad_request("size must be a whole number.")),
    }
    .clamp(1, MAX_SIZE);
    let key = match listing {
        Listing::Customers => "customers".to_string(),
        Listing::Users(c) => c.to_string(),
        Listing::BadCustomer => {
            return Err(bad_request("The customer tenant id must be a GUID."));
        }
    };
    let offset = match param("seekOperation") {
        Some(op) if op.eq_ignore_ascii_case("next") => {
            continuation(shared, &parts.headers, &key)
                .ok_or_else(|| bad_request("The continuation token is missing or invalid."))?
        }
        _ => 0,
    };
    let (items, more) = match listing {
        Listing::Users(c) => users(shared, c, offset, size)?,
        _ => customers(shared, param("filter"), offset, size)?,
    };
    let path = match listing {
        Listing::Users(c) => format!("/customers/{c}/users"),
        _ => "/customers".to_string(),
    };
    let filter = raw_filter(parts)
        .map(|f| format!("&filter={f}"))
        .unwrap_or_default();
    let mut links = json!({"self": {"uri": format!("{path}?size={size}{filter}"), "method": "GET", "headers": []}});
    if more {
        let token = format!("{}:{key}:{}", shared.salt, offset + items.len());
        links["next"] = json!({
            "uri": format!("{path}?size={size}{filter}&seekOperation=Next"),
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": token}],
        });
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "totalCount": items.len(),
            "items": items,
            "links": links,
            "attributes": {"objectType": "Collection"},
        }),
    ))
}

/// The `filter` parameter as sent (still encoded), to carry into the next link.
fn raw_filter(parts: &axum::http::request::Parts) -> Option<&str> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|p| p.strip_prefix("filter="))
}

/// The offset a continuation token names, if it is one this simulator gave for `key`.
fn continuation(shared: &Shared, headers: &HeaderMap, key: &str) -> Option<usize> {
    let token = headers.get("ms-continuationtoken")?.to_str().ok()?;
    let mut parts = token.splitn(3, ':');
    let (salt, k, offset) = (parts.next()?, parts.next()?, parts.next()?);
    (salt == shared.salt && k == key).then(|| offset.parse().ok())?
}

/// A page of customers (those not configured unknown), filtered by domain prefix.
fn customers(
    shared: &Shared,
    filter: Option<&str>,
    offset: usize,
    size: usize,
) -> Result<(Vec<Value>, bool), Refusal> {
    let prefix = match filter {
        None => None,
        Some(f) => Some(domain_prefix(f).ok_or_else(|| bad_request("The filter is not valid."))?),
    };
    let mut matching = shared
        .directory
        .directory
        .customers
        .iter()
        .filter(|c| !shared.unknown_customers.contains(&c.id))
        .filter(|c| {
            prefix
                .as_ref()
                .is_none_or(|p| c.domain.to_lowercase().starts_with(p))
        })
        .skip(offset);
    let items: Vec<Value> = matching.by_ref().take(size).map(customer_json).collect();
    Ok((items, matching.next().is_some()))
}

/// The lower-case prefix of a `{"Field":"Domain","Value":..,"Operator":"starts_with"}` filter.
fn domain_prefix(filter: &str) -> Option<String> {
    let v: Value = serde_json::from_str(filter).ok()?;
    let field = v.get("Field")?.as_str()?;
    let operator = v.get("Operator")?.as_str()?;
    if !field.eq_ignore_ascii_case("domain") || !operator.eq_ignore_ascii_case("starts_with") {
        return None;
    }
    Some(v.get("Value")?.as_str()?.to_lowercase())
}

fn customer_json(c: &DirCustomer) -> Value {
    json!({
        "id": c.id.to_string(),
        "companyProfile": {"tenantId": c.id.to_string(), "domain": c.domain, "companyName": c.company_name},
        "relationshipToPartner": "reseller",
        "attributes": {"objectType": "Customer"},
    })
}

/// A page of a customer's users (those not configured unknown), as GET would answer each.
fn users(
    shared: &Shared,
    customer: Uuid,
    offset: usize,
    size: usize,
) -> Result<(Vec<Value>, bool), Refusal> {
    let known = shared.directory.customer(customer);
    if shared.unknown_customers.contains(&customer) || known.is_none() {
        let status = StatusCode::NOT_FOUND;
        return Err(Box::new(pc_error(
            status,
            60003,
            "Customer tenant not found.",
        )));
    }
    if shared.forbidden_customers.contains(&customer) {
        return Err(Box::new(pc_error(
            StatusCode::FORBIDDEN,
            20002,
            "The partner does not have a relationship with this customer.",
        )));
    }
    let mut matching = known
        .into_iter()
        .flat_map(|c| c.users.iter())
        .filter(|u| !shared.unknown_users.contains(&u.id))
        .skip(offset);
    let page: Vec<Uuid> = matching.by_ref().take(size).map(|u| u.id).collect();
    let more = matching.next().is_some();
    let stored = lock(&shared.users);
    let items = page
        .into_iter()
        .map(|u| {
            let overrides = stored.get(&(customer, u)).cloned().unwrap_or_default();
            let mut user = shared.current_user(customer, u, &overrides);
            user.remove(PASSWORD_PROFILE);
            Value::Object(user)
        })
        .collect();
    Ok((items, more))
}

impl Shared {
    /// A user as the API shows it: its directory entry (or the synthesized default) with the
    /// fields written to it over it.
    pub(super) fn current_user(
        &self,
        customer: Uuid,
        user: Uuid,
        overrides: &Overrides,
    ) -> Map<String, Value> {
        let mut current = match self.directory.user(customer, user) {
            Some(u) => u.to_json(customer),
            None => default_user(customer, user),
        };
        for (k, v) in overrides {
            current.insert(k.to_string(), v.clone());
        }
        current
    }

    /// Whether a directory given on purpose lacks this customer (404, 60003) or user (60002).
    pub(super) fn outside_directory(&self, customer: Uuid, user: Uuid) -> Option<Response> {
        if !self.directory.strict {
            return None;
        }
        if self.directory.customer(customer).is_none() {
            return Some(pc_error(
                StatusCode::NOT_FOUND,
                60003,
                "Customer tenant not found.",
            ));
        }
        self.directory
            .user(customer, user)
            .is_none()
            .then(|| pc_error(StatusCode::NOT_FOUND, 60002, "User object id not found."))
    }
}
