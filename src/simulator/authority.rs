//! The simulator's OAuth authority for signing in, like Entra ID's v2.0 endpoints:
//! `/authorize` (approves at once as the configured user and redirects to the loopback
//! `redirect_uri` with a code, or with the configured error), the authorization-code grant
//! (PKCE S256 and `redirect_uri` checked), `/devicecode`, the page where a test approves or
//! declines a user code, and the device-code grant with its pending / slow_down / expired
//! answers. Uses the simulator's shared state and `oauth2`'s PKCE (S256) computation.

use super::*;

/// The device-code grant type.
pub(super) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The verification URI: `GET {DEVICE_PATH}?code=USER_CODE` approves the code, with `&decline=1` declines it.
pub(super) const DEVICE_PATH: &str = "/devicelogin";

/// The query of a request as key -> value (the last of a repeated key).
fn query(uri: &axum::http::Uri) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://sim{uri}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp
}

/// Whether `uri` is a loopback redirect Entra accepts for a public client without registering
/// its port: `http://localhost:PORT[/path]` or `http://127.0.0.1:PORT[/path]`.
fn loopback(uri: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(uri).ok()?;
    let host_ok = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    (url.scheme() == "http" && host_ok && url.query().is_none()).then_some(url)
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the user "signs in" at once.
pub(super) async fn authorize_endpoint(
    State(shared): State<Arc<Shared>>,
    req: Request,
) -> Response {
    let Some(config) = &shared.oauth else {
        return text(StatusCode::NOT_FOUND, "No authority is configured.");
    };
    let q = query(req.uri());
    let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if field("client_id") != config.client_id {
        return text(
            StatusCode::BAD_REQUEST,
            "AADSTS700016: Application was not found in the directory.",
        );
    }
    let Some(mut redirect) = loopback(field("redirect_uri")) else {
        return text(StatusCode::BAD_REQUEST, "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.");
    };
    let error = if let Some(error) = &config.authorize_error {
        Some((
            error.clone(),
            "AADSTS65004: User declined to consent to access the app.",
        ))
    } else if field("response_type") != "code" {
        Some((
            "unsupported_response_type".into(),
            "AADSTS70005: response_type is not supported.",
        ))
    } else if field("code_challenge_method") != "S256" || field("code_challenge").len() < 43 {
        Some(("invalid_request".into(), "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption."))
    } else {
        None
    };
    {
        let mut pairs = redirect.query_pairs_mut();
        match error {
            Some((error, description)) => {
                pairs.append_pair("error", &error);
                pairs.append_pair("error_description", description);
            }
            None => {
                let code = format!("sim-code-{}", Uuid::new_v4().simple());
                lock(&shared.oauth_state).codes.insert(
                    code.clone(),
                    IssuedCode {
                        client_id: field("client_id").to_string(),
                        redirect_uri: field("redirect_uri").to_string(),
                        challenge: field("code_challenge").to_string(),
                    },
                );
                pairs.append_pair("code", &code);
            }
        }
        pairs.append_pair("state", field("state"));
    }
    let mut resp = text(StatusCode::FOUND, "");
    if let Ok(location) = HeaderValue::from_str(redirect.as_str()) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

/// The authorization-code grant: the code once, for the client and `redirect_uri` it was
/// issued to, with the verifier whose S256 hash is its challenge.
pub(super) fn code_grant(config: &SimOAuth, state: &mut OAuthState, field: &Fields) -> Response {
    let invalid =
        |code: u32, text: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", code, text);
    let Some(issued) = state.codes.remove(field.get("code")) else {
        return invalid(70008, "The provided authorization code or refresh token has expired due to inactivity or was already redeemed.");
    };
    if issued.client_id != field.get("client_id") {
        return invalid(
            70000,
            "The provided value for the 'code' parameter is not valid for this client.",
        );
    }
    if issued.redirect_uri != field.get("redirect_uri") {
        return invalid(500112, "The reply address does not match the reply address provided when requesting the authorization code.");
    }
    if !verifier_matches(field.get("code_verifier"), &issued.challenge) {
        return invalid(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.");
    }
    issue_tokens(config, state, field.get("scope"), None, true)
}

/// Whether `verifier`'s S256 challenge is `challenge` (RFC 7636: 43 to 128 characters).
pub(super) fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    if !(43..=128).contains(&verifier.len()) {
        return false;
    }
    let verifier = oauth2::PkceCodeVerifier::new(verifier.to_string());
    oauth2::PkceCodeChallenge::from_code_verifier_sha256(&verifier).as_str() == challenge
}

/// `POST /{tenant}/oauth2/v2.0/devicecode` with `client_id` and `scope`.
pub(super) async fn devicecode_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(config) = &shared.oauth else {
        return text(StatusCode::NOT_FOUND, "No authority is configured.");
    };
    lock(&shared.oauth_state).device_requests.push(form.clone());
    if form.get("client_id").map(String::as_str) != Some(config.client_id.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    let device_code = format!("sim-device-{}", Uuid::new_v4().simple());
    let user_code = Uuid::new_v4().simple().to_string()[..9].to_uppercase();
    lock(&shared.oauth_state).devices.insert(
        device_code.clone(),
        DeviceGrant {
            user_code: user_code.clone(),
            client_id: config.client_id.clone(),
            approved: None,
            polls: 0,
        },
    );
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let verification_uri = format!("http://{host}{DEVICE_PATH}");
    json_response(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "expires_in": 900,
            "interval": config.device_interval,
            "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
        }),
    )
}

/// `GET /devicelogin?code=USER_CODE[&decline=1]`: the user approves (or declines) the code.
pub(super) async fn device_page(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let q = query(req.uri());
    let code = q.get("code").map(String::as_str).unwrap_or("");
    let approve = !q.contains_key("decline");
    let mut state = lock(&shared.oauth_state);
    match state.devices.values_mut().find(|d| d.user_code == code) {
        Some(device) => {
            device.approved = Some(approve);
            text(
                StatusCode::OK,
                if approve {
                    "Signed in: you may close this window."
                } else {
                    "Sign-in declined."
                },
            )
        }
        None => text(
            StatusCode::NOT_FOUND,
            "That code was not found. Check the code and try again.",
        ),
    }
}

/// The device-code grant: the scripted answers first, then what the user did.
pub(super) fn device_grant(config: &SimOAuth, state: &mut OAuthState, field: &Fields) -> Response {
    let error = |error: &str, code: u32, text: &str| {
        oauth_error(StatusCode::BAD_REQUEST, error, code, text)
    };
    let Some(device) = state.devices.get_mut(field.get("device_code")) else {
        return error(
            "bad_verification_code",
            70019,
            "Verification code expired or was not found.",
        );
    };
    if device.client_id != field.get("client_id") {
        return error(
            "invalid_grant",
            70000,
            "The device code is not valid for this client.",
        );
    }
    device.polls += 1;
    if let Some(scripted) = config.device_script.get(device.polls - 1) {
        return error(scripted, 70016, "Scripted answer.");
    }
    match device.approved {
        None => error(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        Some(false) => {
            state.devices.remove(field.get("device_code"));
            error(
                "authorization_declined",
                70000,
                "The user declined the sign-in.",
            )
        }
        Some(true) => {
            state.devices.remove(field.get("device_code"));
            issue_tokens(config, state, field.get("scope"), None, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_verifier_of_the_challenge_matches_it() {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        assert!(verifier_matches(verifier.secret(), challenge.as_str()));
        let mut wrong = verifier.secret().clone();
        wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
        assert!(!verifier_matches(&wrong, challenge.as_str()));
        // RFC 7636: 43 to 128 characters; the challenge itself is no verifier.
        assert!(!verifier_matches("short", challenge.as_str()));
        assert!(!verifier_matches(challenge.as_str(), challenge.as_str()));
    }
}
