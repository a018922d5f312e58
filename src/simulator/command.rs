//! The `simulate` and `demo` commands' arguments: the simulator's flags and their conversion to a [`SimConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use uuid::Uuid;

use super::{SimConfig, SimOAuth, Throttle, WindowQuota};
use crate::settings::Rate;

pub const SIMULATE_EXAMPLES: &str = "\
Examples:
  bulkpatch simulate --port 8400
  bulkpatch simulate --port 8400 --throttle 20/s --throttle-burst 5 --error-rate 0.02 --latency 100ms
  bulkpatch simulate --unknown-user 4b10bf41-ab11-40e3-8c53-cd67849b50de --drop-rate 0.01 --seed 42
  bulkpatch simulate --oauth-client-id my-app --token-lifetime 2m   # also a token endpoint
  bulkpatch simulate --directory users.csv --page-size 20   # your own customers and users

Then, in another terminal:
  BULKPATCH_TOKEN=<printed token> bulkpatch run users.csv --base-url http://127.0.0.1:8400";

pub const DEMO_EXAMPLES: &str = "\
Examples:
  bulkpatch demo
  cargo run --release -- demo
  bulkpatch demo --out demo.results.csv";

#[derive(Debug, Args)]
pub struct SimulateCmd {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The bearer token to accept [default: a random one, printed at start]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Server-wide request limit, as N/s; beyond it, 429 with Retry-After.
    #[arg(long, value_name = "RATE")]
    pub throttle: Option<String>,
    /// Burst allowed by --throttle.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub throttle_burst: u32,
    /// Per-customer-tenant request limit, as N/s.
    #[arg(long, value_name = "RATE")]
    pub customer_throttle: Option<String>,
    /// Graph's write limit per tenant (`--target graph`), as N/s: each request, or each
    /// `$batch` sub-request, beyond it is answered 429 with a fractional Retry-After.
    #[arg(long, value_name = "RATE")]
    pub graph_throttle: Option<String>,
    /// Server-wide fixed-window quota, as N/DURATION (`600/1m`), announced on every answer in
    /// IETF RateLimit-* headers; beyond it, 429 until the window ends.
    #[arg(long, value_name = "N/DURATION")]
    pub quota: Option<String>,
    /// Fraction of requests answered 500 or 503.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub error_rate: f64,
    /// Fraction of requests whose connection is dropped without an answer.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub drop_rate: f64,
    /// Fraction of requests answered only after --slow-delay (to exceed a client timeout).
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub slow_rate: f64,
    /// Delay of a slow answer.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub slow_delay: String,
    /// Latency added to every request.
    #[arg(long, default_value = "0ms", value_name = "DURATION")]
    pub latency: String,
    /// Random extra latency, up to this much.
    #[arg(long, default_value = "0ms", value_name = "DURATION")]
    pub latency_jitter: String,
    /// Seed of the fault decisions (the same seed gives the same faults).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A user id to answer 404 (code 60002); repeatable.
    #[arg(long, value_name = "GUID")]
    pub unknown_user: Vec<Uuid>,
    /// A customer id to answer 404 (code 60003); repeatable.
    #[arg(long, value_name = "GUID")]
    pub unknown_customer: Vec<Uuid>,
    /// A customer id to answer 403 (code 20002, no relationship); repeatable.
    #[arg(long, value_name = "GUID")]
    pub forbidden_customer: Vec<Uuid>,
    /// Serve a token endpoint (refresh-token grant) for this client id at /{tenant}/oauth2/v2.0/token.
    #[arg(long, value_name = "ID")]
    pub oauth_client_id: Option<String>,
    /// Lifetime of the access tokens the token endpoint issues.
    #[arg(
        long,
        default_value = "1h",
        value_name = "DURATION",
        requires = "oauth_client_id"
    )]
    pub token_lifetime: String,
    /// The customers and users to serve (JSON, or CSV in `export`'s columns); users and
    /// customers outside it are answered 404 [default: the demo's customers and users]
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// The most items one page of a collection holds.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=500))]
    pub page_size: u16,
}

impl SimulateCmd {
    /// The simulator configuration these flags describe.
    pub fn to_config(&self) -> Result<SimConfig, String> {
        let throttle = |text: &Option<String>, burst: u32| -> Result<Option<Throttle>, String> {
            let Some(t) = text else { return Ok(None) };
            match Rate::parse(t).map_err(|m| format!("--throttle {m}"))? {
                Rate::PerSecond(r) if r >= 1.0 => Ok(Some(Throttle {
                    per_second: r.round() as u32,
                    burst: burst.max(1),
                })),
                _ => Err(format!("a throttle must be at least 1/s (got `{t}`)")),
            }
        };
        let fraction = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(format!("--{name} must be between 0 and 1 (got {v})"))
            }
        };
        let zero_ok = |name: &str, v: &str| -> Result<Duration, String> {
            let d = humantime::parse_duration(v.trim())
                .map_err(|e| format!("--{name} is not a duration like `100ms` ({e}): `{v}`"))?;
            crate::core::checked::check(d, crate::core::checked::SIMULATOR_DELAY, v)
                .map_err(|m| format!("--{name} {m}"))
        };
        let window_quota = match &self.quota {
            None => None,
            Some(q) => {
                let (limit, window) = q.split_once('/').ok_or_else(|| {
                    format!("--quota must look like `600/1m` (requests per window), not `{q}`")
                })?;
                let limit = limit.trim().parse::<u32>().ok().filter(|l| *l > 0);
                let window = humantime::parse_duration(window.trim()).ok().filter(|w| {
                    (Duration::from_secs(1)..=crate::core::checked::SIMULATOR_DELAY.max).contains(w)
                });
                match (limit, window) {
                    (Some(limit), Some(window)) => Some(WindowQuota { limit, window }),
                    _ => {
                        return Err(format!(
                            "--quota needs at least 1 request per window of 1s to 1day, like `600/1m` (got `{q}`)"
                        ))
                    }
                }
            }
        };
        let mut config = SimConfig {
            window_quota,
            throttle: throttle(&self.throttle, self.throttle_burst)?,
            customer_throttle: throttle(&self.customer_throttle, self.throttle_burst)?,
            error_rate: fraction("error-rate", self.error_rate)?,
            drop_rate: fraction("drop-rate", self.drop_rate)?,
            slow_rate: fraction("slow-rate", self.slow_rate)?,
            slow_delay: zero_ok("slow-delay", &self.slow_delay)?,
            latency: zero_ok("latency", &self.latency)?,
            latency_jitter: zero_ok("latency-jitter", &self.latency_jitter)?,
            seed: self.seed,
            record: false,
            unknown_users: self.unknown_user.iter().copied().collect(),
            unknown_customers: self.unknown_customer.iter().copied().collect(),
            forbidden_customers: self.forbidden_customer.iter().copied().collect(),
            directory: match &self.directory {
                Some(path) => Some(super::Directory::read(path)?),
                None => None,
            },
            page_size: usize::from(self.page_size),
            ..SimConfig::default()
        };
        config.graph.throttle = throttle(&self.graph_throttle, self.throttle_burst)?;
        if let Some(t) = &self.token {
            config.token = t.clone();
        }
        if let Some(client_id) = &self.oauth_client_id {
            config.oauth = Some(SimOAuth {
                client_id: client_id.clone(),
                access_token_lifetime: zero_ok("token-lifetime", &self.token_lifetime)?,
                ..SimOAuth::default()
            });
        }
        Ok(config)
    }
}

#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Results file [default: usage-location.results.csv in a bulkpatch-demo temp folder]
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs the simulator in the foreground until Ctrl-C, printing its base URL and token.
pub async fn simulate(config: super::SimConfig, port: u16) -> Result<(), crate::Error> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let sim = super::Simulator::start_on(config, addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the simulator on {addr}: {e}"))?;
    println!("Partner Center simulator listening");
    println!("  base URL: {}", sim.base_url());
    println!("  token:    {}", sim.token());
    println!(
        "  Graph:    {} (--target graph; tenant {})",
        sim.graph_url(),
        sim.graph_tenant()
    );
    if let Some(refresh) = sim.valid_refresh_tokens().pop() {
        println!("  token endpoint: {}", sim.token_url("contoso"));
        println!("  refresh token:  {refresh}");
        println!("  sign-in authority: {} (bulkpatch login --authority {} --client-id ID; approve device codes at {}{})", sim.base_url(), sim.base_url(), sim.base_url(), super::authority_device_path());
    }
    println!("Try: BULKPATCH_TOKEN={} bulkpatch run samples/usage-location.csv --base-url {} --out /tmp/sim.results.csv", sim.token(), sim.base_url());
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    Ok(())
}
