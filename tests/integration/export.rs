//! `bulkpatch export` against the simulator's directory (and a hostile server): every user of
//! the chosen customers across pages, exactly as the directory holds them; customers chosen by
//! GUID and by domain; a customer that fails recorded while the others are exported; the
//! continuation token sent; a stopped export resumed; hostile names written safely; the file
//! read back by `run`.

use std::collections::BTreeSet;
use std::path::Path;

use bulkpatch::simulator::{DirCustomer, DirUser, Directory, SimConfig, Simulator};
use serde_json::json;

use crate::hostile_server::{HostileServer, Reply};
use crate::support::*;

const HEADER: &str = "customer_id,customer_domain,user_id,user_principal_name,display_name,first_name,last_name,usage_location";

/// `bulkpatch export --base-url URL --out OUT` with `token`, plus `extra`.
fn export_at(url: &str, token: &str, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut args = vec!["export", "--base-url", url, "--out"];
    let out = out.display().to_string();
    args.push(&out);
    args.extend(["--rate", "unlimited", "--max-attempts", "2"]);
    args.extend(extra);
    let mut cmd = bulkpatch(&args);
    cmd.env("BULKPATCH_TOKEN", token);
    cmd
}

fn export_from(sim: &Simulator, out: &Path, extra: &[&str]) -> std::process::Command {
    export_at(&sim.base_url(), sim.token(), out, extra)
}

/// The export file's data rows, as a set, after checking its header.
fn rows(path: &Path, delimiter: u8) -> BTreeSet<[String; 8]> {
    let text = std::fs::read_to_string(path).unwrap();
    let expected_header = HEADER.replace(',', &char::from(delimiter).to_string());
    assert_eq!(text.lines().next(), Some(expected_header.as_str()));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let rows: Vec<[String; 8]> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), 8, "{r:?}");
            std::array::from_fn(|i| r[i].to_string())
        })
        .collect();
    let set: BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(set.len(), rows.len(), "a user written twice");
    set
}

/// The directory's rows of the customers `keep` (1-based positions).
fn expected(directory: &Directory, keep: &[usize]) -> BTreeSet<[String; 8]> {
    let only = Directory {
        customers: keep
            .iter()
            .map(|k| directory.customers[k - 1].clone())
            .collect(),
    };
    only.rows().into_iter().collect()
}

fn directory(customers: u32, users: u32) -> Directory {
    Directory::generated(customers, users, guid)
}

async fn sim_with(directory: &Directory, page_size: usize, config: SimConfig) -> Simulator {
    simulator(SimConfig {
        directory: Some(directory.clone()),
        page_size,
        ..config
    })
    .await
}

#[tokio::test]
async fn every_user_of_every_customer_is_exported_across_pages_with_the_continuation_token() {
    let dir = tempdir();
    let directory = directory(4, 7);
    let sim = sim_with(&directory, 3, SimConfig::default()).await;
    let out = dir.path().join("users.csv");
    let ran = run_bin(export_from(&sim, &out, &["--all-customers", "-c", "2"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(rows(&out, b','), expected(&directory, &[1, 2, 3, 4]));
    assert!(
        ran.stderr.contains("Exported 28 users of 4 customers"),
        "{}",
        ran.stderr
    );

    // 2 pages of customers, 3 pages of users for each customer; every page after the first
    // asked with the token its previous page named (the simulator refuses a next page without).
    let requests = sim.requests();
    assert!(requests
        .iter()
        .all(|r| r.method == "GET" && r.status == Some(200)));
    let customers: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v1/customers")
        .collect();
    assert_eq!(customers.len(), 2);
    assert_eq!(customers[0].header("ms-continuationtoken"), None);
    assert!(customers[1].header("ms-continuationtoken").is_some());
    for c in &directory.customers {
        let path = format!("/v1/customers/{}/users", c.id);
        let pages: Vec<_> = requests.iter().filter(|r| r.path == path).collect();
        assert_eq!(pages.len(), 3, "{path}");
        let tokens: Vec<_> = pages
            .iter()
            .map(|r| r.header("ms-continuationtoken"))
            .collect();
        assert_eq!(
            tokens.iter().filter(|t| t.is_some()).count(),
            2,
            "{tokens:?}"
        );
        assert!(pages
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {}", sim.token()))));
    }
    let state = std::fs::read_to_string(dir.path().join("users.csv.export-state")).unwrap();
    assert_eq!(state.lines().filter(|l| l.starts_with("done ")).count(), 4);
    // No spool file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn customers_are_chosen_by_guid_and_by_domain_and_unmatched_or_ambiguous_ones_are_named() {
    let dir = tempdir();
    let mut directory = directory(4, 2);
    directory.customers[3].domain = directory.customers[2].domain.clone();
    let shared = directory.customers[2].domain.clone();
    let sim = sim_with(&directory, 100, SimConfig::default()).await;
    let out = dir.path().join("some.csv");
    let first = directory.customers[0].id.to_string();
    let list = dir.path().join("customers.txt");
    std::fs::write(
        &list,
        "# chosen\nTENANT2.onmicrosoft.com\n\nnobody.example\n",
    )
    .unwrap();
    let args = [
        "--customer",
        &first,
        "--customers-file",
        list.to_str().unwrap(),
        "--customer",
        &shared,
    ];
    let ran = run_bin(export_from(&sim, &out, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(rows(&out, b','), expected(&directory, &[1, 2]));
    assert!(
        ran.stderr
            .contains("nobody.example: no customer of the partner has this domain"),
        "{}",
        ran.stderr
    );
    let (third, fourth) = (directory.customers[2].id, directory.customers[3].id);
    assert!(
        ran.stderr.contains(&format!(
            "ambiguous: customers {third} and {fourth} have this domain"
        )),
        "{}",
        ran.stderr
    );
    // Neither ambiguous customer was listed.
    assert!(sim
        .requests()
        .iter()
        .all(|r| !r.path.contains(&third.to_string()) && !r.path.contains(&fourth.to_string())));

    let bad = run_bin(export_from(
        &sim,
        &dir.path().join("x.csv"),
        &["--customer", "not a domain"],
    ))
    .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("\"not a domain\" is neither a customer GUID nor a domain"),
        "{}",
        bad.stderr
    );
    let none = run_bin(export_from(&sim, &dir.path().join("x.csv"), &[])).await;
    assert_eq!(none.code, 2, "{}", none.stderr);
    // The export file is never the customers file, nor a secrets file.
    let same = run_bin(export_from(
        &sim,
        &list,
        &["--customers-file", list.to_str().unwrap(), "--force"],
    ))
    .await;
    assert_eq!(same.code, 2);
    assert!(
        same.stderr.contains("name the same file"),
        "{}",
        same.stderr
    );
    let secrets = dir.path().join("secrets.csv");
    std::fs::write(
        &secrets,
        "line,customer_id,user_id,user_principal_name,password\n",
    )
    .unwrap();
    let over = run_bin(export_from(&sim, &secrets, &["--all-customers", "--force"])).await;
    assert_eq!(over.code, 2);
    assert!(over.stderr.contains("secrets file"), "{}", over.stderr);
    assert_eq!(std::fs::read_to_string(&list).unwrap().lines().count(), 4);
}

#[tokio::test]
async fn a_customer_that_fails_is_recorded_and_the_others_are_exported_then_a_resume_lists_only_it()
{
    let dir = tempdir();
    let directory = directory(3, 5);
    let failing = directory.customers[1].id;
    let config = SimConfig {
        forbidden_customers: [failing].into(),
        ..SimConfig::default()
    };
    let sim = sim_with(&directory, 2, config).await;
    let out = dir.path().join("users.csv");
    let ran = run_bin(export_from(&sim, &out, &["--all-customers"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(rows(&out, b','), expected(&directory, &[1, 3]));
    assert!(
        ran.stderr.contains(&format!(
            "{failing} (tenant2.onmicrosoft.com): HTTP 403 (code 20002)"
        )),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("--resume"), "{}", ran.stderr);

    // A stop in the middle of copying the failed customer's users would leave some of them:
    // the resume drops them, since the customer is not marked done.
    let mut text = std::fs::read_to_string(&out).unwrap();
    text.push_str(&format!(
        "{failing},tenant2.onmicrosoft.com,{},half@x.y,Half,,,DE\n{failing},\"torn",
        guid(2, 9)
    ));
    std::fs::write(&out, text).unwrap();

    // Again without --resume or --force: the file is not overwritten.
    let refused = run_bin(export_from(&sim, &out, &["--all-customers"])).await;
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--resume"), "{}", refused.stderr);

    // The relationship is back: only the customer not done is listed again.
    let sim2 = sim_with(&directory, 2, SimConfig::default()).await;
    let resumed = run_bin(export_from(&sim2, &out, &["--all-customers", "--resume"])).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(rows(&out, b','), expected(&directory, &[1, 2, 3]));
    assert!(
        resumed.stderr.contains("2 customers were already done"),
        "{}",
        resumed.stderr
    );
    let listed: BTreeSet<String> = sim2.requests().into_iter().map(|r| r.path).collect();
    let expected_paths: BTreeSet<String> = [
        "/v1/customers".to_string(),
        format!("/v1/customers/{failing}/users"),
    ]
    .into();
    assert_eq!(listed, expected_paths);
}

#[tokio::test]
async fn a_listing_that_repeats_a_page_or_leaves_its_collection_fails_that_customer_only() {
    let (good, looping, leaving) = (customer(1), customer(2), customer(3));
    let server = HostileServer::start(move |r| {
        let item = |c: uuid::Uuid, d: &str| json!({"id": c.to_string(), "companyProfile": {"domain": d, "companyName": d}});
        let user = json!({"id": user(1).to_string(), "userPrincipalName": "a@b.c", "displayName": "A"});
        let next = |uri: String| json!({"uri": uri, "headers": [{"key": "MS-ContinuationToken", "value": "same"}]});
        if r.path.starts_with("/v1/customers?") {
            return Reply::json(200, json!({"items": [item(good, "good.example"), item(looping, "loop.example"), item(leaving, "leave.example")]}));
        }
        if r.path.starts_with(&format!("/v1/customers/{looping}/users")) {
            let uri = format!("/customers/{looping}/users?size=100&seek=1");
            return Reply::json(200, json!({"items": [user], "links": {"next": next(uri)}}));
        }
        if r.path.starts_with(&format!("/v1/customers/{leaving}/users")) {
            let uri = format!("/customers/{good}/users/{}", crate::support::user(1));
            return Reply::json(200, json!({"items": [user], "links": {"next": next(uri)}}));
        }
        Reply::json(200, json!({"items": [user]}))
    })
    .await;
    let dir = tempdir();
    let out = dir.path().join("users.csv");
    let ran = run_bin(export_at(&server.url(), "tok", &out, &["--all-customers"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("the server named the same page again"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("leaves the collection being listed"),
        "{}",
        ran.stderr
    );
    let written = rows(&out, b',');
    assert_eq!(written.len(), 1);
    assert!(written.iter().all(|r| r[0] == good.to_string()));
    let received = server.received();
    assert_eq!(
        received
            .iter()
            .filter(|r| r.path.contains(&looping.to_string()))
            .count(),
        2
    );
    assert!(received
        .iter()
        .all(|r| r.method == "GET" && !r.path.contains("/users/")));
}

fn hostile_directory() -> Directory {
    let user = |n: u32, display: &str, first: &str, last: &str| DirUser {
        id: guid(2, n),
        user_principal_name: format!("user{n}@hostile.example"),
        display_name: display.into(),
        first_name: first.into(),
        last_name: last.into(),
        usage_location: "DE".into(),
    };
    Directory {
        customers: vec![
            DirCustomer {
                id: customer(1),
                domain: "hostile.example".into(),
                company_name: "=HYPERLINK(\"http://evil\")".into(),
                users: vec![
                    user(1, "=cmd|' /C calc'!A0", "+1", "-2"),
                    user(
                        2,
                        "@SUM(A1)",
                        "Semi;colon, comma \"quoted\"",
                        "Line\r\nbreak",
                    ),
                    user(3, "Tab\there", "Ünïcødé", "O'Brien"),
                ],
            },
            DirCustomer {
                id: customer(2),
                domain: "evil\u{1b}[2J\u{7}.example".into(),
                company_name: String::new(),
                users: vec![user(4, "x", "y", "z")],
            },
        ],
    }
}

#[tokio::test]
async fn hostile_names_are_written_safely_and_the_file_is_read_back_by_run() {
    let dir = tempdir();
    let directory = hostile_directory();
    let config = SimConfig {
        forbidden_customers: [customer(2)].into(),
        ..SimConfig::default()
    };
    let sim = sim_with(&directory, 2, config).await;
    for delimiter in [b',', b';'] {
        let out = dir.path().join(format!("hostile-{}.csv", delimiter));
        let d = char::from(delimiter).to_string();
        let ran = run_bin(export_from(
            &sim,
            &out,
            &["--all-customers", "--delimiter", &d],
        ))
        .await;
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        // The hostile domain of the failed customer is shown, its control characters escaped.
        assert!(
            !ran.stderr.contains('\u{1b}') && !ran.stderr.contains('\u{7}'),
            "{:?}",
            ran.stderr
        );
        assert!(ran.stderr.contains("evil"), "{}", ran.stderr);
        let got = rows(&out, delimiter);
        let safe = |s: &str| match s.chars().next() {
            Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
            _ => s.to_string(),
        };
        let want: BTreeSet<[String; 8]> = expected(&directory, &[1])
            .into_iter()
            .map(|r| r.map(|c| safe(&c)))
            .collect();
        assert_eq!(got, want);
        assert!(got
            .iter()
            .any(|r| r[4] == "'=cmd|' /C calc'!A0" && r[5] == "'+1" && r[6] == "'-2"));

        // `run` reads it as it is (its context column customer_domain needs
        // --ignore-unknown-columns for now): every row is read, none is lost to the quoting.
        let results = dir.path().join(format!("plan-{}.csv", delimiter));
        let mut cmd = run_against(
            &sim,
            &out,
            &results,
            &["--dry-run", "--ignore-unknown-columns"],
        );
        cmd.env_remove("BULKPATCH_TOKEN");
        let plan = run_bin(cmd).await;
        assert_ne!(plan.code, 2, "{}", plan.stderr);
        let plan = Results::read(&results);
        assert_eq!(plan.rows.len(), 3);
        let users: BTreeSet<String> = plan.rows.iter().map(|r| r["user_id"].clone()).collect();
        assert_eq!(users, (1..=3).map(|n| guid(2, n).to_string()).collect());
    }
}

#[tokio::test]
async fn the_export_of_the_default_simulator_is_the_demo_directory_and_run_plans_it_cleanly() {
    let dir = tempdir();
    let sim = simulator(SimConfig::default()).await;
    let out = dir.path().join("demo-users.csv");
    let ran = run_bin(export_from(
        &sim,
        &out,
        &["--customer", "contoso.onmicrosoft.com"],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let demo = Directory::demo();
    assert_eq!(rows(&out, b','), expected(&demo, &[1]));
    let first = demo.customers[0].users[0].clone();
    let results = dir.path().join("plan.csv");
    // The export is an input `run` takes as it is: the domain and the UPN are context.
    let mut cmd = run_against(&sim, &out, &results, &["--dry-run"]);
    cmd.env_remove("BULKPATCH_TOKEN");
    let plan = run_bin(cmd).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan = Results::read(&results);
    assert_eq!(plan.count("planned"), demo.customers[0].users.len());
    let row = plan
        .rows
        .iter()
        .find(|r| r["user_id"] == first.id.to_string())
        .unwrap();
    assert!(!row["body"].contains(&first.user_principal_name), "{row:?}");
    assert_eq!(row["user_principal_name"], first.user_principal_name);
    assert_eq!(row["customer_domain"], "contoso.onmicrosoft.com");
}

#[tokio::test]
async fn an_interrupted_export_exits_130_and_a_resume_lists_only_the_customers_not_done() {
    let dir = tempdir();
    let directory = directory(4, 6);
    let config = SimConfig {
        latency: std::time::Duration::from_millis(100),
        ..SimConfig::default()
    };
    let sim = sim_with(&directory, 2, config).await;
    let out = dir.path().join("users.csv");
    let child = export_from(&sim, &out, &["--all-customers", "-c", "1"])
        .spawn()
        .unwrap();
    // The customers, the first customer's three pages and two of the next one's.
    until_received(&sim, 6).await;
    send_signal(&child, "INT");
    let ran = wait_child(child).await;
    assert_eq!(ran.code, 130, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("Stopped: interrupted"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("--resume"), "{}", ran.stderr);
    let state = std::fs::read_to_string(dir.path().join("users.csv.export-state")).unwrap();
    let done: Vec<String> = state
        .lines()
        .filter_map(|l| l.strip_prefix("done "))
        .map(String::from)
        .collect();
    assert!(!done.is_empty() && done.len() < 4, "{state}");
    let positions: Vec<usize> = directory
        .customers
        .iter()
        .enumerate()
        .filter(|(_, c)| done.contains(&c.id.to_string()))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(rows(&out, b','), expected(&directory, &positions));

    let sim2 = sim_with(&directory, 2, SimConfig::default()).await;
    let resumed = run_bin(export_from(&sim2, &out, &["--all-customers", "--resume"])).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(rows(&out, b','), expected(&directory, &[1, 2, 3, 4]));
    for id in &done {
        assert!(
            sim2.requests()
                .iter()
                .all(|r| !r.path.contains(id.as_str())),
            "{id} listed again"
        );
    }
}

#[tokio::test]
async fn the_directory_answers_get_patch_and_the_listing_alike() {
    let dir = tempdir();
    let directory = directory(1, 3);
    let sim = sim_with(&directory, 2, SimConfig::default()).await;
    let (c, u) = (
        directory.customers[0].id,
        directory.customers[0].users[1].clone(),
    );
    let input = Csv::new(&["customer_id", "user_id", "usage_location"])
        .row(&[&c.to_string(), &u.id.to_string(), "NO"])
        .row(&[&c.to_string(), &guid(2, 999).to_string(), "NO"])
        .write(dir.path(), "in.csv");
    let results = dir.path().join("in.results.csv");
    let ran = run_bin(run_against(&sim, &input, &results, &["--skip-unchanged"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let results = Results::read(&results);
    assert_eq!(results.line(2)["outcome"], "updated");
    // A user outside the directory given on purpose does not exist.
    assert_eq!(
        (
            results.line(3)["http_status"].as_str(),
            results.line(3)["error_code"].as_str()
        ),
        ("404", "60002")
    );
    let out = dir.path().join("users.csv");
    let exported = run_bin(export_from(
        &sim,
        &out,
        &["--customer", "tenant1.onmicrosoft.com"],
    ))
    .await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let mut want = expected(&directory, &[1]);
    let old = want
        .iter()
        .find(|r| r[2] == u.id.to_string())
        .unwrap()
        .clone();
    want.remove(&old);
    let mut new = old;
    new[7] = "NO".into();
    want.insert(new);
    assert_eq!(rows(&out, b','), want);
}
