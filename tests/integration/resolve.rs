//! Name resolution against the simulator's directory: a customer by domain and a user by UPN
//! become their GUIDs; the customers are listed once and each customer's users once however
//! many rows ask at the same time; a name that matches nothing is `not_found`, a domain two
//! customers share is `invalid` naming both, a GUID given is the key.

use std::sync::Arc;

use bulkpatch::app::listing::Lister;
use bulkpatch::app::resolve::Resolver;
use bulkpatch::core::run_state::{Counters, Outcome};
use bulkpatch::settings::credentials::Credentials;
use bulkpatch::settings::{Rate, Settings};
use bulkpatch::simulator::{Directory, SimConfig, Simulator};

use crate::support::*;

async fn resolver(sim: &Simulator, wanted: Vec<String>) -> Arc<Resolver> {
    let mut settings = Settings::with_defaults("unused.csv");
    settings.base_url = reqwest::Url::parse(&sim.base_url()).unwrap();
    settings.rate = Rate::Unlimited;
    settings.credentials = Some(Credentials::Fixed(sim.token().to_string().into()));
    let lister = Lister::for_settings(&mut settings, Arc::default(), Arc::new(Counters::default()))
        .await
        .unwrap();
    Arc::new(Resolver::new(Arc::new(lister), wanted))
}

#[tokio::test]
async fn domains_and_upns_resolve_once_each_and_names_that_match_nothing_or_several_say_so() {
    let mut directory = Directory::generated(4, 5, guid);
    directory.customers[3].domain = "shared.example".into();
    directory.customers[2].domain = "Shared.Example".into();
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        page_size: 2,
        ..SimConfig::default()
    })
    .await;
    let c1 = &directory.customers[0];
    let c2 = &directory.customers[1];
    let wanted: Vec<String> = c1
        .users
        .iter()
        .chain(&c2.users)
        .map(|u| u.user_principal_name.to_uppercase())
        .collect();
    let resolver = resolver(&sim, wanted).await;

    // Twenty rows at once: every one of c1's and c2's users, by domain and UPN in any case.
    let mut tasks = tokio::task::JoinSet::new();
    let pairs: Vec<_> = [c1, c2]
        .iter()
        .flat_map(|c| c.users.iter().map(move |u| ((*c).clone(), u.clone())))
        .collect();
    for (c, u) in pairs.into_iter().cycle().take(20) {
        let resolver = resolver.clone();
        tasks.spawn(async move {
            let customer = resolver.customer(&c.domain.to_uppercase()).await.unwrap();
            let user = resolver
                .user(
                    customer,
                    None,
                    Some(&format!(" {} ", u.user_principal_name.to_uppercase())),
                )
                .await
                .unwrap();
            assert_eq!((customer, user), (c.id, u.id));
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let requests = sim.requests();
    let pages = |path: &str| requests.iter().filter(|r| r.path == path).count();
    assert_eq!(
        pages("/v1/customers"),
        2,
        "the customers are listed once (2 pages)"
    );
    assert_eq!(pages(&format!("/v1/customers/{}/users", c1.id)), 3);
    assert_eq!(pages(&format!("/v1/customers/{}/users", c2.id)), 3);
    assert_eq!(requests.len(), 8);

    // Not found: an unknown domain, an unknown UPN (not listed again: cached).
    let e = resolver.customer("nobody.example").await.unwrap_err();
    assert_eq!(e.outcome, Outcome::NotFound);
    assert!(
        e.reason
            .contains("no customer of the partner has the domain \"nobody.example\""),
        "{}",
        e.reason
    );
    let e = resolver
        .user(c1.id, None, Some("ghost@tenant1.onmicrosoft.com"))
        .await
        .unwrap_err();
    assert_eq!(e.outcome, Outcome::NotFound);
    assert!(
        e.reason
            .contains("has no user \"ghost@tenant1.onmicrosoft.com\""),
        "{}",
        e.reason
    );
    // Ambiguous: two customers share the domain (compared without case).
    let e = resolver.customer("shared.example").await.unwrap_err();
    assert_eq!(e.outcome, Outcome::Invalid);
    let (third, fourth) = (directory.customers[2].id, directory.customers[3].id);
    assert!(
        e.reason.contains(&format!("({third} and {fourth})")),
        "{}",
        e.reason
    );
    // A GUID is the key: no listing, whatever the UPN says.
    let id = guid(2, 999);
    assert_eq!(resolver.customer(&c1.id.to_string()).await, Ok(c1.id));
    assert_eq!(
        resolver.user(c1.id, Some(id), Some("someone@else")).await,
        Ok(id)
    );
    assert_eq!(sim.requests().len(), 8, "nothing listed twice");
}

#[tokio::test]
async fn a_customer_whose_users_cannot_be_listed_fails_its_rows_once() {
    let directory = Directory::generated(2, 2, guid);
    let forbidden = directory.customers[0].id;
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        forbidden_customers: [forbidden].into(),
        ..SimConfig::default()
    })
    .await;
    let upn = directory.customers[0].users[0].user_principal_name.clone();
    let resolver = resolver(&sim, vec![upn.clone()]).await;
    for _ in 0..3 {
        let e = resolver
            .user(forbidden, None, Some(&upn))
            .await
            .unwrap_err();
        assert_eq!(e.outcome, Outcome::Failed);
        assert!(e.reason.contains("HTTP 403 (code 20002)"), "{}", e.reason);
    }
    assert_eq!(sim.requests().len(), 1);
    let ok = &directory.customers[1];
    let e = resolver
        .user(ok.id, None, Some(&ok.users[0].user_principal_name))
        .await
        .unwrap_err();
    assert_eq!(
        e.outcome,
        Outcome::NotFound,
        "a UPN the input does not name is not kept"
    );
}

#[tokio::test]
async fn a_run_finds_customers_by_domain_and_users_by_upn_before_sending_and_records_what_it_cannot(
) {
    let dir = tempdir();
    let mut directory = Directory::generated(4, 3, guid);
    directory.customers[2].domain = "shared.example".into();
    directory.customers[3].domain = "shared.example".into();
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        page_size: 2,
        ..SimConfig::default()
    })
    .await;
    let (c1, c2) = (&directory.customers[0], &directory.customers[1]);
    let input = Csv::new(&["customer_id", "user_principal_name", "usage_location"])
        .row(&[
            "TENANT1.onmicrosoft.com",
            &c1.users[0].user_principal_name.to_uppercase(),
            "NO",
        ])
        .row(&[&c2.id.to_string(), &c2.users[1].user_principal_name, "SE"])
        .row(&[
            "tenant1.onmicrosoft.com",
            "ghost@tenant1.onmicrosoft.com",
            "DE",
        ])
        .row(&["nobody.example", "x@nobody.example", "DE"])
        .row(&["shared.example", "y@shared.example", "DE"])
        .write(dir.path(), "by-name.csv");
    let out = dir.path().join("by-name.results.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &["--rate", "unlimited"])).await;
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let results = Results::read(&out);
    assert_eq!(results.line(2)["outcome"], "updated");
    assert_eq!(results.line(2)["user_id"], c1.users[0].id.to_string());
    assert_eq!(results.line(3)["outcome"], "updated");
    assert_eq!(results.line(4)["outcome"], "not_found");
    assert!(
        results.line(4)["message"].contains("has no user \"ghost@tenant1.onmicrosoft.com\""),
        "{:?}",
        results.line(4)
    );
    assert_eq!(results.line(5)["outcome"], "not_found");
    assert_eq!(results.line(6)["outcome"], "invalid");
    let (third, fourth) = (directory.customers[2].id, directory.customers[3].id);
    assert!(
        results.line(6)["message"].contains(&format!("({third} and {fourth})")),
        "{:?}",
        results.line(6)
    );

    // The users found were sent their change only (the UPN that found them is no change).
    let patched = sim.user(c1.id, c1.users[0].id).unwrap();
    assert_eq!(patched["usageLocation"], "NO");
    let requests = sim.requests();
    let patches: Vec<_> = requests.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 2);
    assert!(patches
        .iter()
        .all(|r| r.body_json().unwrap().get("userPrincipalName").is_none()));
    // The customers listed once (2 pages), each named customer's users once (2 pages each),
    // and no listing of the ambiguous ones.
    let count = |path: &str| requests.iter().filter(|r| r.path == path).count();
    assert_eq!(count("/v1/customers"), 2);
    assert_eq!(count(&format!("/v1/customers/{}/users", c1.id)), 2);
    assert_eq!(count(&format!("/v1/customers/{}/users", c2.id)), 2);
    assert_eq!(requests.len(), 2 + 2 + 2 + 2);

    // A dry run lists nothing: the rows are planned, saying they are found when sent.
    let plan = dir.path().join("plan.csv");
    let mut cmd = run_against(&sim, &input, &plan, &["--dry-run"]);
    cmd.env_remove("BULKPATCH_TOKEN");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let plan = Results::read(&plan);
    assert_eq!(plan.count("planned"), 5);
    assert!(
        plan.line(2)["message"].contains("found when sent"),
        "{:?}",
        plan.line(2)
    );
    assert_eq!(sim.requests().len(), 8);
}

#[tokio::test]
async fn with_a_user_id_the_guid_is_the_key_and_only_the_customer_domain_is_found() {
    let dir = tempdir();
    let directory = Directory::generated(2, 2, guid);
    let sim = simulator(SimConfig {
        directory: Some(directory.clone()),
        ..SimConfig::default()
    })
    .await;
    let c = &directory.customers[1];
    let input = Csv::new(&[
        "customer_id",
        "user_id",
        "user_principal_name",
        "usage_location",
    ])
    .row(&[
        "tenant2.onmicrosoft.com",
        &c.users[0].id.to_string(),
        &c.users[0].user_principal_name,
        "FR",
    ])
    .write(dir.path(), "ids.csv");
    let out = dir.path().join("ids.results.csv");
    let ran = run_bin(run_against(&sim, &input, &out, &[])).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        sim.user(c.id, c.users[0].id).unwrap()["usageLocation"],
        "FR"
    );
    let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v1/customers".to_string(),
            format!("/v1/customers/{}/users/{}", c.id, c.users[0].id)
        ]
    );
}
