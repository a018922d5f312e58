//! `--target graph` with customers named by domain: each domain is looked up once as a tenant
//! through the authority's public discovery document (no credentials sent), its rows then
//! changed in that tenant with the tenant's own token; a domain no tenant has is `not_found`,
//! a discovery that keeps failing fails only its rows, and a fixed token (no authority) says
//! what to configure. Partner Center still finds domains in the partner's customer listing.

use std::collections::HashMap;

use bulkpatch::simulator::{DirCustomer, Directory, SimConfig, SimOAuth, Simulator};
use serde_json::json;

use crate::graph_tenants::{
    credentials, graph_run_with_config, graph_with_config, token_requests, token_tenant,
};
use crate::support::*;

/// A simulator with a token endpoint whose directory gives tenant `t` the domain `domains[t-1]`,
/// and `users` Graph users in each (users 100*t+1 ..= 100*t+users).
async fn sim_with_domains(oauth: SimOAuth, domains: &[&str], users: u32) -> Simulator {
    let customers = (1..)
        .zip(domains)
        .map(|(t, d)| DirCustomer {
            id: customer(t),
            domain: d.to_string(),
            company_name: format!("Company {t}"),
            users: Vec::new(),
        })
        .collect();
    let sim = simulator(SimConfig {
        oauth: Some(oauth),
        directory: Some(Directory { customers }),
        ..SimConfig::default()
    })
    .await;
    for t in 1..=domains.len() as u32 {
        for u in 1..=users {
            sim.seed_graph_user(customer(t), user(100 * t + u), json!({}));
        }
    }
    sim
}

/// Rows setting job titles: (customer cell, user number), in this order.
fn rows(cells: &[(&str, u32)]) -> Csv {
    let mut csv = Csv::new(&["customer_id", "user_id", "job_title"]);
    for (cell, u) in cells {
        csv = csv.row(&[cell, &user(*u).to_string(), "Engineer"]);
    }
    csv
}

/// How many discovery requests named each tenant segment.
fn discoveries(sim: &Simulator) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for r in sim.discovery_requests() {
        *by.entry(r.tenant).or_default() += 1;
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_named_by_domain_are_found_once_each_and_changed_with_their_own_tokens() {
    let sim = sim_with_domains(SimOAuth::default(), &["one.example", "Two.Example"], 3).await;
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let input = rows(&[
        ("one.example", 101),
        ("TWO.example", 201),
        ("nowhere.example", 901),
        ("One.Example", 102),
        ("two.example", 202),
        (&customer(1).to_string(), 103),
        ("two.example", 203),
    ])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let extra = ["--concurrency", "4", "--rate", "unlimited"];
    let ran = run_bin(graph_run_with_config(&sim, &config, &input, &out, &extra)).await;
    assert_eq!(ran.code, 1, "one domain matches no tenant: {}", ran.stderr);

    // One discovery request per domain, without credentials.
    let expected: HashMap<String, usize> = [
        ("one.example", 1),
        ("two.example", 1),
        ("nowhere.example", 1),
    ]
    .map(|(d, n)| (d.to_string(), n))
    .into();
    assert_eq!(discoveries(&sim), expected);
    for r in sim.discovery_requests() {
        assert_eq!(r.header("authorization"), None, "{}", r.tenant);
        assert_eq!(
            r.status,
            if r.tenant == "nowhere.example" {
                400
            } else {
                200
            }
        );
    }

    // Each tenant's users changed in that tenant, with that tenant's own token.
    let requests = sim.requests();
    for (t, users) in [(1, [101, 102, 103]), (2, [201, 202, 203])] {
        assert_eq!(token_requests(&sim, customer(t)).len(), 1, "tenant {t}");
        for u in users {
            let sent = requests_for(&requests, user(u));
            assert_eq!(sent.len(), 1, "user {u}");
            assert_eq!(sent[0].status, Some(204));
            assert_eq!(token_tenant(&sim, &sent[0]), Some(customer(t).to_string()));
            assert_eq!(
                sim.graph_user(customer(t), user(u)).unwrap()["jobTitle"],
                "Engineer"
            );
        }
    }
    assert!(requests_for(&requests, user(901)).is_empty());

    // The results name the tenant found, as a Partner Center resolution does.
    let results = Results::read(&out);
    assert_eq!(
        (results.count("updated"), results.count("not_found")),
        (6, 1)
    );
    for (line, t) in [(2, 1), (3, 2), (5, 1), (6, 2), (7, 1), (8, 2)] {
        let r = results.line(line);
        assert_eq!(r["outcome"], "updated", "line {line}");
        assert_eq!(r["customer_id"], customer(t).to_string(), "line {line}");
    }
    let missing = results.line(4);
    assert_eq!(missing["outcome"], "not_found");
    assert_eq!(missing["attempts"], "0");
    assert!(
        missing["message"].contains("\"nowhere.example\"")
            && missing["message"].contains("AADSTS90002"),
        "{}",
        missing["message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_discovery_failure_is_retried_and_one_that_persists_fails_only_its_rows() {
    let oauth = SimOAuth {
        discovery_failures: [
            ("one.example".to_string(), 1),
            ("two.example".to_string(), 99),
        ]
        .into(),
        ..SimOAuth::default()
    };
    let sim = sim_with_domains(oauth, &["one.example", "two.example"], 2).await;
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let input = rows(&[
        ("one.example", 101),
        ("two.example", 201),
        ("one.example", 102),
        ("two.example", 202),
    ])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let extra = ["--max-attempts", "3"];
    let ran = run_bin(graph_run_with_config(&sim, &config, &input, &out, &extra)).await;
    assert_eq!(ran.code, 1, "tenant two's rows failed: {}", ran.stderr);
    let expected: HashMap<String, usize> = [("one.example", 2), ("two.example", 3)]
        .map(|(d, n)| (d.to_string(), n))
        .into();
    assert_eq!(discoveries(&sim), expected, "retried up to --max-attempts");
    let results = Results::read(&out);
    for line in [2, 4] {
        assert_eq!(results.line(line)["outcome"], "updated");
        assert_eq!(results.line(line)["customer_id"], customer(1).to_string());
    }
    for line in [3, 5] {
        let r = results.line(line);
        assert_eq!(r["outcome"], "failed");
        assert!(
            r["message"].contains("\"two.example\"")
                && r["message"].contains("gave up after 3 attempts")
                && r["message"].contains("503"),
            "{}",
            r["message"]
        );
    }
    assert!(token_requests(&sim, customer(2)).is_empty());
    assert!(sim
        .graph_user(customer(2), user(201))
        .unwrap()
        .get("jobTitle")
        .is_none_or(|v| v.is_null()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_fixed_token_there_is_no_authority_and_a_domain_row_says_what_to_configure() {
    let sim = simulator(SimConfig::default()).await;
    let tenant = sim.graph_tenant();
    sim.seed_graph_user(tenant, user(1), json!({}));
    let dir = tempdir();
    let input = rows(&[("contoso.onmicrosoft.com", 2), (&tenant.to_string(), 1)])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let url = sim.graph_url();
    let args = [
        "run",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let mut cmd = bulkpatch(
        &[
            &args[..],
            &["--target", "graph", "--base-url", &url, "--batch", "1"],
        ]
        .concat(),
    );
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.line(3)["outcome"], "updated");
    let r = results.line(2);
    assert_eq!(r["outcome"], "failed");
    for part in [
        "\"contoso.onmicrosoft.com\"",
        "fixed access token",
        "tenant GUID",
        "token_url",
    ] {
        assert!(r["message"].contains(part), "{part}: {}", r["message"]);
    }
    assert!(sim.discovery_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_center_still_finds_a_domain_in_the_partners_customers() {
    let directory = Directory::generated(2, 2, guid);
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let c = &directory.customers[1];
    let input = Csv::new(&["customer_id", "user_id", "usage_location"])
        .row(&[&c.domain.to_uppercase(), &c.users[0].id.to_string(), "DE"])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(Results::read(&out).line(2)["customer_id"], c.id.to_string());
    assert!(sim.discovery_requests().is_empty());
    let listed = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/customers")
        .count();
    assert_eq!(listed, 1, "the partner's customers listed once");
}

/// `export --target graph` takes tenants named by domain too: each found through the discovery
/// document, its users listed with its own token; a domain no tenant has is a failed customer
/// (exit 1) while the others are exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_export_finds_tenants_named_by_domain() {
    let sim = sim_with_domains(SimOAuth::default(), &["one.example", "two.example"], 2).await;
    let dir = tempdir();
    let (config, _) = credentials(dir.path(), &sim);
    let out = dir.path().join("users.csv");
    let c2 = customer(2).to_string();
    let args = [
        "export",
        "--customer",
        "One.Example",
        "--customer",
        &c2,
        "--customer",
        "nobody.example",
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = run_bin(graph_with_config(&sim, &config, &args)).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("nobody.example"), "{}", ran.stderr);
    assert!(ran.stderr.contains("AADSTS90002"), "{}", ran.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut exported: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[2].to_string())
        })
        .collect();
    exported.sort();
    let mut want: Vec<(String, String)> = [(1, 101), (1, 102), (2, 201), (2, 202)]
        .iter()
        .map(|(t, u)| (customer(*t).to_string(), user(*u).to_string()))
        .collect();
    want.sort();
    assert_eq!(exported, want);
    assert_eq!(discoveries(&sim).get("one.example"), Some(&1));
    assert!(sim.discovery_requests().iter().all(|r| r.tenant != c2));
    assert!(
        !token_requests(&sim, customer(1)).is_empty(),
        "tenant 1's own token"
    );
}
