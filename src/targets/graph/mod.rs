//! Microsoft Graph (`graph.microsoft.com/v1.0`): one `PATCH /users/{id}` (answered 204) or
//! `GET /users/{id}?$select=...` per row, a user addressed by object id or by user principal
//! name (percent-encoded, `#` as `%23`), `client-request-id` (the row's correlation id) and
//! `request-id` (new for every attempt), the body with `null` for a cleared field, the fields
//! and their checks, Graph's error shape and what its codes mean, audit reads and the scope.
//! Uses only `core` and `targets`.
//!
//! Each customer tenant gets its own token (GDAP: [`Target::tokens_per_tenant`]); listings
//! (a tenant's users, a user's directory roles) are in `collections`. Several writes of one
//! tenant go in one `POST /$batch` ([`batch`], through [`Target::request_many`] and
//! [`Target::split_many`]).

pub mod audit;
pub mod batch;
pub mod body;
pub mod collections;
pub mod columns;
pub mod errors;
pub mod explain;
pub mod fields;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::targets::{
    Answer, Changes, Collection, Field, FieldChange, IdRule, Ids, Method, NextLink, Op, Page,
    PageError, Request, RowAnswer, RowRef, Target, UserItem,
};

/// The default API root (a national cloud's, or a test server's, is given with `--base-url`).
pub const BASE_URL: &str = "https://graph.microsoft.com/v1.0";
/// The scope of a delegated Graph token (the app's consented permissions).
/// Graph's documented write limit for identity and access: 3,000 writes per 150 s per app and
/// tenant (a user PATCH is one write, in a `$batch` or not), 20 per second sustained.
const WRITES_PER_TENANT: u32 = 3_000;
const WRITES_WINDOW_S: u32 = 150;
pub const SCOPE: &str = "https://graph.microsoft.com/.default offline_access";

/// The Microsoft Graph target.
#[derive(Clone, Copy, Debug, Default)]
pub struct Graph;

/// How a request addresses a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKey<'a> {
    /// The object id.
    Id(Uuid),
    /// The user principal name (a guest's holds `#EXT#`).
    Name(&'a str),
}

/// Percent-encodes everything but the unreserved characters and `@` (so `#` is `%23`).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of one user under the base URL: `/users/{id}`, `/users/{upn}`, or, for a name that
/// starts with `$` (which Graph would read as a system segment), `/users('{upn}')`.
pub fn user_path(user: UserKey<'_>) -> String {
    match user {
        UserKey::Id(id) => format!("/users/{id}"),
        UserKey::Name(name) if name.starts_with('$') => {
            format!("/users('{}')", encode_segment(&name.replace('\'', "''")))
        }
        UserKey::Name(name) => format!("/users/{}", encode_segment(name)),
    }
}

impl Target for Graph {
    fn name(&self) -> &'static str {
        "graph"
    }

    fn default_base_url(&self) -> &'static str {
        BASE_URL
    }

    fn oauth_scope(&self) -> &'static str {
        SCOPE
    }

    fn title(&self) -> &'static str {
        "Microsoft Graph"
    }

    fn tokens_per_tenant(&self) -> bool {
        true
    }

    fn resolves_domains_by_discovery(&self) -> bool {
        true
    }

    fn undo_columns(&self) -> &'static [(&'static str, Field)] {
        audit::UNDO_COLUMNS
    }

    fn throttles_per_tenant(&self) -> bool {
        true
    }

    fn documented_tenant_rate(&self) -> Option<f64> {
        Some(WRITES_PER_TENANT as f64 / WRITES_WINDOW_S as f64)
    }

    fn column_alias(&self, normalized: &str) -> Option<&'static str> {
        columns::alias(normalized)
    }

    fn unchangeable_column(&self, normalized: &str) -> bool {
        columns::unchangeable(normalized)
    }

    fn fields(&self) -> &'static [Field] {
        fields::FIELDS
    }

    fn check(&self, field: Field, value: &str) -> Result<String, String> {
        fields::check(field, value)
    }

    fn can_clear(&self, field: Field) -> bool {
        fields::can_clear(field)
    }

    fn batch_size(&self) -> usize {
        batch::MAX
    }

    fn request_many(&self, op: Op, rows: &[(RowRef<'_>, Ids)], envelope: Ids) -> Request {
        batch::request(op, rows, envelope)
    }

    fn split_many(&self, op: Op, answer: &Answer<'_>, rows: usize) -> Vec<RowAnswer> {
        batch::split(op, answer, rows, |whole| self.split(op, whole, rows))
    }

    fn request(&self, op: Op, rows: &[RowRef<'_>], ids: Ids) -> Request {
        let row = rows.first().expect("a request carries a row");
        let path = user_path(UserKey::Id(row.user));
        let mut headers = vec![
            ("client-request-id", ids.correlation.to_string()),
            ("request-id", ids.request.to_string()),
        ];
        let (method, path_and_query, body) = match op {
            Op::Read => (
                Method::Get,
                format!("{path}?$select={}", audit::select()),
                Vec::new(),
            ),
            Op::Write => {
                headers.push(("content-type", "application/json".to_string()));
                (Method::Patch, path, body::body(row.changes, false))
            }
        };
        Request {
            method,
            path_and_query,
            headers,
            body,
        }
    }

    fn shown_body(&self, changes: &Changes) -> String {
        String::from_utf8(body::body(changes, true)).unwrap_or_default()
    }

    fn shown_fields(&self, shown_body: &str) -> Vec<(&'static str, Option<String>)> {
        body::shown_fields(shown_body)
    }

    fn request_ids(&self) -> IdRule {
        // Graph keeps no idempotency key: `request-id` only tells attempts apart in its logs.
        IdRule::RenewAlways
    }

    fn read_error(&self, answer: &Answer<'_>) -> (Option<String>, String) {
        errors::describe_error(answer.status, answer.body, answer.is_json)
    }

    fn compare(&self, changes: &Changes, live: &Map<String, Value>) -> Vec<FieldChange> {
        audit::compare(changes, live)
    }

    fn explain(&self, code: Option<&str>, status: Option<u16>) -> &'static str {
        explain::explain(code, status)
    }

    fn refuses_tenant(&self, status: u16, code: Option<&str>) -> Option<&'static str> {
        errors::tenant_refusal(status, code)
    }

    fn list_request(
        &self,
        collection: Collection,
        next: Option<&NextLink>,
        ids: Ids,
    ) -> Result<Request, PageError> {
        collections::request(collection, next, ids)
    }

    fn roles_page(
        &self,
        customer: Uuid,
        user: Uuid,
        body: &Map<String, Value>,
    ) -> Result<Page<String>, PageError> {
        collections::roles(customer, user, body)
    }

    fn users_page(
        &self,
        customer: Uuid,
        body: &Map<String, Value>,
    ) -> Result<Page<UserItem>, PageError> {
        collections::users(customer, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids {
            request: Uuid::from_u128(1),
            correlation: Uuid::from_u128(2),
        }
    }

    #[test]
    fn users_are_addressed_by_id_or_by_encoded_name() {
        let id = Uuid::from_u128(4);
        assert_eq!(user_path(UserKey::Id(id)), format!("/users/{id}"));
        assert_eq!(
            user_path(UserKey::Name(
                "anna_fabrikam.com#EXT#@contoso.onmicrosoft.com"
            )),
            "/users/anna_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
        );
        assert_eq!(
            user_path(UserKey::Name("o'neil/x?y@contoso.com")),
            "/users/o%27neil%2Fx%3Fy@contoso.com"
        );
        assert_eq!(
            user_path(UserKey::Name("$adele@contoso.com")),
            "/users('%24adele@contoso.com')"
        );
    }

    #[test]
    fn a_write_is_a_patch_with_both_ids_and_a_read_selects_the_fields() {
        let changes = Changes {
            more: vec![
                (Field::JobTitle, Some("Engineer".into())),
                (Field::Department, None),
            ]
            .into(),
            ..Changes::default()
        };
        let row = RowRef {
            customer: Uuid::from_u128(3),
            user: Uuid::from_u128(4),
            changes: &changes,
        };
        let target = crate::targets::choose("graph").unwrap();
        assert_eq!((target.name(), target.batch_size()), ("graph", 20));
        assert_eq!(
            target.default_base_url(),
            "https://graph.microsoft.com/v1.0"
        );
        let w = target.request(Op::Write, &[row], ids());
        assert_eq!(w.method, Method::Patch);
        assert_eq!(w.path_and_query, format!("/users/{}", row.user));
        assert_eq!(
            w.headers,
            [
                ("client-request-id", Uuid::from_u128(2).to_string()),
                ("request-id", Uuid::from_u128(1).to_string()),
                ("content-type", "application/json".to_string()),
            ]
        );
        assert_eq!(w.body, br#"{"department":null,"jobTitle":"Engineer"}"#);
        let r = target.request(Op::Read, &[row], ids());
        assert_eq!(
            (r.method, r.body.len(), r.headers.len()),
            (Method::Get, 0, 2)
        );
        assert_eq!(
            r.path_and_query,
            format!("/users/{}?$select={}", row.user, audit::select())
        );
        assert!(target.request_ids().renews(false));
    }

    #[test]
    fn answers_split_with_graph_codes() {
        let body = br#"{"error":{"code":"Request_ResourceNotFound","message":"gone","innerError":{"request-id":"r"}}}"#;
        let answer = Answer {
            status: 404,
            body,
            is_json: true,
        };
        let got = Graph.split(Op::Write, &answer, 1);
        assert_eq!(
            got[0].error_code.as_deref(),
            Some("Request_ResourceNotFound")
        );
        assert_eq!(got[0].message, "gone");
        let ok = Graph.split(
            Op::Write,
            &Answer {
                status: 204,
                body: b"",
                is_json: false,
            },
            1,
        );
        assert_eq!((ok[0].status, ok[0].error_code.as_ref()), (204, None));
        assert!(Graph.can_clear(Field::City) && !Graph.can_clear(Field::Password));
    }
}
