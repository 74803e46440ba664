//! The local stack (`cargo run`) as the tests drive it: a process on free ports in a
//! temporary data directory, and users signed in through its dev issuer whose requests to
//! the API carry their token (requests to the S3 endpoint never do).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Stack {
    pub child: Child,
    pub api: String,
    pub s3: String,
    /// What it printed up to "Ready".
    pub banner: Vec<String>,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("picasso-test-{tag}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `picasso` binary on free ports with `data` as its data directory.
pub fn command(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picasso"));
    cmd.args(["--port", "0", "--s3-port", "0", "--data-dir"])
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn");
    cmd
}

impl Stack {
    pub fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = command(data, args, env).stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut api, mut s3, mut banner) = (None, None, Vec::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(u) = line.strip_prefix("API: ") {
                api = Some(u.to_owned());
            }
            if let Some(u) = line.strip_prefix("S3: ") {
                s3 = Some(u.split(' ').next().unwrap().to_owned());
            }
            let ready = line.starts_with("Ready in");
            banner.push(line);
            if ready {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, api: api.expect("banner names the API"), s3: s3.expect("banner names S3"), banner }
    }

    /// Ctrl-C, and the process must exit cleanly.
    pub fn stop(mut self) {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(Instant::now() < deadline, "did not stop within 10 s of Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `sub` signed in through the stack's dev issuer.
    pub async fn sign_in(&self, http: &reqwest::Client, sub: &str) -> User {
        self.sign_in_to(http, sub, &[]).await
    }

    /// `sub`, member of `groups`, signed in through the stack's dev issuer.
    pub async fn sign_in_to(&self, http: &reqwest::Client, sub: &str, groups: &[&str]) -> User {
        let resp = http
            .post(format!("{}/auth/dev-token", self.api))
            .json(&json!({"sub": sub, "groups": groups}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "POST /auth/dev-token");
        let body: Value = resp.json().await.unwrap();
        self.user(http, body["token"].as_str().unwrap())
    }

    /// Whoever holds `token`.
    pub fn user(&self, http: &reqwest::Client, token: &str) -> User {
        User { http: http.clone(), api: self.api.clone(), token: token.to_owned() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap()
}

/// A caller of the API with a bearer token.
#[derive(Clone)]
pub struct User {
    pub http: reqwest::Client,
    pub api: String,
    pub token: String,
}

impl User {
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.api)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.api)).bearer_auth(&self.token)
    }

    /// `GET path`, which must answer `status`, and its JSON.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let resp = self.get(path).send().await.unwrap();
        assert_eq!(resp.status(), status, "GET {path}");
        resp.json().await.unwrap()
    }
}

pub async fn request_upload(user: &User, name: &str, ctype: &str, size: usize) -> Value {
    let body = json!({"filename": name, "content_type": ctype, "size": size});
    let resp = user.post("/upload").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// The presigned PUT of `file`'s upload slot, as a browser sends it (no bearer token).
pub async fn put(http: &reqwest::Client, file: &Value, url: &str, body: Vec<u8>, override_type: Option<&str>) -> u16 {
    let mut req = http.put(url).body(body);
    for (k, v) in file["upload"]["headers"].as_object().unwrap() {
        req = req.header(k, override_type.filter(|_| k == "content-type").unwrap_or(v.as_str().unwrap()));
    }
    req.send().await.unwrap().status().as_u16()
}

/// The documented two steps: ask for a slot, PUT the bytes to it.
pub async fn upload(user: &User, name: &str, ctype: &str, body: Vec<u8>) -> Value {
    let file = request_upload(user, name, ctype, body.len()).await;
    assert_eq!(put(&user.http, &file, file["upload"]["url"].as_str().unwrap(), body, None).await, 200);
    file
}

pub async fn get_file(user: &User, id: &str) -> Value {
    user.get(&format!("/files/{id}")).send().await.unwrap().json().await.unwrap()
}

pub async fn until_final(user: &User, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let f = get_file(user, id).await;
        if f["status"] == "processed" || f["status"] == "failed" {
            return f;
        }
        assert!(Instant::now() < deadline, "still {f} after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
