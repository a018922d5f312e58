//! The token endpoint (`POST /{tenant}/oauth2/v2.0/token`), answering like Entra ID: the
//! refresh-token grant here; the authorization-code and device-code grants in `authority`.

use super::*;

/// A form's fields; a missing one reads as empty.
pub(super) struct Fields<'a>(pub(super) &'a HashMap<String, String>);

impl Fields<'_> {
    pub(super) fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or("")
    }
}

/// An Entra-style error answer: `error`, `error_description` with its AADSTS code and trace ids.
pub(super) fn oauth_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {} Correlation ID: {} Timestamp: 2026-01-01 00:00:00Z", Uuid::new_v4(), Uuid::new_v4()),
            "error_codes": [code],
            "timestamp": "2026-01-01 00:00:00Z",
        }),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`: every grant, each request recorded.
pub(super) async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(config) = &shared.oauth else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "error_description": "No token endpoint is configured."}),
        );
    };
    let field = Fields(&form);
    let field = |k: &str| field.get(k);
    let fields = Fields(&form);
    let mut state = lock(&shared.oauth_state);
    let answer = if field("client_id") != config.client_id {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        )
    } else {
        match field("grant_type") {
            "refresh_token" => refresh_grant(config, &mut state, &fields, &tenant),
            "authorization_code" => code_grant(config, &mut state, &fields),
            DEVICE_GRANT => device_grant(config, &mut state, &fields),
            _ => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            ),
        }
    };
    state.requests.push(TokenRequest {
        received_at: Instant::now(),
        form: form.clone(),
        status: answer.status().as_u16(),
        tenant,
    });
    answer
}

fn refresh_grant(
    config: &SimOAuth,
    state: &mut OAuthState,
    field: &Fields,
    tenant: &str,
) -> Response {
    let refused = parse_guid(tenant).and_then(|t| config.refusing_tenants.get(&t));
    if let Some(code) = refused.filter(|_| state.valid_refresh.contains(field.get("refresh_token")))
    {
        tenant_refusal(*code)
    } else if config
        .client_secret
        .as_deref()
        .is_some_and(|secret| field.get("client_secret") != secret)
    {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        )
    } else if !state.valid_refresh.contains(field.get("refresh_token"))
        || config.fail_after.is_some_and(|n| state.successes >= n)
    {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on 2025-01-01 and was inactive for 90.00:00:00.",
        )
    } else {
        let used = field.get("refresh_token").to_string();
        let answer = issue_tokens(config, state, field.get("scope"), Some(used), false);
        if let Some(access) = state
            .issued
            .iter()
            .rev()
            .find(|t| t.starts_with("sim-access-"))
        {
            state
                .access_tenant
                .insert(access.clone(), tenant.to_string());
        }
        answer
    }
}

/// A customer tenant's refusal of the partner's user, as Entra words it for `code`.
fn tenant_refusal(code: u32) -> Response {
    let (error, text) = match code {
        50020 => ("invalid_grant", "User account 'admin@partner.onmicrosoft.com' from identity provider 'https://sts.windows.net/partner/' does not exist in tenant 'Customer' and cannot access the application in that tenant."),
        53003 => ("interaction_required", "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."),
        65001 => ("invalid_grant", "The user or administrator has not consented to use the application."),
        _ => ("invalid_grant", "The token request was refused by the tenant."),
    };
    oauth_error(StatusCode::BAD_REQUEST, error, code, text)
}

/// A successful token answer: a new access token, the refresh token (a new one when rotating
/// or when there was none, the used one otherwise) and, for a sign-in, an id token.
pub(super) fn issue_tokens(
    config: &SimOAuth,
    state: &mut OAuthState,
    scope: &str,
    used_refresh: Option<String>,
    sign_in: bool,
) -> Response {
    state.successes += 1;
    let lifetime = config.access_token_lifetime.max(Duration::from_secs(1));
    let access = format!("sim-access-{}", Uuid::new_v4().simple());
    state
        .issued_access
        .insert(access.clone(), Instant::now() + lifetime);
    state.issued.push(access.clone());
    let refresh = match used_refresh {
        Some(used) if !config.rotate_refresh_tokens => used,
        used => {
            if let Some(used) = used {
                state.valid_refresh.remove(&used);
            }
            let new = format!("sim-refresh-{}", Uuid::new_v4().simple());
            state.valid_refresh.insert(new.clone());
            state.issued.push(new.clone());
            new
        }
    };
    let mut answer = json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access,
        "refresh_token": refresh,
    });
    if sign_in {
        let id_token = id_token(config);
        state.issued.push(id_token.clone());
        answer["id_token"] = Value::String(id_token);
    }
    json_response(StatusCode::OK, &answer)
}

/// An id token for the configured user: a JWT whose signature is a dummy.
fn id_token(config: &SimOAuth) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "sim"});
    let claims = json!({
        "aud": config.client_id,
        "iss": format!("https://login.microsoftonline.com/{}/v2.0", config.user.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": config.user.name,
        "oid": Uuid::new_v4(),
        "preferred_username": config.user.preferred_username,
        "tid": config.user.tenant_id,
        "ver": "2.0",
    });
    format!("{}.{}.c2lt", b64(&header), b64(&claims))
}
