//! When to act on a burst of file events.
//!
//! A kubelet `..data` swap is atomic, so it acts at once, or, when several
//! folders are watched, waits a few milliseconds for the others to land too. Plain folders change in place
//! or file by file, so they wait for a quiet period after the last event.

use std::time::{Duration, Instant};

/// Window that lets simultaneous kubelet swaps of several volumes land as one reload.
pub const SWAP_WINDOW: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A kubelet volume committed an update.
    Swap,
    /// Something changed in a plain folder.
    Edit,
}

#[derive(Debug, Default)]
pub struct Debouncer {
    quiet: Duration,
    /// [`SWAP_WINDOW`] when several folders are watched; nothing to wait for with one.
    swap_window: Duration,
    deadline: Option<Instant>,
    /// When the burst the deadline belongs to began, for the latency trace.
    since: Option<Instant>,
}

impl Debouncer {
    pub fn new(quiet: Duration, folders: usize) -> Self {
        let swap_window = if folders > 1 {
            SWAP_WINDOW
        } else {
            Duration::ZERO
        };
        Debouncer {
            quiet,
            swap_window,
            deadline: None,
            since: None,
        }
    }

    /// Records an event; edits push the deadline back, swaps never delay it further.
    pub fn event(&mut self, change: Change, now: Instant) {
        let wait = match change {
            Change::Swap => self.swap_window.min(self.quiet),
            Change::Edit => self.quiet,
        };
        let candidate = now + wait;
        self.since.get_or_insert(now);
        self.deadline = Some(match (self.deadline, change) {
            (Some(existing), Change::Swap) => existing.min(candidate),
            (Some(existing), Change::Edit) => existing.max(candidate),
            (None, _) => candidate,
        });
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether it is time to act, clearing the deadline if so.
    pub fn take_due(&mut self, now: Instant) -> bool {
        self.take_burst(now).is_some()
    }

    /// When it is time to act, how long ago the burst's first event came (the deadline is
    /// cleared); `None` before that.
    pub fn take_burst(&mut self, now: Instant) -> Option<Duration> {
        match self.deadline {
            Some(d) if d <= now => {
                self.deadline = None;
                self.since
                    .take()
                    .map(|since| now.saturating_duration_since(since))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_wait_for_quiet() {
        let t = Instant::now();
        let mut d = Debouncer::new(Duration::from_millis(100), 1);
        d.event(Change::Edit, t);
        d.event(Change::Edit, t + Duration::from_millis(60));
        assert!(!d.take_due(t + Duration::from_millis(120)));
        assert!(d.take_due(t + Duration::from_millis(160)));
        assert!(d.deadline().is_none());
    }

    #[test]
    fn swaps_act_fast_and_coalesce() {
        let t = Instant::now();
        let mut d = Debouncer::new(Duration::from_millis(100), 2);
        d.event(Change::Swap, t);
        d.event(Change::Swap, t + Duration::from_millis(2));
        assert_eq!(d.deadline(), Some(t + SWAP_WINDOW));
        d.event(Change::Edit, t + Duration::from_millis(3));
        assert_eq!(d.deadline(), Some(t + Duration::from_millis(103)));
        let mut tiny = Debouncer::new(Duration::from_millis(100), 1);
        tiny.event(Change::Swap, t);
        assert!(tiny.take_due(t));
    }

    #[test]
    fn a_burst_says_how_long_it_waited() {
        let t = Instant::now();
        let mut d = Debouncer::new(Duration::from_millis(100), 1);
        d.event(Change::Edit, t);
        d.event(Change::Edit, t + Duration::from_millis(30));
        assert_eq!(d.take_burst(t + Duration::from_millis(100)), None);
        assert_eq!(
            d.take_burst(t + Duration::from_millis(140)),
            Some(Duration::from_millis(140)),
            "measured from the burst's first event"
        );
        d.event(Change::Swap, t + Duration::from_millis(200));
        assert_eq!(
            d.take_burst(t + Duration::from_millis(200)),
            Some(Duration::ZERO),
            "a new burst starts its own clock"
        );
    }
}
