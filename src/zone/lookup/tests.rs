//! The answer function checked against every row of DESIGN.md §3.

use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::{lookup, Outcome, Transport};
use crate::config::Settings;
use crate::template::TemplateSet;
use crate::zone::{build, Zone, URI_TYPE};

const SEED: &str = r#"mcc = "313"
mnc = ["460"]
ttl = 300
addresses = ["192.0.2.10", "2001:db8::10"]
[[bootstrap]]
uri = "coaps://bs.example-op.net:5684"
[[bootstrap]]
uri = "coap://192.0.2.10"
priority = 20
weight = 5
"#;

const TWO_DIGIT: &str = r#"mcc = "262"
mnc = ["01"]
ttl = 120
addresses = ["198.51.100.20"]
[[bootstrap]]
uri = "coaps+tcp://198.51.100.20"
"#;

const DEFAULT: &str = r#"default = true
ttl = 60
[[bootstrap]]
uri = "coaps://bs.mnc{mnc}.mcc{mcc}.hub.example:5684"
"#;

fn zone_with(settings: &str, files: &[(&str, &str)]) -> Zone {
    let settings = Settings::parse(Path::new("s.toml"), settings).unwrap();
    let set = TemplateSet::from_texts(files.iter().map(|(p, t)| (Path::new(*p), *t))).unwrap();
    build(&settings.zone, &set, 2024010101, None).unwrap()
}

fn zone() -> Zone {
    zone_with("", &[("313-460.toml", SEED), ("262-01.toml", TWO_DIGIT)])
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn ask(zone: &Zone, qname: &str, qtype: RecordType) -> super::Answer {
    lookup(zone, &name(qname), qtype, DNSClass::IN, Transport::Udp)
}

fn assert_negative(answer: &super::Answer, outcome: Outcome, zone: &Zone) {
    assert_eq!(answer.outcome, outcome);
    assert!(answer.authoritative());
    assert!(answer.answers.is_empty());
    assert!(answer.additional.is_empty());
    assert_eq!(answer.authority.len(), 1);
    let soa = &answer.authority[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.name, name("lwm2m.org."));
    // RFC 2308: min(SOA TTL 3600, minimum 300).
    assert_eq!(soa.ttl, 300);
    assert_eq!(soa.ttl, zone.negative_ttl());
}

#[test]
fn apex_soa_and_ns_with_glue() {
    let z = zone();
    let a = ask(&z, "lwm2m.org.", RecordType::SOA);
    assert_eq!(
        (a.outcome, a.rcode()),
        (Outcome::Hit, ResponseCode::NoError)
    );
    let RData::SOA(soa) = &a.answers[0].data else {
        panic!("not a SOA")
    };
    assert_eq!(soa.serial, 2024010101);
    assert_eq!(soa.mname, name("ns1.lwm2m.org."));
    assert_eq!(a.answers[0].ttl, 3600);

    let a = ask(&z, "lwm2m.org.", RecordType::NS);
    assert_eq!(a.answers.len(), 1);
    assert!(a.authority.is_empty());
    let glue: Vec<_> = a
        .additional
        .iter()
        .map(|r| (r.name.to_ascii(), r.record_type()))
        .collect();
    assert_eq!(
        glue,
        [
            ("ns1.lwm2m.org.".to_string(), RecordType::A),
            ("ns1.lwm2m.org.".to_string(), RecordType::AAAA)
        ]
    );
}

#[test]
fn bsf_name_addresses_and_txt() {
    let z = zone();
    let a = ask(&z, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::A);
    assert_eq!(a.outcome, Outcome::Hit);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].data, RData::A("192.0.2.10".parse().unwrap()));
    assert_eq!(a.answers[0].ttl, 300);
    assert_eq!(a.answers[0].dns_class, DNSClass::IN);

    let a = ask(&z, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::AAAA);
    assert_eq!(
        a.answers[0].data,
        RData::AAAA("2001:db8::10".parse().unwrap())
    );

    let a = ask(&z, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::TXT);
    let texts: Vec<String> = a
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::TXT(t) => String::from_utf8(t.txt_data[0].to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        [
            "uri=coaps://bs.example-op.net:5684",
            "uri=coap://192.0.2.10"
        ]
    );
}

#[test]
fn srv_and_uri_per_transport_with_additional() {
    let z = zone();
    let a = ask(
        &z,
        "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::SRV,
    );
    assert_eq!(a.answers.len(), 1);
    let RData::SRV(srv) = &a.answers[0].data else {
        panic!()
    };
    assert_eq!((srv.priority, srv.weight, srv.port), (10, 1, 5684));
    assert_eq!(srv.target, name("bs.example-op.net."));
    // Out-of-zone target: nothing to add.
    assert!(a.additional.is_empty());

    // An address-literal URI points the SRV at the bsf name, whose addresses go along.
    let a = ask(
        &z,
        "_coap._udp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::SRV,
    );
    let RData::SRV(srv) = &a.answers[0].data else {
        panic!()
    };
    assert_eq!((srv.priority, srv.weight, srv.port), (20, 5, 5683));
    assert_eq!(srv.target, name("bsf.mnc460.mcc313.lwm2m.org."));
    let extra: Vec<_> = a.additional.iter().map(|r| r.record_type()).collect();
    assert_eq!(extra, [RecordType::A, RecordType::AAAA]);

    let a = ask(&z, "_coaps._udp.bsf.mnc460.mcc313.lwm2m.org.", URI_TYPE);
    assert_eq!(a.answers.len(), 1);
    let RData::Unknown { rdata, .. } = &a.answers[0].data else {
        panic!()
    };
    assert_eq!(
        crate::zone::parse_uri_rdata(&rdata.anything),
        Some((10, 1, "coaps://bs.example-op.net:5684"))
    );

    // Transports the template does not enable are not there.
    let a = ask(
        &z,
        "_coaps._tcp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::SRV,
    );
    assert_negative(&a, Outcome::NxDomain, &z);
}

#[test]
fn empty_non_terminals_are_nodata() {
    let z = zone();
    for ent in [
        "mcc313.lwm2m.org.",
        "mnc460.mcc313.lwm2m.org.",
        "_udp.bsf.mnc460.mcc313.lwm2m.org.",
    ] {
        let a = ask(&z, ent, RecordType::A);
        assert_negative(&a, Outcome::NoData, &z);
        assert_eq!(a.rcode(), ResponseCode::NoError, "{ent}");
    }
}

#[test]
fn missing_type_is_nodata_and_unknown_operator_nxdomain() {
    let z = zone();
    let a = ask(&z, "bsf.mnc460.mcc313.lwm2m.org.", RecordType::MX);
    assert_negative(&a, Outcome::NoData, &z);
    let a = ask(&z, "bsf.mnc999.mcc313.lwm2m.org.", RecordType::A);
    assert_negative(&a, Outcome::NxDomain, &z);
    assert_eq!(a.rcode(), ResponseCode::NXDomain);
    let a = ask(&z, "www.bsf.mnc460.mcc313.lwm2m.org.", RecordType::A);
    assert_negative(&a, Outcome::NxDomain, &z);
}

#[test]
fn outside_the_zone_and_other_classes_are_refused() {
    let z = zone();
    for qname in [
        "org.",
        "example.com.",
        "bsf.mnc460.mcc313.lwm2m.org.example.",
    ] {
        let a = ask(&z, qname, RecordType::A);
        assert_eq!(
            (a.outcome, a.rcode()),
            (Outcome::Refused, ResponseCode::Refused)
        );
        assert!(!a.authoritative());
        assert!(a.answers.is_empty() && a.authority.is_empty());
    }
    let a = lookup(
        &z,
        &name("lwm2m.org."),
        RecordType::SOA,
        DNSClass::CH,
        Transport::Udp,
    );
    assert_eq!(a.outcome, Outcome::Refused);
    let a = lookup(
        &z,
        &name("lwm2m.org."),
        RecordType::SOA,
        DNSClass::ANY,
        Transport::Udp,
    );
    assert_eq!(a.outcome, Outcome::Hit);
}

#[test]
fn two_digit_mnc_answers_both_spellings_case_insensitively() {
    let z = zone();
    for qname in [
        "bsf.mnc01.mcc262.lwm2m.org.",
        "BSF.MNC001.Mcc262.LWM2M.org.",
    ] {
        let a = ask(&z, qname, RecordType::A);
        assert_eq!(a.outcome, Outcome::Hit, "{qname}");
        assert_eq!(a.answers[0].ttl, 120);
        let a = ask(&z, &format!("_coaps._tcp.{qname}"), RecordType::SRV);
        let RData::SRV(srv) = &a.answers[0].data else {
            panic!()
        };
        // The SRV target is the bsf name in the spelling that was asked.
        assert_eq!(srv.target, name(qname).to_lowercase());
        assert_eq!(srv.port, 5684);
    }
}

#[test]
fn distinct_padded_networks_match_exactly() {
    let a = "mcc = \"708\"\nmnc = [\"02\"]\n[[bootstrap]]\nuri = \"coaps://two.example\"\n";
    let b = "mcc = \"708\"\nmnc = [\"002\"]\n[[bootstrap]]\nuri = \"coaps://three.example\"\n";
    let z = zone_with("", &[("a.toml", a), ("b.toml", b)]);
    let srv_target = |q: &str| match &ask(&z, q, RecordType::SRV).answers[0].data {
        RData::SRV(s) => s.target.to_ascii(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        srv_target("_coaps._udp.bsf.mnc02.mcc708.lwm2m.org."),
        "two.example."
    );
    assert_eq!(
        srv_target("_coaps._udp.bsf.mnc002.mcc708.lwm2m.org."),
        "three.example."
    );
}

#[test]
fn any_is_minimal_over_udp_and_full_over_tcp() {
    let z = zone();
    let q = name("bsf.mnc460.mcc313.lwm2m.org.");
    let udp = lookup(&z, &q, RecordType::ANY, DNSClass::IN, Transport::Udp);
    assert_eq!(udp.outcome, Outcome::Hit);
    let types: std::collections::BTreeSet<_> =
        udp.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "RFC 8482: one RRset over UDP");
    let tcp = lookup(&z, &q, RecordType::ANY, DNSClass::IN, Transport::Tcp);
    assert_eq!(tcp.answers.len(), 4, "A, AAAA and two TXT");
    let ent = lookup(
        &z,
        &name("mcc313.lwm2m.org."),
        RecordType::ANY,
        DNSClass::IN,
        Transport::Udp,
    );
    assert_eq!(ent.outcome, Outcome::NoData);
}

#[test]
fn default_template_only_when_enabled_and_never_over_a_file() {
    let files = [("313-460.toml", SEED), ("default.toml", DEFAULT)];
    let off = zone_with("", &files);
    let a = ask(
        &off,
        "_coaps._udp.bsf.mnc10.mcc208.lwm2m.org.",
        RecordType::SRV,
    );
    assert_eq!(a.outcome, Outcome::NxDomain);

    let on = zone_with("default-template = true\n", &files);
    let a = ask(
        &on,
        "_coaps._udp.bsf.mnc10.mcc208.lwm2m.org.",
        RecordType::SRV,
    );
    assert_eq!(a.outcome, Outcome::Hit);
    let RData::SRV(srv) = &a.answers[0].data else {
        panic!()
    };
    assert_eq!(srv.target, name("bs.mnc10.mcc208.hub.example."));
    assert_eq!(a.answers[0].ttl, 60);
    // Padded spelling under a 2-digit-only MCC fills {mnc} with the 2-digit MNC.
    let a = ask(
        &on,
        "_coaps._udp.bsf.mnc010.mcc262.lwm2m.org.",
        RecordType::SRV,
    );
    let RData::SRV(srv) = &a.answers[0].data else {
        panic!()
    };
    assert_eq!(srv.target, name("bs.mnc10.mcc262.hub.example."));
    assert_negative(
        &ask(&on, "mcc208.lwm2m.org.", RecordType::A),
        Outcome::NoData,
        &on,
    );
    assert_negative(
        &ask(&on, "mnc10.mcc208.lwm2m.org.", RecordType::A),
        Outcome::NoData,
        &on,
    );
    assert_negative(
        &ask(&on, "bsf.mnc10.mcc208.lwm2m.org.", RecordType::A),
        Outcome::NoData,
        &on,
    );
    // A network with a file is answered from its file only.
    let a = ask(
        &on,
        "_coaps._tcp.bsf.mnc460.mcc313.lwm2m.org.",
        RecordType::SRV,
    );
    assert_eq!(a.outcome, Outcome::NxDomain);
    assert_negative(
        &ask(&on, "foo.lwm2m.org.", RecordType::A),
        Outcome::NxDomain,
        &on,
    );
}

#[test]
fn same_content_ignores_serial_only() {
    let files = [("313-460.toml", SEED)];
    let settings = Settings::default();
    let set = TemplateSet::from_texts(files.iter().map(|(p, t)| (Path::new(*p), *t))).unwrap();
    let a = build(&settings.zone, &set, 1, None).unwrap();
    let b = build(&settings.zone, &set, 2, Some(&a)).unwrap();
    assert!(
        Arc::ptr_eq(
            a.parts.values().next().unwrap(),
            b.parts.values().next().unwrap()
        ),
        "unchanged part reused"
    );
    let c = build(&settings.zone, &set, 3, None).unwrap();
    assert!(a.same_content(&c), "equal content without sharing");
    assert!(a.same_content(&b));
    let other = zone();
    assert!(!a.same_content(&other));
}

#[test]
fn a_default_ttl_edit_changes_only_what_takes_the_default() {
    // No ttl of its own: takes default-ttl.
    let untimed = TWO_DIGIT.replace("ttl = 120\n", "");
    let untimed_default = DEFAULT.replace("ttl = 60\n", "");
    let build_with = |default_ttl: u32, files: &[(&str, &str)], previous: Option<&Zone>| {
        let settings = Settings::parse(
            Path::new("s.toml"),
            &format!("default-ttl = {default_ttl}\ndefault-template = true\n"),
        )
        .unwrap();
        let set = TemplateSet::from_texts(files.iter().map(|(p, t)| (Path::new(*p), *t))).unwrap();
        build(&settings.zone, &set, 7, previous).unwrap()
    };
    let part = |zone: &Zone, mcc: &str| zone.parts[&crate::plmn::Mcc::parse(mcc).unwrap()].clone();

    // Every template sets its own ttl: the edit changes nothing, and the parts are reused.
    let files = [
        ("313-460.toml", SEED),
        ("262-01.toml", TWO_DIGIT),
        ("default.toml", DEFAULT),
    ];
    let before = build_with(300, &files, None);
    let after = build_with(600, &files, Some(&before));
    assert!(after.same_content(&before));
    assert!(Arc::ptr_eq(&part(&before, "313"), &part(&after, "313")));
    assert!(Arc::ptr_eq(&part(&before, "262"), &part(&after, "262")));
    assert!(crate::zone::diff::diff(&before, &after).is_empty());

    // A template without one: its part is rebuilt with the new TTL, the other part reused.
    let files = [("313-460.toml", SEED), ("262-01.toml", untimed.as_str())];
    let before = build_with(300, &files, None);
    let after = build_with(600, &files, Some(&before));
    assert!(!after.same_content(&before));
    assert!(Arc::ptr_eq(&part(&before, "313"), &part(&after, "313")));
    assert!(!Arc::ptr_eq(&part(&before, "262"), &part(&after, "262")));
    let answer = ask(&after, "bsf.mnc01.mcc262.lwm2m.org.", RecordType::A);
    assert_eq!(answer.answers[0].ttl, 600);
    let changes = crate::zone::diff::diff(&before, &after);
    assert!(!changes.is_empty());
    assert!(changes
        .deleted
        .iter()
        .chain(&changes.added)
        .all(|r| r.name.to_ascii().ends_with("mcc262.lwm2m.org.")));

    // The default template (answering, as enabled here) without one: a change too.
    let files = [
        ("313-460.toml", SEED),
        ("default.toml", untimed_default.as_str()),
    ];
    let before = build_with(300, &files, None);
    let after = build_with(600, &files, Some(&before));
    assert!(!after.same_content(&before));
    let synthesized = ask(&after, "bsf.mnc10.mcc208.lwm2m.org.", RecordType::TXT);
    assert_eq!(synthesized.answers[0].ttl, 600);
}
