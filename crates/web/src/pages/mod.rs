//! The web app: server-rendered pages (compiled askama templates) that the scripts under
//! `assets/js` enhance by calling the JSON API. Pages of the signed-in app check who is
//! asking ([`Viewer`]) before rendering: without a session the browser goes to the sign-in
//! page and comes back afterwards.

mod assets;
mod viewer;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use resonance_domain::{GenerationId, GenerationText, SpeechModel, VoiceCategory};
use serde::Deserialize;
use url::{Position, Url};

use self::viewer::{InOrg, Viewer};
use crate::generations::GenerationView;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in))
        .route("/sign-up", get(sign_up))
        .route("/reset-password", get(reset_password))
        .route("/forgot-password", get(forgot_password))
        .route("/invites/{token}", get(invite))
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

/// Where to go after signing in: a path on this site only, judged as the browser will read
/// it (WHATWG URL rules: tabs and newlines dropped, `\` read as `/`, `//host` naming another
/// site) and given back as the browser resolved it, percent-encoded.
fn local_path(next: Option<String>) -> String {
    let site = Url::parse("http://resonance.invalid/").expect("a valid URL");
    next.as_deref()
        .filter(|next| next.starts_with('/'))
        .and_then(|next| site.join(next).ok())
        .filter(|url| url.origin() == site.origin())
        .map(|url| url[Position::BeforePath..].to_string())
        .unwrap_or_else(|| "/".to_string())
}

/// `next` from the query string; a malformed query string names no page.
fn next_of(query: Result<Query<NextQuery>, QueryRejection>) -> Option<String> {
    query.ok().and_then(|Query(query)| query.next)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/sign_in.html")]
struct SignInPage {
    assets: String,
    next: String,
}

/// Someone already signed in goes straight on to `next`.
async fn sign_in(
    viewer: Option<Viewer>,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = local_path(next_of(query));
    if viewer.is_some() {
        return Redirect::to(&next).into_response();
    }
    SignInPage {
        assets: assets::base_url(),
        next,
    }
    .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/reset_password.html")]
struct ResetPasswordPage {
    assets: String,
}

/// The page of a reset link (`resonance users reset-password`); the token stays in the
/// address for the page's script.
async fn reset_password() -> ResetPasswordPage {
    ResetPasswordPage {
        assets: assets::base_url(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/forgot_password.html")]
struct ForgotPasswordPage {
    assets: String,
    /// Whether this instance emails reset links; otherwise its operator hands them out.
    sends_email: bool,
}

async fn forgot_password(State(state): State<AppState>) -> ForgotPasswordPage {
    ForgotPasswordPage {
        assets: assets::base_url(),
        sends_email: state.mailer.is_some(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/sign_up.html")]
struct SignUpPage {
    assets: String,
    next: String,
}

async fn sign_up(
    viewer: Option<Viewer>,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = local_path(next_of(query));
    if viewer.is_some() {
        return Redirect::to(&next).into_response();
    }
    SignUpPage {
        assets: assets::base_url(),
        next,
    }
    .into_response()
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
    viewer: Viewer,
}

async fn home(viewer: Viewer) -> HomePage {
    HomePage {
        assets: assets::base_url(),
        section: Section::Home,
        viewer,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/text_to_speech.html")]
struct TextToSpeechPage {
    assets: String,
    section: Section,
    viewer: Viewer,
    tags: [&'static str; 9],
    /// The most characters one generation takes.
    max_chars: usize,
    /// The models the server offers, the default first.
    models: Vec<SpeechModel>,
}

async fn text_to_speech(
    State(state): State<AppState>,
    InOrg { viewer, .. }: InOrg,
) -> TextToSpeechPage {
    TextToSpeechPage {
        assets: assets::base_url(),
        section: Section::TextToSpeech,
        viewer,
        tags: PARALINGUISTIC_TAGS,
        max_chars: GenerationText::MAX_CHARS,
        models: state.models.clone(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/generation.html")]
struct GenerationPage {
    assets: String,
    section: Section,
    viewer: Viewer,
    generation: GenerationView,
    /// RFC 3339, shown in the viewer's time zone by the script.
    created_at: String,
}

fn generation_not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Generation not found",
        "This generation does not exist in this organization; it may have been deleted. Find your generations in your history.",
        ("/history", "Open history"),
    )
}

/// Only the active organization's generations are shown; any other id is not found.
async fn generation(
    State(state): State<AppState>,
    InOrg { viewer, org_id }: InOrg,
    Path(generation_id): Path<String>,
) -> Result<GenerationPage, Response> {
    let id = GenerationId::parse(&generation_id).map_err(|_| generation_not_found())?;
    let generation = match state.db.get_generation(&org_id, &id).await {
        Ok(generation) => generation,
        Err(resonance_db::DbError::NotFound(_)) => return Err(generation_not_found()),
        Err(error) => return Err(ApiError::from(error).into_response()),
    };
    let created_at = generation
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::internal(e).into_response())?;
    Ok(GenerationPage {
        assets: assets::base_url(),
        section: Section::TextToSpeech,
        viewer,
        generation: GenerationView::new(generation, state.model.state()),
        created_at,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/history.html")]
struct HistoryPage {
    assets: String,
    section: Section,
    viewer: Viewer,
}

async fn history(InOrg { viewer, .. }: InOrg) -> HistoryPage {
    HistoryPage {
        assets: assets::base_url(),
        section: Section::History,
        viewer,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/voices.html")]
struct VoicesPage {
    assets: String,
    section: Section,
    viewer: Viewer,
    categories: Vec<CategoryOption>,
}

async fn voices(InOrg { viewer, .. }: InOrg) -> VoicesPage {
    VoicesPage {
        assets: assets::base_url(),
        section: Section::Voices,
        viewer,
        categories: category_options(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/new_voice.html")]
struct NewVoicePage {
    assets: String,
    section: Section,
    viewer: Viewer,
    categories: Vec<CategoryOption>,
}

fn admins_only() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Only admins can do this",
        "Adding and deleting voices is up to the admins of your organization. Ask one of them, or use the voices already in the library.",
        ("/voices", "Open the voice library"),
    )
}

async fn new_voice(InOrg { viewer, .. }: InOrg) -> Result<NewVoicePage, Response> {
    if !viewer.is_admin() {
        return Err(admins_only());
    }
    Ok(NewVoicePage {
        assets: assets::base_url(),
        section: Section::Voices,
        viewer,
        categories: category_options(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/settings.html")]
struct SettingsPage {
    assets: String,
    section: Section,
    viewer: Viewer,
}

async fn settings(InOrg { viewer, .. }: InOrg) -> SettingsPage {
    SettingsPage {
        assets: assets::base_url(),
        section: Section::Settings,
        viewer,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/billing.html")]
struct BillingPage {
    assets: String,
    section: Section,
    viewer: Viewer,
}

async fn billing(InOrg { viewer, .. }: InOrg) -> BillingPage {
    BillingPage {
        assets: assets::base_url(),
        section: Section::Billing,
        viewer,
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
    fn next_is_read_as_a_browser_reads_it() {
        for off_site in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            "/\\evil.example/x",
            "/\t\\evil.example",
            "//evil.example",
            "///evil.example",
        ] {
            assert_eq!(local_path(Some(off_site.into())), "/", "{off_site:?}");
        }
        assert_eq!(local_path(Some("/history\n".into())), "/history");
        assert_eq!(
            local_path(Some("/\x0b/evil.example".into())),
            "/%0B/evil.example"
        );
        assert_eq!(
            local_path(Some("/voices?q=a b#x".into())),
            "/voices?q=a%20b#x"
        );
        assert_eq!(local_path(Some("/a/../settings".into())), "/settings");
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
