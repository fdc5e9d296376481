//! `plan` on two renders cut from one input: never a panic, and a render compared with itself
//! restarts nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::manifest::compare::{compare, Settings, Verdict};
use reconfig::manifest::shape::Sides;
use reconfig::manifest::{analyze, Options};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut at = (cut as usize * text.len()) / 255;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let (old, new) = text.split_at(at);
    // As `plan` reads: every pod template's fields kept as digests.
    let options = Options {
        template_shapes: true,
        ..Options::default()
    };
    let settings = |sides| Settings {
        sides,
        annotation_key: &options.annotation_key,
    };
    let (Ok(old), Ok(new)) = (analyze(old, &options), analyze(new, &options)) else {
        return;
    };
    let _ = compare(&old, &new, settings(Sides::Renders));
    let _ = compare(&old, &new, settings(Sides::Live));
    for change in compare(&new, &new, settings(Sides::Renders)) {
        assert!(
            !matches!(
                change.verdict,
                Verdict::Restart | Verdict::New | Verdict::Removed
            ),
            "a render compared with itself: {change:?}"
        );
    }
});
