//! Graph's JSON batching in the simulator: `POST /graph/v1.0/$batch` with
//! `{"requests":[{"id","method","url","headers","body"}]}` (at most 20, else 400). The request
//! may get a fault of its own first ([`SimGraph::batch_faults`]: a status, a 429, a dropped
//! connection); then each sub-request is handled by the single-request handler (its user's
//! scripted faults, the tenant's throttle with a fractional `Retry-After`, the token, the
//! operation; a scripted `Drop` drops the whole connection, after the sub-requests before it
//! were applied), and the answers come back in `responses[]` in a shuffled order.

use super::graph::{respond, throttled_graph, GraphCtx, GRAPH_PREFIX};
use super::*;

/// The most sub-requests one `$batch` may carry.
pub(super) const MAX_REQUESTS: usize = 20;

pub(super) async fn handle(
    shared: &Shared,
    ctx: &GraphCtx,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Response {
    let index = shared.graph.batches.fetch_add(1, Ordering::Relaxed);
    let fault = usize::try_from(index)
        .ok()
        .and_then(|i| shared.graph.config.batch_faults.get(i));
    if let Some(answer) = envelope_fault(shared, ctx, parts, fault).await {
        return answer;
    }
    if parts.method != Method::POST {
        let message = "The requested method is not supported by this resource.";
        return ctx.error(
            shared,
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            message,
        );
    }
    if !shared.authorized(&parts.headers) {
        return super::graph::unauthorized_graph(shared, ctx);
    }
    let requests = match serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("requests").and_then(Value::as_array).cloned())
    {
        Some(r) if r.len() <= MAX_REQUESTS && !r.is_empty() => r,
        Some(r) => {
            let message = format!(
                "The number of requests in the batch ({}) must be between 1 and {MAX_REQUESTS}.",
                r.len()
            );
            return ctx.error(shared, StatusCode::BAD_REQUEST, "BadRequest", &message);
        }
        None => {
            let message = "Invalid batch payload format.";
            return ctx.error(shared, StatusCode::BAD_REQUEST, "BadRequest", message);
        }
    };
    let mut responses = Vec::with_capacity(requests.len());
    for sub in &requests {
        responses.push(sub_answer(shared, parts, sub).await);
    }
    let mut rng = StdRng::seed_from_u64(splitmix64(shared.seed ^ index));
    for i in (1..responses.len()).rev() {
        responses.swap(i, rng.random_range(0..=i));
    }
    ctx.finish(
        shared,
        json_response(StatusCode::OK, &json!({ "responses": responses })),
    )
}

/// The `$batch` request's own scripted answer, if any.
async fn envelope_fault(
    shared: &Shared,
    ctx: &GraphCtx,
    parts: &axum::http::request::Parts,
    fault: Option<&Fault>,
) -> Option<Response> {
    match fault? {
        Fault::Status(s) => {
            let status = status_or_500(*s);
            let reason = status.canonical_reason().unwrap_or("error");
            Some(ctx.error(shared, status, "generalException", reason))
        }
        Fault::Throttle { retry_after } => {
            Some(throttled_graph(shared, ctx, &retry_after.to_string()))
        }
        Fault::Drop => {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(conn) = parts.extensions.get::<ConnCtl>() {
                conn.0.cancel();
            }
            Some(std::future::pending::<Response>().await)
        }
        _ => None,
    }
}

/// One sub-request handled as a request of its own (the `$batch`'s token and connection),
/// answered as `{"id","status","headers","body"}`.
async fn sub_answer(shared: &Shared, outer: &axum::http::request::Parts, sub: &Value) -> Value {
    let id = sub.get("id").cloned().unwrap_or(Value::Null);
    let sub_ctx = GraphCtx {
        request_id: Uuid::new_v4().to_string(),
        client_request_id: sub
            .pointer("/headers/client-request-id")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok()),
        record: None,
        sub: true,
    };
    let response = match sub_parts(outer, sub) {
        Some((parts, body)) => respond(shared, &sub_ctx, &parts, &body).await,
        None => {
            let message = "Invalid request: each request needs an id, a method and a url.";
            sub_ctx.error(shared, StatusCode::BAD_REQUEST, "BadRequest", message)
        }
    };
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        if let Ok(v) = value.to_str() {
            headers.insert(name.as_str().to_string(), json!(v));
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY)
        .await
        .unwrap_or_default();
    let mut answer = json!({"id": id, "status": status, "headers": headers});
    if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
        answer["body"] = body;
    }
    answer
}

/// The request a sub-request describes: its method, `url` under the Graph root, headers and
/// body, with the `$batch`'s `Authorization` and connection.
fn sub_parts(
    outer: &axum::http::request::Parts,
    sub: &Value,
) -> Option<(axum::http::request::Parts, Vec<u8>)> {
    sub.get("id")?.as_str()?;
    let method = Method::from_bytes(sub.get("method")?.as_str()?.as_bytes()).ok()?;
    let url = sub.get("url")?.as_str()?;
    let slash = if url.starts_with('/') { "" } else { "/" };
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri(format!("{GRAPH_PREFIX}{slash}{url}"));
    if let Some(Value::Object(headers)) = sub.get("headers") {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                builder = builder.header(name.as_str(), value);
            }
        }
    }
    if let Some(auth) = outer.headers.get(header::AUTHORIZATION) {
        builder = builder.header(header::AUTHORIZATION, auth.clone());
    }
    let (mut parts, ()) = builder.body(()).ok()?.into_parts();
    if let Some(conn) = outer.extensions.get::<ConnCtl>() {
        parts.extensions.insert(conn.clone());
    }
    let body = match sub.get("body") {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v) => serde_json::to_vec(v).unwrap_or_default(),
        None => Vec::new(),
    };
    Some((parts, body))
}
