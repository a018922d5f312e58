//! The `demo` command: starts the simulator on a free loopback port and runs
//! `samples/usage-location.csv` through the real pipeline against it; then shows the day a
//! migration team has: export a customer's users, edit the file (every user to `DE`), and run
//! it with `--fields usage_location`, so that only the usage location is sent; last, a file of
//! three customer tenants through Microsoft Graph, with a token per tenant (GDAP), `$batch`
//! of 20 and one tenant refusing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use uuid::Uuid;

use crate::settings::credentials::Credentials;
use crate::settings::{Rate, Settings};
use crate::simulator::{Fault, SimConfig, Simulator};
use crate::{Error, Summary};

/// The sample input, as shipped in `samples/`.
pub const SAMPLE_CSV: &str = include_str!("../samples/usage-location.csv");
/// Users of the sample the simulator does not know (404, code 60002).
const UNKNOWN_USERS: [&str; 2] = [
    "82a13873-aa76-5abb-8036-3491f5e3cd10",
    "dd7500f9-9719-549d-b2e8-9a7cacb7e11e",
];
/// A user whose first request is throttled (the whole pool pauses for a second).
const THROTTLED_USER: &str = "a251e76b-00f8-5a9b-b253-57d006c4e944";
/// A user whose first request loses its connection (retried with the same MS-RequestId).
const DROPPED_USER: &str = "c041d64c-1d4a-5d1c-9a56-d6a9b47ce31e";

/// Options of `bulkpatch demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where the results go; default: `bulkpatch-demo/usage-location.results.csv` in the temp directory.
    pub out: Option<PathBuf>,
    pub show_progress: bool,
}

/// The simulator as the demo sets it up: realistic latency, a few 503s, two unknown users, one 429, one dropped connection.
pub fn demo_simulator_config() -> SimConfig {
    let id = |s: &str| Uuid::parse_str(s).expect("a valid demo id");
    SimConfig {
        unknown_users: UNKNOWN_USERS.iter().map(|u| id(u)).collect::<HashSet<_>>(),
        error_rate: 0.03,
        latency: Duration::from_millis(40),
        latency_jitter: Duration::from_millis(60),
        seed: 7,
        record: false,
        script: HashMap::from([
            (id(THROTTLED_USER), vec![Fault::Throttle { retry_after: 1 }]),
            (id(DROPPED_USER), vec![Fault::Drop]),
        ]),
        ..SimConfig::default()
    }
}

/// Runs the demo and returns the run's summary.
pub async fn run(options: DemoOptions) -> Result<Summary, Error> {
    let sim = Simulator::start(demo_simulator_config())
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the simulator: {e}"))?;
    // The files of the demo's second part go next to the results file.
    let dir = match options.out.as_ref().and_then(|o| o.parent()) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::env::temp_dir().join("bulkpatch-demo"),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let input = dir.join("usage-location.csv");
    std::fs::write(&input, SAMPLE_CSV)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", input.display()))?;

    let mut settings = Settings::with_defaults(&input);
    settings.out = options
        .out
        .unwrap_or_else(|| dir.join("usage-location.results.csv"));
    settings.force = true;
    settings.base_url = reqwest::Url::parse(&sim.base_url()).expect("the simulator URL parses");
    settings.credentials = Some(Credentials::Fixed(SecretString::from(
        sim.token().to_owned(),
    )));
    settings.rate = Rate::PerSecond(30.0);
    settings.show_progress = options.show_progress;
    settings.progress_interval = Duration::from_secs(2);

    eprintln!(
        "Demo: a Partner Center simulator is listening on {} (40-100 ms latency, 3% 503s, one 429, one dropped connection, two unknown users).",
        sim.base_url()
    );
    eprintln!(
        "Sending samples/usage-location.csv ({} rows, a few of them invalid on purpose) at {} with {} workers.\n",
        SAMPLE_CSV.lines().count() - 1,
        settings.rate,
        settings.concurrency
    );
    let summary = crate::run(settings).await?;
    eprint!("{}", crate::core::redact::for_terminal(&summary.to_text()));
    eprintln!("\nThe failed and invalid rows above are deliberate: open the results file to see each one's line and reason.");
    if summary.stopped.is_none() {
        export_edit_run(&sim, &dir).await?;
        through_graph(&dir).await?;
    }
    sim.shutdown().await;
    Ok(summary)
}

/// The Graph part's customer tenants (the third has no GDAP relationship) and users each.
const GRAPH_TENANTS: [u128; 3] = [
    0x6a7e_0001_0000_4000_8000_0000_0000_0001,
    0x6a7e_0002_0000_4000_8000_0000_0000_0002,
    0x6a7e_0003_0000_4000_8000_0000_0000_0003,
];
const GRAPH_USERS: u128 = 40;

/// Job titles and departments of three tenants' users through Graph: each tenant's own token,
/// up to 20 rows per `$batch`, each tenant at Graph's 20 writes/s; the tenant without a GDAP
/// relationship fails only its own rows.
async fn through_graph(dir: &std::path::Path) -> Result<(), Error> {
    let tenants = GRAPH_TENANTS.map(Uuid::from_u128);
    let oauth = crate::simulator::SimOAuth {
        refusing_tenants: HashMap::from([(tenants[2], 50020)]),
        ..crate::simulator::SimOAuth::default()
    };
    let sim = Simulator::start(SimConfig {
        oauth: Some(oauth.clone()),
        graph: crate::simulator::SimGraph {
            throttle: Some(crate::simulator::Throttle {
                per_second: 20,
                burst: 20,
            }),
            ..crate::simulator::SimGraph::default()
        },
        latency: Duration::from_millis(40),
        record: false,
        ..SimConfig::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot start the simulator: {e}"))?;
    let input = dir.join("graph-job-titles.csv");
    let mut csv = String::from("customer_id,user_id,job_title,department\n");
    for n in 1..=GRAPH_USERS {
        for (t, tenant) in tenants.iter().enumerate() {
            let user = Uuid::from_u128((tenant.as_u128() << 32) | n);
            sim.seed_graph_user(*tenant, user, serde_json::json!({"jobTitle": "Clerk"}));
            let department = if t == 0 { "Sales" } else { "<clear>" };
            csv.push_str(&format!("{tenant},{user},Engineer {n},{department}\n"));
        }
    }
    std::fs::write(&input, csv)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", input.display()))?;
    let refresh_token = sim.valid_refresh_tokens().pop().unwrap_or_default();
    let grant = crate::settings::credentials::RefreshGrant {
        token_url: reqwest::Url::parse(&sim.token_url("contoso.onmicrosoft.com"))
            .expect("the simulator URL parses"),
        client_id: oauth.client_id,
        client_secret: None,
        refresh_token: SecretString::from(refresh_token),
        refresh_token_file: None,
        scope: crate::targets::graph::SCOPE.to_string(),
        stored: None,
    };
    let mut settings = Settings::with_defaults(&input);
    settings.out = dir.join("graph-job-titles.results.csv");
    settings.force = true;
    settings.target = crate::targets::choose("graph").expect("the graph target");
    settings.batch = 20;
    settings.base_url = reqwest::Url::parse(&sim.graph_url()).expect("the simulator URL parses");
    settings.credentials = Some(Credentials::Refresh(grant));
    settings.rate = Rate::PerSecond(200.0);
    settings.show_progress = false;
    eprintln!(
        "\nLast, the same kind of work through Microsoft Graph (--target graph): {} rows setting job titles and departments (`<clear>` empties one) in 3 customer tenants, each with its own token redeemed from the sign-in (GDAP), up to 20 rows per $batch, each tenant at Graph's 20 writes/s. The third tenant has no GDAP relationship: its rows fail with AADSTS50020, the others go on.\n",
        GRAPH_USERS * 3
    );
    let summary = crate::run(settings).await?;
    eprint!("{}", crate::core::redact::for_terminal(&summary.to_text()));
    sim.shutdown().await;
    Ok(())
}

/// Export -> edit -> `run --fields usage_location`, against the demo's simulator.
async fn export_edit_run(sim: &Simulator, dir: &std::path::Path) -> Result<(), Error> {
    let token = || {
        Some(Credentials::Fixed(SecretString::from(
            sim.token().to_owned(),
        )))
    };
    let base = reqwest::Url::parse(&sim.base_url()).expect("the simulator URL parses");
    let exported = dir.join("contoso-users.csv");
    let mut run = Settings::with_defaults("");
    run.out = exported.clone();
    run.force = true;
    run.base_url = base.clone();
    run.credentials = token();
    run.show_progress = false;
    let customer = crate::settings::export::parse_choice("contoso.onmicrosoft.com")
        .map_err(|e| anyhow::anyhow!("the demo's customer: {e}"))?;
    let export = crate::settings::export::ExportSettings {
        run,
        selection: crate::settings::export::Selection::These(vec![customer]),
        delimiter: b',',
    };
    eprintln!("\nNext, a migration team's day: export contoso.onmicrosoft.com's users ...");
    let listed = crate::app::export::export(export).await?;
    eprintln!("{}", crate::core::redact::for_terminal(&listed.to_text()));

    let edited = dir.join("contoso-users.edited.csv");
    let rows = edit_usage_locations(&exported, &edited, "DE")
        .map_err(|e| anyhow::anyhow!("cannot edit {}: {e}", exported.display()))?;
    eprintln!(
        "... edit it (every usage_location set to DE: {}), and run it with --fields usage_location: names and UPNs in the file are context, never sent.\n",
        edited.display()
    );
    let mut settings = Settings::with_defaults(&edited);
    settings.out = dir.join("contoso-users.results.csv");
    settings.force = true;
    settings.base_url = base;
    settings.credentials = token();
    settings.fields = Some(vec![crate::targets::Field::UsageLocation]);
    settings.rate = Rate::PerSecond(30.0);
    settings.show_progress = false;
    let summary = crate::run(settings).await?;
    eprintln!(
        "{} rows sent with only usageLocation in each body:\n{}",
        rows,
        crate::core::redact::for_terminal(&summary.to_text())
    );
    Ok(())
}

/// Copies the export, every `usage_location` cell set to `value`; returns the data rows.
fn edit_usage_locations(
    from: &std::path::Path,
    to: &std::path::Path,
    value: &str,
) -> Result<u64, csv::Error> {
    let mut reader = csv::Reader::from_path(from)?;
    let headers = reader.headers()?.clone();
    let at = headers.iter().position(|h| h == "usage_location");
    let mut writer = csv::Writer::from_path(to)?;
    writer.write_record(&headers)?;
    let mut rows = 0;
    for record in reader.records() {
        let record = record?;
        let cells = record
            .iter()
            .enumerate()
            .map(|(i, cell)| if Some(i) == at { value } else { cell });
        writer.write_record(cells)?;
        rows += 1;
    }
    writer.flush()?;
    Ok(rows)
}
