//! Everything specific to one API, behind the [`Target`] trait the pipeline uses: the base URL,
//! each request's method, path, headers and body, the MS-RequestId rule, the fields a row may
//! change and their validation, the error body and its codes, the explanations in reports,
//! audit reads and the OAuth scope. Adding an API means adding one module and one line in
//! [`TARGETS`]. Uses only `core`.

pub mod changes;
pub mod graph;
pub mod listing;
pub mod partner_center;
pub mod select;

use std::fmt::Debug;
use std::sync::Arc;

use serde_json::{Map, Value};
use uuid::Uuid;

pub use crate::targets::changes::{Changes, FieldChange, CLEAR};
pub use crate::targets::listing::{Collection, CustomerItem, NextLink, Page, PageError, UserItem};

/// Every target, by the name a setting would choose it by: one line per target.
pub const TARGETS: &[(&str, MakeTarget)] = &[
    ("partner-center", || Arc::new(partner_center::PartnerCenter)),
    ("graph", || Arc::new(graph::Graph)),
];

/// Makes a target.
pub type MakeTarget = fn() -> Arc<dyn Target>;

/// The target a run uses when none is named.
pub fn default_target() -> Arc<dyn Target> {
    (TARGETS[0].1)()
}

/// The target named `name`, if there is one.
pub fn choose(name: &str) -> Option<Arc<dyn Target>> {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, make)| make())
}

/// A field a row may change: the CSV's columns after the ids. A target says which it supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    UsageLocation,
    DisplayName,
    FirstName,
    LastName,
    UserPrincipalName,
    Password,
    // Graph's own (see `graph::fields`).
    JobTitle,
    Department,
    OfficeLocation,
    CompanyName,
    EmployeeId,
    MobilePhone,
    BusinessPhones,
    City,
    State,
    Country,
    PostalCode,
    StreetAddress,
    PreferredLanguage,
    AccountEnabled,
}

impl Field {
    /// The CSV column naming this field (a rename is `new_user_principal_name`: the
    /// `user_principal_name` column names the user and is never sent).
    pub fn column(self) -> &'static str {
        match self {
            Field::UsageLocation => "usage_location",
            Field::DisplayName => "display_name",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::UserPrincipalName => "new_user_principal_name",
            Field::Password => "password",
            Field::JobTitle => "job_title",
            Field::Department => "department",
            Field::OfficeLocation => "office_location",
            Field::CompanyName => "company_name",
            Field::EmployeeId => "employee_id",
            Field::MobilePhone => "mobile_phone",
            Field::BusinessPhones => "business_phones",
            Field::City => "city",
            Field::State => "state",
            Field::Country => "country",
            Field::PostalCode => "postal_code",
            Field::StreetAddress => "street_address",
            Field::PreferredLanguage => "preferred_language",
            Field::AccountEnabled => "account_enabled",
        }
    }
}

/// What a request does to the rows it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read the users' current fields (audits, `--skip-unchanged`).
    Read,
    /// Apply the rows' changes.
    Write,
}

/// One row as a request sees it.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    pub customer: Uuid,
    pub user: Uuid,
    pub changes: &'a Changes,
}

/// The ids a request carries: one per attempt (renewed by [`Target::renews_request_id`]) and one
/// for the row's whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub request: Uuid,
    pub correlation: Uuid,
}

/// When a retry gets a new request id (an idempotency key such as `MS-RequestId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRule {
    /// Kept when no answer arrived (the server may have the request already), renewed after any
    /// answer: Partner Center.
    RenewAfterAnswer,
    /// A new id for every attempt.
    RenewAlways,
}

impl IdRule {
    /// Whether the next attempt needs a new id; `got_response` says whether the last one got an answer.
    pub fn renews(self, got_response: bool) -> bool {
        match self {
            IdRule::RenewAfterAnswer => got_response,
            IdRule::RenewAlways => true,
        }
    }
}

/// An HTTP method a target uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Patch,
    Post,
}

/// A request as a target describes it; the transport adds the base URL, `Authorization`,
/// `Accept`, `User-Agent` and sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Appended to the base URL's path: `/v1/customers/{c}/users/{u}`.
    pub path_and_query: String,
    /// The target's own headers (names in lower case), `content-type` included when there is a body.
    pub headers: Vec<(&'static str, String)>,
    /// The body to send; holds secrets in clear (a password): send it, never show it.
    pub body: Vec<u8>,
}

/// What came back for a request, as the transport read it.
#[derive(Clone, Debug)]
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// Whether the `Content-Type` said JSON (or said nothing).
    pub is_json: bool,
}

/// One row's share of an answer: its status, error code and message (empty on success), and the
/// user's fields for a read.
#[derive(Clone, Debug, PartialEq)]
pub struct RowAnswer {
    pub status: u16,
    pub error_code: Option<String>,
    pub message: String,
    pub user: Option<Map<String, Value>>,
    /// The row's own answer headers (names in lower case) when it was one part of a batch
    /// answer (its `Retry-After`, say); empty otherwise, the transport having read them.
    pub headers: Vec<(String, String)>,
}

/// One API the tool can update users through.
///
/// A trait object (`Arc<dyn Target>`) rather than an enum: a new target is then one module and
/// one line in [`TARGETS`], and no `match` elsewhere grows an arm. The per-request cost of the
/// dynamic call is nothing next to a network round trip.
pub trait Target: Send + Sync + Debug {
    /// The name a setting chooses it by.
    fn name(&self) -> &'static str;
    /// The API's base URL when `--base-url` is not given.
    fn default_base_url(&self) -> &'static str;
    /// The scope to ask the token endpoint for.
    fn oauth_scope(&self) -> &'static str;
    /// Whether each customer tenant needs its own access token (Graph through GDAP: the
    /// refresh token redeemed at the tenant's endpoint) rather than the run's one token.
    fn tokens_per_tenant(&self) -> bool {
        false
    }
    /// Whether a customer named by domain is found as a tenant, through the authority's public
    /// discovery document (Graph: customers are tenants), rather than in the partner's listing
    /// of its customers (Partner Center).
    fn resolves_domains_by_discovery(&self) -> bool {
        false
    }
    /// Whether every 429 is the customer tenant's own limit (Graph throttles per app and
    /// tenant), rather than the partner's or the customer's, which only the spread of the
    /// 429s over customers tells (Partner Center).
    fn throttles_per_tenant(&self) -> bool {
        false
    }
    /// The writes per second a customer tenant is documented to allow (Graph: 3,000 per 150 s
    /// per app and tenant): each tenant's pace starts there, then adapts. None: unknown.
    fn documented_tenant_rate(&self) -> Option<f64> {
        None
    }
    /// The API's name in messages ("not changeable through Partner Center").
    fn title(&self) -> &'static str {
        self.name()
    }
    /// The column a header name of the API's own exports means (`givenname` from an Entra
    /// export: `firstname`), both normalised (lower case, no spaces, `-` or `_`).
    fn column_alias(&self, normalized: &str) -> Option<&'static str> {
        let _ = normalized;
        None
    }
    /// Whether a (normalised) header name is a column of the API's own exports that it cannot
    /// change (`jobtitle`): reported as such, not as a typo.
    fn unchangeable_column(&self, normalized: &str) -> bool {
        let _ = normalized;
        false
    }

    /// The fields a row may change through this API.
    fn fields(&self) -> &'static [Field];
    /// Checks a (trimmed, non-empty) cell for `field`: the value to send, or why it is refused.
    fn check(&self, field: Field, value: &str) -> Result<String, String>;
    /// Whether a cell holding [`CLEAR`] may clear `field` (send it as empty): only APIs that
    /// take JSON `null` as "clear" (Graph) allow any.
    fn can_clear(&self, field: Field) -> bool {
        let _ = field;
        false
    }

    /// How many rows one request may carry (1: one request per row; Graph `$batch` takes 20).
    fn batch_size(&self) -> usize {
        1
    }
    /// The request for `rows` (at most [`Target::batch_size`] of them).
    fn request(&self, op: Op, rows: &[RowRef<'_>], ids: Ids) -> Request;
    /// The body of a write as it may be shown (dry-run plans): secrets replaced.
    fn shown_body(&self, changes: &Changes) -> String;
    /// The fields a shown body (from [`Target::shown_body`], read back from a results file,
    /// so possibly crafted) sets, each with its value; None for a secret (a password), which
    /// a plan only counts. Fields in the order the target lists them.
    fn shown_fields(&self, shown_body: &str) -> Vec<(&'static str, Option<String>)> {
        let _ = shown_body;
        Vec::new()
    }
    /// When a retry gets a new request id.
    fn request_ids(&self) -> IdRule;

    /// The error code and a message from an error body of any shape (a proxy's HTML too).
    fn read_error(&self, answer: &Answer<'_>) -> (Option<String>, String);
    /// One result per row of the request, in order. The default suits one row per request:
    /// the answer's status, its error for a failure, its user object for a successful read.
    fn split(&self, op: Op, answer: &Answer<'_>, rows: usize) -> Vec<RowAnswer> {
        let one = if (200..300).contains(&answer.status) {
            let user = (op == Op::Read).then(|| read_user(answer.body)).flatten();
            let message = match (op, &user) {
                (Op::Read, None) => "the answer was not a user object".to_string(),
                _ => String::new(),
            };
            RowAnswer {
                status: answer.status,
                error_code: None,
                message,
                user,
                headers: Vec::new(),
            }
        } else {
            let (error_code, message) = self.read_error(answer);
            RowAnswer {
                status: answer.status,
                error_code,
                message,
                user: None,
                headers: Vec::new(),
            }
        };
        vec![one; rows]
    }
    /// The one request carrying several rows (at most [`Target::batch_size`]), each with its
    /// own ids, `envelope` the request's own: Graph's `POST /$batch`. The default suits one row.
    fn request_many(&self, op: Op, rows: &[(RowRef<'_>, Ids)], envelope: Ids) -> Request {
        let _ = envelope;
        let (row, ids) = rows.first().expect("a request carries a row");
        self.request(op, &[*row], *ids)
    }
    /// One result per row of a [`Target::request_many`] request, in the rows' order; a row the
    /// answer says nothing about gets a transient status (5xx), so it is sent again.
    fn split_many(&self, op: Op, answer: &Answer<'_>, rows: usize) -> Vec<RowAnswer> {
        self.split(op, answer, rows)
    }
    /// Compares a row's desired values with the user's live fields (from a read).
    fn compare(&self, changes: &Changes, live: &Map<String, Value>) -> Vec<FieldChange>;
    /// What an error code (or, without one, an HTTP status) means, for reports; empty when unknown.
    fn explain(&self, code: Option<&str>, status: Option<u16>) -> &'static str;
    /// Whether a final failure refuses the whole customer tenant rather than one user (no
    /// relationship, tenant unknown, ...): a short name for the refusal, or None. The send
    /// stage stops sending a customer's rows after a few of these in a row.
    fn refuses_tenant(&self, status: u16, code: Option<&str>) -> Option<&'static str> {
        let _ = (status, code);
        None
    }

    /// For an undo file: each field that can be read back, as (the API's name in
    /// `FieldChange::field`, the field whose column sets it again). Empty: no undo.
    fn undo_columns(&self) -> &'static [(&'static str, Field)] {
        &[]
    }

    /// The request for a page of `collection`: its first page, or the page `next` names.
    /// A target that cannot list answers why.
    fn list_request(
        &self,
        collection: Collection,
        next: Option<&NextLink>,
        ids: Ids,
    ) -> Result<Request, PageError> {
        let _ = (collection, next, ids);
        Err(listing::unsupported("customers or users"))
    }
    /// A page of customers from a successful answer (a JSON object, hostile like any answer).
    fn customers_page(&self, body: &Map<String, Value>) -> Result<Page<CustomerItem>, PageError> {
        let _ = body;
        Err(listing::unsupported("customers"))
    }
    /// A page of a user's directory role names from a successful answer.
    fn roles_page(
        &self,
        customer: Uuid,
        user: Uuid,
        body: &Map<String, Value>,
    ) -> Result<Page<String>, PageError> {
        let _ = (customer, user, body);
        Err(listing::unsupported("directory roles"))
    }
    /// A page of `customer`'s users from a successful answer.
    fn users_page(
        &self,
        customer: Uuid,
        body: &Map<String, Value>,
    ) -> Result<Page<UserItem>, PageError> {
        let _ = (customer, body);
        Err(listing::unsupported("users"))
    }
}

/// A JSON object from a body, without any password profile it may echo.
pub fn read_user(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(mut m) => {
            m.remove("passwordProfile");
            Some(m)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert!(IdRule::RenewAfterAnswer.renews(true));
        assert!(!IdRule::RenewAfterAnswer.renews(false));
        assert!(IdRule::RenewAlways.renews(false));
        assert_eq!(
            TARGETS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            ["partner-center", "graph"]
        );
        assert_eq!(default_target().name(), TARGETS[0].0);
    }

    #[test]
    fn users_read_back_lose_their_password_profile() {
        let user = read_user(br#"{"id":"1","passwordProfile":{"password":"p"}}"#).unwrap();
        assert_eq!(user.keys().collect::<Vec<_>>(), ["id"]);
        assert_eq!(read_user(b"[1]"), None);
        assert_eq!(read_user(b"<html>"), None);
    }
}
