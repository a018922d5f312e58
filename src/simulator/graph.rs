//! Microsoft Graph's users API in the simulator, under `/graph/v1.0` (pass
//! `{simulator}/graph/v1.0` as the base URL): `GET /users/{id or upn}?$select=...` and
//! `PATCH /users/{id or upn}` answered 204, for the tenant the request's token is for (a token
//! issued at a customer tenant's endpoint serves that tenant only; the fixed token serves
//! [`SimGraph::tenant`]), and the listings of `graph_lists`. Scripted faults by object id
//! (`Status`, `Throttle`, `Drop`, `Echo`; the others are ignored),
//! a throttle per tenant answering 429 with a fractional `Retry-After`,
//! `x-ms-throttle-limit-percentage` when configured, and Graph's error shape
//! (`{"error":{"code","message","innerError":{"request-id","client-request-id","date"}}}`).

use super::graph_users::*;
use super::*;

/// Where the Graph routes live.
pub const GRAPH_PREFIX: &str = "/graph/v1.0";

/// The Graph side of the simulator.
#[derive(Clone, Debug)]
pub struct SimGraph {
    /// The tenant the accepted token is for: its users are the ones served.
    pub tenant: Uuid,
    /// A limit per tenant (each request, or `$batch` sub-request, counts): past it, 429 with a
    /// fractional `Retry-After`.
    pub throttle: Option<Throttle>,
    /// Sent as `x-ms-throttle-limit-percentage` on every answer.
    pub throttle_limit_percentage: Option<f64>,
    /// The n-th `$batch` request (0-based) gets `batch_faults[n]` as its own answer
    /// (`Status`, `Throttle`, `Drop`); past the end, its sub-requests are handled.
    pub batch_faults: Vec<Fault>,
}

impl Default for SimGraph {
    fn default() -> Self {
        SimGraph {
            tenant: Uuid::from_u128(0x6a7e_0000_0000_4000_8000_0000_0000_0001),
            throttle: None,
            throttle_limit_percentage: None,
            batch_faults: Vec::new(),
        }
    }
}

/// The Graph routes' state.
pub(super) struct GraphState {
    pub(super) config: SimGraph,
    /// The throttle, one bucket per tenant (see [`tenant_of`]).
    limiter: Option<DefaultKeyedRateLimiter<Uuid>>,
    pub(super) users: Mutex<GraphUsers>,
    /// `$batch` requests so far (the index of `batch_faults`).
    pub(super) batches: AtomicU64,
}

impl GraphState {
    pub(super) fn new(config: SimGraph) -> GraphState {
        GraphState {
            limiter: config.throttle.map(|t| RateLimiter::keyed(quota(t))),
            config,
            users: Mutex::new(HashMap::new()),
            batches: AtomicU64::new(0),
        }
    }
}

/// The answer's ids: Graph's own request id and the client's, echoed.
pub(super) struct GraphCtx {
    pub(super) request_id: String,
    pub(super) client_request_id: Option<HeaderValue>,
    pub(super) record: Option<usize>,
    /// A sub-request of a `$batch`: counted apart from whole requests.
    pub(super) sub: bool,
}

impl GraphCtx {
    pub(super) fn finish(&self, shared: &Shared, mut resp: Response) -> Response {
        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert("request-id", v);
        }
        if let Some(v) = &self.client_request_id {
            headers.insert("client-request-id", v.clone());
        }
        if let Some(p) = shared.graph.config.throttle_limit_percentage {
            if let Ok(v) = HeaderValue::from_str(&format!("{p:.1}")) {
                headers.insert("x-ms-throttle-limit-percentage", v);
            }
        }
        if self.sub {
            shared.sub_answered(resp.status());
        } else {
            shared.answered(self.record, resp.status());
        }
        resp
    }

    pub(super) fn error(
        &self,
        shared: &Shared,
        status: StatusCode,
        code: &str,
        message: &str,
    ) -> Response {
        let client = self
            .client_request_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let date = httpdate::fmt_http_date(SystemTime::now());
        let body = json!({"error": {"code": code, "message": message, "innerError": {
            "request-id": self.request_id, "client-request-id": client, "date": date}}});
        self.finish(shared, json_response(status, &body))
    }
}

pub(super) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let received = (Instant::now(), SystemTime::now());
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    shared.counters.received.fetch_add(1, Ordering::Relaxed);
    let ctx = GraphCtx {
        request_id: Uuid::new_v4().to_string(),
        client_request_id: parts.headers.get("client-request-id").cloned(),
        record: record_request(&shared, &parts, &body, received),
        sub: false,
    };
    let path = parts
        .uri
        .path()
        .strip_prefix(GRAPH_PREFIX)
        .unwrap_or_default();
    if path == "/$batch" {
        return super::graph_batch::handle(&shared, &ctx, &parts, &body).await;
    }
    respond(&shared, &ctx, &parts, &body).await
}

/// One request (alone, or one of a `$batch`): scripted faults, the throttle, the token (its
/// tenant), the route, then the operation or the listing.
pub(super) async fn respond(
    shared: &Shared,
    ctx: &GraphCtx,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Response {
    let path = parts
        .uri
        .path()
        .strip_prefix(GRAPH_PREFIX)
        .unwrap_or_default();
    let list = super::graph_lists::route(path);
    let key = match list {
        Some(_) => None,
        None => path.strip_prefix("/users/").and_then(GraphKey::parse),
    };
    if let Some(answer) = injected(shared, ctx, parts, key.as_ref(), body).await {
        return answer;
    }
    let Some(tenant) = shared.graph_tenant_of(&parts.headers) else {
        return unauthorized_graph(shared, ctx);
    };
    if let Some(list) = list {
        return match super::graph_lists::answer(shared, parts, tenant, list) {
            Ok(resp) => ctx.finish(shared, resp),
            Err(r) => ctx.error(shared, r.status, r.code, &r.message),
        };
    }
    let Some(key) = key else {
        let message = format!(
            "Resource not found for the segment '{}'.",
            path.trim_start_matches('/')
        );
        return ctx.error(shared, StatusCode::BAD_REQUEST, "BadRequest", &message);
    };
    match operate(shared, parts, tenant, &key, body) {
        Ok(resp) => ctx.finish(shared, resp),
        Err(r) => ctx.error(shared, r.status, r.code, &r.message),
    }
}

pub(super) fn unauthorized_graph(shared: &Shared, ctx: &GraphCtx) -> Response {
    let message = "Access token is empty or invalid.";
    ctx.error(
        shared,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
}

/// A scripted fault for the user's object id, then the tenant's throttle.
async fn injected(
    shared: &Shared,
    ctx: &GraphCtx,
    parts: &axum::http::request::Parts,
    key: Option<&GraphKey>,
    body: &[u8],
) -> Option<Response> {
    if let (true, Some(GraphKey::Id(id))) = (shared.needs_index, key) {
        let index = shared.next_index(*id);
        let scripted = shared
            .script
            .get(id)
            .and_then(|s| usize::try_from(index).ok().and_then(|i| s.get(i)));
        match scripted {
            Some(Fault::Status(s)) => {
                let status = status_or_500(*s);
                let reason = status.canonical_reason().unwrap_or("error");
                return Some(ctx.error(shared, status, "generalException", reason));
            }
            Some(Fault::Echo(s)) => {
                // Quotes the request body (a password included), as some services do.
                let quoted = format!("Invalid request: {}", String::from_utf8_lossy(body));
                let status = status_or_500(*s);
                return Some(ctx.error(shared, status, "Request_BadRequest", &quoted));
            }
            Some(Fault::Throttle { retry_after }) => {
                return Some(throttled_graph(shared, ctx, &retry_after.to_string()));
            }
            Some(Fault::Drop) => {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(conn) = parts.extensions.get::<ConnCtl>() {
                    conn.0.cancel();
                }
                return Some(std::future::pending::<Response>().await);
            }
            _ => {}
        }
    }
    let limiter = shared.graph.limiter.as_ref()?;
    let tenant = tenant_of(shared, parts);
    let not_until = limiter.check_key(&tenant).err()?;
    let wait = not_until.wait_time_from(limiter.clock().now());
    // Graph's Retry-After may have a fraction (`2.128`); never less than a millisecond.
    let secs = wait.as_secs_f64().max(0.001);
    let mut resp = throttled_graph(shared, ctx, &format!("{secs:.3}"));
    // The limit hit: this app's in this tenant, as Graph says on a 429.
    let scope = format!("Tenant_Application/ReadWrite/{SIMULATED_APP}/{tenant}");
    if let Ok(v) = HeaderValue::from_str(&scope) {
        resp.headers_mut().insert("x-ms-throttle-scope", v);
    }
    Some(resp)
}

/// The application id named in `x-ms-throttle-scope`.
const SIMULATED_APP: &str = "5e1a7ab0-0000-4000-8000-00000000a11d";

/// The tenant a request is for: the one its token was issued for (the configured tenant for
/// the fixed token, or a token not accepted at all: its 401 comes after the throttle).
fn tenant_of(shared: &Shared, parts: &axum::http::request::Parts) -> Uuid {
    shared
        .graph_tenant_of(&parts.headers)
        .unwrap_or(shared.graph.config.tenant)
}

pub(super) fn throttled_graph(shared: &Shared, ctx: &GraphCtx, retry_after: &str) -> Response {
    let message = "Too many requests. Please retry after the time in the Retry-After header.";
    let mut resp = ctx.error(
        shared,
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        message,
    );
    if let Ok(v) = HeaderValue::from_str(retry_after) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The GET or the PATCH of the user `key` names, in the token's tenant.
fn operate(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    tenant: Uuid,
    key: &GraphKey,
    body: &[u8],
) -> Result<Response, GraphRefusal> {
    let mut users = lock(&shared.graph.users);
    let not_found = || {
        GraphRefusal {
        status: StatusCode::NOT_FOUND,
        code: "Request_ResourceNotFound",
        message: "Resource does not exist or one of its queried reference-property objects are not present.".into(),
    }
    };
    let id = find(&users, tenant, key, &shared.unknown_users).ok_or_else(not_found)?;
    let user = users
        .entry((tenant, id))
        .or_insert_with(|| default_graph_user(id));
    match parts.method {
        Method::GET => {
            let names = selected(parts.uri.query())?;
            Ok(json_response(StatusCode::OK, &project(user, &names)))
        }
        Method::PATCH => {
            for (name, value) in check_patch(body)? {
                user.insert(name, value);
            }
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            Ok(resp)
        }
        _ => Err(GraphRefusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "Request_BadRequest",
            message: "The requested method is not supported by this resource.".into(),
        }),
    }
}
