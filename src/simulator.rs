//! An in-process simulator of the Partner Center customer-users API, with seedable fault injection, for tests, the demo and benchmarks.
//!
//! [`Simulator::start`] binds `127.0.0.1:0` and serves
//! `PATCH` and `GET` on `/v1/customers/{customer}/users/{user}` the way the
//! real service does (see `shared/reference/partner-center-users.md`):
//! bearer-token check, GUID checks, unknown/forbidden tenants and users,
//! Entra-style validation of the PATCH body, and the error body shapes of
//! Partner Center (`{"code":N,"description":..,"data":[],"source":"PartnerFD"}`)
//! and of its throttling layer (`{"statusCode":429,"message":..}`).
//!
//! Each request goes through these steps, in order:
//! 1. it is recorded (when [`SimConfig::record`] is set) and counted;
//! 2. the fixed latency plus a random jitter elapses;
//! 3. a scripted [`Fault`] for its user applies (the n-th request for a user
//!    id gets `script[user][n]`);
//! 4. the server-wide throttle, then the per-customer throttle, may refuse it
//!    with a 429 and a `Retry-After`;
//! 5. random faults (drop, then 500/503, then slow) are drawn from a `StdRng`
//!    seeded with (seed, user id, that user's request index), so a run is
//!    reproducible whatever the arrival order;
//! 6. the bearer token is checked;
//! 7. the route and both path GUIDs are checked;
//! 8. unknown customers, forbidden customers and unknown users are refused;
//! 9. the PATCH body is validated and merged into the stored user, or the GET
//!    answers the stored (or a synthesized) user.
//!
//! Connections are served by a hand-written accept loop so that a single
//! connection can be closed without any response (the `Drop` fault).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

/// Largest request body read; anything bigger is answered 400 (code 800002).
const MAX_BODY: usize = 1 << 20;

/// The fields a PATCH may carry.
const KNOWN_FIELDS: [&str; 7] = [
    "usageLocation",
    "displayName",
    "firstName",
    "lastName",
    "userPrincipalName",
    "passwordProfile",
    "attributes",
];

/// The symbols Entra accepts in a password (space included).
const PASSWORD_SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";

const PASSWORD_REJECTED: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";

const ACCESS_DENIED: &str = "Access denied: the access token is missing, invalid or expired.";

static MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");
static MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");

/// How the simulator behaves. Start from [`SimConfig::default`] and change what a test needs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The accepted bearer token. Default: `"sim-"` followed by a random uuid v4 in simple form.
    pub token: String,
    /// Users answered 404 with code 60002.
    pub unknown_users: HashSet<Uuid>,
    /// Customer tenants answered 404 with code 60003.
    pub unknown_customers: HashSet<Uuid>,
    /// Customer tenants answered 403 with code 20002 (no relationship).
    pub forbidden_customers: HashSet<Uuid>,
    /// Server-wide limit (the per-partner limit).
    pub throttle: Option<Throttle>,
    /// Per customer-tenant limit.
    pub customer_throttle: Option<Throttle>,
    /// A server-wide fixed-window quota, announced on every answer in IETF rate-limit headers.
    pub window_quota: Option<WindowQuota>,
    /// Fraction of requests answered 500 or 503 (half each), with a Partner Center error body.
    pub error_rate: f64,
    /// Fraction of requests whose connection is closed with no response.
    pub drop_rate: f64,
    /// Fraction of requests answered only after `slow_delay`.
    pub slow_rate: f64,
    /// Delay of the slow requests. Default 60 s.
    pub slow_delay: Duration,
    /// Fixed latency added to every request.
    pub latency: Duration,
    /// Plus a uniform random `0..=latency_jitter`.
    pub latency_jitter: Duration,
    /// Seed of the random faults and jitter.
    pub seed: u64,
    /// Record every request (see [`Simulator::requests`]). Default true.
    pub record: bool,
    /// By user id: the n-th request (0-based) for that user gets `script[n]`;
    /// past the end, normal handling.
    pub script: HashMap<Uuid, Vec<Fault>>,
    /// An OAuth 2.0 token endpoint (refresh-token grant) at `/{tenant}/oauth2/v2.0/token`;
    /// the access tokens it issues are accepted by the API until they expire.
    pub oauth: Option<SimOAuth>,
}

/// The simulator's token endpoint, like Entra ID's for Partner Center's App+User flow.
#[derive(Clone, Debug)]
pub struct SimOAuth {
    pub client_id: String,
    /// Required from the client when set.
    pub client_secret: Option<String>,
    /// The refresh token that is valid at start.
    pub refresh_token: String,
    /// Lifetime of the access tokens it issues (`expires_in`, whole seconds, at least 1).
    pub access_token_lifetime: Duration,
    /// Each refresh returns a new refresh token and the used one stops working.
    pub rotate_refresh_tokens: bool,
    /// Refresh requests after this many successful ones answer `invalid_grant` (AADSTS700082).
    pub fail_after: Option<usize>,
}

impl Default for SimOAuth {
    fn default() -> Self {
        SimOAuth {
            client_id: "00000000-0000-4000-8000-00000000c11e".into(),
            client_secret: None,
            refresh_token: format!("sim-refresh-{}", Uuid::new_v4().simple()),
            access_token_lifetime: Duration::from_secs(3600),
            rotate_refresh_tokens: true,
            fail_after: None,
        }
    }
}

/// One request to the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub received_at: Instant,
    /// The form fields, secrets included (for tests to check what the client sent).
    pub form: HashMap<String, String>,
    /// HTTP status of the answer.
    pub status: u16,
}

/// Token-endpoint state.
#[derive(Default)]
struct OAuthState {
    valid_refresh: HashSet<String>,
    issued_access: HashMap<String, Instant>,
    /// Every token ever issued, access and refresh (for leak checks).
    issued: Vec<String>,
    requests: Vec<TokenRequest>,
    successes: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            token: format!("sim-{}", Uuid::new_v4().simple()),
            unknown_users: HashSet::new(),
            unknown_customers: HashSet::new(),
            forbidden_customers: HashSet::new(),
            throttle: None,
            customer_throttle: None,
            window_quota: None,
            error_rate: 0.0,
            drop_rate: 0.0,
            slow_rate: 0.0,
            slow_delay: Duration::from_secs(60),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            seed: 0,
            record: true,
            script: HashMap::new(),
            oauth: None,
        }
    }
}

/// A rate limit: `per_second` requests a second, with bursts of up to `burst`
/// (both taken as at least 1).
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub per_second: u32,
    pub burst: u32,
}

/// `limit` requests per fixed `window`, the windows counted from the simulator's start. Every
/// answer carries `RateLimit-Policy: {limit};w={window}`, `RateLimit-Limit`,
/// `RateLimit-Remaining` and `RateLimit-Reset` (whole seconds, rounded up); past the limit,
/// 429 with `Retry-After` until the window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowQuota {
    pub limit: u32,
    pub window: Duration,
}

/// The count of the current window of a [`WindowQuota`].
#[derive(Debug)]
struct WindowCount {
    start: Instant,
    used: u32,
}

/// What one request got from the window quota: the headers to send, and whether it may go on.
#[derive(Clone, Copy, Debug)]
struct QuotaAnswer {
    quota: WindowQuota,
    remaining: u32,
    reset_secs: u64,
    allowed: bool,
}

impl QuotaAnswer {
    fn add_headers(&self, headers: &mut HeaderMap) {
        let window = self.quota.window.as_secs().max(1);
        let policy = format!("{};w={window}", self.quota.limit);
        for (name, value) in [
            ("ratelimit-policy", policy),
            ("ratelimit-limit", self.quota.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_secs.to_string()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

/// A scripted answer for one request of one user.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Handle the request normally (throttles and random faults still apply).
    Normal,
    /// That status with a Partner Center error body (401 is answered as [`Fault::Unauthorized`]).
    Status(u16),
    /// 429 with `Retry-After: N` and the throttling body shape.
    Throttle { retry_after: u64 },
    /// Close the connection without any response.
    Drop,
    /// Wait that long, then handle normally.
    Slow(Duration),
    /// That status with an HTML body (a proxy's error page), Content-Type text/html.
    Html(u16),
    /// That status with an empty body.
    Empty(u16),
    /// 401 as for a bad token.
    Unauthorized,
    /// That status with a Partner Center error body whose description quotes the request body
    /// (as some services do): a client must not copy it anywhere unredacted.
    Echo(u16),
}

/// One request as the simulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: Instant,
    pub received_wall: SystemTime,
    /// None when dropped or when the client went away before the answer.
    pub status: Option<u16>,
    pub responded_at: Option<Instant>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Counters kept even when recording is off.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimStats {
    /// Every request received.
    pub received: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered 429.
    pub throttled: u64,
    /// Answered 5xx.
    pub errors: u64,
    /// Connections closed with no response.
    pub dropped: u64,
    /// Answered 4xx other than 429.
    pub client_errors: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    ok: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    client_errors: AtomicU64,
}

/// Everything the handler needs, shared by all connections.
struct Shared {
    token: String,
    unknown_users: HashSet<Uuid>,
    unknown_customers: HashSet<Uuid>,
    forbidden_customers: HashSet<Uuid>,
    server_limiter: Option<DefaultDirectRateLimiter>,
    customer_limiter: Option<DefaultKeyedRateLimiter<Uuid>>,
    window_quota: Option<(WindowQuota, Mutex<WindowCount>)>,
    error_rate: f64,
    drop_rate: f64,
    slow_rate: f64,
    slow_delay: Duration,
    latency: Duration,
    latency_jitter: Duration,
    seed: u64,
    record: bool,
    script: HashMap<Uuid, Vec<Fault>>,
    /// Whether requests need a per-user index (script or random draws).
    needs_index: bool,
    /// Whether requests need random draws.
    needs_draws: bool,
    user_counts: Mutex<HashMap<Uuid, u64>>,
    recorded: Mutex<Vec<RecordedRequest>>,
    /// What was written to each user: only the fields set over its synthesized default, so
    /// that a run over a million users does not make the simulator the bottleneck (zeroing
    /// fresh pages for whole user objects once cost a fifth of its CPU).
    users: Mutex<HashMap<(Uuid, Uuid), Overrides>>,
    counters: Counters,
    oauth: Option<SimOAuth>,
    oauth_state: Mutex<OAuthState>,
}

/// Handed to the handler of each request: cancelling it closes the connection.
#[derive(Clone)]
struct ConnCtl(CancellationToken);

/// The running simulator. Dropping it stops the server.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1` with a port chosen by the system.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a simulator on the given address.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let router = Router::new()
            .route(
                "/{tenant}/oauth2/v2.0/token",
                axum::routing::post(token_endpoint),
            )
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, router, shutdown.clone()));
        Ok(Simulator {
            shared,
            addr,
            shutdown,
            task: Some(task),
        })
    }

    /// The token endpoint's URL for `tenant` (only served when [`SimConfig::oauth`] is set).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url())
    }

    /// Every request to the token endpoint, in arrival order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.oauth_state).requests.clone()
    }

    /// Every token the token endpoint issued or started with (access and refresh).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared.oauth_state).issued.clone()
    }

    /// The refresh tokens valid now.
    pub fn valid_refresh_tokens(&self) -> Vec<String> {
        lock(&self.shared.oauth_state)
            .valid_refresh
            .iter()
            .cloned()
            .collect()
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted bearer token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// A snapshot of the recorded requests, in arrival order (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.recorded).clone()
    }

    pub fn stats(&self) -> SimStats {
        let c = &self.shared.counters;
        SimStats {
            received: c.received.load(Ordering::Relaxed),
            ok: c.ok.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            client_errors: c.client_errors.load(Ordering::Relaxed),
        }
    }

    /// The stored state of a user, None if it was never written or seeded.
    /// A password set by a PATCH shows only as
    /// `"passwordProfile":{"forceChangePassword":..,"passwordSet":true}`.
    pub fn user(&self, customer: Uuid, user: Uuid) -> Option<Value> {
        let overrides = lock(&self.shared.users).get(&(customer, user)).cloned()?;
        Some(Value::Object(current_user(customer, user, &overrides)))
    }

    /// Presets a user's current fields, over the synthesized default user.
    /// A `passwordProfile.password` given here is not kept.
    pub fn seed_user(&self, customer: Uuid, user: Uuid, fields: Value) {
        let mut stored = Overrides::new();
        if let Value::Object(fields) = fields {
            for (k, v) in fields {
                if k == "passwordProfile" {
                    let force = v
                        .get("forceChangePassword")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    set(
                        &mut stored,
                        Cow::Borrowed(PASSWORD_PROFILE),
                        stored_password_profile(force),
                    );
                } else {
                    set(&mut stored, Cow::Owned(k), v);
                }
            }
        }
        lock(&self.shared.users).insert((customer, user), stored);
    }

    /// Stops the server and waits for its connections to close.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Shared {
    fn new(c: SimConfig) -> Shared {
        let needs_draws = c.error_rate > 0.0
            || c.drop_rate > 0.0
            || c.slow_rate > 0.0
            || !c.latency_jitter.is_zero();
        Shared {
            needs_index: needs_draws || !c.script.is_empty(),
            needs_draws,
            server_limiter: c.throttle.map(|t| RateLimiter::direct(quota(t))),
            customer_limiter: c.customer_throttle.map(|t| RateLimiter::keyed(quota(t))),
            window_quota: c.window_quota.map(|q| {
                let count = WindowCount {
                    start: Instant::now(),
                    used: 0,
                };
                (q, Mutex::new(count))
            }),
            token: c.token,
            unknown_users: c.unknown_users,
            unknown_customers: c.unknown_customers,
            forbidden_customers: c.forbidden_customers,
            error_rate: c.error_rate,
            drop_rate: c.drop_rate,
            slow_rate: c.slow_rate,
            slow_delay: c.slow_delay,
            latency: c.latency,
            latency_jitter: c.latency_jitter,
            seed: c.seed,
            record: c.record,
            script: c.script,
            user_counts: Mutex::new(HashMap::new()),
            recorded: Mutex::new(Vec::new()),
            users: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            oauth_state: Mutex::new(OAuthState {
                valid_refresh: c.oauth.iter().map(|o| o.refresh_token.clone()).collect(),
                issued: c.oauth.iter().map(|o| o.refresh_token.clone()).collect(),
                ..OAuthState::default()
            }),
            oauth: c.oauth,
        }
    }

    /// The 0-based index of this request among the requests for `user`.
    fn next_index(&self, user: Uuid) -> u64 {
        let mut counts = lock(&self.user_counts);
        let n = counts.entry(user).or_insert(0);
        let index = *n;
        *n += 1;
        index
    }

    /// Random decisions for the `index`-th request of `user`: always the same
    /// draws in the same order, so they depend only on (seed, user, index).
    fn draws(&self, user: Uuid, index: u64) -> Draws {
        if !self.needs_draws {
            return Draws::default();
        }
        let mut rng = StdRng::seed_from_u64(fault_seed(self.seed, user, index));
        let drop = rng.random::<f64>() < self.drop_rate;
        let error = rng.random::<f64>() < self.error_rate;
        let error_503 = rng.random::<bool>();
        let slow = rng.random::<f64>() < self.slow_rate;
        let jitter_nanos = u64::try_from(self.latency_jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if jitter_nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(rng.random_range(0..=jitter_nanos))
        };
        Draws {
            drop,
            error: error.then_some(if error_503 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            }),
            slow,
            jitter,
        }
    }

    /// Fills in the answer of a recorded request and counts it.
    fn answered(&self, record: Option<usize>, status: StatusCode) {
        let c = &self.counters;
        let counter = match status.as_u16() {
            200..=299 => &c.ok,
            429 => &c.throttled,
            400..=499 => &c.client_errors,
            500..=599 => &c.errors,
            _ => &c.ok,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = record {
            if let Some(r) = lock(&self.recorded).get_mut(i) {
                r.status = Some(status.as_u16());
                r.responded_at = Some(Instant::now());
            }
        }
    }

    /// Bearer token check; the scheme is case-insensitive.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        if token == self.token {
            return true;
        }
        self.oauth.is_some()
            && lock(&self.oauth_state)
                .issued_access
                .get(token)
                .is_some_and(|expires| *expires > Instant::now())
    }

    /// Server-wide then per-customer throttle; Err carries the Retry-After seconds.
    /// Counts a request against the window quota, if there is one.
    fn take_quota(&self) -> Option<QuotaAnswer> {
        let (quota, count) = self.window_quota.as_ref()?;
        let window = quota.window.max(Duration::from_millis(1));
        let now = Instant::now();
        let mut count = lock(count);
        let elapsed = now.duration_since(count.start);
        if elapsed >= window {
            let windows = (elapsed.as_nanos() / window.as_nanos()) as u32;
            count.start += window * windows;
            count.used = 0;
        }
        let allowed = count.used < quota.limit;
        if allowed {
            count.used += 1;
        }
        let reset = (count.start + window).saturating_duration_since(now);
        Some(QuotaAnswer {
            quota: *quota,
            remaining: quota.limit - count.used,
            reset_secs: retry_after_secs(reset),
            allowed,
        })
    }

    fn throttle(&self, customer: Option<Uuid>) -> Result<(), u64> {
        if let Some(l) = &self.server_limiter {
            if let Err(not_until) = l.check() {
                return Err(retry_after_secs(not_until.wait_time_from(l.clock().now())));
            }
        }
        if let (Some(l), Some(customer)) = (&self.customer_limiter, customer) {
            if let Err(not_until) = l.check_key(&customer) {
                return Err(retry_after_secs(not_until.wait_time_from(l.clock().now())));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Draws {
    drop: bool,
    error: Option<StatusCode>,
    slow: bool,
    jitter: Duration,
}

fn quota(t: Throttle) -> Quota {
    let per_second = NonZeroU32::new(t.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(t.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable (platform- and run-independent) mix of seed, user and index.
fn fault_seed(seed: u64, user: Uuid, index: u64) -> u64 {
    let (hi, lo) = user.as_u64_pair();
    let mut h = splitmix64(seed);
    h = splitmix64(h ^ hi);
    h = splitmix64(h ^ lo);
    splitmix64(h ^ index)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Serving

async fn accept_loop(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, router.clone(), shutdown.child_token()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "simulator: accept failed");
                    // Out of file descriptors and the like: back off a little
                    // instead of spinning.
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    // Every connection's token is a child of `shutdown`: they are all ending.
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(stream: TcpStream, router: Router, token: CancellationToken) {
    let ctl = ConnCtl(token.clone());
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        router.clone().oneshot(req)
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        // Shutdown, or a `Drop` fault: dropping the connection closes the
        // socket without writing anything more.
        _ = token.cancelled() => {}
    }
}

/// Everything a response needs from its request.
struct Ctx {
    shared: Arc<Shared>,
    record: Option<usize>,
    correlation_id: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    /// The window quota's headers for this answer.
    quota: Option<QuotaAnswer>,
}

impl Ctx {
    /// Adds the echoed headers, records and counts the answer.
    fn finish(&self, mut resp: Response) -> Response {
        let headers = resp.headers_mut();
        if let Some(v) = &self.correlation_id {
            headers.insert(MS_CORRELATION_ID.clone(), v.clone());
        }
        if let Some(v) = &self.request_id {
            headers.insert(MS_REQUEST_ID.clone(), v.clone());
        }
        if let Some(quota) = &self.quota {
            quota.add_headers(headers);
        }
        self.shared.answered(self.record, resp.status());
        resp
    }

    /// Closes the connection with no response: never returns.
    async fn drop_connection(&self, conn: Option<&ConnCtl>) -> Response {
        self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(conn) = conn {
            conn.0.cancel();
        }
        std::future::pending::<Response>().await
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let received_at = Instant::now();
    let received_wall = SystemTime::now();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await;
    let body_ok = body.is_ok();
    let body = body.unwrap_or_default();

    // 1. Record and count.
    shared.counters.received.fetch_add(1, Ordering::Relaxed);
    let record = shared.record.then(|| {
        let rec = RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            received_at,
            received_wall,
            status: None,
            responded_at: None,
        };
        let mut recorded = lock(&shared.recorded);
        recorded.push(rec);
        recorded.len() - 1
    });
    let mut ctx = Ctx {
        shared: Arc::clone(&shared),
        record,
        correlation_id: parts.headers.get(&MS_CORRELATION_ID).cloned(),
        request_id: parts.headers.get(&MS_REQUEST_ID).cloned(),
        quota: None,
    };
    let conn = parts.extensions.get::<ConnCtl>();

    let route = parse_route(parts.uri.path());
    let customer = route.and_then(|(c, _)| parse_guid(c));
    let user = route.and_then(|(_, u)| parse_guid(u));
    let user_key = user.unwrap_or(Uuid::nil());
    let index = if shared.needs_index {
        shared.next_index(user_key)
    } else {
        0
    };
    let draws = shared.draws(user_key, index);

    // 2. Latency.
    let delay = shared.latency + draws.jitter;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    // 3. Scripted fault.
    let scripted = shared
        .script
        .get(&user_key)
        .and_then(|s| usize::try_from(index).ok().and_then(|i| s.get(i)));
    match scripted {
        None | Some(Fault::Normal) => {}
        Some(Fault::Status(401) | Fault::Unauthorized) => return ctx.finish(unauthorized()),
        Some(Fault::Status(s)) => return ctx.finish(status_error(*s)),
        Some(Fault::Throttle { retry_after }) => return ctx.finish(throttled(*retry_after)),
        Some(Fault::Drop) => return ctx.drop_connection(conn).await,
        Some(Fault::Slow(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Html(s)) => return ctx.finish(html_error(*s)),
        Some(Fault::Empty(s)) => return ctx.finish(empty(*s)),
        Some(Fault::Echo(s)) => {
            let status = StatusCode::from_u16(*s).unwrap_or(StatusCode::BAD_REQUEST);
            let quoted = format!("Invalid request: {}", String::from_utf8_lossy(&body));
            return ctx.finish(pc_error(status, 800002, &quoted));
        }
    }

    // 4. Throttles.
    ctx.quota = shared.take_quota();
    if let Some(q) = ctx.quota.filter(|q| !q.allowed) {
        return ctx.finish(throttled(q.reset_secs));
    }
    if let Err(retry_after) = shared.throttle(customer) {
        return ctx.finish(throttled(retry_after));
    }

    // 5. Random faults.
    if draws.drop {
        return ctx.drop_connection(conn).await;
    }
    if let Some(status) = draws.error {
        return ctx.finish(status_error(status.as_u16()));
    }
    if draws.slow {
        tokio::time::sleep(shared.slow_delay).await;
    }

    // 6. Authentication.
    if !shared.authorized(&parts.headers) {
        return ctx.finish(unauthorized());
    }

    // 7. Route and ids.
    let Some(_) = route else {
        return ctx.finish(pc_error(
            StatusCode::NOT_FOUND,
            800002,
            "The requested resource was not found.",
        ));
    };
    if parts.method != Method::GET && parts.method != Method::PATCH {
        let mut resp = pc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            800002,
            "The requested method is not supported by this resource.",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, PATCH"));
        return ctx.finish(resp);
    }
    let (Some(customer), Some(user)) = (customer, user) else {
        return ctx.finish(pc_error(
            StatusCode::BAD_REQUEST,
            800002,
            "The customer tenant id and the user id must be GUIDs.",
        ));
    };

    // 8. Unknown or forbidden.
    if shared.unknown_customers.contains(&customer) {
        return ctx.finish(pc_error(
            StatusCode::NOT_FOUND,
            60003,
            "Customer tenant not found.",
        ));
    }
    if shared.forbidden_customers.contains(&customer) {
        return ctx.finish(pc_error(
            StatusCode::FORBIDDEN,
            20002,
            "The partner does not have a relationship with this customer.",
        ));
    }
    if shared.unknown_users.contains(&user) {
        return ctx.finish(pc_error(
            StatusCode::NOT_FOUND,
            60002,
            "User object id not found.",
        ));
    }

    // 9. The operation.
    if parts.method == Method::GET {
        let overrides = lock(&shared.users)
            .get(&(customer, user))
            .cloned()
            .unwrap_or_default();
        let mut current = current_user(customer, user, &overrides);
        current.remove(PASSWORD_PROFILE);
        return ctx.finish(json_response(StatusCode::OK, &Value::Object(current)));
    }
    if !body_ok {
        return ctx.finish(pc_error(
            StatusCode::BAD_REQUEST,
            800002,
            "The request body could not be read or is too large.",
        ));
    }
    match validate_patch(&body) {
        Err(e) => ctx.finish(pc_error(e.status, e.code, &e.description)),
        Ok(patch) => {
            let overrides = {
                let mut users = lock(&shared.users);
                let stored = users.entry((customer, user)).or_default();
                for (k, v) in patch.fields {
                    set(stored, Cow::Borrowed(k), Value::String(v));
                }
                if let Some((_, force)) = &patch.password {
                    set(
                        stored,
                        Cow::Borrowed(PASSWORD_PROFILE),
                        stored_password_profile(*force),
                    );
                }
                stored.clone()
            };
            let mut updated = current_user(customer, user, &overrides);
            updated.remove(PASSWORD_PROFILE);
            if let Some((password, force)) = patch.password {
                // The real API echoes the new password: so does the simulator,
                // so that clients prove they never leak response bodies.
                updated.insert(
                    "passwordProfile".to_owned(),
                    json!({"forceChangePassword": force, "password": password}),
                );
            }
            ctx.finish(json_response(StatusCode::OK, &Value::Object(updated)))
        }
    }
}

/// `/v1/customers/{customer}/users/{user}` -> (customer, user), raw.
/// `POST /{tenant}/oauth2/v2.0/token` with the refresh-token grant, answering like Entra ID.
async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(config) = &shared.oauth else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "error_description": "No token endpoint is configured."}),
        );
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let mut state = lock(&shared.oauth_state);
    let oauth_error = |status: StatusCode, error: &str, code: u32, text: &str| {
        json_response(
            status,
            &json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {text} Trace ID: {} Correlation ID: {} Timestamp: 2026-01-01 00:00:00Z", Uuid::new_v4(), Uuid::new_v4()),
                "error_codes": [code],
                "timestamp": "2026-01-01 00:00:00Z",
            }),
        )
    };
    let answer = if field("grant_type") != "refresh_token" {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )
    } else if field("client_id") != config.client_id {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        )
    } else if config
        .client_secret
        .as_deref()
        .is_some_and(|secret| field("client_secret") != secret)
    {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        )
    } else if !state.valid_refresh.contains(field("refresh_token"))
        || config.fail_after.is_some_and(|n| state.successes >= n)
    {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on 2025-01-01 and was inactive for 90.00:00:00.",
        )
    } else {
        state.successes += 1;
        let lifetime = config.access_token_lifetime.max(Duration::from_secs(1));
        let access = format!("sim-access-{}", Uuid::new_v4().simple());
        state
            .issued_access
            .insert(access.clone(), Instant::now() + lifetime);
        state.issued.push(access.clone());
        let refresh = if config.rotate_refresh_tokens {
            let used = field("refresh_token").to_string();
            state.valid_refresh.remove(&used);
            let new = format!("sim-refresh-{}", Uuid::new_v4().simple());
            state.valid_refresh.insert(new.clone());
            state.issued.push(new.clone());
            new
        } else {
            field("refresh_token").to_string()
        };
        json_response(
            StatusCode::OK,
            &json!({
                "token_type": "Bearer",
                "scope": field("scope"),
                "expires_in": lifetime.as_secs(),
                "ext_expires_in": lifetime.as_secs(),
                "access_token": access,
                "refresh_token": refresh,
            }),
        )
    };
    state.requests.push(TokenRequest {
        received_at: Instant::now(),
        form: form.clone(),
        status: answer.status().as_u16(),
    });
    answer
}

fn parse_route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1/customers/")?;
    let (customer, rest) = rest.split_once('/')?;
    let user = rest.strip_prefix("users/")?;
    if customer.is_empty() || user.is_empty() || user.contains('/') {
        return None;
    }
    Some((customer, user))
}

/// A GUID in its hyphenated form (either case).
fn parse_guid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

fn first8(user: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    user.simple().encode_lower(&mut buf)[..8].to_owned()
}

/// The user a GET answers when nothing was stored or seeded.
fn default_user(customer: Uuid, user: Uuid) -> Map<String, Value> {
    let short = first8(user);
    let value = json!({
        "id": user.to_string(),
        "userPrincipalName": format!("user-{short}@contoso.onmicrosoft.com"),
        "firstName": "User",
        "lastName": short,
        "displayName": format!("User {short}"),
        "usageLocation": "US",
        "userDomainType": "none",
        "state": "active",
        "links": {"self": {"uri": format!("/customers/{customer}/users/{user}"), "method": "GET", "headers": []}},
        "attributes": {"objectType": "CustomerUser"},
    });
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const PASSWORD_PROFILE: &str = "passwordProfile";

/// The fields written to a user over its default, in the order they were first set.
type Overrides = Vec<(Cow<'static, str>, Value)>;

/// Sets one field of a user's overrides.
fn set(overrides: &mut Overrides, key: Cow<'static, str>, value: Value) {
    match overrides.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value,
        None => overrides.push((key, value)),
    }
}

/// A user as the API shows it: the synthesized default with the written fields over it.
fn current_user(customer: Uuid, user: Uuid, overrides: &Overrides) -> Map<String, Value> {
    let mut current = default_user(customer, user);
    for (k, v) in overrides {
        current.insert(k.to_string(), v.clone());
    }
    current
}

fn stored_password_profile(force: bool) -> Value {
    json!({"forceChangePassword": force, "passwordSet": true})
}

// ---------------------------------------------------------------------------
// Validation

struct PcError {
    status: StatusCode,
    code: u32,
    description: String,
}

fn invalid_input(description: impl Into<String>) -> PcError {
    PcError {
        status: StatusCode::BAD_REQUEST,
        code: 800002,
        description: description.into(),
    }
}

fn invalid_property(description: impl Into<String>) -> PcError {
    PcError {
        status: StatusCode::BAD_REQUEST,
        code: 3000,
        description: description.into(),
    }
}

/// A validated PATCH: string fields, and the new password with its forceChangePassword.
#[derive(Debug)]
struct UserPatch {
    fields: Vec<(&'static str, String)>,
    password: Option<(String, bool)>,
}

/// Shortens client-supplied text quoted in a description.
fn quote(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

fn validate_patch(body: &[u8]) -> Result<UserPatch, PcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| invalid_input("The request body is not valid JSON."))?;
    let Value::Object(obj) = value else {
        return Err(invalid_input("The request body must be a JSON object."));
    };
    let object_type_ok = obj
        .get("attributes")
        .and_then(|a| a.get("objectType"))
        .and_then(Value::as_str)
        == Some("CustomerUser");
    if !object_type_ok {
        return Err(invalid_input(
            "The request body must carry \"attributes\": {\"objectType\": \"CustomerUser\"}.",
        ));
    }
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(invalid_property(format!(
            "The property '{}' is not a valid property of a CustomerUser.",
            quote(unknown)
        )));
    }
    let mut patch = UserPatch {
        fields: Vec::new(),
        password: None,
    };
    for name in KNOWN_FIELDS {
        let Some(v) = obj.get(name) else { continue };
        match name {
            "attributes" => {}
            "passwordProfile" => patch.password = Some(validate_password_profile(v)?),
            _ => {
                let Some(s) = v.as_str() else {
                    return Err(invalid_property(format!(
                        "The property '{name}' must be a string."
                    )));
                };
                validate_string_field(name, s)?;
                patch.fields.push((name, s.to_owned()));
            }
        }
    }
    Ok(patch)
}

fn validate_string_field(name: &str, s: &str) -> Result<(), PcError> {
    let len = s.chars().count();
    match name {
        "usageLocation" => {
            if s.len() != 2 || isocountry::CountryCode::for_alpha2(s).is_err() {
                return Err(invalid_property(format!(
                    "The property 'usageLocation' value '{}' is not a valid ISO 3166-1 alpha-2 country code.",
                    quote(s)
                )));
            }
        }
        "userPrincipalName" => {
            if !valid_upn(s) {
                return Err(invalid_property(format!(
                    "The property 'userPrincipalName' value '{}' is not a valid user principal name (alias@domain).",
                    quote(s)
                )));
            }
        }
        "displayName" => {
            if s.trim().is_empty() || len > 256 {
                return Err(invalid_property(
                    "The property 'displayName' must be 1 to 256 characters long and not blank.",
                ));
            }
        }
        _ => {
            if len > 64 {
                return Err(invalid_property(format!(
                    "The property '{name}' must be at most 64 characters long."
                )));
            }
        }
    }
    Ok(())
}

fn valid_upn(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c));
    let domain_ok = domain.contains('.')
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

fn validate_password_profile(v: &Value) -> Result<(String, bool), PcError> {
    let shape = || {
        invalid_property(
            "The property 'passwordProfile' must be an object with a string 'password' and a boolean 'forceChangePassword'.",
        )
    };
    let Value::Object(profile) = v else {
        return Err(shape());
    };
    if let Some(unknown) = profile
        .keys()
        .find(|k| k.as_str() != "password" && k.as_str() != "forceChangePassword")
    {
        return Err(invalid_property(format!(
            "The property 'passwordProfile.{}' is not a valid property.",
            quote(unknown)
        )));
    }
    let Some(password) = profile.get("password").and_then(Value::as_str) else {
        return Err(shape());
    };
    let force = match profile.get("forceChangePassword") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(shape()),
    };
    if let Some(problem) = password_problem(password) {
        // Never quote the password.
        return Err(invalid_property(format!("{PASSWORD_REJECTED} {problem}")));
    }
    Ok((password.to_owned(), force))
}

/// Why a password breaks the Entra rules, or None if it is acceptable.
fn password_problem(p: &str) -> Option<&'static str> {
    let len = p.chars().count();
    if !(8..=256).contains(&len) {
        return Some("A password must be 8 to 256 characters long.");
    }
    let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
    for c in p.chars() {
        if c.is_ascii_lowercase() {
            lower = true;
        } else if c.is_ascii_uppercase() {
            upper = true;
        } else if c.is_ascii_digit() {
            digit = true;
        } else if PASSWORD_SYMBOLS.contains(c) {
            symbol = true;
        } else {
            return Some("A password contains a character that is not allowed.");
        }
    }
    let classes = [lower, upper, digit, symbol].iter().filter(|b| **b).count();
    if classes < 3 {
        return Some("A password must contain at least 3 of: lower case letters, upper case letters, digits and symbols.");
    }
    None
}

// ---------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A Partner Center error: `{"code":N,"description":..,"data":[],"source":"PartnerFD"}`.
fn pc_error(status: StatusCode, code: u32, description: &str) -> Response {
    json_response(
        status,
        &json!({"code": code, "description": description, "data": [], "source": "PartnerFD"}),
    )
}

fn unauthorized() -> Response {
    let mut resp = pc_error(StatusCode::UNAUTHORIZED, 400, ACCESS_DENIED);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn throttled(retry_after: u64) -> Response {
    let mut resp = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "statusCode": 429,
            "message": format!("Rate limit is exceeded. Try again in {retry_after} seconds."),
        }),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A status with a Partner Center error body and a plausible code.
fn status_error(status: u16) -> Response {
    let status = status_or_500(status);
    let (code, description): (u32, &str) = match status.as_u16() {
        400 => (800002, "The request input is invalid."),
        401 => (400, ACCESS_DENIED),
        403 => (900308, "The user does not have sufficient privileges."),
        404 => (60002, "User object id not found."),
        409 => (
            800002,
            "The request conflicts with the current state of the resource.",
        ),
        500 => (
            500,
            "An internal server error occurred. Please try again later.",
        ),
        502 => (502, "Bad gateway: the upstream service did not answer."),
        503 => (
            503,
            "The service is temporarily unavailable. Please try again later.",
        ),
        504 => (
            504,
            "Gateway timeout: the upstream service did not answer in time.",
        ),
        s => (
            u32::from(s),
            status.canonical_reason().unwrap_or("Unexpected error."),
        ),
    };
    pc_error(status, code, description)
}

/// A proxy's HTML error page.
fn html_error(status: u16) -> Response {
    let status = status_or_500(status);
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\n<body><center><h1>{code} {reason}</h1></center><hr><center>Microsoft-Azure-Application-Gateway/v2</center></body></html>\n"
    );
    let mut resp = Response::new(Body::from(page));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

fn empty(status: u16) -> Response {
    let mut resp = Response::new(Body::from(Bytes::new()));
    *resp.status_mut() = status_or_500(status);
    resp
}

#[cfg(test)]
mod tests {
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
        let header =
            |r: &reqwest::Response, name: &str| r.headers()[name].to_str().unwrap().to_owned();
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
}
