//! TLS client settings shared by the WebSocket and HTTP paths: rustls with either the public
//! web PKI roots (the default) or only the roots the application names (a private CA, or the
//! self-signed certificate of a local reference service). Not a certificate manager.

use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;

/// Which certificates the client trusts.
#[derive(Clone, Default)]
pub struct TlsRoots {
    extra: Vec<CertificateDer<'static>>,
    skip_webpki: bool,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoots")
            .field("extra_roots", &self.extra.len())
            .field("webpki_roots", &!self.skip_webpki)
            .finish()
    }
}

impl TlsRoots {
    /// The public web PKI roots (the default).
    pub fn webpki() -> Self {
        TlsRoots::default()
    }

    /// Only the given roots (DER), e.g. a test certificate; the public roots are not trusted.
    pub fn only(roots: impl IntoIterator<Item = CertificateDer<'static>>) -> Self {
        TlsRoots {
            extra: roots.into_iter().collect(),
            skip_webpki: true,
        }
    }

    /// The extra roots, in DER.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra
    }

    /// Whether the public web PKI roots are trusted.
    pub fn trusts_webpki(&self) -> bool {
        !self.skip_webpki
    }

    /// A rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut store = RootCertStore::empty();
        if !self.skip_webpki {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for root in &self.extra {
            store.add(root.clone())?;
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
