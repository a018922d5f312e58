//! The one table of transient HTTP statuses: an answer with one of these may go differently if
//! the request is sent again (the retry loop, a resume, the token endpoint all read it here).
//! Uses no other module of the crate.

/// Request timeout, throttled, and the server errors a retry can get past.
pub const STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Whether a request answered `status` may succeed if sent again.
pub fn is_transient(status: u16) -> bool {
    STATUSES.contains(&status)
}

#[cfg(test)]
mod tests {
    #[test]
    fn throttling_and_gateway_errors_are_transient_client_errors_are_not() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(super::is_transient(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501, 505] {
            assert!(!super::is_transient(s), "{s}");
        }
    }
}
