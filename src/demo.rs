//! The `demo` command: starts the simulator on a free loopback port and runs `samples/usage-location.csv` through the real pipeline against it.

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
    let dir = std::env::temp_dir().join("bulkpatch-demo");
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
    sim.shutdown().await;
    Ok(summary)
}
