//! The answers' bodies and shapes: Partner Center errors, the throttling layer's 429, proxies' HTML pages.

use super::*;

pub(super) fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A Partner Center error: `{"code":N,"description":..,"data":[],"source":"PartnerFD"}`.
pub(super) fn pc_error(status: StatusCode, code: u32, description: &str) -> Response {
    json_response(
        status,
        &json!({"code": code, "description": description, "data": [], "source": "PartnerFD"}),
    )
}

pub(super) fn unauthorized() -> Response {
    let mut resp = pc_error(StatusCode::UNAUTHORIZED, 400, ACCESS_DENIED);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

pub(super) fn throttled(retry_after: u64) -> Response {
    let mut resp = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "statusCode": 429,
            "message": format!("Rate limit is exceeded. Try again in {retry_after} seconds."),
        }),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

pub(super) fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A status with a Partner Center error body and a plausible code.
pub(super) fn status_error(status: u16) -> Response {
    let status = status_or_500(status);
    let (code, description): (u32, &str) = match status.as_u16() {
        400 => (800002, "The request input is invalid."),
        401 => (400, ACCESS_DENIED),
        403 => (900308, "The user does not have sufficient privileges."),
        404 => (60002, "User object id not found."),
        409 => (
            800002,
            "The request conflicts with the current state of the resource.",
        ),
        500 => (
            500,
            "An internal server error occurred. Please try again later.",
        ),
        502 => (502, "Bad gateway: the upstream service did not answer."),
        503 => (
            503,
            "The service is temporarily unavailable. Please try again later.",
        ),
        504 => (
            504,
            "Gateway timeout: the upstream service did not answer in time.",
        ),
        s => (
            u32::from(s),
            status.canonical_reason().unwrap_or("Unexpected error."),
        ),
    };
    pc_error(status, code, description)
}

/// A proxy's HTML error page.
pub(super) fn html_error(status: u16) -> Response {
    let status = status_or_500(status);
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\n<body><center><h1>{code} {reason}</h1></center><hr><center>Microsoft-Azure-Application-Gateway/v2</center></body></html>\n"
    );
    let mut resp = Response::new(Body::from(page));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

pub(super) fn empty(status: u16) -> Response {
    let mut resp = Response::new(Body::from(Bytes::new()));
    *resp.status_mut() = status_or_500(status);
    resp
}
