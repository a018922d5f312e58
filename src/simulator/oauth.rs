//! The token endpoint (`POST /{tenant}/oauth2/v2.0/token`, refresh-token grant), answering like Entra ID.

use super::*;

/// `POST /{tenant}/oauth2/v2.0/token` with the refresh-token grant, answering like Entra ID.
pub(super) async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(config) = &shared.oauth else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "error_description": "No token endpoint is configured."}),
        );
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let mut state = lock(&shared.oauth_state);
    let oauth_error = |status: StatusCode, error: &str, code: u32, text: &str| {
        json_response(
            status,
            &json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {text} Trace ID: {} Correlation ID: {} Timestamp: 2026-01-01 00:00:00Z", Uuid::new_v4(), Uuid::new_v4()),
                "error_codes": [code],
                "timestamp": "2026-01-01 00:00:00Z",
            }),
        )
    };
    let answer = if field("grant_type") != "refresh_token" {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )
    } else if field("client_id") != config.client_id {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        )
    } else if config
        .client_secret
        .as_deref()
        .is_some_and(|secret| field("client_secret") != secret)
    {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        )
    } else if !state.valid_refresh.contains(field("refresh_token"))
        || config.fail_after.is_some_and(|n| state.successes >= n)
    {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on 2025-01-01 and was inactive for 90.00:00:00.",
        )
    } else {
        state.successes += 1;
        let lifetime = config.access_token_lifetime.max(Duration::from_secs(1));
        let access = format!("sim-access-{}", Uuid::new_v4().simple());
        state
            .issued_access
            .insert(access.clone(), Instant::now() + lifetime);
        state.issued.push(access.clone());
        let refresh = if config.rotate_refresh_tokens {
            let used = field("refresh_token").to_string();
            state.valid_refresh.remove(&used);
            let new = format!("sim-refresh-{}", Uuid::new_v4().simple());
            state.valid_refresh.insert(new.clone());
            state.issued.push(new.clone());
            new
        } else {
            field("refresh_token").to_string()
        };
        json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "scope": field("scope"),
                "expires_in": lifetime.as_secs(),
                "ext_expires_in": lifetime.as_secs(),
                "access_token": access,
                "refresh_token": refresh,
            }),
        )
    };
    state.requests.push(TokenRequest {
        received_at: Instant::now(),
        form: form.clone(),
        status: answer.status().as_u16(),
    });
    answer
}
