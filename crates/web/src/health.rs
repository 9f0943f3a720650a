//! `/healthz`: the process answers. `/readyz`: the database and object storage answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (database, storage) = tokio::join!(state.db.ping(), state.storage.ping());
    let mut failing = Vec::new();
    let mut checks = serde_json::Map::new();
    for (part, result) in [
        ("database", database.map_err(|e| e.to_string())),
        ("storage", storage.map_err(|e| e.to_string())),
    ] {
        match result {
            Ok(()) => {
                checks.insert(part.into(), json!({ "status": "ok" }));
            }
            Err(message) => {
                tracing::warn!(part, %message, "readiness check failed");
                failing.push(part);
                checks.insert(
                    part.into(),
                    json!({ "status": "failing", "error": message }),
                );
            }
        }
    }
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "unavailable" },
        "failing": failing,
        "checks": checks,
    });
    (status, Json(body))
}
