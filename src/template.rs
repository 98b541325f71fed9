//! Operator templates: the `zones/*.toml` files, their validation, and their instantiation.
//!
//! A template says, for one operator (one MCC and one or more MNCs), which addresses and which
//! LwM2M bootstrap URIs its devices are given. One file may instead be the *default* template,
//! with `{mcc}`/`{mnc}` placeholders, for networks without a file of their own (served only when
//! the settings enable it). Every file is checked completely before anything is used; each
//! mistake names the file, the line and the field, and says what was expected.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hickory_proto::rr::Name;
use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Source, SourceError, SourceErrors};
use crate::plmn::{Mcc, Mnc, Plmn};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    #[serde(default)]
    default: Option<Spanned<bool>>,
    mcc: Option<Spanned<String>>,
    mnc: Option<Spanned<Vec<Spanned<String>>>>,
    ttl: Option<Spanned<u32>>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    #[serde(default)]
    bootstrap: Vec<RawBootstrap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBootstrap {
    uri: Spanned<String>,
    priority: Option<Spanned<u16>>,
    weight: Option<Spanned<u16>>,
}

/// The four LwM2M transports a bootstrap URI may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Coap,
    Coaps,
    CoapTcp,
    CoapsTcp,
}

impl Scheme {
    pub const ALL: [Scheme; 4] = [
        Scheme::Coaps,
        Scheme::CoapsTcp,
        Scheme::Coap,
        Scheme::CoapTcp,
    ];

    pub fn parse(text: &str) -> Option<Scheme> {
        match text.to_ascii_lowercase().as_str() {
            "coap" => Some(Scheme::Coap),
            "coaps" => Some(Scheme::Coaps),
            "coap+tcp" => Some(Scheme::CoapTcp),
            "coaps+tcp" => Some(Scheme::CoapsTcp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Coap => "coap",
            Scheme::Coaps => "coaps",
            Scheme::CoapTcp => "coap+tcp",
            Scheme::CoapsTcp => "coaps+tcp",
        }
    }

    /// RFC 7252 / RFC 8323 default ports.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Coap | Scheme::CoapTcp => 5683,
            Scheme::Coaps | Scheme::CoapsTcp => 5684,
        }
    }

    /// The two labels of the SRV/URI owner name (RFC 2782 `_Service._Proto`).
    pub fn service_labels(self) -> (&'static str, &'static str) {
        match self {
            Scheme::Coap => ("_coap", "_udp"),
            Scheme::Coaps => ("_coaps", "_udp"),
            Scheme::CoapTcp => ("_coap", "_tcp"),
            Scheme::CoapsTcp => ("_coaps", "_tcp"),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a bootstrap server is: a host name (usable as SRV target) or an address literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(Name),
    Ip(IpAddr),
}

/// A bootstrap URI taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapUri {
    pub scheme: Scheme,
    pub host: Host,
    /// The port written in the URI, or the scheme's default.
    pub port: u16,
    /// The URI as written in the template (placeholders filled in).
    pub text: String,
}

/// Parses `scheme://host[:port][/path][?query]`. Hand-written rather than a general URL parser:
/// the accepted forms are few, and each rejection should say precisely what is wrong.
pub fn parse_bootstrap_uri(text: &str) -> Result<BootstrapUri, String> {
    if text.is_empty() {
        return Err("the URI is empty".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == '"' || *c == '\\')
    {
        return Err(format!(
            "{text:?} contains {c:?}; a URI is printable ASCII without spaces, quotes or backslashes"
        ));
    }
    let (scheme_text, rest) = text.split_once("://").ok_or_else(|| {
        format!("{text:?} has no scheme; expected e.g. coaps://bs.example.net:5684")
    })?;
    let scheme = Scheme::parse(scheme_text).ok_or_else(|| {
        format!("scheme {scheme_text:?} is not one of coap, coaps, coap+tcp, coaps+tcp")
    })?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return Err(format!(
            "{text:?} carries user information; bootstrap URIs must not contain credentials"
        ));
    }
    let (host_text, port_text) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: unclosed '[' in the host"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{text:?}: expected ':port' after ']'"))?,
            ),
        };
        let ip: std::net::Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        (HostText::Ip(IpAddr::V6(ip)), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (HostText::Text(h), Some(p)),
            None => (HostText::Text(authority), None),
        }
    };
    let port = match port_text {
        None => scheme.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
    };
    let host = match host_text {
        HostText::Ip(ip) => Host::Ip(ip),
        HostText::Text("") => return Err(format!("{text:?} has no host")),
        HostText::Text(h) => match h.parse::<std::net::Ipv4Addr>() {
            Ok(v4) => Host::Ip(IpAddr::V4(v4)),
            Err(_) => Host::Name(parse_host_name(h)?),
        },
    };
    Ok(BootstrapUri {
        scheme,
        host,
        port,
        text: text.to_string(),
    })
}

enum HostText<'a> {
    Ip(IpAddr),
    Text(&'a str),
}

/// A host name as RFC 1123 allows it (letters, digits, hyphens; no leading or trailing hyphen).
fn parse_host_name(text: &str) -> Result<Name, String> {
    let trimmed = text.trim_end_matches('.');
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if trimmed.is_empty() || !trimmed.split('.').all(valid_label) {
        return Err(format!(
            "{text:?} is not a valid host name (letters, digits and hyphens in dot-separated labels)"
        ));
    }
    let mut name =
        Name::from_ascii(trimmed).map_err(|e| format!("{text:?} is not a valid host name: {e}"))?;
    name.set_fqdn(true);
    if name.len() > 255 {
        return Err(format!("{text:?} is longer than 255 octets"));
    }
    Ok(name.to_lowercase())
}

/// One `[[bootstrap]]` entry as written (the URI may still hold placeholders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapEntry {
    pub uri: String,
    pub priority: u16,
    pub weight: u16,
}

/// Which networks a template is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// The listed networks.
    Networks(Vec<Plmn>),
    /// Every network without a file of its own.
    Default,
}

/// A validated template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub file: PathBuf,
    pub coverage: Coverage,
    pub ttl: Option<u32>,
    pub addresses: Vec<IpAddr>,
    pub bootstrap: Vec<BootstrapEntry>,
}

/// A template made concrete for one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub plmn: Plmn,
    pub ttl: u32,
    pub addresses: Vec<IpAddr>,
    pub bootstrap: Vec<(BootstrapUri, BootstrapEntry)>,
}

fn fill_placeholders(text: &str, plmn: &Plmn) -> String {
    text.replace("{mcc}", plmn.mcc.as_str())
        .replace("{mnc}", plmn.mnc.as_str())
}

impl Template {
    /// The networks the template lists (none for the default template).
    pub fn networks(&self) -> &[Plmn] {
        match &self.coverage {
            Coverage::Networks(list) => list,
            Coverage::Default => &[],
        }
    }

    /// Makes the template concrete for one network. Cannot fail for a validated template: the
    /// placeholders only ever expand to digits, which keep a valid URI valid.
    pub fn instantiate(&self, plmn: Plmn, default_ttl: u32) -> Option<Operator> {
        let bootstrap = self
            .bootstrap
            .iter()
            .map(|entry| {
                let text = fill_placeholders(&entry.uri, &plmn);
                parse_bootstrap_uri(&text)
                    .ok()
                    .map(|uri| (uri, entry.clone()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Operator {
            plmn,
            ttl: self.ttl.unwrap_or(default_ttl),
            addresses: self.addresses.clone(),
            bootstrap,
        })
    }

    /// Parses and validates one template file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Template, SourceErrors> {
        let source = Source::new(path, text);
        let raw: RawTemplate =
            toml::from_str(text).map_err(|e| SourceErrors(vec![source.from_toml(&e)]))?;
        let mut errors = Vec::new();
        let is_default = raw.default.as_ref().is_some_and(|d| *d.get_ref());

        let coverage = if is_default {
            for (present, span, field) in [
                (
                    raw.mcc.is_some(),
                    raw.mcc.as_ref().map(Spanned::span),
                    "mcc",
                ),
                (
                    raw.mnc.is_some(),
                    raw.mnc.as_ref().map(Spanned::span),
                    "mnc",
                ),
            ] {
                if present {
                    errors.push(source.error(
                        span,
                        field,
                        "a default template (default = true) covers every network without a file; it takes no mcc or mnc",
                    ));
                }
            }
            Coverage::Default
        } else {
            let mcc = match &raw.mcc {
                None => {
                    errors.push(source.error(
                        None,
                        "mcc",
                        "missing: expected the 3-digit mobile country code, e.g. mcc = \"313\" (or default = true)",
                    ));
                    None
                }
                Some(m) => match Mcc::parse(m.get_ref()) {
                    Ok(mcc) => Some(mcc),
                    Err(e) => {
                        errors.push(source.error(Some(m.span()), "mcc", e.to_string()));
                        None
                    }
                },
            };
            let mut plmns = Vec::new();
            match &raw.mnc {
                None => errors.push(source.error(
                    None,
                    "mnc",
                    "missing: expected a list of 2- or 3-digit network codes, e.g. mnc = [\"460\"]",
                )),
                Some(list) if list.get_ref().is_empty() => errors.push(source.error(
                    Some(list.span()),
                    "mnc",
                    "empty: list at least one network code",
                )),
                Some(list) => {
                    for (i, m) in list.get_ref().iter().enumerate() {
                        let field = format!("mnc[{i}]");
                        match Mnc::parse(m.get_ref()) {
                            Ok(mnc) => {
                                if let Some(mcc) = mcc {
                                    let plmn = Plmn::new(mcc, mnc);
                                    if plmns.contains(&plmn) {
                                        errors.push(source.error(
                                            Some(m.span()),
                                            field,
                                            format!("{mnc} is listed twice"),
                                        ));
                                    }
                                    plmns.push(plmn);
                                }
                            }
                            Err(e) => {
                                errors.push(source.error(Some(m.span()), field, e.to_string()))
                            }
                        }
                    }
                }
            }
            Coverage::Networks(plmns)
        };

        let ttl = raw.ttl.as_ref().map(|t| *t.get_ref());
        if let Some(t) = ttl.filter(|&t| t > i32::MAX as u32) {
            errors.push(source.error(
                raw.ttl.as_ref().map(Spanned::span),
                "ttl",
                format!("{t} is above the largest TTL (2147483647)"),
            ));
        }

        let mut addresses = Vec::new();
        for (i, a) in raw.addresses.iter().enumerate() {
            match a.get_ref().parse::<IpAddr>() {
                Ok(ip) if addresses.contains(&ip) => errors.push(source.error(
                    Some(a.span()),
                    format!("addresses[{i}]"),
                    format!("{ip} is listed twice"),
                )),
                Ok(ip) => addresses.push(ip),
                Err(_) => errors.push(source.error(
                    Some(a.span()),
                    format!("addresses[{i}]"),
                    format!("{:?} is not an IPv4 or IPv6 address", a.get_ref()),
                )),
            }
        }

        if raw.bootstrap.is_empty() {
            errors.push(source.error(
                None,
                "bootstrap",
                "missing: add at least one [[bootstrap]] table with a uri, e.g. uri = \"coaps://bs.example.net:5684\"",
            ));
        }
        // Placeholders are checked by filling them with sample digits: a URI that is valid
        // then stays valid for every real network.
        let sample = Plmn::new(
            Mcc::parse("001")
                .map_err(|e| SourceErrors(vec![source.error(None, "", e.to_string())]))?,
            Mnc::parse("001")
                .map_err(|e| SourceErrors(vec![source.error(None, "", e.to_string())]))?,
        );
        let mut bootstrap = Vec::new();
        for (i, b) in raw.bootstrap.iter().enumerate() {
            let field = format!("bootstrap[{i}].uri");
            let written = b.uri.get_ref();
            let has_placeholder = written.contains('{');
            if has_placeholder && !is_default {
                errors.push(source.error(
                    Some(b.uri.span()),
                    field,
                    "placeholders like {mcc} and {mnc} are only for the default template (default = true)",
                ));
                continue;
            }
            let filled = fill_placeholders(written, &sample);
            if filled.contains('{') || filled.contains('}') {
                errors.push(source.error(
                    Some(b.uri.span()),
                    field,
                    "unknown placeholder: only {mcc} and {mnc} are known",
                ));
                continue;
            }
            match parse_bootstrap_uri(&filled) {
                Ok(_) => bootstrap.push(BootstrapEntry {
                    uri: written.clone(),
                    priority: b.priority.as_ref().map_or(10, |p| *p.get_ref()),
                    weight: b.weight.as_ref().map_or(1, |w| *w.get_ref()),
                }),
                Err(message) => errors.push(source.error(Some(b.uri.span()), field, message)),
            }
        }
        let mut seen = HashMap::new();
        for (i, entry) in bootstrap.iter().enumerate() {
            if let Some(first) = seen.insert(entry.uri.to_ascii_lowercase(), i) {
                errors.push(source.error(
                    raw.bootstrap.get(i).map(|b| b.uri.span()),
                    format!("bootstrap[{i}].uri"),
                    format!("the same URI as bootstrap[{first}]"),
                ));
            }
        }

        if !errors.is_empty() {
            return Err(SourceErrors(errors));
        }
        Ok(Template {
            file: path.to_path_buf(),
            coverage,
            ttl,
            addresses,
            bootstrap,
        })
    }
}

/// Whether two template lists are the same: shared (the usual case after a reload, which
/// reuses unchanged files' templates) or equal.
pub fn same_templates(a: &[Arc<Template>], b: &[Arc<Template>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y) || x == y)
}

/// Every template of a zones directory, validated together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet {
    /// Shared: a reload reuses the templates of unchanged files, and zone parts keep them.
    pub templates: Vec<Arc<Template>>,
    pub default: Option<Template>,
    /// Things that are legal but probably not what the operator meant.
    pub warnings: Vec<String>,
}

impl TemplateSet {
    pub fn operators(&self) -> impl Iterator<Item = (&Template, Plmn)> {
        self.templates
            .iter()
            .flat_map(|t| t.networks().iter().map(move |p| (&**t, *p)))
    }
}

/// Whether a directory entry is a template file. Editors' swap and backup files, dotfiles and
/// anything not ending in `.toml` are not.
pub fn is_template_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && !name.starts_with('#') && name.ends_with(".toml") && name.len() > 5
}

/// What identifies a file's version without reading it: inode, size, modification and
/// change times (nanoseconds). An edit, a rename over it or a copy changes at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            inode: metadata.ino(),
            len: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// Templates parsed by earlier loads, so that a reload of a large directory reads and parses
/// only the files that changed (with 100,000 files, parsing them all takes seconds).
#[derive(Debug, Default)]
pub struct TemplateCache {
    entries: HashMap<PathBuf, (FileStamp, Arc<Template>), ahash::RandomState>,
}

impl TemplateCache {
    /// The newest inode change time (seconds since 1970) of the files last loaded: when the
    /// templates last changed. (A change time cannot be set back by tools that keep a file's
    /// modification time, as `cp -p` and `rsync -t` do.)
    pub fn newest_change(&self) -> i64 {
        self.entries
            .values()
            .map(|(stamp, _)| stamp.ctime.0)
            .max()
            .unwrap_or(0)
    }
}

/// Fewer files than this per thread are read on the calling thread: a stat, a read and a
/// parse take tens of microseconds, about what starting a thread does.
const FILES_PER_THREAD: usize = 64;

/// What loading found for one file of the directory.
enum FileOutcome {
    /// As the cache saw it: the template parsed then.
    Unchanged(FileStamp, Arc<Template>),
    Parsed(FileStamp, Result<Arc<Template>, SourceErrors>),
    /// A directory or other entry that is not a regular file: not a template.
    NotAFile,
    Unreadable(SourceError),
}

/// Reads and validates every template in `dir` (not recursive).
pub fn load_dir(dir: &Path) -> Result<TemplateSet, SourceErrors> {
    load_dir_cached(dir, &mut TemplateCache::default(), None)
}

/// `load_dir`, reusing the parsed templates of files unchanged since the cache saw them. With
/// `changed` (file names a watch reported), files not named there are taken from the cache
/// without a `stat`; without it, every file's stamp is checked.
pub fn load_dir_cached(
    dir: &Path,
    cache: &mut TemplateCache,
    changed: Option<&std::collections::HashSet<std::ffi::OsString>>,
) -> Result<TemplateSet, SourceErrors> {
    let whole_dir = |message: String| SourceError {
        file: dir.to_path_buf(),
        line: 0,
        field: String::new(),
        message,
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SourceErrors(vec![whole_dir(format!("cannot read zones directory: {e}"))]))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            SourceErrors(vec![whole_dir(format!("cannot list zones directory: {e}"))])
        })?;
        let path = entry.path();
        if is_template_file(&path) {
            paths.push((path, entry));
        }
    }
    // One directory: byte order of the whole path is file-name order, and cheap.
    paths.sort_unstable_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    // Files are opened relative to the directory (`crate::dirfiles`); should it have gone
    // since it was listed, each file says so.
    let open_dir = crate::dirfiles::Dir::open(dir).ok();
    // Stat, read and parse on every core (100,000 files take seconds on one); the outcomes
    // come back in file order, so errors are reported as a sequential pass would.
    let cached = |path: &Path, stamp: Option<FileStamp>| {
        cache
            .entries
            .get(path)
            .filter(|(seen, _)| stamp.is_none_or(|stamp| *seen == stamp))
            .map(|(seen, template)| FileOutcome::Unchanged(*seen, Arc::clone(template)))
    };
    let outcomes = crate::parallel::map(&paths, FILES_PER_THREAD, |(path, entry)| {
        if changed.is_some_and(|names| !names.contains(&entry.file_name())) {
            if let Some(unchanged) = cached(path, None) {
                return unchanged;
            }
        }
        // A file deleted between listing and reading is a half-finished change: the whole set
        // is rejected and the next event brings a consistent view.
        let unreadable = |e: std::io::Error| {
            FileOutcome::Unreadable(SourceError {
                file: path.clone(),
                line: 0,
                field: String::new(),
                message: format!("cannot read: {e}"),
            })
        };
        // A file the cache holds is looked at with one `stat` (relative to the open
        // directory, following a symbolic link only when there is one), and read only if
        // it changed.
        if cache.entries.contains_key(path) {
            let metadata = match entry.metadata() {
                Ok(m) if m.file_type().is_symlink() => std::fs::metadata(path),
                other => other,
            };
            if let Ok(m) = metadata {
                if let Some(unchanged) = cached(path, Some(FileStamp::of(&m))) {
                    return unchanged;
                }
            }
        }
        let Some(open_dir) = &open_dir else {
            return unreadable(std::io::Error::other(
                "the zones directory could not be opened",
            ));
        };
        let file = match open_dir.open_file(&entry.file_name()) {
            Ok(file) if file.metadata.is_file() => file,
            Ok(_) => return FileOutcome::NotAFile,
            // An entry that cannot be opened as a file (a socket, say) is no template either.
            Err(e) => {
                return match std::fs::metadata(path) {
                    Ok(m) if !m.is_file() => FileOutcome::NotAFile,
                    _ => unreadable(e),
                }
            }
        };
        let stamp = FileStamp::of(&file.metadata);
        if let Some(unchanged) = cached(path, Some(stamp)) {
            return unchanged;
        }
        match file.read_text() {
            Ok(text) => FileOutcome::Parsed(stamp, Template::parse(path, &text).map(Arc::new)),
            Err(e) => unreadable(e),
        }
    });
    let mut parsed = Vec::with_capacity(paths.len());
    let mut errors = Vec::new();
    let mut fresh = HashMap::with_capacity_and_hasher(paths.len(), Default::default());
    for ((path, _), outcome) in paths.into_iter().zip(outcomes) {
        match outcome {
            FileOutcome::Unchanged(stamp, template) => {
                parsed.push(Ok(Arc::clone(&template)));
                fresh.insert(path, (stamp, template));
            }
            FileOutcome::Parsed(stamp, result) => {
                if let Ok(template) = &result {
                    fresh.insert(path, (stamp, Arc::clone(template)));
                }
                parsed.push(result);
            }
            FileOutcome::NotAFile => {}
            FileOutcome::Unreadable(error) => errors.push(error),
        }
    }
    cache.entries = fresh;
    TemplateSet::from_parsed(parsed.into_iter(), errors)
}

impl TemplateSet {
    /// Validates a set of template texts, each file alone and then across files.
    pub fn from_texts<'a>(
        files: impl Iterator<Item = (&'a Path, &'a str)>,
    ) -> Result<TemplateSet, SourceErrors> {
        Self::from_parsed(
            files.map(|(path, text)| Template::parse(path, text).map(Arc::new)),
            Vec::new(),
        )
    }

    /// Checks across files the templates parsed one by one (`errors`: problems found before).
    pub fn from_parsed(
        parsed: impl Iterator<Item = Result<Arc<Template>, SourceErrors>>,
        mut errors: Vec<SourceError>,
    ) -> Result<TemplateSet, SourceErrors> {
        let mut set = TemplateSet::default();
        for result in parsed {
            match result {
                Ok(t) if t.coverage == Coverage::Default => {
                    if let Some(first) = &set.default {
                        errors.push(SourceError {
                            file: t.file.clone(),
                            line: 0,
                            field: "default".into(),
                            message: format!(
                                "a second default template; {} is one already",
                                first.file.display()
                            ),
                        });
                    } else {
                        set.default = Some(Arc::unwrap_or_clone(t));
                    }
                }
                Ok(t) => set.templates.push(t),
                Err(SourceErrors(e)) => errors.extend(e),
            }
        }
        let mut owner: HashMap<Plmn, &Path> = HashMap::new();
        for (template, plmn) in set.operators() {
            if let Some(first) = owner.insert(plmn, &template.file) {
                if first != template.file {
                    errors.push(SourceError {
                        file: template.file.clone(),
                        line: 0,
                        field: "mnc".into(),
                        message: format!(
                            "network {plmn} is also claimed by {}; each network belongs to one file",
                            first.display()
                        ),
                    });
                }
            }
        }
        let mut warnings = Vec::new();
        for (template, plmn) in set.operators() {
            if plmn.mnc.digit_count() == 2 {
                let padded = Plmn::new(plmn.mcc, plmn.mnc.padded());
                if let Some(other) = owner.get(&padded) {
                    warnings.push(format!(
                        "{}: networks {plmn} and {padded} ({}) are distinct, so mnc{} is answered for {padded} only, not as the padded spelling of {plmn}",
                        template.file.display(),
                        other.display(),
                        padded.mnc
                    ));
                }
            }
        }
        set.warnings = warnings;
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(SourceErrors(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Template, SourceErrors> {
        Template::parse(Path::new("zones/t.toml"), text)
    }

    fn single_error(text: &str) -> SourceError {
        let errors = parse(text).unwrap_err();
        assert_eq!(errors.0.len(), 1, "{errors}");
        errors.0.into_iter().next().unwrap()
    }

    const GOOD: &str = r#"mcc = "313"
mnc = ["460"]
ttl = 300
addresses = ["192.0.2.10", "2001:db8::10"]
[[bootstrap]]
uri = "coaps://bs.example-op.net:5684"
priority = 10
weight = 1
"#;

    #[test]
    fn good_template_parses() {
        let t = parse(GOOD).unwrap();
        let Coverage::Networks(plmns) = &t.coverage else {
            panic!("not an operator template")
        };
        assert_eq!(plmns[0].to_string(), "313-460");
        assert_eq!(t.addresses.len(), 2);
        let op = t.instantiate(plmns[0], 60).unwrap();
        assert_eq!(op.ttl, 300);
        let (uri, entry) = &op.bootstrap[0];
        assert_eq!(uri.scheme, Scheme::Coaps);
        assert_eq!(uri.port, 5684);
        assert_eq!((entry.priority, entry.weight), (10, 1));
    }

    #[test]
    fn uri_forms() {
        let u = parse_bootstrap_uri("coap+tcp://[2001:db8::1]/bs?x=1").unwrap();
        assert_eq!(
            (u.scheme, u.port, u.host),
            (
                Scheme::CoapTcp,
                5683,
                Host::Ip("2001:db8::1".parse().unwrap())
            )
        );
        let u = parse_bootstrap_uri("COAPS://192.0.2.1:15684").unwrap();
        assert_eq!(
            (u.scheme, u.port, u.host),
            (Scheme::Coaps, 15684, Host::Ip("192.0.2.1".parse().unwrap()))
        );
        for bad in [
            "http://x.example",
            "coaps://",
            "coaps://x.example:0",
            "coaps://x.example:99999",
            "coaps://us@x.example",
            "coaps://x_y.example",
            "coaps://[::1",
            "coaps://x .example",
            "bs.example.net",
        ] {
            assert!(parse_bootstrap_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_mistake_names_file_line_and_field() {
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "mcc = \"31\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
                1,
                "mcc",
                "3 digits",
            ),
            (
                "mcc = \"313\"\nmnc = [\"4600\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
                2,
                "mnc[0]",
                "2 or 3 digits",
            ),
            (
                "mcc = \"313\"\nmnc = [\"460\"]\naddresses = [\"192.0.2.300\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
                3,
                "addresses[0]",
                "not an IPv4 or IPv6",
            ),
            (
                "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"http://a.example\"\n",
                4,
                "bootstrap[0].uri",
                "not one of coap",
            ),
            (
                "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\nweight = 70000\n",
                5,
                "bootstrap.weight",
                "invalid value",
            ),
            (
                "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\ncolour = 1\n",
                5,
                "bootstrap.colour",
                "unknown field",
            ),
            (
                "mcc = \"313\"\nmnc = [\"460\"]\n[[bootstrap]]\nuri = \"coaps://bs.mnc{mnc}.example\"\n",
                4,
                "bootstrap[0].uri",
                "only for the default template",
            ),
            (
                "mcc = \"313\"\nmnc = [\"460\"]\nttl = 3000000000\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
                3,
                "ttl",
                "largest TTL",
            ),
            ("mcc = \"313\"\nmnc = [\"460\"]\n", 0, "bootstrap", "at least one"),
            // A syntax error is placed where the parser finds it: here the array left open.
            ("mcc = \"313\"\nmnc = [\"460\"\n", 2, "mnc", "unclosed array"),
        ];
        for (text, line, field, needle) in cases {
            let e = single_error(text);
            assert_eq!(e.file, Path::new("zones/t.toml"));
            assert_eq!(e.line, *line, "{e}");
            assert_eq!(e.field, *field, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
    }

    #[test]
    fn default_template_placeholders() {
        let text = "default = true\n[[bootstrap]]\nuri = \"coaps://bs.mnc{mnc}.mcc{mcc}.hub.example:5684\"\n";
        let t = parse(text).unwrap();
        assert_eq!(t.coverage, Coverage::Default);
        let plmn = Plmn::new(Mcc::parse("262").unwrap(), Mnc::parse("01").unwrap());
        let op = t.instantiate(plmn, 300).unwrap();
        assert_eq!(
            op.bootstrap[0].0.text,
            "coaps://bs.mnc01.mcc262.hub.example:5684"
        );
        let e = single_error(
            "default = true\nmcc = \"262\"\n[[bootstrap]]\nuri = \"coaps://a.example\"\n",
        );
        assert_eq!((e.line, e.field.as_str()), (2, "mcc"));
        let e = single_error("default = true\n[[bootstrap]]\nuri = \"coaps://a{imsi}.example\"\n");
        assert!(e.message.contains("unknown placeholder"), "{e}");
    }

    #[test]
    fn duplicate_network_names_both_files() {
        let a = "mcc = \"262\"\nmnc = [\"01\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n";
        let b =
            "mcc = \"262\"\nmnc = [\"02\", \"01\"]\n[[bootstrap]]\nuri = \"coaps://b.example\"\n";
        let errors = TemplateSet::from_texts(
            [
                (Path::new("zones/a.toml"), a),
                (Path::new("zones/b.toml"), b),
            ]
            .into_iter(),
        )
        .unwrap_err();
        assert_eq!(errors.0.len(), 1);
        let message = errors.0[0].to_string();
        assert!(
            message.contains("zones/a.toml") && message.contains("zones/b.toml"),
            "{message}"
        );
    }

    #[test]
    fn padded_collision_is_a_warning() {
        let a = "mcc = \"708\"\nmnc = [\"02\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n";
        let b = "mcc = \"708\"\nmnc = [\"002\"]\n[[bootstrap]]\nuri = \"coaps://b.example\"\n";
        let set = TemplateSet::from_texts(
            [(Path::new("a.toml"), a), (Path::new("b.toml"), b)].into_iter(),
        )
        .unwrap();
        assert_eq!(set.warnings.len(), 1, "{:?}", set.warnings);
    }

    #[test]
    fn cached_loads_see_every_change() {
        let dir = std::env::temp_dir().join(format!("bsf-dns-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = |mnc: &str, host: &str| {
            format!("mcc = \"262\"\nmnc = [\"{mnc}\"]\n[[bootstrap]]\nuri = \"coaps://{host}.example\"\n")
        };
        std::fs::write(dir.join("a.toml"), text("01", "aa")).unwrap();
        std::fs::write(dir.join("b.toml"), text("02", "bb")).unwrap();
        let mut cache = TemplateCache::default();
        let first = load_dir_cached(&dir, &mut cache, None).unwrap();
        assert_eq!(first.templates.len(), 2);
        // Same size, new content: seen.
        std::fs::write(dir.join("a.toml"), text("01", "cc")).unwrap();
        let second = load_dir_cached(&dir, &mut cache, None).unwrap();
        assert_eq!(second.templates[0].bootstrap[0].uri, "coaps://cc.example");
        assert_eq!(second.templates[1], first.templates[1]);
        // Deleted: gone. A broken file: rejected, and not cached.
        std::fs::remove_file(dir.join("b.toml")).unwrap();
        std::fs::write(dir.join("c.toml"), "mcc = \"26\"\n").unwrap();
        assert!(load_dir_cached(&dir, &mut cache, None).is_err());
        std::fs::remove_file(dir.join("c.toml")).unwrap();
        let third = load_dir_cached(&dir, &mut cache, None).unwrap();
        assert_eq!(third.templates.len(), 1);
        assert_eq!(third, load_dir(&dir).unwrap());
        // With the names a watch reported, only those files are looked at.
        std::fs::write(dir.join("a.toml"), text("01", "dd")).unwrap();
        let none = std::collections::HashSet::new();
        let fourth = load_dir_cached(&dir, &mut cache, Some(&none)).unwrap();
        assert_eq!(fourth.templates[0].bootstrap[0].uri, "coaps://cc.example");
        let named = std::collections::HashSet::from([std::ffi::OsString::from("a.toml")]);
        let fifth = load_dir_cached(&dir, &mut cache, Some(&named)).unwrap();
        assert_eq!(fifth.templates[0].bootstrap[0].uri, "coaps://dd.example");
        // A new file is read even when not named (it is not in the cache).
        std::fs::write(dir.join("e.toml"), text("05", "ee")).unwrap();
        assert_eq!(
            load_dir_cached(&dir, &mut cache, Some(&none))
                .unwrap()
                .templates
                .len(),
            2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn template_file_filter() {
        for yes in ["a.toml", "313-460.toml"] {
            assert!(is_template_file(Path::new(yes)), "{yes}");
        }
        for no in [
            ".a.toml",
            "a.toml~",
            ".a.toml.swp",
            "a.toml.swp",
            "#a.toml#",
            "README",
            ".toml",
        ] {
            assert!(!is_template_file(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn entries_that_are_not_files_are_skipped_and_unreadable_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let zones = dir.path();
        let text = "mcc = \"262\"\nmnc = [\"01\"]\n[[bootstrap]]\nuri = \"coaps://a.example\"\n";
        std::fs::create_dir(zones.join("releases")).unwrap();
        std::fs::write(zones.join("releases/a.toml"), text).unwrap();
        std::os::unix::fs::symlink("releases/a.toml", zones.join("a.toml")).unwrap();
        std::fs::create_dir(zones.join("old.toml")).unwrap();
        let fifo = std::ffi::CString::new(
            zones
                .join("pipe.toml")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        // A link to a template, a directory and a FIFO (opened without waiting for a writer).
        let set = load_dir(zones).unwrap();
        assert_eq!(set.templates.len(), 1);
        assert_eq!(set.templates[0].bootstrap[0].uri, "coaps://a.example");
        // A link to nothing is a file that cannot be read: the set is rejected, naming it.
        std::os::unix::fs::symlink("releases/gone.toml", zones.join("b.toml")).unwrap();
        let errors = load_dir(zones).unwrap_err().0;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, zones.join("b.toml"));
        assert!(
            errors[0].message.starts_with("cannot read: "),
            "{}",
            errors[0].message
        );
        std::fs::remove_file(zones.join("b.toml")).unwrap();
        // Not UTF-8.
        std::fs::write(zones.join("c.toml"), [b'm', 0xff, b'\n']).unwrap();
        let errors = load_dir(zones).unwrap_err().0;
        assert_eq!(errors[0].file, zones.join("c.toml"));
        assert!(errors[0].message.contains("UTF-8"), "{}", errors[0].message);
    }
}
