//! The web app's pages and embedded assets over HTTP: every page renders, every asset a
//! page or script names is served from the binary with a long cache lifetime, and unknown
//! URLs answer with a page (or JSON under `/api`).

use std::collections::BTreeSet;

use crate::support::{TestApp, TestUser};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use resonance_web::auth::SESSION_COOKIE;
use serde_json::{Value, json};

/// The pages of the signed-in app; `{generation}` stands for a generation's id.
const APP_PAGES: [&str; 9] = [
    "/",
    "/text-to-speech",
    "/text-to-speech/{generation}",
    "/history",
    "/voices",
    "/voices/new",
    "/settings",
    "/billing",
    "/?new-org=1",
];

/// Pages anyone may open.
const PUBLIC_PAGES: [&str; 5] = [
    "/sign-in",
    "/sign-up",
    "/forgot-password",
    "/invites/some-token",
    "/sign-in?next=//evil.example",
];

/// Pages for visitors who are not signed in.
const SIGNED_OUT_PAGES: [&str; 3] = ["/sign-in", "/sign-up", "/sign-in?next=//evil.example"];

async fn start() -> TestApp {
    TestApp::builder().spawn().await
}

/// A client that does not follow redirects, with `user`'s session if any.
fn browser(user: Option<&TestUser>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(user) = user {
        let cookie = format!("{SESSION_COOKIE}={}", user.session_token);
        headers.insert(COOKIE, cookie.parse().unwrap());
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Queues a generation (no worker runs, so it stays queued) in `user`'s active organization.
async fn queued_generation(app: &TestApp, user: &TestUser, voice: &str) -> String {
    let response = user
        .client
        .post(app.url("/api/generations"))
        .json(&json!({ "text": "Hello there.", "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let generation: Value = response.json().await.unwrap();
    generation["id"].as_str().unwrap().to_string()
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
    let app = start().await;
    let admin = app.signed_up("pages-admin@example.com").await;
    let org = app.create_org(&admin, "Pages").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let generation = queued_generation(&app, &admin, &voice).await;
    let http = reqwest::Client::new();
    let pages = APP_PAGES
        .iter()
        .map(|page| (page.replace("{generation}", &generation), Some(&admin)))
        .chain(PUBLIC_PAGES.iter().map(|page| (page.to_string(), None)));
    let mut pending = Vec::new();
    for (page, user) in pages {
        let response = browser(user).get(app.url(&page)).send().await.unwrap();
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
        if APP_PAGES
            .iter()
            .any(|p| p.replace("{generation}", &generation) == page)
        {
            assert!(
                html.contains(&format!("data-org-id=\"{org}\""))
                    && html.contains("pages-admin@example.com"),
                "{page} renders the shell for its viewer"
            );
        }
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
        let response = http.get(app.url(&url)).send().await.unwrap();
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
        .get(app.url(wavesurfer))
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
    let app = start().await;
    let http = reqwest::Client::new();
    let html = http
        .get(app.url("/sign-in"))
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
    let response = http.get(app.url(&other_build)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let unknown = app.url(&format!("/assets/{version}/js/missing.js"));
    assert_eq!(
        http.get(unknown).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let escape = app.url(&format!("/assets/{version}/../Cargo.toml"));
    assert_eq!(
        http.get(escape).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_urls_get_a_page_and_unknown_api_routes_get_json() {
    let app = start().await;
    let http = reqwest::Client::new();

    let response = http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let html = response.text().await.unwrap();
    assert!(html.contains("Page not found") && html.contains("href=\"/\""));

    let response = http.get(app.url("/api/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn sign_in_keeps_only_local_next_paths() {
    let app = start().await;
    let http = reqwest::Client::new();
    let html = |path: &'static str| {
        let http = http.clone();
        let url = app.url(path);
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

#[tokio::test]
async fn app_pages_check_who_is_asking() {
    let app = start().await;
    let admin = app.signed_up("owner@example.com").await;
    let org = app.create_org(&admin, "Owner").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let generation = queued_generation(&app, &admin, &voice).await;
    let generation_page = format!("/text-to-speech/{generation}");
    let member = app.add_member(&admin, &org, "member").await;
    let stranger = app.signed_up("stranger@example.com").await;
    let get = |user: Option<&TestUser>, page: &str| {
        let request = browser(user).get(app.url(page));
        async move { request.send().await.unwrap() }
    };

    for page in APP_PAGES {
        let page = page.replace("{generation}", &generation);
        let response = get(None, &page).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        let location = response.headers()[LOCATION].to_str().unwrap().to_string();
        assert!(
            location.starts_with("/sign-in?next=/"),
            "{page}: {location}"
        );
        let sign_in = get(None, &location).await.text().await.unwrap();
        assert!(
            sign_in.contains(&format!("data-next=\"{page}\"")),
            "signing in from {page} comes back to it"
        );
    }
    let response = get(None, "/history?voiceId=x&offset=20").await;
    assert_eq!(
        response.headers()[LOCATION],
        "/sign-in?next=/history%3FvoiceId%3Dx%26offset%3D20"
    );

    // Signed in, the sign-in and sign-up pages go straight on.
    for page in SIGNED_OUT_PAGES {
        let response = get(Some(&stranger), page).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()[LOCATION], "/", "{page}");
    }
    let response = get(Some(&stranger), "/sign-up?next=/invites/abc").await;
    assert_eq!(response.headers()[LOCATION], "/invites/abc");

    // Without an organization, pages that act in one send the user to create one.
    for page in [
        "/text-to-speech",
        "/history",
        "/voices",
        "/settings",
        "/billing",
        generation_page.as_str(),
    ] {
        let response = get(Some(&stranger), page).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()[LOCATION], "/", "{page}");
    }
    let home = get(Some(&stranger), "/").await.text().await.unwrap();
    assert!(home.contains("Create your organization") && !home.contains("data-dashboard"));

    // Another organization's generation is not found, like one that never existed.
    app.create_org(&stranger, "Elsewhere").await;
    for page in [generation_page.as_str(), "/text-to-speech/..%2F..%2Fetc"] {
        let response = get(Some(&stranger), page).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{page}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Generation not found") && html.contains("href=\"/history\""));
        assert!(!html.contains("Hello there."));
    }
    let home = get(Some(&admin), "/").await.text().await.unwrap();
    assert!(home.contains("Welcome back, owner<") && home.contains("data-dashboard"));
    assert!(
        home.contains("data-create-org hidden"),
        "onboarding stays hidden"
    );
    let own = get(Some(&admin), &generation_page).await;
    assert_eq!(own.status(), StatusCode::OK);
    let html = own.text().await.unwrap();
    assert!(html.contains("Hello there.") && html.contains("Narrator"));
    assert!(html.contains(&format!("/api/generations/{generation}/audio?download=1")));
    assert!(html.contains(&format!("/text-to-speech?from={generation}")));

    // Members use the library but do not manage voices, invites or keys.
    let response = get(Some(&member), "/voices/new").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Only admins can do this")
    );
    let voices = get(Some(&member), "/voices").await.text().await.unwrap();
    assert!(voices.contains("data-role=\"member\"") && !voices.contains("href=\"/voices/new\""));
    let settings = get(Some(&member), "/settings").await.text().await.unwrap();
    assert!(!settings.contains("data-invite-form") && !settings.contains("data-key-form"));
    let voices = get(Some(&admin), "/voices").await.text().await.unwrap();
    assert!(voices.contains("data-role=\"admin\"") && voices.contains("href=\"/voices/new\""));
    let settings = get(Some(&admin), "/settings").await.text().await.unwrap();
    assert!(settings.contains("data-invite-form") && settings.contains("data-key-form"));
}
