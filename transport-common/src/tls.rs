//! TLS client trust shared by the WebSocket and HTTP paths of every transport: which roots to
//! trust ([`TlsRoots`]: the public web PKI roots by default, the operating system's trust store
//! as an option, only the roots the application names, or any of these extended with extra
//! roots), and the one rustls client configuration built from them ([`TlsContext`]), built on
//! first use by an `https://` or `wss://` URL and shared from then on. A process that only
//! speaks `http://` and `ws://` never builds it. Not a certificate manager.
//!
//! ```
//! use glance_presence_transport::TlsRoots;
//! # let my_ca = rustls_pki_types::CertificateDer::from(vec![]);
//! // The public roots and a company CA on top of them.
//! let roots = TlsRoots::webpki().with_extra_roots([my_ca]);
//! assert!(roots.trusts_webpki());
//! assert_eq!(roots.extra_roots().len(), 1);
//! // The operating system's trust store (read when the configuration is built).
//! assert!(TlsRoots::native().trusts_native());
//! ```

use std::sync::{Arc, OnceLock};

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;

use crate::error::TransportError;

/// Which certificates the client trusts: any of the public web PKI roots, the operating
/// system's trust store and roots the application names (the extra roots).
#[derive(Clone)]
pub struct TlsRoots {
    extra: Vec<CertificateDer<'static>>,
    webpki: bool,
    native: bool,
}

impl Default for TlsRoots {
    fn default() -> Self {
        TlsRoots::webpki()
    }
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoots")
            .field("extra_roots", &self.extra.len())
            .field("webpki_roots", &self.webpki)
            .field("native_roots", &self.native)
            .finish()
    }
}

impl TlsRoots {
    /// The public web PKI roots (the default).
    pub fn webpki() -> Self {
        TlsRoots {
            extra: Vec::new(),
            webpki: true,
            native: false,
        }
    }

    /// The operating system's trust store (read with `rustls-native-certs` when the
    /// configuration is built); the public web PKI roots are not added.
    pub fn native() -> Self {
        TlsRoots {
            extra: Vec::new(),
            webpki: false,
            native: true,
        }
    }

    /// Only the given roots (DER), e.g. a test certificate; the public roots are not trusted.
    pub fn only(roots: impl IntoIterator<Item = CertificateDer<'static>>) -> Self {
        TlsRoots {
            extra: roots.into_iter().collect(),
            webpki: false,
            native: false,
        }
    }

    /// These roots extended with `roots` (DER): what was trusted stays trusted.
    #[must_use]
    pub fn with_extra_roots(
        mut self,
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Self {
        self.extra.extend(roots);
        self
    }

    /// These roots with the public web PKI roots added (or taken away).
    #[must_use]
    pub fn with_webpki(mut self, trust: bool) -> Self {
        self.webpki = trust;
        self
    }

    /// These roots with the operating system's trust store added (or taken away).
    #[must_use]
    pub fn with_native(mut self, trust: bool) -> Self {
        self.native = trust;
        self
    }

    /// The extra roots, in DER.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra
    }

    /// Whether the public web PKI roots are trusted.
    pub fn trusts_webpki(&self) -> bool {
        self.webpki
    }

    /// Whether the operating system's trust store is trusted.
    pub fn trusts_native(&self) -> bool {
        self.native
    }

    /// Checks the extra roots without building a configuration (cheap: neither the public
    /// roots nor the operating system's store are loaded).
    pub fn validate(&self) -> Result<(), TransportError> {
        let mut store = RootCertStore::empty();
        for root in &self.extra {
            store.add(root.clone()).map_err(TransportError::Tls)?;
        }
        Ok(())
    }

    /// The operating system's trust store. An error only when nothing could be read and
    /// something failed; certificates the store holds that cannot be read are skipped.
    pub fn native_roots() -> Result<Vec<CertificateDer<'static>>, TransportError> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            if let Some(err) = found.errors.first() {
                return Err(TransportError::Tls(rustls::Error::General(format!(
                    "cannot read the operating system's trust store: {err}"
                ))));
            }
        }
        Ok(found.certs)
    }

    /// Every trusted root as a whole certificate (DER), for TLS stacks that take a list of
    /// certificates: the public web PKI roots (from `webpki-root-certs`), the operating
    /// system's store, then the extra roots.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TransportError> {
        let mut all = Vec::new();
        if self.webpki {
            all.extend(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        }
        if self.native {
            all.extend(Self::native_roots()?);
        }
        all.extend(self.extra.iter().cloned());
        Ok(all)
    }

    /// The root store these roots make. Certificates of the operating system's store that
    /// rustls cannot use are skipped; a bad extra root is an error.
    pub fn root_store(&self) -> Result<RootCertStore, TransportError> {
        let mut store = RootCertStore::empty();
        if self.webpki {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.native {
            store.add_parsable_certificates(Self::native_roots()?);
        }
        for root in &self.extra {
            store.add(root.clone()).map_err(TransportError::Tls)?;
        }
        Ok(store)
    }

    /// A new rustls client configuration (ring provider, TLS 1.2 and 1.3). Transports build
    /// it once per process or fleet through [`TlsContext`]; call this only for a
    /// configuration of your own.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        let store = self.root_store()?;
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
        let bad = TlsRoots::webpki().with_extra_roots([CertificateDer::from(vec![1, 2, 3])]);
        assert!(matches!(TlsContext::new(bad), Err(TransportError::Tls(_))));
    }

    #[test]
    fn extra_roots_are_added_on_top_of_the_public_ones() {
        let extra = CertificateDer::from(
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
                .unwrap()
                .cert
                .der()
                .to_vec(),
        );
        let public = TlsRoots::webpki();
        let extended = TlsRoots::webpki().with_extra_roots([extra.clone()]);
        assert!(extended.trusts_webpki() && !extended.trusts_native());
        let public_store = public.root_store().unwrap();
        let store = extended.root_store().unwrap();
        assert_eq!(store.len(), public_store.len() + 1);
        let certs = extended.certificates().unwrap();
        assert_eq!(
            certs.len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1
        );
        assert_eq!(certs.last(), Some(&extra));
        assert_eq!(
            TlsRoots::only([extra.clone()]).certificates().unwrap(),
            std::slice::from_ref(&extra)
        );
        assert_eq!(
            TlsRoots::only([extra.clone()])
                .with_webpki(true)
                .root_store()
                .unwrap()
                .len(),
            store.len()
        );
        extended.client_config().unwrap();
    }

    #[test]
    fn the_operating_system_store_is_an_option() {
        let roots = TlsRoots::native();
        assert!(roots.trusts_native() && !roots.trusts_webpki());
        assert!(!TlsRoots::webpki().trusts_native());
        // Whatever the machine holds (perhaps nothing), reading it does not fail the build of
        // a configuration when some certificate could be read.
        if let Ok(found) = TlsRoots::native_roots() {
            let with_public = TlsRoots::webpki().with_native(true).certificates().unwrap();
            assert_eq!(
                with_public.len(),
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + found.len()
            );
        }
    }
}
