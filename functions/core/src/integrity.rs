//! End-to-end integrity: the SHA-256 a client declares for its file. For a single PUT it is
//! signed into the URL (`x-amz-checksum-sha256`), so storage refuses other bytes; for every
//! upload the processor compares its own hash with it (`checksum_mismatch`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::refusal::DomainError;

/// A SHA-256 digest, given as 64 hex digits or as 44 characters of base64 (what S3's
/// `x-amz-checksum-sha256` and Web Crypto users send).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let invalid = || {
            DomainError::invalid(
                "invalid_sha256",
                "sha256 must be the file's SHA-256: 64 hexadecimal digits or 44 characters of base64",
            )
        };
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16)).collect::<Result<Vec<u8>, _>>().ok()
        } else if s.len() == 44 {
            STANDARD.decode(s).ok()
        } else {
            None
        };
        let bytes: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(invalid)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Lowercase hex: how the API and the catalog show it (as the computed `sha256`).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Standard base64: the value of `x-amz-checksum-sha256`.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

/// Lowercase hex, as digests are shown everywhere.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
    const ABC_HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_B64: &str = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";

    #[test]
    fn hex_and_base64_name_the_same_digest() {
        let a = Sha256Digest::parse(ABC_HEX).unwrap();
        assert_eq!(Sha256Digest::parse(ABC_B64).unwrap(), a);
        assert_eq!(Sha256Digest::parse(&ABC_HEX.to_uppercase()).unwrap(), a);
        assert_eq!((a.to_hex().as_str(), a.to_base64().as_str()), (ABC_HEX, ABC_B64));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "abc",
            &ABC_HEX[..63],
            &format!("{ABC_HEX}0"),
            &ABC_HEX.replace('b', "g"),
            &ABC_B64.replace('=', ""),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
            &"A".repeat(44),
            &format!("+{}", &ABC_HEX[1..]),
        ] {
            let e = Sha256Digest::parse(bad).unwrap_err();
            assert_eq!((e.kind, e.code), (crate::refusal::Refusal::Invalid, "invalid_sha256"), "{bad:?}");
        }
    }
}
