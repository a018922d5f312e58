//! State shared by every connection: the throttles and window quota, the random fault draws, the recorded requests, counters and the token endpoint's state.

use super::*;

/// Where `GET` answers the counters as JSON (benchmarks read them; never recorded or counted).
pub const STATS_PATH: &str = "/_simulator/stats";

/// One request to the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub received_at: Instant,
    /// The form fields, secrets included (for tests to check what the client sent).
    pub form: HashMap<String, String>,
    /// HTTP status of the answer.
    pub status: u16,
    /// The tenant segment of the endpoint's path (`/{tenant}/oauth2/v2.0/token`).
    pub tenant: String,
}

/// Token-endpoint state.
#[derive(Default)]
pub(super) struct OAuthState {
    pub(super) valid_refresh: HashSet<String>,
    pub(super) issued_access: HashMap<String, Instant>,
    /// The tenant segment each access token was issued at (a customer tenant's GUID for GDAP).
    pub(super) access_tenant: HashMap<String, String>,
    /// Every token ever issued, access and refresh (for leak checks).
    pub(super) issued: Vec<String>,
    pub(super) requests: Vec<TokenRequest>,
    pub(super) successes: usize,
    /// Authorization codes issued by `/authorize`, not yet redeemed.
    pub(super) codes: HashMap<String, IssuedCode>,
    /// Device codes by `device_code`.
    pub(super) devices: HashMap<String, DeviceGrant>,
    /// The form of every device authorization request (`/devicecode`), in arrival order.
    pub(super) device_requests: Vec<HashMap<String, String>>,
    /// Every request for a discovery document, in arrival order.
    pub(super) discovery: Vec<super::discovery::DiscoveryRequest>,
}

/// What `/authorize` bound an authorization code to.
pub(super) struct IssuedCode {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) challenge: String,
}

/// A device code and what its user did.
pub(super) struct DeviceGrant {
    pub(super) user_code: String,
    pub(super) client_id: String,
    /// None while the user has not answered; Some(true) approved, Some(false) declined.
    pub(super) approved: Option<bool>,
    /// Polls so far (the first ones get `SimOAuth::device_script`).
    pub(super) polls: usize,
}

/// The count of the current window of a [`WindowQuota`].
#[derive(Debug)]
pub(super) struct WindowCount {
    pub(super) start: Instant,
    pub(super) used: u32,
}

/// What one request got from the window quota: the headers to send, and whether it may go on.
#[derive(Clone, Copy, Debug)]
pub(super) struct QuotaAnswer {
    pub(super) quota: WindowQuota,
    pub(super) remaining: u32,
    pub(super) reset_secs: u64,
    pub(super) allowed: bool,
}

impl QuotaAnswer {
    pub(super) fn add_headers(&self, headers: &mut HeaderMap) {
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

/// Counters kept even when recording is off (also served as JSON at [`STATS_PATH`]).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
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
    /// Sub-requests of Graph `$batch` requests handled (each request counts once above).
    pub sub_requests: u64,
    /// Of those, answered 429.
    pub sub_throttled: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) ok: AtomicU64,
    pub(super) throttled: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) client_errors: AtomicU64,
    pub(super) sub_requests: AtomicU64,
    pub(super) sub_throttled: AtomicU64,
}

/// Everything the handler needs, shared by all connections.
pub(super) struct Shared {
    pub(super) token: String,
    pub(super) unknown_users: HashSet<Uuid>,
    pub(super) unknown_customers: HashSet<Uuid>,
    pub(super) forbidden_customers: HashSet<Uuid>,
    pub(super) server_limiter: Option<DefaultDirectRateLimiter>,
    pub(super) customer_limiter: Option<DefaultKeyedRateLimiter<Uuid>>,
    pub(super) window_quota: Option<(WindowQuota, Mutex<WindowCount>)>,
    pub(super) error_rate: f64,
    pub(super) drop_rate: f64,
    pub(super) slow_rate: f64,
    pub(super) slow_delay: Duration,
    pub(super) latency: Duration,
    pub(super) latency_jitter: Duration,
    pub(super) seed: u64,
    pub(super) record: bool,
    pub(super) script: HashMap<Uuid, Vec<Fault>>,
    /// Whether requests need a per-user index (script or random draws).
    pub(super) needs_index: bool,
    /// Whether requests need random draws.
    pub(super) needs_draws: bool,
    pub(super) user_counts: Mutex<HashMap<Uuid, u64>>,
    pub(super) recorded: Mutex<Vec<RecordedRequest>>,
    /// What was written to each user: only the fields set over its synthesized default, so
    /// that a run over a million users does not make the simulator the bottleneck (zeroing
    /// fresh pages for whole user objects once cost a fifth of its CPU).
    pub(super) users: Mutex<HashMap<(Uuid, Uuid), Overrides>>,
    pub(super) counters: Counters,
    pub(super) oauth: Option<SimOAuth>,
    pub(super) oauth_state: Mutex<OAuthState>,
    pub(super) graph: graph::GraphState,
    /// The customers and users the collections list.
    pub(super) directory: Indexed,
    pub(super) page_size: usize,
    /// Each user's directory role names.
    pub(super) roles: HashMap<Uuid, Vec<String>>,
    /// Makes this simulator's continuation tokens its own.
    pub(super) salt: String,
}

impl Shared {
    pub(super) fn new(c: SimConfig) -> Shared {
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
            graph: graph::GraphState::new(c.graph),
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
            directory: Indexed::new(c.directory),
            page_size: c.page_size.max(1),
            roles: c.roles,
            salt: Uuid::new_v4().simple().to_string(),
        }
    }

    /// The 0-based index of this request among the requests for `user`.
    pub(super) fn next_index(&self, user: Uuid) -> u64 {
        let mut counts = lock(&self.user_counts);
        let n = counts.entry(user).or_insert(0);
        let index = *n;
        *n += 1;
        index
    }

    /// Random decisions for the `index`-th request of `user`: always the same
    /// draws in the same order, so they depend only on (seed, user, index).
    pub(super) fn draws(&self, user: Uuid, index: u64) -> Draws {
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
    pub(super) fn answered(&self, record: Option<usize>, status: StatusCode) {
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

    pub(super) fn stats(&self) -> SimStats {
        let c = &self.counters;
        SimStats {
            received: c.received.load(Ordering::Relaxed),
            ok: c.ok.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            client_errors: c.client_errors.load(Ordering::Relaxed),
            sub_requests: c.sub_requests.load(Ordering::Relaxed),
            sub_throttled: c.sub_throttled.load(Ordering::Relaxed),
        }
    }

    /// Counts the answer of a `$batch` sub-request.
    pub(super) fn sub_answered(&self, status: StatusCode) {
        let c = &self.counters;
        c.sub_requests.fetch_add(1, Ordering::Relaxed);
        if status == StatusCode::TOO_MANY_REQUESTS {
            c.sub_throttled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bearer token check; the scheme is case-insensitive.
    pub(super) fn authorized(&self, headers: &HeaderMap) -> bool {
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

    /// The Graph tenant a request's token is for: a token issued at a customer tenant's
    /// endpoint is for that tenant only; the fixed token, or one issued at the partner's own
    /// (non-GUID) endpoint, for [`SimGraph::tenant`]. None: no valid token.
    pub(super) fn graph_tenant_of(&self, headers: &HeaderMap) -> Option<Uuid> {
        if !self.authorized(headers) {
            return None;
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, t)| t.trim())?;
        let issued_at = lock(&self.oauth_state).access_tenant.get(token).cloned();
        Some(
            issued_at
                .and_then(|t| parse_guid(&t))
                .unwrap_or(self.graph.config.tenant),
        )
    }

    /// Server-wide then per-customer throttle; Err carries the Retry-After seconds.
    /// Counts a request against the window quota, if there is one.
    pub(super) fn take_quota(&self) -> Option<QuotaAnswer> {
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

    pub(super) fn throttle(&self, customer: Option<Uuid>) -> Result<(), u64> {
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
pub(super) struct Draws {
    pub(super) drop: bool,
    pub(super) error: Option<StatusCode>,
    pub(super) slow: bool,
    pub(super) jitter: Duration,
}

pub(super) fn quota(t: Throttle) -> Quota {
    let per_second = NonZeroU32::new(t.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(t.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

pub(super) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

pub(super) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable (platform- and run-independent) mix of seed, user and index.
pub(super) fn fault_seed(seed: u64, user: Uuid, index: u64) -> u64 {
    let (hi, lo) = user.as_u64_pair();
    let mut h = splitmix64(seed);
    h = splitmix64(h ^ hi);
    h = splitmix64(h ^ lo);
    splitmix64(h ^ index)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
