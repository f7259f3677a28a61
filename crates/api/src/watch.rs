//! The change feed over HTTP: `GET /watch?since=R` streams every config
//! change committed after revision R as JSON lines, in commit order, and keeps
//! the connection open for new ones. A follower remembers the last revision it
//! processed and reconnects with `since=<that>`: no gap, no duplicate.
//!
//! Line format: `{"revision": R, "op": "put"|"delete", "type": T, "uuid": U,
//! "object": <stored object>}`; for deletes `object` is the last state.
//! `since` older than the retained history answers 410 Gone.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use filament_store::{watch, Event, EventKind, StoreError};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::state::{parse_object_key, ApiState};

/// One change-feed line for a store event, `None` for non-object keys.
pub fn event_line(e: &Event) -> Option<Value> {
    let (ty, uuid) = parse_object_key(&e.key)?;
    let object: Value = serde_json::from_str(&e.value).unwrap_or(Value::Null);
    let op = match e.kind {
        EventKind::Put => "put",
        EventKind::Delete => "delete",
    };
    Some(json!({"revision": e.revision, "op": op, "type": ty, "uuid": uuid, "object": object}))
}

pub(crate) async fn watch_handler(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let since = match q.get("since").map(|s| s.parse::<u64>()) {
        None => st.store.revision(),
        Some(Ok(r)) => r,
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "since must be a revision number").into_response()
        }
    };
    let oldest = st.store.compacted_revision();
    if since < oldest {
        return (
            StatusCode::GONE,
            format!("revision {since} is compacted; oldest available is {oldest}"),
        )
            .into_response();
    }
    let stream = watch(st.store.clone(), since).filter_map(|r| async move {
        match r {
            Ok(e) => event_line(&e).map(|v| Ok::<_, StoreError>(format!("{v}\n"))),
            Err(e) => Some(Err(e)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    resp.headers_mut().insert(
        "X-Filament-Revision",
        header::HeaderValue::from_str(&st.store.revision().to_string())
            .unwrap_or(header::HeaderValue::from_static("0")),
    );
    resp
}
