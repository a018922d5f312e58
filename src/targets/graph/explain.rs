//! What Microsoft Graph's error codes (and, without one, HTTP statuses) mean, in plain English,
//! for reports. Uses nothing else of the crate.

/// The meaning of a failure's code, else of its status; empty when neither is known.
pub fn explain(code: Option<&str>, status: Option<u16>) -> &'static str {
    match (code, status) {
        (Some("Request_ResourceNotFound"), _) => {
            "User not found: no user with this id or user principal name in the tenant."
        }
        (Some("Authorization_RequestDenied"), _) => {
            "Insufficient privileges: the signed-in user (or its GDAP role) may not change this user or property."
        }
        (Some("Request_BadRequest"), _) => {
            "Bad request: a property was unknown or a value was refused (a country code, a length, a read-only property)."
        }
        (Some("Authorization_IdentityNotFound"), _) => {
            "The application is not known in the customer's tenant (no consent or GDAP relationship)."
        }
        (Some("InvalidAuthenticationToken"), _) | (_, Some(401)) => {
            "Access denied: the access token is missing, invalid, expired or for another API."
        }
        (Some("Request_MultipleObjectsWithSameKeyValue"), _) => {
            "Another object already uses this value (a user principal name, a mail address)."
        }
        (Some("Directory_QuotaExceeded"), _) => "The tenant's directory quota is exceeded.",
        (Some("Authorization_PolicyDenied" | "AccessDenied_ConditionalAccess"), _) => {
            "Blocked by conditional access policies of the tenant."
        }
        (_, Some(429)) => "Throttled: Graph's rate limit was exceeded until the end.",
        (_, Some(500..=599)) => "A server error at Microsoft Graph that retries did not get past.",
        (_, None) => "No response: timeouts or dropped connections until the attempts ran out.",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn codes_before_statuses() {
        assert!(explain(Some("Request_ResourceNotFound"), Some(404)).starts_with("User not found"));
        assert!(explain(Some("Authorization_RequestDenied"), Some(403)).contains("GDAP"));
        assert!(explain(None, Some(401)).starts_with("Access denied"));
        assert!(explain(Some("X"), Some(503)).contains("Graph"));
        assert_eq!(explain(Some("60002"), Some(404)), "");
    }
}
