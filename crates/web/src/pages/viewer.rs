//! Who a page is rendered for. Pages of the signed-in app take a [`Viewer`]: a request
//! without a session is sent to the sign-in page (coming back afterwards), and the shell
//! (user, organization switcher, admin-only controls) is rendered from it. Pages that act
//! in an organization take an [`InOrg`] instead.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use resonance_domain::{OrgId, Role};

use super::error_page;
use crate::auth::SignedIn;
use crate::{ApiError, AppState};

/// A signed-in person looking at a page.
pub struct Viewer {
    pub user_id: String,
    pub email: String,
    pub organizations: Vec<OrgOption>,
    /// The organization the session acts in; `None` until the user creates or joins one.
    pub active: Option<ActiveOrg>,
}

/// One entry of the organization switcher.
pub struct OrgOption {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

/// The organization the session acts in, and the viewer's role there.
pub struct ActiveOrg {
    pub id: OrgId,
    pub name: String,
    pub role: Role,
}

impl Viewer {
    /// What the dashboard greets the viewer by: their email's local part.
    pub fn greeting_name(&self) -> &str {
        self.email.split('@').next().unwrap_or(&self.email)
    }

    /// The letter in the avatar.
    pub fn initial(&self) -> String {
        self.email
            .chars()
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        self.active
            .as_ref()
            .is_some_and(|org| org.role == Role::Admin)
    }

    pub fn org_id(&self) -> &str {
        self.active.as_ref().map_or("", |org| org.id.as_str())
    }

    pub fn org_name(&self) -> &str {
        self.active.as_ref().map_or("", |org| org.name.as_str())
    }

    pub fn role(&self) -> &str {
        self.active.as_ref().map_or("", |org| org.role.as_str())
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed_in = match SignedIn::from_request_parts(parts, state).await {
            Ok(signed_in) => signed_in,
            Err(ApiError::Unauthenticated) => {
                let here = parts.uri.path_and_query().map_or("/", |path| path.as_str());
                return Err(
                    Redirect::to(&format!("/sign-in?next={}", encode(here))).into_response()
                );
            }
            Err(error) => return Err(unavailable(error)),
        };
        let memberships = state
            .db
            .memberships_of(&signed_in.user.id)
            .await
            .map_err(|e| unavailable(e.into()))?;
        let active_id = signed_in.active_org.as_ref().map(|(id, _)| id);
        let active = memberships
            .iter()
            .find(|m| Some(&m.organization.id) == active_id)
            .map(|m| ActiveOrg {
                id: m.organization.id.clone(),
                name: m.organization.name.as_str().to_string(),
                role: m.role,
            });
        Ok(Viewer {
            user_id: signed_in.user.id.to_string(),
            email: signed_in.user.email.as_str().to_string(),
            organizations: memberships
                .iter()
                .map(|m| OrgOption {
                    id: m.organization.id.to_string(),
                    name: m.organization.name.as_str().to_string(),
                    selected: Some(&m.organization.id) == active_id,
                })
                .collect(),
            active,
        })
    }
}

/// For pages anyone may open that change for a signed-in visitor.
impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Infallible> {
        Ok(
            <Viewer as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// A viewer acting in an organization. Pages that act in one send a viewer without one to
/// the dashboard, which asks them to create one.
pub struct InOrg {
    pub viewer: Viewer,
    pub org_id: OrgId,
}

impl FromRequestParts<AppState> for InOrg {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer =
            <Viewer as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        match &viewer.active {
            Some(org) => Ok(InOrg {
                org_id: org.id.clone(),
                viewer,
            }),
            None => Err(Redirect::to("/").into_response()),
        }
    }
}

/// A page for a failure that is not the viewer's doing (the database is down, ...).
fn unavailable(error: ApiError) -> Response {
    let status = error.into_response().status();
    let status = if status.is_server_error() {
        status
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error_page(
        status,
        "Something went wrong",
        "Resonance could not load this page. Wait a moment and reload it.",
        ("/", "Go to the dashboard"),
    )
}

/// Percent-encodes a path with its query for use as a query parameter's value.
fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn the_way_back_is_encoded_as_one_query_value() {
        assert_eq!(encode("/voices"), "/voices");
        assert_eq!(
            encode("/history?voiceId=a&offset=20"),
            "/history%3FvoiceId%3Da%26offset%3D20"
        );
    }
}
