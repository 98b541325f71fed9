//! Who may ask: the `allow-query` prefix list, checked per packet.
//!
//! The default is everyone. An operator that serves only its private APN's address pools
//! lists them; other clients get REFUSED.

use std::net::IpAddr;

use ipnet::IpNet;

/// Address prefixes allowed to query; empty means everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryAcl {
    prefixes: Vec<IpNet>,
}

impl QueryAcl {
    pub fn new(prefixes: Vec<IpNet>) -> Self {
        QueryAcl { prefixes }
    }

    pub fn allows_all(&self) -> bool {
        self.prefixes.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allows_all() || self.prefixes.iter().any(|p| p.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match() {
        let acl = QueryAcl::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        assert!(acl.allows("10.1.2.3".parse().unwrap()));
        assert!(acl.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(acl.allows("2001:db8::1".parse().unwrap()));
        assert!(!acl.allows("127.0.0.1".parse().unwrap()));
        assert!(QueryAcl::default().allows("127.0.0.1".parse().unwrap()));
    }
}
