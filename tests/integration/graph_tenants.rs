//! `--target graph` with tokens per customer tenant (GDAP): the partner's refresh token redeemed
//! at each customer tenant's token endpoint once, refreshed when it expires, a tenant that
//! refuses failing only its own rows, each tenant's requests carrying its own token; Graph
//! listings (export of a tenant across pages, directory roles protecting administrators).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bulkpatch::simulator::{RecordedRequest, SimConfig, SimOAuth, Simulator};
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default offline_access";

/// A simulator with a token endpoint (rotating refresh tokens) and `users` Graph users in each
/// of `tenants` (users 100*t+1 ..= 100*t+users of customer t).
async fn gdap_simulator(oauth: SimOAuth, tenants: &[u32], users: u32) -> Simulator {
    let sim = simulator(SimConfig {
        oauth: Some(oauth),
        ..SimConfig::default()
    })
    .await;
    for &t in tenants {
        for u in 1..=users {
            sim.seed_graph_user(customer(t), user(100 * t + u), json!({}));
        }
    }
    sim
}

/// Rows setting the job title of each seeded user of `tenants`, tenants interleaved.
fn rows(tenants: &[u32], users: u32) -> Csv {
    let mut csv = Csv::new(&["customer_id", "user_id", "job_title"]);
    for u in 1..=users {
        for &t in tenants {
            let id = user(100 * t + u).to_string();
            csv = csv.row(&[&customer(t).to_string(), &id, "Engineer"]);
        }
    }
    csv
}

/// `bulkpatch ARGS --target graph --base-url {sim}/graph/v1.0 --config CONFIG` with the
/// refresh-token credentials of `auth_config` (no fixed token).
pub(crate) fn graph_with_config(sim: &Simulator, config: &Path, args: &[&str]) -> Command {
    let url = sim.graph_url();
    let mut all = args.to_vec();
    if args.first() == Some(&"run") && !args.contains(&"--batch") {
        // These tests count single requests per user; `$batch` has its own (graph_batch.rs).
        all.extend_from_slice(&["--batch", "1"]);
    }
    all.extend_from_slice(&[
        "--target",
        "graph",
        "--base-url",
        &url,
        "--config",
        config.to_str().unwrap(),
    ]);
    bulkpatch(&all)
}

/// `bulkpatch run INPUT --out OUT` through Graph with `config`'s credentials, plus `extra`.
pub(crate) fn graph_run_with_config(
    sim: &Simulator,
    config: &Path,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> Command {
    let mut args = vec![
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    graph_with_config(sim, config, &args)
}

/// The config and refresh-token file for `sim`'s token endpoint.
pub(crate) fn credentials(dir: &Path, sim: &Simulator) -> (PathBuf, PathBuf) {
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    auth_config(dir, sim, &refresh, &SimOAuth::default().client_id)
}

/// The token requests made at `tenant`'s endpoint.
pub(crate) fn token_requests(
    sim: &Simulator,
    tenant: Uuid,
) -> Vec<bulkpatch::simulator::TokenRequest> {
    let t = tenant.to_string();
    sim.token_requests()
        .into_iter()
        .filter(|r| r.tenant == t)
        .collect()
}

/// The tenant whose endpoint issued the bearer token of `r`.
pub(crate) fn token_tenant(sim: &Simulator, r: &RecordedRequest) -> Option<String> {
    let token = r.header("authorization")?.strip_prefix("Bearer ")?;
    sim.token_tenant(token)
}

/// Tenants 1-3 with 4 users each; tenant 3 refuses its token (no GDAP relationship).
async fn three_tenants_the_third_refusing() -> Simulator {
    let oauth = SimOAuth {
        refusing_tenants: [(customer(3), 50020)].into(),
        ..SimOAuth::default()
    };
    gdap_simulator(oauth, &[1, 2, 3], 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_gets_its_own_token_once_and_a_refusing_tenant_fails_only_its_rows() {
    let sim = three_tenants_the_third_refusing().await;
    let dir = tempdir();
    let (config, refresh_file) = credentials(dir.path(), &sim);
    let input = rows(&[1, 2, 3], 4).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let extra = ["--concurrency", "4", "--rate", "unlimited"];
    let ran = run_bin(graph_run_with_config(&sim, &config, &input, &out, &extra)).await;
    assert_eq!(ran.code, 1, "tenant 3's rows failed: {}", ran.stderr);

    for t in [1, 2, 3] {
        let fetched = token_requests(&sim, customer(t));
        assert_eq!(
            fetched.len(),
            1,
            "tenant {t}: one token request, whatever the concurrency"
        );
        assert_eq!(fetched[0].form["scope"], GRAPH_SCOPE);
        assert_eq!(fetched[0].form["grant_type"], "refresh_token");
        assert_eq!(fetched[0].status, if t == 3 { 400 } else { 200 });
    }
    let requests = sim.requests();
    for t in [1, 2] {
        for u in 1..=4 {
            let sent = requests_for(&requests, user(100 * t + u));
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].status, Some(204));
            assert_eq!(
                token_tenant(&sim, &sent[0]),
                Some(customer(t).to_string()),
                "a request for tenant {t} carries tenant {t}'s token"
            );
            let stored = sim.graph_user(customer(t), user(100 * t + u)).unwrap();
            assert_eq!(stored["jobTitle"], "Engineer");
        }
    }
    let results = Results::read(&out);
    assert_eq!(results.count("updated"), 8);
    for u in 1..=4 {
        assert!(
            requests_for(&requests, user(300 + u)).is_empty(),
            "nothing sent to tenant 3"
        );
    }
    let failed: Vec<_> = results
        .rows
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 4);
    for r in failed {
        assert_eq!(r["customer_id"], customer(3).to_string());
        assert_eq!(
            (r["attempts"].as_str(), r["error_code"].as_str()),
            ("0", "AADSTS50020")
        );
        assert!(
            r["message"].contains(&customer(3).to_string()) && r["message"].contains("GDAP"),
            "{}",
            r["message"]
        );
    }
    // The rotated refresh token (one for every tenant, the newest) was written back.
    let saved = std::fs::read_to_string(&refresh_file).unwrap();
    assert_eq!(vec![saved.trim().to_string()], sim.valid_refresh_tokens());
    assert!(
        !ran.stderr.contains(saved.trim()),
        "no secret in the output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_is_refreshed_when_it_expires_with_no_row_refused() {
    let sim = gdap_simulator(
        SimOAuth {
            access_token_lifetime: Duration::from_secs(1),
            ..SimOAuth::default()
        },
        &[1],
        25,
    )
    .await;
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let input = rows(&[1], 25).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let extra = ["--concurrency", "4", "--rate", "10/s"];
    let ran = run_bin(graph_run_with_config(&sim, &config, &input, &out, &extra)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 25);
    let fetched = token_requests(&sim, customer(1));
    assert!(
        fetched.len() >= 2,
        "a run of ~2.5 s with 1 s tokens: {}",
        fetched.len()
    );
    for pair in fetched.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(
            gap >= Duration::from_millis(600),
            "two refreshes {gap:?} apart"
        );
    }
    let requests = sim.requests();
    assert!(
        requests.iter().all(|r| r.status == Some(204)),
        "refreshed before expiry"
    );
    assert!(requests
        .iter()
        .all(|r| token_tenant(&sim, r) == Some(customer(1).to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_accepts_a_tenants_token_only_for_its_own_users() {
    let sim = gdap_simulator(SimOAuth::default(), &[1, 2], 1).await;
    let http = reqwest::Client::new();
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", &SimOAuth::default().client_id),
        ("refresh_token", &refresh),
        ("scope", GRAPH_SCOPE),
    ];
    let answer: serde_json::Value = http
        .post(sim.token_url(&customer(1).to_string()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["access_token"].as_str().unwrap();
    let get = |u: Uuid| {
        http.get(format!("{}/users/{u}", sim.graph_url()))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get(user(101)).await.unwrap().status(), 200);
    let other = get(user(201)).await.unwrap();
    assert_eq!(other.status(), 404, "tenant 2's user is not in tenant 1");
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_export_lists_a_named_tenants_users_across_pages_with_its_token() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        page_size: 2,
        ..SimConfig::default()
    })
    .await;
    for u in 1..=5 {
        let fields = json!({"userPrincipalName": format!("u{u}@one.example"), "givenName": null, "usageLocation": "DE"});
        sim.seed_graph_user(customer(1), user(100 + u), fields);
    }
    sim.seed_graph_user(customer(2), user(201), json!({}));
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let out = dir.path().join("users.csv");
    let c1 = customer(1).to_string();
    let args = ["export", "--customer", &c1, "--out", out.to_str().unwrap()];
    let ran = run_bin(graph_with_config(&sim, &config, &args)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("customer_id,customer_domain,user_id,user_principal_name,display_name,first_name,last_name,usage_location")
    );
    let mut got: Vec<&str> = lines.collect();
    got.sort();
    let want: Vec<String> = (1..=5)
        .map(|u| {
            let id = user(100 + u);
            let short = &id.simple().to_string()[..8];
            format!("{c1},,{id},u{u}@one.example,User {short},,{short},DE")
        })
        .collect();
    assert_eq!(got, want);

    // Three pages of two, each after the first the link the previous page named; every page
    // with tenant 1's own token.
    let pages: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/graph/v1.0/users")
        .collect();
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|r| r.status == Some(200)));
    assert!(pages
        .iter()
        .all(|r| token_tenant(&sim, r) == Some(c1.clone())));

    // Every customer cannot be listed without a partner API: refused before anything is sent
    // (a domain is found through the discovery document: graph_domains.rs).
    let before = sim.requests().len();
    let out = out.to_str().unwrap();
    let args = ["export", "--all-customers", "--out", out, "--force"];
    let ran = run_bin(graph_with_config(&sim, &config, &args)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("--all-customers"), "{}", ran.stderr);
    assert_eq!(sim.requests().len(), before, "nothing sent");
    assert!(sim.discovery_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_password_run_reads_roles_and_protects_an_administrator() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        roles: [(user(101), vec!["Global Administrator".to_string()])].into(),
        ..SimConfig::default()
    })
    .await;
    for u in [101, 102] {
        sim.seed_graph_user(customer(1), user(u), json!({}));
    }
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let c1 = customer(1).to_string();
    let input = Csv::new(&["customer_id", "user_id", "password"])
        .row(&[&c1, &user(101).to_string(), "Graph-Pass-4821!"])
        .row(&[&c1, &user(102).to_string(), "Graph-Pass-4822!"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let args = [
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = run_bin(graph_with_config(&sim, &config, &args)).await;
    assert_eq!(ran.code, 0, "no --include-admins needed: {}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.line(2)["outcome"], "protected");
    assert!(results.line(2)["message"].contains("Global Administrator"));
    assert_eq!(results.line(3)["outcome"], "updated");
    let requests = sim.requests();
    let roles = format!(
        "/graph/v1.0/users/{}/memberOf/microsoft.graph.directoryRole",
        user(101)
    );
    assert_eq!(requests.iter().filter(|r| r.path == roles).count(), 1);
    let patched: Vec<_> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patched.len(), 1);
    assert!(patched[0].path.ends_with(&user(102).to_string()));
    assert!(requests
        .iter()
        .all(|r| token_tenant(&sim, r) == Some(c1.clone())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_row_naming_its_user_by_upn_is_resolved_through_the_tenants_listing() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        page_size: 1,
        ..SimConfig::default()
    })
    .await;
    for u in 1..=3 {
        let upn = format!("u{u}@one.example");
        sim.seed_graph_user(
            customer(1),
            user(100 + u),
            json!({"userPrincipalName": upn}),
        );
    }
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let c1 = customer(1).to_string();
    let input = Csv::new(&["customer_id", "user_principal_name", "job_title"])
        .row(&[&c1, "U3@ONE.EXAMPLE", "Engineer"])
        .row(&[&c1, "nobody@one.example", "Engineer"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let args = [
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = run_bin(graph_with_config(&sim, &config, &args)).await;
    assert_eq!(ran.code, 1, "one name matches nobody: {}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.line(2)["outcome"], "updated");
    assert_eq!(results.line(2)["user_id"], user(103).to_string());
    assert_eq!(results.line(3)["outcome"], "not_found");
    let stored = sim.graph_user(customer(1), user(103)).unwrap();
    assert_eq!(stored["jobTitle"], "Engineer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_token_is_sent_for_every_tenant_and_the_log_says_so() {
    let sim = simulator(SimConfig::default()).await;
    let tenant = sim.graph_tenant();
    sim.seed_graph_user(tenant, user(1), json!({}));
    let dir = tempdir();
    let input = Csv::new(&["customer_id", "user_id", "job_title"])
        .row(&[&tenant.to_string(), &user(1).to_string(), "Engineer"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let url = sim.graph_url();
    let args = [
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut cmd =
        bulkpatch(&[&args[..], &["--target", "graph", "--base-url", &url, "-vv"]].concat());
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 1);
    assert!(sim.token_requests().is_empty());
    assert!(
        ran.stderr
            .contains("the same token is sent for every customer tenant"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_refreshes_only_the_token_of_the_tenant_it_was_sent_to() {
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        script: [(user(101), vec![bulkpatch::simulator::Fault::Status(401)])].into(),
        ..SimConfig::default()
    })
    .await;
    for t in [1, 2] {
        sim.seed_graph_user(customer(t), user(100 * t + 1), json!({}));
    }
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let input = rows(&[1, 2], 1).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let extra = ["--concurrency", "1"];
    let ran = run_bin(graph_run_with_config(&sim, &config, &input, &out, &extra)).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 2);
    assert_eq!(
        token_requests(&sim, customer(1)).len(),
        2,
        "refreshed after its 401"
    );
    assert_eq!(token_requests(&sim, customer(2)).len(), 1, "not refreshed");
    let sent = requests_for(&sim.requests(), user(101));
    assert_eq!(
        sent.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(401), Some(204)]
    );
    assert_ne!(
        sent[0].header("authorization"),
        sent[1].header("authorization")
    );
}

/// The same with `$batch` (the default): each batch carries its tenant's own token, fetched once
/// per tenant, and a refusing tenant's rows fail without a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_carry_their_tenants_own_token() {
    let sim = three_tenants_the_third_refusing().await;
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let input = rows(&[1, 2, 3], 4).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    // Not "run" first: `graph_with_config` adds `--batch 1` only to a command starting "run".
    let args = ["--concurrency", "4", "run", input.to_str().unwrap()];
    let ran = run_bin(graph_with_config(
        &sim,
        &config,
        &[
            &args[2..],
            &["--out", out.to_str().unwrap(), "--batch", "20"],
        ]
        .concat(),
    ))
    .await;
    assert_eq!(ran.code, 1, "tenant 3's rows failed: {}", ran.stderr);
    for t in [1, 2, 3] {
        assert_eq!(token_requests(&sim, customer(t)).len(), 1, "tenant {t}");
    }
    let batches: Vec<RecordedRequest> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/$batch"))
        .collect();
    assert_eq!(batches.len(), 2, "one batch for each tenant that accepts");
    let tenants: std::collections::HashSet<Option<String>> =
        batches.iter().map(|r| token_tenant(&sim, r)).collect();
    let expected = [1, 2].map(|t| Some(customer(t).to_string())).into();
    assert_eq!(tenants, expected);
    let results = Results::read(&out);
    assert_eq!((results.count("updated"), results.count("failed")), (8, 4));
}
