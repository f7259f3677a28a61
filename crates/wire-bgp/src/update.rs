//! UPDATE message (RFC 4271 §4.3, §6.3) with RFC 7606 revised error
//! handling as an option ([`crate::DecodeCtx::rfc7606`]).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use ipnet::Ipv4Net;

use crate::attr::{code, flag, Outcome, PathAttr};
use crate::nlri::ip;
use crate::notification::UpdateError;
use crate::{len_u16, DecodeCtx, DecodeError, EncodeError, Reader};

/// An UPDATE message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// IPv4 unicast routes withdrawn.
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes, in received order.
    pub attrs: Vec<PathAttr>,
    /// IPv4 unicast routes advertised.
    pub nlri: Vec<Ipv4Net>,
}

impl Update {
    /// The first attribute with the given type code.
    pub fn attr(&self, code: u8) -> Option<&PathAttr> {
        self.attrs.iter().find(|a| a.code() == code)
    }

    /// An End-of-RIB marker for IPv4 unicast (RFC 4724 §2): an empty UPDATE.
    pub fn is_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty() && self.attrs.is_empty() && self.nlri.is_empty()
    }

    pub(crate) fn decode(body: &[u8], ctx: &DecodeCtx) -> Result<Update, DecodeError> {
        // RFC 4271 - Section 6.3:
        // "If the Withdrawn Routes Length or Total Attribute Length is too
        // large (i.e., if Withdrawn Routes Length + Total Attribute Length + 23
        // exceeds the message Length), then the Error Subcode MUST be set to
        // Malformed Attribute List."
        let malformed =
            |reason| DecodeError::update(UpdateError::MalformedAttributeList, Vec::new(), reason);
        let mut r = Reader::new(body);
        let wlen = usize::from(r.u16().ok_or_else(|| malformed("truncated"))?);
        let wbuf = r
            .take(wlen)
            .ok_or_else(|| malformed("withdrawn routes length too large"))?;
        let alen = usize::from(
            r.u16()
                .ok_or_else(|| malformed("withdrawn routes length too large"))?,
        );
        let abuf = r
            .take(alen)
            .ok_or_else(|| malformed("total attribute length too large"))?;
        let withdrawn = ip::decode_v4(wbuf)?;
        let nlri = ip::decode_v4(r.rest())?;

        let mut attrs = Vec::new();
        let mut seen = [false; 256];
        let mut withdraw: Option<(u8, UpdateError)> = None;
        let mut bad_next_hop: Option<UpdateError> = None;
        let mut a = Reader::new(abuf);
        while !a.is_empty() {
            let start = abuf.len() - a.remaining();
            let hdr = (a.u8(), a.u8());
            let (Some(flags), Some(code)) = hdr else {
                // A lone octet cannot be an attribute.
                withdraw_or(
                    ctx,
                    &mut withdraw,
                    0,
                    UpdateError::AttributeLength,
                    &abuf[start..],
                )?;
                break;
            };
            let len = if flags & flag::EXTENDED != 0 {
                a.u16()
            } else {
                a.u8().map(u16::from)
            };
            // RFC 7606 - Section 4 (paraphrased): an attribute whose length
            // runs past the end of the path attributes field makes the rest
            // of the field unparseable; "treat-as-withdraw" MUST be used.
            // (RFC 4271: Attribute Length Error.)
            let Some(value) = len.and_then(|l| a.take(usize::from(l))) else {
                withdraw_or(
                    ctx,
                    &mut withdraw,
                    code,
                    UpdateError::AttributeLength,
                    &abuf[start..],
                )?;
                break;
            };
            let raw = &abuf[start..abuf.len() - a.remaining()];
            if seen[usize::from(code)] {
                // RFC 7606 - Section 3.g: "If the MP_REACH_NLRI attribute or
                // the MP_UNREACH_NLRI attribute appears more than once in the
                // UPDATE message, then a NOTIFICATION message MUST be sent
                // with the Error Subcode 'Malformed Attribute List'. If any
                // other attribute ... appears more than once ..., then all
                // the occurrences of the attribute other than the first one
                // SHALL be discarded". RFC 4271 §6.3 makes every repeat a
                // Malformed Attribute List.
                if !ctx.rfc7606 || code == code::MP_REACH || code == code::MP_UNREACH {
                    return Err(malformed("attribute appears more than once"));
                }
                continue;
            }
            seen[usize::from(code)] = true;
            match PathAttr::decode(flags, code, value, raw, ctx)? {
                Outcome::Keep(attr) => attrs.push(attr),
                Outcome::Discard => {}
                // An unusable NEXT_HOP value (0.0.0.0, multicast...) matters
                // only for the NLRI field it is the next hop of; decided below.
                Outcome::Withdraw(sub @ UpdateError::InvalidNextHop) if code == code::NEXT_HOP => {
                    bad_next_hop = Some(sub);
                }
                Outcome::Withdraw(sub) => {
                    withdraw.get_or_insert((code, sub));
                }
            }
        }
        // RFC 4760 - Section 3: "An UPDATE message that carries no NLRI, other
        // than the one encoded in the MP_REACH_NLRI attribute, SHOULD NOT
        // carry the NEXT_HOP attribute. If such a message contains the
        // NEXT_HOP attribute, the BGP speaker that receives the message SHOULD
        // ignore this attribute." So a bad one withdraws only when the NLRI
        // field has routes (RFC 7606 §7.3); VPN routes beside it are kept.
        if let Some(sub) = bad_next_hop {
            if !nlri.is_empty() {
                withdraw.get_or_insert((code::NEXT_HOP, sub));
            }
        }

        // RFC 4271 - Section 6.3:
        // "If any of the well-known mandatory attributes are not present, then
        // the Error Subcode MUST be set to Missing Well-known Attribute. The
        // Data field MUST contain the Attribute Type Code of the missing,
        // well-known attribute."
        // RFC 7606 - Section 3.d: only when the UPDATE carries reachable NLRI
        // (NEXT_HOP only for the NLRI field), and handled as treat-as-withdraw.
        let has_reach = !nlri.is_empty() || seen[usize::from(code::MP_REACH)];
        if withdraw.is_none() && has_reach {
            let mut required = vec![code::ORIGIN, code::AS_PATH];
            if !nlri.is_empty() {
                required.push(code::NEXT_HOP);
            }
            if let Some(&missing) = required
                .iter()
                .find(|&&c| !attrs.iter().any(|a| a.code() == c))
            {
                if ctx.rfc7606 {
                    withdraw = Some((missing, UpdateError::MissingWellKnown));
                } else {
                    return Err(DecodeError::update(
                        UpdateError::MissingWellKnown,
                        vec![missing],
                        "missing well-known attribute",
                    ));
                }
            }
        }

        let update = Update {
            withdrawn,
            attrs,
            nlri,
        };
        match withdraw {
            None => Ok(update),
            Some((attr_type, subcode)) => Err(DecodeError::TreatAsWithdraw {
                attr_type,
                subcode,
                msg_len: 0,
                update: Box::new(update),
            }),
        }
    }

    pub(crate) fn encode(&self, ctx: &DecodeCtx, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut w = Vec::new();
        self.withdrawn.iter().for_each(|p| ip::encode_v4(p, &mut w));
        out.extend_from_slice(&len_u16(w.len(), "withdrawn routes")?.to_be_bytes());
        out.extend_from_slice(&w);
        let mut a = Vec::new();
        for attr in &self.attrs {
            attr.encode(ctx, &mut a)?;
        }
        out.extend_from_slice(&len_u16(a.len(), "path attributes")?.to_be_bytes());
        out.extend_from_slice(&a);
        self.nlri.iter().for_each(|p| ip::encode_v4(p, out));
        Ok(())
    }
}

/// Record a treat-as-withdraw under RFC 7606, or fail under RFC 4271.
fn withdraw_or(
    ctx: &DecodeCtx,
    withdraw: &mut Option<(u8, UpdateError)>,
    code: u8,
    subcode: UpdateError,
    raw: &[u8],
) -> Result<(), DecodeError> {
    if ctx.rfc7606 {
        withdraw.get_or_insert((code, subcode));
        Ok(())
    } else {
        Err(DecodeError::update(
            subcode,
            raw.to_vec(),
            "attribute length overruns attributes",
        ))
    }
}
