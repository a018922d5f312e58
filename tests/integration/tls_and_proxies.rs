//! TLS trust and proxies: a private CA made in the test, a TLS front that terminates TLS with a
//! certificate it signed and relays to the simulator, and CONNECT proxies (http:// and https://).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use bulkpatch::simulator::{SimConfig, Simulator};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::support::*;

/// A private root CA and a server certificate it signed for `localhost` and 127.0.0.1.
struct TestCa {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "bulkpatch test root");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        TestCa {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }

    fn write_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}

/// A TLS front on 127.0.0.1 for the simulator: terminates TLS and relays the bytes.
async fn tls_front(sim: &Simulator, config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (acceptor, upstream) = (tokio_rustls::TlsAcceptor::from(config), sim.addr());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused the certificate
                };
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    port
}

/// A CONNECT proxy on 127.0.0.1, over TLS when `tls` is given: records each tunnel request's
/// head, then relays. Returns its URL (`http://` or `https://`) and the heads.
async fn connect_proxy(
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen, tls) = (seen.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => tunnel(tcp, seen).await,
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            tunnel(stream, seen).await;
                        }
                    }
                }
            });
        }
    });
    (url, heads)
}

/// Serves one CONNECT request on `client`.
async fn tunnel(mut client: impl AsyncRead + AsyncWrite + Unpin, seen: Arc<Mutex<Vec<String>>>) {
    // The client sends nothing past the head until the tunnel is open.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if client.read_exact(&mut byte).await.is_err() {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(head.clone());
    let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let target = target.replace("localhost:", "127.0.0.1:");
    let Ok(mut server) = TcpStream::connect(target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    let _ = client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// `bulkpatch run` against `base` with the simulator's token, trusting no CA from outside.
fn run_https(sim: &Simulator, base: &str, input: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut args = vec![
        "run".to_string(),
        input.display().to_string(),
        "--base-url".into(),
        base.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = bulkpatch(&refs);
    cmd.env("BULKPATCH_TOKEN", sim.token())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_root_is_refused_with_advice_and_trusted_with_ca_file_or_ssl_cert_file() {
    let sim = simulator(SimConfig::default()).await;
    let ca = TestCa::new();
    let base = format!(
        "https://localhost:{}",
        tls_front(&sim, ca.server.clone()).await
    );
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let pem = ca.write_pem(dir.path());

    // The operating system's store does not know the private root.
    let out = dir.path().join("untrusted.csv");
    let ran = run_bin(run_https(&sim, &base, &input, &out, &[])).await;
    assert_eq!(ran.code, 2, "stderr: {}", ran.stderr);
    assert!(
        ran.stderr
            .contains("the server's certificate is not trusted")
            && ran.stderr.contains("--ca-file"),
        "{}",
        ran.stderr
    );
    // The nothing-connects stop fires on certificate failures too.
    assert!(ran.stderr.contains("nothing connects"), "{}", ran.stderr);
    assert!(sim.requests().is_empty(), "a request got through");

    let out = dir.path().join("ca_file.csv");
    let pem_arg = pem.display().to_string();
    let cmd = run_https(&sim, &base, &input, &out, &["--ca-file", &pem_arg]);
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 3);
    assert_eq!(sim.requests().len(), 3);

    let out = dir.path().join("ssl_cert_file.csv");
    let mut cmd = run_https(&sim, &base, &input, &out, &[]);
    cmd.env("SSL_CERT_FILE", &pem);
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);
    assert_eq!(Results::read(&out).count("updated"), 3);
    assert_eq!(sim.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_without_a_certificate_stops_before_any_request() {
    let sim = simulator(SimConfig::default()).await;
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let not_pem = dir.path().join("key-only.pem");
    std::fs::write(
        &not_pem,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, problem) in [
        (&not_pem, "no PEM certificate"),
        (&missing, "cannot be read"),
    ] {
        let out = dir.path().join("out.csv");
        let file_arg = file.display().to_string();
        let cmd = run_against(&sim, &input, &out, &["--ca-file", &file_arg]);
        let ran = run_bin(cmd).await;
        assert_eq!(ran.code, 2, "stderr: {}", ran.stderr);
        for needle in ["--ca-file", file_arg.as_str(), problem] {
            assert!(ran.stderr.contains(needle), "{needle}: {}", ran.stderr);
        }
    }
    // From the config file, the key is named.
    let config = dir.path().join("bulkpatch.toml");
    std::fs::write(
        &config,
        format!("ca_file = {:?}\n", not_pem.display().to_string()),
    )
    .unwrap();
    let out = dir.path().join("out.csv");
    let config_arg = config.display().to_string();
    let ran = run_bin(run_against(&sim, &input, &out, &["--config", &config_arg])).await;
    assert_eq!(ran.code, 2, "stderr: {}", ran.stderr);
    assert!(ran.stderr.contains("`ca_file`"), "{}", ran.stderr);
    assert!(sim.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_tunnel_through_http_and_https_proxies() {
    let sim = simulator(SimConfig::default()).await;
    let ca = TestCa::new();
    let front = tls_front(&sim, ca.server.clone()).await;
    let base = format!("https://localhost:{front}");
    let dir = tempdir();
    let input = Csv::usage_locations(3).write(dir.path(), "in.csv");
    let pem = ca.write_pem(dir.path());
    let pem_arg = pem.display().to_string();

    // An http:// proxy wanting credentials, and an https:// proxy whose certificate the same
    // private root signed (trusted through --ca-file too).
    let (plain, plain_heads) = connect_proxy(None).await;
    let (secure, secure_heads) = connect_proxy(Some(ca.server.clone())).await;
    let plain_with_auth = plain.replace("http://", "http://ops:s3cret@");
    for (n, (proxy, heads)) in [(&plain_with_auth, &plain_heads), (&secure, &secure_heads)]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("proxied-{n}.csv"));
        let mut cmd = run_https(&sim, &base, &input, &out, &["--ca-file", &pem_arg]);
        cmd.env("HTTPS_PROXY", proxy);
        let ran = run_bin(cmd).await;
        assert_eq!(ran.code, 0, "{proxy}: stderr: {}", ran.stderr);
        assert_eq!(Results::read(&out).count("updated"), 3);
        assert_eq!(sim.requests().len(), 3 * (n + 1));
        let tunnels = heads.lock().unwrap().clone();
        assert!(!tunnels.is_empty(), "no request went through {proxy}");
        for head in &tunnels {
            assert!(
                head.starts_with(&format!("CONNECT localhost:{front} HTTP/1.1\r\n")),
                "{head}"
            );
        }
        assert!(!ran.stderr.contains("s3cret"), "{}", ran.stderr);
    }
    // base64("ops:s3cret")
    let auth = plain_heads.lock().unwrap().iter().all(|head| {
        head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("proxy-authorization:")
                && l.ends_with(" Basic b3BzOnMzY3JldA==")
        })
    });
    assert!(auth, "{:?}", plain_heads.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_uses_the_same_trust() {
    use bulkpatch::simulator::SimOAuth;
    let sim = simulator(SimConfig {
        oauth: Some(SimOAuth::default()),
        ..SimConfig::default()
    })
    .await;
    let ca = TestCa::new();
    let front = format!(
        "https://localhost:{}",
        tls_front(&sim, ca.server.clone()).await
    );
    let dir = tempdir();
    let input = Csv::usage_locations(2).write(dir.path(), "in.csv");
    let pem = ca.write_pem(dir.path()).display().to_string();
    let refresh = sim.valid_refresh_tokens().pop().unwrap();
    let (config, _) = auth_config(dir.path(), &sim, &refresh, &SimOAuth::default().client_id);
    // The token endpoint behind the TLS front; the API straight to the simulator.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(&sim.base_url(), &front)).unwrap();

    let out = dir.path().join("untrusted.csv");
    let mut cmd = run_with_config(&sim, &input, &out, &config, &[]);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 2, "stderr: {}", ran.stderr);
    assert!(
        ran.stderr.contains("cannot get an access token")
            && ran
                .stderr
                .contains("the server's certificate is not trusted")
            && ran.stderr.contains("--ca-file"),
        "{}",
        ran.stderr
    );
    assert!(sim.token_requests().is_empty() && sim.requests().is_empty());

    let out = dir.path().join("trusted.csv");
    let mut cmd = run_with_config(&sim, &input, &out, &config, &["--ca-file", &pem]);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    let ran = run_bin(cmd).await;
    assert_eq!(ran.code, 0, "stderr: {}", ran.stderr);
    assert_eq!(sim.token_requests().len(), 1);
    assert_eq!(Results::read(&out).count("updated"), 2);
}
