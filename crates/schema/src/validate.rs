//! Validation of JSON values against schema types, with the path of the
//! offending field in the error (`virtual_network_properties.vxlan_network_identifier`).

use serde_json::Value;

use crate::{Ty, STRUCTS};

/// A value that does not fit its schema type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct ValidationError {
    pub path: String,
    pub msg: String,
}

/// Check `v` against `ty`. `null` is accepted everywhere (every field is optional).
pub fn validate(ty: &Ty, v: &Value, path: &str) -> Result<(), ValidationError> {
    let fail = |msg: String| {
        Err(ValidationError {
            path: path.to_string(),
            msg,
        })
    };
    if v.is_null() {
        return Ok(());
    }
    match ty {
        Ty::String | Ty::Time if v.is_string() => Ok(()),
        Ty::String => fail(format!("expected a string, got {}", kind(v))),
        Ty::Time => fail(format!("expected a date-time string, got {}", kind(v))),
        Ty::Enum(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            Some(s) => fail(format!("`{s}` is not one of {}", allowed.join(", "))),
            None => fail(format!(
                "expected one of {}, got {}",
                allowed.join(", "),
                kind(v)
            )),
        },
        Ty::Int | Ty::U64 if v.is_i64() || v.is_u64() => Ok(()),
        Ty::Int | Ty::U64 => fail(format!("expected an integer, got {}", kind(v))),
        Ty::Range(min, max) => match v.as_i64() {
            Some(n) if (*min..=*max).contains(&n) => Ok(()),
            Some(n) => fail(format!("{n} is outside {min}..={max}")),
            None => fail(format!(
                "expected an integer in {min}..={max}, got {}",
                kind(v)
            )),
        },
        Ty::Float if v.is_number() => Ok(()),
        Ty::Float => fail(format!("expected a number, got {}", kind(v))),
        Ty::Bool if v.is_boolean() => Ok(()),
        Ty::Bool => fail(format!("expected true or false, got {}", kind(v))),
        Ty::List(inner) => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    validate(inner, item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            None => fail(format!("expected a list, got {}", kind(v))),
        },
        Ty::Struct(i) => {
            let Some(def) = STRUCTS.get(*i) else {
                return fail("schema error: unknown struct".into());
            };
            let Some(obj) = v.as_object() else {
                return fail(format!(
                    "expected an object ({}), got {}",
                    def.name,
                    kind(v)
                ));
            };
            for (k, fv) in obj {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match def.field(k) {
                    Some(f) => validate(&f.ty, fv, &sub)?,
                    None => {
                        return Err(ValidationError {
                            path: sub,
                            msg: format!("unknown field of {}", def.name),
                        })
                    }
                }
            }
            Ok(())
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
