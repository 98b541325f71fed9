//! Server-wide settings: the zone apex, SOA and NS data, default TTL, and how the server listens.
//!
//! Settings live apart from the operator templates (DESIGN.md §4). Every key is optional; the
//! embedded defaults serve `lwm2m.org` on loopback so a new user needs no file at all. Names may
//! use the `{apex}` placeholder so that changing the apex alone gives a consistent zone.
//! Validation runs before anything is used and reports every mistake with file, line and field.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Source, SourceError, SourceErrors};

/// Largest EDNS UDP payload we advertise and honour by default (DNS flag day 2020 value).
pub const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1232;
pub const DEFAULT_PORT: u16 = 1053;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSettings {
    apex: Option<Spanned<String>>,
    default_ttl: Option<Spanned<u32>>,
    default_template: Option<bool>,
    soa: Option<RawSoa>,
    ns: Option<Vec<RawNs>>,
    server: Option<RawServer>,
    access: Option<RawAccess>,
    // Scale-out (checked in `transfer::settings`): secondaries to NOTIFY, TSIG keys.
    notify: Option<Vec<Spanned<String>>>,
    tsig_key: Option<Vec<crate::transfer::settings::RawTsigKey>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAccess {
    allow_query: Option<Vec<Spanned<String>>>,
    allow_transfer: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSoa {
    mname: Option<Spanned<String>>,
    rname: Option<Spanned<String>>,
    ttl: Option<Spanned<u32>>,
    refresh: Option<Spanned<u32>>,
    retry: Option<Spanned<u32>>,
    expire: Option<Spanned<u32>>,
    minimum: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNs {
    name: Spanned<String>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawServer {
    listen: Option<Vec<Spanned<String>>>,
    threads: Option<Spanned<usize>>,
    max_udp_payload: Option<Spanned<u16>>,
    tcp_idle_timeout: Option<Spanned<u64>>,
    tcp_max_connections: Option<Spanned<usize>>,
    metrics: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    nsid: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    cookies: Option<Spanned<String>>,
    cookie_secret: Option<Spanned<OneOrMore>>,
}

/// A setting that takes one string or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

/// The SOA fields of the zone (serial excepted: it is assigned at compile time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaSettings {
    pub mname: Name,
    pub rname: Name,
    pub ttl: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

/// A name server of the zone, with glue when it lies inside the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsHost {
    pub name: Name,
    pub addresses: Vec<IpAddr>,
}

/// Everything that shapes the zone's content; may change on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSettings {
    pub apex: Name,
    pub default_ttl: u32,
    pub soa: SoaSettings,
    pub ns: Vec<NsHost>,
    /// Whether the default template (if one is present in the zones directory) answers for
    /// networks without a file of their own.
    pub default_template: bool,
}

/// How the server listens; changing these needs a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub listen: Vec<SocketAddr>,
    /// Whether `listen` is the default (loopback, IPv4 and IPv6) rather than chosen: a default
    /// address the host cannot have (IPv6 switched off) is skipped with a warning, a chosen one
    /// stops start-up.
    pub listen_defaulted: bool,
    /// UDP worker threads per listen address; `None` means one per core.
    pub threads: Option<usize>,
    pub max_udp_payload: u16,
    pub tcp_idle_timeout: Duration,
    pub tcp_max_connections: usize,
    /// Where to serve the metrics endpoint (HTTP); `None`: not served.
    pub metrics: Option<SocketAddr>,
    pub identity: ServerIdentity,
    /// The user to serve as once the sockets are bound (`server::privileges`); `None`: stay.
    pub user: Option<String>,
    pub cookies: CookieSettings,
}

impl ServerSettings {
    /// These settings as a reload applies `loaded`: how the server names itself (identity,
    /// version, NSID) and its cookie settings are taken, so that a shared cookie secret rolls
    /// over without a restart (RFC 9018 §5); sockets, threads and limits stay as started.
    pub fn reloaded(&self, loaded: &ServerSettings) -> ServerSettings {
        ServerSettings {
            identity: loaded.identity.clone(),
            cookies: loaded.cookies.clone(),
            ..self.clone()
        }
    }
}

/// DNS cookies (RFC 7873, RFC 9018; answered by `wire::cookie`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    pub policy: CookiePolicy,
    /// The secret server cookies are minted with; `None`: a random one per process.
    pub secret: Option<[u8; 16]>,
    /// A secret still accepted, not minted with: the one being rolled away from.
    pub previous_secret: Option<[u8; 16]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookiePolicy {
    /// COOKIE options are ignored, as by a server without cookies.
    Off,
    /// Queries with a client cookie are answered with a server cookie (the default).
    Answer,
    /// As `Answer`, and a UDP query with a client cookie but no valid server cookie gets
    /// BADCOOKIE (and a server cookie) instead of its answer, so that it comes back with the
    /// cookie or over TCP. Queries without any cookie are answered as always.
    Require,
}

/// What the server tells clients about itself, so that an operator running several servers
/// can tell which one answered (`wire::identity` answers with it). Empty means "do not say".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerIdentity {
    /// Answers CHAOS TXT `id.server.` and `hostname.bind.` (RFC 4892); default: the host name.
    pub identity: Box<[u8]>,
    /// Answers CHAOS TXT `version.server.` and `version.bind.`; default: `bsf-dns <version>`.
    pub version: Box<[u8]>,
    /// The EDNS NSID option's payload (RFC 5001), sent to queries that ask for it; default:
    /// the identity.
    pub nsid: Box<[u8]>,
}

/// Who may do what; may change on reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSettings {
    /// Prefixes allowed to query; empty means everyone.
    pub allow_query: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub zone: ZoneSettings,
    pub server: ServerSettings,
    pub access: AccessSettings,
    /// Zone transfers and NOTIFY (`allow-transfer`, `[[tsig-key]]`, `notify`).
    pub transfer: crate::transfer::settings::TransferSettings,
}

impl Default for Settings {
    fn default() -> Self {
        // The embedded defaults are valid by construction; parsing an empty file applies them.
        match validate(
            RawSettings::default(),
            &Source::new(Path::new("<defaults>"), ""),
        ) {
            Ok(settings) => settings,
            Err(errors) => panic!("embedded default settings are invalid: {errors}"),
        }
    }
}

impl Settings {
    /// Reads and validates a settings file.
    pub fn load(path: &Path) -> Result<Settings, SourceErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SourceErrors(vec![SourceError {
                file: path.to_path_buf(),
                line: 0,
                field: String::new(),
                message: format!("cannot read settings: {e}"),
            }])
        })?;
        Settings::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Settings, SourceErrors> {
        let source = Source::new(path, text);
        let raw: RawSettings =
            toml::from_str(text).map_err(|e| SourceErrors(vec![source.from_toml(&e)]))?;
        validate(raw, &source)
    }
}

fn span<T>(value: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
    value.as_ref().map(Spanned::span)
}

/// Parses an absolute domain name, expanding `{apex}`.
pub fn parse_name(text: &str, apex: Option<&Name>) -> Result<Name, String> {
    let expanded = match apex {
        Some(apex) => text.replace("{apex}", apex.to_ascii().trim_end_matches('.')),
        None => text.to_string(),
    };
    if expanded.contains('{') {
        return Err(format!(
            "unknown placeholder in {expanded:?} (only {{apex}} is known here)"
        ));
    }
    let mut name = Name::from_ascii(&expanded)
        .map_err(|e| format!("{expanded:?} is not a valid domain name: {e}"))?;
    if name.is_root() || expanded.is_empty() {
        return Err(format!("{expanded:?} is not a usable domain name"));
    }
    name.set_fqdn(true);
    if name.len() > 255 {
        return Err(format!("{expanded:?} is longer than 255 octets"));
    }
    Ok(name.to_lowercase())
}

fn validate(raw: RawSettings, source: &Source<'_>) -> Result<Settings, SourceErrors> {
    let mut errors = Vec::new();
    let apex = match &raw.apex {
        Some(text) => match parse_name(text.get_ref(), None) {
            Ok(name) => name,
            Err(message) => {
                errors.push(source.error(span(&raw.apex), "apex", message));
                Name::from_ascii("lwm2m.org.").unwrap_or_default()
            }
        },
        None => Name::from_ascii("lwm2m.org.").unwrap_or_default(),
    };
    let mut name_field = |value: &Option<Spanned<String>>, field: &str, default: &str| {
        let text = value.as_ref().map_or(default, |v| v.get_ref().as_str());
        match parse_name(text, Some(&apex)) {
            Ok(name) => name,
            Err(message) => {
                errors.push(source.error(span(value), field, message));
                apex.clone()
            }
        }
    };
    let soa_raw = raw.soa.unwrap_or_default();
    let mname = name_field(&soa_raw.mname, "soa.mname", "ns1.{apex}");
    let rname = name_field(&soa_raw.rname, "soa.rname", "hostmaster.{apex}");

    let ttl_field =
        |value: &Option<Spanned<u32>>, field: &str, default: u32, errors: &mut Vec<SourceError>| {
            let v = value.as_ref().map_or(default, |v| *v.get_ref());
            // RFC 2181 §8: TTLs are 31-bit values.
            if v > i32::MAX as u32 {
                errors.push(source.error(
                    span(value),
                    field,
                    format!("{v} is above the largest TTL (2147483647)"),
                ));
            }
            v
        };
    let soa = SoaSettings {
        mname,
        rname,
        ttl: ttl_field(&soa_raw.ttl, "soa.ttl", 3600, &mut errors),
        refresh: ttl_field(&soa_raw.refresh, "soa.refresh", 3600, &mut errors),
        retry: ttl_field(&soa_raw.retry, "soa.retry", 600, &mut errors),
        expire: ttl_field(&soa_raw.expire, "soa.expire", 1_209_600, &mut errors),
        minimum: ttl_field(&soa_raw.minimum, "soa.minimum", 300, &mut errors),
    };
    let default_ttl = ttl_field(&raw.default_ttl, "default-ttl", 300, &mut errors);

    let ns = match raw.ns {
        None => vec![NsHost {
            name: parse_name("ns1.{apex}", Some(&apex)).unwrap_or_else(|_| apex.clone()),
            addresses: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ],
        }],
        Some(list) => {
            if list.is_empty() {
                errors.push(source.error(None, "ns", "at least one name server is needed"));
            }
            let mut hosts = Vec::new();
            for (i, raw_ns) in list.iter().enumerate() {
                let field = format!("ns[{i}].name");
                let name = match parse_name(raw_ns.name.get_ref(), Some(&apex)) {
                    Ok(name) => name,
                    Err(message) => {
                        errors.push(source.error(Some(raw_ns.name.span()), field, message));
                        continue;
                    }
                };
                let mut addresses = Vec::new();
                for (j, text) in raw_ns.addresses.iter().enumerate() {
                    match text.get_ref().parse::<IpAddr>() {
                        Ok(ip) => addresses.push(ip),
                        Err(_) => errors.push(source.error(
                            Some(text.span()),
                            format!("ns[{i}].addresses[{j}]"),
                            format!("{:?} is not an IPv4 or IPv6 address", text.get_ref()),
                        )),
                    }
                }
                let in_zone = apex.zone_of(&name);
                if in_zone && addresses.is_empty() {
                    errors.push(source.error(
                        Some(raw_ns.name.span()),
                        field.clone(),
                        format!(
                            "{name} is inside the zone, so it needs glue: give its `addresses`"
                        ),
                    ));
                } else if !in_zone && !addresses.is_empty() {
                    errors.push(source.error(
                        Some(raw_ns.name.span()),
                        format!("ns[{i}].addresses"),
                        format!("{name} is outside the zone {apex}; glue addresses are only for in-zone name servers"),
                    ));
                }
                if hosts.iter().any(|h: &NsHost| h.name == name) {
                    errors.push(source.error(
                        Some(raw_ns.name.span()),
                        field.clone(),
                        format!("{name} is listed twice"),
                    ));
                }
                hosts.push(NsHost { name, addresses });
            }
            hosts
        }
    };

    let server_raw = raw.server.unwrap_or_default();
    let listen = match &server_raw.listen {
        None => default_listen(),
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, text)| match parse_listen(text.get_ref()) {
                Ok(addr) => Some(addr),
                Err(message) => {
                    errors.push(source.error(
                        Some(text.span()),
                        format!("server.listen[{i}]"),
                        message,
                    ));
                    None
                }
            })
            .collect(),
    };
    let threads = server_raw.threads.as_ref().map(|t| *t.get_ref());
    if threads == Some(0) || threads.is_some_and(|t| t > 256) {
        errors.push(source.error(
            span(&server_raw.threads),
            "server.threads",
            "expected 1 to 256 (leave it out for one thread per core)",
        ));
    }
    let max_udp_payload = server_raw
        .max_udp_payload
        .as_ref()
        .map_or(DEFAULT_MAX_UDP_PAYLOAD, |v| *v.get_ref());
    if !(512..=4096).contains(&max_udp_payload) {
        errors.push(source.error(
            span(&server_raw.max_udp_payload),
            "server.max-udp-payload",
            format!("{max_udp_payload} is outside 512..=4096"),
        ));
    }
    let idle = server_raw
        .tcp_idle_timeout
        .as_ref()
        .map_or(10, |v| *v.get_ref());
    if !(1..=3600).contains(&idle) {
        errors.push(source.error(
            span(&server_raw.tcp_idle_timeout),
            "server.tcp-idle-timeout",
            "expected 1 to 3600 seconds",
        ));
    }
    let tcp_max_connections = server_raw
        .tcp_max_connections
        .as_ref()
        .map_or(1000, |v| *v.get_ref());
    if tcp_max_connections == 0 {
        errors.push(source.error(
            span(&server_raw.tcp_max_connections),
            "server.tcp-max-connections",
            "expected at least 1",
        ));
    }
    let metrics =
        server_raw
            .metrics
            .as_ref()
            .and_then(|text| match parse_metrics_address(text.get_ref()) {
                Ok(addr) => Some(addr),
                Err(message) => {
                    errors.push(source.error(Some(text.span()), "server.metrics", message));
                    None
                }
            });

    let identity = validate_identity(&server_raw, source, &mut errors);
    let user = server_raw.user.as_ref().and_then(|name| {
        if name.get_ref().is_empty() || name.get_ref().contains('\0') {
            errors.push(source.error(
                Some(name.span()),
                "server.user",
                "expected a user name (leave it out to stay the user that started the server)",
            ));
            None
        } else {
            Some(name.get_ref().clone())
        }
    });

    let cookies = validate_cookies(&server_raw, source, &mut errors);

    let access_raw = raw.access.unwrap_or_default();
    let allow_query = parse_prefixes(
        access_raw.allow_query.as_deref().unwrap_or_default(),
        "access.allow-query",
        source,
        &mut errors,
    );
    let transfer = crate::transfer::settings::validate(
        raw.tsig_key,
        access_raw.allow_transfer,
        raw.notify,
        source,
        &mut errors,
    );

    if !errors.is_empty() {
        return Err(SourceErrors(errors));
    }
    Ok(Settings {
        access: AccessSettings { allow_query },
        transfer,
        zone: ZoneSettings {
            apex,
            default_ttl,
            soa,
            ns,
            default_template: raw.default_template.unwrap_or(false),
        },
        server: ServerSettings {
            listen_defaulted: server_raw.listen.is_none(),
            listen,
            threads,
            max_udp_payload,
            tcp_idle_timeout: Duration::from_secs(idle),
            tcp_max_connections,
            metrics,
            identity,
            user,
            cookies,
        },
    })
}

/// `cookies` and `cookie-secret` under `[server]`.
fn validate_cookies(
    server_raw: &RawServer,
    source: &Source<'_>,
    errors: &mut Vec<SourceError>,
) -> CookieSettings {
    let policy = match server_raw.cookies.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("answer") => CookiePolicy::Answer,
        Some("off") => CookiePolicy::Off,
        Some("require") => CookiePolicy::Require,
        Some(other) => {
            errors.push(source.error(
                span(&server_raw.cookies),
                "server.cookies",
                format!("{other:?}: expected \"answer\", \"require\" or \"off\""),
            ));
            CookiePolicy::Answer
        }
    };
    let texts: Vec<&str> = match server_raw.cookie_secret.as_ref().map(Spanned::get_ref) {
        None => Vec::new(),
        Some(OneOrMore::One(text)) => vec![text],
        Some(OneOrMore::More(list)) => list.iter().map(String::as_str).collect(),
    };
    let mut secrets = Vec::new();
    let mut complain = |message: String| {
        errors.push(source.error(
            span(&server_raw.cookie_secret),
            "server.cookie-secret",
            message,
        ))
    };
    if server_raw.cookie_secret.is_some() && !(1..=2).contains(&texts.len()) {
        complain(format!(
            "{} secrets: give one, or two while rolling over (the first mints, both are accepted)",
            texts.len()
        ));
    }
    for text in texts {
        match parse_cookie_secret(text) {
            Ok(secret) => secrets.push(secret),
            Err(message) => complain(message),
        }
    }
    CookieSettings {
        policy,
        secret: secrets.first().copied(),
        previous_secret: secrets.get(1).copied(),
    }
}

/// A cookie secret: 16 bytes as 32 hex digits, with or without `0x` (Knot DNS writes it with,
/// Unbound without).
fn parse_cookie_secret(text: &str) -> Result<[u8; 16], String> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?}: expected 16 bytes as 32 hex digits (e.g. from `openssl rand -hex 16`)"
        ));
    }
    let mut secret = [0u8; 16];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| format!("{text:?}: {e}"))?;
    }
    Ok(secret)
}

/// The longest identity, version or NSID: one TXT character-string (RFC 1035 §3.3).
const IDENTITY_MAX: usize = 255;

/// `identity`, `version` and `nsid` under `[server]`, with their defaults (Knot DNS's: the
/// host name for identity and NSID, the software's version), each switched off by "".
fn validate_identity(
    server_raw: &RawServer,
    source: &Source<'_>,
    errors: &mut Vec<SourceError>,
) -> ServerIdentity {
    let mut text = |value: &Option<Spanned<String>>, field: &str, default: &dyn Fn() -> String| {
        let text = value.as_ref().map_or_else(default, |v| v.get_ref().clone());
        if text.len() > IDENTITY_MAX {
            errors.push(source.error(
                span(value),
                field,
                format!("{} bytes; at most {IDENTITY_MAX}", text.len()),
            ));
        }
        text
    };
    let identity = text(&server_raw.identity, "server.identity", &host_name);
    let version = text(&server_raw.version, "server.version", &|| {
        format!("bsf-dns {}", env!("CARGO_PKG_VERSION"))
    });
    let nsid = match &server_raw.nsid {
        None => identity.clone().into_bytes(),
        Some(value) => match parse_nsid(value.get_ref()) {
            Ok(bytes) => bytes,
            Err(message) => {
                errors.push(source.error(Some(value.span()), "server.nsid", message));
                Vec::new()
            }
        },
    };
    ServerIdentity {
        identity: identity.into_bytes().into(),
        version: version.into_bytes().into(),
        nsid: nsid.into(),
    }
}

/// An NSID setting: text, or hex digits after `0x` for a binary identifier (as Knot DNS
/// takes it).
fn parse_nsid(text: &str) -> Result<Vec<u8>, String> {
    let bytes = match text.strip_prefix("0x") {
        None => text.as_bytes().to_vec(),
        Some(hex) => {
            if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "{text:?}: after 0x, hex digits in pairs (leave out 0x for a text NSID)"
                ));
            }
            (0..hex.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&hex[at..at + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| format!("{text:?}: {e}"))?
        }
    };
    if bytes.len() > IDENTITY_MAX {
        return Err(format!("{} bytes; at most {IDENTITY_MAX}", bytes.len()));
    }
    Ok(bytes)
}

/// The host name (`gethostname`; no look-up of a fully qualified name, which could send a
/// query out); empty when it cannot be read.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what we pass.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return String::new();
    }
    let len = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}

/// The metrics endpoint's address: ADDR:PORT, port given (no port is customary for HTTP
/// metrics the way 53 is for DNS).
pub fn parse_metrics_address(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .map_err(|_| format!("{text:?} is not ADDR:PORT (e.g. 127.0.0.1:9153 or [::1]:9153)"))
}

/// Address prefixes (`10.0.0.0/8`) or single addresses (`192.0.2.1`).
fn parse_prefixes(
    list: &[Spanned<String>],
    field: &str,
    source: &Source<'_>,
    errors: &mut Vec<SourceError>,
) -> Vec<IpNet> {
    let mut prefixes = Vec::new();
    for (i, text) in list.iter().enumerate() {
        let value = text.get_ref();
        let parsed = value
            .parse::<IpNet>()
            .or_else(|_| value.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => prefixes.push(net.trunc()),
            Err(_) => errors.push(source.error(
                Some(text.span()),
                format!("{field}[{i}]"),
                format!("{value:?} is not an address or prefix (e.g. 10.0.0.0/8, 2001:db8::/32)"),
            )),
        }
    }
    prefixes
}

/// `127.0.0.1:1053` and `[::1]:1053`: no root needed, and not 5353 (mDNS responders hold it).
pub fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, DEFAULT_PORT)),
    ]
}

/// `ADDR:PORT`, `[V6]:PORT`, or a bare address (port 53).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "{text:?} is not ADDR:PORT (e.g. 0.0.0.0:53 or [::]:53)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let s = Settings::default();
        assert_eq!(s.zone.apex.to_ascii(), "lwm2m.org.");
        assert_eq!(s.zone.soa.mname.to_ascii(), "ns1.lwm2m.org.");
        assert_eq!(s.zone.soa.rname.to_ascii(), "hostmaster.lwm2m.org.");
        assert_eq!(s.zone.ns.len(), 1);
        assert_eq!(s.server.listen, default_listen());
        assert!(s.server.listen_defaulted);
        let chosen = "[server]\nlisten = [\"127.0.0.1:1053\", \"[::1]:1053\"]\n";
        let chosen = Settings::parse(Path::new("s.toml"), chosen).unwrap().server;
        assert_eq!(chosen.listen, default_listen());
        assert!(
            !chosen.listen_defaulted,
            "written out, the same addresses are chosen"
        );
        assert_eq!(s.server.max_udp_payload, 1232);
        assert!(!s.zone.default_template);
    }

    #[test]
    fn apex_placeholder_follows_apex() {
        let s = Settings::parse(Path::new("s.toml"), "apex = \"IoT.Example.NET\"\n").unwrap();
        assert_eq!(s.zone.apex.to_ascii(), "iot.example.net.");
        assert_eq!(s.zone.soa.mname.to_ascii(), "ns1.iot.example.net.");
        assert_eq!(s.zone.ns[0].name.to_ascii(), "ns1.iot.example.net.");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "apex = \"lwm2m.org\"\n[server]\nmax-udp-payload = 100\n";
        let errors = Settings::parse(Path::new("s.toml"), text).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        let e = &errors.0[0];
        assert_eq!((e.line, e.field.as_str()), (3, "server.max-udp-payload"));

        let errors =
            Settings::parse(Path::new("s.toml"), "apex = \"lwm2m.org\"\nbogus = 1\n").unwrap_err();
        assert_eq!(errors.0[0].line, 2);
        assert!(errors.0[0].message.contains("unknown field"), "{errors}");

        let text = "[[ns]]\nname = \"ns.{apex}\"\n";
        let errors = Settings::parse(Path::new("s.toml"), text).unwrap_err();
        assert!(errors.0[0].message.contains("needs glue"), "{errors}");

        let text = "[[ns]]\nname = \"ns.other.net\"\naddresses = [\"192.0.2.1\"]\n";
        let errors = Settings::parse(Path::new("s.toml"), text).unwrap_err();
        assert!(errors.0[0].message.contains("outside the zone"), "{errors}");
    }

    #[test]
    fn the_metrics_address_needs_a_port_and_is_off_by_default() {
        assert_eq!(Settings::default().server.metrics, None);
        let text = "[server]\nmetrics = \"[::1]:9153\"\n";
        let s = Settings::parse(Path::new("s.toml"), text).unwrap();
        assert_eq!(s.server.metrics, Some("[::1]:9153".parse().unwrap()));
        for bad in ["127.0.0.1", "localhost:9153", "9153"] {
            let text = format!("apex = \"lwm2m.org\"\n[server]\nmetrics = \"{bad}\"\n");
            let errors = Settings::parse(Path::new("s.toml"), &text).unwrap_err();
            let e = &errors.0[0];
            assert_eq!((e.line, e.field.as_str()), (3, "server.metrics"), "{bad}");
            assert!(e.message.contains("is not ADDR:PORT"), "{errors}");
        }
    }

    #[test]
    fn identity_version_and_nsid() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let host = host.trim_end().as_bytes();
        let s = Settings::default().server.identity;
        assert_eq!(&*s.identity, host, "identity defaults to the host name");
        assert_eq!(&*s.nsid, host, "NSID defaults to the identity");
        assert_eq!(
            &*s.version,
            format!("bsf-dns {}", env!("CARGO_PKG_VERSION")).as_bytes()
        );

        let text = "[server]\nidentity = \"ns-a\"\nversion = \"\"\n";
        let s = Settings::parse(Path::new("s.toml"), text)
            .unwrap()
            .server
            .identity;
        assert_eq!(
            (&*s.identity, &*s.version, &*s.nsid),
            (&b"ns-a"[..], &b""[..], &b"ns-a"[..])
        );
        let text = "[server]\nidentity = \"ns-a\"\nnsid = \"0x00fF10\"\n";
        let s = Settings::parse(Path::new("s.toml"), text)
            .unwrap()
            .server
            .identity;
        assert_eq!(&*s.nsid, [0x00, 0xff, 0x10]);
        let text = "[server]\nnsid = \"\"\n";
        let s = Settings::parse(Path::new("s.toml"), text)
            .unwrap()
            .server
            .identity;
        assert!(s.nsid.is_empty() && &*s.identity == host);

        let long = "x".repeat(256);
        for (line, field, text) in [
            (
                2,
                "server.identity",
                format!("[server]\nidentity = \"{long}\"\n"),
            ),
            (
                3,
                "server.version",
                format!("[server]\n\nversion = \"{long}\"\n"),
            ),
            (2, "server.nsid", format!("[server]\nnsid = \"{long}\"\n")),
            (2, "server.nsid", "[server]\nnsid = \"0x123\"\n".into()),
            (2, "server.nsid", "[server]\nnsid = \"0xzz\"\n".into()),
            (2, "server.nsid", "[server]\nnsid = \"0x\"\n".into()),
        ] {
            let errors = Settings::parse(Path::new("s.toml"), &text).unwrap_err();
            assert_eq!(errors.0.len(), 1, "{errors}");
            let e = &errors.0[0];
            assert_eq!((e.line, e.field.as_str()), (line, field), "{errors}");
        }
        // 255 bytes (one TXT string) is the most.
        let text = format!("[server]\nidentity = \"{}\"\n", "x".repeat(255));
        assert!(Settings::parse(Path::new("s.toml"), &text).is_ok());
    }

    #[test]
    fn cookie_policy_and_secrets() {
        let c = Settings::default().server.cookies;
        assert_eq!(
            (c.policy, c.secret, c.previous_secret),
            (CookiePolicy::Answer, None, None)
        );
        let key = "e5e973e5a6b2a43f48e7dc849e37bfcf";
        let text = format!("[server]\ncookies = \"require\"\ncookie-secret = \"0x{key}\"\n");
        let c = Settings::parse(Path::new("s.toml"), &text)
            .unwrap()
            .server
            .cookies;
        assert_eq!(c.policy, CookiePolicy::Require);
        assert_eq!(c.secret.unwrap()[..3], [0xe5, 0xe9, 0x73]);
        assert_eq!(c.previous_secret, None);
        let old = "dd3bdf9344b678b185a6f5cb60fca715";
        let text = format!("[server]\ncookie-secret = [\"{key}\", \"0x{old}\"]\n");
        let c = Settings::parse(Path::new("s.toml"), &text)
            .unwrap()
            .server
            .cookies;
        assert_eq!(c.secret.unwrap()[15], 0xcf);
        assert_eq!(c.previous_secret.unwrap()[..2], [0xdd, 0x3b]);
        let off = Settings::parse(Path::new("s.toml"), "[server]\ncookies = \"off\"\n").unwrap();
        assert_eq!(off.server.cookies.policy, CookiePolicy::Off);

        for (line, field, text) in [
            (
                2,
                "server.cookies",
                "[server]\ncookies = \"yes\"\n".to_string(),
            ),
            (
                3,
                "server.cookie-secret",
                format!("[server]\n\ncookie-secret = \"{}\"\n", &key[2..]),
            ),
            (
                2,
                "server.cookie-secret",
                "[server]\ncookie-secret = \"0xzz\"\n".into(),
            ),
            (
                2,
                "server.cookie-secret",
                "[server]\ncookie-secret = []\n".into(),
            ),
            (
                2,
                "server.cookie-secret",
                format!("[server]\ncookie-secret = [\"{key}\", \"{key}\", \"{key}\"]\n"),
            ),
        ] {
            let errors = Settings::parse(Path::new("s.toml"), &text).unwrap_err();
            assert_eq!(errors.0.len(), 1, "{errors}");
            let e = &errors.0[0];
            assert_eq!((e.line, e.field.as_str()), (line, field), "{errors}");
        }
    }

    #[test]
    fn a_reload_takes_identity_and_cookies_and_keeps_the_rest() {
        let running = Settings::default().server;
        let text = "[server]\nlisten = [\"127.0.0.1:5300\"]\nthreads = 3\nidentity = \"ns-b\"\ncookies = \"off\"\n";
        let loaded = Settings::parse(Path::new("s.toml"), text).unwrap().server;
        let applied = running.reloaded(&loaded);
        assert_eq!(&*applied.identity.identity, b"ns-b");
        assert_eq!(applied.cookies.policy, CookiePolicy::Off);
        assert_eq!(
            (&applied.listen, applied.threads),
            (&running.listen, running.threads)
        );
        assert_ne!(applied, loaded, "what needs a restart still differs");
        assert_eq!(running.reloaded(&running), running);
    }

    #[test]
    fn the_user_to_serve_as() {
        assert_eq!(Settings::default().server.user, None);
        let text = "[server]\nuser = \"bsf-dns\"\n";
        let s = Settings::parse(Path::new("s.toml"), text).unwrap();
        assert_eq!(s.server.user.as_deref(), Some("bsf-dns"));
        let errors = Settings::parse(Path::new("s.toml"), "[server]\nuser = \"\"\n").unwrap_err();
        let e = &errors.0[0];
        assert_eq!((e.line, e.field.as_str()), (2, "server.user"), "{errors}");
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            parse_listen("0.0.0.0:53").unwrap(),
            "0.0.0.0:53".parse().unwrap()
        );
        assert_eq!(parse_listen("[::1]:1053").unwrap().port(), 1053);
        assert_eq!(parse_listen("::").unwrap().port(), 53);
        assert!(parse_listen("localhost:53").is_err());
    }
}
