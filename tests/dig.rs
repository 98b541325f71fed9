//! The server as a user sees it through `dig` (Debian bind9-dnsutils): the README's quick-start
//! answers, EDNS variants, truncation with the automatic TCP retry, letter case, ANY, REFUSED
//! and NOTIMP. dig is always pointed at our loopback port explicitly.

mod common;

use common::*;

fn bundled() -> Server {
    Server::start(&bundled_zones(), None, &[])
}

fn status(output: &str) -> &str {
    output
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next())
        .unwrap_or("<no status>")
}

fn answers(output: &str) -> Vec<String> {
    let mut in_answer = false;
    let mut lines = Vec::new();
    for line in output.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
        } else if line.is_empty() {
            in_answer = false;
        } else if in_answer {
            lines.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    lines
}

#[test]
fn quick_start_answers() {
    if !have_tool("dig") {
        return;
    }
    let server = bundled();
    let out = dig(server.port, &["bsf.mnc460.mcc313.lwm2m.org", "A"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(out.contains("flags: qr aa rd;"), "AA set, RA clear: {out}");
    assert_eq!(
        answers(&out),
        ["bsf.mnc460.mcc313.lwm2m.org. 300 IN A 192.0.2.10"]
    );

    let out = dig(server.port, &["bsf.mnc460.mcc313.lwm2m.org", "TXT"]);
    assert_eq!(
        answers(&out),
        ["bsf.mnc460.mcc313.lwm2m.org. 300 IN TXT \"uri=coaps://bs.example-op.net:5684\""]
    );

    let out = dig(
        server.port,
        &["_coaps._udp.bsf.mnc460.mcc313.lwm2m.org", "SRV"],
    );
    assert_eq!(
        answers(&out),
        ["_coaps._udp.bsf.mnc460.mcc313.lwm2m.org. 300 IN SRV 10 1 5684 bs.example-op.net."]
    );

    let out = dig(
        server.port,
        &["_coaps._udp.bsf.mnc460.mcc313.lwm2m.org", "URI"],
    );
    assert_eq!(
        answers(&out),
        ["_coaps._udp.bsf.mnc460.mcc313.lwm2m.org. 300 IN URI 10 1 \"coaps://bs.example-op.net:5684\""]
    );

    let out = dig(server.port, &["bsf.mnc001.mcc262.lwm2m.org", "A"]);
    assert_eq!(
        answers(&out),
        ["bsf.mnc001.mcc262.lwm2m.org. 300 IN A 198.51.100.20"]
    );
}

#[test]
fn edns_variants_and_case() {
    if !have_tool("dig") {
        return;
    }
    let server = bundled();
    let out = dig(
        server.port,
        &["+bufsize=512", "BsF.MnC460.McC313.LwM2M.oRg", "A"],
    );
    assert!(out.contains("udp: 1232"), "OPT echoed with our size: {out}");
    assert!(
        out.contains(";BsF.MnC460.McC313.LwM2M.oRg."),
        "question case echoed: {out}"
    );
    assert_eq!(
        answers(&out),
        ["BsF.MnC460.McC313.LwM2M.oRg. 300 IN A 192.0.2.10"]
    );

    let out = dig(
        server.port,
        &["+noedns", "bsf.mnc460.mcc313.lwm2m.org", "A"],
    );
    assert!(!out.contains("OPT PSEUDOSECTION"), "{out}");
    assert_eq!(status(&out), "NOERROR");

    // dig +edns=1 gets BADVERS, then retries with version 0 by itself.
    let out = dig(
        server.port,
        &[
            "+edns=1",
            "+noednsnegotiation",
            "bsf.mnc460.mcc313.lwm2m.org",
            "A",
        ],
    );
    assert!(out.contains("BADVERS"), "{out}");
}

#[test]
fn truncated_answer_retried_over_tcp() {
    if !have_tool("dig") {
        return;
    }
    let mut big = String::from("mcc = \"001\"\nmnc = [\"01\"]\n");
    for i in 0..8 {
        big.push_str(&format!(
            "[[bootstrap]]\nuri = \"coaps://bootstrap-server-{i}.a-rather-long-operator-domain.example:5684/bs\"\n"
        ));
    }
    let (_dir, zones) = temp_zones(&[("001-01.toml", &big)]);
    let server = Server::start(&zones, None, &[]);
    let out = dig(
        server.port,
        &["+noedns", "+ignore", "bsf.mnc01.mcc001.lwm2m.org", "TXT"],
    );
    assert!(out.contains(" tc"), "TC set: {out}");
    let out = dig(
        server.port,
        &["+noedns", "bsf.mnc01.mcc001.lwm2m.org", "TXT"],
    );
    assert!(out.contains("Truncated, retrying in TCP"), "{out}");
    assert_eq!(answers(&out).len(), 8, "{out}");
}

#[test]
fn any_refused_notimp_nxdomain() {
    if !have_tool("dig") {
        return;
    }
    let server = bundled();
    // dig asks ANY over TCP unless told otherwise.
    let out = dig(
        server.port,
        &["+notcp", "bsf.mnc460.mcc313.lwm2m.org", "ANY"],
    );
    assert_eq!(status(&out), "NOERROR");
    assert_eq!(answers(&out).len(), 1, "minimal ANY over UDP: {out}");
    let out = dig(server.port, &["+tcp", "bsf.mnc460.mcc313.lwm2m.org", "ANY"]);
    assert_eq!(answers(&out).len(), 3, "full ANY over TCP: {out}");

    let out = dig(server.port, &["example.com", "A"]);
    assert_eq!(status(&out), "REFUSED", "{out}");
    let out = dig(server.port, &["+opcode=2", "lwm2m.org", "SOA"]);
    assert_eq!(status(&out), "NOTIMP", "{out}");
    let out = dig(server.port, &["bsf.mnc999.mcc313.lwm2m.org", "A"]);
    assert_eq!(status(&out), "NXDOMAIN", "{out}");
    assert!(
        out.contains("lwm2m.org.\t\t300\tIN\tSOA") || out.contains("SOA\tns1.lwm2m.org."),
        "{out}"
    );
    let out = dig(server.port, &["mcc313.lwm2m.org", "A"]);
    assert_eq!(status(&out), "NOERROR", "empty non-terminal: {out}");
    let out = dig(server.port, &["-c", "CH", "version.bind", "TXT"]);
    assert_eq!(status(&out), "REFUSED", "{out}");
}
