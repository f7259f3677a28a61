//! STARTTLS negotiation elements, as TF's XMPP exchanges them when `xmpp_auth_enable` is set
//! (RFC 6120 §5; TF `src/xmpp/xmpp_str.h`, `xmpp_proto.cc`, `xmpp_state_machine.cc`).
//!
//! TF's sequence (docs/tf-agent-compat.md "XMPP over TLS"):
//! ```text
//!  agent                                   control node
//!  <stream:stream …>            ──────>
//!                               <──────    <stream:stream … id="++123" …>
//!                               <──────    <stream:features><starttls xmlns=…><required/></starttls></stream:features>
//!  <starttls xmlns=…/>          ──────>
//!                               <──────    <proceed xmlns=…/>
//!  ===================== TLS handshake on the same TCP connection ======================
//!  <stream:stream …>            ──────>    (a new stream, over TLS)
//!                               <──────    <stream:stream … id="++123" …>
//!  keepalives, subscriptions, routes …
//! ```
//! TF recognises these by substring (`XmppProto::DecodeInternal`): a message holding the TLS
//! namespace is a feature request if it holds `<stream:features>`, `<starttls` and
//! `<required`; else `TLS_START` if it holds `<starttls`; else `TLS_PROCEED` if it holds
//! `<proceed`.  We read the element tree instead, with the same outcome for what TF writes.

use crate::element::Element;

/// `xmlns` of the TLS negotiation elements (RFC 6120 §5.4).
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// One STARTTLS negotiation element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsNegotiation {
    /// Server → client `<stream:features><starttls xmlns=…>[<required/>]</starttls></stream:features>`
    /// (TF always sends `<required/>`).
    Features {
        /// `<required/>` present: the server talks to nobody in the clear.
        required: bool,
    },
    /// Client → server `<starttls xmlns=…/>`.
    StartTls,
    /// Server → client `<proceed xmlns=…/>`: the TLS handshake starts after this element.
    Proceed,
    /// Server → client `<failure xmlns=…/>` (RFC 6120 §5.4.2.2; TF never sends it).
    Failure,
}

impl TlsNegotiation {
    /// The negotiation element `e` is, or `None` if it is none of them (a `stream:features`
    /// without a `<starttls>` in the TLS namespace, an `iq`, …).
    pub fn from_element(e: &Element) -> Option<Self> {
        let tls_ns = |e: &Element| e.attr("xmlns") == Some(NS_TLS);
        match e.name.as_str() {
            "stream:features" => {
                e.children_named("starttls")
                    .find(|s| tls_ns(s))
                    .map(|s| TlsNegotiation::Features {
                        required: s.child("required").is_some(),
                    })
            }
            "starttls" if tls_ns(e) => Some(TlsNegotiation::StartTls),
            "proceed" if tls_ns(e) => Some(TlsNegotiation::Proceed),
            "failure" if tls_ns(e) => Some(TlsNegotiation::Failure),
            _ => None,
        }
    }

    /// The element, in TF's shape (`sXMPP_STREAM_FEATURE_TLS`, `sXMPP_STREAM_START_TLS`,
    /// `sXMPP_STREAM_PROCEED_TLS`).
    pub fn to_element(&self) -> Element {
        let tls = |name: &str| Element::new(name).with_attr("xmlns", NS_TLS);
        match self {
            TlsNegotiation::Features { required } => {
                let mut s = tls("starttls");
                if *required {
                    s = s.with_child(Element::new("required"));
                }
                Element::new("stream:features").with_child(s)
            }
            TlsNegotiation::StartTls => tls("starttls"),
            TlsNegotiation::Proceed => tls("proceed"),
            TlsNegotiation::Failure => tls("failure"),
        }
    }

    /// Wire text ([`Element::to_xml`] of [`TlsNegotiation::to_element`]).
    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::xml_equivalent;

    /// TF's own strings (xmpp_str.h) parse to the typed values and back to equivalent XML.
    #[test]
    fn tf_strings_round_trip() {
        let cases = [
            (
                "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
                TlsNegotiation::Features { required: true },
            ),
            (
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                TlsNegotiation::StartTls,
            ),
            (
                "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                TlsNegotiation::Proceed,
            ),
            (
                "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                TlsNegotiation::Failure,
            ),
        ];
        for (tf, want) in cases {
            let e = Element::parse(tf).unwrap();
            assert_eq!(TlsNegotiation::from_element(&e), Some(want), "{tf}");
            assert!(xml_equivalent(&want.to_xml(), tf).unwrap(), "{tf}");
        }
        let optional = TlsNegotiation::Features { required: false };
        let e = Element::parse(&optional.to_xml()).unwrap();
        assert_eq!(TlsNegotiation::from_element(&e), Some(optional));
    }

    /// Other namespaces and other elements are not negotiation elements.
    #[test]
    fn foreign_elements_are_not_tls() {
        for xml in [
            "<starttls/>",
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>",
            "<iq type='set'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></iq>",
        ] {
            let e = Element::parse(xml).unwrap();
            assert_eq!(TlsNegotiation::from_element(&e), None, "{xml}");
        }
    }
}
