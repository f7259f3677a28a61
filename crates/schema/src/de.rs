//! serde helpers used by the generated code.

use serde::{Deserialize, Deserializer};

/// Deserialize `null` as the type's default (the client sends `null` for unset lists).
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
