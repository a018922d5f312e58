//! The authority's OpenID Connect discovery document, like Entra ID's public
//! `GET /{tenant}/v2.0/.well-known/openid-configuration`: a customer's domain (from the
//! directory, any case) or a tenant GUID answers the document naming the tenant's GUID in
//! `token_endpoint` (this simulator's) and `issuer`; anything else answers 400
//! `invalid_tenant` (AADSTS90002). [`SimOAuth::discovery_failures`] makes the first requests
//! for a tenant segment answer 503. Every request is recorded, headers included.

use super::*;

/// One request for a discovery document, as the simulator received it.
#[derive(Clone, Debug)]
pub struct DiscoveryRequest {
    /// The tenant segment of the path, as sent.
    pub tenant: String,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub status: u16,
}

impl DiscoveryRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The tenant a discovery path segment names: a GUID, or a directory customer's domain.
fn tenant_named(shared: &Shared, segment: &str) -> Option<Uuid> {
    if let Some(id) = parse_guid(segment) {
        return Some(id);
    }
    shared
        .directory
        .directory
        .customers
        .iter()
        .find(|c| c.domain.eq_ignore_ascii_case(segment))
        .map(|c| c.id)
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(super) async fn discovery_endpoint(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let failing = {
        let state = lock(&shared.oauth_state);
        let seen = state
            .discovery
            .iter()
            .filter(|r| r.tenant.eq_ignore_ascii_case(&tenant))
            .count();
        let failures = shared.oauth.as_ref().and_then(|o| {
            o.discovery_failures
                .get(&tenant.to_ascii_lowercase())
                .copied()
        });
        failures.is_some_and(|n| seen < n as usize)
    };
    let answer = if failing {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred. Please try again."}),
        )
    } else {
        match tenant_named(&shared, &tenant) {
            Some(id) => document(&headers, id),
            None => json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "error": "invalid_tenant",
                    "error_description": format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Trace ID: {} Correlation ID: {} Timestamp: 2026-01-01 00:00:00Z", Uuid::new_v4(), Uuid::new_v4()),
                    "error_codes": [90002],
                    "error_uri": "https://login.microsoftonline.com/error?code=90002",
                }),
            ),
        }
    };
    let recorded = DiscoveryRequest {
        tenant,
        headers: headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_string(), value)
            })
            .collect(),
        status: answer.status().as_u16(),
    };
    lock(&shared.oauth_state).discovery.push(recorded);
    answer
}

/// The document for `tenant`, its endpoints at the host the request named.
fn document(headers: &HeaderMap, tenant: Uuid) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let authority = format!("http://{host}/{tenant}");
    json_response(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{authority}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("http://{host}/{tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{authority}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{authority}/oauth2/v2.0/devicecode"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
    )
}
