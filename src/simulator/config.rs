//! The simulator's configuration: what it serves, which faults it injects, its throttles and its OAuth authority.

use super::*;

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
    /// The Graph routes (under [`GRAPH_PREFIX`]).
    pub graph: SimGraph,
    /// The customers and users the collections list and GET answers. None: the demo's
    /// directory, and users outside it are synthesized; Some: users and customers outside it
    /// are answered 404.
    pub directory: Option<Directory>,
    /// The most items a collection page holds (small values make tests cross pages). Default 100.
    pub page_size: usize,
    /// By user id: the names of the directory roles the user holds
    /// (`GET .../users/{user}/directoryroles`); a user not listed holds none.
    pub roles: HashMap<Uuid, Vec<String>>,
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
    /// Customer tenants whose token endpoint refuses the refresh-token grant, each with the
    /// AADSTS code of its refusal (50020: no GDAP relationship; 53003: conditional access;
    /// 65001: no consent; another code: a generic refusal).
    pub refusing_tenants: HashMap<Uuid, u32>,
    /// The signed-in test user of `/authorize` and the device flow: the id token's
    /// `preferred_username`, `name` and `tid`.
    pub user: SimUser,
    /// `/authorize` answers the redirect with this `error` (e.g. `access_denied`) instead of a code.
    pub authorize_error: Option<String>,
    /// The first device-code polls get these errors (`authorization_pending`, `slow_down`,
    /// `expired_token`, ...) whatever the user did; after them, the user's answer counts.
    pub device_script: Vec<String>,
    /// The `interval` the device-code endpoint announces (whole seconds).
    pub device_interval: u64,
    /// By tenant segment (a domain, lower case): how many of the first discovery-document
    /// requests for it answer 503.
    pub discovery_failures: HashMap<String, u32>,
}

/// The user who signs in at the simulator's authority.
#[derive(Clone, Debug)]
pub struct SimUser {
    pub preferred_username: String,
    pub name: String,
    pub tenant_id: Uuid,
}

impl Default for SimUser {
    fn default() -> Self {
        SimUser {
            preferred_username: "admin@contoso.onmicrosoft.com".into(),
            name: "Contoso Admin".into(),
            tenant_id: Uuid::from_u128(0x0a6b_1a8e_3c1f_4f0e_9a8e_1b2c_3d4e_5f60),
        }
    }
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
            refusing_tenants: HashMap::new(),
            user: SimUser::default(),
            authorize_error: None,
            device_script: Vec::new(),
            device_interval: 5,
            discovery_failures: HashMap::new(),
        }
    }
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
            graph: SimGraph::default(),
            directory: None,
            page_size: 100,
            roles: HashMap::new(),
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
