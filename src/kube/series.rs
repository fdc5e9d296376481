//! How a burst of config versions becomes a few API writes, not one Event and one pod patch
//! per version.
//!
//! A config that flaps (a certificate re-issued in a loop, a generator rewriting a ConfigMap)
//! makes versions as fast as the volume changes. Only the newest state and how often things
//! happened are worth the API server's and etcd's load, so reports are paced and folded:
//! - [`Pace`] decides when one channel (the pod's annotations, or the Events of one reason)
//!   writes: at once when it has written nothing for [`SETTLE`]; otherwise once the burst has
//!   been quiet for [`SETTLE`], and at the latest [`MAX_DELAY`] after the first news it held
//!   back. Urgent news waits at most until [`SETTLE`] after the last write. So a channel writes
//!   at most once per [`SETTLE`], a lone change shows at once, and a flap every
//!   [`MAX_DELAY`].
//! - [`EventBook`] paces the Events of each reason on their own, so a rejection in the middle
//!   of a burst of applied versions is written at once. The occurrences it held back become one
//!   events.k8s.io/v1 Event with the note of the newest and a `series` counting them all
//!   (`kubectl describe pod` shows `(x57 over 10s)`). When the newest says exactly what the
//!   Event written last says (the same version with the same outcome), that Event's `series`
//!   grows instead, with a PATCH, as client-go's event broadcaster does with repeats. Only
//!   then: the API server keeps an Event's note immutable, and a series must not count under a
//!   note that names an older version.
//!
//! Nothing here does I/O or reads the clock: callers pass the time.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;

/// A burst is over when nothing new came for this long; no channel writes more often.
pub const SETTLE: Duration = Duration::from_secs(1);
/// The longest news waits while a burst goes on.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// A series with no new occurrence for this long is finished: a repeat starts a new Event
/// (client-go's event broadcaster finishes series after the same 6 minutes).
pub const SERIES_IDLE: Duration = Duration::from_secs(6 * 60);

/// When one channel writes; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct Pace {
    last_write: Option<Instant>,
    held: Option<Held>,
}

/// News not written yet: when the first and the newest of it came.
#[derive(Debug, Clone, Copy)]
struct Held {
    since: Instant,
    latest: Instant,
}

impl Pace {
    /// Something new to write came at `now`.
    pub fn news(&mut self, now: Instant) {
        match &mut self.held {
            Some(held) => held.latest = held.latest.max(now),
            None => {
                self.held = Some(Held {
                    since: now,
                    latest: now,
                });
            }
        }
    }

    /// When the news held back is to be written (maybe already past); `None` without news.
    pub fn due(&self, urgent: bool) -> Option<Instant> {
        let held = self.held?;
        let Some(last) = self.last_write else {
            return Some(held.since);
        };
        let calm = last + SETTLE;
        if held.since >= calm {
            return Some(held.since);
        }
        if urgent {
            return Some(calm);
        }
        Some((held.latest + SETTLE).min(held.since + MAX_DELAY))
    }

    /// A write of everything held back started at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.last_write = Some(now);
        self.held = None;
    }
}

/// What one Event says: the fields the API server keeps immutable once it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

/// Occurrences of one reason counted together: how many, when the first and the newest came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub count: u32,
    /// A new Event's `eventTime`.
    pub first: Timestamp,
    /// `series.lastObservedTime`.
    pub last: Timestamp,
}

impl Span {
    /// One occurrence, at `at`.
    pub fn one(at: Timestamp) -> Span {
        Span {
            count: 1,
            first: at,
            last: at,
        }
    }

    fn and(self, later: Span) -> Span {
        Span {
            count: self.count.saturating_add(later.count),
            first: self.first,
            last: later.last,
        }
    }
}

/// An Event on the API server: its name, and the occurrences its series counts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub span: Span,
}

/// An Event to write: a new one, or more occurrences for the series of one written before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The newest occurrence: a new Event's note; an extended Event says the same already.
    pub what: Occurrence,
    /// The occurrences this write reports.
    pub span: Span,
    /// The Event whose series these occurrences extend.
    pub extends: Option<Series>,
}

impl Write {
    /// The Event as it stands once `extends` counts these occurrences too.
    pub fn extended(&self) -> Option<Series> {
        self.extends.as_ref().map(|series| Series {
            name: series.name.clone(),
            span: series.span.and(self.span),
        })
    }

    /// The Event as it stands once created as `name`.
    pub fn created(&self, name: String) -> Series {
        Series {
            name,
            span: self.span,
        }
    }
}

/// The Events of one reason.
#[derive(Debug)]
struct Channel {
    reason: &'static str,
    pace: Pace,
    /// The newest occurrence not written yet, and all of them counted.
    held: Option<(Occurrence, Span)>,
    /// The Event written last, what it says, and when it was last written to.
    last: Option<(Occurrence, Series, Instant)>,
}

/// The Events waiting to be written, by reason; see the module documentation.
#[derive(Debug, Default)]
pub struct EventBook {
    /// A few reasons, each found by a look along the list.
    channels: Vec<Channel>,
}

impl EventBook {
    /// `what` happened at `at` (the wall clock) and `now` (the monotonic one).
    pub fn record(&mut self, what: Occurrence, now: Instant, at: Timestamp) {
        let channel = self.channel(what.reason);
        channel.pace.news(now);
        let span = match channel.held.take() {
            Some((_, span)) => span.and(Span::one(at)),
            None => Span::one(at),
        };
        channel.held = Some((what, span));
    }

    /// When the next write is due (maybe already past); `None` when nothing waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.channels.iter().filter_map(|c| c.pace.due(false)).min()
    }

    /// Takes the writes due at `now`, oldest news first, so the newest is written last.
    pub fn take_due(&mut self, now: Instant) -> Vec<Write> {
        let mut writes = Vec::new();
        for channel in &mut self.channels {
            if channel.pace.due(false).is_none_or(|due| due > now) {
                continue;
            }
            let Some((what, span)) = channel.held.take() else {
                continue;
            };
            channel.pace.wrote(now);
            let extends = channel
                .last
                .as_ref()
                .filter(|(said, _, at)| *said == what && now.duration_since(*at) < SERIES_IDLE)
                .map(|(_, series, _)| series.clone());
            writes.push(Write {
                what,
                span,
                extends,
            });
        }
        writes.sort_by_key(|w| w.span.last);
        writes
    }

    /// The Event that `what` was written to stands as `series` since `now`: a repeat of it
    /// extends it.
    pub fn written(&mut self, what: &Occurrence, series: Series, now: Instant) {
        self.channel(what.reason).last = Some((what.clone(), series, now));
    }

    fn channel(&mut self, reason: &'static str) -> &mut Channel {
        let found = self.channels.iter().position(|c| c.reason == reason);
        let index = found.unwrap_or_else(|| {
            self.channels.push(Channel {
                reason,
                pace: Pace::default(),
                held: None,
                last: None,
            });
            self.channels.len() - 1
        });
        &mut self.channels[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn applied(version: u32) -> Occurrence {
        Occurrence {
            kind: "Normal",
            reason: "ConfigApplied",
            action: "Reload",
            note: format!("config v{version} applied"),
        }
    }

    fn rejected() -> Occurrence {
        Occurrence {
            kind: "Warning",
            reason: "ConfigRejected",
            action: "Validate",
            note: "config bad rejected".into(),
        }
    }

    fn at(t0: Timestamp, offset: Duration) -> Timestamp {
        t0 + offset
    }

    #[test]
    fn a_lone_change_is_written_at_once() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert_eq!(pace.due(false), None);
        pace.news(t0);
        assert_eq!(pace.due(false), Some(t0));
        pace.wrote(t0);
        assert_eq!(pace.due(false), None);
        let later = t0 + SETTLE + ms(1);
        pace.news(later);
        assert_eq!(
            pace.due(false),
            Some(later),
            "a quiet channel writes at once"
        );
    }

    #[test]
    fn a_burst_waits_until_it_settles_and_at_most_the_max_delay() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.news(t0);
        pace.wrote(t0);
        pace.news(t0 + ms(50));
        pace.news(t0 + ms(300));
        assert_eq!(pace.due(false), Some(t0 + ms(300) + SETTLE), "once quiet");
        for step in 1..=400 {
            pace.news(t0 + ms(50 * step));
        }
        assert_eq!(
            pace.due(false),
            Some(t0 + ms(50) + MAX_DELAY),
            "never later than the max delay after the first news held back"
        );
    }

    #[test]
    fn urgent_news_waits_at_most_the_settle_time_after_the_last_write() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.news(t0);
        pace.wrote(t0);
        pace.news(t0 + ms(100));
        assert_eq!(pace.due(true), Some(t0 + SETTLE));
        pace.news(t0 + ms(5000));
        assert_eq!(
            pace.due(true),
            Some(t0 + SETTLE),
            "already due: written at once"
        );
    }

    #[test]
    fn writes_are_at_least_the_settle_time_apart() {
        // News every 50 ms for 30 s, written whenever due: one write per max delay.
        let t0 = Instant::now();
        let mut pace = Pace::default();
        let mut writes = Vec::new();
        for step in 0..600 {
            let now = t0 + ms(50 * step);
            pace.news(now);
            if pace.due(false).is_some_and(|due| due <= now) {
                pace.wrote(now);
                writes.push(now - t0);
            }
        }
        let end = t0 + ms(50 * 600);
        let due = pace.due(false).expect("the end of the burst waits");
        assert!(due > end - ms(50), "{:?}", due - t0);
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert!(writes.windows(2).all(|w| w[1] - w[0] >= SETTLE));
    }

    #[test]
    fn a_burst_of_versions_is_one_event_counting_them_named_after_the_newest() {
        let t0 = Instant::now();
        let w0 = Timestamp::UNIX_EPOCH;
        let mut book = EventBook::default();
        book.record(applied(1), t0, w0);
        let first = book.take_due(t0);
        assert_eq!(
            first,
            vec![Write {
                what: applied(1),
                span: Span::one(w0),
                extends: None
            }]
        );
        book.written(&applied(1), first[0].created("e1".into()), t0);

        for v in 2..=200 {
            let offset = ms(50 * u64::from(v - 1));
            book.record(applied(v), t0 + offset, at(w0, offset));
            assert!(
                book.take_due(t0 + offset).is_empty(),
                "held back during the burst"
            );
        }
        let end = t0 + ms(50 * 199);
        assert_eq!(book.next_due(), Some(t0 + ms(50) + MAX_DELAY));
        let writes = book.take_due(end + SETTLE);
        assert_eq!(
            writes,
            vec![Write {
                what: applied(200),
                span: Span {
                    count: 199,
                    first: at(w0, ms(50)),
                    last: at(w0, ms(50 * 199))
                },
                extends: None,
            }],
            "a new Event: its note names the newest version"
        );
        assert_eq!(book.next_due(), None);
    }

    #[test]
    fn each_reason_is_paced_on_its_own() {
        let t0 = Instant::now();
        let w0 = Timestamp::UNIX_EPOCH;
        let mut book = EventBook::default();
        book.record(applied(1), t0, w0);
        book.take_due(t0);
        book.record(applied(2), t0 + ms(50), w0);
        book.record(rejected(), t0 + ms(100), w0);
        let writes = book.take_due(t0 + ms(100));
        assert_eq!(
            writes.iter().map(|w| w.what.reason).collect::<Vec<_>>(),
            ["ConfigRejected"],
            "a rejection is not held back by a burst of applied versions"
        );
    }

    #[test]
    fn a_repeat_of_the_event_written_last_grows_its_series() {
        let t0 = Instant::now();
        let w0 = Timestamp::UNIX_EPOCH;
        let mut book = EventBook::default();
        book.record(rejected(), t0, w0);
        let first = book.take_due(t0).remove(0);
        book.written(&rejected(), first.created("e1".into()), t0);

        // Again, after a quiet second: written at once, as more of the same series.
        let later = t0 + ms(1500);
        book.record(rejected(), later, at(w0, ms(1500)));
        let again = book.take_due(later).remove(0);
        assert_eq!(
            again.extends,
            Some(Series {
                name: "e1".into(),
                span: Span::one(w0)
            })
        );
        let grown = again.extended().expect("extended");
        assert_eq!(
            grown.span,
            Span {
                count: 2,
                first: w0,
                last: at(w0, ms(1500))
            }
        );
        book.written(&rejected(), grown, later);

        // Three more in a burst: one write, the series counts 5.
        for n in 1..=3 {
            let offset = ms(1500 + 100 * n);
            book.record(rejected(), t0 + offset, at(w0, offset));
        }
        let due = book.next_due().expect("due");
        let burst = book.take_due(due).remove(0);
        assert_eq!(burst.extended().expect("extended").span.count, 5);

        // After the series went idle, the same note starts a new Event.
        book.written(&rejected(), burst.extended().expect("extended"), due);
        let idle = due + SERIES_IDLE;
        book.record(rejected(), idle, w0);
        assert_eq!(book.take_due(idle).remove(0).extends, None);
    }

    #[test]
    fn a_different_note_never_extends_a_series() {
        let t0 = Instant::now();
        let w0 = Timestamp::UNIX_EPOCH;
        let mut book = EventBook::default();
        book.record(applied(1), t0, w0);
        let first = book.take_due(t0).remove(0);
        book.written(&applied(1), first.created("e1".into()), t0);
        // v1 again is folded in, but the newest is v2: a new Event.
        book.record(applied(2), t0 + ms(10), w0);
        book.record(applied(1), t0 + ms(20), w0);
        book.record(applied(2), t0 + ms(30), w0);
        let write = book.take_due(t0 + ms(30) + SETTLE).remove(0);
        assert_eq!(write.extends, None);
        assert_eq!(write.span.count, 3);
        assert_eq!(write.what, applied(2));
    }
}
