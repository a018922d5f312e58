//! Graph's JSON batching: up to [`MAX`] rows of one tenant in one `POST /$batch`
//! (`{"requests":[{"id","method","url","headers","body"}]}`, the ids being the rows' positions
//! from 1), and the answer's `responses[]` (each with its own status, headers and body, in any
//! order) split back into one result per row. The answer is hostile: a row it does not answer,
//! answers twice or answers unreadably gets a 502 (sent again), never another row's result.
//! Uses only `core` and `targets`.

use serde_json::{json, Map, Value};

use crate::targets::graph::{audit, body, errors, user_path, UserKey};
use crate::targets::{Answer, Ids, Method, Op, Request, RowAnswer, RowRef};

/// The most requests one `$batch` may carry (Graph refuses more).
pub const MAX: usize = 20;
/// Headers of a sub-response kept (and each value's length): enough for `Retry-After` and the
/// throttle headers, never a flood.
const MAX_HEADERS: usize = 16;
const MAX_HEADER_LEN: usize = 256;

/// The `$batch` request for `rows`, each with its own `client-request-id` and `request-id`.
pub fn request(op: Op, rows: &[(RowRef<'_>, Ids)], envelope: Ids) -> Request {
    let requests: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (row, ids))| sub_request(op, i, row, ids))
        .collect();
    let body = serde_json::to_vec(&json!({ "requests": requests })).unwrap_or_default();
    Request {
        method: Method::Post,
        path_and_query: "/$batch".into(),
        headers: vec![
            ("client-request-id", envelope.correlation.to_string()),
            ("request-id", envelope.request.to_string()),
            ("content-type", "application/json".to_string()),
        ],
        body,
    }
}

fn sub_request(op: Op, index: usize, row: &RowRef<'_>, ids: &Ids) -> Value {
    let path = user_path(UserKey::Id(row.user));
    let mut headers = Map::new();
    headers.insert(
        "client-request-id".into(),
        json!(ids.correlation.to_string()),
    );
    headers.insert("request-id".into(), json!(ids.request.to_string()));
    let mut sub = Map::new();
    sub.insert("id".into(), json!((index + 1).to_string()));
    match op {
        Op::Read => {
            sub.insert("method".into(), json!("GET"));
            sub.insert(
                "url".into(),
                json!(format!("{path}?$select={}", audit::select())),
            );
        }
        Op::Write => {
            headers.insert("content-type".into(), json!("application/json"));
            let patch = body::body(row.changes, false);
            let patch: Value = serde_json::from_slice(&patch).unwrap_or_else(|_| json!({}));
            sub.insert("method".into(), json!("PATCH"));
            sub.insert("url".into(), json!(path));
            sub.insert("body".into(), patch);
        }
    }
    sub.insert("headers".into(), Value::Object(headers));
    Value::Object(sub)
}

/// One result per row, in the rows' order, from a `$batch` answer. An answer that is not a
/// success is every row's answer.
pub fn split(
    op: Op,
    answer: &Answer<'_>,
    rows: usize,
    whole: impl Fn(&Answer<'_>) -> Vec<RowAnswer>,
) -> Vec<RowAnswer> {
    if !(200..300).contains(&answer.status) {
        return whole(answer);
    }
    let responses = serde_json::from_slice::<Value>(answer.body)
        .ok()
        .and_then(|v| v.get("responses").and_then(Value::as_array).cloned());
    let Some(responses) = responses else {
        return vec![missing("the batch answer could not be read"); rows];
    };
    let mut out: Vec<Option<RowAnswer>> = vec![None; rows];
    let mut twice = vec![false; rows];
    for response in &responses {
        let Some(i) = position(response, rows) else {
            continue;
        };
        twice[i] = out[i].is_some();
        out[i] = Some(sub_answer(op, response));
    }
    out.into_iter()
        .zip(twice)
        .map(|(answer, twice)| match (answer, twice) {
            (Some(_), true) => missing("the batch answer answered this row twice"),
            (Some(a), false) => a,
            (None, _) => missing("the batch answer had no response for this row"),
        })
        .collect()
}

/// The row a sub-response answers: its id, a position from 1 to `rows`.
fn position(response: &Value, rows: usize) -> Option<usize> {
    let id = response.get("id")?.as_str()?;
    let n: usize = id.trim().parse().ok()?;
    (1..=rows).contains(&n).then(|| n - 1)
}

fn missing(message: &str) -> RowAnswer {
    RowAnswer {
        status: 502,
        error_code: None,
        message: message.into(),
        user: None,
        headers: Vec::new(),
    }
}

/// One sub-response read like a whole answer: its status, its error, its headers.
fn sub_answer(op: Op, response: &Value) -> RowAnswer {
    let status = response
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..600).contains(s));
    let Some(status) = status else {
        return missing("the batch answer gave this row no valid status");
    };
    let headers = sub_headers(response.get("headers"));
    let body = response.get("body");
    let bytes = match body {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v) => serde_json::to_vec(v).unwrap_or_default(),
        None => Vec::new(),
    };
    let (error_code, message, user) = if (200..300).contains(&status) {
        let user = (op == Op::Read)
            .then(|| crate::targets::read_user(&bytes))
            .flatten();
        let message = match (op, &user) {
            (Op::Read, None) => "the answer was not a user object".to_string(),
            _ => String::new(),
        };
        (None, message, user)
    } else {
        let (code, message) = errors::describe_error(status, &bytes, true);
        (code, message, None)
    };
    RowAnswer {
        status,
        error_code,
        message,
        user,
        headers,
    }
}

fn sub_headers(headers: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(headers)) = headers else {
        return Vec::new();
    };
    headers
        .iter()
        .filter_map(|(name, value)| Some((name, value.as_str()?)))
        .filter(|(name, value)| name.len() <= MAX_HEADER_LEN && value.len() <= MAX_HEADER_LEN)
        .take(MAX_HEADERS)
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::{Changes, Field};
    use uuid::Uuid;

    fn ids(n: u128) -> Ids {
        Ids {
            request: Uuid::from_u128(n),
            correlation: Uuid::from_u128(n + 100),
        }
    }

    fn whole(answer: &Answer<'_>) -> Vec<RowAnswer> {
        vec![missing(&format!("whole {}", answer.status))]
    }

    #[test]
    fn a_batch_carries_each_row_with_its_own_ids_and_body() {
        let changes = Changes {
            more: vec![(Field::JobTitle, Some("Engineer".into()))].into(),
            ..Changes::default()
        };
        let row = |n| RowRef {
            customer: Uuid::from_u128(9),
            user: Uuid::from_u128(n),
            changes: &changes,
        };
        let r = request(Op::Write, &[(row(1), ids(1)), (row(2), ids(2))], ids(50));
        assert_eq!(
            (r.method, r.path_and_query.as_str()),
            (Method::Post, "/$batch")
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let subs = body["requests"].as_array().unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[1]["id"], "2");
        assert_eq!(subs[1]["method"], "PATCH");
        assert_eq!(subs[1]["url"], format!("/users/{}", Uuid::from_u128(2)));
        assert_eq!(subs[1]["body"], json!({"jobTitle": "Engineer"}));
        let h = &subs[1]["headers"];
        assert_eq!(h["client-request-id"], Uuid::from_u128(102).to_string());
        assert_eq!(h["request-id"], Uuid::from_u128(2).to_string());
        assert_eq!(h["content-type"], "application/json");
    }

    #[test]
    fn answers_in_any_order_split_back_to_their_rows() {
        let body = json!({"responses": [
            {"id": "3", "status": 404, "body": {"error": {"code": "Request_ResourceNotFound", "message": "gone"}}},
            {"id": "1", "status": 204},
            {"id": "2", "status": 429, "headers": {"Retry-After": "2.128"}, "body": {"error": {"code": "TooManyRequests", "message": "slow"}}},
            {"id": "7", "status": 204},
            {"id": "x", "status": 204},
        ]});
        let bytes = serde_json::to_vec(&body).unwrap();
        let answer = Answer {
            status: 200,
            body: &bytes,
            is_json: true,
        };
        let got = split(Op::Write, &answer, 4, whole);
        let statuses: Vec<u16> = got.iter().map(|a| a.status).collect();
        assert_eq!(statuses, [204, 429, 404, 502]);
        assert_eq!(got[1].headers, [("retry-after".into(), "2.128".into())]);
        assert_eq!(
            got[2].error_code.as_deref(),
            Some("Request_ResourceNotFound")
        );
        assert!(got[3].message.contains("no response"), "{}", got[3].message);
    }

    #[test]
    fn hostile_batch_answers_never_give_a_row_another_rows_result() {
        let twice = br#"{"responses":[{"id":"1","status":204},{"id":"1","status":400}]}"#;
        let got = split(
            Op::Write,
            &Answer {
                status: 200,
                body: twice,
                is_json: true,
            },
            1,
            whole,
        );
        assert_eq!(got[0].status, 502);
        for junk in [
            &b"<html>"[..],
            br#"{"responses":7}"#,
            br#"{"responses":[{"id":"1","status":99999}]}"#,
        ] {
            let got = split(
                Op::Write,
                &Answer {
                    status: 200,
                    body: junk,
                    is_json: true,
                },
                1,
                whole,
            );
            assert_eq!(got[0].status, 502);
        }
        let got = split(
            Op::Write,
            &Answer {
                status: 503,
                body: b"",
                is_json: false,
            },
            2,
            whole,
        );
        assert_eq!(got[0].message, "whole 503");
    }
}
