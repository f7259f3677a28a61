//! Typed JSON ⇄ XSD element content, driven by the schema metadata (`Ty`).
//!
//! * scalars are text (`true`/`false` for booleans, decimal numbers);
//! * a struct is one element per present field, in the schema's field order, named by
//!   [`crate::names::field_element`];
//! * a list is the element repeated (XSD `maxOccurs="unbounded"`), no wrapper;
//! * JSON `null` and absent fields are not written; an empty list writes nothing.
//!
//! Decoding is the reverse and is typed by the same metadata, so ints come back as numbers,
//! booleans as booleans and lists as arrays even with one element.  Unknown elements are
//! skipped and counted (a newer peer may send fields we do not know, as TF's agent tolerates).

use filament_schema::{index, StructDef, Ty};
use filament_wire_xmpp::{Element, Node};
use serde_json::{Map, Number, Value};

use crate::error::{IfmapError, Result};
use crate::names::field_element;

fn ty_name(t: &Ty) -> &'static str {
    match t {
        Ty::String | Ty::Time | Ty::Enum(_) => "string",
        Ty::Int | Ty::Range(..) => "integer",
        Ty::U64 => "unsigned integer",
        Ty::Float => "number",
        Ty::Bool => "boolean",
        Ty::Struct(_) => "object",
        Ty::List(_) => "list",
    }
}

fn struct_def(i: usize, path: &str) -> Result<&'static StructDef> {
    index()
        .struct_def(i)
        .ok_or_else(|| IfmapError::bad(path, "known struct", i))
}

/// Append the elements for `v` (typed `ty`) named `name` to `out`.
pub fn encode_into(out: &mut Vec<Node>, name: &str, ty: &Ty, v: &Value, path: &str) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    match ty {
        Ty::List(inner) => {
            let arr = v
                .as_array()
                .ok_or_else(|| IfmapError::bad(path, "list", v))?;
            for x in arr {
                encode_into(out, name, inner, x, path)?;
            }
        }
        Ty::Struct(i) => {
            let el = encode_struct(name, *i, v, path)?;
            out.push(Node::Element(el));
        }
        scalar => {
            let text = scalar_text(scalar, v, path)?;
            out.push(Node::Element(Element::leaf(name, text)));
        }
    }
    Ok(())
}

/// A struct value as `<name>…fields…</name>`.
pub fn encode_struct(name: &str, i: usize, v: &Value, path: &str) -> Result<Element> {
    let sd = struct_def(i, path)?;
    let m = v
        .as_object()
        .ok_or_else(|| IfmapError::bad(path, "object", v))?;
    let mut el = Element::new(name);
    el.children = encode_fields(sd, m, path)?;
    Ok(el)
}

/// The field elements of a struct value, in schema order.
pub fn encode_fields(
    sd: &'static StructDef,
    m: &Map<String, Value>,
    path: &str,
) -> Result<Vec<Node>> {
    for k in m.keys() {
        if sd.field(k).is_none() {
            return Err(IfmapError::bad(
                &format!("{path}/{k}"),
                "a field of the schema",
                k,
            ));
        }
    }
    let mut out = Vec::new();
    for f in sd.fields {
        if let Some(x) = m.get(f.name) {
            let en = field_element(sd.name, f.name);
            encode_into(&mut out, &en, &f.ty, x, &format!("{path}/{en}"))?;
        }
    }
    Ok(out)
}

fn scalar_text(ty: &Ty, v: &Value, path: &str) -> Result<String> {
    let ok = match ty {
        Ty::String | Ty::Time | Ty::Enum(_) => v.as_str().map(str::to_string),
        Ty::Int | Ty::Range(..) => v.as_i64().map(|n| n.to_string()),
        Ty::U64 => v.as_u64().map(|n| n.to_string()),
        Ty::Float => v.as_f64().filter(|f| f.is_finite()).map(|_| v.to_string()),
        Ty::Bool => v.as_bool().map(|b| b.to_string()),
        Ty::Struct(_) | Ty::List(_) => None,
    };
    ok.ok_or_else(|| IfmapError::bad(path, ty_name(ty), v))
}

/// Decode one element's content as a (non-list) value of `ty`.
pub fn decode_one(el: &Element, ty: &Ty, path: &str, ignored: &mut usize) -> Result<Value> {
    match ty {
        Ty::List(inner) => decode_one(el, inner, path, ignored),
        Ty::Struct(i) => {
            let sd = struct_def(*i, path)?;
            Ok(Value::Object(decode_fields(
                sd,
                el.elements(),
                path,
                ignored,
            )?))
        }
        scalar => decode_scalar(scalar, &el.text(), path),
    }
}

/// Decode the field elements of a struct.
pub fn decode_fields<'a>(
    sd: &'static StructDef,
    children: impl Iterator<Item = &'a Element>,
    path: &str,
    ignored: &mut usize,
) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for c in children {
        let Some(f) = sd
            .fields
            .iter()
            .find(|f| field_element(sd.name, f.name) == c.name)
        else {
            *ignored += 1;
            continue;
        };
        let p = format!("{path}/{}", c.name);
        let v = decode_one(c, &f.ty, &p, ignored)?;
        match f.ty {
            Ty::List(_) => match m
                .entry(f.name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(a) => a.push(v),
                other => *other = Value::Array(vec![v]),
            },
            _ => {
                m.insert(f.name.to_string(), v);
            }
        }
    }
    Ok(m)
}

fn decode_scalar(ty: &Ty, text: &str, path: &str) -> Result<Value> {
    let t = text.trim();
    let bad = || IfmapError::bad(path, ty_name(ty), text);
    Ok(match ty {
        Ty::String | Ty::Time | Ty::Enum(_) => Value::String(text.to_string()),
        Ty::Int | Ty::Range(..) => Value::Number(t.parse::<i64>().map_err(|_| bad())?.into()),
        Ty::U64 => Value::Number(t.parse::<u64>().map_err(|_| bad())?.into()),
        Ty::Float => {
            let f = t.parse::<f64>().map_err(|_| bad())?;
            Value::Number(Number::from_f64(f).ok_or_else(bad)?)
        }
        Ty::Bool => match t {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad()),
        },
        Ty::Struct(_) | Ty::List(_) => return Err(bad()),
    })
}
