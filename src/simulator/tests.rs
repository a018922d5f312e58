//! The simulator's own tests: it must behave like the real API for the client's tests to mean anything.

use super::*;

fn ids() -> (Uuid, Uuid) {
    (Uuid::new_v4(), Uuid::new_v4())
}

fn url(sim: &Simulator, customer: Uuid, user: Uuid) -> String {
    format!("{}/v1/customers/{customer}/users/{user}", sim.base_url())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn patch(
    c: &reqwest::Client,
    sim: &Simulator,
    customer: Uuid,
    user: Uuid,
    body: Value,
) -> reqwest::Result<reqwest::Response> {
    c.patch(url(sim, customer, user))
        .bearer_auth(sim.token())
        .json(&body)
        .send()
        .await
}

fn usage(loc: &str) -> Value {
    json!({"usageLocation": loc, "attributes": {"objectType": "CustomerUser"}})
}

async fn body_of(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

#[tokio::test]
async fn patch_updates_and_returns_user() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    assert!(sim.user(customer, user).is_none());
    let resp = patch(&client(), &sim, customer, user, usage("DE"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    let body = body_of(resp).await;
    assert_eq!(body["usageLocation"], "DE");
    assert_eq!(body["id"], user.to_string());
    assert_eq!(body["userDomainType"], "none");
    assert_eq!(body["state"], "active");
    assert_eq!(body["attributes"]["objectType"], "CustomerUser");
    assert_eq!(
        body["links"]["self"]["uri"],
        format!("/customers/{customer}/users/{user}")
    );
    assert!(body.get("passwordProfile").is_none());
    let stored = sim.user(customer, user).unwrap();
    assert_eq!(stored["usageLocation"], "DE");
    let s = sim.stats();
    assert_eq!((s.received, s.ok), (1, 1));
}

#[tokio::test]
async fn patch_merges_fields_and_get_returns_them() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let c = client();
    let body = json!({
        "displayName": "Ada Lovelace", "firstName": "Ada", "lastName": "Lovelace",
        "userPrincipalName": "ada@contoso.onmicrosoft.com",
        "attributes": {"objectType": "CustomerUser"}
    });
    let resp = patch(&c, &sim, customer, user, body).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = patch(&c, &sim, customer, user, usage("FR")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = c
        .get(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let got = body_of(got).await;
    assert_eq!(got["displayName"], "Ada Lovelace");
    assert_eq!(got["userPrincipalName"], "ada@contoso.onmicrosoft.com");
    assert_eq!(got["usageLocation"], "FR");
}

#[tokio::test]
async fn get_synthesizes_default_and_returns_seeded_user() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let c = client();
    let got = c
        .get(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    let got = body_of(got).await;
    let short = &user.simple().to_string()[..8];
    assert_eq!(got["usageLocation"], "US");
    assert_eq!(got["displayName"], format!("User {short}"));
    assert_eq!(got["firstName"], "User");
    assert_eq!(got["lastName"], short);
    assert_eq!(
        got["userPrincipalName"],
        format!("user-{short}@contoso.onmicrosoft.com")
    );
    assert!(sim.user(customer, user).is_none(), "a GET stores nothing");

    sim.seed_user(customer, user, json!({"usageLocation": "JP"}));
    let got = c
        .get(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    let got = body_of(got).await;
    assert_eq!(got["usageLocation"], "JP");
    assert_eq!(got["firstName"], "User");
    assert_eq!(sim.user(customer, user).unwrap()["usageLocation"], "JP");
}

#[tokio::test]
async fn wrong_or_missing_token_is_401() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let c = client();
    let resp = c
        .patch(url(&sim, customer, user))
        .bearer_auth("not-the-token")
        .json(&usage("DE"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()[reqwest::header::WWW_AUTHENTICATE], "Bearer");
    let body = body_of(resp).await;
    assert_eq!(body["code"], 400);
    assert_eq!(body["source"], "PartnerFD");
    assert_eq!(body["data"], json!([]));
    assert!(body["description"]
        .as_str()
        .unwrap()
        .contains("Access denied"));
    let resp = c
        .patch(url(&sim, customer, user))
        .json(&usage("DE"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(sim.user(customer, user).is_none());
    assert_eq!(sim.stats().client_errors, 2);
}

#[tokio::test]
async fn a_window_quota_is_announced_and_enforced() {
    let sim = Simulator::start(SimConfig {
        window_quota: Some(WindowQuota {
            limit: 3,
            window: Duration::from_secs(60),
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let c = client();
    let header = |r: &reqwest::Response, name: &str| r.headers()[name].to_str().unwrap().to_owned();
    for remaining in ["2", "1", "0"] {
        let (customer, user) = ids();
        let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "ratelimit-policy"), "3;w=60");
        assert_eq!(header(&resp, "ratelimit-limit"), "3");
        assert_eq!(header(&resp, "ratelimit-remaining"), remaining);
        let reset: u64 = header(&resp, "ratelimit-reset").parse().unwrap();
        assert!((59..=60).contains(&reset), "{reset}");
    }
    let (customer, user) = ids();
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "ratelimit-remaining"), "0");
    assert_eq!(
        header(&resp, "retry-after"),
        header(&resp, "ratelimit-reset")
    );
    assert_eq!(sim.stats().throttled, 1);
}

#[tokio::test]
async fn unknown_and_forbidden_are_refused() {
    let (customer, user) = ids();
    let (gone_customer, forbidden) = ids();
    let mut config = SimConfig::default();
    config.unknown_users.insert(user);
    config.unknown_customers.insert(gone_customer);
    config.forbidden_customers.insert(forbidden);
    let sim = Simulator::start(config).await.unwrap();
    let c = client();
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(body_of(resp).await["code"], 60002);
    let other = Uuid::new_v4();
    let resp = patch(&c, &sim, gone_customer, other, usage("DE"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(body_of(resp).await["code"], 60003);
    let resp = patch(&c, &sim, forbidden, other, usage("DE"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(body_of(resp).await["code"], 20002);
}

#[tokio::test]
async fn invalid_usage_location_is_400_3000() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let c = client();
    for bad in ["XX", "de", "DEU", ""] {
        let resp = patch(&c, &sim, customer, user, usage(bad)).await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let body = body_of(resp).await;
        assert_eq!(body["code"], 3000, "{bad}");
        assert!(body["description"]
            .as_str()
            .unwrap()
            .contains("usageLocation"));
    }
    assert!(sim.user(customer, user).is_none());
}

#[tokio::test]
async fn malformed_bodies_and_paths_are_refused() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let c = client();
    let cases = [
        (json!({"usageLocation": "DE"}), 800002),
        (
            json!({"usageLocation": "DE", "attributes": {"objectType": "User"}}),
            800002,
        ),
        (json!([1, 2]), 800002),
        (
            json!({"mail": "x@y.z", "attributes": {"objectType": "CustomerUser"}}),
            3000,
        ),
        (
            json!({"displayName": 5, "attributes": {"objectType": "CustomerUser"}}),
            3000,
        ),
        (
            json!({"userPrincipalName": "no-at-sign", "attributes": {"objectType": "CustomerUser"}}),
            3000,
        ),
        (
            json!({"userPrincipalName": "a@nodot", "attributes": {"objectType": "CustomerUser"}}),
            3000,
        ),
        (
            json!({"passwordProfile": "x", "attributes": {"objectType": "CustomerUser"}}),
            3000,
        ),
    ];
    for (body, code) in cases {
        let resp = patch(&c, &sim, customer, user, body.clone()).await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let got = body_of(resp).await;
        assert_eq!(got["code"], code, "{body}");
    }
    let resp = patch(
        &c,
        &sim,
        customer,
        user,
        json!({"mail": "x@y.z", "attributes": {"objectType": "CustomerUser"}}),
    )
    .await
    .unwrap();
    assert!(body_of(resp).await["description"]
        .as_str()
        .unwrap()
        .contains("'mail'"));
    let resp = c
        .patch(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(body_of(resp).await["code"], 800002);

    let resp = c
        .patch(format!(
            "{}/v1/customers/not-a-guid/users/{user}",
            sim.base_url()
        ))
        .bearer_auth(sim.token())
        .json(&usage("DE"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(body_of(resp).await["code"], 800002);
    let resp = c
        .get(format!("{}/v1/elsewhere", sim.base_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(body_of(resp).await["source"], "PartnerFD");
    let resp = c
        .post(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .json(&usage("DE"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(sim.user(customer, user).is_none());
}

#[tokio::test]
async fn weak_password_is_refused_without_quoting_it() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let c = client();
    for weak in ["zebrazebrazebra", "Zq1!", "zebrazebra99", "Zebra€Zebra99"] {
        let body = json!({
            "passwordProfile": {"password": weak, "forceChangePassword": true},
            "attributes": {"objectType": "CustomerUser"}
        });
        let resp = patch(&c, &sim, customer, user, body).await.unwrap();
        assert_eq!(resp.status(), 400, "{weak}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains(weak), "{text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got["code"], 3000);
    }
    assert!(sim.user(customer, user).is_none());
}

#[tokio::test]
async fn good_password_is_echoed_but_not_stored() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let password = "Renew456*Qx";
    let body = json!({
        "passwordProfile": {"password": password, "forceChangePassword": true},
        "attributes": {"objectType": "CustomerUser"}
    });
    let resp = patch(&client(), &sim, customer, user, body).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = body_of(resp).await;
    assert_eq!(got["passwordProfile"]["password"], password);
    assert_eq!(got["passwordProfile"]["forceChangePassword"], true);
    let stored = sim.user(customer, user).unwrap();
    assert!(!stored.to_string().contains(password));
    assert_eq!(stored["passwordProfile"]["passwordSet"], true);
    assert_eq!(stored["passwordProfile"]["forceChangePassword"], true);
    // A later GET does not show it either.
    let got = client()
        .get(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!got.contains(password));
}

#[test]
fn password_rules() {
    assert!(password_problem("Renew456*").is_none());
    assert!(password_problem("abc DEF 123").is_none());
    assert!(password_problem("abcdefG1").is_none());
    assert!(password_problem("a`~\"();<>B").is_none());
    assert!(password_problem("Ab1!").is_some());
    assert!(password_problem(&"Ab1!".repeat(65)).is_some());
    assert!(password_problem(&"Ab1!".repeat(64)).is_none());
    assert!(password_problem("abcdefgh1").is_some());
    assert!(password_problem("Abcdefgh\u{e9}1").is_some());
    assert!(password_problem("Abcdefgh\t1").is_some());
}

#[tokio::test]
async fn scripted_throttle_html_empty_status_and_unauthorized() {
    let (customer, user) = ids();
    let mut config = SimConfig::default();
    config.script.insert(
        user,
        vec![
            Fault::Throttle { retry_after: 7 },
            Fault::Normal,
            Fault::Html(502),
            Fault::Empty(503),
            Fault::Status(500),
            Fault::Unauthorized,
        ],
    );
    let sim = Simulator::start(config).await.unwrap();
    let c = client();
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()[reqwest::header::RETRY_AFTER], "7");
    assert_eq!(
        body_of(resp).await,
        json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 7 seconds."})
    );
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()[reqwest::header::CONTENT_TYPE], "text/html");
    assert!(resp.text().await.unwrap().contains("<html>"));
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(body_of(resp).await["source"], "PartnerFD");
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 401);
    // Past the end of the script: normal handling.
    let resp = patch(&c, &sim, customer, user, usage("FR")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let s = sim.stats();
    assert_eq!(
        (s.received, s.ok, s.throttled, s.errors, s.client_errors),
        (7, 2, 1, 3, 1)
    );
}

#[tokio::test]
async fn scripted_drop_gives_a_connection_error_then_works() {
    let (customer, user) = ids();
    let mut config = SimConfig::default();
    config
        .script
        .insert(user, vec![Fault::Normal, Fault::Drop, Fault::Normal]);
    let sim = Simulator::start(config).await.unwrap();
    let c = client();
    // The first request opens a keep-alive connection that the drop reuses.
    let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    let err = patch(&c, &sim, customer, user, usage("FR"))
        .await
        .expect_err("a dropped connection is no response");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none());
    assert!(err.is_request(), "{err:?}");
    let resp = patch(&c, &sim, customer, user, usage("IT")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.user(customer, user).unwrap()["usageLocation"], "IT");
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].status, None);
    assert_eq!(reqs[1].responded_at, None);
    assert_eq!(reqs[2].status, Some(200));
    assert_eq!(sim.stats().dropped, 1);
}

#[tokio::test]
async fn slow_fault_outlasts_a_client_timeout_and_is_still_recorded() {
    let (customer, user) = ids();
    let mut config = SimConfig::default();
    config
        .script
        .insert(user, vec![Fault::Slow(Duration::from_secs(30))]);
    let sim = Simulator::start(config).await.unwrap();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = patch(&c, &sim, customer, user, usage("DE"))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].status, None);
    let resp = patch(&client(), &sim, customer, user, usage("DE"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_throttle_refuses_the_request_past_the_burst() {
    let config = SimConfig {
        throttle: Some(Throttle {
            per_second: 1,
            burst: 3,
        }),
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    let c = client();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let (customer, user) = ids();
        let resp = patch(&c, &sim, customer, user, usage("DE")).await.unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = Some(
                resp.headers()[reqwest::header::RETRY_AFTER]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
            let body = body_of(resp).await;
            assert_eq!(body["statusCode"], 429);
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert!(retry_after.unwrap() >= 1);
    assert_eq!(sim.stats().throttled, 1);
}

#[tokio::test]
async fn customer_throttle_is_per_customer() {
    let config = SimConfig {
        customer_throttle: Some(Throttle {
            per_second: 1,
            burst: 2,
        }),
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    let c = client();
    let (a, b) = ids();
    let mut statuses = Vec::new();
    for customer in [a, a, a, b] {
        let resp = patch(&c, &sim, customer, Uuid::new_v4(), usage("DE"))
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 200]);
}

/// Sends `rounds` requests per user, users in the given order each round,
/// and returns the outcome of each (user, index).
async fn outcomes(seed: u64, users: &[Uuid]) -> HashMap<(Uuid, usize), u16> {
    let config = SimConfig {
        seed,
        error_rate: 0.3,
        drop_rate: 0.2,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    let c = client();
    let customer = Uuid::new_v4();
    let mut out = HashMap::new();
    for round in 0..4 {
        for &user in users {
            let outcome = match patch(&c, &sim, customer, user, usage("DE")).await {
                Ok(resp) => resp.status().as_u16(),
                Err(_) => 0,
            };
            out.insert((user, round), outcome);
        }
    }
    out
}

#[tokio::test]
async fn same_seed_gives_the_same_faults_whatever_the_order() {
    let users: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    let first = outcomes(42, &users).await;
    let mut reversed = users.clone();
    reversed.reverse();
    let second = outcomes(42, &reversed).await;
    assert_eq!(first, second);
    let kinds: HashSet<u16> = first.values().copied().collect();
    assert!(kinds.contains(&200) && kinds.len() >= 3, "{kinds:?}");
    let other = outcomes(43, &users).await;
    assert_ne!(first, other);
}

#[tokio::test]
async fn requests_records_headers_and_body_and_echoes_ids() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let (customer, user) = ids();
    let correlation = Uuid::new_v4().to_string();
    let request_id = Uuid::new_v4().to_string();
    let resp = client()
        .patch(url(&sim, customer, user))
        .bearer_auth(sim.token())
        .header("MS-CorrelationId", &correlation)
        .header("MS-RequestId", &request_id)
        .json(&usage("DE"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["ms-correlationid"], correlation.as_str());
    assert_eq!(resp.headers()["ms-requestid"], request_id.as_str());
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.path, format!("/v1/customers/{customer}/users/{user}"));
    assert_eq!(r.header("ms-correlationid"), Some(correlation.as_str()));
    assert_eq!(r.header("MS-RequestId"), Some(request_id.as_str()));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {}", sim.token()).as_str())
    );
    assert!(r.headers.iter().all(|(n, _)| *n == n.to_ascii_lowercase()));
    assert_eq!(r.body_json(), Some(usage("DE")));
    assert_eq!(r.status, Some(200));
    assert!(r.responded_at.unwrap() >= r.received_at);
}

#[tokio::test]
async fn recording_off_still_counts() {
    let config = SimConfig {
        record: false,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await.unwrap();
    let (customer, user) = ids();
    let resp = patch(&client(), &sim, customer, user, usage("DE"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sim.requests().is_empty());
    assert_eq!(sim.stats().ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_on_kept_alive_connections() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let c = client();
    let customer = Uuid::new_v4();
    let mut tasks = JoinSet::new();
    for _ in 0..16 {
        let (sim, c) = (Arc::clone(&sim), c.clone());
        tasks.spawn(async move {
            for _ in 0..25 {
                let resp = patch(&c, &sim, customer, Uuid::new_v4(), usage("DE"))
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let s = sim.stats();
    assert_eq!((s.received, s.ok), (400, 400));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let addr = sim.addr();
    assert_eq!(sim.base_url(), format!("http://127.0.0.1:{}", addr.port()));
    sim.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn fault_seed_is_stable() {
    let user = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    assert_eq!(fault_seed(1, user, 0), fault_seed(1, user, 0));
    assert_ne!(fault_seed(1, user, 0), fault_seed(1, user, 1));
    assert_ne!(fault_seed(1, user, 0), fault_seed(2, user, 0));
}
