//! A minimal HTTP/1 client on hyper-util, which the AWS SDK already builds with the same
//! features. reqwest would add tower features and so rebuild (and change) the very
//! binaries being measured.

use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A client, optionally signed in: every request then carries its bearer token.
#[derive(Clone)]
pub struct Http(Client<HttpConnector, Full<Bytes>>, Option<String>);

pub struct Resp {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("not JSON ({}): {:?}", self.status, self.body))
    }
}

impl Http {
    pub fn new() -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        Self(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(conn), None)
    }

    /// The same client, sending `Authorization: Bearer token`.
    pub fn signed_in(&self, token: &str) -> Self {
        Self(self.0.clone(), Some(format!("Bearer {token}")))
    }

    /// Sends and reads the whole body; the connection goes back to the pool for reuse.
    pub async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: Bytes) -> anyhow::Result<Resp> {
        let mut req = Request::builder().method(method).uri(url);
        // Only to the API: presigned URLs carry their own signature.
        if let Some(auth) = self.1.as_ref().filter(|_| !url.contains("X-Amz-Signature")) {
            req = req.header("authorization", auth);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.0.request(req.body(Full::new(body))?).await.with_context(|| format!("request to {url}"))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Resp { status, body })
    }

    /// `GET url`, its body left to read as it comes (Server-Sent Events).
    pub async fn open(&self, url: &str) -> anyhow::Result<hyper::body::Incoming> {
        let mut req = Request::builder().method(Method::GET).uri(url);
        if let Some(auth) = &self.1 {
            req = req.header("authorization", auth);
        }
        let resp = self.0.request(req.body(Full::new(Bytes::new()))?).await.with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(resp.status() == StatusCode::OK, "GET {url}: {}", resp.status());
        Ok(resp.into_body())
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<Resp> {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }
}
