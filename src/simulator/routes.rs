//! The customer-users API: one handler that applies latency, scripted and random faults, throttles, authentication, routing and the user store, in that order.

use super::*;

/// Largest request body read; anything bigger is answered 400 (code 800002).
pub(super) const MAX_BODY: usize = 1 << 20;

pub(super) const ACCESS_DENIED: &str =
    "Access denied: the access token is missing, invalid or expired.";

pub(super) static MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");
pub(super) static MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");

/// Everything a response needs from its request.
pub(super) struct Ctx {
    pub(super) shared: Arc<Shared>,
    pub(super) record: Option<usize>,
    pub(super) correlation_id: Option<HeaderValue>,
    pub(super) request_id: Option<HeaderValue>,
    /// The window quota's headers for this answer.
    pub(super) quota: Option<QuotaAnswer>,
}

impl Ctx {
    /// Adds the echoed headers, records and counts the answer.
    pub(super) fn finish(&self, mut resp: Response) -> Response {
        let headers = resp.headers_mut();
        if let Some(v) = &self.correlation_id {
            headers.insert(MS_CORRELATION_ID.clone(), v.clone());
        }
        if let Some(v) = &self.request_id {
            headers.insert(MS_REQUEST_ID.clone(), v.clone());
        }
        if let Some(quota) = &self.quota {
            quota.add_headers(headers);
        }
        self.shared.answered(self.record, resp.status());
        resp
    }

    /// Closes the connection with no response: never returns.
    pub(super) async fn drop_connection(&self, conn: Option<&ConnCtl>) -> Response {
        self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(conn) = conn {
            conn.0.cancel();
        }
        std::future::pending::<Response>().await
    }
}

pub(super) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let received = (Instant::now(), SystemTime::now());
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await;
    let body_ok = body.is_ok();
    let body = body.unwrap_or_default();

    // 1. Record and count.
    shared.counters.received.fetch_add(1, Ordering::Relaxed);
    let record = record_request(&shared, &parts, &body, received);
    let mut ctx = Ctx {
        shared: Arc::clone(&shared),
        record,
        correlation_id: parts.headers.get(&MS_CORRELATION_ID).cloned(),
        request_id: parts.headers.get(&MS_REQUEST_ID).cloned(),
        quota: None,
    };
    let conn = parts.extensions.get::<ConnCtl>();
    if let Some(listing) = collections::route(parts.uri.path()) {
        return collections::answer(&mut ctx, conn, &parts, &body, listing).await;
    }
    let route = parse_route(parts.uri.path());
    let customer = route.and_then(|(c, _)| parse_guid(c));
    let user = route.and_then(|(_, u)| parse_guid(u));

    // 2-5. Latency, scripted faults, throttles, random faults.
    if let Some(answer) = injected(&mut ctx, conn, customer, user, &body).await {
        return answer;
    }
    // 6-8. Authentication, route and ids, unknown or forbidden.
    let (customer, user) = match admitted(&shared, &parts, route.is_some(), customer, user) {
        Ok(ids) => ids,
        Err(refusal) => return ctx.finish(*refusal),
    };
    // 9. The operation.
    ctx.finish(operate(
        &shared,
        &parts.method,
        customer,
        user,
        body_ok.then_some(&body),
    ))
}

/// Keeps a copy of the request (when recording), returning its index.
pub(super) fn record_request(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    body: &Bytes,
    (received_at, received_wall): (Instant, SystemTime),
) -> Option<usize> {
    shared.record.then(|| {
        let rec = RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            received_at,
            received_wall,
            status: None,
            responded_at: None,
        };
        let mut recorded = lock(&shared.recorded);
        recorded.push(rec);
        recorded.len() - 1
    })
}

/// Steps 2 to 5: the answer a fault or a throttle gives instead of the real one, if any.
pub(super) async fn injected(
    ctx: &mut Ctx,
    conn: Option<&ConnCtl>,
    customer: Option<Uuid>,
    user: Option<Uuid>,
    body: &Bytes,
) -> Option<Response> {
    let shared = Arc::clone(&ctx.shared);
    let user_key = user.unwrap_or(Uuid::nil());
    let index = if shared.needs_index {
        shared.next_index(user_key)
    } else {
        0
    };
    let draws = shared.draws(user_key, index);

    // 2. Latency.
    let delay = shared.latency + draws.jitter;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    // 3. Scripted fault.
    let scripted = shared
        .script
        .get(&user_key)
        .and_then(|s| usize::try_from(index).ok().and_then(|i| s.get(i)));
    match scripted {
        None | Some(Fault::Normal) => {}
        Some(Fault::Status(401) | Fault::Unauthorized) => return Some(ctx.finish(unauthorized())),
        Some(Fault::Status(s)) => return Some(ctx.finish(status_error(*s))),
        Some(Fault::Throttle { retry_after }) => return Some(ctx.finish(throttled(*retry_after))),
        Some(Fault::Drop) => return Some(ctx.drop_connection(conn).await),
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Html(s)) => return Some(ctx.finish(html_error(*s))),
        Some(Fault::Empty(s)) => return Some(ctx.finish(empty(*s))),
        Some(Fault::Echo(s)) => {
            let status = StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_REQUEST);
            let quoted = format!("Invalid request: {}", String::from_utf8_lossy(body));
            return Some(ctx.finish(pc_error(status, 800002, &quoted)));
        }
    }

    // 4. Throttles.
    ctx.quota = shared.take_quota();
    if let Some(q) = ctx.quota.filter(|q| !q.allowed) {
        return Some(ctx.finish(throttled(q.reset_secs)));
    }
    if let Err(retry_after) = shared.throttle(customer) {
        return Some(ctx.finish(throttled(retry_after)));
    }

    // 5. Random faults.
    if draws.drop {
        return Some(ctx.drop_connection(conn).await);
    }
    if let Some(status) = draws.error {
        return Some(ctx.finish(status_error(status.as_u16())));
    }
    if draws.slow {
        tokio::time::sleep(shared.slow_delay).await;
    }

    None
}

/// Steps 6 to 8: the customer and user ids of a request that may go on, or the refusal.
fn admitted(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    routed: bool,
    customer: Option<Uuid>,
    user: Option<Uuid>,
) -> Result<(Uuid, Uuid), Box<Response>> {
    // 6. Authentication.
    if !shared.authorized(&parts.headers) {
        return Err(Box::new(unauthorized()));
    }

    // 7. Route and ids.
    if !routed {
        return Err(Box::new(pc_error(
            StatusCode::NOT_FOUND,
            800002,
            "The requested resource was not found.",
        )));
    }
    if parts.method != Method::GET && parts.method != Method::PATCH {
        let mut resp = pc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            800002,
            "The requested method is not supported by this resource.",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, PATCH"));
        return Err(Box::new(resp));
    }
    let (Some(customer), Some(user)) = (customer, user) else {
        return Err(Box::new(pc_error(
            StatusCode::BAD_REQUEST,
            800002,
            "The customer tenant id and the user id must be GUIDs.",
        )));
    };

    // 8. Unknown or forbidden.
    if shared.unknown_customers.contains(&customer) {
        return Err(Box::new(pc_error(
            StatusCode::NOT_FOUND,
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
    if let Some(refusal) = shared.outside_directory(customer, user) {
        return Err(Box::new(refusal));
    }
    if shared.unknown_users.contains(&user) {
        return Err(Box::new(pc_error(
            StatusCode::NOT_FOUND,
            60002,
            "User object id not found.",
        )));
    }

    Ok((customer, user))
}

/// Step 9: a GET answers the user; a PATCH is validated and merged into it. `body` is None
/// when it could not be read.
fn operate(
    shared: &Shared,
    method: &Method,
    customer: Uuid,
    user: Uuid,
    body: Option<&Bytes>,
) -> Response {
    if *method == Method::GET {
        let overrides = lock(&shared.users)
            .get(&(customer, user))
            .cloned()
            .unwrap_or_default();
        let mut current = shared.current_user(customer, user, &overrides);
        current.remove(PASSWORD_PROFILE);
        return json_response(StatusCode::OK, &Value::Object(current));
    }
    let Some(body) = body else {
        return pc_error(
            StatusCode::BAD_REQUEST,
            800002,
            "The request body could not be read or is too large.",
        );
    };
    match validate_patch(body) {
        Err(e) => pc_error(e.status, e.code, &e.description),
        Ok(patch) => {
            let overrides = {
                let mut users = lock(&shared.users);
                let stored = users.entry((customer, user)).or_default();
                for (k, v) in patch.fields {
                    set(stored, Cow::Borrowed(k), Value::String(v));
                }
                if let Some((_, force)) = &patch.password {
                    set(
                        stored,
                        Cow::Borrowed(PASSWORD_PROFILE),
                        stored_password_profile(*force),
                    );
                }
                stored.clone()
            };
            let mut updated = shared.current_user(customer, user, &overrides);
            updated.remove(PASSWORD_PROFILE);
            if let Some((password, force)) = patch.password {
                // The real API echoes the new password: so does the simulator,
                // so that clients prove they never leak response bodies.
                updated.insert(
                    "passwordProfile".to_owned(),
                    json!({"forceChangePassword": force, "password": password}),
                );
            }
            json_response(StatusCode::OK, &Value::Object(updated))
        }
    }
}

pub(super) fn parse_route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1/customers/")?;
    let (customer, rest) = rest.split_once('/')?;
    let user = rest.strip_prefix("users/")?;
    if customer.is_empty() || user.is_empty() || user.contains('/') {
        return None;
    }
    Some((customer, user))
}

/// A GUID in its hyphenated form (either case).
pub(super) fn parse_guid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

pub(super) fn first8(user: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    user.simple().encode_lower(&mut buf)[..8].to_owned()
}
