//! The web app's pages and embedded assets over HTTP: every page renders, every asset a
//! page or script names is served from the binary with a long cache lifetime, and unknown
//! URLs answer with a page (or JSON under `/api`).

use std::collections::BTreeSet;

use reqwest::StatusCode;
use resonance_storage::{Storage, UrlSigningSecret};
use resonance_web::{AppState, RunningServer};

const PAGES: [&str; 12] = [
    "/",
    "/sign-in",
    "/sign-up",
    "/invite/some-token",
    "/text-to-speech",
    "/text-to-speech/0123456789abcdefghjkmnpq",
    "/history",
    "/voices",
    "/voices/new",
    "/settings",
    "/billing",
    "/sign-in?next=//evil.example",
];

struct Server {
    base: String,
    _server: RunningServer,
    _data: tempfile::TempDir,
}

async fn start() -> Server {
    let data = tempfile::tempdir().unwrap();
    let db = resonance_db::connect(&format!("sqlite://{}/resonance.db", data.path().display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let storage = Storage::local(
        data.path().join("objects"),
        UrlSigningSecret::new(vec![7u8; 32]).unwrap(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = resonance_web::serve(
        listener,
        AppState::new(db, storage, Default::default()),
        std::future::pending(),
    )
    .unwrap();
    Server {
        base: format!("http://{}", server.addr),
        _server: server,
        _data: data,
    }
}

/// The `/assets/...` URLs in `text`, up to the closing quote.
fn asset_urls(text: &str) -> Vec<String> {
    text.match_indices("/assets/")
        .map(|(at, _)| text[at..].split(['"', '\'']).next().unwrap().to_string())
        .collect()
}

/// The relative imports of an ES module, resolved against its URL.
fn module_imports(url: &str, source: &str) -> Vec<String> {
    let dir = &url[..url.rfind('/').unwrap()];
    source
        .match_indices(" from '")
        .map(|(at, _)| source[at + 7..].split('\'').next().unwrap())
        .filter(|path| path.starts_with('.'))
        .map(|path| match path.strip_prefix("./") {
            Some(rest) => format!("{dir}/{rest}"),
            None => {
                let rest = path.strip_prefix("../").unwrap();
                format!("{}/{rest}", &dir[..dir.rfind('/').unwrap()])
            }
        })
        .collect()
}

#[tokio::test]
async fn every_page_renders_and_every_asset_it_needs_is_served_for_a_year() {
    let server = start().await;
    let http = reqwest::Client::new();
    let mut pending = Vec::new();
    for page in PAGES {
        let response = http
            .get(format!("{}{page}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8",
            "{page}"
        );
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<title>") && html.contains("· Resonance</title>"),
            "{page}"
        );
        let urls = asset_urls(&html);
        assert!(
            urls.iter().any(|u| u.ends_with("/app.css")),
            "{page} links the stylesheet"
        );
        pending.extend(urls);
    }

    let mut served = BTreeSet::new();
    while let Some(url) = pending.pop() {
        if !served.insert(url.clone()) {
            continue;
        }
        let response = http
            .get(format!("{}{url}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response.text().await.unwrap();
        assert!(!body.is_empty(), "{url}");
        if url.ends_with(".js") {
            assert_eq!(content_type, "text/javascript; charset=utf-8", "{url}");
            pending.extend(module_imports(&url, &body));
        }
    }
    for needed in [
        "/app.css",
        "/js/app.js",
        "/js/generation.js",
        "/js/billing.js",
        "/vendor/wavesurfer.esm.js",
        "/js/wav-recorder.js",
    ] {
        assert!(
            served.iter().any(|url| url.ends_with(needed)),
            "{needed} was never reached from a page"
        );
    }
    let wavesurfer = served
        .iter()
        .find(|url| url.ends_with("/vendor/wavesurfer.esm.js"))
        .unwrap();
    let source = http
        .get(format!("{}{wavesurfer}", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        source.starts_with("/*! wavesurfer.js 7."),
        "the vendored file names its version"
    );
    assert!(
        source.contains("BSD 3-Clause License"),
        "the vendored file keeps its license"
    );
}

#[tokio::test]
async fn assets_of_another_build_or_unknown_names_are_not_found() {
    let server = start().await;
    let http = reqwest::Client::new();
    let html = http
        .get(format!("{}/sign-in", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stylesheet = asset_urls(&html)
        .into_iter()
        .find(|u| u.ends_with("/app.css"))
        .unwrap();
    let version = stylesheet.split('/').nth(2).unwrap();
    assert_eq!(version.len(), 12);

    let other_build = stylesheet.replace(version, "000000000000");
    let response = http
        .get(format!("{}{other_build}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let unknown = format!("{}/assets/{version}/js/missing.js", server.base);
    assert_eq!(
        http.get(unknown).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let escape = format!("{}/assets/{version}/../Cargo.toml", server.base);
    assert_eq!(
        http.get(escape).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_urls_get_a_page_and_unknown_api_routes_get_json() {
    let server = start().await;
    let http = reqwest::Client::new();

    let response = http
        .get(format!("{}/nowhere", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found") && html.contains("href=\"/\""));

    let response = http
        .get(format!("{}/text-to-speech/..%2F..%2Fetc", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("href=\"/history\""));

    let response = http
        .get(format!("{}/api/nowhere", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn sign_in_keeps_only_local_next_paths() {
    let server = start().await;
    let http = reqwest::Client::new();
    let html = |path: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", server.base);
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert!(
        html("/sign-in?next=/voices%3Ftab%3Dcustom")
            .await
            .contains("data-next=\"/voices?tab=custom\"")
    );
    let foreign = html("/sign-in?next=https://evil.example/").await;
    assert!(foreign.contains("data-next=\"/\"") && !foreign.contains("evil.example"));
}
