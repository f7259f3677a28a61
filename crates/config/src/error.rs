//! Errors of config operations, each mapping to the HTTP status the `vnc_api`
//! client expects (tf-facts 1.1): 400 BadRequest, 404 NoIdError, 409
//! RefsExistError, 403 PermissionDenied. Messages are plain text, as TF's.

/// A failed config operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Malformed or invalid input; nothing was written.
    #[error("{0}")]
    BadRequest(String),
    /// The object (or a referenced one) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Already exists, still referenced, children present, address in use.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
}

impl ConfigError {
    /// The HTTP status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::Forbidden(_) => 403,
        }
    }
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

pub(crate) fn bad<T>(msg: impl Into<String>) -> Result<T> {
    Err(ConfigError::BadRequest(msg.into()))
}
pub(crate) fn not_found<T>(msg: impl Into<String>) -> Result<T> {
    Err(ConfigError::NotFound(msg.into()))
}
pub(crate) fn conflict<T>(msg: impl Into<String>) -> Result<T> {
    Err(ConfigError::Conflict(msg.into()))
}

/// Python-style repr of an fq_name list, as TF's messages show it: `['a', 'b']`.
pub fn fq_repr(fq: &[String]) -> String {
    let parts: Vec<String> = fq.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", parts.join(", "))
}
