//! The emulator's settings.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use offline_proto::clock::Clock;
use offline_proto::pan123::{EndpointId, IMAGE_MAX_BYTES};

use super::clock::TokioClock;
use super::faults::Faults;

/// How an emulator is set up: where it listens, the one application it knows, token
/// lifetime, rate limits and download limits.
///
/// Every field is public; start from [`EmulatorConfig::default`] and change what the
/// test needs:
///
/// ```
/// use offline_emulator::EmulatorConfig;
///
/// let config = EmulatorConfig {
///     max_image_bytes: 1024,
///     fetch_rate: Some(256 * 1024),
///     ..EmulatorConfig::default()
/// };
/// assert_eq!(config.client_id, "offline-demo-client");
/// ```
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The address to listen on. Default `127.0.0.1:0` (loopback, a free port chosen
    /// by the system; read it back with [`RunningEmulator::addr`](crate::RunningEmulator::addr)).
    pub addr: SocketAddr,
    /// The client ID the token endpoint accepts. Default `offline-demo-client`.
    pub client_id: String,
    /// The client secret the token endpoint accepts. Default `offline-demo-secret`.
    pub client_secret: String,
    /// How long an access token lives. Default 3600 s.
    pub token_lifetime: Duration,
    /// How many live (unexpired, unrevoked) access tokens one client ID may hold; at
    /// the cap the token call is refused with code 401 and `tokens number has exceeded
    /// the limit`, as the service answers (the vendor allows 3). Tokens issued by the
    /// OAuth call count too. `None` (the default): no cap.
    pub max_tokens_per_client: Option<usize>,
    /// Where downloaded files are stored (created if missing, never removed). `None`
    /// (the default) uses a fresh temporary directory that the running emulator owns
    /// and removes when it is dropped or shut down.
    pub data_dir: Option<PathBuf>,
    /// Rate limit of each endpoint, in requests per second, per client ID. The bucket
    /// allows bursts of `max(1, rate)` requests. An endpoint missing from the map, or
    /// with a rate that is not a positive finite number, is not limited. Default:
    /// [`EndpointId::default_rate_per_second`] for every endpoint.
    pub rate_limits: BTreeMap<EndpointId, f64>,
    /// Throttle of source downloads, in bytes per second per task. `None` (the
    /// default) or `Some(0)` downloads as fast as the source sends; a demo sets it so
    /// that progress is visible.
    pub fetch_rate: Option<u64>,
    /// The largest image an image-bed task accepts, in bytes. Default
    /// [`IMAGE_MAX_BYTES`] (100 MiB).
    pub max_image_bytes: u64,
    /// The largest source a cloud-drive task accepts, in bytes; a larger one fails the
    /// task. Default 4 GiB.
    pub max_source_bytes: u64,
    /// A token that is always valid, for tools (schemathesis) that cannot log in or
    /// fetch an upload token first. Default `None`. It is accepted
    ///
    /// - by 123pan as a bearer token (`Authorization: Bearer <token>`) of the
    ///   configured client ID, besides the tokens the token call issues;
    /// - by 6pan as a `Qingzhen-Token`, which no login or
    ///   [`expire_sixpan_tokens`](crate::RunningEmulator::expire_sixpan_tokens) ends;
    ///   answers hand it back in `qingzhen-token` instead of a new token;
    /// - by 6pan's storage service as an upload token (`Authorization: <token>`
    ///   without `Bearer` on the block calls, or the form's `token`): the file goes to
    ///   the root folder, named `upload-<8 hex digits>`.
    pub static_token: Option<String>,
    /// Fetch sources and POST callbacks only to loopback hosts (`127.0.0.0/8`, `::1`,
    /// `localhost`): a task whose source is elsewhere fails at once, and a callback
    /// elsewhere is not sent. For runs that feed the emulator made-up URLs. Default
    /// `false`.
    pub loopback_only: bool,
    /// Faults to inject from the start (see [`crate::Faults`]); none by default. Can be
    /// changed at run time with [`crate::RunningEmulator::set_faults`].
    pub faults: Faults,
    /// The 6pan account (phone number or e-mail) a login accepts. Default
    /// `demo@offline.local`.
    pub sixpan_account: String,
    /// The 6pan password; a login sends its lowercase hex MD5. Default
    /// `offline-demo-password`.
    pub sixpan_password: String,
    /// How many 6pan logins the account accepts within one `token_lifetime`; one more
    /// is refused with `LOGIN_USER_TOO_MUCH`. Default 1000.
    pub sixpan_max_devices: usize,
    /// How long a 6pan token keeps working after a newer one replaced it (every
    /// authenticated answer hands out a new one). Default 30 s.
    pub sixpan_rotation_grace: Duration,
    /// How long a 6pan upload token (from `/v1/store/token`) works. Default 3600 s.
    pub sixpan_upload_token_lifetime: Duration,
    /// How long a 6pan task that is not really downloaded (a magnet or ed2k link, a
    /// torrent without a loopback web seed) takes to be done, progressing linearly.
    /// Default 10 s (+10 % per second).
    pub sixpan_simulated_duration: Duration,
    /// Text every credential the emulator issues starts with: 123pan access tokens,
    /// 6pan login tokens, and the access key of 6pan upload tokens. Default empty. A
    /// test sets a sentinel here and then searches logs and output for it, to catch a
    /// token that leaks.
    pub token_prefix: String,
    /// Where the emulator reads the time: every deadline, expiry, rate-limit refill and
    /// progress (123pan `expiredAt` and token expiry, 6pan tokens and upload-token
    /// deadlines, simulated task progress, download pacing) goes through this one
    /// clock; every wait goes through `tokio::time`. Default a [`TokioClock`] made with
    /// the config, so that a test in tokio's paused time moves all of it.
    pub clock: Arc<dyn Clock>,
    /// The token the admin routes that change the emulator (`PUT /_emulator/faults`)
    /// require as `Authorization: Bearer <token>`; read it back with
    /// [`RunningEmulator::admin_token`](crate::RunningEmulator::admin_token). `None`
    /// (the default) or an empty string: a random one, made at start (after
    /// [`token_prefix`](Self::token_prefix)).
    pub admin_token: Option<String>,
    /// How many client connections are served at once; more wait in the listen backlog
    /// until one ends (with request headers due within 30 s and a body within 30 s per
    /// chunk and [`BODY_DEADLINE`](crate::BODY_DEADLINE) in all, a slow client cannot
    /// hold a slot for long). Default [`DEFAULT_MAX_CONNECTIONS`] (512); 0 reads as 1.
    pub max_connections: usize,
}

/// The default of [`EmulatorConfig::max_connections`]: 512, well below the usual
/// limit of 1,024 open files, so that the emulator keeps room for its own files and
/// its downloads.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The default of [`EmulatorConfig::max_source_bytes`]: 4 GiB.
const DEFAULT_MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            client_id: "offline-demo-client".to_owned(),
            client_secret: "offline-demo-secret".to_owned(),
            token_lifetime: Duration::from_secs(3600),
            max_tokens_per_client: None,
            data_dir: None,
            rate_limits: EndpointId::ALL
                .into_iter()
                .map(|e| (e, e.default_rate_per_second()))
                .collect(),
            fetch_rate: None,
            max_image_bytes: IMAGE_MAX_BYTES,
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
            static_token: None,
            loopback_only: false,
            faults: Faults::default(),
            sixpan_account: "demo@offline.local".to_owned(),
            sixpan_password: "offline-demo-password".to_owned(),
            sixpan_max_devices: 1000,
            sixpan_rotation_grace: Duration::from_secs(30),
            sixpan_upload_token_lifetime: Duration::from_secs(3600),
            sixpan_simulated_duration: Duration::from_secs(10),
            token_prefix: String::new(),
            clock: Arc::new(TokioClock::new()),
            admin_token: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = EmulatorConfig::default();
        assert!(c.addr.ip().is_loopback());
        assert_eq!(c.addr.port(), 0);
        assert_eq!(c.token_lifetime, Duration::from_secs(3600));
        assert_eq!(c.rate_limits.len(), EndpointId::ALL.len());
        assert_eq!(c.rate_limits[&EndpointId::OfflineProcess], 5.0);
        assert_eq!(c.max_image_bytes, 100 * 1024 * 1024);
        assert_eq!(c.max_source_bytes, 4 << 30);
    }
}
