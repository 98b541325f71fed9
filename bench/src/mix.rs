//! The query mix: which names and types the load generator asks, and what each answer must be.
//!
//! Two sources: a *names file* written by `gen-zones` (bsf names marked `known` or `unknown`),
//! from which a mix of types is drawn by weight, or a *query file* (`name TYPE [EXPECT]`, the
//! dnsperf format plus an optional expected RCODE). Either way the result is a [`Pool`]: every
//! query pre-encoded once into one flat buffer, so the send path only copies bytes and patches
//! the ID.

use crate::rng::Rng;
use crate::wire::{self, Expect};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

/// Relative weights of the query kinds. `nx` is "a name of an operator that has no template"
/// (asked with the same type weights as the rest), which must get NXDOMAIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub a: u32,
    pub aaaa: u32,
    pub txt: u32,
    /// SRV at `_coaps._udp.<bsf name>`.
    pub srv: u32,
    /// URI at `_coaps._udp.<bsf name>`.
    pub uri: u32,
    pub nx: u32,
}

impl Default for Mix {
    /// The default: 40% A, 15% AAAA, 15% TXT, 20% SRV/URI, 10% unknown operators.
    fn default() -> Self {
        Mix {
            a: 40,
            aaaa: 15,
            txt: 15,
            srv: 10,
            uri: 10,
            nx: 10,
        }
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `a=40,aaaa=15,txt=15,srv=10,uri=10,nx=10`; kinds left out weigh 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut m = Mix {
            a: 0,
            aaaa: 0,
            txt: 0,
            srv: 0,
            uri: 0,
            nx: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=weight"))?;
            let w: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: weight is not a number"))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "a" => m.a = w,
                "aaaa" => m.aaaa = w,
                "txt" => m.txt = w,
                "srv" => m.srv = w,
                "uri" => m.uri = w,
                "nx" | "unknown" => m.nx = w,
                other => {
                    return Err(format!(
                        "unknown query kind {other:?} (a, aaaa, txt, srv, uri, nx)"
                    ))
                }
            }
        }
        if m.a + m.aaaa + m.txt + m.srv + m.uri + m.nx == 0 {
            return Err("all weights are zero".into());
        }
        Ok(m)
    }
}

/// Names read from a names file.
#[derive(Debug, Default, Clone)]
pub struct NameList {
    /// bsf names that have a template: every query for them gets NOERROR.
    pub known: Vec<String>,
    /// bsf names of operators without a template: NXDOMAIN.
    pub unknown: Vec<String>,
}

/// Reads a names file: `<name> known|unknown` per line; `#` starts a comment.
pub fn read_names(path: &Path) -> Result<NameList> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading names file {}", path.display()))?;
    parse_names(&text).with_context(|| format!("in names file {}", path.display()))
}

fn parse_names(text: &str) -> Result<NameList> {
    let mut list = NameList::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(name), kind) = (f.next(), f.next()) else {
            continue;
        };
        match kind.unwrap_or("known") {
            "known" => list.known.push(name.to_string()),
            "unknown" => list.unknown.push(name.to_string()),
            other => bail!("line {}: {other:?} is neither known nor unknown", i + 1),
        }
    }
    Ok(list)
}

/// Writes a names file.
pub fn write_names(path: &Path, list: &NameList, header: &str) -> Result<()> {
    let mut s = String::new();
    for l in header.lines() {
        let _ = writeln!(s, "# {l}");
    }
    for n in &list.known {
        let _ = writeln!(s, "{n} known");
    }
    for n in &list.unknown {
        let _ = writeln!(s, "{n} unknown");
    }
    std::fs::write(path, s).with_context(|| format!("writing names file {}", path.display()))
}

/// One query to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    pub name: String,
    pub qtype: u16,
    pub expect: Expect,
}

/// Flips the case of each ASCII letter with probability 1/2, as a resolver doing 0x20 does.
pub fn random_case(name: &str, rng: &mut Rng) -> String {
    let mut bits = rng.next_u64();
    let mut used = 0;
    name.chars()
        .map(|c| {
            if !c.is_ascii_alphabetic() {
                return c;
            }
            if used == 64 {
                bits = rng.next_u64();
                used = 0;
            }
            let flip = bits & 1 == 1;
            bits >>= 1;
            used += 1;
            if flip {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Draws `count` queries from `names` by the weights of `mix`.
pub fn generate(
    names: &NameList,
    mix: &Mix,
    count: usize,
    seed: u64,
    randomize_case: bool,
) -> Result<Vec<QuerySpec>> {
    let typed = [
        (mix.a, wire::TYPE_A, ""),
        (mix.aaaa, wire::TYPE_AAAA, ""),
        (mix.txt, wire::TYPE_TXT, ""),
        (mix.srv, wire::TYPE_SRV, "_coaps._udp."),
        (mix.uri, wire::TYPE_URI, "_coaps._udp."),
    ];
    let known_w: u32 = typed.iter().map(|t| t.0).sum();
    if known_w > 0 && names.known.is_empty() {
        bail!("the mix asks for existing names but the names file lists none marked known");
    }
    if mix.nx > 0 && names.unknown.is_empty() {
        bail!(
            "the mix asks for unknown operators (nx) but the names file lists none marked unknown"
        );
    }
    let total = u64::from(known_w + mix.nx);
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let pick = rng.below(total);
        let unknown = pick >= u64::from(known_w);
        let (qtype, prefix) = if known_w == 0 {
            // Only unknown names weigh anything: they still need a type; ask A.
            (wire::TYPE_A, "")
        } else {
            let mut p = if unknown {
                rng.below(u64::from(known_w))
            } else {
                pick
            };
            let mut chosen = (wire::TYPE_A, "");
            for (w, t, pre) in typed {
                if p < u64::from(w) {
                    chosen = (t, pre);
                    break;
                }
                p -= u64::from(w);
            }
            chosen
        };
        let pool = if unknown {
            &names.unknown
        } else {
            &names.known
        };
        let base = &pool[rng.below(pool.len() as u64) as usize];
        let full = format!("{prefix}{base}");
        let name = if randomize_case {
            random_case(&full, &mut rng)
        } else {
            full
        };
        let expect = if unknown {
            Expect::NxDomain
        } else {
            Expect::NoError
        };
        out.push(QuerySpec {
            name,
            qtype,
            expect,
        });
    }
    Ok(out)
}

/// Reads a query file: `name TYPE [NOERROR|NXDOMAIN|ANY]` per line (dnsperf's format plus an
/// optional expectation; without one the RCODE is not checked).
pub fn read_queries(path: &Path) -> Result<Vec<QuerySpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading query file {}", path.display()))?;
    parse_queries(&text).with_context(|| format!("in query file {}", path.display()))
}

fn parse_queries(text: &str) -> Result<Vec<QuerySpec>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let name = f.next().unwrap_or_default().to_string();
        let Some(t) = f.next() else {
            bail!("line {}: expected `name TYPE [EXPECT]`", i + 1)
        };
        let qtype =
            wire::parse_type(t).with_context(|| format!("line {}: unknown type {t:?}", i + 1))?;
        let expect = match f.next() {
            None => Expect::Any,
            Some(e) => Expect::parse(e)
                .with_context(|| format!("line {}: unknown expectation {e:?}", i + 1))?,
        };
        out.push(QuerySpec {
            name,
            qtype,
            expect,
        });
    }
    if out.is_empty() {
        bail!("no queries");
    }
    Ok(out)
}

/// Writes queries; `with_expect = false` gives a plain dnsperf data file.
pub fn write_queries(path: &Path, specs: &[QuerySpec], with_expect: bool) -> Result<()> {
    let mut s = String::with_capacity(specs.len() * 48);
    for q in specs {
        let _ = write!(s, "{} {}", q.name, wire::type_name(q.qtype));
        if with_expect {
            let _ = write!(s, " {}", q.expect.as_str());
        }
        s.push('\n');
    }
    std::fs::write(path, s).with_context(|| format!("writing query file {}", path.display()))
}

/// One pre-encoded query in a [`Pool`].
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    start: u32,
    len: u16,
    qlen: u16,
    pub expect: Expect,
}

/// Every query of the run, encoded once, back to back in one buffer.
#[derive(Debug, Default)]
pub struct Pool {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Pool {
    /// Encodes `specs`; `edns_payload` adds an OPT record to each query, with `options`.
    pub fn build(specs: &[QuerySpec], edns_payload: Option<u16>, options: &[u8]) -> Result<Pool> {
        if specs.is_empty() {
            bail!("the query pool is empty");
        }
        let mut pool = Pool::default();
        for q in specs {
            let (m, qlen) = wire::encode_query(&q.name, q.qtype, edns_payload, options)?;
            let start = u32::try_from(pool.bytes.len()).context("query pool over 4 GiB")?;
            pool.entries.push(Entry {
                start,
                len: m.len() as u16,
                qlen: qlen as u16,
                expect: q.expect,
            });
            pool.bytes.extend_from_slice(&m);
        }
        Ok(pool)
    }

    /// Reorders the queries into runs of up to `run` equal-length messages, the runs in a
    /// seeded random order. The multiset of queries (so the mix) is unchanged; only their order
    /// is, so that the UDP lanes can send each run as one GSO send.
    pub fn group_runs(&mut self, run: usize, seed: u64) {
        let run = run.max(1);
        let mut by_len: std::collections::BTreeMap<u16, Vec<Entry>> =
            std::collections::BTreeMap::new();
        for e in &self.entries {
            by_len.entry(e.len).or_default().push(*e);
        }
        let mut runs: Vec<Vec<Entry>> = Vec::new();
        for (_, list) in by_len {
            for chunk in list.chunks(run) {
                runs.push(chunk.to_vec());
            }
        }
        let mut rng = Rng::new(seed ^ 0x6A09_E667);
        for i in (1..runs.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            runs.swap(i, j);
        }
        self.entries = runs.into_iter().flatten().collect();
    }

    /// Number of distinct queries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the pool has no queries (never, for a built pool).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The encoded message (ID 0) of entry `i`, its question length and expectation.
    pub fn get(&self, i: usize) -> (&[u8], usize, Expect) {
        let e = &self.entries[i];
        let s = e.start as usize;
        (
            &self.bytes[s..s + usize::from(e.len)],
            usize::from(e.qlen),
            e.expect,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> NameList {
        parse_names("# c\nbsf.mnc01.mcc202.lwm2m.org known\nbsf.mnc999.mcc202.lwm2m.org unknown\n")
            .unwrap()
    }

    #[test]
    fn parses_mix() {
        assert_eq!(
            "a=40,aaaa=15,txt=15,srv=10,uri=10,nx=10"
                .parse::<Mix>()
                .unwrap(),
            Mix::default()
        );
        assert!("a=1,bogus=2".parse::<Mix>().is_err());
        assert!("a=0".parse::<Mix>().is_err());
    }

    #[test]
    fn default_mix_has_the_right_shares() {
        let specs = generate(&names(), &Mix::default(), 100_000, 3, true).unwrap();
        let count =
            |f: &dyn Fn(&QuerySpec) -> bool| specs.iter().filter(|q| f(q)).count() as f64 / 1000.0;
        let nx = count(&|q| q.expect == Expect::NxDomain);
        let srv_known = count(&|q| q.qtype == wire::TYPE_SRV && q.expect == Expect::NoError);
        let a_known = count(&|q| q.qtype == wire::TYPE_A && q.expect == Expect::NoError);
        assert!((nx - 10.0).abs() < 1.0, "nx {nx}%");
        assert!((srv_known - 10.0).abs() < 1.0, "srv {srv_known}%");
        assert!((a_known - 40.0).abs() < 1.5, "a {a_known}%");
        assert!(specs.iter().any(|q| q.name.starts_with("_COAPS._UDP.")
            || q.name.starts_with("_coaps._Udp.")
            || q.name.chars().any(|c| c.is_ascii_uppercase())));
    }

    #[test]
    fn random_case_keeps_letters() {
        let mut r = Rng::new(1);
        let n = random_case("bsf.mnc01.mcc202.lwm2m.org", &mut r);
        assert!(n.eq_ignore_ascii_case("bsf.mnc01.mcc202.lwm2m.org"));
    }

    #[test]
    fn query_file_round_trip() {
        let specs = generate(&names(), &Mix::default(), 50, 1, true).unwrap();
        let dir = std::env::temp_dir().join(format!("bsf-bench-mix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("q.txt");
        write_queries(&p, &specs, true).unwrap();
        assert_eq!(read_queries(&p).unwrap(), specs);
        write_queries(&p, &specs, false).unwrap();
        assert!(read_queries(&p)
            .unwrap()
            .iter()
            .all(|q| q.expect == Expect::Any));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_names_are_errors() {
        let only_known = parse_names("a.example known\n").unwrap();
        assert!(generate(&only_known, &Mix::default(), 10, 1, false).is_err());
        assert!(parse_names("a.example maybe\n").is_err());
        assert!(parse_queries("a.example\n").is_err());
    }

    #[test]
    fn grouping_keeps_the_mix() {
        let specs = generate(&names(), &Mix::default(), 1000, 1, true).unwrap();
        let mut pool = Pool::build(&specs, None, &[]).unwrap();
        let before: Vec<Vec<u8>> = {
            let mut v: Vec<Vec<u8>> = (0..pool.len()).map(|i| pool.get(i).0.to_vec()).collect();
            v.sort();
            v
        };
        pool.group_runs(16, 1);
        let mut after: Vec<Vec<u8>> = (0..pool.len()).map(|i| pool.get(i).0.to_vec()).collect();
        let runs = (1..pool.len())
            .filter(|&i| pool.get(i).0.len() != pool.get(i - 1).0.len())
            .count();
        assert!(runs < 1000 / 4, "runs {runs}");
        after.sort();
        assert_eq!(before, after);
    }

    #[test]
    fn pool_encodes_everything() {
        let specs = generate(&names(), &Mix::default(), 20, 1, false).unwrap();
        let pool = Pool::build(&specs, Some(1232), &[]).unwrap();
        assert_eq!(pool.len(), 20);
        let (m, qlen, _) = pool.get(3);
        assert_eq!(m.len(), 12 + qlen + 11);
    }
}
