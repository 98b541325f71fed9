//! PLMN identities and the names derived from them.
//!
//! Owns the rules of DESIGN.md §2: an IMSI is MCC (3 digits) + MNC (2 or 3 digits) + MSIN,
//! at most 15 digits; the MNC length is not written in the IMSI, so it comes from the SIM
//! (`--mnc-digits`) or, as a guess, from a table of MCCs built into the binary; and a PLMN
//! maps to `bsf.mnc<MNC>.mcc<MCC>.<apex>` and back. A 2-digit MNC has two spellings in names:
//! as listed (`mnc15`) and zero-padded as 3GPP TS 23.003 writes it (`mnc015`).

use std::fmt;
use std::sync::OnceLock;

use hickory_proto::rr::Name;

/// The table of MCCs whose MNCs have 3 digits (derived from the real MCC/MNC list; see
/// `data/PROVENANCE.md`). Embedded so the binary needs no data files at run time.
const THREE_DIGIT_TABLE: &str = include_str!("../data/three-digit-mnc-mccs.txt");

/// Errors in user-supplied IMSIs, MCCs and MNCs. Messages say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlmnError {
    #[error("IMSI must contain digits only, found {0:?}")]
    NonDigit(String),
    #[error("IMSI must have 6 to 15 digits, found {0}")]
    BadLength(usize),
    #[error("MCC must be exactly 3 digits, found {0:?}")]
    BadMcc(String),
    #[error("MNC must be 2 or 3 digits, found {0:?}")]
    BadMnc(String),
    #[error("--mnc-digits must be 2 or 3, found {0}")]
    BadMncDigits(u8),
}

/// Mobile Country Code: exactly three ASCII digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mcc([u8; 3]);

impl Mcc {
    pub fn parse(text: &str) -> Result<Self, PlmnError> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(PlmnError::BadMcc(text.to_string()));
        }
        Ok(Mcc([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Constructed from ASCII digits only.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Mcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mobile Network Code: 2 or 3 ASCII digits, leading zeros significant (`01` ≠ `001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mnc {
    digits: [u8; 3],
    len: u8,
}

impl Mnc {
    pub fn parse(text: &str) -> Result<Self, PlmnError> {
        let bytes = text.as_bytes();
        if !(2..=3).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(PlmnError::BadMnc(text.to_string()));
        }
        let mut digits = [b'0'; 3];
        digits[..bytes.len()].copy_from_slice(bytes);
        Ok(Mnc {
            digits,
            len: bytes.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("??")
    }

    pub fn digit_count(&self) -> u8 {
        self.len
    }

    /// The 3GPP TS 23.003 spelling: a 2-digit MNC padded with a leading zero.
    pub fn padded(&self) -> Mnc {
        if self.len == 3 {
            return *self;
        }
        Mnc {
            digits: [b'0', self.digits[0], self.digits[1]],
            len: 3,
        }
    }

    /// For a padded spelling `0ab`, the 2-digit MNC `ab` it may stand for.
    pub fn unpadded(&self) -> Option<Mnc> {
        (self.len == 3 && self.digits[0] == b'0').then_some(Mnc {
            digits: [self.digits[1], self.digits[2], b'0'],
            len: 2,
        })
    }
}

impl fmt::Display for Mnc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public land mobile network: one operator's network as identified by MCC + MNC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plmn {
    pub mcc: Mcc,
    pub mnc: Mnc,
}

impl fmt::Display for Plmn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.mcc, self.mnc)
    }
}

impl Plmn {
    pub fn new(mcc: Mcc, mnc: Mnc) -> Self {
        Plmn { mcc, mnc }
    }

    /// `bsf.mnc<MNC>.mcc<MCC>.<apex>` with the MNC spelled as given.
    pub fn bsf_name(&self, apex: &Name) -> Result<Name, hickory_proto::ProtoError> {
        let relative = Name::from_ascii(format!("bsf.mnc{}.mcc{}", self.mnc, self.mcc))?;
        relative.append_domain(apex)
    }

    /// Every spelling under which this PLMN's names are served: the MNC as listed, and for a
    /// 2-digit MNC also its zero-padded form.
    pub fn spellings(&self) -> impl Iterator<Item = Plmn> {
        let padded = (self.mnc.digit_count() == 2).then(|| Plmn::new(self.mcc, self.mnc.padded()));
        std::iter::once(*self).chain(padded)
    }
}

/// How sure we are of an MNC's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MncLengthSource {
    /// Given by the caller (from the SIM's EF_AD).
    Given,
    /// Every MNC of this MCC in the table has this length.
    Table,
    /// The MCC mixes 2- and 3-digit MNCs; the majority length was taken.
    Guess,
}

/// An IMSI split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imsi {
    pub plmn: Plmn,
    pub msin: String,
    pub mnc_length_source: MncLengthSource,
}

/// Which MNC length an MCC uses, per the embedded table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MccMncLength {
    AlwaysTwo,
    AlwaysThree,
    MixedMostlyThree,
    MixedMostlyTwo,
}

fn three_digit_table() -> &'static std::collections::HashMap<Mcc, MccMncLength> {
    static TABLE: OnceLock<std::collections::HashMap<Mcc, MccMncLength>> = OnceLock::new();
    TABLE.get_or_init(|| {
        THREE_DIGIT_TABLE
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let mcc = Mcc::parse(fields.next()?).ok()?;
                let class = match fields.next()? {
                    "3" => MccMncLength::AlwaysThree,
                    "mixed-mostly-3" => MccMncLength::MixedMostlyThree,
                    "mixed-mostly-2" => MccMncLength::MixedMostlyTwo,
                    _ => return None,
                };
                Some((mcc, class))
            })
            .collect()
    })
}

/// The MNC length the table gives for an MCC (MCCs not in the table use 2 digits).
pub fn mnc_length_of(mcc: Mcc) -> MccMncLength {
    three_digit_table()
        .get(&mcc)
        .copied()
        .unwrap_or(MccMncLength::AlwaysTwo)
}

/// Splits an IMSI. `mnc_digits` is the SIM's MNC length when known; otherwise the table decides,
/// and `Imsi::mnc_length_source` says whether that was certain or a guess.
pub fn parse_imsi(text: &str, mnc_digits: Option<u8>) -> Result<Imsi, PlmnError> {
    let text = text.trim();
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_digit()) {
        return Err(PlmnError::NonDigit(bad.to_string()));
    }
    if !(6..=15).contains(&text.len()) {
        return Err(PlmnError::BadLength(text.len()));
    }
    let mcc = Mcc::parse(&text[..3])?;
    let (length, source) = match mnc_digits {
        Some(n @ (2 | 3)) => (n as usize, MncLengthSource::Given),
        Some(other) => return Err(PlmnError::BadMncDigits(other)),
        None => match mnc_length_of(mcc) {
            MccMncLength::AlwaysTwo => (2, MncLengthSource::Table),
            MccMncLength::AlwaysThree => (3, MncLengthSource::Table),
            MccMncLength::MixedMostlyThree => (3, MncLengthSource::Guess),
            MccMncLength::MixedMostlyTwo => (2, MncLengthSource::Guess),
        },
    };
    let mnc = Mnc::parse(&text[3..3 + length])?;
    Ok(Imsi {
        plmn: Plmn::new(mcc, mnc),
        msin: text[3 + length..].to_string(),
        mnc_length_source: source,
    })
}

/// The owner names of one PLMN's subtree, read back from a query name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlmnName {
    /// `mcc<MCC>.<apex>`
    Country(Mcc),
    /// `mnc<MNC>.mcc<MCC>.<apex>`
    Network(Plmn),
    /// `bsf.mnc<MNC>.mcc<MCC>.<apex>`
    Bsf(Plmn),
    /// `_udp.bsf…` or `_tcp.bsf…`
    Transport(Plmn),
    /// `_coap._udp.bsf…` and the other three service names
    Service(Plmn),
}

impl PlmnName {
    pub fn plmn(&self) -> Option<Plmn> {
        match *self {
            PlmnName::Country(_) => None,
            PlmnName::Network(p)
            | PlmnName::Bsf(p)
            | PlmnName::Transport(p)
            | PlmnName::Service(p) => Some(p),
        }
    }
}

/// Reads a name below `apex` as one of the names of a PLMN's subtree. Case-insensitive. The
/// MNC is returned as spelled in the name; whether `mnc015` means `15` is the zone's decision.
pub fn parse_plmn_name(name: &Name, apex: &Name) -> Option<PlmnName> {
    if !apex.zone_of(name) {
        return None;
    }
    let extra = name.num_labels().checked_sub(apex.num_labels())? as usize;
    if extra == 0 || extra > 5 {
        return None;
    }
    // Labels from the apex outwards.
    let labels: Vec<&[u8]> = name.iter().take(extra).collect();
    let label = |i_from_apex: usize| labels[extra - 1 - i_from_apex];
    let mcc = strip_prefix_ci(label(0), b"mcc")
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| Mcc::parse(d).ok())?;
    if extra == 1 {
        return Some(PlmnName::Country(mcc));
    }
    let mnc = strip_prefix_ci(label(1), b"mnc")
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| Mnc::parse(d).ok())?;
    let plmn = Plmn::new(mcc, mnc);
    if extra == 2 {
        return Some(PlmnName::Network(plmn));
    }
    if !label(2).eq_ignore_ascii_case(b"bsf") {
        return None;
    }
    if extra == 3 {
        return Some(PlmnName::Bsf(plmn));
    }
    let proto = label(3);
    if !(proto.eq_ignore_ascii_case(b"_udp") || proto.eq_ignore_ascii_case(b"_tcp")) {
        return None;
    }
    if extra == 4 {
        return Some(PlmnName::Transport(plmn));
    }
    let service = label(4);
    (service.eq_ignore_ascii_case(b"_coap") || service.eq_ignore_ascii_case(b"_coaps"))
        .then_some(PlmnName::Service(plmn))
}

fn strip_prefix_ci<'a>(label: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (label.len() > prefix.len() && label[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &label[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apex() -> Name {
        Name::from_ascii("lwm2m.org.").unwrap()
    }

    #[test]
    fn seed_example_splits_with_three_digit_mnc() {
        let imsi = parse_imsi("313460000000001", None).unwrap();
        assert_eq!(imsi.plmn.mcc.as_str(), "313");
        assert_eq!(imsi.plmn.mnc.as_str(), "460");
        assert_eq!(imsi.msin, "000000001");
        assert_eq!(imsi.mnc_length_source, MncLengthSource::Table);
        assert_eq!(
            imsi.plmn.bsf_name(&apex()).unwrap().to_ascii(),
            "bsf.mnc460.mcc313.lwm2m.org."
        );
    }

    #[test]
    fn two_digit_mnc_from_table_and_override() {
        let imsi = parse_imsi("262011234567890", None).unwrap();
        assert_eq!(imsi.plmn.mnc.as_str(), "01");
        assert_eq!(imsi.mnc_length_source, MncLengthSource::Table);
        let forced = parse_imsi("262011234567890", Some(3)).unwrap();
        assert_eq!(forced.plmn.mnc.as_str(), "011");
        assert_eq!(forced.mnc_length_source, MncLengthSource::Given);
    }

    #[test]
    fn mixed_mcc_is_a_guess() {
        let imsi = parse_imsi("405030123456789", None).unwrap();
        assert_eq!(imsi.plmn.mnc.as_str(), "030");
        assert_eq!(imsi.mnc_length_source, MncLengthSource::Guess);
        let imsi = parse_imsi("208011234567890", None).unwrap();
        assert_eq!(imsi.plmn.mnc.as_str(), "01");
        assert_eq!(imsi.mnc_length_source, MncLengthSource::Guess);
    }

    #[test]
    fn bad_imsis_are_rejected() {
        assert_eq!(parse_imsi("31346", None), Err(PlmnError::BadLength(5)));
        assert_eq!(
            parse_imsi("3134600000000012", None),
            Err(PlmnError::BadLength(16))
        );
        assert_eq!(
            parse_imsi("31346000000000a", None),
            Err(PlmnError::NonDigit("a".into()))
        );
        assert_eq!(
            parse_imsi("-13460000000001", None),
            Err(PlmnError::NonDigit("-".into()))
        );
        assert_eq!(
            parse_imsi("313460000000001", Some(4)),
            Err(PlmnError::BadMncDigits(4))
        );
        assert!(parse_imsi("", None).is_err());
    }

    #[test]
    fn mnc_spellings() {
        let mnc = Mnc::parse("15").unwrap();
        assert_eq!(mnc.padded().as_str(), "015");
        assert_eq!(mnc.padded().unpadded(), Some(mnc));
        assert_eq!(Mnc::parse("115").unwrap().unpadded(), None);
        assert!(Mnc::parse("1").is_err());
        assert!(Mnc::parse("1234").is_err());
        assert!(Mnc::parse("1a").is_err());
        let plmn = Plmn::new(Mcc::parse("262").unwrap(), mnc);
        let names: Vec<String> = plmn
            .spellings()
            .map(|p| p.bsf_name(&apex()).unwrap().to_ascii())
            .collect();
        assert_eq!(
            names,
            [
                "bsf.mnc15.mcc262.lwm2m.org.",
                "bsf.mnc015.mcc262.lwm2m.org."
            ]
        );
    }

    #[test]
    fn names_read_back_case_insensitively() {
        let name = Name::from_ascii("_CoAPs._UDP.BSF.Mnc460.MCC313.lwm2m.ORG.").unwrap();
        let parsed = parse_plmn_name(&name, &apex()).unwrap();
        assert!(matches!(parsed, PlmnName::Service(_)));
        let plmn = parsed.plmn().unwrap();
        assert_eq!((plmn.mcc.as_str(), plmn.mnc.as_str()), ("313", "460"));
        let country = Name::from_ascii("mcc313.lwm2m.org.").unwrap();
        assert!(matches!(
            parse_plmn_name(&country, &apex()),
            Some(PlmnName::Country(_))
        ));
        for bad in [
            "lwm2m.org.",
            "bsf.mnc4600.mcc313.lwm2m.org.",
            "bsf.mnc46.mcc31.lwm2m.org.",
            "www.mnc46.mcc313.lwm2m.org.",
            "_http._udp.bsf.mnc46.mcc313.lwm2m.org.",
            "bsf.mnc460.mcc313.example.org.",
        ] {
            let name = Name::from_ascii(bad).unwrap();
            assert_eq!(parse_plmn_name(&name, &apex()), None, "{bad}");
        }
    }
}
