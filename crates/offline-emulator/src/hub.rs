//! The two providers side by side, with what they share ([`Env`]) and the admin token:
//! what the accept loop, the admin routes and [`crate::RunningEmulator`] hold.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::common::config::EmulatorConfig;
use crate::common::{random_hex, Env};
use crate::pan123::state::{Pan123Stats, State as Pan123State};
use crate::sixpan::{SixpanState, SixpanStats};

/// The emulator's counters, as `GET /_emulator/stats` answers them:
/// `{"123pan": {...}, "6pan": {...}, "faults_injected": N}`. More counters may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// The 123pan half's counters.
    #[serde(rename = "123pan")]
    pub pan123: Pan123Stats,
    /// The 6pan half's counters.
    #[serde(rename = "6pan")]
    pub sixpan: SixpanStats,
    /// Requests that met an injected fault (see [`crate::Faults`]).
    pub faults_injected: u64,
}

/// Both halves, what they share, and the admin token.
pub(crate) struct Hub {
    pub(crate) env: Arc<Env>,
    pub(crate) pan123: Arc<Pan123State>,
    pub(crate) sixpan: Arc<SixpanState>,
    /// What the admin routes that change the emulator require.
    pub(crate) admin_token: String,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the admin token: a `{:?}` of the emulator must not print it.
        f.debug_struct("Hub")
            .field("data_dir", &self.env.data_dir)
            .field("client_id", &self.pan123.client_id)
            .field("sixpan_account", &self.sixpan.account())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub(crate) fn new(
        config: &EmulatorConfig,
        data_dir: PathBuf,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let env = Arc::new(Env::new(config, data_dir, shutdown));
        let admin_token = config
            .admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("{}admin-{}", config.token_prefix, random_hex(16)));
        Self {
            pan123: Arc::new(Pan123State::new(config, Arc::clone(&env))),
            sixpan: Arc::new(SixpanState::new(config, Arc::clone(&env))),
            env,
            admin_token,
        }
    }

    /// Every counter so far.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            pan123: self.pan123.stats(),
            sixpan: self.sixpan.stats(),
            faults_injected: self.env.faults.injected(),
        }
    }
}
