//! Parser of the Filament schema language (`filament.schema`).
//!
//! This file is compiled twice: by `build.rs`, which turns the schema into Rust
//! code, and into the library, where tests check the format's rules. It must
//! therefore use `std` only. The format is described in `README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A type expression of a property or struct field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExpr {
    String,
    Int,
    U64,
    Float,
    Bool,
    Time,
    /// A string restricted to the listed values.
    Enum(Vec<String>),
    /// An integer restricted to `min..=max`.
    Range(i64, i64),
    /// A named structured type (`struct NAME`).
    Struct(String),
    /// `[T]`: a JSON array of T.
    List(Box<TypeExpr>),
}

/// How a property can be changed element by element (`prop-collection-update`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    /// Plain property: replaced whole.
    None,
    /// `list`: the struct's `wrapper` field is an array edited by position.
    List { wrapper: String },
    /// `map`: the struct's `wrapper` field is an array of entries keyed by `key`.
    Map { wrapper: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    pub name: String,
    pub ty: TypeExpr,
    /// Assigned by the system; clients do not set it.
    pub system: bool,
    pub collection: Collection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// Field stem: the JSON field is `<name>_refs`.
    pub name: String,
    /// Hyphenated name of the referenced resource type.
    pub target: String,
    /// Struct type of the link attribute, if the reference carries one.
    pub attr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Hyphenated type name as used in URLs (`virtual-network`).
    pub name: String,
    /// Parent types; empty means a child of config-root.
    pub parents: Vec<String>,
    pub props: Vec<Prop>,
    pub refs: Vec<Ref>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struct {
    pub name: String,
    pub fields: Vec<Field>,
}

/// A parsed and checked schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Properties every resource has (`common` block).
    pub common: Vec<Prop>,
    pub resources: Vec<Resource>,
    pub structs: Vec<Struct>,
}

/// A schema error with the 1-based line it was found on (0 for whole-file checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DslError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for DslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filament.schema:{}: {}", self.line, self.msg)
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, DslError> {
    Err(DslError {
        line,
        msg: msg.into(),
    })
}

/// Parse a type expression: `string`, `int`, `u64`, `float`, `bool`, `time`,
/// `string{a,b}`, `int[0..10]`, `[T]`, or a struct name.
pub fn parse_type(s: &str, line: usize) -> Result<TypeExpr, DslError> {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Ok(TypeExpr::List(Box::new(parse_type(inner, line)?)));
    }
    if let Some(vals) = s.strip_prefix("string{").and_then(|r| r.strip_suffix('}')) {
        let v: Vec<String> = vals.split(',').map(str::to_string).collect();
        if v.iter().any(String::is_empty) {
            return err(line, format!("empty enum value in {s}"));
        }
        return Ok(TypeExpr::Enum(v));
    }
    if let Some(r) = s.strip_prefix("int[").and_then(|r| r.strip_suffix(']')) {
        let (a, b) = match r.split_once("..") {
            Some(p) => p,
            None => return err(line, format!("range must be int[MIN..MAX]: {s}")),
        };
        let (a, b) = match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(a), Ok(b)) if a <= b => (a, b),
            _ => return err(line, format!("bad range bounds in {s}")),
        };
        return Ok(TypeExpr::Range(a, b));
    }
    Ok(match s {
        "string" => TypeExpr::String,
        "int" => TypeExpr::Int,
        "u64" => TypeExpr::U64,
        "float" => TypeExpr::Float,
        "bool" => TypeExpr::Bool,
        "time" => TypeExpr::Time,
        _ if s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            TypeExpr::Struct(s.to_string())
        }
        _ => return err(line, format!("unknown type `{s}`")),
    })
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

enum Block {
    None,
    Common,
    Resource(usize),
    Struct(usize),
}

fn parse_prop(kind: &str, words: &[&str], line: usize) -> Result<Prop, DslError> {
    if words.len() < 3 {
        return err(line, format!("`{kind}` needs a name and a type"));
    }
    if !is_ident(words[1]) {
        return err(line, format!("bad property name `{}`", words[1]));
    }
    let ty = parse_type(words[2], line)?;
    let mut system = false;
    let mut wrapper = None;
    let mut key = None;
    for flag in &words[3..] {
        match flag.split_once('=') {
            None if *flag == "system" => system = true,
            Some(("wrapper", w)) if is_ident(w) => wrapper = Some(w.to_string()),
            Some(("key", k)) if is_ident(k) => key = Some(k.to_string()),
            _ => return err(line, format!("unknown flag `{flag}`")),
        }
    }
    let collection = match (kind, wrapper, key) {
        ("prop", None, None) => Collection::None,
        ("list", Some(wrapper), None) => Collection::List { wrapper },
        ("map", Some(wrapper), Some(key)) => Collection::Map { wrapper, key },
        ("prop", _, _) => return err(line, "`prop` takes no wrapper/key"),
        ("list", _, _) => return err(line, "`list` needs wrapper= and no key="),
        _ => return err(line, "`map` needs wrapper= and key="),
    };
    if collection != Collection::None && !matches!(ty, TypeExpr::Struct(_)) {
        return err(line, "a list/map property must have a struct type");
    }
    Ok(Prop {
        name: words[1].to_string(),
        ty,
        system,
        collection,
    })
}

/// Parse and check a schema text.
pub fn parse(text: &str) -> Result<Schema, DslError> {
    let mut schema = Schema::default();
    let mut block = Block::None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("");
        if content.trim().is_empty() {
            continue;
        }
        let indented = content.starts_with(' ');
        let words: Vec<&str> = content.split_whitespace().collect();
        if !indented {
            block = match words.as_slice() {
                ["common"] => Block::Common,
                ["type", name] if is_type_name(name) => {
                    schema.resources.push(Resource {
                        name: name.to_string(),
                        parents: vec![],
                        props: vec![],
                        refs: vec![],
                    });
                    Block::Resource(schema.resources.len() - 1)
                }
                ["struct", name] => {
                    if !matches!(parse_type(name, line)?, TypeExpr::Struct(_)) {
                        return err(line, format!("bad struct name `{name}`"));
                    }
                    schema.structs.push(Struct {
                        name: name.to_string(),
                        fields: vec![],
                    });
                    Block::Struct(schema.structs.len() - 1)
                }
                _ => {
                    return err(
                        line,
                        format!(
                            "expected `common`, `type NAME` or `struct NAME`, got `{}`",
                            content.trim()
                        ),
                    )
                }
            };
            continue;
        }
        match (&block, words[0]) {
            (Block::Common, kind @ ("prop" | "list" | "map")) => {
                schema.common.push(parse_prop(kind, &words, line)?);
            }
            (Block::Resource(r), kind @ ("prop" | "list" | "map")) => {
                let p = parse_prop(kind, &words, line)?;
                schema.resources[*r].props.push(p);
            }
            (Block::Resource(r), "parent") if words.len() == 2 && is_type_name(words[1]) => {
                schema.resources[*r].parents.push(words[1].to_string());
            }
            (Block::Resource(r), "ref") if (3..=4).contains(&words.len()) && is_ident(words[1]) => {
                let attr = match words.get(3) {
                    Some(a) => match parse_type(a, line)? {
                        TypeExpr::Struct(s) => Some(s),
                        _ => return err(line, "a ref attribute must be a struct type"),
                    },
                    None => None,
                };
                schema.resources[*r].refs.push(Ref {
                    name: words[1].to_string(),
                    target: words[2].to_string(),
                    attr,
                });
            }
            (Block::Struct(s), name) if words.len() == 2 && is_ident(name) => {
                let ty = parse_type(words[1], line)?;
                schema.structs[*s].fields.push(Field {
                    name: name.to_string(),
                    ty,
                });
            }
            _ => return err(line, format!("unexpected line `{}`", content.trim())),
        }
    }
    check(&schema)?;
    Ok(schema)
}

fn struct_refs(ty: &TypeExpr, out: &mut Vec<String>) {
    match ty {
        TypeExpr::Struct(s) => out.push(s.clone()),
        TypeExpr::List(t) => struct_refs(t, out),
        _ => {}
    }
}

/// Whole-schema checks: names unique, every referenced type defined.
fn check(schema: &Schema) -> Result<(), DslError> {
    let mut structs = BTreeMap::new();
    for s in &schema.structs {
        if structs.insert(s.name.as_str(), s).is_some() {
            return err(0, format!("struct {} defined twice", s.name));
        }
        let mut names = BTreeSet::new();
        for f in &s.fields {
            if !names.insert(&f.name) {
                return err(
                    0,
                    format!("struct {}: field {} defined twice", s.name, f.name),
                );
            }
        }
    }
    let resources: BTreeSet<&str> = schema.resources.iter().map(|r| r.name.as_str()).collect();
    if resources.len() != schema.resources.len() {
        return err(0, "a resource type is defined twice");
    }
    let mut used = Vec::new();
    for p in &schema.common {
        struct_refs(&p.ty, &mut used);
    }
    for s in &schema.structs {
        for f in &s.fields {
            struct_refs(&f.ty, &mut used);
        }
    }
    for r in &schema.resources {
        let mut names = BTreeSet::new();
        for p in schema.common.iter().chain(&r.props) {
            if !names.insert(p.name.clone()) {
                return err(
                    0,
                    format!("type {}: property {} defined twice", r.name, p.name),
                );
            }
            struct_refs(&p.ty, &mut used);
        }
        for x in &r.refs {
            if !resources.contains(x.target.as_str()) {
                return err(
                    0,
                    format!("type {}: ref to undefined type {}", r.name, x.target),
                );
            }
            if !names.insert(format!("{}_refs", x.name)) {
                return err(0, format!("type {}: ref {} defined twice", r.name, x.name));
            }
            used.extend(x.attr.clone());
        }
        for p in &r.parents {
            if p != "config-root" && !resources.contains(p.as_str()) {
                return err(0, format!("type {}: undefined parent type {p}", r.name));
            }
        }
    }
    for u in used {
        if !structs.contains_key(u.as_str()) {
            return err(0, format!("struct {u} is used but not defined"));
        }
    }
    for r in &schema.resources {
        for p in schema.common.iter().chain(&r.props) {
            if let (
                Collection::List { wrapper } | Collection::Map { wrapper, .. },
                TypeExpr::Struct(s),
            ) = (&p.collection, &p.ty)
            {
                let ok = structs.get(s.as_str()).is_some_and(|st| {
                    st.fields
                        .iter()
                        .any(|f| &f.name == wrapper && matches!(f.ty, TypeExpr::List(_)))
                });
                if !ok {
                    return err(
                        0,
                        format!(
                            "type {}: {} wrapper {wrapper} is not a list field of {s}",
                            r.name, p.name
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}
