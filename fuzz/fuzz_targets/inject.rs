//! `inject` on any input: never a panic; and whenever it accepts the stream, what it writes
//! parses again, carries no further edit (a second run is byte-identical), and differs from
//! the input only in the lines it added or changed. `inject`'s own flow (workloads resolved
//! one at a time into brief decisions) must write, tell and refuse exactly what the
//! whole-stream flow does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::manifest::{analyze, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As `inject` reads a stream, and as `plan` does (every decision in full).
    let options = Options {
        brief_decisions: true,
        notes: true,
        ..Options::default()
    };
    let whole = Options {
        brief_decisions: false,
        ..options.clone()
    };
    let (analysis, full) = match (analyze(text, &options), analyze(text, &whole)) {
        (Ok(analysis), Ok(full)) => (analysis, full),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "the two flows refuse differently");
            return;
        }
        (a, b) => panic!(
            "one flow refuses: brief {:?}, whole {:?}\n--- input\n{text}",
            a.err().map(|e| e.to_string()),
            b.err().map(|e| e.to_string())
        ),
    };
    let mut out = Vec::new();
    analysis.write_to(&mut out).expect("writing to memory");
    let out = String::from_utf8(out).expect("inject writes UTF-8");
    let mut by_full = Vec::new();
    full.write_to(&mut by_full).expect("writing to memory");
    assert_eq!(out.as_bytes(), &by_full[..], "the two flows write differently");
    let notes = |a: &reconfig::manifest::Analysis<'_>| -> Vec<String> {
        let told = a.notes().map(|n| n.text);
        let warned = a.resolution.warnings.iter().chain(&a.resolution.missing);
        told.chain(warned.map(ToString::to_string))
            .chain(a.parsed.doubts.iter().map(ToString::to_string))
            .collect()
    };
    assert_eq!(notes(&analysis), notes(&full), "the two flows tell differently");
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
