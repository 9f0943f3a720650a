//! The extractors that say who is asking: [`Principal`] (a signed-in user or an API key),
//! [`Caller`] (a principal acting in one organization) and [`SignedIn`] (a user).

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use resonance_db::User;
use resonance_domain::{ApiKeyId, OrgId, Role, UserId};

use super::{csrf, secrets};
use crate::{ApiError, AppState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "resonance_session";

/// Who is asking, before any organization is chosen.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A person signed in with a session cookie.
    User(SignedIn),
    /// An API key, which acts for its organization only.
    ApiKey { key_id: ApiKeyId, org_id: OrgId },
}

/// A person signed in with a session cookie.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// SHA-256 of the session token: identifies the session without the token.
    pub session_hash: String,
    /// The organization the session acts in and the user's role there.
    pub active_org: Option<(OrgId, Role)>,
}

/// A principal acting in one organization: what every org-scoped route takes.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` for an API key.
    pub user_id: Option<UserId>,
    pub org_id: OrgId,
    pub role: Role,
    /// The instance operator (who manages system voices); never an API key.
    pub is_operator: bool,
    /// The key the request authenticated with, if any.
    pub api_key_id: Option<ApiKeyId>,
}

impl Caller {
    /// 403 `FORBIDDEN` unless the caller is an admin of its organization.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Member => Err(ApiError::Forbidden(
                "only an admin of this organization may do this".into(),
            )),
        }
    }

    /// The signed-in user acting; 403 `FORBIDDEN` for an API key.
    pub fn require_user(&self) -> Result<&UserId, ApiError> {
        self.user_id.as_ref().ok_or_else(|| {
            ApiError::Forbidden("an API key cannot do this: sign in as an admin".into())
        })
    }
}

impl Principal {
    /// This principal acting in `org`: 404 (so that the organization's existence does not
    /// leak) unless the user is a member or the key belongs to it.
    pub async fn in_org(&self, state: &AppState, org: &OrgId) -> Result<Caller, ApiError> {
        match self {
            Principal::User(signed_in) => {
                let role = match &signed_in.active_org {
                    Some((active, role)) if active == org => Some(*role),
                    _ => state.db.role_in(org, &signed_in.user.id).await?,
                };
                let role = role.ok_or(ApiError::NotFound("organization"))?;
                Ok(Caller {
                    user_id: Some(signed_in.user.id.clone()),
                    org_id: org.clone(),
                    role,
                    is_operator: signed_in.user.is_operator,
                    api_key_id: None,
                })
            }
            Principal::ApiKey { key_id, org_id } if org_id == org => {
                Ok(Caller::for_key(key_id, org_id))
            }
            Principal::ApiKey { .. } => Err(ApiError::NotFound("organization")),
        }
    }
}

impl Caller {
    /// The caller `key` acts as; `Unauthenticated` unless it is a live API key.
    pub async fn from_api_key(state: &AppState, key: &str) -> Result<Caller, ApiError> {
        match api_key_principal(state, key).await? {
            Principal::ApiKey { key_id, org_id } => Ok(Caller::for_key(&key_id, &org_id)),
            Principal::User(_) => Err(ApiError::Unauthenticated),
        }
    }

    fn for_key(key_id: &ApiKeyId, org_id: &OrgId) -> Self {
        Caller {
            user_id: None,
            org_id: org_id.clone(),
            role: Role::Admin,
            is_operator: false,
            api_key_id: Some(key_id.clone()),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(key) = presented_api_key(&parts.headers)? {
            return api_key_principal(state, key).await;
        }
        let Some(token) = session_token(&parts.headers) else {
            return Err(ApiError::Unauthenticated);
        };
        let session_hash = secrets::secret_hash(token);
        let session = state
            .db
            .session(&session_hash)
            .await?
            .filter(|session| secrets::secrets_equal(&session.token_hash, &session_hash))
            .ok_or(ApiError::Unauthenticated)?;
        if !csrf::same_origin(&state.auth.settings, &parts.method, &parts.headers) {
            return Err(cross_site());
        }
        Ok(Principal::User(SignedIn {
            user: session.user,
            session_hash,
            active_org: session.active_org,
        }))
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::User(signed_in) => Ok(signed_in),
            Principal::ApiKey { .. } => Err(ApiError::Forbidden(
                "an API key cannot do this: sign in instead".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::User(signed_in) => {
                let (org_id, role) = signed_in.active_org.ok_or(ApiError::NoActiveOrganization)?;
                Ok(Caller {
                    user_id: Some(signed_in.user.id),
                    org_id,
                    role,
                    is_operator: signed_in.user.is_operator,
                    api_key_id: None,
                })
            }
            Principal::ApiKey { key_id, org_id } => Ok(Caller::for_key(&key_id, &org_id)),
        }
    }
}

pub(crate) fn cross_site() -> ApiError {
    ApiError::Forbidden("cross-site request refused: send it from the Resonance web app".into())
}

/// The API key in `Authorization: Bearer <key>` or `xi-api-key: <key>`, if either is sent.
pub(crate) fn presented_api_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
        let (scheme, key) = value.split_once(' ').ok_or(ApiError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthenticated);
        }
        return Ok(Some(key.trim()));
    }
    match headers.get("xi-api-key") {
        Some(value) => Ok(Some(
            value
                .to_str()
                .map_err(|_| ApiError::Unauthenticated)?
                .trim(),
        )),
        None => Ok(None),
    }
}

async fn api_key_principal(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    let prefix = secrets::api_key_prefix(key).ok_or(ApiError::Unauthenticated)?;
    let stored = state
        .db
        .api_key_by_prefix(prefix)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if !secrets::secrets_equal(&stored.key_hash, &secrets::secret_hash(key)) {
        return Err(ApiError::Unauthenticated);
    }
    state.db.touch_api_key(&stored.id).await?;
    Ok(Principal::ApiKey {
        key_id: stored.id,
        org_id: stored.org_id,
    })
}

/// The session cookie's value, if the request carries one.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            "cookie",
            "theme=dark; resonance_session=abc".parse().unwrap(),
        );
        assert_eq!(session_token(&headers), Some("abc"));
        headers.clear();
        headers.append("cookie", "resonance_sessionx=abc".parse().unwrap());
        assert_eq!(session_token(&headers), None);
    }

    #[test]
    fn reads_both_api_key_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("xi-api-key", "rsn_a_b".parse().unwrap());
        assert_eq!(presented_api_key(&headers).unwrap(), Some("rsn_a_b"));
        headers.insert("authorization", "Bearer rsn_c_d".parse().unwrap());
        assert_eq!(presented_api_key(&headers).unwrap(), Some("rsn_c_d"));
        headers.insert("authorization", "Basic eDp5".parse().unwrap());
        assert!(presented_api_key(&headers).is_err());
    }
}
