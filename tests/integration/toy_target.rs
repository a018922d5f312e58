//! A second target plugged in through the `Target` trait drives a whole run (the public `run`)
//! against a tiny server: its own paths, headers, body, fields, error codes and explanations.

use std::sync::{Arc, Mutex};

use bulkpatch::targets::{
    Answer, Changes, Field, FieldChange, IdRule, Ids, Method, Op, Request, RowRef, Target,
};
use serde_json::{Map, Value};

use crate::support::{customer, tempdir, user, Csv, Results};

/// A made-up API: `POST /toy/users/{user}` with `{"country":..}`, the attempt id in
/// `x-toy-key`, errors as `{"error":{"code":"Toy_…","message":…}}`.
#[derive(Debug)]
struct Toy;

impl Target for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn default_base_url(&self) -> &'static str {
        "https://toy.invalid"
    }
    fn oauth_scope(&self) -> &'static str {
        "toy.write"
    }
    fn fields(&self) -> &'static [Field] {
        &[Field::UsageLocation]
    }
    fn check(&self, _field: Field, value: &str) -> Result<String, String> {
        Ok(value.to_ascii_lowercase())
    }
    fn request(&self, op: Op, rows: &[RowRef<'_>], ids: Ids) -> Request {
        let body = serde_json::json!({ "country": rows[0].changes.usage_location });
        Request {
            method: if op == Op::Read {
                Method::Get
            } else {
                Method::Post
            },
            path_and_query: format!("/toy/users/{}", rows[0].user),
            headers: vec![
                ("x-toy-key", ids.request.to_string()),
                ("content-type", "application/json".into()),
            ],
            body: serde_json::to_vec(&body).unwrap(),
        }
    }
    fn shown_body(&self, _changes: &Changes) -> String {
        String::new()
    }
    fn request_ids(&self) -> IdRule {
        IdRule::RenewAlways
    }
    fn read_error(&self, answer: &Answer<'_>) -> (Option<String>, String) {
        let v: Value = serde_json::from_slice(answer.body).unwrap_or_default();
        let text = |k: &str| v["error"][k].as_str().map(str::to_string);
        (text("code"), text("message").unwrap_or_default())
    }
    fn compare(&self, _changes: &Changes, _live: &Map<String, Value>) -> Vec<FieldChange> {
        Vec::new()
    }
    fn explain(&self, code: Option<&str>, _status: Option<u16>) -> &'static str {
        match code {
            Some("Toy_NotFound") => "The toy user does not exist.",
            _ => "",
        }
    }
}

/// What the server saw: method, path, `x-toy-key`, body.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

async fn toy_server(missing: String) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (log, missing) = (log.clone(), missing.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
            let key = parts
                .headers
                .get("x-toy-key")
                .map(|v| v.to_str().unwrap().to_string());
            log.lock().unwrap().push((
                parts.method.to_string(),
                parts.uri.path().to_string(),
                key.unwrap_or_default(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            if parts.uri.path().ends_with(&missing) {
                let error = r#"{"error":{"code":"Toy_NotFound","message":"no such toy user"}}"#;
                (axum::http::StatusCode::NOT_FOUND, error)
            } else {
                (axum::http::StatusCode::OK, "{}")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

#[tokio::test]
async fn a_second_target_is_one_trait_impl_and_drives_a_run() {
    let dir = tempdir();
    let c = customer(1).to_string();
    let (u1, u2, u3) = (
        user(1).to_string(),
        user(2).to_string(),
        user(3).to_string(),
    );
    let input = Csv::new(&["customer_id", "user_id", "usage_location", "display_name"])
        .row(&[&c, &u1, "DE", ""])
        .row(&[&c, &u2, "FR", ""])
        .row(&[&c, &u3, "GB", "Not for toys"])
        .write(dir.path(), "toy.csv");
    let (base, seen) = toy_server(format!("/users/{u2}")).await;

    let mut settings = bulkpatch::Settings::with_defaults(&input);
    settings.target = Arc::new(Toy);
    settings.base_url = base.parse().unwrap();
    settings.out = dir.path().join("toy.results.csv");
    settings.report = Some(dir.path().join("toy.html"));
    settings.show_progress = false;
    settings.credentials = Some(bulkpatch::settings::credentials::Credentials::Fixed(
        secrecy::SecretString::from("toy-token".to_string()),
    ));
    bulkpatch::run(settings).await.expect("the run");

    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    let shape: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(m, p, _, b)| (m.as_str(), p.as_str(), b.as_str()))
        .collect();
    let (p1, p2) = (format!("/toy/users/{u1}"), format!("/toy/users/{u2}"));
    assert_eq!(
        shape,
        [
            ("POST", p1.as_str(), r#"{"country":"de"}"#),
            ("POST", p2.as_str(), r#"{"country":"fr"}"#),
        ],
        "the toy's method, path and body; the row with a field the toy lacks is not sent"
    );
    assert!(seen.iter().all(|s| uuid::Uuid::parse_str(&s.2).is_ok()));

    let results = Results::read(&dir.path().join("toy.results.csv"));
    assert_eq!(results.line(2)["outcome"], "updated");
    let missing = results.line(3);
    assert_eq!(
        (missing["outcome"].as_str(), missing["error_code"].as_str()),
        ("failed", "Toy_NotFound")
    );
    assert_eq!(missing["message"], "no such toy user");
    let invalid = results.line(4);
    assert_eq!(invalid["outcome"], "invalid");
    assert!(
        invalid["message"].contains("display_name cannot be changed through toy"),
        "{}",
        invalid["message"]
    );
    let report = std::fs::read_to_string(dir.path().join("toy.html")).unwrap();
    assert!(
        report.contains("Toy_NotFound"),
        "the text code in the report"
    );
    assert!(report.contains("The toy user does not exist."));
}
