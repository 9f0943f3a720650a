//! Stylesheet, scripts and vendored libraries, embedded in the binary and served under
//! `/assets/{version}/...`. The version is a hash of every asset, so a URL names one exact
//! build of the assets and may be cached forever.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/auth.js", JS),
    asset!("js/reset-password.js", JS),
    asset!("js/forgot-password.js", JS),
    asset!("js/home.js", JS),
    asset!("js/tts.js", JS),
    asset!("js/live-audio.js", JS),
    asset!("js/generation.js", JS),
    asset!("js/history.js", JS),
    asset!("js/voices.js", JS),
    asset!("js/voice-sample.js", JS),
    asset!("js/voice-new.js", JS),
    asset!("js/wav-recorder.js", JS),
    asset!("js/settings.js", JS),
    asset!("js/billing.js", JS),
    asset!("js/invite.js", JS),
    asset!("vendor/wavesurfer.esm.js", JS),
];

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for asset in ASSETS {
        hasher.update(asset.path.as_bytes());
        hasher.update(asset.body);
    }
    hex::encode(&hasher.finalize()[..6])
});

/// The URL prefix of this build's assets, e.g. `/assets/3f2a9c01bd4e`.
pub fn base_url() -> String {
    format!("/assets/{}", *VERSION)
}

pub async fn serve(Path((version, path)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|asset| asset.path == path);
    match found {
        Some(asset) if version == *VERSION => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            "no such asset",
        )
            .into_response(),
    }
}
