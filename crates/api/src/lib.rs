//! The config REST API on port 8082, compatible with TF's `vnc_api` client.
//!
//! Thin shell: [`routes`] parses HTTP and maps results to status codes;
//! [`state::ApiState`] serializes writes through the config core
//! (`filament-config`) and the store (`filament-store`); [`watch`] serves the
//! change feed. See tf-facts.md §1 for the wire contract.

pub mod routes;
pub mod state;
pub mod watch;

use std::sync::Arc;

pub use state::{ApiError, ApiState};

/// Serve the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = routes::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
