//! Static metadata of the schema and the graph index derived from it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::{COMMON, RESOURCES, STRUCTS};

/// The type of a property, struct field or list element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    String,
    Int,
    U64,
    Float,
    Bool,
    /// ISO-8601 date-time string.
    Time,
    /// String restricted to these values.
    Enum(&'static [&'static str]),
    /// Integer restricted to `min..=max`.
    Range(i64, i64),
    /// Index into [`STRUCTS`].
    Struct(usize),
    List(&'static Ty),
}

/// How a property is edited element by element through `prop-collection-update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    None,
    List {
        wrapper: &'static str,
    },
    Map {
        wrapper: &'static str,
        key: &'static str,
    },
}

#[derive(Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: Ty,
}

#[derive(Debug)]
pub struct StructDef {
    pub name: &'static str,
    pub fields: &'static [FieldDef],
}

impl StructDef {
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        // STRUCTS is 'static, so are its fields.
        let fields: &'static [FieldDef] = self.fields;
        fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug)]
pub struct PropDef {
    pub name: &'static str,
    pub ty: Ty,
    /// Assigned by the server, not by clients.
    pub system: bool,
    pub collection: Collection,
}

#[derive(Debug)]
pub struct RefDef {
    /// JSON field name, `<stem>_refs`.
    pub field: &'static str,
    /// Hyphenated target type.
    pub target: &'static str,
    /// Index into [`STRUCTS`] of the link attribute type.
    pub attr: Option<usize>,
}

/// One resource type.
#[derive(Debug)]
pub struct ResourceDef {
    /// Hyphenated name used in URLs and JSON wrappers (`virtual-network`).
    pub name: &'static str,
    /// Underscored name (`virtual_network`), stem of child and back-ref fields.
    pub object: &'static str,
    /// Collection URL segment (`virtual-networks`: naive `+s`, as TF does).
    pub plural: &'static str,
    /// Allowed parent types; `config-root` means a top-level object.
    pub parents: &'static [&'static str],
    pub props: &'static [PropDef],
    pub refs: &'static [RefDef],
}

impl ResourceDef {
    /// A property of this type (common ones included).
    pub fn prop(&'static self, name: &str) -> Option<&'static PropDef> {
        COMMON.iter().chain(self.props).find(|p| p.name == name)
    }
    /// All properties, common ones first.
    pub fn all_props(&'static self) -> impl Iterator<Item = &'static PropDef> {
        COMMON.iter().chain(self.props)
    }
    /// A reference by its JSON field name (`network_ipam_refs`).
    pub fn ref_def(&'static self, field: &str) -> Option<&'static RefDef> {
        self.refs.iter().find(|r| r.field == field)
    }
    /// The reference field of this type pointing to `target`, if any.
    pub fn ref_to(&'static self, target: &str) -> Option<&'static RefDef> {
        self.refs.iter().find(|r| r.target == target)
    }
    /// JSON field under which a parent lists children of this type.
    pub fn child_field(&self) -> String {
        format!("{}s", self.object)
    }
    /// JSON field under which a referenced object lists back-refs from this type.
    pub fn back_ref_field(&self) -> String {
        format!("{}_back_refs", self.object)
    }
    /// Types whose parent may be this type.
    pub fn children(&'static self) -> &'static [&'static ResourceDef] {
        index().children.get(self.name).map_or(&[], Vec::as_slice)
    }
    /// Whether a top-level object (child of config-root) is allowed.
    pub fn is_root_child(&self) -> bool {
        self.parents.is_empty() || self.parents.contains(&"config-root")
    }
}

/// Lookups over the static tables, built once.
#[derive(Debug)]
pub struct Index {
    by_name: HashMap<&'static str, &'static ResourceDef>,
    by_plural: HashMap<&'static str, &'static ResourceDef>,
    by_object: HashMap<&'static str, &'static ResourceDef>,
    children: HashMap<&'static str, Vec<&'static ResourceDef>>,
    back_refs: HashMap<&'static str, Vec<(&'static ResourceDef, &'static RefDef)>>,
}

impl Index {
    /// By hyphenated name (`virtual-network`).
    pub fn resource(&self, name: &str) -> Option<&'static ResourceDef> {
        self.by_name.get(name).copied()
    }
    /// By collection segment (`virtual-networks`).
    pub fn by_plural(&self, plural: &str) -> Option<&'static ResourceDef> {
        self.by_plural.get(plural).copied()
    }
    /// By underscored name (`virtual_network`).
    pub fn by_object(&self, object: &str) -> Option<&'static ResourceDef> {
        self.by_object.get(object).copied()
    }
    /// Reference fields of other types that point at `target`.
    pub fn back_refs_to(&self, target: &str) -> &[(&'static ResourceDef, &'static RefDef)] {
        self.back_refs.get(target).map_or(&[], Vec::as_slice)
    }
    pub fn resources(&self) -> &'static [ResourceDef] {
        RESOURCES
    }
    pub fn structs(&self) -> &'static [StructDef] {
        STRUCTS
    }
    pub fn struct_def(&self, i: usize) -> Option<&'static StructDef> {
        STRUCTS.get(i)
    }
}

/// The schema index.
pub fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut ix = Index {
            by_name: HashMap::new(),
            by_plural: HashMap::new(),
            by_object: HashMap::new(),
            children: HashMap::new(),
            back_refs: HashMap::new(),
        };
        for r in RESOURCES {
            ix.by_name.insert(r.name, r);
            ix.by_plural.insert(r.plural, r);
            ix.by_object.insert(r.object, r);
            for p in r.parents {
                ix.children.entry(p).or_default().push(r);
            }
            for f in r.refs {
                ix.back_refs.entry(f.target).or_default().push((r, f));
            }
        }
        ix
    })
}

impl PartialEq for ResourceDef {
    /// Types are identified by name.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for ResourceDef {}
