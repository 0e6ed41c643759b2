//! The access-token lifecycle as a state machine: fetch lazily, reuse until the expiry
//! minus a margin, refresh once when the server rejects the token.
//!
//! It performs no I/O and reads no clock: every call is handed `now` (wall-clock time,
//! since providers state expiry as a wall-clock instant). A driver calls
//! [`poll`](TokenLifecycle::poll) before each request and does what the
//! [`TokenAction`] says, then reports back with
//! [`handle_token`](TokenLifecycle::handle_token),
//! [`handle_fetch_failed`](TokenLifecycle::handle_fetch_failed) or
//! [`handle_rejected`](TokenLifecycle::handle_rejected).
//!
//! A driver shared by concurrent callers should hold one lock across a
//! [`TokenAction::Fetch`] and the fetch itself, so that many callers that find the token
//! expired at once cause exactly one token request (callers that poll while a fetch is
//! under way get [`TokenAction::Wait`]).

use std::time::{Duration, SystemTime};

use crate::Secret;

/// How long before its stated expiry a token stops being used: 5 minutes.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);

/// What the driver must do to get a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAction {
    /// Send the request with this token.
    Use(Secret),
    /// Fetch a new token now, then report it with
    /// [`handle_token`](TokenLifecycle::handle_token) or
    /// [`handle_fetch_failed`](TokenLifecycle::handle_fetch_failed).
    Fetch,
    /// Another caller is fetching: wait for it, then poll again.
    Wait,
    /// There is no usable token and none can be fetched (a fixed token that expired or
    /// was rejected, with no credentials to fetch another).
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Empty,
    Fetching,
    Valid {
        token: Secret,
        expires_at: Option<SystemTime>,
        /// When to stop using it: `expires_at` minus the margin, or `expires_at` itself
        /// for a token that was born inside the margin.
        refresh_at: Option<SystemTime>,
    },
    Dead,
}

/// The token lifecycle of one credential. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct TokenLifecycle {
    state: State,
    margin: Duration,
    can_fetch: bool,
    fetches: u64,
}

impl TokenLifecycle {
    /// A lifecycle that fetches its tokens (client ID and secret known), using a token
    /// until `margin` before its expiry.
    pub fn fetching(margin: Duration) -> Self {
        Self {
            state: State::Empty,
            margin,
            can_fetch: true,
            fetches: 0,
        }
    }

    /// A lifecycle around a token the user supplied, which cannot be refreshed. It is
    /// used until `expires_at` (if known) or until the server rejects it.
    pub fn fixed(token: Secret, expires_at: Option<SystemTime>) -> Self {
        Self {
            state: State::Valid {
                token,
                expires_at,
                refresh_at: expires_at,
            },
            margin: Duration::ZERO,
            can_fetch: false,
            fetches: 0,
        }
    }

    /// How many fetches this lifecycle has asked for.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// The current token's expiry, if a token is held and its expiry known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        match &self.state {
            State::Valid { expires_at, .. } => *expires_at,
            _ => None,
        }
    }

    /// The token held now and its expiry, without changing anything.
    pub fn current(&self) -> Option<(Secret, Option<SystemTime>)> {
        match &self.state {
            State::Valid {
                token, expires_at, ..
            } => Some((token.clone(), *expires_at)),
            _ => None,
        }
    }

    /// The token held now, if any (whether or not it is still fresh).
    pub fn peek(&self) -> Option<&Secret> {
        match &self.state {
            State::Valid { token, .. } => Some(token),
            _ => None,
        }
    }

    /// What to do to get a token at `now`.
    pub fn poll(&mut self, now: SystemTime) -> TokenAction {
        match &self.state {
            State::Valid {
                token, refresh_at, ..
            } => {
                let fresh = refresh_at.is_none_or(|limit| now < limit);
                if fresh {
                    return TokenAction::Use(token.clone());
                }
                if !self.can_fetch {
                    self.state = State::Dead;
                    return TokenAction::Unavailable;
                }
                self.start_fetch()
            }
            State::Fetching => TokenAction::Wait,
            State::Empty if self.can_fetch => self.start_fetch(),
            State::Empty | State::Dead => TokenAction::Unavailable,
        }
    }

    fn start_fetch(&mut self) -> TokenAction {
        self.state = State::Fetching;
        self.fetches += 1;
        TokenAction::Fetch
    }

    /// A fetch succeeded at `now`: `token` is good until `expires_at`. It is used until
    /// `expires_at` minus the margin; a token born inside the margin (a short-lived
    /// token, a margin longer than the lifetime) is used until `expires_at` itself, so
    /// that a client never fetches a new token for every call.
    pub fn handle_token(&mut self, token: Secret, expires_at: SystemTime, now: SystemTime) {
        let with_margin = expires_at.checked_sub(self.margin).filter(|t| *t > now);
        self.state = State::Valid {
            token,
            expires_at: Some(expires_at),
            refresh_at: Some(with_margin.unwrap_or(expires_at)),
        };
    }

    /// A fetch failed; the next [`poll`](Self::poll) fetches again.
    pub fn handle_fetch_failed(&mut self) {
        if self.state == State::Fetching {
            self.state = State::Empty;
        }
    }

    /// The server rejected `token` (123pan code 401). Returns whether the request is
    /// worth sending once more with another token: true when `token` was the current
    /// one and a new one can be fetched, or when another caller already replaced it.
    pub fn handle_rejected(&mut self, token: &Secret) -> bool {
        match &self.state {
            State::Valid { token: current, .. } if current == token => {
                if self.can_fetch {
                    self.state = State::Empty;
                    true
                } else {
                    self.state = State::Dead;
                    false
                }
            }
            State::Valid { .. } | State::Fetching => true,
            State::Empty => self.can_fetch,
            State::Dead => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn fetches_lazily_and_reuses_until_margin() {
        let mut lc = TokenLifecycle::fetching(Duration::from_secs(60));
        let now = t0();
        assert_eq!(lc.poll(now), TokenAction::Fetch);
        assert_eq!(lc.poll(now), TokenAction::Wait, "second caller waits");
        lc.handle_token(Secret::new("a"), now + Duration::from_secs(3600), now);
        assert_eq!(lc.poll(now), TokenAction::Use(Secret::new("a")));
        let just_before = now + Duration::from_secs(3600 - 61);
        assert_eq!(lc.poll(just_before), TokenAction::Use(Secret::new("a")));
        let inside_margin = now + Duration::from_secs(3600 - 60);
        assert_eq!(lc.poll(inside_margin), TokenAction::Fetch);
        assert_eq!(lc.fetches(), 2);
    }

    #[test]
    fn a_token_born_inside_the_margin_is_used_until_it_expires() {
        let mut lc = TokenLifecycle::fetching(Duration::from_secs(300));
        let now = t0();
        assert_eq!(lc.poll(now), TokenAction::Fetch);
        lc.handle_token(Secret::new("short"), now + Duration::from_secs(120), now);
        for s in [0, 1, 60, 119] {
            assert_eq!(
                lc.poll(now + Duration::from_secs(s)),
                TokenAction::Use(Secret::new("short")),
                "at {s} s"
            );
        }
        assert_eq!(lc.poll(now + Duration::from_secs(120)), TokenAction::Fetch);
        assert_eq!(lc.fetches(), 2);
    }

    #[test]
    fn failed_fetch_is_retried_on_next_poll() {
        let mut lc = TokenLifecycle::fetching(DEFAULT_MARGIN);
        assert_eq!(lc.poll(t0()), TokenAction::Fetch);
        lc.handle_fetch_failed();
        assert_eq!(lc.poll(t0()), TokenAction::Fetch);
    }

    #[test]
    fn rejection_refreshes_once_per_token() {
        let mut lc = TokenLifecycle::fetching(DEFAULT_MARGIN);
        let now = t0();
        assert_eq!(lc.poll(now), TokenAction::Fetch);
        lc.handle_token(Secret::new("a"), now + Duration::from_secs(7200), now);
        // Two callers got 401 with the same token: only the first invalidates it.
        assert!(lc.handle_rejected(&Secret::new("a")));
        assert_eq!(lc.poll(now), TokenAction::Fetch);
        assert!(
            lc.handle_rejected(&Secret::new("a")),
            "fetch under way: retry after it"
        );
        lc.handle_token(Secret::new("b"), now + Duration::from_secs(7200), now);
        assert!(
            lc.handle_rejected(&Secret::new("a")),
            "already replaced: retry with b"
        );
        assert_eq!(lc.poll(now), TokenAction::Use(Secret::new("b")));
        assert_eq!(lc.fetches(), 2);
    }

    #[test]
    fn fixed_token_cannot_be_refreshed() {
        let now = t0();
        let mut lc = TokenLifecycle::fixed(Secret::new("f"), Some(now + Duration::from_secs(10)));
        assert_eq!(lc.poll(now), TokenAction::Use(Secret::new("f")));
        assert!(!lc.handle_rejected(&Secret::new("f")));
        assert_eq!(lc.poll(now), TokenAction::Unavailable);

        let mut lc = TokenLifecycle::fixed(Secret::new("f"), Some(now + Duration::from_secs(10)));
        assert_eq!(
            lc.poll(now + Duration::from_secs(11)),
            TokenAction::Unavailable
        );
        let mut lc = TokenLifecycle::fixed(Secret::new("f"), None);
        assert_eq!(
            lc.poll(now + Duration::from_secs(1_000_000)),
            TokenAction::Use(Secret::new("f"))
        );
    }
}
