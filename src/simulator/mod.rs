//! An in-process simulator of the Partner Center customer-users API, with seedable fault injection, for tests, the demo and benchmarks.
//!
//! [`Simulator::start`] binds `127.0.0.1:0` and serves
//! `PATCH` and `GET` on `/v1/customers/{customer}/users/{user}` the way the
//! real service does (see `shared/reference/partner-center-users.md`):
//! bearer-token check, GUID checks, unknown/forbidden tenants and users,
//! Entra-style validation of the PATCH body, and the error body shapes of
//! Partner Center (`{"code":N,"description":..,"data":[],"source":"PartnerFD"}`)
//! and of its throttling layer (`{"statusCode":429,"message":..}`).
//! With [`SimConfig::oauth`] it is also an OAuth authority at its base URL (`authority`,
//! `oauth`): `/{tenant}/oauth2/v2.0/authorize`, `/token` (refresh-token, authorization-code
//! with PKCE, and device-code grants) and `/devicecode`, with a page to approve device codes,
//! and (always) the public discovery document `/{tenant}/v2.0/.well-known/openid-configuration`
//! (`discovery`), a customer's domain naming its tenant.
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
//! `GET /v1/customers` and `/v1/customers/{customer}/users` list the [`Directory`] in pages
//! (see `collections`); a user the directory holds is answered from it.
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

mod authority;
mod collections;
pub mod command;
mod config;
mod directory;
mod discovery;
mod graph;
mod graph_batch;
mod graph_lists;
mod graph_users;
mod oauth;
mod responses;
mod routes;
mod serve;
mod state;
mod store;
#[cfg(test)]
mod tests;
mod validation;

pub use config::{Fault, SimConfig, SimOAuth, SimUser, Throttle, WindowQuota};
pub use directory::{DirCustomer, DirUser, Directory};
pub use discovery::DiscoveryRequest;
pub use graph::{SimGraph, GRAPH_PREFIX};
pub use state::{RecordedRequest, SimStats, TokenRequest, STATS_PATH};

use authority::*;
use directory::Indexed;
use oauth::*;
use responses::*;
use routes::*;
use serve::*;
use state::*;
use store::*;
use validation::*;

/// The path of the device-code verification page (`GET ...?code=USER_CODE[&decline=1]`).
pub fn authority_device_path() -> &'static str {
    DEVICE_PATH
}

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
            .route(
                &format!("{GRAPH_PREFIX}/{{*rest}}"),
                axum::routing::any(graph::handle),
            )
            .route(
                "/{tenant}/oauth2/v2.0/authorize",
                axum::routing::get(authorize_endpoint),
            )
            .route(
                "/{tenant}/oauth2/v2.0/devicecode",
                axum::routing::post(devicecode_endpoint),
            )
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                axum::routing::get(discovery::discovery_endpoint),
            )
            .route(DEVICE_PATH, axum::routing::get(device_page))
            .route(STATS_PATH, axum::routing::get(stats_endpoint))
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

    /// The authority's base (`bulkpatch login --authority`): the simulator's base URL.
    pub fn authority(&self) -> String {
        self.base_url()
    }

    /// Every request to the token endpoint, in arrival order.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.oauth_state).requests.clone()
    }

    /// Every request for a discovery document (`/{tenant}/v2.0/.well-known/openid-configuration`),
    /// in arrival order.
    pub fn discovery_requests(&self) -> Vec<DiscoveryRequest> {
        lock(&self.shared.oauth_state).discovery.clone()
    }

    /// The form of every device authorization request (`/devicecode`), in arrival order.
    pub fn device_requests(&self) -> Vec<HashMap<String, String>> {
        lock(&self.shared.oauth_state).device_requests.clone()
    }

    /// Every token the token endpoint issued or started with (access and refresh).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared.oauth_state).issued.clone()
    }

    /// The tenant segment of the token endpoint an access token was issued at, if it was.
    pub fn token_tenant(&self, access_token: &str) -> Option<String> {
        lock(&self.shared.oauth_state)
            .access_tenant
            .get(access_token)
            .cloned()
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
        self.shared.stats()
    }

    /// The stored state of a user, None if it was never written or seeded.
    /// A password set by a PATCH shows only as
    /// `"passwordProfile":{"forceChangePassword":..,"passwordSet":true}`.
    pub fn user(&self, customer: Uuid, user: Uuid) -> Option<Value> {
        let overrides = lock(&self.shared.users).get(&(customer, user)).cloned()?;
        Some(Value::Object(
            self.shared.current_user(customer, user, &overrides),
        ))
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

    /// The base URL of the Graph routes: `http://127.0.0.1:PORT/graph/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}{GRAPH_PREFIX}", self.base_url())
    }

    /// The tenant whose users the Graph routes serve (the accepted token's).
    pub fn graph_tenant(&self) -> Uuid {
        self.shared.graph.config.tenant
    }

    /// A Graph user of `tenant` as stored (never a password), None if never seeded or written.
    pub fn graph_user(&self, tenant: Uuid, id: Uuid) -> Option<Value> {
        let users = lock(&self.shared.graph.users);
        users.get(&(tenant, id)).cloned().map(Value::Object)
    }

    /// Presets a Graph user of `tenant` over the default user (`userPrincipalName` makes it
    /// addressable by name); a `passwordProfile` given here is not kept.
    pub fn seed_graph_user(&self, tenant: Uuid, id: Uuid, fields: Value) {
        let mut user = graph_users::default_graph_user(id);
        if let Value::Object(fields) = fields {
            user.extend(fields.into_iter().filter(|(k, _)| k != "passwordProfile"));
        }
        lock(&self.shared.graph.users).insert((tenant, id), user);
    }

    /// Stops the server and waits for its connections to close.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The counters as JSON, for a benchmark watching a `simulate` process.
async fn stats_endpoint(State(shared): State<Arc<Shared>>) -> Response {
    let stats = serde_json::to_value(shared.stats()).unwrap_or_default();
    json_response(StatusCode::OK, &stats)
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
