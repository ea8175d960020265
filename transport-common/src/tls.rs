//! TLS client trust shared by the WebSocket and HTTP paths of every transport: which roots to
//! trust ([`TlsRoots`]: the public web PKI roots by default, or only the roots the application
//! names), and the one rustls client configuration built from them ([`TlsContext`]), built on
//! first use by an `https://` or `wss://` URL and shared from then on. A process that only
//! speaks `http://` and `ws://` never builds it. Not a certificate manager.

use std::sync::{Arc, OnceLock};

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;

use crate::error::TransportError;

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

    /// Checks the extra roots without building a configuration (cheap: the public roots are
    /// not loaded).
    pub fn validate(&self) -> Result<(), TransportError> {
        let mut store = RootCertStore::empty();
        for root in &self.extra {
            store.add(root.clone()).map_err(TransportError::Tls)?;
        }
        Ok(())
    }

    /// A new rustls client configuration (ring provider, TLS 1.2 and 1.3). Transports build
    /// it once per process or fleet through [`TlsContext`]; call this only for a
    /// configuration of your own.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        let mut store = RootCertStore::empty();
        if !self.skip_webpki {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for root in &self.extra {
            store.add(root.clone()).map_err(TransportError::Tls)?;
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TransportError::Tls)?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The TLS client configuration of a process or fleet: built once, on the first `https://` or
/// `wss://` connection, and shared (cheap to clone) by every socket and HTTP connection from
/// then on.
#[derive(Clone, Debug)]
pub struct TlsContext {
    inner: Arc<TlsInner>,
}

#[derive(Debug)]
struct TlsInner {
    roots: TlsRoots,
    config: OnceLock<Arc<ClientConfig>>,
}

impl TlsContext {
    /// A context for `roots`; the extra roots are checked now, nothing is built yet.
    pub fn new(roots: TlsRoots) -> Result<Self, TransportError> {
        roots.validate()?;
        Ok(TlsContext {
            inner: Arc::new(TlsInner {
                roots,
                config: OnceLock::new(),
            }),
        })
    }

    /// The roots this context trusts.
    pub fn roots(&self) -> &TlsRoots {
        &self.inner.roots
    }

    /// Whether the configuration has been built (an `https://` or `wss://` URL was used).
    pub fn is_built(&self) -> bool {
        self.inner.config.get().is_some()
    }

    /// The shared client configuration, built now if this is its first use.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        if let Some(config) = self.inner.config.get() {
            return Ok(Arc::clone(config));
        }
        let built = self.inner.roots.client_config()?;
        // Two first users may race: both build, one configuration is kept.
        Ok(Arc::clone(self.inner.config.get_or_init(|| built)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_is_built_once_and_only_when_asked() {
        let tls = TlsContext::new(TlsRoots::webpki()).unwrap();
        assert!(!tls.is_built());
        let a = tls.client_config().unwrap();
        let b = tls.clone().client_config().unwrap();
        assert!(tls.is_built());
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_bad_extra_root_is_refused_up_front() {
        let bad = TlsRoots::only([CertificateDer::from(vec![1, 2, 3])]);
        assert!(matches!(TlsContext::new(bad), Err(TransportError::Tls(_))));
    }
}
