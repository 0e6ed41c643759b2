//! Retries said on stderr: a `tracing` layer that renders the providers' retry events
//! (target `offline::retry`, INFO, fields `endpoint`, `error`, `delay_ms`, `attempt`,
//! `max`) as one line each, e.g. `connection refused, retrying in 2 s (2/5)`, in
//! human and `--json` mode alike (never on stdout). Short first retries are not
//! shown: a line appears once a call has been retrying for about a second.
//!
//! Until the providers emit that event, their debug event `sending again` (fields
//! `endpoint`, `error`, `delay`) is rendered the same way, attempts counted here.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The target of the providers' retry events.
pub(crate) const TARGET: &str = "offline::retry";

/// The layer. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct RetryLayer {
    /// Per endpoint: retries seen and when the first was, for events without counts.
    seen: Mutex<HashMap<String, (u32, Instant, Instant)>>,
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    endpoint: Option<String>,
    error: Option<String>,
    delay_ms: Option<u64>,
    delay: Option<String>,
    attempt: Option<u64>,
    max: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "delay_ms" => self.delay_ms = Some(value),
            "attempt" => self.attempt = Some(value),
            "max" => self.max = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_text(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.record_text(field, s);
    }
}

impl Fields {
    fn record_text(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = Some(value),
            "endpoint" => self.endpoint = Some(value),
            "error" => self.error = Some(value),
            "delay" => self.delay = Some(value),
            "delay_ms" => self.delay_ms = value.parse().ok(),
            "attempt" => self.attempt = value.parse().ok(),
            "max" => self.max = value.parse().ok(),
            _ => {}
        }
    }
}

/// A `Duration`'s `Debug` text (`1.5s`, `250ms`) in milliseconds.
fn parse_debug_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("µs") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ns") {
        (n, 0.000_001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    Some((v * scale).round() as u64)
}

/// The one line for a retry.
pub(crate) fn render(error: &str, delay_ms: u64, attempt: Option<u64>, max: Option<u64>) -> String {
    let error = crate::client::short_refusal(error);
    let error = error.strip_prefix("transport: ").unwrap_or(&error);
    let secs = delay_ms as f64 / 1000.0;
    let delay = if delay_ms >= 10_000 || delay_ms.is_multiple_of(1000) {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    };
    match (attempt, max) {
        (Some(a), Some(m)) => format!("{error}, retrying in {delay} ({a}/{m})"),
        (Some(a), None) => format!("{error}, retrying in {delay} (attempt {a})"),
        _ => format!("{error}, retrying in {delay}"),
    }
}

impl<S: Subscriber> Layer<S> for RetryLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        let contract = target == TARGET;
        let legacy = target.starts_with("provider_123pan") || target.starts_with("provider_6pan");
        if !contract && !legacy {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if !contract && f.message.as_deref() != Some("sending again") {
            return;
        }
        let Some(delay_ms) = f
            .delay_ms
            .or_else(|| f.delay.as_deref().and_then(parse_debug_duration))
        else {
            return;
        };
        let endpoint = f.endpoint.unwrap_or_default();
        let now = Instant::now();
        let (count, first) = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let e = seen.entry(endpoint).or_insert((0, now, now));
            // A pause of a minute starts a new series.
            if now.duration_since(e.2) > Duration::from_secs(60) {
                *e = (0, now, now);
            }
            e.0 += 1;
            e.2 = now;
            (e.0, e.1)
        };
        let attempt = f.attempt.or(Some(u64::from(count)));
        // Quiet while a call has retried for less than about a second in all.
        let retrying_for = now.duration_since(first) + Duration::from_millis(delay_ms);
        if retrying_for < Duration::from_millis(900) {
            return;
        }
        let line = render(
            f.error.as_deref().unwrap_or("error"),
            delay_ms,
            attempt,
            f.max,
        );
        errln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_lines_read_like_a_sentence() {
        assert_eq!(
            render(
                "could not connect: tcp connect error: Connection refused (os error 111)",
                2000,
                Some(2),
                Some(5)
            ),
            "connection refused, retrying in 2 s (2/5)"
        );
        assert_eq!(render("503", 1500, None, None), "503, retrying in 1.5 s");
    }

    #[test]
    fn debug_durations_parse() {
        assert_eq!(parse_debug_duration("1.5s"), Some(1500));
        assert_eq!(parse_debug_duration("250ms"), Some(250));
        assert_eq!(parse_debug_duration("12µs"), Some(0));
    }
}
