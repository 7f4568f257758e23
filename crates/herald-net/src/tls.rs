//! TLS server configuration from PEM files (`[tls] cert`, `[tls] key`), with `ring` as the one
//! crypto provider (STACK §1), and the certificate reload every TLS listener shares.
//!
//! One [`ServerTls`] serves every listener (IMAPS, POP3S, STARTTLS/STLS, LMTP STARTTLS,
//! HTTPS): its rustls configuration asks a [`ReloadableCert`] for the certificate at each
//! handshake, so [`ServerTls::reload`] (on SIGHUP) changes what the next connection sees on
//! every listener at once, while connections already established keep the session they made.
//! A reload that cannot read or match the new files changes nothing: a typo while renewing a
//! certificate must not take the mail server off the air.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("certificate {path}: {reason}")]
    Cert {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("private key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key does not match the certificate, or rustls refused them.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A PEM error in an operator's words (rustls prints the markers as byte arrays).
fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section does not end (no `-----END {}-----` line)",
            String::from_utf8_lossy(end_marker).trim()
        ),
        Error::IllegalSectionStart { line } => format!(
            "a malformed PEM line: `{}`",
            String::from_utf8_lossy(line).trim()
        ),
        other => other.to_string(),
    }
}

/// Reads a certificate chain and its private key (PEM) and checks that they belong together.
fn read_certified_key(
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.display().to_string(),
            reason: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.display().to_string(),
            reason: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: pem_reason(&e),
    })?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

/// The certificate and key in use, re-read from their files by [`ReloadableCert::reload`].
pub struct ReloadableCert {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ReloadableCert {
    /// Reads the files once; fails when they are unusable.
    fn load(
        cert: &Path,
        key: &Path,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<ReloadableCert, TlsError> {
        let current = read_certified_key(cert, key, &provider)?;
        Ok(ReloadableCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Re-reads the files; on success new handshakes present the new certificate, on failure
    /// the one in use stays.
    fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(read_certified_key(&self.cert, &self.key, &self.provider)?);
        // A panic elsewhere cannot leave an `Arc` half-written: the value is always whole.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The certificate chain in use (leaf first).
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .cert
            .clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The server side of TLS: an acceptor for every listener and the handle that reloads the
/// certificate they present. Cheap to clone; clones share the certificate.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
    cert: Arc<ReloadableCert>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads a certificate chain and private key (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = Arc::new(ReloadableCert::load(cert, key, Arc::clone(&provider))?);
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            cert: resolver,
        })
    }

    /// The acceptor listeners hand connections to; it always presents the current certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }

    /// Re-reads the certificate and key files. New connections on every listener get the new
    /// certificate; established ones are unaffected. On error nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.cert.reload()
    }

    /// The certificate chain presented now, leaf first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.cert.chain()
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert.cert
    }
}

/// Loads a certificate chain and private key (PEM) into an acceptor that never reloads.
pub fn load_tls_config(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    Ok(ServerTls::load(cert, key)?.acceptor())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let cert = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        (c, k, cert.cert.der().clone())
    }

    #[test]
    fn loads_a_generated_certificate_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k, _) = write_cert(dir.path(), "localhost");
        assert!(load_tls_config(&c, &k).is_ok());
        let missing = load_tls_config(&dir.path().join("nope.pem"), &k)
            .err()
            .unwrap();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let swapped = load_tls_config(&k, &c).err().unwrap();
        assert!(matches!(swapped, TlsError::Cert { .. }), "{swapped}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _, _) = write_cert(dir.path(), "localhost");
        let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
        let k2 = dir.path().join("k2.pem");
        std::fs::write(&k2, other.signing_key.serialize_pem()).unwrap();
        let e = ServerTls::load(&c, &k2).err().unwrap();
        assert!(matches!(e, TlsError::Config(_)), "{e}");
    }

    #[test]
    fn reload_takes_new_files_and_keeps_the_old_ones_when_broken() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k, first) = write_cert(dir.path(), "one.example");
        let tls = ServerTls::load(&c, &k).unwrap();
        assert_eq!(tls.chain()[0], first);
        let (_, _, second) = write_cert(dir.path(), "two.example");
        tls.reload().unwrap();
        assert_eq!(tls.chain()[0], second, "the new certificate is in use");
        std::fs::write(&c, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = tls.reload().err().unwrap().to_string();
        assert!(e.contains("no `-----END CERTIFICATE-----` line"), "{e}");
        std::fs::write(&c, "not a certificate").unwrap();
        assert!(tls.reload().is_err());
        assert_eq!(tls.chain()[0], second, "a broken file changes nothing");
        // A renewal half done: the new certificate with the old key.
        let third = rcgen::generate_simple_self_signed(vec!["three".into()]).unwrap();
        std::fs::write(&c, third.cert.pem()).unwrap();
        assert!(tls.reload().is_err());
        assert_eq!(tls.chain()[0], second);
    }
}
