//! The forwarder's introspect routes (cross-team contract): `GET /vrouter/{interfaces,
//! nexthops,routes,flows,dropstats}` (plus `labels` and `neighbors`) as JSON, the equivalents of
//! TF's `vif --list`, `nh --list`, `rt --dump`, `flow -l` and `dropstats` (tf-facts §7). The
//! agent merges this router into its port-API server on 9091; `filament vrouter run` serves it
//! alone.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use filament_dataplane::DumpKind;

use crate::datapath::DatapathHandle;

/// The `/vrouter/*` routes over `handle`.
pub fn router(handle: DatapathHandle) -> Router {
    Router::new()
        .route("/vrouter/{table}", get(table))
        .with_state(handle)
}

async fn table(State(h): State<DatapathHandle>, Path(table): Path<String>) -> Response {
    let kind = match table.parse::<DumpKind>() {
        Ok(k) => k,
        Err(e) => {
            return (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({ "error": e })),
            )
                .into_response()
        }
    };
    match h.dump(kind).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}
