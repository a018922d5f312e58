//! A misbehaving server (echoing secrets in every encoding, redirecting, rotating tokens it
//! then makes unsavable) and the real binary against it: no secret reaches any output, no
//! request with credentials follows a redirect. Also: control characters never reach the
//! terminal raw.
//!
//! `HostileServer::start(handler)` serves every request with `handler` and records what it
//! received; other test modules may copy it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::*;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the handler answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, value: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A server on 127.0.0.1:0 answering each request with `handler`, recording every request.
pub struct HostileServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    pub async fn start(
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> HostileServer {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let handler = Arc::new(handler);
        let log = received.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (handler, log) = (handler.clone(), log.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let got = Received {
                    method: parts.method.to_string(),
                    path: parts.uri.to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let reply = handler(&got);
                log.lock().unwrap().push(got);
                let mut response = http::Response::builder().status(reply.status);
                for (name, value) in &reply.headers {
                    response = response.header(name.as_str(), value.as_str());
                }
                response.body(axum::body::Body::from(reply.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HostileServer {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const TOKEN: &str = "tok-Hostile-5ecret-0123456789";

/// `bulkpatch run` against `server` with a fixed token, plus `extra`.
fn run_at(
    server: &HostileServer,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Command {
    let mut args = vec![
        "run".to_string(),
        input.display().to_string(),
        "--base-url".into(),
        server.url(),
        "--out".into(),
        out.display().to_string(),
        "--max-attempts".into(),
        "1".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bulkpatch(&refs);
    cmd.env("BULKPATCH_TOKEN", TOKEN);
    cmd
}

/// Everything the run put out: stdout, stderr, and every file in `dir` except `exempt`.
fn all_outputs(ran: &Ran, dir: &Path, exempt: &[&Path]) -> String {
    let mut all = format!("{}\n{}\n", ran.stdout, ran.stderr);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !exempt.contains(&path.as_path()) {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    all
}

fn assert_absent(all: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(!all.contains(f), "{f:?} reached an output:\n{all}");
    }
}

/// Renders the Markdown and HTML reports of `results` with the `report` command.
async fn reports(dir: &Path, results: &Path) {
    let (md, html) = (dir.join("report.md"), dir.join("report2.html"));
    let ran = run_bin(bulkpatch(&[
        "report",
        results.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(md.exists() && html.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_echoed_json_escaped_in_an_error_reaches_no_output() {
    let server = HostileServer::start(|r| {
        Reply::json(
            400,
            json!({"code": 400, "description": format!(
                "The password Qu0te\\\"Pass!xyz is too common; you sent: {}", r.body
            )}),
        )
    })
    .await;
    let dir = tempdir();
    let input = Csv::new(&["customer_id", "user_id", "password"])
        .row(&[
            &customer(1).to_string(),
            &user(1).to_string(),
            r#""Qu0te""Pass!xyz""#,
        ])
        .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let (html, summary) = (
        dir.path().join("report.html"),
        dir.path().join("summary.json"),
    );
    let ran = run_bin(run_at(
        &server,
        &input,
        &out,
        &[
            "-vv",
            "--include-admins",
            "--report",
            html.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let sent = &server.received()[0];
    assert!(
        sent.body.contains(r#"Qu0te\"Pass!xyz"#),
        "the password was sent: {}",
        sent.body
    );
    let results = Results::read(&out);
    let message = &results.line(2)["message"];
    assert!(
        message.contains("too common"),
        "the message is kept: {message}"
    );
    reports(dir.path(), &out).await;
    let all = all_outputs(&ran, dir.path(), &[&input]);
    assert!(all.contains("too common") && summary.exists() && html.exists());
    assert_absent(
        &all,
        &["Pass!xyz", "Pass%21xyz", "Pass&#33;xyz", "UGFzcyF4eXo"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_quoted_in_401_and_403_bodies_reaches_no_output() {
    let server = HostileServer::start(|r| {
        let status = if r.path.contains(&user(1).to_string()) { 403 } else { 401 };
        Reply::json(
            status,
            json!({"description": format!(
                "Refused {}; your token {TOKEN} has no rights", r.header("authorization").unwrap_or("")
            )}),
        )
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let (html, summary) = (
        dir.path().join("report.html"),
        dir.path().join("summary.json"),
    );
    let ran = run_bin(run_at(
        &server,
        &input,
        &out,
        &[
            "-vv",
            "--concurrency",
            "1",
            "--report",
            html.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(ran.code, 2, "the 401 stops the run: {}", ran.stderr);
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    reports(dir.path(), &out).await;
    let all = all_outputs(&ran, dir.path(), &[&input]);
    assert!(
        all.contains("has no rights"),
        "the messages are kept:\n{all}"
    );
    assert_absent(&all, &[TOKEN, "5ecret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_echoing_its_form_leaks_neither_secret() {
    let refresh = "rt-Hostile/Refresh+Token=1 x";
    let secret = "cs-Hostile&Secret%1~";
    let server = HostileServer::start(move |r| {
        Reply::json(
            400,
            json!({
                "error": format!("invalid_grant {}", r.body),
                "error_description": format!("AADSTS70000: echo {} / raw {refresh} and {secret}", r.body),
            }),
        )
    })
    .await;
    let dir = tempdir();
    let (config, refresh_file) = hostile_auth_config(dir.path(), &server, refresh);
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");
    let mut cmd = run_at(
        &server,
        &input,
        &out,
        &[
            "-vv",
            "--config",
            config.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    cmd.env_remove("BULKPATCH_TOKEN")
        .env("BULKPATCH_CLIENT_SECRET", secret);
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    let form = &server.received()[0].body;
    assert!(
        form.contains("refresh_token=rt-Hostile%2FRefresh%2BToken%3D1+x"),
        "{form}"
    );
    assert!(
        form.contains("client_secret=cs-Hostile%26Secret%251%7E"),
        "{form}"
    );
    let all = all_outputs(&ran, dir.path(), &[&input, &refresh_file, &config]);
    assert!(
        all.contains("AADSTS70000"),
        "the description is kept:\n{all}"
    );
    assert_absent(
        &all,
        &[
            "Hostile",
            "Refresh+Token",
            "Refresh%2B",
            "Secret%1",
            "Secret%25",
        ],
    );
}

/// A config whose `[auth]` token endpoint is `server`'s `/token`, the refresh token in a file.
fn hostile_auth_config(dir: &Path, server: &HostileServer, refresh: &str) -> (PathBuf, PathBuf) {
    let refresh_file = dir.join("refresh-token");
    std::fs::write(&refresh_file, format!("{refresh}\n")).unwrap();
    let config = dir.join("auth.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\ntoken_url = \"{}/token\"\nclient_id = \"app\"\nrefresh_token_file = \"{}\"\n",
            server.url(),
            refresh_file.display()
        ),
    )
    .unwrap();
    (config, refresh_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_redirect_is_a_row_failure_naming_the_host_and_is_never_followed() {
    let trap = HostileServer::start(|_| Reply::json(200, json!({}))).await;
    let location = format!("http://localhost:{}/steal?token=x", trap.addr.port());
    let server = HostileServer::start(move |r| {
        let status = if r.path.contains(&user(1).to_string()) {
            302
        } else {
            307
        };
        Reply::json(status, json!({})).header("location", &location)
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let ran = run_bin(run_at(&server, &input, &out, &[])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(
        server.received().len(),
        2,
        "one attempt per row: a redirect is final"
    );
    assert!(
        trap.received().is_empty(),
        "the redirect target received a request"
    );
    let results = Results::read(&out);
    for (line, status) in [(2, "302"), (3, "307")] {
        let r = results.line(line);
        assert_eq!(
            (r["outcome"].as_str(), r["http_status"].as_str()),
            ("failed", status)
        );
        assert!(
            r["message"].contains("redirect to host localhost"),
            "{}",
            r["message"]
        );
        assert!(!r["message"].contains("steal"), "{}", r["message"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_redirect_stops_the_run_and_sends_the_form_nowhere_else() {
    let trap = HostileServer::start(|_| {
        Reply::json(200, json!({"access_token": "at-trap", "expires_in": 3600}))
    })
    .await;
    let location = format!("http://localhost:{}/token?x=1", trap.addr.port());
    let server =
        HostileServer::start(move |_| Reply::json(307, json!({})).header("location", &location))
            .await;
    let dir = tempdir();
    let (config, _) = hostile_auth_config(dir.path(), &server, "rt-Redirected-0123");
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let mut cmd = run_at(
        &server,
        &input,
        &out,
        &["--config", config.to_str().unwrap()],
    );
    cmd.env_remove("BULKPATCH_TOKEN");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(trap.received().is_empty(), "the form followed the redirect");
    let received = server.received();
    assert_eq!(received.len(), 1, "a redirect is not retried");
    assert_eq!(received[0].method, "POST");
    assert!(
        ran.stderr.contains("redirect to host localhost"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("x=1"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_that_cannot_be_saved_ends_the_run_with_exit_2_and_advice() {
    let dir = tempdir();
    let refresh_file = dir.path().join("refresh-token");
    let rotated = "rt-Rotated-Never-Shown-42";
    let swap = refresh_file.clone();
    let server = HostileServer::start(move |r| {
        if r.path.starts_with("/token") {
            // The file becomes a directory: the rotated token cannot replace it.
            let _ = std::fs::remove_file(&swap);
            let _ = std::fs::create_dir(&swap);
            Reply::json(
                200,
                json!({"access_token": "at-Fresh-0123", "expires_in": 3600, "refresh_token": rotated}),
            )
        } else {
            Reply::json(200, json!({}))
        }
    })
    .await;
    let (config, _) = hostile_auth_config(dir.path(), &server, "rt-Old-0123");
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");
    let mut cmd = run_at(
        &server,
        &input,
        &out,
        &[
            "-vv",
            "--config",
            config.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    cmd.env_remove("BULKPATCH_TOKEN");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert_eq!(
        Results::read(&out).count("updated"),
        3,
        "the rows were finished first"
    );
    assert!(ran.stderr.contains("sign in again"), "{}", ran.stderr);
    assert!(ran.stderr.contains("permissions"), "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 2);
    assert!(
        json["stopped"]
            .as_str()
            .unwrap()
            .contains("could not be saved"),
        "{json}"
    );
    let all = all_outputs(&ran, dir.path(), &[&input]);
    assert_absent(&all, &[rotated, "Never-Shown"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_a_header_never_reach_the_terminal_raw() {
    let dir = tempdir();
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "usage_location",
        "\x1b]0;pwned\x07",
        "\x1b[2J",
    ])
    .row(&[
        &customer(1).to_string(),
        &user(1).to_string(),
        "DE",
        "a",
        "b",
    ])
    .write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let server = HostileServer::start(|_| Reply::json(200, json!({}))).await;
    for extra in [&["-vv"][..], &["-vv", "--ignore-unknown-columns"][..]] {
        let ran = run_bin(run_at(&server, &input, &out, extra)).await;
        let bytes = ran.stderr.as_bytes();
        assert!(
            !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
            "raw control characters on stderr: {:?}",
            ran.stderr
        );
        if extra.len() == 1 {
            assert_eq!(ran.code, 2);
            assert!(
                ran.stderr.contains("\\u{1b}]0;pwned\\u{7}"),
                "{}",
                ran.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_password_from_the_environment_reaches_no_output() {
    let password = "Pr0xy-Pass/word";
    // "proxyuser:Pr0xy-Pass/word" in base64, as a Basic Proxy-Authorization carries it.
    let basic = "cHJveHl1c2VyOlByMHh5LVBhc3Mvd29yZA==";
    let server = HostileServer::start(move |_| {
        Reply::json(
            400,
            json!({"description": format!("proxy said: Basic {basic}, pass {password} or Pr0xy-Pass%2Fword")}),
        )
    })
    .await;
    let dir = tempdir();
    let input = Csv::usage_locations(1).write(dir.path(), "in.csv");
    let out = dir.path().join("out.csv");
    let summary = dir.path().join("summary.json");
    let mut cmd = run_at(
        &server,
        &input,
        &out,
        &["-vv", "--summary-json", summary.to_str().unwrap()],
    );
    // Named but not used for this host: the run must still treat its password as a secret.
    cmd.env(
        "HTTP_PROXY",
        "http://proxyuser:Pr0xy-Pass%2Fword@proxy.invalid:3128",
    )
    .env("NO_PROXY", "127.0.0.1");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let all = all_outputs(&ran, dir.path(), &[&input]);
    assert!(all.contains("proxy said"), "{all}");
    assert_absent(&all, &["Pr0xy", basic, "cHJveHl1c2VyOlByMHh5"]);
}
