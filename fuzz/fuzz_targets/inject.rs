//! `inject` on any input: never a panic; and whenever it accepts the stream, what it writes
//! parses again, carries no further edit (a second run is byte-identical), and differs from
//! the input only in the lines it added or changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::manifest::{analyze, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = Options::default();
    let Ok(analysis) = analyze(text, &options) else {
        return;
    };
    let mut out = Vec::new();
    analysis.write_to(&mut out).expect("writing to memory");
    let out = String::from_utf8(out).expect("inject writes UTF-8");
    let again = match analyze(&out, &options) {
        Ok(again) => again,
        Err(e) => {
            panic!("inject's output does not parse: {e}\n--- input\n{text}\n--- output\n{out}")
        }
    };
    let mut second = Vec::new();
    again.write_to(&mut second).expect("writing to memory");
    assert_eq!(
        out.as_bytes(),
        &second[..],
        "a second inject changed the output\n--- input\n{text}"
    );
    if analysis.changed() == 0 {
        assert_eq!(out, text, "nothing was annotated, yet the text changed");
    } else {
        // Every input line is still there, in order: inject only adds or rewrites annotation lines.
        let kept = text.lines().filter(|line| out.contains(line)).count();
        let lost = text.lines().count() - kept;
        assert!(
            lost <= analysis.changed(),
            "{lost} input lines are gone but only {} templates were edited\n--- input\n{text}\n--- output\n{out}",
            analysis.changed()
        );
    }
});
