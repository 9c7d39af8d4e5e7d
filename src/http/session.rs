//! Dashboard sessions, held in the server's memory: a random id in an
//! HttpOnly, SameSite=Strict cookie, kept only as its SHA-256 here. A session
//! ends at sign-out, after [`IDLE`] without a request, [`LIFETIME`] after
//! sign-in, or when the server restarts.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::token::{new_secret, secrets_match, sha256_hex, TOKEN_PREFIX};

/// A session ends this long after sign-in: 12 h.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A session ends after this long without a request: 1 h.
pub(crate) const IDLE: Duration = Duration::from_secs(3600);
/// The most sessions kept at once; the oldest is dropped beyond it.
const MAX_SESSIONS: usize = 1000;

/// A secret held in memory and never shown (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One signed-in admin.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token's user.
    pub user: String,
    /// The admin token signed in with, re-checked at every request so that a
    /// revocation ends the session at once.
    pub token: Secret,
    /// The form token every state-changing form carries.
    pub csrf: Secret,
    /// A one-time message for the next page ("Retried 3 jobs").
    pub flash: Option<String>,
    created: Instant,
    seen: Instant,
}

impl Session {
    /// True when `presented` is this session's form token (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        secrets_match(presented, &self.csrf.0)
    }
}

/// The sessions of one server.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; returns the cookie value (shown only here).
    pub fn create(&self, user: &str, token: &str) -> String {
        let id = random();
        let now = Instant::now();
        let session = Session {
            user: user.to_string(),
            token: Secret(token.to_string()),
            csrf: Secret(random()),
            flash: None,
            created: now,
            seen: now,
        };
        let mut map = self.lock();
        map.retain(|_, s| live(s, now));
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(sha256_hex(&id), session);
        id
    }

    /// The live session of cookie value `id` (its idle clock restarted), taking
    /// its flash message; `None` (and forgotten) when it has expired.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = sha256_hex(id);
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(&key)?;
        if !live(session, now) {
            map.remove(&key);
            return None;
        }
        session.seen = now;
        let view = session.clone();
        session.flash = None;
        Some(view)
    }

    /// Leaves a message for the next page of session `id`.
    pub fn flash(&self, id: &str, message: String) {
        if let Some(s) = self.lock().get_mut(&sha256_hex(id)) {
            s.flash = Some(message);
        }
    }

    /// Ends session `id` (sign-out, or its token was revoked).
    pub fn end(&self, id: &str) {
        self.lock().remove(&sha256_hex(id));
    }
}

/// 64 random hex digits (not prefixed like API tokens: these are not tokens).
fn random() -> String {
    new_secret().trim_start_matches(TOKEN_PREFIX).to_string()
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.created) < LIFETIME && now.duration_since(s.seen) < IDLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_it_ends_and_flashes_once() {
        let sessions = Sessions::default();
        let id = sessions.create("ops", "jobq_secret");
        let s = sessions.get(&id).expect("live");
        assert_eq!(s.user, "ops");
        assert!(s.csrf_ok(&s.csrf.0.clone()));
        assert!(!s.csrf_ok("guess"));
        sessions.flash(&id, "done".into());
        assert_eq!(sessions.get(&id).unwrap().flash.as_deref(), Some("done"));
        assert_eq!(sessions.get(&id).unwrap().flash, None);
        assert!(sessions.get("another").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn secrets_are_not_shown_in_debug_output() {
        let sessions = Sessions::default();
        let id = sessions.create("ops", "jobq_topsecret");
        let shown = format!("{:?} {:?}", sessions, sessions.get(&id));
        assert!(!shown.contains("topsecret") && !shown.contains(&id));
    }

    #[test]
    fn an_idle_or_old_session_is_not_live() {
        let now = Instant::now();
        let Some(old) = now.checked_sub(IDLE + Duration::from_secs(1)) else {
            return; // a machine up for less than an hour: nothing to check
        };
        let s = Session {
            user: "u".into(),
            token: Secret("t".into()),
            csrf: Secret("c".into()),
            flash: None,
            created: now,
            seen: old,
        };
        assert!(!live(&s, now));
        assert!(live(&Session { seen: now, ..s }, now));
    }
}
