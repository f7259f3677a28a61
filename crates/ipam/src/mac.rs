//! MAC addresses for virtual-machine-interfaces.
//!
//! TF derives a VMI's MAC from its uuid: `"02:"` followed by the first five
//! bytes of the uuid, i.e. characters `[0:2] [2:4] [4:6] [6:8] [9:11]` of the
//! canonical lower-case string (skipping the dash).

use uuid::Uuid;

use crate::IpamError;

/// TF's default MAC for a VMI: `uuid 5b1f0c1e-9a3b-…` → `02:5b:1f:0c:1e:9a`.
pub fn mac_from_uuid(uuid: &Uuid) -> String {
    let b = uuid.as_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// Checks that `value` is six hex octets separated by `:` or `-`.
pub fn validate_mac(value: &str) -> Result<(), IpamError> {
    normalize_mac(value).map(|_| ())
}

/// Parses a MAC (`:`- or `-`-separated, any case) into lower-case colon form.
pub fn normalize_mac(value: &str) -> Result<String, IpamError> {
    let invalid = || IpamError::InvalidMac {
        value: value.to_owned(),
    };
    let sep = if value.contains('-') { '-' } else { ':' };
    let octets: Vec<&str> = value.split(sep).collect();
    if octets.len() != 6 {
        return Err(invalid());
    }
    let mut out = String::with_capacity(17);
    for (i, octet) in octets.iter().enumerate() {
        if octet.len() != 2 || !octet.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        if i > 0 {
            out.push(':');
        }
        out.push_str(&octet.to_ascii_lowercase());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mac_from_uuid_matches_tf() {
        let uuid = Uuid::parse_str("5b1f0c1e-9a3b-4c5d-8e6f-0123456789ab").unwrap();
        assert_eq!(mac_from_uuid(&uuid), "02:5b:1f:0c:1e:9a");
        // Same as slicing TF's canonical string.
        let s = uuid.to_string();
        let tf = format!(
            "02:{}:{}:{}:{}:{}",
            &s[0..2],
            &s[2..4],
            &s[4..6],
            &s[6..8],
            &s[9..11]
        );
        assert_eq!(mac_from_uuid(&uuid), tf);
        let upper = Uuid::parse_str("ABCDEF01-2345-6789-ABCD-EF0123456789").unwrap();
        assert_eq!(mac_from_uuid(&upper), "02:ab:cd:ef:01:23");
        assert!(validate_mac(&mac_from_uuid(&Uuid::nil())).is_ok());
    }

    #[test]
    fn validate_and_normalize() {
        assert!(validate_mac("02:5b:1f:0c:1e:9a").is_ok());
        assert_eq!(
            normalize_mac("02-5B-1F-0C-1E-9A").unwrap(),
            "02:5b:1f:0c:1e:9a"
        );
        for bad in [
            "",
            "02:5b:1f:0c:1e",
            "02:5b:1f:0c:1e:9a:00",
            "02:5b:1f:0c:1e:9g",
            "2:5b:1f:0c:1e:9a",
            "025b.1f0c.1e9a",
            "02:5b-1f:0c:1e:9a",
            "02:5b:1f:0c:1e:+9",
        ] {
            assert_eq!(
                validate_mac(bad),
                Err(IpamError::InvalidMac { value: bad.into() }),
                "{bad}"
            );
        }
    }
}
