//! Waiting for conditions by polling, with generous timeouts: assertions never rest on a sleep.

use std::time::{Duration, Instant};

/// Default patience: generous for a loaded 2-core CI machine; a passing test never waits it out.
pub const TIMEOUT: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(10);

/// Polls `probe` until it returns `Ok`, or panics after `timeout` with `what` and the last
/// `Err` (which should say what was seen instead).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// [`wait_for`] with a boolean condition and [`TIMEOUT`].
pub fn until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(what, TIMEOUT, || {
        if condition() {
            Ok(())
        } else {
            Err("condition false".to_string())
        }
    })
}
