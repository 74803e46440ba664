//! The HTTPS client of the AWS adapters: the SDK's own (rustls over aws-lc), trusting the Mozilla
//! roots compiled into the binary. The SDK's default reads the system's certificate stores at
//! start (hundreds of file operations on every cold start); verification stays exactly as strict.
//! `AWS_CA_BUNDLE` (a PEM file, the variable the AWS CLI reads) adds roots: a TLS-inspecting
//! proxy's or a local emulator's.

use anyhow::Context;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use std::sync::OnceLock;

use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine;
use rustls_pki_types::pem::PemObject;

/// The client with the bundled roots, plus `AWS_CA_BUNDLE`'s when it is set.
pub fn https_client_from_env() -> anyhow::Result<SharedHttpClient> {
    let extra = match std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()) {
        Some(path) => Some(std::fs::read(&path).with_context(|| format!("reading AWS_CA_BUNDLE {path:?}"))?),
        None => None,
    };
    https_client(extra.as_deref())
}

/// The client with the bundled roots and `extra_pem`'s certificates, nothing from the system.
/// Built at the first request, not at start: the roots cost a cold start nothing until used.
pub fn https_client(extra_pem: Option<&[u8]>) -> anyhow::Result<SharedHttpClient> {
    if let Some(pem) = extra_pem {
        // Checked here: the SDK parses lazily and panics on a bad certificate at the first call.
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .context("AWS_CA_BUNDLE is not a PEM certificate bundle")?;
        anyhow::ensure!(!certs.is_empty(), "AWS_CA_BUNDLE holds no certificate");
    }
    Ok(SharedHttpClient::new(LazyHttps { extra_pem: extra_pem.map(<[u8]>::to_vec), inner: OnceLock::new() }))
}

#[derive(Debug)]
struct LazyHttps {
    extra_pem: Option<Vec<u8>>,
    inner: OnceLock<SharedHttpClient>,
}

impl HttpClient for LazyHttps {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let client = self.inner.get_or_init(|| {
            let mut roots = TrustStore::empty().with_native_roots(false).with_pem_certificate(bundled_roots_pem());
            if let Some(pem) = &self.extra_pem {
                roots = roots.with_pem_certificate(pem.clone());
            }
            let context =
                TlsContext::builder().with_trust_store(roots).build().expect("a TLS context never fails to build");
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::rustls(CryptoMode::AwsLc))
                .tls_context(context)
                .build_https()
        });
        client.http_connector(settings, components)
    }
}

/// `webpki-root-certs` as PEM, the form the SDK's trust store takes.
fn bundled_roots_pem() -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2048);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.encode(cert.as_ref()).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_root_survives_the_pem_round_trip() {
        let pem = bundled_roots_pem();
        let back = rustls_pki_types::CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(back.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(back.iter().zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS).all(|(a, b)| a == b));
    }
}
