//! The DNS-rebinding guard. While the dev issuer or `--no-auth` is on, anyone whose request
//! reaches the API may act as any user; a web page on another site could make a browser send
//! such requests under a name it controls that resolves to this machine. Those requests carry
//! that name in `Host`: only `localhost` and IP addresses (which a page can only be loaded from
//! by that very address) are served.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use picasso::error::ApiError;

/// Whether `host` (a `Host` header: name or address, with or without a port) may be served.
pub fn is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => match rest.split_once(']') {
            Some((v6, tail)) if tail.is_empty() || tail.starts_with(':') => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Refuses requests whose `Host` is a name other than `localhost` (`403 host_not_allowed`).
pub async fn only_local_names(req: Request, next: Next) -> Response {
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if host.is_empty() || is_local_name(host) {
        return next.run(req).await;
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        "host_not_allowed",
        format!(
            "this local stack signs anyone in (dev issuer or --no-auth), so it answers only to localhost \
             and IP addresses, not to {host:?}"
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_and_addresses_pass_other_names_do_not() {
        for ok in [
            "localhost",
            "localhost:3000",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:3000",
            "192.168.1.5:80",
            "[::1]",
            "[::1]:3000",
        ] {
            assert!(is_local_name(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:3000",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:3000",
            "[::1]x",
            "[attacker]:1",
            "evil:localhost",
        ] {
            assert!(!is_local_name(bad), "{bad}");
        }
    }
}
