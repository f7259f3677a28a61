//! Parsing and validating request bodies against the schema: names, uuids,
//! properties and references. Nothing here writes.

use filament_schema::{index, validate, ResourceDef, Ty};
use serde_json::{Map, Value};

use crate::db::ConfigDb;
use crate::error::{bad, not_found, Result};
use crate::obj::RefLink;

/// Fields of a body that are not properties or references.
const META: &[&str] = &[
    "uuid",
    "fq_name",
    "parent_type",
    "parent_uuid",
    "parent_href",
    "href",
    "name",
];

/// A canonical lower-case 8-4-4-4-12 uuid.
pub fn check_uuid(s: &str) -> Result<()> {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        });
    if ok {
        Ok(())
    } else {
        bad(format!(
            "Invalid uuid {s}: expected lower-case 8-4-4-4-12 hex"
        ))
    }
}

/// An fq_name given as JSON: a non-empty list of non-empty strings without ':'.
pub fn parse_fq_name(v: &Value) -> Result<Vec<String>> {
    parse_fq_name_of("", v)
}

/// [`parse_fq_name`] for a given type: route-target names are
/// `target:<asn>:<n>`, the one kind of name where ':' belongs (TF does the same).
pub fn parse_fq_name_of(ty: &str, v: &Value) -> Result<Vec<String>> {
    let Some(items) = v.as_array() else {
        return bad("fq_name must be a list of strings");
    };
    if items.is_empty() {
        return bad("fq_name must not be empty");
    }
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Some(s) = it.as_str() else {
            return bad(format!("fq_name elements must be strings, got {it}"));
        };
        if ty == "route-target" && items.len() == 1 {
            check_rt_name(s)?;
        } else {
            check_name(s)?;
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// A route-target name: `target:<asn or ip>:<number>`.
pub fn check_rt_name(s: &str) -> Result<()> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["target", a, n] if !a.is_empty() && n.parse::<u64>().is_ok() => Ok(()),
        _ => bad(format!(
            "Invalid route target {s:?}: expected target:<asn>:<number>"
        )),
    }
}

/// A name element: non-empty, no ':' (the fq_name separator), no control characters.
pub fn check_name(s: &str) -> Result<()> {
    if s.is_empty() {
        return bad("name must not be empty");
    }
    if s.contains(':') {
        return bad(format!("Invalid name {s:?}: ':' is not allowed in names"));
    }
    if s.chars().any(char::is_control) {
        return bad(format!(
            "Invalid name {s:?}: control characters are not allowed"
        ));
    }
    if s.len() > 255 {
        return bad("name is longer than 255 characters");
    }
    Ok(())
}

/// Body fields of a create or update, checked against the type.
#[derive(Debug, Default)]
pub struct Fields {
    /// Properties with their (validated) values; `null` means "unset".
    pub props: Map<String, Value>,
    /// Reference lists, resolved to uuids.
    pub refs: Vec<(&'static str, Vec<RefLink>)>,
}

/// Split a body object into properties and references, validating each.
pub fn parse_fields(
    db: &ConfigDb,
    ty: &'static ResourceDef,
    body: &Map<String, Value>,
) -> Result<Fields> {
    let mut f = Fields::default();
    for (k, v) in body {
        if META.contains(&k.as_str()) || k.ends_with("_back_refs") || is_child_field(ty, k) {
            continue;
        }
        if let Some(def) = ty.ref_def(k) {
            f.refs.push((
                def.field,
                parse_refs(db, def.field, def.target, def.attr, v)?,
            ));
            continue;
        }
        let Some(p) = ty.prop(k) else {
            return bad(format!("Unknown field {k} for type {}", ty.name));
        };
        validate(&p.ty, v, k)
            .map_err(|e| crate::ConfigError::BadRequest(format!("Bad property {e}")))?;
        f.props.insert(k.clone(), v.clone());
    }
    Ok(f)
}

fn is_child_field(ty: &'static ResourceDef, k: &str) -> bool {
    ty.children().iter().any(|c| c.child_field() == k)
}

/// Resolve a JSON list of `{"to": [...], "uuid": ..., "attr": ...}`.
pub fn parse_refs(
    db: &ConfigDb,
    field: &str,
    target: &str,
    attr_ty: Option<usize>,
    v: &Value,
) -> Result<Vec<RefLink>> {
    if v.is_null() {
        return Ok(vec![]);
    }
    let Some(items) = v.as_array() else {
        return bad(format!("{field} must be a list"));
    };
    let target_def = index()
        .resource(target)
        .ok_or_else(|| crate::ConfigError::BadRequest(format!("schema: unknown type {target}")))?;
    let mut out: Vec<RefLink> = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        let Some(o) = it.as_object() else {
            return bad(format!(
                "{field}[{i}] must be an object with \"to\" or \"uuid\""
            ));
        };
        let uuid = resolve_ref(
            db,
            target_def,
            o.get("uuid"),
            o.get("to"),
            &format!("{field}[{i}]"),
        )
        // A body naming an object that does not exist is bad input (TF: 400).
        .map_err(|e| match e {
            crate::ConfigError::NotFound(m) => {
                crate::ConfigError::BadRequest(format!("Unknown reference in resource: {m}"))
            }
            other => other,
        })?;
        let attr = o.get("attr").cloned().unwrap_or(Value::Null);
        if let Some(a) = attr_ty {
            validate(&Ty::Struct(a), &attr, &format!("{field}[{i}].attr")).map_err(|e| {
                crate::ConfigError::BadRequest(format!("Bad reference attribute {e}"))
            })?;
        }
        // A second reference to the same object replaces the first.
        out.retain(|r| r.uuid != uuid);
        out.push(RefLink { uuid, attr });
    }
    Ok(out)
}

/// The uuid of a referenced object given by uuid and/or fq_name.
pub fn resolve_ref(
    db: &ConfigDb,
    target: &'static ResourceDef,
    uuid: Option<&Value>,
    to: Option<&Value>,
    what: &str,
) -> Result<String> {
    match (uuid.filter(|u| !u.is_null()), to.filter(|t| !t.is_null())) {
        (Some(u), _) => {
            let Some(u) = u.as_str() else {
                return bad(format!("{what}: uuid must be a string"));
            };
            check_uuid(u)?;
            match db.get(u) {
                Some(o) if o.ty.name == target.name => Ok(u.to_string()),
                _ => not_found(format!("{what}: {} {u} not found", target.name)),
            }
        }
        (None, Some(to)) => {
            let fq = parse_fq_name_of(target.name, to)?;
            match db.uuid_of(target, &fq) {
                Some(u) => Ok(u.to_string()),
                None => not_found(format!(
                    "{what}: {} {} not found",
                    target.name,
                    crate::error::fq_repr(&fq)
                )),
            }
        }
        (None, None) => bad(format!("{what}: a reference needs \"to\" or \"uuid\"")),
    }
}
