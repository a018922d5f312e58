//! `login`, `logout` and `status`: sign in and store the sign-in, remove it, and describe it
//! (who, which tenant, when the access token expires, when the refresh token was last used);
//! never a token. Returns texts for `main` to print. Uses `settings`, `send`.

use std::time::{Duration, SystemTime};

use crate::send::http_client::{client, HttpSettings};
use crate::send::login::{sign_in, Authority, Flow, Prompt};
use crate::settings::login::LoginSettings;
use crate::settings::signin::{Store, REFRESH_TOKEN_IDLE_LIFETIME};
use crate::settings::ConfigError;

/// A finished sign-in.
#[derive(Debug)]
pub struct LoginDone {
    pub account: String,
    pub tenant_id: String,
    /// Where the sign-in was stored (a path, or the system keyring).
    pub saved_to: String,
}

/// Signs in as `settings` says and stores the sign-in; `prompt` shows what the person must do.
pub async fn login(
    settings: LoginSettings,
    prompt: &(dyn Fn(Prompt) + Sync),
) -> Result<LoginDone, super::Error> {
    let http = client(&HttpSettings {
        connect_timeout: settings.connect_timeout,
        timeout: settings.timeout,
        pool_size: 1,
        ca: settings.ca_file.as_ref(),
    })?;
    let store = Store::locate().map_err(ConfigError::from)?;
    let authority = Authority {
        authority: settings.authority,
        tenant: settings.tenant,
        client_id: settings.client_id,
        scope: settings.scope,
    };
    let flow = if settings.device_code {
        Flow::DeviceCode
    } else {
        Flow::Browser {
            open: settings.open_browser,
        }
    };
    let signed_in = sign_in(&authority, flow, &http, prompt).await?;
    let saved_to = store.save(&signed_in).map_err(ConfigError::from)?;
    Ok(LoginDone {
        account: signed_in
            .account
            .unwrap_or_else(|| "(no account name)".into()),
        tenant_id: signed_in
            .tenant_id
            .unwrap_or_else(|| signed_in.tenant.clone()),
        saved_to,
    })
}

/// Removes the stored sign-in; whether there was one.
pub fn logout() -> Result<bool, super::Error> {
    let store = Store::locate().map_err(ConfigError::from)?;
    Ok(store.remove().map_err(ConfigError::from)?)
}

/// The stored sign-in described in lines, None when nobody is signed in.
pub fn status() -> Result<Option<Vec<String>>, super::Error> {
    let store = Store::locate().map_err(ConfigError::from)?;
    let Some(s) = store.load().map_err(ConfigError::from)? else {
        return Ok(None);
    };
    let now = SystemTime::now();
    let mut lines = vec![format!(
        "Signed in as {}{}",
        s.account.as_deref().unwrap_or("(no account name)"),
        s.name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    )];
    lines.push(format!(
        "Tenant: {}",
        s.tenant_id.as_deref().unwrap_or(s.tenant.as_str())
    ));
    lines.push(format!(
        "Authority: {}/{}, client {}",
        s.authority, s.tenant, s.client_id
    ));
    if !s.scope.trim().is_empty() {
        lines.push(format!(
            "Scope: {}",
            crate::settings::signin::tame(&s.scope)
        ));
    }
    lines.push(match &s.access_token {
        Some((_, at)) if *at > now => format!(
            "Access token: expires {} ({})",
            stamp(*at),
            relative(*at, now)
        ),
        Some((_, at)) => format!(
            "Access token: expired {} (the next run gets a new one)",
            stamp(*at)
        ),
        None => "Access token: none stored (the next run gets one)".into(),
    });
    let dies = s
        .refresh_used_at
        .checked_add(REFRESH_TOKEN_IDLE_LIFETIME)
        .unwrap_or(s.refresh_used_at);
    lines.push(format!(
        "Refresh token: last used {}; unused for 90 days it dies, so sign in again by {} ({})",
        stamp(s.refresh_used_at),
        stamp(dies),
        relative(dies, now)
    ));
    lines.push(format!("Signed in at {}", stamp(s.signed_in_at)));
    Ok(Some(lines))
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `in 59 minutes`, `3 days ago`: the whole units of the gap.
fn relative(t: SystemTime, now: SystemTime) -> String {
    let (gap, future) = match t.duration_since(now) {
        Ok(d) => (d, true),
        Err(e) => (e.duration(), false),
    };
    let secs = gap.as_secs();
    let text = match secs {
        s if s >= 2 * 86400 => format!("{} days", s / 86400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} minutes", Duration::from_secs(s).as_secs() / 60),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}
