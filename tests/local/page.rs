//! The page at `GET /` as the local stack serves it: no token, its settings from the stack's
//! flags (never from the URL), a policy naming those origins only; flags that cannot work
//! stop the stack at start.

use serde_json::Value;

use crate::harness::{Stack, client, temp_dir};

/// The page's settings block and its Content-Security-Policy.
async fn page(base: &str, query: &str) -> (Value, String) {
    let resp = client().get(format!("{base}/{query}")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "no token needed");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    let html = resp.text().await.unwrap();
    let open = r#"<script type="application/json" id="picasso-settings">"#;
    let start = html.find(open).unwrap() + open.len();
    let json = &html[start..start + html[start..].find("</script>").unwrap()];
    (serde_json::from_str(json).unwrap(), csp)
}

fn connect_src(csp: &str) -> Vec<String> {
    let directive = csp.split("; ").find(|d| d.starts_with("connect-src ")).unwrap();
    directive.split(' ').skip(1).map(String::from).collect()
}

#[tokio::test]
async fn the_page_is_told_the_stacks_settings_or_the_flags_never_the_url() {
    let data = temp_dir("page");
    let stack = Stack::start(&data, &[], &[]);
    let (own, csp) = page(&stack.api, "?api=https://elsewhere.example&ws=wss://elsewhere.example/").await;
    assert_eq!(own["api"], Value::Null, "the page calls the API that served it");
    assert_eq!(own["auth"]["mode"], "dev");
    assert_eq!(own["live"]["sse"], "/events");
    assert_eq!(connect_src(&csp), ["'self'".to_string(), stack.s3.clone()], "itself and its storage");
    stack.stop();

    let args = [
        "--api",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/",
        "--live-url",
        "wss://ws456.execute-api.eu-west-1.amazonaws.com/live",
        "--hosted-ui",
        "pics.auth.eu-west-1.amazoncognito.com",
        "--client-id",
        "4e5b7mxmpl9d3ok8q2n1s6r0ta",
    ];
    let stack = Stack::start(&data, &args, &[]);
    let (told, csp) = page(&stack.api, "").await;
    assert_eq!(told["api"], "https://abc123.execute-api.eu-west-1.amazonaws.com");
    assert_eq!(told["live"]["websocket"], "wss://ws456.execute-api.eu-west-1.amazonaws.com/live");
    assert_eq!(told["auth"]["mode"], "cognito");
    assert_eq!(told["auth"]["client_id"], "4e5b7mxmpl9d3ok8q2n1s6r0ta");
    assert_eq!(told["auth"]["domain"], "pics.auth.eu-west-1.amazoncognito.com");
    let connect = connect_src(&csp);
    for origin in [
        "https://abc123.execute-api.eu-west-1.amazonaws.com",
        "https://pics.auth.eu-west-1.amazoncognito.com",
        "wss://ws456.execute-api.eu-west-1.amazonaws.com",
    ] {
        assert!(connect.iter().any(|c| c == origin), "{origin} in {connect:?}");
    }
    stack.stop();
}

#[test]
fn page_settings_that_cannot_work_stop_the_stack_at_start() {
    let data = temp_dir("page-flags");
    for (args, says) in [
        (vec!["--api", "ftp://files.example.com"], "--api"),
        (vec!["--api", "https://a.example.com;script-src *"], "--api"),
        (vec!["--live-url", "https://ws.example.com/live"], "--live-url"),
        (vec!["--hosted-ui", "pics.auth.eu-west-1.amazoncognito.com"], "--client-id"),
        (vec!["--hosted-ui", "pics.example.com", "--client-id", "not an id!"], "--client-id"),
    ] {
        let out = crate::harness::command(&data, &args, &[]).output().unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
