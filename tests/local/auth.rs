//! Who may call the local stack, with real signed tokens: the built-in dev issuer's, tokens
//! crafted here with its key (from the data directory) or with keys made here, a second
//! stack trusting the first as its issuer (`--jwt-issuer`), a stand-in OIDC issuer serving
//! RS256 keys that rotate, and `--no-auth`.

use crate::harness as local;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use local::{Stack, User, client, command, put, request_upload, temp_dir, until_final, upload};
use serde_json::{Value, json};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.signature`, signed by `sign` over the first two parts.
fn jwt(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `base` with the fields of `patch` set, or removed where `patch` has null.
fn with(base: &Value, patch: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            out.as_object_mut().unwrap().remove(k);
        } else {
            out[k] = v.clone();
        }
    }
    out
}

/// A P-256 key signing ES256 tokens under `kid`.
struct EcKey {
    pair: EcdsaKeyPair,
    kid: String,
}

impl EcKey {
    /// The stack's own dev issuer key, read from its data directory, named as its JWKS names it.
    async fn dev_issuer(stack: &Stack, data: &std::path::Path) -> Self {
        let pem = std::fs::read_to_string(data.join("dev-issuer-key.pem")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &STANDARD.decode(body).unwrap()).unwrap();
        let jwks: Value =
            client().get(format!("{}/.well-known/jwks.json", stack.api)).send().await.unwrap().json().await.unwrap();
        Self { pair, kid: jwks["keys"][0]["kid"].as_str().unwrap().to_owned() }
    }

    fn generate(kid: &str) -> Self {
        Self { pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(), kid: kid.to_owned() }
    }

    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        jwt(header, claims, |m| self.pair.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec())
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": "ES256", "typ": "JWT", "kid": self.kid}), claims)
    }
}

/// HS256 over the token with `secret` as the HMAC key.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    jwt(header, claims, |m| aws_lc_rs::hmac::sign(&key, m).as_ref().to_vec())
}

/// The claims of a good token of `stack`'s dev issuer for `sub`.
fn claims_for(stack: &Stack, sub: &str) -> Value {
    let t = now();
    json!({"iss": stack.api, "sub": sub, "aud": "picasso-local", "iat": t, "exp": t + 600})
}

/// What every refusal looks like: 401, `WWW-Authenticate: Bearer`, the API's error body.
async fn assert_refused(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), 401, "{what}");
    assert_eq!(resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"), "{what}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{what}: {body}");
}

/// `authorization` (a whole header value, or none) on an upload request and a listing.
async fn assert_both_refused(http: &reqwest::Client, api: &str, authorization: Option<&str>, what: &str) {
    let body = json!({"filename": "sneaky.txt", "content_type": "text/plain", "size": 5});
    let mut post = http.post(format!("{api}/upload")).json(&body);
    let mut list = http.get(format!("{api}/files"));
    if let Some(a) = authorization {
        post = post.header("authorization", a);
        list = list.header("authorization", a);
    }
    assert_refused(post.send().await.unwrap(), &format!("POST /upload, {what}")).await;
    assert_refused(list.send().await.unwrap(), &format!("GET /files, {what}")).await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_nothing_is_written() {
    let data = temp_dir("tokens");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let dev = EcKey::dev_issuer(&stack, &data).await;
    let base = claims_for(&stack, "mallory");
    let t = now();

    // Tokens made here with the issuer's key are good: the refusals below are for what was changed.
    for (what, claims) in [
        ("as the issuer makes them", base.clone()),
        ("expired within the leeway", with(&base, json!({"exp": t - 10}))),
        ("valid within the leeway", with(&base, json!({"nbf": t + 10}))),
        ("aud among others", with(&base, json!({"aud": ["other", "picasso-local"]}))),
        (
            "client_id instead of aud (Cognito access token)",
            with(&base, json!({"aud": null, "client_id": "picasso-local"})),
        ),
    ] {
        let user = stack.user(&http, &dev.sign(&claims));
        user.get_json("/files", 200).await;
        println!("accepted: {what}");
    }

    let good = dev.sign(&base);
    // As with API Gateway, the `Bearer ` prefix may be left out.
    let resp = http.get(format!("{}/files", stack.api)).header("authorization", &good).send().await.unwrap();
    assert_eq!(resp.status(), 200, "a bare token");
    let (head, _, sig) = {
        let parts: Vec<&str> = good.split('.').collect();
        (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned())
    };
    let tampered = format!("{head}.{}.{sig}", b64(with(&base, json!({"sub": "alice"})).to_string()));
    let dev_header = |alg: &str| json!({"alg": alg, "typ": "JWT", "kid": dev.kid});
    let public_point = dev.pair.public_key().as_ref().to_vec();
    let jwks = http.get(format!("{}/.well-known/jwks.json", stack.api)).send().await.unwrap().text().await.unwrap();
    let public_jwk = serde_json::to_string(&serde_json::from_str::<Value>(&jwks).unwrap()["keys"][0]).unwrap();
    let stranger = EcKey::generate("not-published");
    let impostor = EcKey::generate(&dev.kid);
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("another scheme", Some(format!("Basic {}", STANDARD.encode("alice:secret")))),
        ("an empty bearer", Some("Bearer ".into())),
        ("not a JWT", bearer("not-a-jwt".into())),
        ("expired", bearer(dev.sign(&with(&base, json!({"exp": t - 120}))))),
        ("not yet valid", bearer(dev.sign(&with(&base, json!({"nbf": t + 300}))))),
        ("no exp", bearer(dev.sign(&with(&base, json!({"exp": null}))))),
        ("no sub", bearer(dev.sign(&with(&base, json!({"sub": null}))))),
        ("another issuer", bearer(dev.sign(&with(&base, json!({"iss": "http://127.0.0.1:1"}))))),
        ("another audience", bearer(dev.sign(&with(&base, json!({"aud": "someone-else"}))))),
        ("no audience", bearer(dev.sign(&with(&base, json!({"aud": null}))))),
        (
            "aud wrong, client_id right",
            bearer(dev.sign(&with(&base, json!({"aud": "x", "client_id": "picasso-local"})))),
        ),
        ("a tampered payload", bearer(tampered)),
        ("a truncated signature", bearer(good[..good.len() - 4].to_owned())),
        ("alg none", bearer(jwt(&dev_header("none"), &base, |_| Vec::new()))),
        (
            "alg none with the real signature",
            bearer(format!("{}.{}.{sig}", b64(dev_header("none").to_string()), good.split('.').nth(1).unwrap())),
        ),
        ("HS256 keyed with the public key's point", bearer(hs256(&dev_header("HS256"), &base, &public_point))),
        ("HS256 keyed with the public JWK", bearer(hs256(&dev_header("HS256"), &base, public_jwk.as_bytes()))),
        ("HS256 keyed with the JWKS document", bearer(hs256(&dev_header("HS256"), &base, jwks.as_bytes()))),
        ("ES384 claimed for an ES256 key", bearer(dev.sign_with_header(&dev_header("ES384"), &base))),
        ("RS256 claimed for an ES256 key", bearer(dev.sign_with_header(&dev_header("RS256"), &base))),
        ("no kid", bearer(dev.sign_with_header(&json!({"alg": "ES256", "typ": "JWT"}), &base))),
        ("an unknown kid", bearer(stranger.sign(&base))),
        ("the issuer's kid, another key", bearer(impostor.sign(&base))),
    ];
    for (what, authorization) in &refused {
        assert_both_refused(&http, &stack.api, authorization.as_deref(), what).await;
    }

    // Nothing was recorded, nothing stored.
    let admin = stack.sign_in_to(&http, "root", &["admins"]).await;
    assert_eq!(admin.get_json("/files?scope=all", 200).await["items"], json!([]));
    let objects: Vec<_> = std::fs::read_dir(data.join("objects/picasso-uploads")).unwrap().collect();
    assert!(objects.is_empty(), "no object written");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn the_dev_issuer_publishes_its_key_keeps_it_and_hands_out_tokens() {
    use std::os::unix::fs::PermissionsExt;
    let data = temp_dir("dev-issuer");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let get = |path: &str| http.get(format!("{}{path}", stack.api)).send();

    let discovery: Value = get("/.well-known/openid-configuration").await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], stack.api.as_str(), "the issuer is the stack's own URL");
    assert_eq!(discovery["jwks_uri"], format!("{}/.well-known/jwks.json", stack.api));
    let jwks: Value = get("/.well-known/jwks.json").await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("d").is_none(), "only the public half is published: {key}");
    let path = data.join("dev-issuer-key.pem");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "owner only");
    let config: Value = get("/auth/config").await.unwrap().json().await.unwrap();
    let expected = json!({"mode": "dev", "issuer": stack.api, "audience": "picasso-local", "admin_group": "admins"});
    assert_eq!(config, expected);

    // A token for a name, valid for an hour.
    let resp = http.post(format!("{}/auth/dev-token", stack.api)).json(&json!({"sub": "alice"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap().timestamp();
    assert!((expires - now() - 3600).abs() < 60, "{body}");
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(body["token"].as_str().unwrap().split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!((payload["sub"].as_str(), payload["iss"].as_str()), (Some("alice"), Some(stack.api.as_str())));
    assert_eq!(payload["aud"], "picasso-local");
    stack.user(&http, body["token"].as_str().unwrap()).get_json("/files", 200).await;

    // Its body is checked as the API's are.
    for (body, code) in [
        ("not json".to_owned(), "invalid_json"),
        ("{}".to_owned(), "missing_field"),
        (r#"{"sub": ""}"#.to_owned(), "invalid_field"),
        (r#"{"sub": "al\nice"}"#.to_owned(), "invalid_field"),
        (json!({"sub": "a".repeat(256)}).to_string(), "invalid_field"),
        (r#"{"sub": "alice", "groups": "admins"}"#.to_owned(), "invalid_field"),
    ] {
        let resp = http.post(format!("{}/auth/dev-token", stack.api)).body(body.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
    }

    // The banner's curl line works as pasted.
    let line = stack.banner.iter().find(|l| l.contains("curl -H")).expect("a curl line in the banner");
    let token = line.split("Bearer ").nth(1).unwrap().split('"').next().unwrap();
    let url = line.rsplit(' ').next().unwrap();
    assert_eq!(url, format!("{}/files", stack.api));
    let resp = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{line}");
    stack.stop();

    // The key is made once: the next start signs with the same one.
    let stack = Stack::start(&data, &[], &[]);
    let again: Value =
        client().get(format!("{}/.well-known/jwks.json", stack.api)).send().await.unwrap().json().await.unwrap();
    assert_eq!(again, jwks);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn two_users_never_see_each_others_files() {
    let data = temp_dir("owners");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let bob = stack.sign_in(&http, "bob").await;

    let image = upload(&alice, "alice.png", "image/png", png(64, 32)).await;
    let text = upload(&alice, "alice.txt", "text/plain", b"alice's notes\n".to_vec()).await;
    let waiting = request_upload(&alice, "later.txt", "text/plain", 5).await;
    let bobs = upload(&bob, "bob.txt", "text/plain", b"bob's notes\n".to_vec()).await;
    let id = |f: &Value| f["id"].as_str().unwrap().to_owned();
    let image_done = until_final(&alice, &id(&image)).await;
    assert!(image_done["thumbnail_url"].is_string() && image_done["download_url"].is_string(), "{image_done}");
    until_final(&alice, &id(&text)).await;
    until_final(&bob, &id(&bobs)).await;
    let alices = [id(&waiting), id(&text), id(&image)];

    // Listing: each sees their own, newest first.
    assert_eq!(ids(&alice.get_json("/files", 200).await), alices);
    assert_eq!(ids(&bob.get_json("/files", 200).await), [id(&bobs)]);
    // One file: someone else's is as if it did not exist, so are its links.
    for a in &alices {
        let resp = bob.get(&format!("/files/{a}")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        let text = resp.text().await.unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["code"], "not_found");
        assert!(!text.contains("X-Amz-Signature") && !text.contains("thumbnails/"), "{text}");
    }
    let missing = bob.get(&format!("/files/{}", picasso::domain::FileId::new())).send().await.unwrap();
    assert_eq!(missing.status(), 404, "the same answer as for a file that does not exist");
    let bob_list = bob.get("/files?limit=1000").send().await.unwrap().text().await.unwrap();
    assert!(alices.iter().all(|a| !bob_list.contains(a.as_str())), "{bob_list}");
    // Cursors are bound to their owner.
    let first = alice.get_json("/files?limit=1", 200).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    assert_eq!(ids(&alice.get_json(&format!("/files?limit=1&cursor={cursor}"), 200).await), [id(&text)]);
    let resp = bob.get(&format!("/files?limit=1&cursor={cursor}")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "invalid_cursor");
    // The status filter is per user too.
    assert_eq!(ids(&bob.get_json("/files?status=processed", 200).await), [id(&bobs)]);
    assert_eq!(ids(&bob.get_json("/files?status=pending", 200).await), Vec::<String>::new());
    assert_eq!(ids(&alice.get_json("/files?status=pending", 200).await), [id(&waiting)]);
    assert_eq!(ids(&alice.get_json("/files?status=processed", 200).await), [id(&text), id(&image)]);
    // Bob cannot send bytes into alice's slot with his own upload either: the URL is bound to her key.
    let his = request_upload(&bob, "b2.txt", "text/plain", 5).await;
    let into_hers = his["upload"]["url"].as_str().unwrap().replace(&id(&his), &id(&waiting));
    assert_eq!(put(&http, &his, &into_hers, b"hello".to_vec(), None).await, 403);

    // Everyone's files are for admins only, paged the same way.
    let resp = bob.get("/files?scope=all").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "forbidden");
    let admin = stack.sign_in_to(&http, "root", &["admins"]).await;
    assert_eq!(ids(&admin.get_json("/files", 200).await), Vec::<String>::new(), "an admin's own listing is their own");
    let page = admin.get_json("/files?scope=all&limit=3", 200).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = admin.get_json(&format!("/files?scope=all&limit=3&cursor={cursor}"), 200).await;
    let mut everyone = [ids(&page), ids(&rest)].concat();
    assert_eq!(rest["next_cursor"], Value::Null);
    let mut expected = [alices.to_vec(), vec![id(&bobs), id(&his)]].concat();
    everyone.sort();
    expected.sort();
    assert_eq!(everyone, expected);
    assert!(admin.get_json(&format!("/files/{}", id(&image)), 200).await["download_url"].is_string());
    // An admin scope cursor means nothing to a user's own listing.
    let resp = alice.get(&format!("/files?cursor={cursor}")).send().await.unwrap();
    assert_eq!(resp.status(), 400);

    // Groups as Cognito names them make an admin too; other groups do not.
    let dev = EcKey::dev_issuer(&stack, &data).await;
    let cognito_admin =
        stack.user(&http, &dev.sign(&with(&claims_for(&stack, "carol"), json!({"cognito:groups": ["admins"]}))));
    assert_eq!(ids(&cognito_admin.get_json("/files?scope=all&limit=1000", 200).await).len(), 5);
    let user = stack.user(&http, &dev.sign(&with(&claims_for(&stack, "dave"), json!({"groups": ["users"]}))));
    assert_eq!(user.get("/files?scope=all").send().await.unwrap().status(), 403);
    // Groups are read from the configured claim only (`GROUPS_CLAIM`), as on AWS.
    let elsewhere = stack.user(&http, &dev.sign(&with(&claims_for(&stack, "eve"), json!({"groups": ["admins"]}))));
    assert_eq!(elsewhere.get("/files?scope=all").send().await.unwrap().status(), 403);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn a_second_stack_verifies_the_first_ones_tokens_and_has_no_dev_issuer() {
    let (data, data2) = (temp_dir("issuer"), temp_dir("relying"));
    let first = Stack::start(&data, &[], &[]);
    let http = client();
    let issuer_args = ["--jwt-issuer", first.api.as_str(), "--jwt-audience", "picasso-local"];
    let second = Stack::start(&data2, &issuer_args, &[]);
    assert!(second.banner.iter().any(|l| l == &format!("Auth: tokens of {} for audience picasso-local", first.api)));
    assert!(!second.banner.iter().any(|l| l.contains("curl")), "no dev token to offer");

    let alice = second.user(&http, &first.sign_in(&http, "alice").await.token);
    let file = upload(&alice, "from-afar.txt", "text/plain", b"signed elsewhere\n".to_vec()).await;
    assert_eq!(until_final(&alice, file["id"].as_str().unwrap()).await["status"], "processed");
    assert_eq!(ids(&alice.get_json("/files", 200).await), [file["id"].as_str().unwrap()]);
    let admin = second.user(&http, &first.sign_in_to(&http, "root", &["admins"]).await.token);
    assert_eq!(ids(&admin.get_json("/files?scope=all", 200).await).len(), 1);
    assert_both_refused(&http, &second.api, None, "no token").await;

    // Its own dev issuer is off.
    let resp = http.post(format!("{}/auth/dev-token", second.api)).json(&json!({"sub": "alice"})).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    for path in ["/.well-known/jwks.json", "/.well-known/openid-configuration"] {
        assert_eq!(http.get(format!("{}{path}", second.api)).send().await.unwrap().status(), 404, "{path}");
    }
    let config: Value = http.get(format!("{}/auth/config", second.api)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["mode"], "issuer");
    second.stop();

    // The same from the environment; and another audience refuses the first's tokens.
    let env = [("PICASSO_JWT_ISSUER", first.api.as_str()), ("PICASSO_JWT_AUDIENCE", "another-app")];
    let third = Stack::start(&data2, &[], &env);
    let resp = third.user(&http, &alice.token).get("/files").send().await.unwrap();
    assert_refused(resp, "a token for another audience").await;
    third.stop();

    // --jwt-issuer needs --jwt-audience, and an issuer that answers.
    let out = command(&data2, &["--jwt-issuer", first.api.as_str()], &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--jwt-audience"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = command(&data2, &["--jwt-issuer", "http://127.0.0.1:1", "--jwt-audience", "x"], &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("discovering the issuer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    first.stop();
    std::fs::remove_dir_all(data).unwrap();
    std::fs::remove_dir_all(data2).unwrap();
}

#[tokio::test]
async fn without_auth_no_token_is_needed_and_every_file_is_anonymous() {
    let data = temp_dir("no-auth");
    let http = client();
    for (args, env) in [(&["--no-auth"][..], &[][..]), (&[][..], &[("PICASSO_NO_AUTH", "1")][..])] {
        let stack = Stack::start(&data, args, env);
        assert!(stack.banner.iter().any(|l| l.starts_with("Auth: off")));
        // A token, if one is sent, is not even looked at.
        let anyone = stack.user(&http, "not-a-token");
        let file = upload(&anyone, "seed.txt", "text/plain", b"seeded\n".to_vec()).await;
        let resp = http.get(format!("{}/files/{}", stack.api, file["id"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(resp.status(), 200, "no token needed");
        let resp =
            http.post(format!("{}/auth/dev-token", stack.api)).json(&json!({"sub": "alice"})).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        stack.stop();
    }
    // Signed in again, alice does not see anonymous's files; an admin does.
    let stack = Stack::start(&data, &[], &[]);
    let alice = stack.sign_in(&http, "alice").await;
    assert_eq!(ids(&alice.get_json("/files", 200).await), Vec::<String>::new());
    let admin = stack.sign_in_to(&http, "root", &["admins"]).await;
    assert_eq!(ids(&admin.get_json("/files?scope=all", 200).await).len(), 2);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

/// An RSA key signing RS256 tokens under `kid`.
struct RsaKey {
    pair: aws_lc_rs::rsa::KeyPair,
    kid: String,
}

impl RsaKey {
    fn generate(kid: &str) -> Self {
        Self { pair: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(), kid: kid.into() }
    }

    fn jwk(&self) -> Value {
        let public = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64(&public.n), "e": b64(&public.e)})
    }

    fn sign(&self, claims: &Value) -> String {
        jwt(&json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}), claims, |m| {
            let mut sig = vec![0; self.pair.public_modulus_len()];
            self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), m, &mut sig).unwrap();
            sig
        })
    }
}

/// A stand-in OIDC issuer on loopback: a discovery document and a JWKS that the test
/// changes, counting the JWKS fetches.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer() -> Issuer {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (keys, fetches) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/keys")});
    let (k, f) = (keys.clone(), fetches.clone());
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || std::future::ready(axum::Json(discovery.clone()))))
        .route(
            "/keys",
            get(move || {
                f.fetch_add(1, Ordering::SeqCst);
                std::future::ready(axum::Json(json!({"keys": k.lock().unwrap().clone()})))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { url, keys, fetches }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuers_new_keys_are_fetched_on_an_unknown_kid_at_most_once_per_interval() {
    const EVERY: Duration = Duration::from_secs(3);
    let issuer = issuer().await;
    let (k1, k2, k3) = (RsaKey::generate("k1"), RsaKey::generate("k2"), RsaKey::generate("k3"));
    issuer.keys.lock().unwrap().push(k1.jwk());
    let data = temp_dir("rotation");
    let args = ["--jwt-issuer", issuer.url.as_str(), "--jwt-audience", "api://picasso"];
    let stack = Stack::start(&data, &args, &[("PICASSO_JWKS_REFETCH_MS", "3000")]);
    let fetched = Instant::now();
    let http = client();
    let t = now();
    let claims = json!({"iss": issuer.url, "sub": "erin", "aud": "api://picasso", "exp": t + 600, "scope": "openid"});
    let as_user = |token: String| -> User { stack.user(&http, &token) };
    let fetches = || issuer.fetches.load(Ordering::SeqCst);

    // RS256, from the issuer's JWKS.
    as_user(k1.sign(&claims)).get_json("/files", 200).await;
    assert_eq!(fetches(), 1, "fetched once at start");
    let rsa_n = URL_SAFE_NO_PAD.decode(k1.jwk()["n"].as_str().unwrap()).unwrap();
    let confused = hs256(&json!({"alg": "HS256", "kid": "k1"}), &claims, &rsa_n);
    assert_refused(as_user(confused).get("/files").send().await.unwrap(), "HS256 keyed with the RSA modulus").await;

    // A new key: fetched once its kid shows up, when the last fetch is old enough.
    issuer.keys.lock().unwrap().push(k2.jwk());
    tokio::time::sleep(EVERY.saturating_sub(fetched.elapsed()) + Duration::from_millis(200)).await;
    let refetched = Instant::now();
    as_user(k2.sign(&claims)).get_json("/files", 200).await;
    assert_eq!(fetches(), 2);
    // Unknown kids right after: refused without asking the issuer again.
    for _ in 0..3 {
        assert_refused(as_user(k3.sign(&claims)).get("/files").send().await.unwrap(), "k3, unpublished").await;
    }
    issuer.keys.lock().unwrap().push(k3.jwk());
    let resp = as_user(k3.sign(&claims)).get("/files").send().await.unwrap();
    assert!(refetched.elapsed() < EVERY, "the machine was too slow for this check");
    assert_refused(resp, "k3, published but too soon").await;
    assert_eq!(fetches(), 2, "at most one fetch per interval");
    tokio::time::sleep(EVERY + Duration::from_millis(200)).await;
    as_user(k3.sign(&claims)).get_json("/files", 200).await;
    assert_eq!(fetches(), 3);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_anyone_may_sign_in_only_localhost_and_addresses_are_served() {
    let data = temp_dir("rebinding");
    let http = client();
    let stack = Stack::start(&data, &[], &[]);
    // A page of attacker.example, its name now resolving to 127.0.0.1 (DNS rebinding).
    for path in ["/auth/dev-token", "/files", "/"] {
        let resp = http
            .post(format!("{}{path}", stack.api))
            .header("host", "attacker.example")
            .json(&json!({"sub": "root", "groups": ["admins"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "host_not_allowed", "{path}");
    }
    let port = stack.api.rsplit(':').next().unwrap();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let resp = http.get(format!("{}/", stack.api)).header("host", host.as_str()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{host}");
    }
    stack.stop();

    // With a real issuer no one signs in by asking: any name is served (and needs a token).
    let issuer = issuer().await;
    issuer.keys.lock().unwrap().push(RsaKey::generate("k1").jwk());
    let args = ["--jwt-issuer", issuer.url.as_str(), "--jwt-audience", "api://picasso"];
    let stack = Stack::start(&data, &args, &[]);
    let resp = http.get(format!("{}/files", stack.api)).header("host", "files.example").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn open_sign_in_stays_on_this_machine_unless_allowed_and_says_so() {
    let data = temp_dir("remote-dev");
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    for args in [&["--host", "0.0.0.0"][..], &["--host", "0.0.0.0", "--no-auth"][..]] {
        let out = command(&data, args, &[]).output().unwrap();
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr(&out).contains("--allow-remote-dev"), "{args:?}: {}", stderr(&out));
    }
    let stack = Stack::start(&data, &["--host", "0.0.0.0", "--allow-remote-dev"], &[]);
    assert!(
        stack.banner.iter().any(|l| l.contains("anyone on the network") || l.contains("Anyone on the network")),
        "{:#?}",
        stack.banner
    );
    stack.stop();
    let stack = Stack::start(&data, &["--no-auth"], &[]);
    assert!(stack.banner.iter().any(|l| l.contains("NO SIGN-IN")), "{:#?}", stack.banner);
    assert!(stack.banner.iter().filter(|l| l.starts_with("!!")).count() >= 4, "a block, not a line");
    stack.stop();
    // A real issuer elsewhere is reached over https only (no request is made for this one).
    let out = command(&data, &["--jwt-issuer", "http://issuer.example", "--jwt-audience", "x"], &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("must be https"), "{}", stderr(&out));
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_issuer_no_longer_publishes_stops_verifying() {
    const MAX_AGE: Duration = Duration::from_millis(1500);
    let issuer = issuer().await;
    let (old, new) = (RsaKey::generate("old"), RsaKey::generate("new"));
    issuer.keys.lock().unwrap().push(old.jwk());
    let data = temp_dir("revoked");
    let args = ["--jwt-issuer", issuer.url.as_str(), "--jwt-audience", "api://picasso"];
    let env = [("PICASSO_JWKS_MAX_AGE_MS", "1500"), ("PICASSO_JWKS_REFETCH_MS", "200")];
    let stack = Stack::start(&data, &args, &env);
    let http = client();
    let claims = json!({"iss": issuer.url, "sub": "erin", "aud": "api://picasso", "exp": now() + 600});
    stack.user(&http, &old.sign(&claims)).get_json("/files", 200).await;
    // The issuer revokes the old key and publishes a new one.
    *issuer.keys.lock().unwrap() = vec![new.jwk()];
    tokio::time::sleep(MAX_AGE + Duration::from_millis(300)).await;
    let resp = stack.user(&http, &old.sign(&claims)).get("/files").send().await.unwrap();
    assert_refused(resp, "a key the issuer removed").await;
    stack.user(&http, &new.sign(&claims)).get_json("/files", 200).await;
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}
