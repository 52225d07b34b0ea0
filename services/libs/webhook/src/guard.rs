//! The SSRF guard. Subscribers choose the URLs the relay posts to, so without a guard
//! anyone allowed to register an endpoint could make the relay send requests into our own
//! network: the cloud's metadata service (instance credentials: 169.254.169.254, Alibaba
//! Cloud's 100.100.100.200), Kafka or Redis on loopback, admin pages on private addresses.
//!
//! Two checks, both needed:
//! - [`Guard::check_url`] when an endpoint is registered and before each attempt: `https`
//!   only, a host, no userinfo (credentials in a URL end up in logs), no fragment, at most
//!   [`MAX_URL_LEN`] bytes; a host that is an IP address is judged right away.
//! - [`Guard::resolve`] when connecting: a host name is resolved and refused if ANY of its
//!   addresses is forbidden (a name with one public and one private address would otherwise
//!   reach the private one on some attempts). Judging at connect time, on the addresses
//!   actually used, defeats DNS rebinding: a name that resolved to a public address at
//!   registration and to 127.0.0.1 at send time is refused then. The sender plugs this into
//!   its HTTP client's resolver, and does not follow redirects (another way around it).
//!
//! [`Guard::forbidden`] names why an address is refused; IPv4-mapped (`::ffff:a.b.c.d`) and
//! NAT64 (`64:ff9b::a.b.c.d`) IPv6 addresses are judged by the IPv4 address they carry.
//! Configured CIDRs are allowed whatever the rules say: tests allow `127.0.0.0/8` to reach
//! a local receiver; a deployment may allow a partner's private network reached by VPN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use url::{Host, Url};

/// Longer URLs are refused.
pub const MAX_URL_LEN: usize = 2048;

/// Where deliveries may go. [`Guard::default`] allows no forbidden address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    allow: Vec<IpNet>,
}

/// A configured CIDR that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CIDR (like 127.0.0.0/8 or ::1/128) nor an IP address")]
pub struct GuardConfigError(pub String);

/// Why a URL cannot be an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the URL is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("not a URL: {0}")]
    Invalid(#[from] url::ParseError),
    #[error("the URL's scheme must be https")]
    NotHttps,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL must not carry a user name or password")]
    UserInfo,
    #[error("the URL must not have a fragment (#…)")]
    Fragment,
    #[error("the URL's address {addr} is not allowed ({reason})")]
    Forbidden { addr: IpAddr, reason: &'static str },
}

/// Why a host's addresses were not used.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("{host} resolves to {addr}, which is not allowed ({reason})")]
    Forbidden {
        host: String,
        addr: IpAddr,
        reason: &'static str,
    },
}

/// A URL that passed [`Guard::check_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
}

impl Endpoint {
    /// The URL, normalized (as the `url` crate serializes it).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host: a name, or an IP address (IPv6 without brackets).
    pub fn host(&self) -> String {
        match self.url.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    /// The port (443 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(443)
    }

    /// The host's IP address if the URL names one instead of a name.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        }
    }

    /// The URL without its query, for logs and errors: queries often carry tokens.
    pub fn redacted(&self) -> String {
        let mut url = self.url.clone();
        url.set_query(None);
        url.to_string()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl Guard {
    /// A guard that also allows these CIDRs (`"127.0.0.0/8"`, `"::1/128"`; a bare address
    /// is a single-address CIDR).
    pub fn from_config(allow: &[String]) -> Result<Self, GuardConfigError> {
        let allow = allow
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| GuardConfigError(text.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    /// The CIDRs allowed beyond the rules.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// Checks a URL an endpoint is registered with or about to be sent to; see the module
    /// documentation. A host name is only checked when resolved ([`Guard::resolve`]).
    pub fn check_url(&self, text: &str) -> Result<Endpoint, UrlError> {
        if text.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let url = Url::parse(text.trim())?;
        if url.scheme() != "https" {
            return Err(UrlError::NotHttps);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::UserInfo);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        let endpoint = match url.host() {
            None => return Err(UrlError::NoHost),
            Some(Host::Domain("")) => return Err(UrlError::NoHost),
            Some(_) => Endpoint { url },
        };
        if let Some(addr) = endpoint.ip()
            && let Some(reason) = self.forbidden(addr)
        {
            return Err(UrlError::Forbidden { addr, reason });
        }
        Ok(endpoint)
    }

    /// Why a delivery must not go to `ip`, or `None` if it may: always `None` for an
    /// address in an allowed CIDR.
    pub fn forbidden(&self, ip: IpAddr) -> Option<&'static str> {
        let reason = classify(ip)?;
        let embedded = embedded_v4(ip).map(IpAddr::V4);
        let allowed = self
            .allow
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&v4)));
        (!allowed).then_some(reason)
    }

    /// Resolves `host` and returns its addresses with `port`, unless any of them is
    /// forbidden: then the error names the first such address and why.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| GuardError::Lookup {
                host: host.to_owned(),
                source,
            })?
            .collect();
        self.judge(host, addrs)
    }

    /// `addrs` if `host` has some and none is forbidden.
    fn judge(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, GuardError> {
        if addrs.is_empty() {
            return Err(GuardError::NoAddress {
                host: host.to_owned(),
            });
        }
        for addr in &addrs {
            if let Some(reason) = self.forbidden(addr.ip()) {
                return Err(GuardError::Forbidden {
                    host: host.to_owned(),
                    addr: addr.ip(),
                    reason,
                });
            }
        }
        Ok(addrs)
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:0:0/96` (the socket
/// connects to that IPv4 address) and the NAT64 well-known prefix `64:ff9b::/96` (a NAT64
/// gateway connects to it).
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, _, _, _, _, _, _, a, b, c, d] = v6.octets();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Why an address is refused, before allowances.
fn classify(ip: IpAddr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    // Specific addresses before the ranges that hold them.
    const RULES: &[([u8; 4], u32, &str)] = &[
        ([169, 254, 169, 254], 32, "cloud metadata"),
        ([100, 100, 100, 200], 32, "cloud metadata"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([0, 0, 0, 0], 8, "unspecified"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT"),
        ([192, 0, 0, 0], 24, "reserved"),
        ([198, 18, 0, 0], 15, "reserved"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    const RULES: &[(Ipv6Addr, u32, &str)] = &[
        (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
        (Ipv6Addr::LOCALHOST, 128, "loopback"),
        // AWS's IMDS over IPv6 (fd00:ec2::254).
        (
            Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
            128,
            "cloud metadata",
        ),
        // Deprecated IPv4-compatible addresses (::a.b.c.d).
        (Ipv6Addr::UNSPECIFIED, 96, "reserved"),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "private"),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "private"),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            "documentation",
        ),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "reserved"),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP address")
    }

    fn strict() -> Guard {
        Guard::default()
    }

    fn allowing(cidrs: &[&str]) -> Guard {
        let cidrs: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
        Guard::from_config(&cidrs).expect("CIDRs")
    }

    #[test]
    fn names_why_an_address_is_forbidden() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("::1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("fc00::1", Some("private")),
            ("fd12:3456::1", Some("private")),
            ("169.254.1.1", Some("link-local")),
            ("fe80::1", Some("link-local")),
            ("169.254.169.254", Some("cloud metadata")),
            ("100.100.100.200", Some("cloud metadata")),
            ("fd00:ec2::254", Some("cloud metadata")),
            ("100.64.0.1", Some("carrier-grade NAT")),
            ("100.127.255.255", Some("carrier-grade NAT")),
            ("100.128.0.1", None),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("::", Some("unspecified")),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("ff02::1", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
            ("240.0.0.1", Some("reserved")),
            ("192.0.2.1", Some("documentation")),
            ("2001:db8::1", Some("documentation")),
            ("::127.0.0.1", Some("reserved")),
            // IPv4 inside IPv6 is judged as IPv4.
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("cloud metadata")),
            ("::ffff:10.0.0.1", Some("private")),
            ("64:ff9b::10.0.0.1", Some("private")),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::8.8.8.8", None),
            // Public addresses.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("114.114.114.114", None),
            ("223.5.5.5", None),
            ("2400:3200::1", None),
            ("2001:4860:4860::8888", None),
        ];
        for (addr, want) in cases {
            assert_eq!(strict().forbidden(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn allowed_cidrs_override_the_rules() {
        let guard = allowing(&["127.0.0.0/8", "::1/128", " 10.9.0.0/16 ", "192.168.1.7"]);
        assert_eq!(guard.forbidden(ip("127.0.0.1")), None);
        assert_eq!(guard.forbidden(ip("127.9.9.9")), None);
        assert_eq!(guard.forbidden(ip("::1")), None);
        assert_eq!(guard.forbidden(ip("::ffff:127.0.0.1")), None);
        assert_eq!(guard.forbidden(ip("10.9.3.4")), None);
        assert_eq!(guard.forbidden(ip("10.8.3.4")), Some("private"));
        assert_eq!(guard.forbidden(ip("192.168.1.7")), None);
        assert_eq!(guard.forbidden(ip("192.168.1.8")), Some("private"));
        assert_eq!(
            guard.forbidden(ip("169.254.169.254")),
            Some("cloud metadata")
        );
        // Host bits in a CIDR are dropped.
        assert_eq!(allowing(&["10.1.2.3/8"]).forbidden(ip("10.200.0.1")), None);

        for bad in ["", "localhost", "10.0.0.0/33", "::1/129", "10.0.0/8"] {
            assert_eq!(
                Guard::from_config(&[bad.to_owned()]),
                Err(GuardConfigError(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn checks_urls() {
        let guard = strict();
        let ok = guard
            .check_url("https://hooks.example.com/zhida?token=abc")
            .expect("a fine URL");
        assert_eq!(ok.host(), "hooks.example.com");
        assert_eq!(ok.port(), 443);
        assert_eq!(ok.ip(), None);
        assert_eq!(ok.redacted(), "https://hooks.example.com/zhida");
        let ok = guard
            .check_url("https://8.8.8.8:8443/x")
            .expect("public IP");
        assert_eq!((ok.ip(), ok.port()), (Some(ip("8.8.8.8")), 8443));
        let ok = guard
            .check_url("https://[2001:4860:4860::8888]/")
            .expect("public IPv6");
        assert_eq!(ok.host(), "2001:4860:4860::8888");

        let refused = |url: &str| guard.check_url(url).expect_err(url);
        assert_eq!(refused("http://hooks.example.com/"), UrlError::NotHttps);
        assert_eq!(refused("ftp://hooks.example.com/"), UrlError::NotHttps);
        assert!(matches!(
            refused("hooks.example.com/x"),
            UrlError::Invalid(_)
        ));
        assert!(matches!(refused("https://"), UrlError::Invalid(_)));
        assert_eq!(
            refused("https://user:pw@hooks.example.com/"),
            UrlError::UserInfo
        );
        assert_eq!(
            refused("https://user@hooks.example.com/"),
            UrlError::UserInfo
        );
        assert_eq!(refused("https://hooks.example.com/#x"), UrlError::Fragment);
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(refused(&long), UrlError::TooLong);
        assert_eq!(
            refused("https://127.0.0.1/"),
            UrlError::Forbidden {
                addr: ip("127.0.0.1"),
                reason: "loopback"
            }
        );
        // Spellings of addresses the URL parser normalizes are judged as what they are.
        for (url, addr) in [
            ("https://2130706433/", "127.0.0.1"),
            ("https://0x7f.1/", "127.0.0.1"),
            (
                "https://[::ffff:169.254.169.254]/",
                "::ffff:169.254.169.254",
            ),
            ("https://[fd00:ec2::254]/", "fd00:ec2::254"),
            (
                "https://100.100.100.200/latest/meta-data/",
                "100.100.100.200",
            ),
        ] {
            assert!(
                matches!(refused(url), UrlError::Forbidden { addr: a, .. } if a == ip(addr)),
                "{url}"
            );
        }
        assert!(
            allowing(&["127.0.0.0/8"])
                .check_url("https://127.0.0.1:8443/")
                .is_ok()
        );
    }

    #[test]
    fn one_forbidden_address_refuses_the_host() {
        let guard = strict();
        let public: SocketAddr = "8.8.8.8:443".parse().expect("address");
        let private: SocketAddr = "[::ffff:192.168.0.1]:443".parse().expect("address");
        assert_eq!(
            guard.judge("h", vec![public]).expect("public only"),
            vec![public]
        );
        for addrs in [vec![public, private], vec![private, public]] {
            let err = guard.judge("h", addrs).expect_err("one is private");
            assert!(
                matches!(err, GuardError::Forbidden { addr, reason: "private", .. } if addr == private.ip()),
                "{err}"
            );
        }
        assert!(matches!(
            guard.judge("h", Vec::new()),
            Err(GuardError::NoAddress { .. })
        ));
    }

    #[tokio::test]
    async fn resolves_names_and_refuses_forbidden_addresses() {
        let err = strict()
            .resolve("localhost", 443)
            .await
            .expect_err("loopback");
        assert!(
            matches!(&err, GuardError::Forbidden { host, reason: "loopback", .. } if host == "localhost"),
            "{err}"
        );
        assert!(err.to_string().contains("not allowed (loopback)"), "{err}");
        let addrs = allowing(&["127.0.0.0/8", "::1/128"])
            .resolve("localhost", 8443)
            .await
            .expect("allowed");
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8443 && a.ip().is_loopback())
        );
        // An address literal goes through the same check.
        assert!(matches!(
            strict().resolve("10.0.0.1", 443).await,
            Err(GuardError::Forbidden {
                reason: "private",
                ..
            })
        ));
        assert!(matches!(
            strict().resolve("no-such-host.invalid", 443).await,
            Err(GuardError::Lookup { .. })
        ));
    }
}
