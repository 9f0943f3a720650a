//! Cross-site request forgery: a state-changing request authenticated by cookie must
//! come from our own origin. API-key requests carry no ambient credentials and are
//! exempt.

use axum::http::{HeaderMap, Method, header};

/// Whether a cookie-authenticated request may proceed.
pub fn same_origin(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin_host(origin) == Some(host),
        // Without Origin or Sec-Fetch-Site (older or non-browser clients), fall back to Referer.
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(origin_host)
            .is_some_and(|h| h == host),
    }
}

fn origin_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_are_always_allowed() {
        assert!(same_origin(&Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn writes_need_our_origin() {
        let post = Method::POST;
        assert!(same_origin(
            &post,
            &headers(&[("sec-fetch-site", "same-origin")])
        ));
        assert!(!same_origin(
            &post,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
        assert!(same_origin(
            &post,
            &headers(&[
                ("host", "app.example:3000"),
                ("origin", "https://app.example:3000")
            ])
        ));
        assert!(!same_origin(
            &post,
            &headers(&[
                ("host", "app.example:3000"),
                ("origin", "https://evil.example")
            ])
        ));
        assert!(!same_origin(
            &post,
            &headers(&[("host", "app.example:3000")])
        ));
        assert!(same_origin(
            &post,
            &headers(&[
                ("host", "a.example"),
                ("referer", "http://a.example/voices")
            ])
        ));
    }
}
