//! The simulator's directory and collections as a client sees them over HTTP: pages of at most
//! the page size, a next page only with the continuation token it names, the customers' domain
//! filter, and a directory read back from an export file (CSV) or JSON.

use bulkpatch::simulator::{Directory, SimConfig, Simulator};
use serde_json::{json, Value};

use crate::support::*;

async fn get(sim: &Simulator, path_and_query: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .bearer_auth(sim.token());
    if let Some(t) = token {
        request = request.header("MS-ContinuationToken", t);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn pages_need_their_continuation_token_and_the_domain_filter_is_a_prefix() {
    let directory = Directory::generated(12, 1, guid);
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        page_size: 5,
        ..SimConfig::default()
    })
    .await;
    let (status, first) = get(&sim, "/v1/customers?size=40", None).await;
    assert_eq!(status, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        first["items"][0]["companyProfile"]["domain"],
        "tenant1.onmicrosoft.com"
    );
    let next = &first["links"]["next"];
    let uri = next["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("/customers?") && uri.contains("seekOperation=Next"),
        "{uri}"
    );
    assert_eq!(next["headers"][0]["key"], "MS-ContinuationToken");
    let token = next["headers"][0]["value"].as_str().unwrap();
    // Without the token, or with another one, the next page is refused.
    let (status, body) = get(&sim, &format!("/v1{uri}"), None).await;
    assert_eq!((status, body["code"].clone()), (400, json!(800002)));
    let (status, _) = get(&sim, &format!("/v1{uri}"), Some("forged:customers:0")).await;
    assert_eq!(status, 400);
    let (_, second) = get(&sim, &format!("/v1{uri}"), Some(token)).await;
    assert_eq!(
        second["items"][0]["id"],
        directory.customers[5].id.to_string()
    );
    // A token for the customers does not page a customer's users.
    let users = format!(
        "/v1/customers/{}/users?seekOperation=Next",
        directory.customers[0].id
    );
    assert_eq!(get(&sim, &users, Some(token)).await.0, 400);

    // The filter matches a prefix of the domain, without case; the client compares exactly.
    let filter = r#"{"Field":"Domain","Value":"TENANT1","Operator":"starts_with"}"#;
    let encoded: String = url_encode(filter);
    let (status, found) = get(
        &sim,
        &format!("/v1/customers?size=0&filter={encoded}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let domains: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["companyProfile"]["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains,
        [
            "tenant1.onmicrosoft.com",
            "tenant10.onmicrosoft.com",
            "tenant11.onmicrosoft.com",
            "tenant12.onmicrosoft.com"
        ]
    );
    let (status, _) = get(&sim, "/v1/customers?filter=%7Bnot%20json", None).await;
    assert_eq!(status, 400);
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_directory_is_read_from_an_export_file_or_json_and_serves_the_same_export() {
    let dir = tempdir();
    let directory = Directory::generated(3, 4, guid);
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        ..SimConfig::default()
    })
    .await;
    let out = dir.path().join("users.csv");
    let mut cmd = bulkpatch(&[
        "export",
        "--all-customers",
        "--base-url",
        &sim.base_url(),
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let mut read = Directory::read(&out).unwrap();
    // The export has no company names, and lists customers in the order they finished.
    read.customers.sort_by_key(|c| c.id);
    let mut want = directory.clone();
    for c in &mut want.customers {
        c.company_name.clear();
    }
    assert_eq!(read, want);

    let json_path = dir.path().join("directory.json");
    std::fs::write(&json_path, serde_json::to_string(&directory).unwrap()).unwrap();
    assert_eq!(Directory::read(&json_path).unwrap(), directory);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "customer_id,user_id\nx,y\n").unwrap();
    let e = Directory::read(&bad).unwrap_err();
    assert!(e.contains("no customer_domain column"), "{e}");
    // `simulate --directory` refuses a bad file before it starts.
    let ran = run_bin(bulkpatch(&[
        "simulate",
        "--directory",
        bad.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("no customer_domain column"),
        "{}",
        ran.stderr
    );
}
