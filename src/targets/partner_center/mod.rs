//! Partner Center (`api.partnercenter.microsoft.com`): one PATCH or GET per row on
//! `/v1/customers/{customer}/users/{user}`, `MS-RequestId` (renewed after each answer, kept when
//! none arrived) and `MS-CorrelationId` (one per row), the body, the fields and their checks,
//! the error bodies and what their codes mean, reading users back for audits, the customers
//! and users collections (`collections`), and the OAuth scope. Uses only `core` and `targets`.

pub mod audit;
pub mod body;
pub mod collections;
pub mod columns;
pub mod errors;
pub mod explain;
pub mod fields;

use serde_json::{Map, Value};

use crate::targets::{
    Answer, Changes, Collection, CustomerItem, Field, FieldChange, IdRule, Ids, Method, NextLink,
    Op, Page, PageError, Request, RowRef, Target, UserItem,
};

/// The default API root.
pub const BASE_URL: &str = "https://api.partnercenter.microsoft.com";
/// The scope of the Partner Center App+User flow.
pub const SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation offline_access";

/// The Partner Center target.
#[derive(Clone, Copy, Debug, Default)]
pub struct PartnerCenter;

/// The path of one user, under the base URL's path.
pub fn user_path(row: &RowRef<'_>) -> String {
    format!("/v1/customers/{}/users/{}", row.customer, row.user)
}

impl Target for PartnerCenter {
    fn name(&self) -> &'static str {
        "partner-center"
    }

    fn default_base_url(&self) -> &'static str {
        BASE_URL
    }

    fn oauth_scope(&self) -> &'static str {
        SCOPE
    }

    fn undo_columns(&self) -> &'static [(&'static str, Field)] {
        audit::UNDO_COLUMNS
    }

    fn title(&self) -> &'static str {
        "Partner Center"
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

    fn request(&self, op: Op, rows: &[RowRef<'_>], ids: Ids) -> Request {
        let row = rows
            .first()
            .expect("Partner Center sends one row per request");
        let mut headers = vec![
            ("ms-requestid", ids.request.to_string()),
            ("ms-correlationid", ids.correlation.to_string()),
        ];
        let (method, body) = match op {
            Op::Read => (Method::Get, Vec::new()),
            Op::Write => {
                headers.push(("content-type", "application/json".to_string()));
                (Method::Patch, row.changes.to_body())
            }
        };
        Request {
            method,
            path_and_query: user_path(row),
            headers,
            body,
        }
    }

    fn shown_body(&self, changes: &Changes) -> String {
        changes.to_redacted_body()
    }

    fn shown_fields(&self, shown_body: &str) -> Vec<(&'static str, Option<String>)> {
        body::shown_fields(shown_body)
    }

    fn request_ids(&self) -> IdRule {
        // Partner Center deduplicates on MS-RequestId: a retry after a timeout or a dropped
        // connection may be the same request arriving twice; after an answer it is a new one.
        IdRule::RenewAfterAnswer
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
        Ok(collections::request(collection, next, ids))
    }

    fn customers_page(&self, body: &Map<String, Value>) -> Result<Page<CustomerItem>, PageError> {
        collections::customers(body)
    }

    fn roles_page(
        &self,
        customer: uuid::Uuid,
        user: uuid::Uuid,
        body: &Map<String, Value>,
    ) -> Result<Page<String>, PageError> {
        collections::roles(customer, user, body)
    }

    fn users_page(
        &self,
        customer: uuid::Uuid,
        body: &Map<String, Value>,
    ) -> Result<Page<UserItem>, PageError> {
        collections::users(customer, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn ids() -> Ids {
        Ids {
            request: Uuid::from_u128(1),
            correlation: Uuid::from_u128(2),
        }
    }

    #[test]
    fn a_write_is_one_patch_per_user_with_both_ids_and_a_json_body() {
        let changes = Changes {
            usage_location: Some("DE".into()),
            ..Changes::default()
        };
        let row = RowRef {
            customer: Uuid::from_u128(3),
            user: Uuid::from_u128(4),
            changes: &changes,
        };
        let target = crate::targets::default_target();
        assert_eq!(target.batch_size(), 1);
        let r = target.request(Op::Write, &[row], ids());
        assert_eq!(r.method, Method::Patch);
        assert_eq!(
            r.path_and_query,
            format!("/v1/customers/{}/users/{}", row.customer, row.user)
        );
        assert_eq!(
            r.headers,
            [
                ("ms-requestid", Uuid::from_u128(1).to_string()),
                ("ms-correlationid", Uuid::from_u128(2).to_string()),
                ("content-type", "application/json".to_string()),
            ]
        );
        assert_eq!(
            r.body,
            br#"{"usageLocation":"DE","attributes":{"objectType":"CustomerUser"}}"#
        );
        let read = target.request(Op::Read, &[row], ids());
        assert_eq!((read.method, read.body.len()), (Method::Get, 0));
        assert_eq!(read.headers.len(), 2);
    }

    #[test]
    fn the_request_id_is_renewed_only_after_an_answer() {
        assert!(PartnerCenter.request_ids().renews(true));
        assert!(!PartnerCenter.request_ids().renews(false));
    }

    #[test]
    fn answers_split_into_one_result_with_a_text_code() {
        let body = br#"{"code":60002,"description":"User not found."}"#;
        let answer = Answer {
            status: 404,
            body,
            is_json: true,
        };
        let got = PartnerCenter.split(Op::Write, &answer, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].error_code.as_deref(), Some("60002"));
        assert_eq!(got[0].message, "User not found.");
        let user = br#"{"usageLocation":"DE","passwordProfile":{"password":"x"}}"#;
        let read = Answer {
            status: 200,
            body: user,
            is_json: true,
        };
        let got = PartnerCenter.split(Op::Read, &read, 1);
        let live = got[0].user.as_ref().unwrap();
        assert_eq!(live.get("usageLocation").unwrap(), "DE");
        assert!(!live.contains_key("passwordProfile"));
        assert_eq!(
            PartnerCenter.explain(Some("60003"), Some(404)),
            "Customer tenant not found: check the customer id."
        );
    }

    #[test]
    fn targets_are_chosen_by_name() {
        assert_eq!(
            crate::targets::choose("partner-center").unwrap().name(),
            "partner-center"
        );
        assert!(crate::targets::choose("nope").is_none());
    }
}
