//! The settings of scale-out: TSIG keys, who may transfer the zone, which secondaries to
//! NOTIFY. Read from the settings file by [`crate::config`], checked here in its style: every
//! mistake names file, line and field, and nothing is used before all of it is valid.
//!
//! ```toml
//! notify = ["192.0.2.53", "198.51.100.53:5300 key xfr"]   # secondaries told of new serials
//!
//! [access]
//! allow-transfer = ["192.0.2.53", "10.0.0.0/8 key xfr", "key xfr"]
//!
//! [[tsig-key]]
//! name = "xfr"
//! algorithm = "hmac-sha256"        # also hmac-sha384, hmac-sha512, hmac-sha224
//! secret = "base64..."             # e.g. the output of `openssl rand -base64 32`
//! ```
//!
//! An `allow-transfer` entry is an address or prefix, `key NAME`, or both (`PREFIX key NAME`:
//! that address with that key). The default is that nobody may transfer.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::tsig::{Algorithm, Key};
use crate::diag::{Source, SourceError};

/// Secrets shorter than this are refused: RFC 8945 §6 wants keys as long as the MAC.
const MIN_SECRET_LEN: usize = 16;

/// `[[tsig-key]]` as written. Its `Debug` leaves the secret out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsigKey {
    name: Spanned<String>,
    algorithm: Option<Spanned<String>>,
    secret: Spanned<String>,
}

impl fmt::Debug for RawTsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTsigKey")
            .field("name", self.name.get_ref())
            .field("algorithm", &self.algorithm.as_ref().map(|a| a.get_ref()))
            .finish_non_exhaustive()
    }
}

/// One `allow-transfer` entry: the client must match every part given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRule {
    pub prefix: Option<IpNet>,
    pub key: Option<Name>,
}

/// A secondary to NOTIFY, and the key to sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub addr: SocketAddr,
    pub key: Option<Name>,
}

/// Everything about transfers; may change on reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferSettings {
    pub keys: Vec<Key>,
    /// Empty: nobody may transfer.
    pub allow_transfer: Vec<TransferRule>,
    pub notify: Vec<NotifyTarget>,
}

/// What the access list says of a transfer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An entry covers the address but wants a (different) key.
    NeedsKey,
    /// No entry covers the address.
    Deny,
}

impl TransferSettings {
    pub fn key(&self, name: &Name) -> Option<&Key> {
        self.keys.iter().find(|k| &k.name == name)
    }

    /// Whether `ip`, having signed with `key` (verified) or not at all, may transfer.
    pub fn decide(&self, ip: IpAddr, key: Option<&Name>) -> Decision {
        let ip = match ip {
            // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let mut address_matched = false;
        for rule in &self.allow_transfer {
            if rule.prefix.is_some_and(|p| !p.contains(&ip)) {
                continue;
            }
            address_matched = true;
            match (&rule.key, key) {
                (None, _) => return Decision::Allow,
                (Some(want), Some(have)) if want == have => return Decision::Allow,
                _ => {}
            }
        }
        if address_matched {
            Decision::NeedsKey
        } else {
            Decision::Deny
        }
    }
}

fn key_name(text: &str) -> Result<Name, String> {
    let mut name = Name::from_ascii(text)
        .map_err(|e| format!("{text:?} is not a valid key name (a domain name): {e}"))?;
    if name.is_root() || text.is_empty() {
        return Err(format!("{text:?} is not a usable key name"));
    }
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// The value of `result`, or `None` after adding its message as an error of `entry`.
fn report<T>(
    errors: &mut Vec<SourceError>,
    source: &Source<'_>,
    entry: &Spanned<String>,
    field: &str,
    result: Result<T, String>,
) -> Option<T> {
    result
        .map_err(|message| errors.push(source.error(Some(entry.span()), field, message)))
        .ok()
}

/// Checks `[[tsig-key]]`, `[access] allow-transfer` and `notify`, adding every mistake to
/// `errors`.
pub fn validate(
    raw_keys: Option<Vec<RawTsigKey>>,
    allow_transfer: Option<Vec<Spanned<String>>>,
    notify: Option<Vec<Spanned<String>>>,
    source: &Source<'_>,
    errors: &mut Vec<SourceError>,
) -> TransferSettings {
    let mut keys: Vec<Key> = Vec::new();
    for (i, raw) in raw_keys.unwrap_or_default().iter().enumerate() {
        let name = match key_name(raw.name.get_ref()) {
            Ok(name) => name,
            Err(message) => {
                errors.push(source.error(
                    Some(raw.name.span()),
                    format!("tsig-key[{i}].name"),
                    message,
                ));
                continue;
            }
        };
        if keys.iter().any(|k| k.name == name) {
            errors.push(source.error(
                Some(raw.name.span()),
                format!("tsig-key[{i}].name"),
                format!("key {name} is defined twice"),
            ));
        }
        let algorithm = match &raw.algorithm {
            None => Algorithm::HmacSha256,
            Some(text) => match Algorithm::parse(text.get_ref()) {
                Some(a) => a,
                None => {
                    let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    errors.push(source.error(
                        Some(text.span()),
                        format!("tsig-key[{i}].algorithm"),
                        format!(
                            "{:?} is not supported; use one of {}",
                            text.get_ref(),
                            known.join(", ")
                        ),
                    ));
                    continue;
                }
            },
        };
        // The message never quotes the secret: settings errors are printed and logged.
        let secret = match base64::engine::general_purpose::STANDARD
            .decode(raw.secret.get_ref().trim())
        {
            Ok(bytes) if bytes.len() >= MIN_SECRET_LEN => bytes,
            Ok(bytes) => {
                errors.push(source.error(
                    Some(raw.secret.span()),
                    format!("tsig-key[{i}].secret"),
                    format!(
                        "the secret is {} octets; at least {MIN_SECRET_LEN} are needed (e.g. `openssl rand -base64 32`)",
                        bytes.len()
                    ),
                ));
                continue;
            }
            Err(_) => {
                errors.push(source.error(
                    Some(raw.secret.span()),
                    format!("tsig-key[{i}].secret"),
                    "the secret is not valid base64 (e.g. `openssl rand -base64 32`)",
                ));
                continue;
            }
        };
        keys.push(Key::new(name, algorithm, secret));
    }
    let raw_key_names: Vec<Name> = keys.iter().map(|k| k.name.clone()).collect();
    let known_key = |text: &str| -> Result<Name, String> {
        let name = key_name(text)?;
        if raw_key_names.contains(&name) {
            Ok(name)
        } else {
            Err(format!("no [[tsig-key]] is named {name}"))
        }
    };

    let mut rules = Vec::new();
    for (i, entry) in allow_transfer.unwrap_or_default().iter().enumerate() {
        let field = format!("access.allow-transfer[{i}]");
        let words: Vec<&str> = entry.get_ref().split_whitespace().collect();
        let (prefix_text, key_text) = match words.as_slice() {
            ["key", k] => (None, Some(*k)),
            [p] => (Some(*p), None),
            [p, "key", k] => (Some(*p), Some(*k)),
            _ => {
                errors.push(source.error(
                    Some(entry.span()),
                    field,
                    format!(
                        "{:?} is not `PREFIX`, `key NAME` or `PREFIX key NAME` (e.g. \"192.0.2.0/24 key xfr\")",
                        entry.get_ref()
                    ),
                ));
                continue;
            }
        };
        let Some(prefix) = report(
            errors,
            source,
            entry,
            &field,
            prefix_text.map(parse_prefix).transpose(),
        ) else {
            continue;
        };
        let Some(key) = report(
            errors,
            source,
            entry,
            &field,
            key_text.map(known_key).transpose(),
        ) else {
            continue;
        };
        rules.push(TransferRule { prefix, key });
    }

    let mut targets = Vec::new();
    for (i, entry) in notify.unwrap_or_default().iter().enumerate() {
        let field = format!("notify[{i}]");
        let words: Vec<&str> = entry.get_ref().split_whitespace().collect();
        let (addr_text, key_text) = match words.as_slice() {
            [a] => (*a, None),
            [a, "key", k] => (*a, Some(*k)),
            _ => {
                errors.push(source.error(
                    Some(entry.span()),
                    field,
                    format!(
                        "{:?} is not `ADDR[:PORT]` or `ADDR[:PORT] key NAME` (e.g. \"192.0.2.53\", \"[2001:db8::53]:5300 key xfr\")",
                        entry.get_ref()
                    ),
                ));
                continue;
            }
        };
        let Some(addr) = report(errors, source, entry, &field, parse_target(addr_text)) else {
            continue;
        };
        let Some(key) = report(
            errors,
            source,
            entry,
            &field,
            key_text.map(known_key).transpose(),
        ) else {
            continue;
        };
        if addr.ip().is_unspecified() || addr.port() == 0 {
            errors.push(source.error(
                Some(entry.span()),
                field,
                format!("{addr} cannot receive a NOTIFY; give the secondary's address"),
            ));
            continue;
        }
        targets.push(NotifyTarget { addr, key });
    }

    TransferSettings {
        keys,
        allow_transfer: rules,
        notify: targets,
    }
}

fn parse_prefix(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            format!(
                "{text:?} is not an address or prefix (e.g. 192.0.2.53, 10.0.0.0/8, 2001:db8::/32)"
            )
        })
}

/// `ADDR`, `ADDR:PORT` or `[V6]:PORT`; port 53 when none is given.
fn parse_target(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("{text:?} is not ADDR or ADDR:PORT (e.g. 192.0.2.53:53, [2001:db8::53]:53)")
        })
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use std::path::Path;

    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="; // 32 octets

    fn parse(text: &str) -> Result<Settings, crate::diag::SourceErrors> {
        Settings::parse(Path::new("s.toml"), text)
    }

    #[test]
    fn defaults_allow_nobody_and_notify_nobody() {
        let s = parse("").unwrap();
        assert_eq!(s.transfer, TransferSettings::default());
        assert_eq!(
            s.transfer.decide("127.0.0.1".parse().unwrap(), None),
            Decision::Deny
        );
    }

    #[test]
    fn keys_rules_and_targets() {
        let text = format!(
            "notify = [\"127.0.0.1:5300\", \"[::1]:5301 key Xfr\", \"192.0.2.1\"]\n\
             [access]\nallow-transfer = [\"127.0.0.1\", \"10.0.0.0/8 key xfr\", \"key xfr\"]\n\
             [[tsig-key]]\nname = \"xfr\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        );
        let s = parse(&text).unwrap();
        let t = &s.transfer;
        assert_eq!(t.keys.len(), 1);
        let xfr = Name::from_ascii("xfr.").unwrap();
        assert_eq!(t.notify[1].key.as_ref(), Some(&xfr));
        assert_eq!(t.notify[2].addr.port(), 53);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.decide(ip("127.0.0.1"), None), Decision::Allow);
        assert_eq!(t.decide(ip("::ffff:127.0.0.1"), None), Decision::Allow);
        assert_eq!(t.decide(ip("10.1.1.1"), None), Decision::NeedsKey);
        assert_eq!(t.decide(ip("10.1.1.1"), Some(&xfr)), Decision::Allow);
        // `key xfr` alone covers every address, so no address is simply denied here.
        assert_eq!(t.decide(ip("192.0.2.9"), None), Decision::NeedsKey);
        assert_eq!(t.decide(ip("192.0.2.9"), Some(&xfr)), Decision::Allow);
        // The secret stays out of Debug output.
        assert!(!format!("{s:?}").contains(SECRET));
    }

    #[test]
    fn mistakes_are_located_and_never_quote_the_secret() {
        let text = "notify = [\"nowhere\", \"127.0.0.1 key nokey\"]\n\
             [access]\nallow-transfer = [\"10.0.0.0/33\", \"key missing\", \"a b c d\"]\n\
             [[tsig-key]]\nname = \"k\"\nalgorithm = \"hmac-md5\"\nsecret = \"c2VjcmV0\"\n\
             [[tsig-key]]\nname = \"short\"\nsecret = \"c2VjcmV0\"\n\
             [[tsig-key]]\nname = \"bad\"\nsecret = \"not base64!!\"\n";
        let errors = parse(text).unwrap_err();
        let shown = errors.to_string();
        for (field, line) in [
            ("notify[0]", 1),
            ("notify[1]", 1),
            ("access.allow-transfer[0]", 3),
            ("access.allow-transfer[1]", 3),
            ("access.allow-transfer[2]", 3),
            ("tsig-key[0].algorithm", 6),
            ("tsig-key[1].secret", 10),
            ("tsig-key[2].secret", 13),
        ] {
            assert!(
                errors.0.iter().any(|e| e.field == field && e.line == line),
                "{field} at line {line} missing in:\n{shown}"
            );
        }
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("not base64!!"), "{shown}");
    }
}
