//! Transports other than the unix socket: plain TCP, TCP with TLS, TLS with a mandatory client
//! certificate. Certificates are made with the `openssl` command in a temp dir.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::post_on as post;
use http::StatusCode;
use kuryr_libnetwork::transport::{
    listener_from_systemd, serve_plugin, serve_settings, serve_tcp, serve_tcp_tls, server_config,
    Listen, ListenSettings, TlsFiles, UnixListenerConfig,
};
use kuryr_libnetwork::Limits;
use kuryr_plugin_api::keys::paths;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA plus a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn make_pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=kuryr-test-ca",
    ]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, pem, extf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=kuryr-test"]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "1",
                "-extfile",
                &extf,
            ],
        );
    }
}

fn client_config(dir: &Path, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if with_cert {
        let cert = CertificateDer::from_pem_file(dir.join("client.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap();
        builder.with_client_auth_cert(vec![cert], key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

async fn tls_activate(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<(StatusCode, Value), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    post(tls, paths::ACTIVATE, "").await
}

fn implements() -> Value {
    json!({"Implements": ["NetworkDriver", "IpamDriver"]})
}

#[tokio::test]
async fn plain_tcp_serves_the_api() {
    let (app, _) = common::app(Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tcp(listener, app, async {
        let _ = stopped.await;
    }));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        post(tcp, paths::ACTIVATE, "").await.unwrap(),
        (StatusCode::OK, implements())
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn tls_serves_the_api_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let files = TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: None,
    };
    let (app, _) = common::app(Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tcp_tls(
        listener,
        server_config(&files).unwrap(),
        app,
        async {
            let _ = stopped.await;
        },
    ));

    assert_eq!(
        tls_activate(addr, client_config(dir.path(), false))
            .await
            .unwrap(),
        (StatusCode::OK, implements())
    );
    // Plain HTTP on the TLS port gets no HTTP answer; and the server keeps serving TLS after it.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(post(tcp, paths::ACTIVATE, "").await.is_err());
    assert!(tls_activate(addr, client_config(dir.path(), false))
        .await
        .is_ok());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn tls_with_client_ca_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let files = TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: Some(dir.path().join("ca.pem")),
    };
    let (app, _) = common::app(Limits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tcp_tls(
        listener,
        server_config(&files).unwrap(),
        app,
        async {
            let _ = stopped.await;
        },
    ));

    assert!(tls_activate(addr, client_config(dir.path(), false))
        .await
        .is_err());
    assert_eq!(
        tls_activate(addr, client_config(dir.path(), true))
            .await
            .unwrap(),
        (StatusCode::OK, implements())
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn bad_tls_files_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
        client_ca: None,
    };
    let err = server_config(&missing).unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let empty = TlsFiles {
        cert: dir.path().join("empty.pem"),
        ..missing
    };
    let err = server_config(&empty).unwrap_err();
    assert!(err.to_string().contains("no certificate in"), "{err}");
}

#[tokio::test]
async fn no_systemd_socket_without_listen_fds() {
    // The test process is not socket-activated: LISTEN_PID (if set at all) is not ours.
    assert!(listener_from_systemd().unwrap().is_none());
}

#[tokio::test]
async fn serve_plugin_on_unix_removes_its_socket_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("kuryr-t.sock");
    let listen = Listen::Unix(UnixListenerConfig::new(&socket));
    let (app, _) = common::app(Limits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_plugin(&listen, app, async {
            let _ = stopped.await;
        })
        .await
    });
    // Wait for the socket to appear, then talk to it.
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        common::call_unix(&socket, paths::ACTIVATE, "")
            .await
            .unwrap(),
        (StatusCode::OK, implements())
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!socket.exists(), "socket left behind after shutdown");
}

#[tokio::test]
async fn serve_plugin_reports_tcp_bind_errors_with_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let (app, _) = common::app(Limits::default());
    let err = serve_plugin(&Listen::Tcp { addr, tls: None }, app, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// A port that was free a moment ago (the spec file names the configured port, so it cannot be 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tcp_settings(dir: &Path, port: u16, enable_ssl: bool) -> ListenSettings {
    ListenSettings {
        kuryr_uri: format!("http://127.0.0.1:{port}"),
        enable_ssl,
        ssl_cert_file: dir.join("server.pem"),
        ssl_key_file: dir.join("server.key"),
        plugin_name: "kuryr-t".into(),
        spec_dir: dir.join("plugins"),
        allow_insecure_tcp: false,
    }
}

/// Waits for the spec file a serving task writes once it listens.
async fn read_spec(path: &Path) -> String {
    for _ in 0..250 {
        if let Ok(s) = std::fs::read_to_string(path) {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{} was not written", path.display());
}

#[tokio::test]
async fn settings_with_enable_ssl_serve_tls_and_write_an_https_spec() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let port = free_port();
    let settings = tcp_settings(dir.path(), port, true);
    let (app, _) = common::app(Limits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_settings(&settings, app, async {
            let _ = stopped.await;
        })
        .await
    });
    let spec = dir.path().join("plugins").join("kuryr-t.spec");
    assert_eq!(
        read_spec(&spec).await,
        format!("https://127.0.0.1:{port}\n")
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(
        tls_activate(addr, client_config(dir.path(), false))
            .await
            .unwrap(),
        (StatusCode::OK, implements())
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        post(tcp, paths::ACTIVATE, "").await.is_err(),
        "plain http on the tls port"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(spec.exists(), "the spec file stays for Docker's retries");
}

#[tokio::test]
async fn settings_without_ssl_serve_plain_http_and_write_an_http_spec() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let settings = tcp_settings(dir.path(), port, false);
    let (app, _) = common::app(Limits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_settings(&settings, app, async {
            let _ = stopped.await;
        })
        .await
    });
    let spec = dir.path().join("plugins").join("kuryr-t.spec");
    assert_eq!(read_spec(&spec).await, format!("http://127.0.0.1:{port}\n"));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert_eq!(
        post(tcp, paths::ACTIVATE, "").await.unwrap(),
        (StatusCode::OK, implements())
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn settings_with_missing_tls_files_fail_before_announcing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = tcp_settings(dir.path(), free_port(), true);
    let (app, _) = common::app(Limits::default());
    let err = serve_settings(&settings, app, async {}).await.unwrap_err();
    assert!(err.to_string().contains("server.pem"), "{err}");
    assert!(
        !dir.path().join("plugins").join("kuryr-t.spec").exists(),
        "docker must not be sent to a listener that cannot answer"
    );
}

/// The Neutron client's `[neutron]` TLS options against a TLS endpoint (this crate's own TLS
/// listener stands in for Neutron: a handshake that succeeds gets its HTTP answer, 404 for
/// `/v2.0/extensions`; one that fails is a transport error). `cafile` trusts the endpoint's
/// CA, `certfile`/`keyfile` give the client certificate an endpoint requiring one asks for,
/// and `insecure` skips the server's verification.
#[tokio::test]
async fn the_neutron_clients_tls_options_reach_a_tls_endpoint() {
    use kuryr_openstack::auth::{ClientSettings, KeystoneOptions};
    use kuryr_openstack::neutron::{HttpNeutron, NeutronApi, NeutronError};

    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let path = |f: &str| Some(dir.path().join(f).display().to_string());
    let serve = |client_ca: Option<std::path::PathBuf>| async {
        let files = TlsFiles {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server.key"),
            client_ca,
        };
        let (app, _) = common::app(Limits::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_tcp_tls(
            listener,
            server_config(&files).unwrap(),
            app,
            async {
                let _ = stopped.await;
            },
        ));
        (format!("https://{addr}"), stop, task)
    };
    let ask = |opts: KeystoneOptions| async move {
        let settings = ClientSettings::resolve_with_env(&opts, &|_| None).unwrap();
        HttpNeutron::new(&settings).unwrap().list_extensions().await
    };
    let handshake_ok = |r: &Result<Vec<_>, NeutronError>| matches!(r, Err(e) if !matches!(e, NeutronError::Transport(_)));
    let options = |endpoint: &str| KeystoneOptions {
        auth_type: Some("none".into()),
        endpoint: Some(endpoint.into()),
        timeout: Some(5.0),
        ..Default::default()
    };

    let (plain_url, stop, task) = serve(None).await;
    let untrusted = ask(options(&plain_url)).await;
    assert!(
        matches!(&untrusted, Err(NeutronError::Transport(_))),
        "an unknown CA is refused: {untrusted:?}"
    );
    let with_ca = ask(KeystoneOptions {
        cafile: path("ca.pem"),
        ..options(&plain_url)
    })
    .await;
    assert!(handshake_ok(&with_ca), "cafile: {with_ca:?}");
    let insecure = ask(KeystoneOptions {
        insecure: true,
        ..options(&plain_url)
    })
    .await;
    assert!(handshake_ok(&insecure), "insecure: {insecure:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    let (mtls_url, stop, task) = serve(Some(dir.path().join("ca.pem"))).await;
    let no_cert = ask(KeystoneOptions {
        cafile: path("ca.pem"),
        ..options(&mtls_url)
    })
    .await;
    assert!(
        !handshake_ok(&no_cert),
        "no client certificate: {no_cert:?}"
    );
    let with_cert = ask(KeystoneOptions {
        cafile: path("ca.pem"),
        certfile: path("client.pem"),
        keyfile: path("client.key"),
        ..options(&mtls_url)
    })
    .await;
    assert!(handshake_ok(&with_cert), "certfile/keyfile: {with_cert:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
