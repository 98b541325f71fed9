//! DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018).
//!
//! A client (dig does, and BIND's resolver by its documented default) puts an 8-byte client
//! cookie into its queries; the server answers with that client cookie and a server cookie of its own, which
//! the client sends back from then on. A response that does not echo the client cookie is
//! forged, so resolvers gain protection against off-path spoofing; a query that brings back a
//! valid server cookie comes from an address that has talked to the server before, so the
//! server can refuse to answer spoofed sources with more than a small BADCOOKIE (the
//! `require` policy).
//!
//! Server cookies follow RFC 9018 exactly — version 1, three reserved zero bytes, a 32-bit
//! timestamp, and SipHash-2-4 over client cookie, those eight bytes and the client's address
//! under a 16-byte secret — so that several servers behind one address (anycast, or bsf-dns
//! beside another RFC 9018 implementation: tested against Knot DNS) accept each other's cookies
//! when they share the secret.
//! Without a configured secret, each process draws a random one at start (kept across
//! reloads): cookies then stay valid for the process's life. A second, previous secret is
//! accepted but never used to mint, for rolling a shared secret over (RFC 9018 §5).
//!
//! Every response to a query with a client cookie gets a freshly minted server cookie (as Knot
//! DNS does: its timestamps move query by query); validation decides only what `require` refuses and how a cookie-only
//! query (no question, RFC 7873 §5.4) is answered, so it is done only for those: with the
//! default policy a query with a cookie costs one SipHash.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::OnceLock;

use rand::RngCore;
use siphasher::sip::SipHasher24;

use crate::config::{CookiePolicy, CookieSettings};

/// EDNS option code of COOKIE (RFC 7873 §4).
pub const OPTION_COOKIE: u16 = 10;
pub const CLIENT_LEN: usize = 8;
/// Length of the server cookies we mint (RFC 9018 §4).
pub const SERVER_LEN: usize = 16;
/// Server cookies others may have minted: 8 to 32 bytes (RFC 7873 §4.2).
pub const SERVER_LEN_RANGE: std::ops::RangeInclusive<usize> = 8..=32;
/// Bytes our COOKIE option adds to an OPT record: code, length, client and server cookie.
pub const OPTION_LEN: usize = 4 + CLIENT_LEN + SERVER_LEN;
/// The COOKIE option's data in a response: the client cookie, then ours.
pub type ReplyCookie = [u8; CLIENT_LEN + SERVER_LEN];

pub type Secret = [u8; 16];

const VERSION: u8 = 1;
/// RFC 9018 §4.3: a server cookie is valid up to an hour after its timestamp, and up to five
/// minutes before it (clocks of servers sharing an address differ).
const LIFETIME_SECONDS: u32 = 3600;
const CLOCK_SKEW_SECONDS: u32 = 300;

/// What the responder needs of the cookie settings: `None` in a snapshot when cookies are
/// switched off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookies {
    /// Queries over UDP without a valid server cookie get BADCOOKIE instead of an answer.
    pub require: bool,
    /// Mints and validates.
    pub secret: Secret,
    /// Validates only: the secret being rolled away from.
    pub previous: Option<Secret>,
}

impl Cookies {
    /// The responder's view of the settings; `None` when cookies are off. Without a
    /// configured secret, the process's own random one.
    pub fn from_settings(settings: &CookieSettings) -> Option<Cookies> {
        if settings.policy == CookiePolicy::Off {
            return None;
        }
        Some(Cookies {
            require: settings.policy == CookiePolicy::Require,
            secret: settings.secret.unwrap_or_else(process_secret),
            previous: settings.previous_secret,
        })
    }

    /// Whether `server`, the server cookie a client sent back (empty: none), is one we (or a
    /// server sharing a secret) minted for this client cookie and address within its
    /// lifetime. `now`: seconds since 1970, modulo 2³² as the timestamp field has it.
    pub fn accepts(&self, client: &[u8; CLIENT_LEN], server: &[u8], ip: IpAddr, now: u32) -> bool {
        [Some(&self.secret), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .any(|secret| is_ours(secret, client, server, ip, now))
    }

    /// The COOKIE option to answer with: the client cookie and a server cookie minted now.
    pub fn reply(&self, client: &[u8; CLIENT_LEN], ip: IpAddr, now: u32) -> ReplyCookie {
        let mut reply = [0u8; CLIENT_LEN + SERVER_LEN];
        reply[..CLIENT_LEN].copy_from_slice(client);
        reply[CLIENT_LEN..].copy_from_slice(&mint(&self.secret, client, ip, now));
        reply
    }
}

/// A server cookie (RFC 9018 §4.2): version, reserved, timestamp, hash.
pub fn mint(secret: &Secret, client: &[u8; CLIENT_LEN], ip: IpAddr, now: u32) -> [u8; SERVER_LEN] {
    let [t0, t1, t2, t3] = now.to_be_bytes();
    let head = [VERSION, 0, 0, 0, t0, t1, t2, t3];
    let mut cookie = [0u8; SERVER_LEN];
    cookie[..8].copy_from_slice(&head);
    cookie[8..].copy_from_slice(&hash(secret, client, &head, ip));
    cookie
}

/// Whether `server` is a version-1 cookie minted under `secret` for this client cookie and
/// address, and within its lifetime at `now`. The hash covers the eight bytes before it as
/// received, reserved bytes included (RFC 9018 §4.3).
fn is_ours(
    secret: &Secret,
    client: &[u8; CLIENT_LEN],
    server: &[u8],
    ip: IpAddr,
    now: u32,
) -> bool {
    let Some((head, mac)) = server
        .split_first_chunk::<8>()
        .filter(|(head, mac)| head[0] == VERSION && mac.len() == 8)
    else {
        return false;
    };
    let timestamp = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    within_lifetime(timestamp, now) && hash(secret, client, head, ip) == mac
}

/// RFC 9018 §4.3, in serial number arithmetic (the timestamp wraps in 2106).
fn within_lifetime(timestamp: u32, now: u32) -> bool {
    let age = now.wrapping_sub(timestamp);
    age <= LIFETIME_SECONDS || timestamp.wrapping_sub(now) <= CLOCK_SKEW_SECONDS
}

fn hash(secret: &Secret, client: &[u8; CLIENT_LEN], head: &[u8; 8], ip: IpAddr) -> [u8; 8] {
    let mut hasher = SipHasher24::new_with_key(secret);
    hasher.write(client);
    hasher.write(head);
    match ip {
        IpAddr::V4(v4) => hasher.write(&v4.octets()),
        IpAddr::V6(v6) => hasher.write(&v6.octets()),
    }
    // SipHash's reference code writes its 64-bit result least significant byte first, and so
    // do RFC 9018's examples (the tests below).
    hasher.finish().to_le_bytes()
}

/// The process's random secret, drawn once from the operating system (`getrandom`).
fn process_secret() -> Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    *SECRET.get_or_init(|| {
        let mut secret = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        secret
    })
}

/// The current time as a cookie timestamp.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Appends our COOKIE option (code, length, data); the caller has counted it in RDLENGTH.
pub fn write_option(out: &mut Vec<u8>, reply: &ReplyCookie) {
    let [c0, c1] = OPTION_COOKIE.to_be_bytes();
    let [l0, l1] = (reply.len() as u16).to_be_bytes();
    out.extend_from_slice(&[c0, c1, l0, l1]);
    out.extend_from_slice(reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    fn secret(text: &str) -> Secret {
        hex(text).try_into().unwrap()
    }

    fn client(text: &str) -> [u8; CLIENT_LEN] {
        hex(text).try_into().unwrap()
    }

    /// RFC 9018 Appendix A: every example's server cookie, minted byte for byte.
    #[test]
    fn the_rfc_examples_are_minted_exactly() {
        let cases = [
            // A.1: learning a new server cookie.
            (
                "e5e973e5a6b2a43f48e7dc849e37bfcf",
                "2464c4abcf10c957",
                "198.51.100.100",
                1559731985,
                "010000005cf79f111f8130c3eee29480",
            ),
            // A.2: the same client, 40 minutes later.
            (
                "e5e973e5a6b2a43f48e7dc849e37bfcf",
                "2464c4abcf10c957",
                "198.51.100.100",
                1559734385,
                "010000005cf7a871d4a564a1442aca77",
            ),
            // A.3: another client, with a cookie from another server of the set.
            (
                "e5e973e5a6b2a43f48e7dc849e37bfcf",
                "fc93fc62807ddb86",
                "203.0.113.203",
                1559734700,
                "010000005cf7a9acf73a7810aca2381e",
            ),
            // A.4: an IPv6 client, after the secret rolled over.
            (
                "445536bcd2513298075a5d379663c962",
                "22681ab97d52c298",
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                1559741961,
                "010000005cf7c609a6bb79d16625507a",
            ),
        ];
        for (key, client_cookie, ip, at, want) in cases {
            let got = mint(
                &secret(key),
                &client(client_cookie),
                ip.parse().unwrap(),
                at,
            );
            assert_eq!(got.to_vec(), hex(want), "{client_cookie} from {ip} at {at}");
        }
    }

    /// The cookies the examples have clients send back: valid (reserved bytes set by another
    /// implementation included in the hash), or not ours.
    #[test]
    fn the_rfc_examples_cookies_are_judged() {
        let a3 = hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let a4 = hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let old = secret("dd3bdf9344b678b185a6f5cb60fca715");
        let new = secret("445536bcd2513298075a5d379663c962");
        let key = secret("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let ip3 = "203.0.113.203".parse().unwrap();
        let ip4 = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let (c3, s3) = a3.split_at(CLIENT_LEN);
        let (c4, s4) = a4.split_at(CLIENT_LEN);
        let (c3, c4): ([u8; 8], [u8; 8]) = (c3.try_into().unwrap(), c4.try_into().unwrap());
        // A.3's cookie was minted 1h52m before the example's query: its hash (over reserved
        // bytes another implementation set) is right, and it is too old by then.
        let minted = 1559727985;
        assert!(is_ours(&key, &c3, s3, ip3, minted + 60));
        assert!(!is_ours(&key, &c3, s3, ip3, 1559734700));
        assert!(!is_ours(
            &key,
            &c3,
            s3,
            "203.0.113.204".parse().unwrap(),
            minted + 60
        ));
        assert!(is_ours(&old, &c4, s4, ip4, 1559741961));
        assert!(!is_ours(&new, &c4, s4, ip4, 1559741961));
        // After the roll-over, a server minting with the new secret still takes the old one's.
        let rolled = Cookies {
            require: false,
            secret: new,
            previous: Some(old),
        };
        assert!(rolled.accepts(&c4, s4, ip4, 1559741961));
        assert_eq!(
            rolled.reply(&c4, ip4, 1559741961).to_vec(),
            hex("22681ab97d52c298010000005cf7c609a6bb79d16625507a")
        );
        let only_new = Cookies {
            previous: None,
            ..rolled
        };
        assert!(!only_new.accepts(&c4, s4, ip4, 1559741961));
    }

    #[test]
    fn judged_by_age_version_and_length() {
        let key = secret("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let c = client("2464c4abcf10c957");
        let ip = "192.0.2.1".parse().unwrap();
        let at = 1_000_000u32;
        let cookie = mint(&key, &c, ip, at);
        for (now, valid) in [
            (at, true),
            (at + 3600, true),
            (at + 3601, false),
            (at - 300, true),
            (at - 301, false),
        ] {
            assert_eq!(is_ours(&key, &c, &cookie, ip, now), valid, "at {now}");
        }
        // Across the wrap of the 32-bit timestamp.
        let late = u32::MAX - 100;
        let wrapped = mint(&key, &c, ip, late);
        assert!(is_ours(&key, &c, &wrapped, ip, 1000));
        assert!(!is_ours(&key, &c, &wrapped, ip, 4000));
        let mut other_version = cookie;
        other_version[0] = 2;
        assert!(!is_ours(&key, &c, &other_version, ip, at));
        assert!(!is_ours(&key, &c, &cookie[..15], ip, at));
        assert!(!is_ours(&key, &c, &[], ip, at));
    }

    #[test]
    fn settings_decide_policy_and_secret() {
        let off = CookieSettings {
            policy: CookiePolicy::Off,
            secret: None,
            previous_secret: None,
        };
        assert_eq!(Cookies::from_settings(&off), None);
        let answer = CookieSettings {
            policy: CookiePolicy::Answer,
            ..off.clone()
        };
        let a = Cookies::from_settings(&answer).unwrap();
        let b = Cookies::from_settings(&answer).unwrap();
        assert!(!a.require);
        assert_eq!(
            a.secret, b.secret,
            "one random secret for the process's life"
        );
        assert_ne!(a.secret, [0; 16]);
        let configured = CookieSettings {
            policy: CookiePolicy::Require,
            secret: Some([7; 16]),
            previous_secret: Some([8; 16]),
        };
        let c = Cookies::from_settings(&configured).unwrap();
        assert!(c.require);
        assert_eq!((c.secret, c.previous), ([7; 16], Some([8; 16])));
    }
}
