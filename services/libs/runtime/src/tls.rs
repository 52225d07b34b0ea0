//! TLS, and optionally mutual TLS, on the gRPC listener (`[grpc.tls]`, rustls on ring).
//! Absent, the listener speaks plaintext h2 (behind a mesh or on a trusted network); with
//! `cert_file` and `key_file` it speaks TLS; with `client_ca_file` too, a client must
//! present a certificate that CA signed, or the handshake fails before any call is read.
//! Client certificates only admit a connection: who a call acts for still comes from its
//! bearer token ([`crate::auth`]).

use std::{path::PathBuf, time::Duration};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// How long a client may take over its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `[grpc.tls]`: the server's certificate chain and key, and the CA that signs clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server's certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: the CA (one or more certificates) that signs client certificates. Set, every
    /// client must present one (mutual TLS); absent, clients present none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Reads the files and builds the rustls configuration once, so a bad file stops the
    /// process at start; the error names the key (`grpc.tls.key_file`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.server_config().map(|_| ())
    }

    /// What the log says the listener speaks.
    pub fn mode(&self) -> &'static str {
        match self.client_ca_file {
            Some(_) => "mutual TLS",
            None => "TLS",
        }
    }

    /// The tonic server configuration, its files read and checked.
    pub fn server_config(&self) -> Result<ServerTlsConfig, (&'static str, String)> {
        let cert = read("grpc.tls.cert_file", &self.cert_file, certificates)?;
        let key = read("grpc.tls.key_file", &self.key_file, |pem| {
            PrivateKeyDer::from_pem_slice(pem)
                .map(|_| ())
                .map_err(|e| format!("holds no PEM private key ({e})"))
        })?;
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(cert, key))
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(file) = &self.client_ca_file {
            let ca = read("grpc.tls.client_ca_file", file, certificates)?;
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        // What only the whole can tell: a key that does not match the certificate, a
        // certificate rustls cannot use, a CA it cannot trust.
        Server::builder()
            .tls_config(config.clone())
            .map_err(|e| ("grpc.tls", format!("{e}: {}", source_chain(&e))))?;
        Ok(config)
    }
}

/// A server builder that speaks TLS when `tls` is set, plaintext otherwise.
pub fn builder(tls: Option<&TlsConfig>) -> anyhow::Result<Server> {
    let Some(tls) = tls else {
        return Ok(Server::builder());
    };
    let config = tls
        .server_config()
        .map_err(|(key, reason)| anyhow::anyhow!("invalid configuration: {key}: {reason}"))?;
    Ok(Server::builder().tls_config(config)?)
}

fn read(
    key: &'static str,
    file: &PathBuf,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Vec<u8>, (&'static str, String)> {
    let pem =
        std::fs::read(file).map_err(|e| (key, format!("cannot read {}: {e}", file.display())))?;
    check(&pem).map_err(|reason| (key, format!("{}: {reason}", file.display())))?;
    Ok(pem)
}

/// At least one PEM certificate, and every one readable.
fn certificates(pem: &[u8]) -> Result<(), String> {
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        certificate.map_err(|e| format!("holds a malformed PEM certificate ({e})"))?;
        count += 1;
    }
    if count == 0 {
        return Err("holds no PEM certificate".into());
    }
    Ok(())
}

fn source_chain(error: &dyn std::error::Error) -> String {
    let mut chain = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, and a key of another pair.
    fn pem_files(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
        let pair =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
        let other = rcgen::KeyPair::generate().expect("key");
        let (cert, key, other_key) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("other-key.pem"),
        );
        std::fs::write(&cert, pair.cert.pem()).expect("written");
        std::fs::write(&key, pair.signing_key.serialize_pem()).expect("written");
        std::fs::write(&other_key, other.serialize_pem()).expect("written");
        (cert, key, other_key)
    }

    #[test]
    fn a_bad_file_is_named_by_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, other_key) = pem_files(dir.path());
        let config = TlsConfig {
            cert_file: cert.clone(),
            key_file: key.clone(),
            client_ca_file: None,
        };
        config.validate().expect("a matching pair");
        assert_eq!(config.mode(), "TLS");
        let mutual = TlsConfig {
            client_ca_file: Some(cert.clone()),
            ..config.clone()
        };
        mutual.validate().expect("a CA");
        assert_eq!(mutual.mode(), "mutual TLS");

        let missing = TlsConfig {
            cert_file: dir.path().join("nope.pem"),
            ..config.clone()
        };
        let (name, reason) = missing.validate().expect_err("refused");
        assert_eq!(name, "grpc.tls.cert_file");
        assert!(reason.contains("cannot read"), "{reason}");

        let swapped = TlsConfig {
            cert_file: key.clone(),
            key_file: cert.clone(),
            client_ca_file: None,
        };
        let (name, reason) = swapped.validate().expect_err("refused");
        assert_eq!(name, "grpc.tls.cert_file");
        assert!(reason.contains("no PEM certificate"), "{reason}");

        let ca_not_pem = TlsConfig {
            client_ca_file: Some(key.clone()),
            ..config.clone()
        };
        assert_eq!(
            ca_not_pem.validate().expect_err("refused").0,
            "grpc.tls.client_ca_file"
        );

        let key_not_pem = TlsConfig {
            key_file: cert.clone(),
            ..config.clone()
        };
        assert_eq!(
            key_not_pem.validate().expect_err("refused").0,
            "grpc.tls.key_file"
        );

        let mismatched = TlsConfig {
            key_file: other_key,
            ..config
        };
        let (name, reason) = mismatched.validate().expect_err("refused");
        assert_eq!(name, "grpc.tls", "{reason}");
    }
}
