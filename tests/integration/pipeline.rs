//! The happy path end to end: what the server received and what the results file says.

use std::collections::HashSet;

use bulkpatch::simulator::SimConfig;
use uuid::Uuid;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_sent_once_with_the_documented_request() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::new(&[
        "Customer Tenant ID",
        "User-Id",
        "usageLocation",
        "Display Name",
        "New UPN",
    ])
    .row(&[&customer(1).to_string(), &user(1).to_string(), "de", "", ""])
    .row(&[
        &customer(1).to_string(),
        &user(2).to_string(),
        "",
        "Anna Berg",
        "anna@contoso.com",
    ])
    .row(&[
        &customer(2).to_string(),
        &user(3).to_string(),
        "FR",
        "Jean Dupont",
        "",
    ])
    .write(dir.path(), "users.csv");
    let out = dir.path().join("users.results.csv");

    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);

    let requests = sim.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.method, "PATCH");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {}", sim.token()).as_str())
        );
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("user-agent"),
            Some(concat!("bulkpatch/", env!("CARGO_PKG_VERSION")))
        );
        for h in ["ms-requestid", "ms-correlationid"] {
            let v = r.header(h).unwrap_or_else(|| panic!("{h} missing"));
            assert!(Uuid::parse_str(v).is_ok(), "{h} is not a GUID: {v}");
        }
    }
    let body_of = |u: Uuid| {
        let r = requests_for(&requests, u);
        assert_eq!(r.len(), 1);
        String::from_utf8(r[0].body.clone()).unwrap()
    };
    assert_eq!(
        requests_for(&requests, user(1))[0].path,
        format!("/v1/customers/{}/users/{}", customer(1), user(1))
    );
    assert_eq!(
        body_of(user(1)),
        r#"{"usageLocation":"DE","attributes":{"objectType":"CustomerUser"}}"#
    );
    assert_eq!(
        body_of(user(2)),
        r#"{"displayName":"Anna Berg","userPrincipalName":"anna@contoso.com","attributes":{"objectType":"CustomerUser"}}"#
    );
    assert_eq!(
        body_of(user(3)),
        r#"{"usageLocation":"FR","displayName":"Jean Dupont","attributes":{"objectType":"CustomerUser"}}"#
    );
    // The simulator applied the updates.
    assert_eq!(
        sim.user(customer(1), user(1)).unwrap()["usageLocation"],
        "DE"
    );
    assert_eq!(
        sim.user(customer(2), user(3)).unwrap()["displayName"],
        "Jean Dupont"
    );

    let results = Results::read(&out);
    assert_eq!(
        results.header,
        [
            "line",
            "customer_id",
            "user_id",
            "outcome",
            "http_status",
            "error_code",
            "message",
            "attempts",
            "elapsed_ms",
            "request_id",
            "correlation_id",
            "finished_at",
            "body",
            "row_hash",
            "throttled",
            "user_principal_name",
            "customer_domain",
            "context"
        ]
    );
    assert_eq!(results.rows.len(), 3);
    for (line, u) in [(2, user(1)), (3, user(2)), (4, user(3))] {
        let r = results.line(line);
        assert_eq!(r["user_id"], u.to_string());
        assert_eq!(r["outcome"], "updated");
        assert_eq!(r["http_status"], "200");
        assert_eq!(r["attempts"], "1");
        assert_eq!(r["message"], "");
        // The ids recorded are the ones the server saw.
        let seen = &requests_for(&requests, u)[0];
        assert_eq!(Some(r["request_id"].as_str()), seen.header("ms-requestid"));
        assert_eq!(
            Some(r["correlation_id"].as_str()),
            seen.header("ms-correlationid")
        );
        // RFC 3339 with milliseconds, UTC.
        let t = &r["finished_at"];
        assert!(
            humantime::parse_rfc3339(t).is_ok() && t.len() == 24 && t.ends_with('Z'),
            "{t}"
        );
    }
    // Each row has its own correlation id.
    let ids: HashSet<_> = results
        .rows
        .iter()
        .map(|r| r["correlation_id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ran.stderr.contains("updated 3"), "summary: {}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn european_excel_files_with_bom_semicolons_and_crlf_are_read() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(4)
        .excel_european()
        .write(dir.path(), "eu.csv");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("eu.out.csv"),
        &[],
    ))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(sim.requests().len(), 4);
    let results = Results::read(&dir.path().join("eu.out.csv"));
    assert_eq!(results.count("updated"), 4);
    assert_eq!(results.line(5)["user_id"], user(4).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_results_path_and_no_silent_overwrite() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "batch-7.csv");
    let mut cmd = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
    ]);
    cmd.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let out = dir.path().join("batch-7.results.csv");
    assert_eq!(Results::read(&out).count("updated"), 2);

    // A second run refuses to overwrite the results, before sending anything.
    let mut again = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
    ]);
    again.env("BULKPATCH_TOKEN", sim.token());
    let ran = run_bin(again).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("already exists") && ran.stderr.contains("--force"),
        "{}",
        ran.stderr
    );
    assert_eq!(sim.requests().len(), 2);

    let mut forced = bulkpatch(&[
        "run",
        input.to_str().unwrap(),
        "--base-url",
        &sim.base_url(),
        "--force",
    ]);
    forced.env("BULKPATCH_TOKEN", sim.token());
    assert_eq!(run_bin(forced).await.code, 0);
    assert_eq!(sim.requests().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_json_has_the_counts() {
    let sim = simulator(SimConfig {
        unknown_users: [user(2)].into(),
        ..SimConfig::default()
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(3)
        .row(&["x", &user(9).to_string(), "DE"])
        .write(dir.path(), "in.csv");
    let summary = dir.path().join("summary.json");
    let ran = run_bin(run_against(
        &sim,
        &input,
        &dir.path().join("out.csv"),
        &["--summary-json", summary.to_str().unwrap()],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["rows"], 4);
    assert_eq!(json["outcomes"]["updated"], 2);
    assert_eq!(json["outcomes"]["failed"], 1);
    assert_eq!(json["outcomes"]["invalid"], 1);
    assert_eq!(json["attempts"], 3);
    assert_eq!(json["errors"][0]["http_status"], 404);
    assert_eq!(json["errors"][0]["error_code"], 60002);
    assert_eq!(json["exit_code"], 1);
    assert!(
        ran.stderr.contains("HTTP 404, code 60002"),
        "{}",
        ran.stderr
    );
}

/// An HTTP proxy on 127.0.0.1 (CONNECT tunnels and whole `http://` requests): records each
/// request's head, then relays.
async fn connect_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // The client sends nothing past the head until the tunnel is open.
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0];
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                seen.lock().unwrap().push(head.clone());
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                // CONNECT host:port, or a whole request to `http://host:port/path`.
                let connect = head.starts_with("CONNECT ");
                let target = match target.strip_prefix("http://") {
                    Some(rest) => rest.split('/').next().unwrap_or("").to_owned(),
                    None => target,
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                let _ = match connect {
                    true => client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n"),
                    false => server.write_all(head.as_bytes()),
                }
                .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (url, heads)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_the_proxy_the_environment_names_unless_no_proxy_exempts_the_host() {
    let sim = simulator(SimConfig::default()).await;
    let (proxy, heads) = connect_proxy().await;
    let authority = sim.addr();
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");

    // Through the proxy, with the credentials from its URL.
    let out = dir.path().join("proxied.csv");
    let mut cmd = run_against(&sim, &input, &out, &[]);
    let with_auth = proxy.replace("http://", "http://ops:s3cret@");
    cmd.env("HTTP_PROXY", &with_auth);
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 3);
    assert_eq!(sim.requests().len(), 3);
    let tunnels = heads.lock().unwrap().clone();
    assert!(!tunnels.is_empty(), "no request went through the proxy");
    for head in &tunnels {
        // An http:// URL goes to the proxy as a whole (`PATCH http://...`); https:// ones
        // tunnel with CONNECT (tests/integration/tls_and_proxies.rs).
        assert!(
            head.starts_with(&format!("PATCH http://{authority}/v1/customers/")),
            "{head}"
        );
        // base64("ops:s3cret")
        assert!(
            head.lines().any(
                |l| l.to_ascii_lowercase().starts_with("proxy-authorization:")
                    && l.ends_with(" Basic b3BzOnMzY3JldA==")
            ),
            "{head}"
        );
    }
    assert!(!ran.stderr.contains("s3cret"), "{}", ran.stderr);

    // NO_PROXY exempts the host: straight to the server.
    heads.lock().unwrap().clear();
    let out = dir.path().join("direct.csv");
    let mut cmd = run_against(&sim, &input, &out, &[]);
    cmd.env("HTTP_PROXY", &proxy).env("NO_PROXY", "127.0.0.1");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 3);
    assert_eq!(sim.requests().len(), 6);
    assert!(heads.lock().unwrap().is_empty(), "NO_PROXY was ignored");
}
