//! TLS end to end: downstream certificates chosen by SNI (exact, wildcard,
//! default), HTTP/2 by ALPN, X-Forwarded-Proto through a TLS listener, and TLS
//! to upstreams (custom CA, verification on and off), for proxied requests and
//! for an `mcp` route's tool calls. All certificates are
//! generated here with rcgen and signed by a throwaway CA.

use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One leaf certificate written to disk.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

/// A CA and the leaves this file needs, all as PEM files in a temp dir.
struct Pki {
    ca_pem: PathBuf,
    ca_der: CertificateDer<'static>,
    a: Leaf,
    b: Leaf,
    localhost: Leaf,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    let dir = temp_dir("pki");
    let ca_key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "Portico Test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = params.self_signed(&ca_key).expect("ca cert");
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).expect("write ca");

    let leaf = |tag: &str, names: &[&str]| -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca, &ca_key).expect("sign leaf");
        let (cert_path, key_path) = (dir.join(format!("{tag}.pem")), dir.join(format!("{tag}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        Leaf {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    };
    Pki {
        ca_der: ca.der().clone(),
        ca_pem,
        a: leaf("a", &["a.test"]),
        b: leaf("b", &["*.b.test"]),
        localhost: leaf("localhost", &["localhost"]),
    }
}

/// Starts Portico with one TLS listener serving `a.test` (first, the default)
/// and `*.b.test`, proxying everything to `up`.
async fn tls_gateway(pki: &Pki, up: &Upstream) -> Gateway {
    Gateway::start(&format!(
        "server:
  listeners:
    - address: 127.0.0.1:${{PORT}}
      tls:
        certificates:
          - cert: {}
            key: {}
          - cert: {}
            key: {}
  threads: 2
  pid_file: ${{DIR}}/portico.pid
  upgrade_sock: ${{DIR}}/upgrade.sock
upstreams:
  echo:
    targets:
      - address: {}
routes:
  - name: all
    upstream: echo
",
        pki.a.cert.display(),
        pki.a.key.display(),
        pki.b.cert.display(),
        pki.b.key.display(),
        up.addr
    ))
    .await
}

/// Accepts any server certificate: used to look at what the server sends for
/// names it has no certificate for.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Handshakes with `sni` and returns the leaf certificate the server sent and
/// the ALPN protocol it chose (the client offers h2 and http/1.1).
async fn handshake(port: u16, sni: &str) -> (CertificateDer<'static>, Option<Vec<u8>>) {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let run = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let name = ServerName::try_from(sni.to_string()).expect("server name");
        let tls = connector.connect(name, tcp).await.expect("tls handshake");
        let conn = tls.get_ref().1;
        let leaf = conn.peer_certificates().expect("peer certificates")[0]
            .clone()
            .into_owned();
        (leaf, conn.alpn_protocol().map(|p| p.to_vec()))
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("handshake timed out")
}

/// A reqwest client that trusts only the test CA and sends the given names to
/// 127.0.0.1.
fn tls_client(pki: &Pki, port: u16, names: &[&str]) -> reqwest::Client {
    let ca = reqwest::Certificate::from_der(pki.ca_der.as_ref()).expect("ca for reqwest");
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    for n in names {
        b = b.resolve(n, SocketAddr::from(([127, 0, 0, 1], port)));
    }
    b.build().expect("tls client")
}

#[tokio::test]
async fn sni_selects_the_certificate_and_falls_back_to_the_first() {
    let pki = pki();
    let up = Upstream::start("echo").await;
    let gw = tls_gateway(&pki, &up).await;

    let (leaf, alpn) = handshake(gw.port, "a.test").await;
    assert!(leaf == pki.a.der, "a.test was not served the a.test certificate");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "h2 not chosen by ALPN");

    let (leaf, _) = handshake(gw.port, "x.b.test").await;
    assert!(leaf == pki.b.der, "x.b.test was not served the *.b.test certificate");
    let (leaf, _) = handshake(gw.port, "X.B.Test").await;
    assert!(leaf == pki.b.der, "SNI matching must ignore case");

    // A wildcard covers exactly one label.
    let (leaf, _) = handshake(gw.port, "y.x.b.test").await;
    assert!(leaf == pki.a.der, "y.x.b.test must get the default (first) certificate");
    let (leaf, _) = handshake(gw.port, "unknown.test").await;
    assert!(
        leaf == pki.a.der,
        "an unknown name must get the default (first) certificate"
    );
}

#[tokio::test]
async fn https_with_verification_h2_and_forwarded_proto() {
    let pki = pki();
    let up = Upstream::start("echo").await;
    let gw = tls_gateway(&pki, &up).await;
    let c = tls_client(&pki, gw.port, &["a.test", "x.b.test", "unknown.test"]);

    for host in ["a.test", "x.b.test"] {
        let r = c
            .get(format!("https://{host}:{}/hello?q=1", gw.port))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{host}: {e:?}\n{}", gw.log()));
        assert_eq!(r.status(), 200, "{host}");
        assert_eq!(r.version(), reqwest::Version::HTTP_2, "{host}: ALPN should give h2");
        assert!(r.headers().contains_key("x-request-id"), "{host}: no x-request-id");
        let v: serde_json::Value = r.json().await.expect("json");
        assert_eq!(v["upstream"], "echo");
        assert_eq!(v["path"], "/hello");
        assert_eq!(v["headers"]["x-forwarded-proto"], "https", "{host}: {v}");
        let fwd_host = v["headers"]["x-forwarded-host"].as_str().unwrap_or("");
        assert!(fwd_host.starts_with(host), "{host}: x-forwarded-host {fwd_host:?}");
    }
    assert_eq!(up.hits(), 2);

    // The default certificate is for a.test: verifying it as unknown.test fails.
    let e = c
        .get(format!("https://unknown.test:{}/", gw.port))
        .send()
        .await
        .expect_err("unknown.test must fail certificate verification");
    let chain = format!("{e:?}");
    assert!(
        chain.contains("NotValidForName") || chain.to_lowercase().contains("certificate"),
        "{chain}"
    );
    assert_eq!(up.hits(), 2, "a failed handshake must not reach the upstream");
}

/// A TLS upstream (tokio-rustls + hyper) with a certificate for `localhost`.
struct TlsUpstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_upstream(leaf: &Leaf) -> TlsUpstream {
    let key = PrivateKeyDer::try_from(leaf.key_der.clone()).expect("key der");
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der.clone()], key)
        .expect("server config");
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let (h, hs) = (hits.clone(), handshakes.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, h, hs) = (acceptor.clone(), h.clone(), hs.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                hs.fetch_add(1, Ordering::SeqCst);
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let h = h.clone();
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let mut headers = serde_json::Map::new();
                        for (k, v) in req.headers() {
                            headers.insert(k.to_string(), String::from_utf8_lossy(v.as_bytes()).into());
                        }
                        let v = serde_json::json!({"upstream": "tls", "path": req.uri().path(), "headers": headers});
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(v.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TlsUpstream {
        addr,
        hits,
        handshakes,
        task,
    }
}

/// A gateway with three upstreams over the same TLS target: trusting the
/// test CA, verifying against the system roots only, and not verifying.
async fn tls_upstream_gateway(pki: &Pki, up: &TlsUpstream) -> Gateway {
    Gateway::start(&format!(
        "upstreams:
  with_ca:
    targets:
      - address: {addr}
    tls: {{sni: localhost, ca_file: {ca}}}
  system_roots:
    targets:
      - address: {addr}
    tls: {{sni: localhost, verify: true}}
  no_verify:
    targets:
      - address: {addr}
    tls: {{sni: localhost, verify: false}}
routes:
  - name: ca
    paths: [\"/ca/*\"]
    upstream: with_ca
  - name: strict
    paths: [\"/strict/*\"]
    upstream: system_roots
  - name: insecure
    paths: [\"/insecure/*\"]
    upstream: no_verify
",
        addr = up.addr,
        ca = pki.ca_pem.display()
    ))
    .await
}

/// The test CA is not among the system roots: the handshake must fail, and
/// the client gets the 502 JSON error, not a response from the upstream.
async fn assert_strict_fails(c: &reqwest::Client, gw: &Gateway, up: &TlsUpstream, what: &str) {
    let before = up.hits.load(Ordering::SeqCst);
    let r = c.get(gw.url("/strict/x")).send().await.expect("request");
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let has_id = r.headers().contains_key("x-request-id");
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 502, "{what}: verify: true without ca_file must fail; body {v}");
    assert!(has_id, "{what}: no x-request-id");
    assert!(ct.starts_with("application/json"), "{what}: content-type {ct:?}");
    assert_eq!(v["error"]["type"], "server_error", "{v}");
    assert_eq!(v["error"]["code"], "upstream_connect_failed", "{v}");
    assert!(v["error"]["request_id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        before,
        "{what}: an unverified upstream got the request"
    );
}

#[tokio::test]
async fn tls_upstream_with_ca_file_verify_and_no_verify() {
    let pki = pki();
    let up = tls_upstream(&pki.localhost).await;
    let gw = tls_upstream_gateway(&pki, &up).await;
    let c = client();

    // First, while no connection to the target is pooled.
    assert_strict_fails(&c, &gw, &up, "fresh").await;
    assert_eq!(up.handshakes.load(Ordering::SeqCst), 0, "the handshake must fail");

    let (status, v) = get_json(&c, &gw.url("/ca/x")).await;
    assert_eq!(status, 200, "ca_file: {v}\n{}", gw.log());
    assert_eq!(v["upstream"], "tls");
    assert_eq!(v["path"], "/ca/x");
    assert_eq!(v["headers"]["x-forwarded-proto"], "http", "plain listener: {v}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);

    let (status, v) = get_json(&c, &gw.url("/insecure/y")).await;
    assert_eq!(status, 200, "verify: false: {v}\n{}", gw.log());
    assert_eq!(v["upstream"], "tls");
    assert_eq!(v["path"], "/insecure/y");
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
}

/// Two upstreams share a target but not their trust: a connection verified
/// with one upstream's ca_file must not be reused for an upstream that
/// verifies against the system roots.
#[tokio::test]
async fn verified_connection_is_not_reused_by_an_upstream_with_other_trust() {
    let pki = pki();
    let up = tls_upstream(&pki.localhost).await;
    let gw = tls_upstream_gateway(&pki, &up).await;
    let c = client();
    let (status, v) = get_json(&c, &gw.url("/ca/x")).await;
    assert_eq!(status, 200, "ca_file: {v}\n{}", gw.log());
    assert_strict_fails(&c, &gw, &up, "after a /ca/ request pooled a connection").await;
}

/// An `mcp` route's tool calls to a TLS upstream honour its TLS settings as
/// proxied requests do: the CA file, verification against the system
/// roots (which fails, and the tool says so), and no verification.
#[tokio::test]
async fn mcp_tool_calls_to_a_tls_upstream_follow_its_tls_settings() {
    let pki = pki();
    let up = tls_upstream(&pki.localhost).await;
    let mut yaml = String::from("services:\n  - name: things\n    openapi:\n      openapi: 3.0.0\n      paths:\n");
    yaml.push_str("        /things/{id}: {get: {operationId: getThing}}\nupstreams:\n");
    for (name, tls) in [
        (
            "with_ca",
            format!("{{sni: localhost, ca_file: {}}}", pki.ca_pem.display()),
        ),
        ("system_roots", "{sni: localhost}".to_string()),
        ("no_verify", "{sni: localhost, verify: false}".to_string()),
    ] {
        yaml.push_str(&format!(
            "  {name}:\n    targets: [{{address: {}}}]\n    tls: {tls}\n",
            up.addr
        ));
    }
    yaml.push_str("routes:\n");
    for name in ["with_ca", "system_roots", "no_verify"] {
        yaml.push_str(&format!(
            "  - {{name: {name}, service: things, paths: [/mcp/{name}], upstream: {name}, mcp: {{}}}}\n"
        ));
    }
    let gw = Gateway::start(&yaml).await;
    let c = client();
    let call = |route: &str| {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "getThing", "arguments": {"id": "a b"}}});
        c.post(gw.url(&format!("/mcp/{route}"))).json(&body).send()
    };
    let v: serde_json::Value = call("with_ca").await.unwrap().json().await.unwrap();
    assert_eq!(v["result"]["isError"], false, "{v}\n{}", gw.log());
    assert_eq!(v["result"]["structuredContent"]["path"], "/things/a%20b", "{v}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    let v: serde_json::Value = call("system_roots").await.unwrap().json().await.unwrap();
    assert_eq!(v["result"]["isError"], true, "{v}");
    let text = v["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("could not connect"), "{text}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1, "an unverified upstream got the call");
    let v: serde_json::Value = call("no_verify").await.unwrap().json().await.unwrap();
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
}
