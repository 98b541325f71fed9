//! URIs: the URI record's rdata (RFC 7553) and the CoAP URI shape a candidate must have.
//!
//! hickory-proto 0.26 has no typed URI record, so type 256 arrives as unknown rdata and is
//! decoded here: priority (u16), weight (u16), then the target URI as the rest of the rdata —
//! not a `<character-string>`, so no length octet, and RFC 7553 §4.5 requires it non-empty.
//!
//! The CoAP URI check (RFC 7252 §6, RFC 8323 §8.1) is what a device needs before it dials:
//! a known scheme, `//`, a host (name, IPv4 or `[IPv6]`), an optional port, then path and
//! query. It also gives the comparison key for removing duplicates, so that
//! `coaps://BS.example:5684/` and `coaps://bs.example` count as one server.

use std::fmt;
use std::net::Ipv6Addr;

use super::Transport;

/// A decoded URI record (RFC 7553).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriRdata {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative chance among records of the same priority.
    pub weight: u16,
    /// The target URI, as sent.
    pub target: String,
}

/// Why URI rdata could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UriRdataError {
    /// Fewer than the 4 octets of priority and weight.
    TooShort(usize),
    /// Priority and weight, but no target (RFC 7553 §4.5: the target is not empty).
    EmptyTarget,
    /// The target is not printable ASCII (RFC 3986 URIs are; spaces and controls are not).
    NotAscii,
}

impl fmt::Display for UriRdataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(len) => write!(f, "URI rdata of {len} octets is shorter than 4"),
            Self::EmptyTarget => f.write_str("URI rdata has an empty target"),
            Self::NotAscii => f.write_str("URI target is not printable ASCII"),
        }
    }
}

impl std::error::Error for UriRdataError {}

/// Decodes the rdata of a URI record (type 256).
pub fn parse_uri_rdata(rdata: &[u8]) -> Result<UriRdata, UriRdataError> {
    let (fixed, target) = match rdata {
        [a, b, c, d, target @ ..] => ([*a, *b, *c, *d], target),
        _ => return Err(UriRdataError::TooShort(rdata.len())),
    };
    if target.is_empty() {
        return Err(UriRdataError::EmptyTarget);
    }
    if !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(UriRdataError::NotAscii);
    }
    let target = String::from_utf8(target.to_vec()).map_err(|_| UriRdataError::NotAscii)?;
    Ok(UriRdata {
        priority: u16::from_be_bytes([fixed[0], fixed[1]]),
        weight: u16::from_be_bytes([fixed[2], fixed[3]]),
        target,
    })
}

/// A URI a device can use: one of the four CoAP schemes with a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoapUri {
    /// From the scheme.
    pub transport: Transport,
    /// Host as written: a name (without a trailing dot), an IPv4 address or `[IPv6]`.
    pub host: String,
    /// Port if the URI names one.
    pub port: Option<u16>,
    /// Path and query, possibly empty.
    pub path_and_query: String,
}

/// Why a string is not a usable CoAP URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoapUriError {
    /// Not one of coap, coaps, coap+tcp, coaps+tcp followed by `://`.
    Scheme,
    /// No host, or a host that is not a name or an address.
    Host,
    /// A port that is not a number from 0 to 65535.
    Port,
    /// Userinfo, a fragment, spaces or non-ASCII: not allowed in CoAP URIs.
    Syntax,
}

impl fmt::Display for CoapUriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "scheme is not coap, coaps, coap+tcp or coaps+tcp",
            Self::Host => "missing or malformed host",
            Self::Port => "malformed port",
            Self::Syntax => "userinfo, fragment, spaces or non-ASCII are not allowed",
        })
    }
}

impl std::error::Error for CoapUriError {}

impl CoapUri {
    /// Parses `text` as a CoAP URI.
    pub fn parse(text: &str) -> Result<Self, CoapUriError> {
        if !text.bytes().all(|b| b.is_ascii_graphic()) || text.contains('#') {
            return Err(CoapUriError::Syntax);
        }
        let (scheme, rest) = text.split_once("://").ok_or(CoapUriError::Scheme)?;
        let transport = Transport::from_scheme(scheme).ok_or(CoapUriError::Scheme)?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(CoapUriError::Syntax);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None | Some("") => None,
            Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse::<u16>().map_err(|_| CoapUriError::Port)?)
            }
            Some(_) => return Err(CoapUriError::Port),
        };
        Ok(Self {
            transport,
            host: host.trim_end_matches('.').to_owned(),
            port,
            path_and_query: path_and_query.to_owned(),
        })
    }

    /// The port a device dials: the given one or the scheme's default.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.transport.default_port())
    }

    /// Two URIs with the same key reach the same resource: scheme and host compared without
    /// case, the default port made explicit, and an empty path taken as `/` (RFC 7252 §6.3).
    pub fn dedup_key(&self) -> String {
        let path = if self.path_and_query.is_empty() || self.path_and_query.starts_with('?') {
            format!("/{}", self.path_and_query)
        } else {
            self.path_and_query.clone()
        };
        format!(
            "{}://{}:{}{}",
            self.transport.scheme(),
            self.host.to_ascii_lowercase(),
            self.effective_port(),
            path
        )
    }
}

/// Splits an authority into host and the text after its `:`, checking the host.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), CoapUriError> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or(CoapUriError::Host)?;
        inside.parse::<Ipv6Addr>().map_err(|_| CoapUriError::Host)?;
        let host = &authority[..inside.len() + 2];
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or(CoapUriError::Port),
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(CoapUriError::Host);
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdata(priority: u16, weight: u16, target: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&priority.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(target);
        out
    }

    #[test]
    fn uri_rdata_decodes_priority_weight_and_target() {
        let parsed = parse_uri_rdata(&rdata(10, 513, b"coaps://bs.example:5684")).unwrap();
        assert_eq!(
            parsed,
            UriRdata {
                priority: 10,
                weight: 513,
                target: "coaps://bs.example:5684".into()
            }
        );
        let max = parse_uri_rdata(&rdata(u16::MAX, 0, b"x")).unwrap();
        assert_eq!((max.priority, max.weight), (u16::MAX, 0));
    }

    #[test]
    fn uri_rdata_target_is_not_a_character_string() {
        // A length octet in front (as if it were a <character-string>) is kept as data and
        // then rejected as not printable, rather than silently stripped.
        let mut target = vec![23u8];
        target.extend_from_slice(b"coaps://bs.example:5684");
        assert_eq!(
            parse_uri_rdata(&rdata(1, 1, &target)),
            Err(UriRdataError::NotAscii)
        );
    }

    #[test]
    fn malformed_uri_rdata_is_rejected() {
        assert_eq!(parse_uri_rdata(&[]), Err(UriRdataError::TooShort(0)));
        assert_eq!(parse_uri_rdata(&[0, 1, 0]), Err(UriRdataError::TooShort(3)));
        assert_eq!(
            parse_uri_rdata(&[0, 1, 0, 1]),
            Err(UriRdataError::EmptyTarget)
        );
        assert_eq!(
            parse_uri_rdata(&rdata(1, 1, b"coap://a b")),
            Err(UriRdataError::NotAscii)
        );
        assert_eq!(
            parse_uri_rdata(&rdata(1, 1, "coap://bs.ex\u{e4}mple".as_bytes())),
            Err(UriRdataError::NotAscii)
        );
        assert_eq!(
            parse_uri_rdata(&rdata(1, 1, b"coap://x\n")),
            Err(UriRdataError::NotAscii)
        );
    }

    #[test]
    fn coap_uris_parse() {
        let uri = CoapUri::parse("coaps+tcp://BS.Example.net:443/bs?ep=1").unwrap();
        assert_eq!(uri.transport, Transport::CoapsTcp);
        assert_eq!(uri.host, "BS.Example.net");
        assert_eq!(uri.port, Some(443));
        assert_eq!(uri.path_and_query, "/bs?ep=1");

        let v6 = CoapUri::parse("coap://[2001:db8::1]:5683").unwrap();
        assert_eq!(v6.host, "[2001:db8::1]");
        assert_eq!(v6.port, Some(5683));
        let v6 = CoapUri::parse("coap://[2001:db8::1]").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[2001:db8::1]", None));

        let v4 = CoapUri::parse("COAP://192.0.2.1").unwrap();
        assert_eq!(v4.transport, Transport::Coap);
        assert_eq!(v4.effective_port(), 5683);
        assert_eq!(
            CoapUri::parse("coaps://h.example")
                .unwrap()
                .effective_port(),
            5684
        );
    }

    #[test]
    fn malformed_coap_uris_are_rejected() {
        for (text, err) in [
            ("http://bs.example", CoapUriError::Scheme),
            ("coaps:/bs.example", CoapUriError::Scheme),
            ("bs.example:5684", CoapUriError::Scheme),
            ("coaps://", CoapUriError::Host),
            ("coaps://:5684", CoapUriError::Host),
            ("coaps://bs..example", CoapUriError::Host),
            ("coaps://[2001:db8::1:5684", CoapUriError::Host),
            ("coaps://[not-v6]:5684", CoapUriError::Host),
            ("coaps://[2001:db8::1]x", CoapUriError::Port),
            ("coaps://bs.example:99999", CoapUriError::Port),
            ("coaps://bs.example:56a4", CoapUriError::Port),
            ("coaps://user@bs.example", CoapUriError::Syntax),
            ("coaps://bs.example/#frag", CoapUriError::Syntax),
            ("coaps://bs example", CoapUriError::Syntax),
        ] {
            assert_eq!(CoapUri::parse(text), Err(err), "{text}");
        }
    }

    #[test]
    fn dedup_key_normalises_case_default_port_and_empty_path() {
        let key = |text: &str| CoapUri::parse(text).unwrap().dedup_key();
        assert_eq!(key("coaps://BS.example"), key("COAPS://bs.example:5684/"));
        assert_eq!(key("coaps://bs.example."), key("coaps://bs.example:5684"));
        assert_eq!(
            key("coap://bs.example?x=1"),
            key("coap://bs.example:5683/?x=1")
        );
        assert_ne!(key("coap://bs.example"), key("coaps://bs.example"));
        assert_ne!(
            key("coaps://bs.example:5684/a"),
            key("coaps://bs.example:5684/A")
        );
        assert_ne!(key("coaps://bs.example:1"), key("coaps://bs.example"));
    }
}
