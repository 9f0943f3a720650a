//! `/healthz`: the process answers. `/readyz`: the database and object storage answer.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    /// The parts that do not answer: `database`, `storage`.
    failing: Vec<&'static str>,
    /// Each part's check, by part.
    checks: BTreeMap<&'static str, Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `ok` or `failing`.
    status: &'static str,
    /// Why the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Readiness: the database and object storage answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A part does not answer", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (database, storage) = tokio::join!(state.db.ping(), state.storage.ping());
    let mut failing = Vec::new();
    let mut checks = BTreeMap::new();
    for (part, result) in [
        ("database", database.map_err(|e| e.to_string())),
        ("storage", storage.map_err(|e| e.to_string())),
    ] {
        let check = match result {
            Ok(()) => Check {
                status: "ok",
                error: None,
            },
            Err(message) => {
                tracing::warn!(part, %message, "readiness check failed");
                failing.push(part);
                Check {
                    status: "failing",
                    error: Some(message),
                }
            }
        };
        checks.insert(part, check);
    }
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if failing.is_empty() {
            "ready"
        } else {
            "unavailable"
        },
        failing,
        checks,
    };
    (status, Json(body))
}
