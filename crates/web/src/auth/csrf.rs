//! Cross-site request forgery: a state-changing request authenticated by cookie must
//! come from our own origin, scheme included. API-key requests carry no ambient credentials
//! and are exempt.

use axum::http::{HeaderMap, Method, header};

use super::AuthSettings;

/// Whether a cookie-authenticated request may proceed: reads always; writes when the
/// browser says they are same-origin (`Sec-Fetch-Site`) and their `Origin` (or, from older
/// clients, `Referer`) is this site as the user reaches it: the scheme of the public URL
/// (`http` without one) and the request's host, which must be one of `allowed_hosts` when
/// the server has a list.
pub fn same_origin(settings: &AuthSettings, method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let fetch_site = text("sec-fetch-site");
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return false;
    }
    let Some(host) = text(header::HOST.as_str()).map(str::to_ascii_lowercase) else {
        return false;
    };
    if !settings.allowed_hosts.is_empty() && !settings.allowed_hosts.contains(&host) {
        return false;
    }
    let scheme = match settings.public_url.as_deref() {
        Some(url) if url.starts_with("https://") => "https",
        _ => "http",
    };
    let ours = format!("{scheme}://{host}");
    match text(header::ORIGIN.as_str()).or(text(header::REFERER.as_str())) {
        Some(url) => origin(url).is_some_and(|origin| origin.eq_ignore_ascii_case(&ours)),
        // Browsers that send Sec-Fetch-Site send Origin on writes too; trust them without.
        None => fetch_site.is_some(),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some(&url[..scheme.len() + 3 + authority.len()])
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

    fn allowed(settings: &AuthSettings, pairs: &[(&'static str, &str)]) -> bool {
        same_origin(settings, &Method::POST, &headers(pairs))
    }

    #[test]
    fn reads_are_always_allowed() {
        let settings = AuthSettings::default();
        assert!(same_origin(&settings, &Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn writes_need_our_origin() {
        let plain = AuthSettings::default();
        let host = ("host", "app.example:3000");
        assert!(allowed(
            &plain,
            &[host, ("origin", "http://app.example:3000")]
        ));
        assert!(allowed(
            &plain,
            &[
                host,
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://app.example:3000")
            ]
        ));
        assert!(!allowed(
            &plain,
            &[
                host,
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://app.example:3000")
            ]
        ));
        assert!(!allowed(&plain, &[host, ("origin", "http://evil.example")]));
        assert!(!allowed(
            &plain,
            &[host, ("origin", "http://app.example:3000.evil.example")]
        ));
        assert!(!allowed(&plain, &[host]));
        assert!(!allowed(&plain, &[("origin", "http://app.example:3000")]));
        assert!(allowed(
            &plain,
            &[
                ("host", "a.example"),
                ("referer", "http://a.example/voices")
            ]
        ));
        assert!(!allowed(
            &plain,
            &[
                ("host", "a.example"),
                ("referer", "http://a.example.evil/voices")
            ]
        ));
    }

    #[test]
    fn the_scheme_must_match_too() {
        let plain = AuthSettings::default();
        let host = ("host", "app.example");
        assert!(!allowed(&plain, &[host, ("origin", "https://app.example")]));
        let https = AuthSettings {
            public_url: Some("https://app.example".into()),
            ..AuthSettings::default()
        };
        assert!(allowed(&https, &[host, ("origin", "https://app.example")]));
        assert!(!allowed(&https, &[host, ("origin", "http://app.example")]));
        assert!(!allowed(
            &https,
            &[
                host,
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://app.example")
            ]
        ));
    }

    #[test]
    fn only_allowed_hosts_when_the_server_has_a_list() {
        let listed = AuthSettings {
            allowed_hosts: vec!["app.example".into(), "localhost:3000".into()],
            ..AuthSettings::default()
        };
        assert!(allowed(
            &listed,
            &[("host", "app.example"), ("origin", "http://app.example")]
        ));
        assert!(allowed(
            &listed,
            &[
                ("host", "LOCALHOST:3000"),
                ("origin", "http://localhost:3000")
            ]
        ));
        // DNS rebinding: the attacker's name resolves to this server.
        assert!(!allowed(
            &listed,
            &[
                ("host", "rebound.evil"),
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://rebound.evil")
            ]
        ));
    }
}
