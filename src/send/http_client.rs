//! The one HTTP client builder: a `reqwest::Client` (rustls with the operating system's trust
//! store, `SSL_CERT_FILE`/`SSL_CERT_DIR` and `--ca-file`; the system and environment proxies;
//! no redirects; connect and per-attempt timeouts), built once per run and shared by the API
//! requests and the token endpoint. Also owns reading a body with a size cap and wording a
//! transport error. Uses only `reqwest`, `rustls` (to recognise an untrusted certificate) and
//! the standard library.

use crate::settings::ca::CaFile;
use std::time::Duration;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// What the client is built from.
#[derive(Debug)]
pub struct HttpSettings<'a> {
    /// The limit on connecting (TCP, proxy and TLS handshakes).
    pub connect_timeout: Duration,
    /// The limit on one request: connecting, sending, and reading the answer's body.
    pub timeout: Duration,
    /// Idle connections kept per host (the concurrency).
    pub pool_size: usize,
    /// Extra trusted roots (`--ca-file`), already read.
    pub ca: Option<&'a CaFile>,
}

/// Failure to build the client (a `--ca-file` certificate rustls cannot use, say): fatal.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct BuildError(String);

/// The run's HTTP client. Cloning it shares its connection pool.
pub fn client(settings: &HttpSettings<'_>) -> Result<reqwest::Client, BuildError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("bulkpatch/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(settings.pool_size)
        .tcp_nodelay(true);
    if let Some(ca) = settings.ca {
        for certificate in ca.certificates() {
            builder = builder.add_root_certificate(certificate.clone());
        }
    }
    builder.build().map_err(|e| {
        let file = settings
            .ca
            .map(|ca| {
                format!(
                    " (with the certificates of --ca-file {})",
                    ca.path.display()
                )
            })
            .unwrap_or_default();
        BuildError(format!("{}{file}", innermost(&e)))
    })
}

/// What a failed request came to.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// Over the connect timeout or the request timeout.
    Timeout,
    /// No connection could be opened (DNS, refused, proxy, TLS handshake): "cannot connect: ...".
    Connect(String),
    /// A connection opened but failed before the answer: "connection failed: ...".
    Dropped(String),
}

/// The advice for a server (or proxy) certificate that no trusted root signed.
pub const NOT_TRUSTED: &str = "the server's certificate is not trusted (a TLS-inspecting proxy? pass its root CA with --ca-file FILE or SSL_CERT_FILE)";

/// Classifies a transport error and words it for a person (not yet redacted).
pub fn failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let inner = if is_untrusted(e) {
        NOT_TRUSTED.to_string()
    } else {
        innermost(e)
    };
    if e.is_connect() {
        Failure::Connect(format!("cannot connect: {inner}"))
    } else {
        Failure::Dropped(format!("connection failed: {inner}"))
    }
}

impl Failure {
    /// The message, for callers that do not tell the kinds apart.
    pub fn message(&self) -> String {
        match self {
            Failure::Timeout => "timed out".into(),
            Failure::Connect(m) | Failure::Dropped(m) => m.clone(),
        }
    }
}

/// Whether somewhere in the chain rustls refused a certificate no trusted root signed.
fn is_untrusted(e: &reqwest::Error) -> bool {
    use rustls::{CertificateError, Error as Tls};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(Tls::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) = c.downcast_ref::<Tls>()
        {
            return true;
        }
        // An `io::Error` hides the error it wraps from `source()`: step into it.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    }
    false
}

/// The innermost cause, which is what a person can act on.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Reads a body a chunk at a time, up to `limit` bytes, keeping them only when `keep`; a body
/// cut short (by the connection or the timeout) ends the reading with what arrived.
pub async fn read_body(response: &mut reqwest::Response, limit: usize, keep: bool) -> Vec<u8> {
    let (mut body, mut read) = (Vec::new(), 0);
    while read < limit {
        let Ok(Some(chunk)) = response.chunk().await else {
            break;
        };
        if keep {
            body.extend_from_slice(&chunk[..chunk.len().min(limit - read)]);
        }
        read += chunk.len();
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = CaFile::read(&dir.path().join("none.pem")).unwrap_err();
        assert!(missing.starts_with("cannot be read"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let none = CaFile::read(&empty).unwrap_err();
        assert!(none.contains("no PEM certificate"), "{none}");
    }

    #[test]
    fn a_certificate_rustls_cannot_read_stops_the_build_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let ca = CaFile::read(&bad).unwrap();
        let settings = HttpSettings {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            pool_size: 1,
            ca: Some(&ca),
        };
        let e = client(&settings).unwrap_err().to_string();
        assert!(e.contains("--ca-file") && e.contains("bad.pem"), "{e}");
    }
}
