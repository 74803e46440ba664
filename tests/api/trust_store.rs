//! The AWS adapters' HTTPS client trusts the roots compiled into the binary and, only when
//! configured, an extra CA: a local TLS server whose CA is not configured is refused.

use std::sync::Arc;

use picasso::aws::https_client;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A CA and a `localhost` certificate it signed.
struct Ca {
    pem: String,
    leaf: rustls::pki_types::CertificateDer<'static>,
    leaf_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    Ca {
        pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// An HTTPS server on loopback answering every request `200` with an empty body.
async fn serve(ca: &Ca) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ca.leaf.clone()], ca.leaf_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0u8; 16 << 10];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

/// `HeadBucket` against the server through an S3 client built on `https_client(extra)`.
async fn head_bucket(port: u16, extra: Option<&str>) -> Result<(), String> {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .force_path_style(true)
        .http_client(https_client(extra.map(str::as_bytes)).unwrap())
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    client.head_bucket().bucket("b").send().await.map(|_| ()).map_err(|e| format!("{:?}", e))
}

#[tokio::test]
async fn a_server_whose_ca_is_not_configured_is_refused() {
    let ca = ca();
    let port = serve(&ca).await;
    let err = head_bucket(port, None).await.expect_err("an unknown CA must not be trusted");
    assert!(err.contains("DispatchFailure"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "the refusal names the certificate: {err}");
    // Another CA configured does not help either.
    let other = ca_pem_only();
    assert!(head_bucket(port, Some(&other)).await.is_err());
}

#[tokio::test]
async fn the_same_server_is_accepted_once_its_ca_is_configured() {
    let ca = ca();
    let port = serve(&ca).await;
    head_bucket(port, Some(&ca.pem)).await.expect("the configured CA is trusted");
}

fn ca_pem_only() -> String {
    ca().pem
}

#[test]
fn a_bundle_that_is_not_a_certificate_is_an_error_at_start() {
    let err = https_client(Some(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")).err().unwrap();
    assert!(format!("{err:#}").contains("AWS_CA_BUNDLE"), "{err:#}");
}
