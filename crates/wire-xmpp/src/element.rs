//! A small, namespace-unaware XML element tree (tf-facts §2.1–§2.6).
//!
//! TF's own XMPP code (pugixml) matches element names literally (`pubsub`, `stream:features`),
//! so names are kept as written, prefixes included, and `xmlns` is just an attribute.
//! Whitespace-only text (ASCII whitespace or the U+0200 keepalive character, §2.1) is dropped
//! and adjacent text/CDATA is merged, so `parse(emit(e)) == e` for every parsed `e`.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Result, XmppError};

/// The TF keepalive character U+0200 (bytes 0xC8 0x80), inter-stanza whitespace (tf-facts §2.1).
pub const KEEPALIVE_CHAR: char = '\u{200}';

/// One child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (already unescaped; never whitespace-only after parsing).
    Text(String),
}

/// An XML element: qualified name, attributes in document order, children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Qualified name as written (`iq`, `stream:features`).
    pub name: String,
    /// Attributes in order, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child nodes in order.
    pub children: Vec<Node>,
}

/// Whitespace in the TF sense: XML whitespace plus the keepalive character.
pub(crate) fn is_ws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n') || c == KEEPALIVE_CHAR
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (c as u32) >= 0x80 && !is_ws_char(c)
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

/// Whether `s` is an acceptable XML name for this crate.
pub(crate) fn valid_name(s: &str) -> bool {
    let mut it = s.chars();
    match it.next() {
        Some(c) if is_name_start(c) => it.all(is_name_char),
        _ => false,
    }
}

fn check_chars(s: &str) -> Result<()> {
    match s.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        Some(c) => Err(XmppError::invalid(
            "character data",
            s,
            format!("forbidden character U+{:04X}", c as u32),
        )),
        None => Ok(()),
    }
}

fn xml_err(e: impl std::fmt::Display) -> XmppError {
    XmppError::Xml(e.to_string())
}

impl Element {
    /// An element with no attributes or children.
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: add an attribute.
    pub fn with_attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attrs.push((key.into(), value.into()));
        self
    }

    /// Builder: add a child element.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: add text (ignored when empty).
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        let t = text.into();
        if !t.is_empty() {
            self.children.push(Node::Text(t));
        }
        self
    }

    /// `<name>text</name>` shorthand.
    pub fn leaf(name: impl Into<String>, text: impl Into<String>) -> Self {
        Element::new(name).with_text(text)
    }

    /// Attribute value by exact name.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Required attribute.
    pub fn req_attr(&self, key: &str) -> Result<&str> {
        self.attr(key)
            .ok_or_else(|| XmppError::missing_attr(&self.name, key))
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// First child element with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Required child element.
    pub fn req_child(&self, name: &str) -> Result<&Element> {
        self.child(name)
            .ok_or_else(|| XmppError::missing(&self.name, name))
    }

    /// All child elements with this name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// Concatenated direct text content.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Parse exactly one element (optionally preceded by an XML declaration, comments, whitespace).
    pub fn parse(xml: &str) -> Result<Element> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<(Element, String)> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let ev = reader.read_event().map_err(xml_err)?;
            match ev {
                Event::Start(s) | Event::Empty(s) if root.is_some() => {
                    return Err(XmppError::Xml(format!(
                        "content after root element: <{}>",
                        String::from_utf8_lossy(s.name().as_ref())
                    )));
                }
                Event::Start(s) => {
                    let el = start_to_element(&s)?;
                    stack.push((el, String::new()));
                }
                Event::Empty(s) => {
                    let el = start_to_element(&s)?;
                    attach(&mut stack, &mut root, el);
                }
                Event::End(_) => {
                    let Some((mut el, pending)) = stack.pop() else {
                        return Err(XmppError::Xml("unmatched end tag".into()));
                    };
                    flush_text(&mut el, pending);
                    attach(&mut stack, &mut root, el);
                }
                Event::Text(t) => {
                    let s = t.unescape().map_err(xml_err)?;
                    check_chars(&s)?;
                    match stack.last_mut() {
                        Some((_, pending)) => pending.push_str(&s),
                        None if s.chars().all(is_ws_char) => {}
                        None => {
                            return Err(XmppError::Xml("text outside root element".into()));
                        }
                    }
                }
                Event::CData(c) => {
                    let s = std::str::from_utf8(&c).map_err(|_| XmppError::Utf8)?;
                    check_chars(s)?;
                    match stack.last_mut() {
                        Some((_, pending)) => pending.push_str(s),
                        None => return Err(XmppError::Xml("CDATA outside root element".into())),
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Decl(_) if stack.is_empty() && root.is_none() => {}
                Event::Decl(_) => return Err(XmppError::Xml("misplaced XML declaration".into())),
                Event::DocType(_) => return Err(XmppError::Xml("DOCTYPE not allowed".into())),
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(XmppError::Xml("unexpected end of input".into()));
        }
        root.ok_or_else(|| XmppError::Xml("no root element".into()))
    }

    /// Parse from bytes (must be UTF-8).
    pub fn parse_bytes(xml: &[u8]) -> Result<Element> {
        let s = std::str::from_utf8(xml).map_err(|_| XmppError::Utf8)?;
        Element::parse(s)
    }

    /// Serialize; empty elements are self-closed, attributes use double quotes.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out, false);
        out
    }

    /// Serialize, writing empty elements as `<x></x>` (TF's EoR form, tf-facts §2.3).
    pub fn to_xml_expanded(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out, true);
        out
    }

    /// Append the serialization ([`Element::to_xml`]) to `out`.
    pub fn write_xml(&self, out: &mut String) {
        self.write_to(out, false);
    }

    /// Append `<name attr="…"…` (attribute values escaped), without the closing `>`.
    pub fn write_open_tag(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(out, v, true);
            out.push('"');
        }
    }

    fn write_to(&self, out: &mut String, expand: bool) {
        self.write_open_tag(out);
        if self.children.is_empty() && !expand {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::Element(e) => e.write_to(out, expand),
                Node::Text(t) => escape_into(out, t, false),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn flush_text(el: &mut Element, pending: String) {
    if !pending.is_empty() && !pending.chars().all(is_ws_char) {
        el.children.push(Node::Text(pending));
    }
}

fn attach(stack: &mut [(Element, String)], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some((parent, pending)) => {
            let text = std::mem::take(pending);
            flush_text(parent, text);
            parent.children.push(Node::Element(el));
        }
        None => *root = Some(el),
    }
}

fn start_to_element(s: &quick_xml::events::BytesStart<'_>) -> Result<Element> {
    let name = std::str::from_utf8(s.name().as_ref())
        .map_err(|_| XmppError::Utf8)?
        .to_string();
    if !valid_name(&name) {
        return Err(XmppError::invalid("element name", &name, "not an XML name"));
    }
    let mut el = Element::new(name);
    for a in s.attributes() {
        let a = a.map_err(xml_err)?;
        let key = std::str::from_utf8(a.key.as_ref())
            .map_err(|_| XmppError::Utf8)?
            .to_string();
        if !valid_name(&key) {
            return Err(XmppError::invalid(
                "attribute name",
                &key,
                "not an XML name",
            ));
        }
        let value = a.unescape_value().map_err(xml_err)?.into_owned();
        check_chars(&value)?;
        el.attrs.push((key, value));
    }
    Ok(el)
}

/// Escape text or attribute content; control whitespace is written as character references
/// so it survives attribute-value normalisation.
pub(crate) fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// Parse a trimmed integer child text.
pub(crate) fn parse_num<T: std::str::FromStr>(field: &str, text: &str) -> Result<T> {
    text.trim()
        .parse::<T>()
        .map_err(|_| XmppError::invalid(field, text, "not a valid number"))
}

/// Optional numeric child.
pub(crate) fn opt_num<T: std::str::FromStr>(parent: &Element, name: &str) -> Result<Option<T>> {
    parent
        .child(name)
        .map(|c| parse_num(name, &c.text()))
        .transpose()
}

/// Optional string child; an empty element counts as absent.
///
/// TF's generated encoders (contrail-generateDS `type_parser.py`, `Encode`) write every
/// member of a type, so a real agent's `<entry>` carries `<virtual-network></virtual-network>`,
/// `<group></group>`, … for strings it never set; its own parsers read an empty string as
/// "unset".  Reading it as `Some("")` would, for example, hide the next hop's
/// `virtual-network` behind an empty entry-level one.
pub(crate) fn opt_text(parent: &Element, name: &str) -> Option<String> {
    parent
        .child(name)
        .map(Element::text)
        .filter(|t| !t.is_empty())
}

/// Push `<name>value</name>` when present.
pub(crate) fn push_opt<T: ToString>(el: &mut Element, name: &str, v: &Option<T>) {
    if let Some(v) = v {
        el.children
            .push(Node::Element(Element::leaf(name, v.to_string())));
    }
}

/// Comparison helper: whether two XML documents are equal modulo attribute order,
/// quote style, self-closing vs. expanded empty elements and inter-element whitespace.
pub fn xml_equivalent(a: &str, b: &str) -> Result<bool> {
    Ok(normalize(Element::parse(a)?) == normalize(Element::parse(b)?))
}

fn normalize(mut e: Element) -> Element {
    e.attrs.sort();
    e.children = e
        .children
        .into_iter()
        .map(|n| match n {
            Node::Element(c) => Node::Element(normalize(c)),
            t => t,
        })
        .collect();
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit_round_trip() {
        let x = r#"<?xml version='1.0'?><a x='1' y="&amp;&lt;"> <b>t&amp;x</b><!-- c --><c/>tail<![CDATA[<z>]]></a>"#;
        let e = Element::parse(x).unwrap_or_default();
        assert_eq!(e.attr("y"), Some("&<"));
        assert_eq!(e.child("b").map(Element::text).as_deref(), Some("t&x"));
        assert_eq!(e.children.len(), 3);
        assert_eq!(e.children[2], Node::Text("tail<z>".into()));
        let again = Element::parse(&e.to_xml()).unwrap_or_default();
        assert_eq!(again, e);
    }

    #[test]
    fn rejects_bad_documents() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<a>&bogus;</a>",
            "<!DOCTYPE a><a/>",
            "<a x='1' x='2'/>",
            "<a>&#0;</a>",
        ] {
            assert!(Element::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn control_whitespace_in_attrs_survives() {
        let e = Element::new("a").with_attr("k", "x\ty\r\nz\"'");
        assert_eq!(Element::parse(&e.to_xml()).ok(), Some(e));
    }

    #[test]
    fn equivalence_helper() {
        assert_eq!(
            xml_equivalent(
                "<a x='1' y='2'><b></b></a>",
                "<a y=\"2\" x=\"1\">\n  <b/>\n</a>"
            ),
            Ok(true)
        );
        assert_eq!(xml_equivalent("<a x='1'/>", "<a x='2'/>"), Ok(false));
    }
}
