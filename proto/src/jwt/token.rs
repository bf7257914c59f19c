//! Compact JWS serialization: `header.payload.signature`, each part unpadded base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::Engine;

use super::{JwtError, MAX_TOKEN};

/// The three segments of a compact token, still base64url-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segments<'t> {
    pub header: &'t [u8],
    pub payload: &'t [u8],
    pub signature: &'t [u8],
    /// `header.payload`: the bytes the signature covers.
    pub signing_input: &'t [u8],
}

/// Splits a token into exactly three segments. Header and payload must be non-empty; the
/// signature may be empty (it then fails to verify).
pub(crate) fn split(token: &[u8]) -> Result<Segments<'_>, JwtError> {
    if token.len() > MAX_TOKEN {
        return Err(JwtError::TooLarge);
    }
    let mut dots = token
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'.')
        .map(|(i, _)| i);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(JwtError::Malformed);
    };
    let header = &token[..first];
    let payload = &token[first + 1..second];
    if header.is_empty() || payload.is_empty() {
        return Err(JwtError::Malformed);
    }
    Ok(Segments {
        header,
        payload,
        signature: &token[second + 1..],
        signing_input: &token[..second],
    })
}

/// Decodes one unpadded base64url segment into `buf`. Padding, other alphabets and
/// non-zero trailing bits are [`JwtError::Malformed`]; output longer than `buf` is
/// `too_long`.
pub(crate) fn decode<'b>(
    segment: &[u8],
    buf: &'b mut [u8],
    too_long: JwtError,
) -> Result<&'b [u8], JwtError> {
    if segment.len() / 4 * 3 + (segment.len() % 4).saturating_sub(1) > buf.len() {
        return Err(too_long);
    }
    let len = URL_SAFE_NO_PAD
        .decode_slice(segment, buf)
        .map_err(|_| JwtError::Malformed)?;
    buf.get(..len).ok_or(JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_segments() {
        let s = split(b"aGVh.cGF5.c2ln").unwrap();
        assert_eq!(s.header, b"aGVh");
        assert_eq!(s.payload, b"cGF5");
        assert_eq!(s.signature, b"c2ln");
        assert_eq!(s.signing_input, b"aGVh.cGF5");
        assert_eq!(split(b"a.b.").unwrap().signature, b"");
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in [
            &b""[..],
            b"abc",
            b"a.b",
            b"a.b.c.d",
            b"a.b.c.d.e",
            b"..",
            b".b.c",
            b"a..c",
            b"...",
        ] {
            assert_eq!(split(bad), Err(JwtError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn size_bound() {
        let mut token = vec![b'a'; MAX_TOKEN];
        token[1] = b'.';
        token[3] = b'.';
        assert!(split(&token).is_ok());
        token.push(b'a');
        assert_eq!(split(&token), Err(JwtError::TooLarge));
    }

    #[test]
    fn decodes_unpadded_base64url() {
        let mut buf = [0u8; 8];
        assert_eq!(
            decode(b"-_8", &mut buf, JwtError::TooLarge),
            Ok(&[0xfb, 0xff][..])
        );
        assert_eq!(decode(b"", &mut buf, JwtError::TooLarge), Ok(&[][..]));
        assert_eq!(
            decode(b"YWJjZGVmZ2g", &mut buf, JwtError::TooLarge),
            Ok(&b"abcdefgh"[..])
        );
        for bad in [&b"-_8="[..], b"+/8", b"YQ==", b"Y", b"YR", b"a b", b"YW\n"] {
            assert_eq!(
                decode(bad, &mut buf, JwtError::TooLarge),
                Err(JwtError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode(b"YWJjZGVmZ2hp", &mut buf, JwtError::TooLarge),
            Err(JwtError::TooLarge)
        );
    }
}
