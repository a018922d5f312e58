//! What Partner Center's error codes (and, without one, HTTP statuses) mean, in plain English,
//! for reports. Uses nothing else of the crate.

/// The meaning of a failure's code, else of its status; empty when neither is known.
pub fn explain(code: Option<&str>, status: Option<u16>) -> &'static str {
    match (code, status) {
        (Some("60002"), _) => {
            "User not found: no user with this object id in the customer's tenant."
        }
        (Some("60003"), _) => "Customer tenant not found: check the customer id.",
        (Some("20002"), _) => {
            "No relationship: the partner has no reseller or admin relationship with this customer."
        }
        (Some("3000"), _) => {
            "Invalid property: a value was refused (a country code, a name, a password rule)."
        }
        (Some("800002"), _) => {
            "Invalid request input: the request or one of its values was malformed."
        }
        (Some("400"), _) | (_, Some(401)) => {
            "Access denied: the access token is missing, invalid or expired."
        }
        (Some("900308"), _) => {
            "Insufficient privileges: the signed-in user lacks the admin role this needs."
        }
        (Some("900309"), _) => "Blocked by conditional access policies of the tenant.",
        (Some("900329"), _) => "App-only authentication is not supported: use an App+User token.",
        (_, Some(429)) => "Throttled: the API's rate limit was exceeded until the end.",
        (_, Some(500..=599)) => "A server error at Partner Center that retries did not get past.",
        (_, None) => "No response: timeouts or dropped connections until the attempts ran out.",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn codes_before_statuses() {
        assert!(explain(Some("60002"), Some(404)).starts_with("User not found"));
        assert!(explain(Some("400"), Some(400)).starts_with("Access denied"));
        assert!(explain(None, Some(401)).starts_with("Access denied"));
        assert!(explain(Some("99"), Some(503)).starts_with("A server error"));
        assert!(explain(None, None).starts_with("No response"));
        assert_eq!(explain(Some("Request_ResourceNotFound"), Some(404)), "");
    }
}
