//! The web app: server-rendered pages (compiled askama templates) that the scripts under
//! `assets/js` enhance by calling the JSON API. Pages that need a session find out from
//! `GET /api/me` and send the browser to the sign-in page, coming back afterwards.

mod assets;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{OriginalUri, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use resonance_domain::{GenerationId, VoiceCategory};
use serde::Deserialize;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in))
        .route("/sign-up", get(sign_up))
        .route("/invite/{token}", get(invite))
        .route("/text-to-speech", get(text_to_speech))
        .route("/text-to-speech/{generation_id}", get(generation))
        .route("/history", get(history))
        .route("/voices", get(voices))
        .route("/voices/new", get(new_voice))
        .route("/settings", get(settings))
        .route("/billing", get(billing))
        .route("/assets/{version}/{*path}", get(assets::serve))
        .fallback(not_found)
}

/// Where a section of the app lives, for the navigation's current-page marker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Home,
    TextToSpeech,
    History,
    Voices,
    Settings,
    Billing,
}

/// A voice category as a filter or form option.
struct CategoryOption {
    value: &'static str,
    label: String,
}

fn category_options() -> Vec<CategoryOption> {
    VoiceCategory::ALL
        .iter()
        .map(|category| {
            let value = category.as_str();
            let words = value.replace('_', " ").to_lowercase();
            let mut chars = words.chars();
            let label = chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            CategoryOption { value, label }
        })
        .collect()
}

/// The paralinguistic tags Chatterbox Turbo renders, as the text-to-speech page offers them.
const PARALINGUISTIC_TAGS: [&str; 9] = [
    "chuckle",
    "sigh",
    "laugh",
    "gasp",
    "cough",
    "clear throat",
    "sniff",
    "groan",
    "shush",
];

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: only a path on this site, so the link cannot send the
/// user elsewhere.
fn local_path(next: Option<String>) -> String {
    next.filter(|path| path.starts_with('/') && !path.starts_with("//") && !path.contains('\\'))
        .unwrap_or_else(|| "/".to_string())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/sign_in.html")]
struct SignInPage {
    assets: String,
    next: String,
}

async fn sign_in(Query(query): Query<NextQuery>) -> SignInPage {
    SignInPage {
        assets: assets::base_url(),
        next: local_path(query.next),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/sign_up.html")]
struct SignUpPage {
    assets: String,
    next: String,
}

async fn sign_up(Query(query): Query<NextQuery>) -> SignUpPage {
    SignUpPage {
        assets: assets::base_url(),
        next: local_path(query.next),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/invite.html")]
struct InvitePage {
    assets: String,
    token: String,
}

async fn invite(Path(token): Path<String>) -> InvitePage {
    InvitePage {
        assets: assets::base_url(),
        token,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    assets: String,
    section: Section,
}

async fn home() -> HomePage {
    HomePage {
        assets: assets::base_url(),
        section: Section::Home,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/text_to_speech.html")]
struct TextToSpeechPage {
    assets: String,
    section: Section,
    tags: [&'static str; 9],
}

async fn text_to_speech() -> TextToSpeechPage {
    TextToSpeechPage {
        assets: assets::base_url(),
        section: Section::TextToSpeech,
        tags: PARALINGUISTIC_TAGS,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/generation.html")]
struct GenerationPage {
    assets: String,
    section: Section,
    generation_id: String,
}

async fn generation(Path(generation_id): Path<String>) -> Response {
    match GenerationId::parse(&generation_id) {
        Ok(id) => GenerationPage {
            assets: assets::base_url(),
            section: Section::TextToSpeech,
            generation_id: id.as_str().to_string(),
        }
        .into_response(),
        Err(_) => error_page(
            StatusCode::NOT_FOUND,
            "Generation not found",
            "This link does not point to a generation. Find it in your history instead.",
            ("/history", "Open history"),
        ),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/history.html")]
struct HistoryPage {
    assets: String,
    section: Section,
}

async fn history() -> HistoryPage {
    HistoryPage {
        assets: assets::base_url(),
        section: Section::History,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/voices.html")]
struct VoicesPage {
    assets: String,
    section: Section,
    categories: Vec<CategoryOption>,
}

async fn voices() -> VoicesPage {
    VoicesPage {
        assets: assets::base_url(),
        section: Section::Voices,
        categories: category_options(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/new_voice.html")]
struct NewVoicePage {
    assets: String,
    section: Section,
    categories: Vec<CategoryOption>,
}

async fn new_voice() -> NewVoicePage {
    NewVoicePage {
        assets: assets::base_url(),
        section: Section::Voices,
        categories: category_options(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/settings.html")]
struct SettingsPage {
    assets: String,
    section: Section,
}

async fn settings() -> SettingsPage {
    SettingsPage {
        assets: assets::base_url(),
        section: Section::Settings,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/billing.html")]
struct BillingPage {
    assets: String,
    section: Section,
}

async fn billing() -> BillingPage {
    BillingPage {
        assets: assets::base_url(),
        section: Section::Billing,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/error.html")]
struct ErrorPage {
    assets: String,
    status: u16,
    title: &'static str,
    message: &'static str,
    action_href: &'static str,
    action_label: &'static str,
}

fn error_page(
    status: StatusCode,
    title: &'static str,
    message: &'static str,
    (action_href, action_label): (&'static str, &'static str),
) -> Response {
    let page = ErrorPage {
        assets: assets::base_url(),
        status: status.as_u16(),
        title,
        message,
        action_href,
        action_label,
    };
    (status, page).into_response()
}

/// Unknown API routes answer in JSON like the rest of the API; anything else gets a page.
async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return ApiError::NotFound("route").into_response();
    }
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "The page you asked for does not exist or has moved. Start again from your dashboard.",
        ("/", "Go to the dashboard"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_only_allows_local_paths() {
        assert_eq!(
            local_path(Some("/voices?tab=custom".into())),
            "/voices?tab=custom"
        );
        assert_eq!(local_path(Some("//evil.example/".into())), "/");
        assert_eq!(local_path(Some("https://evil.example/".into())), "/");
        assert_eq!(local_path(Some("/\\evil.example".into())), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn category_labels_read_as_words() {
        let options = category_options();
        let service = options
            .iter()
            .find(|o| o.value == "CUSTOMER_SERVICE")
            .unwrap();
        assert_eq!(service.label, "Customer service");
        assert_eq!(options.len(), VoiceCategory::ALL.len());
    }
}
