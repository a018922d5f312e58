//! `--target graph` against the simulator's Graph routes: the bodies of each field kind
//! (`<clear>` as null, `businessPhones` as an array, `accountEnabled` as a boolean, the password
//! profile), paths and ids, Graph's error shape recorded as a text code, an audit reading with
//! `$select`, a resume, throttling with a fractional `Retry-After`, and users addressed by a
//! user principal name holding `#`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use bulkpatch::simulator::{Fault, SimConfig, SimGraph, Simulator, Throttle};
use serde_json::{json, Value};

use crate::support::*;

const PASSWORD: &str = "Graph-Pass-4821!";

/// `graph_command` with `--batch 1`: these tests check single requests (`graph_batch` checks
/// `$batch`).
fn graph_single(
    sim: &Simulator,
    command: &str,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Command {
    let mut all = vec!["--batch", "1"];
    all.extend_from_slice(extra);
    graph_command(sim, command, input, out, &all)
}

fn body_of(r: &bulkpatch::simulator::RecordedRequest) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_run_patches_each_field_kind_and_the_users_change() {
    let sim = graph_simulator(SimConfig {
        unknown_users: [user(3)].into(),
        ..SimConfig::default()
    })
    .await;
    sim.seed_graph_user(
        customer(1),
        user(1),
        json!({"department": "Sales", "jobTitle": "Clerk"}),
    );
    let dir = tempdir();
    let c = customer(1).to_string();
    // Entra export names (`Object Id`, `Job title`, `Office phone`) beside snake_case ones.
    let input = Csv::new(&[
        "customer_id",
        "Object Id",
        "Job title",
        "department",
        "Office phone",
        "account_enabled",
        "usage_location",
        "password",
        "force_change_password",
    ])
    .row(&[
        &c,
        &user(1).to_string(),
        "Engineer",
        "<clear>",
        "+49 30 1234",
        "no",
        "de",
        PASSWORD,
        "false",
    ])
    .row(&[&c, &user(2).to_string(), "", "", "<clear>", "", "", "", ""])
    .row(&[&c, &user(3).to_string(), "Gone", "", "", "", "", "", ""])
    .row(&[&c, &user(4).to_string(), "", "", "", "<clear>", "", "", ""])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_single(
        &sim,
        "run",
        &input,
        &out,
        &["-vv", "--include-admins"],
    ))
    .await;
    assert_eq!(ran.code, 1, "one 404, one invalid row: {}", ran.stderr);

    let requests = sim.requests();
    let first = requests_for(&requests, user(1));
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].method.as_str(), first[0].path.clone()),
        ("PATCH", format!("/graph/v1.0/users/{}", user(1)))
    );
    assert_eq!(
        body_of(&first[0]),
        json!({"jobTitle": "Engineer", "department": null, "businessPhones": ["+49 30 1234"],
            "accountEnabled": false, "usageLocation": "DE",
            "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": false}})
    );
    let header = |name: &str| {
        first[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let results = Results::read(&out);
    let one = results.line(2);
    assert_eq!(
        header("client-request-id").as_deref(),
        Some(one["correlation_id"].as_str())
    );
    assert!(header("request-id").is_some());
    assert_eq!(
        (one["outcome"].as_str(), one["http_status"].as_str()),
        ("updated", "204")
    );
    assert_eq!(
        body_of(&requests_for(&requests, user(2))[0]),
        json!({"businessPhones": []})
    );

    // The users as the tenant now has them.
    let stored = sim.graph_user(customer(1), user(1)).unwrap();
    assert_eq!(stored["jobTitle"], "Engineer");
    assert_eq!(stored["department"], Value::Null);
    assert_eq!(stored["businessPhones"], json!(["+49 30 1234"]));
    assert_eq!(stored["accountEnabled"], false);
    assert_eq!(stored["usageLocation"], "DE");
    assert_eq!(stored["passwordProfile"]["passwordSet"], true);

    // Graph's error shape, recorded as a text code; `<clear>` refused where Graph cannot clear.
    let gone = results.line(4);
    assert_eq!(
        (gone["outcome"].as_str(), gone["http_status"].as_str()),
        ("failed", "404")
    );
    assert_eq!(gone["error_code"], "Request_ResourceNotFound");
    let bad = results.line(5);
    assert_eq!(bad["outcome"], "invalid");
    assert!(
        bad["message"].contains("account_enabled cannot be cleared"),
        "{bad:?}"
    );
    assert!(requests_for(&requests, user(4)).is_empty());

    let written = std::fs::read_to_string(&out).unwrap();
    for text in [&written, &ran.stderr, &ran.stdout] {
        assert!(!text.contains(PASSWORD), "the password leaked");
    }
    // A report of the file explains Graph's codes (its sidecar names the target).
    let md = dir.path().join("r.md");
    let ran = run_bin(bulkpatch(&[
        "report",
        out.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let report = std::fs::read_to_string(&md).unwrap();
    assert!(
        report.contains("no user with this id or user principal name"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_password_never_reaches_the_results() {
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(1), vec![Fault::Echo(400)])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::new(&["customer_id", "user_id", "password"])
        .row(&[&customer(1).to_string(), &user(1).to_string(), PASSWORD])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_single(
        &sim,
        "run",
        &input,
        &out,
        &["-vv", "--include-admins"],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.line(2)["error_code"], "Request_BadRequest");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("Invalid request"), "{written}");
    for text in [&written, &ran.stderr, &ran.stdout] {
        assert!(!text.contains(PASSWORD), "the password leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_on_graph_reads_the_selected_fields() {
    let sim = graph_simulator(SimConfig::default()).await;
    let seeded =
        json!({"department": "Sales", "accountEnabled": false, "businessPhones": ["+1 555"]});
    sim.seed_graph_user(customer(1), user(1), seeded.clone());
    sim.seed_graph_user(customer(1), user(2), seeded);
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "department",
        "account_enabled",
        "business_phones",
    ])
    .row(&[&c, &user(1).to_string(), "Sales", "false", "+1 555"])
    .row(&[&c, &user(2).to_string(), "", "true", ""])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("audit.csv");
    let ran = run_bin(graph_single(&sim, "audit", &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.method == "GET"));
    let mut got: Vec<(String, String, String, String, String)> = Results::read(&out)
        .rows
        .iter()
        .map(|r| {
            let cells = ["line", "field", "outcome", "current", "desired"].map(|k| r[k].clone());
            let [a, b, c, d, e] = cells;
            (a, b, c, d, e)
        })
        .collect();
    got.sort();
    // `department` and `accountEnabled` are not in Graph's default set: only `$select` reads them.
    let want = [
        ("2", "accountEnabled", "unchanged", "false", "false"),
        // Escaped against spreadsheet formulas in the file.
        ("2", "businessPhones", "unchanged", "'+1 555", "'+1 555"),
        ("2", "department", "unchanged", "Sales", "Sales"),
        ("3", "accountEnabled", "would_change", "false", "true"),
    ];
    let got: Vec<(&str, &str, &str, &str, &str)> = got
        .iter()
        .map(|g| {
            (
                g.0.as_str(),
                g.1.as_str(),
                g.2.as_str(),
                g.3.as_str(),
                g.4.as_str(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        sim.graph_user(customer(1), user(1)).unwrap()["accountEnabled"],
        false
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_run_resumes_sending_only_the_rows_not_done() {
    let sim = graph_simulator(SimConfig {
        script: HashMap::from([(user(2), vec![Fault::Status(503)])]),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let mut csv = Csv::new(&["customer_id", "user_id", "usage_location", "job_title"]);
    for n in 1..=3 {
        csv = csv.row(&[&c, &user(n).to_string(), "DE", &format!("Title {n}")]);
    }
    let input = csv.write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_single(
        &sim,
        "run",
        &input,
        &out,
        &["--max-attempts", "1"],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 2);
    let before = sim.requests().len();
    // The results of a Graph run are not resumed through Partner Center.
    let args = ["--resume", "--ignore-unknown-columns"];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("--target graph"), "{}", ran.stderr);
    assert_eq!(sim.requests().len(), before);
    let ran = run_bin(graph_single(&sim, "run", &input, &out, &["--resume"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let again = &sim.requests()[before..];
    assert_eq!(again.len(), 1, "only the failed row is sent again");
    assert_eq!(again[0].path, format!("/graph/v1.0/users/{}", user(2)));
    assert_eq!(
        sim.graph_user(customer(1), user(2)).unwrap()["jobTitle"],
        "Title 2"
    );
    let results = Results::read(&out);
    let updated: Vec<&str> = results
        .rows
        .iter()
        .filter(|r| r["outcome"] == "updated")
        .map(|r| r["line"].as_str())
        .collect();
    assert_eq!(updated.len(), 3, "{updated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_graph_writes_wait_and_all_land() {
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            throttle: Some(Throttle {
                per_second: 20,
                burst: 1,
            }),
            throttle_limit_percentage: Some(80.0),
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let mut csv = Csv::new(&["customer_id", "user_id", "city"]);
    for n in 1..=6 {
        csv = csv.row(&[&c, &user(n).to_string(), "Berlin"]);
    }
    let input = csv.write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let args = [
        "--rate",
        "unlimited",
        "--concurrency",
        "4",
        "--max-attempts",
        "20",
    ];
    let ran = run_bin(graph_single(&sim, "run", &input, &out, &args)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 6);
    for n in 1..=6 {
        assert_eq!(
            sim.graph_user(customer(1), user(n)).unwrap()["city"],
            "Berlin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_like_graph() {
    let sim = graph_simulator(SimConfig {
        graph: SimGraph {
            throttle: Some(Throttle {
                per_second: 1,
                burst: 1,
            }),
            throttle_limit_percentage: Some(95.5),
            ..SimGraph::default()
        },
        ..SimConfig::default()
    })
    .await;
    let guest = "anna_fabrikam.com#EXT#@contoso.onmicrosoft.com";
    sim.seed_graph_user(customer(1), user(7), json!({"userPrincipalName": guest}));
    let http = reqwest::Client::new();
    let url = format!(
        "{}/users/anna_fabrikam.com%23EXT%23@contoso.onmicrosoft.com",
        sim.graph_url()
    );
    let send = |body: Value| {
        http.patch(&url)
            .bearer_auth(sim.token())
            .header("client-request-id", "c-1")
            .json(&body)
            .send()
    };
    let ok = send(json!({"jobTitle": "Guest"})).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["x-ms-throttle-limit-percentage"], "95.5");
    assert_eq!(
        sim.graph_user(customer(1), user(7)).unwrap()["jobTitle"],
        "Guest"
    );

    let throttled = send(json!({"jobTitle": "Again"})).await.unwrap();
    assert_eq!(throttled.status(), 429);
    let retry_after = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_string();
    let (whole, fraction) = retry_after
        .split_once('.')
        .expect("a fractional Retry-After");
    assert!(
        whole.parse::<u64>().is_ok() && fraction.len() == 3,
        "{retry_after}"
    );
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["client-request-id"], "c-1");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    assert!(body["error"]["innerError"]["date"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_what_graph_refuses() {
    let sim = graph_simulator(SimConfig::default()).await;
    let http = reqwest::Client::new();
    let user_url = format!("{}/users/{}", sim.graph_url(), user(1));
    let patch = |body: Value| {
        http.patch(&user_url)
            .bearer_auth(sim.token())
            .json(&body)
            .send()
    };
    for (body, status, code) in [
        (json!({"favouriteColour": "red"}), 400, "Request_BadRequest"),
        (json!({"accountEnabled": "yes"}), 400, "Request_BadRequest"),
        (json!({"usageLocation": "XX"}), 400, "Request_BadRequest"),
        (json!({"displayName": null}), 400, "Request_BadRequest"),
        (
            json!({"passwordProfile": {"password": ""}}),
            400,
            "Request_BadRequest",
        ),
    ] {
        let answer = patch(body.clone()).await.unwrap();
        assert_eq!(answer.status(), status, "{body}");
        let got: Value = answer.json().await.unwrap();
        assert_eq!(got["error"]["code"], code, "{body}");
    }
    let unknown = http
        .get(format!("{}/users/nobody@contoso.com", sim.graph_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let no_token = http.get(&user_url).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let selected: Value = http
        .get(format!("{user_url}?$select=id,city"))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<&String> = selected.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["@odata.context", "city", "id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_columns_are_refused_or_skipped_by_partner_center() {
    let sim = graph_simulator(SimConfig::default()).await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&["customer_id", "user_id", "usage_location", "job_title"])
        .row(&[&c, &user(1).to_string(), "DE", "Engineer"])
        .row(&[&c, &user(2).to_string(), "<clear>", ""])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    // Through Partner Center, Graph's columns are columns it cannot change: named, nothing sent.
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("\"job_title\" (column 4): not changeable through Partner Center"),
        "{}",
        ran.stderr
    );
    assert!(sim.requests().is_empty());
    // An Entra export's extra columns are skipped with --ignore-unknown-columns; <clear> is
    // still refused through Partner Center.
    let args = ["--ignore-unknown-columns", "--force"];
    let ran = run_bin(run_against(&sim, &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "the <clear> row stays invalid: {}", ran.stderr);
    let results = Results::read(&out);
    let cleared = results.line(3);
    assert_eq!(cleared["outcome"], "invalid");
    assert!(
        cleared["message"]
            .contains("usage_location cannot be cleared (<clear>) through partner-center"),
        "{cleared:?}"
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["usageLocation"], "DE");
    assert!(body.get("jobTitle").is_none(), "{body}");
    // Through Graph, the same column is a field: --fields chooses it by Graph's name.
    let sent = sim.requests().len();
    let args = ["--fields", "jobTitle", "--force"];
    let ran = run_bin(graph_single(&sim, "run", &input, &out, &args)).await;
    assert_eq!(ran.code, 1, "the row without a job title: {}", ran.stderr);
    let requests = sim.requests();
    assert_eq!(requests.len(), sent + 1, "{}", ran.stderr);
    let body: Value = serde_json::from_slice(&requests[sent].body).unwrap();
    assert_eq!(body, serde_json::json!({"jobTitle": "Engineer"}));
    let ran = run_bin(run_against(
        &sim,
        &input,
        &out,
        &["--target", "nope", "--force"],
    ))
    .await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr
            .contains("\"nope\" is not a target (one of: partner-center, graph)"),
        "{}",
        ran.stderr
    );
}

/// A proxy that records the head of each CONNECT and refuses it: where a run would go.
async fn refusing_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = conn.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        }
    });
    (url, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_base_url_graph_runs_go_to_graph() {
    let (proxy, heads) = refusing_proxy().await;
    let dir = tempdir();
    let input = Csv::new(&["customer_id", "user_id", "city"])
        .row(&[&customer(1).to_string(), &user(1).to_string(), "Berlin"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut cmd = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--target",
        "graph",
        "--out",
        out.to_str().unwrap(),
        "--max-attempts",
        "1",
    ]);
    cmd.env("BULKPATCH_TOKEN", "t").env("HTTPS_PROXY", &proxy);
    let ran = run_bin(cmd).await;
    assert_ne!(ran.code, 0, "{}", ran.stderr);
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty(), "{}", ran.stderr);
    for head in heads {
        assert!(
            head.starts_with("CONNECT graph.microsoft.com:443 "),
            "{head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_dry_run_s_plan_names_graph_s_fields_and_clears() {
    let sim = graph_simulator(SimConfig::default()).await;
    let dir = tempdir();
    let c = customer(1).to_string();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "job_title",
        "department",
        "password",
    ])
    .row(&[&c, &user(1).to_string(), "Engineer", "<clear>", PASSWORD])
    .row(&[&c, &user(2).to_string(), "Engineer", "", ""])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(graph_single(&sim, "run", &input, &out, &["--dry-run"])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(sim.requests().is_empty());
    let md = dir.path().join("plan.md");
    let ran = run_bin(bulkpatch(&[
        "report",
        out.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let md = std::fs::read_to_string(md).unwrap();
    for want in [
        "### jobTitle: 2 rows",
        "| jobTitle -> Engineer | 2 |",
        "### department: 1 row\n",
        "| department -> &lt;clear&gt; | 1 |",
        "### password: 1 row\n",
    ] {
        assert!(md.contains(want), "{want} in:\n{md}");
    }
    assert!(!md.contains(PASSWORD));
}
