//! Tokens on request, shared: the application's async callback ([`TokenProvider`]) answers
//! the cores' `TokenNeeded`, and one [`Tokens`] source serves every agent of an `AsyncAgent`
//! or a fleet. When many agents ask at once (every agent of a fleet renews before the same
//! expiry) the callback runs once and all of them get its token; an agent that was already
//! given the newest token (and asks again because the service refused it) starts a new fetch.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::{FutureExt, Shared};
use glance_presence_protocol::agent::AgentProtocol;
use glance_presence_protocol::AuthToken;

use crate::runtime::BoxFuture;

/// Any error the application's token callback returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The application's token callback: an async function that returns a fresh token, or why
/// there is none (the core retries after its backoff). It may be called from any task.
pub type TokenProvider = Arc<dyn Fn() -> BoxFuture<Result<AuthToken, BoxError>> + Send + Sync>;

/// Wraps an async closure as a [`TokenProvider`].
pub fn token_provider<F, Fut>(f: F) -> TokenProvider
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AuthToken, BoxError>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

type Fetched = (u64, Result<AuthToken, String>);
type Fetch = Shared<BoxFuture<Fetched>>;

/// One token source for many agents (see the module docs).
pub(crate) struct Tokens {
    provider: TokenProvider,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    generation: u64,
    latest: Option<(u64, AuthToken)>,
    in_flight: Option<(u64, Fetch)>,
    fetches: u64,
}

impl Tokens {
    pub(crate) fn new(provider: TokenProvider) -> Arc<Self> {
        Arc::new(Tokens {
            provider,
            state: Mutex::new(State::default()),
        })
    }

    /// How many times the callback ran.
    pub(crate) fn fetches(&self) -> u64 {
        self.state.lock().map(|s| s.fetches).unwrap_or(0)
    }

    /// A token newer than generation `seen` (at once when one is known), or the fetch that
    /// will bring it.
    fn ask(&self, seen: u64) -> Result<Fetched, Fetch> {
        let Ok(mut state) = self.state.lock() else {
            return Ok((seen, Err("the token source is unusable".to_owned())));
        };
        if let Some((generation, token)) = &state.latest {
            if *generation > seen {
                return Ok((*generation, Ok(token.clone())));
            }
        }
        if let Some((generation, fetch)) = &state.in_flight {
            if *generation > seen {
                return Err(fetch.clone());
            }
        }
        state.generation += 1;
        state.fetches += 1;
        let generation = state.generation;
        let call = (self.provider)();
        let fetch: BoxFuture<Fetched> =
            Box::pin(async move { (generation, call.await.map_err(|e| e.to_string())) });
        let fetch = fetch.shared();
        state.in_flight = Some((generation, fetch.clone()));
        Err(fetch)
    }

    fn fetched(&self, (generation, result): &Fetched) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state
            .in_flight
            .as_ref()
            .is_some_and(|(g, _)| g == generation)
        {
            state.in_flight = None;
        }
        if let Ok(token) = result {
            if state.latest.as_ref().is_none_or(|(g, _)| g < generation) {
                state.latest = Some((*generation, token.clone()));
            }
        }
    }
}

/// One agent's side of a [`Tokens`] source: whether its core asked, and the fetch it waits
/// for.
pub(crate) struct TokenClient {
    source: Arc<Tokens>,
    seen: u64,
    wanted: bool,
    fetch: Option<Fetch>,
}

impl TokenClient {
    pub(crate) fn new(source: Arc<Tokens>) -> Self {
        TokenClient {
            source,
            seen: 0,
            wanted: false,
            fetch: None,
        }
    }

    /// The core asked for a token.
    pub(crate) fn want(&mut self) {
        self.wanted = true;
    }

    /// Feeds the core a token once one is at hand; `true` when it did.
    pub(crate) fn poll(&mut self, core: &mut AgentProtocol, cx: &mut Context<'_>) -> bool {
        if self.wanted && self.fetch.is_none() {
            self.wanted = false;
            match self.source.ask(self.seen) {
                Ok(fetched) => return self.give(core, fetched),
                Err(fetch) => self.fetch = Some(fetch),
            }
        }
        let Some(fetch) = &mut self.fetch else {
            return false;
        };
        match Pin::new(fetch).poll(cx) {
            Poll::Ready(fetched) => {
                self.fetch = None;
                self.source.fetched(&fetched);
                self.give(core, fetched)
            }
            Poll::Pending => false,
        }
    }

    fn give(&mut self, core: &mut AgentProtocol, (generation, token): Fetched) -> bool {
        self.seen = self.seen.max(generation);
        let _ = core.provide_token(Instant::now(), token);
        true
    }
}
