//! `gen-zones`: operator templates for the benchmark, from the real MCC/MNC table or
//! synthetic, plus the names file the load generator draws its queries from.
//!
//! Everything is derived from a seed, per operator (so adding operators does not change the
//! others): addresses from the documentation ranges (RFC 5737, RFC 3849 — record data only,
//! never contacted), bootstrap URIs whose schemes, hosts, ports and count vary (coaps always;
//! coap, coaps+tcp, coap+tcp sometimes; two coaps servers for some). Each PLMN appears in
//! exactly one file.

use crate::mix::{self, NameList};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    pub csv: PathBuf,
    pub out: PathBuf,
    pub names: PathBuf,
    /// Number of operators; `None`: every pair of the CSV. More than the CSV holds: the real
    /// pairs, then synthetic ones (MCCs the CSV does not use, 3-digit MNCs).
    pub operators: Option<usize>,
    /// Unknown (NXDOMAIN) names to list; `None`: a tenth of the known ones, at least 100.
    pub unknown: Option<usize>,
    pub seed: u64,
    pub apex: String,
    /// Leave out a 2-digit MNC whose zero-padded spelling is also a real 3-digit MNC.
    pub skip_colliding: bool,
    /// Delete `*.toml` already in `out` first.
    pub force: bool,
}

/// One operator to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub mcc: String,
    pub mnc: String,
    /// Free text for the file's comment (country, brand, operator).
    pub label: String,
}

/// What `gen-zones` wrote.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    pub files: usize,
    pub real: usize,
    pub synthetic: usize,
    pub skipped_colliding: usize,
    pub known_names: usize,
    pub unknown_names: usize,
}

/// Splits one CSV line, honouring double quotes (`""` inside quotes is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads the (mcc, mnc) pairs of `data/mcc-mnc-pairs.csv` (header line first; columns
/// `mcc, mnc, …, countries (5), …, brand (7), operator (8)`).
pub fn read_pairs(path: &Path) -> Result<Vec<Operator>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header = csv_fields(lines.next().unwrap_or_default());
    if header.first().map(String::as_str) != Some("mcc")
        || header.get(1).map(String::as_str) != Some("mnc")
    {
        bail!("{}: expected a header starting `mcc,mnc`", path.display());
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let (country, brand, operator) = (col("countries"), col("brand"), col("operator"));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_fields(line);
        let (mcc, mnc) = (
            f[0].trim().to_string(),
            f.get(1).map(|s| s.trim().to_string()).unwrap_or_default(),
        );
        if mcc.len() != 3 || !all_digits(&mcc) || !(2..=3).contains(&mnc.len()) || !all_digits(&mnc)
        {
            bail!(
                "{} line {}: bad mcc/mnc {mcc:?}/{mnc:?}",
                path.display(),
                i + 2
            );
        }
        if !seen.insert((mcc.clone(), mnc.clone())) {
            continue;
        }
        let get = |c: Option<usize>| {
            c.and_then(|c| f.get(c))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let parts: Vec<String> = [get(country), get(brand), get(operator)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        out.push(Operator {
            mcc,
            mnc,
            label: parts.join(" / "),
        });
    }
    Ok(out)
}

/// The bsf name of an operator.
pub fn bsf_name(mcc: &str, mnc: &str, apex: &str) -> String {
    format!("bsf.mnc{mnc}.mcc{mcc}.{apex}")
}

/// The operators to write: real pairs first, then synthetic ones up to `count`.
pub fn choose_operators(
    real: &[Operator],
    count: Option<usize>,
    skip_colliding: bool,
) -> (Vec<Operator>, usize) {
    let all: HashSet<(&str, &str)> = real
        .iter()
        .map(|o| (o.mcc.as_str(), o.mnc.as_str()))
        .collect();
    let mut skipped = 0;
    let mut ops: Vec<Operator> = Vec::new();
    for o in real {
        if skip_colliding
            && o.mnc.len() == 2
            && all.contains(&(o.mcc.as_str(), format!("0{}", o.mnc).as_str()))
        {
            skipped += 1;
            continue;
        }
        ops.push(o.clone());
    }
    let want = count.unwrap_or(ops.len());
    if want <= ops.len() {
        ops.truncate(want);
        return (ops, skipped);
    }
    let used: BTreeSet<&str> = real.iter().map(|o| o.mcc.as_str()).collect();
    let mut mcc = 100u32;
    'outer: while ops.len() < want {
        while used.contains(format!("{mcc:03}").as_str()) {
            mcc += 1;
        }
        if mcc > 999 {
            break 'outer;
        }
        for mnc in 0..1000u32 {
            if ops.len() >= want {
                break 'outer;
            }
            ops.push(Operator {
                mcc: format!("{mcc:03}"),
                mnc: format!("{mnc:03}"),
                label: "synthetic".into(),
            });
        }
        mcc += 1;
    }
    (ops, skipped)
}

fn op_seed(seed: u64, o: &Operator) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a over "mcc-mnc"
    for b in o
        .mcc
        .bytes()
        .chain(std::iter::once(b'-'))
        .chain(o.mnc.bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h ^ seed.rotate_left(17)
}

/// The TOML template of one operator (format of CONTRACT.md). The `addresses` line is kept on
/// one line: the reload probe rewrites it.
pub fn template(o: &Operator, seed: u64) -> String {
    let mut r = Rng::new(op_seed(seed, o));
    let mut s = String::new();
    let label: String = o
        .label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _ = writeln!(
        s,
        "# Generated by bsf-bench gen-zones (seed {seed}). {label}"
    );
    let _ = writeln!(s, "mcc = \"{}\"", o.mcc);
    let _ = writeln!(s, "mnc = [\"{}\"]", o.mnc);
    let ttl = match r.below(10) {
        0 => 60,
        1 => 3600,
        _ => 300,
    };
    let _ = writeln!(s, "ttl = {ttl}");
    let nets = ["192.0.2", "198.51.100", "203.0.113"];
    let v4 = format!("{}.{}", nets[r.below(3) as usize], 1 + r.below(254));
    let mut addrs = vec![v4.clone()];
    let v6 = format!("2001:db8:{}:{}::{:x}", o.mcc, o.mnc, 1 + r.below(0xfffe));
    if r.chance(70) {
        addrs.push(v6.clone());
    }
    let quoted: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let _ = writeln!(s, "addresses = [{}]", quoted.join(", "));
    let mnc3 = format!("{:0>3}", o.mnc);
    let host = |r: &mut Rng, n: u32| -> String {
        match r.below(10) {
            0..=5 => format!("bs{n}.mnc{mnc3}.mcc{}.iot.example", o.mcc),
            6..=8 => v4.clone(),
            _ => format!("[{v6}]"),
        }
    };
    let port = |r: &mut Rng, default: u16| -> String {
        match r.below(10) {
            0..=5 => String::new(),
            6..=8 => format!(":{default}"),
            _ => format!(":{}", 10_000 + default),
        }
    };
    let mut boots: Vec<(String, u16)> = Vec::new();
    let h = host(&mut r, 1);
    boots.push((format!("coaps://{h}{}", port(&mut r, 5684)), 10));
    if r.chance(20) {
        // A second coaps server: always by name, so its URI differs from the first.
        let h = format!("bs2.mnc{mnc3}.mcc{}.iot.example", o.mcc);
        boots.push((format!("coaps://{h}{}", port(&mut r, 5684)), 20));
    }
    if r.chance(30) {
        let h = host(&mut r, 1);
        boots.push((format!("coap://{h}{}", port(&mut r, 5683)), 30));
    }
    if r.chance(25) {
        let h = host(&mut r, 1);
        boots.push((format!("coaps+tcp://{h}{}", port(&mut r, 5684)), 10));
    }
    if r.chance(10) {
        let h = host(&mut r, 1);
        boots.push((format!("coap+tcp://{h}{}", port(&mut r, 5683)), 30));
    }
    for (uri, prio) in boots {
        let _ = writeln!(
            s,
            "\n[[bootstrap]]\nuri = \"{uri}\"\npriority = {prio}\nweight = {}",
            1 + r.below(3)
        );
    }
    s
}

/// Known names (each operator's bsf name; a 2-digit MNC also in its zero-padded spelling
/// unless that is another operator's) and `unknown` names of PLMNs that have no template.
pub fn names_for(ops: &[Operator], apex: &str, unknown: usize, seed: u64) -> NameList {
    let have: HashSet<(&str, &str)> = ops
        .iter()
        .map(|o| (o.mcc.as_str(), o.mnc.as_str()))
        .collect();
    let mut list = NameList::default();
    for o in ops {
        list.known.push(bsf_name(&o.mcc, &o.mnc, apex));
        if o.mnc.len() == 2 {
            let padded = format!("0{}", o.mnc);
            if !have.contains(&(o.mcc.as_str(), padded.as_str())) {
                list.known.push(bsf_name(&o.mcc, &padded, apex));
            }
        }
    }
    // An unknown PLMN must not be reachable through padding: `mnc0NN` is answered for a
    // 2-digit `NN`. The other direction (`mncNN` when only `0NN` exists) should be NXDOMAIN
    // too, but it is an edge case, not the "unknown operator" this list is for: avoid it.
    let taken = |mcc: &str, mnc: &str| -> bool {
        have.contains(&(mcc, mnc))
            || (mnc.len() == 3 && mnc.starts_with('0') && have.contains(&(mcc, &mnc[1..])))
            || (mnc.len() == 2 && have.contains(&(mcc, format!("0{mnc}").as_str())))
    };
    let mccs: Vec<&str> = {
        let set: BTreeSet<&str> = ops.iter().map(|o| o.mcc.as_str()).collect();
        set.into_iter().collect()
    };
    let mut r = Rng::new(seed ^ 0x0BAD_0BAD);
    let mut seen = HashSet::new();
    let mut guard = 0;
    while list.unknown.len() < unknown && guard < unknown * 100 + 1000 {
        guard += 1;
        let mcc = if !mccs.is_empty() && r.chance(80) {
            mccs[r.below(mccs.len() as u64) as usize].to_string()
        } else {
            format!("{:03}", 100 + r.below(900))
        };
        let mnc = if r.chance(50) {
            format!("{:02}", r.below(100))
        } else {
            format!("{:03}", r.below(1000))
        };
        if taken(&mcc, &mnc) || !seen.insert((mcc.clone(), mnc.clone())) {
            continue;
        }
        list.unknown.push(bsf_name(&mcc, &mnc, apex));
    }
    list
}

/// Writes the templates and the names file.
pub fn generate(cfg: &GenConfig) -> Result<GenSummary> {
    let real = read_pairs(&cfg.csv)?;
    let (ops, skipped) = choose_operators(&real, cfg.operators, cfg.skip_colliding);
    if ops.is_empty() {
        bail!("no operators to write");
    }
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let existing: Vec<PathBuf> = std::fs::read_dir(&cfg.out)
        .with_context(|| format!("listing {}", cfg.out.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    if !existing.is_empty() {
        if !cfg.force {
            bail!(
                "{} already holds {} *.toml files; pass --force to replace them",
                cfg.out.display(),
                existing.len()
            );
        }
        for p in existing {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let real_set: HashSet<(&str, &str)> = real
        .iter()
        .map(|o| (o.mcc.as_str(), o.mnc.as_str()))
        .collect();
    let mut summary = GenSummary {
        skipped_colliding: skipped,
        ..GenSummary::default()
    };
    for o in &ops {
        let path = cfg.out.join(format!("{}-{}.toml", o.mcc, o.mnc));
        std::fs::write(&path, template(o, cfg.seed))
            .with_context(|| format!("writing {}", path.display()))?;
        summary.files += 1;
        if real_set.contains(&(o.mcc.as_str(), o.mnc.as_str())) {
            summary.real += 1;
        } else {
            summary.synthetic += 1;
        }
    }
    let unknown = cfg.unknown.unwrap_or((ops.len() / 10).max(100));
    let names = names_for(&ops, &cfg.apex, unknown, cfg.seed);
    summary.known_names = names.known.len();
    summary.unknown_names = names.unknown.len();
    let header = format!(
        "bsf-bench gen-zones: {} operators ({} real, {} synthetic), apex {}, seed {}\n<name> known|unknown",
        summary.files, summary.real, summary.synthetic, cfg.apex, cfg.seed
    );
    mix::write_names(&cfg.names, &names, &header)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(mcc: &str, mnc: &str) -> Operator {
        Operator {
            mcc: mcc.into(),
            mnc: mnc.into(),
            label: String::new(),
        }
    }

    #[test]
    fn splits_quoted_csv() {
        assert_eq!(
            csv_fields(r#"1,"a, b","say ""hi""",x"#),
            vec!["1", "a, b", "say \"hi\"", "x"]
        );
    }

    #[test]
    fn synthetic_operators_are_unique_and_avoid_real_mccs() {
        let real = vec![op("100", "01"), op("202", "01")];
        let (ops, _) = choose_operators(&real, Some(2500), false);
        assert_eq!(ops.len(), 2500);
        let set: HashSet<(String, String)> =
            ops.iter().map(|o| (o.mcc.clone(), o.mnc.clone())).collect();
        assert_eq!(set.len(), 2500);
        assert!(ops[2..]
            .iter()
            .all(|o| o.mcc != "100" && o.mcc != "202" && o.mnc.len() == 3));
    }

    #[test]
    fn colliding_pairs_can_be_skipped() {
        let real = vec![op("708", "02"), op("708", "002"), op("708", "03")];
        let (ops, skipped) = choose_operators(&real, None, true);
        assert_eq!(skipped, 1);
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn template_is_deterministic_and_has_coaps() {
        let o = op("313", "460");
        let t = template(&o, 1);
        assert_eq!(t, template(&o, 1));
        assert!(t.contains("mcc = \"313\"") && t.contains("mnc = [\"460\"]"));
        assert!(t.contains("uri = \"coaps://"));
        assert_eq!(
            t.lines().filter(|l| l.starts_with("addresses = [")).count(),
            1
        );
    }

    #[test]
    fn templates_vary() {
        let mut coap = 0;
        let mut two = 0;
        for n in 0..200 {
            let t = template(&op("999", &format!("{n:03}")), 1);
            coap += usize::from(t.contains("\"coap://"));
            two += usize::from(t.matches("coaps://").count() == 2);
        }
        assert!(coap > 20 && coap < 100, "coap {coap}");
        assert!(two > 10 && two < 80, "two {two}");
        for n in 0..500 {
            let t = template(&op("998", &format!("{n:03}")), 7);
            let uris: Vec<&str> = t.lines().filter(|l| l.starts_with("uri = ")).collect();
            let set: HashSet<&&str> = uris.iter().collect();
            assert_eq!(set.len(), uris.len(), "duplicate URI in\n{t}");
        }
    }

    #[test]
    fn unknown_names_are_really_unknown() {
        let ops = vec![op("202", "01"), op("202", "005"), op("310", "260")];
        let names = names_for(&ops, "lwm2m.org", 200, 1);
        assert!(names
            .known
            .contains(&"bsf.mnc01.mcc202.lwm2m.org".to_string()));
        assert!(names
            .known
            .contains(&"bsf.mnc001.mcc202.lwm2m.org".to_string()));
        for bad in [
            "bsf.mnc01.mcc202.lwm2m.org",
            "bsf.mnc001.mcc202.lwm2m.org",
            "bsf.mnc005.mcc202.lwm2m.org",
            "bsf.mnc05.mcc202.lwm2m.org",
        ] {
            assert!(!names.unknown.contains(&bad.to_string()));
        }
        assert_eq!(names.unknown.len(), 200);
    }
}
