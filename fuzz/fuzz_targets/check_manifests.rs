//! `check --manifests` on any input: reading every ConfigMap and Secret key and validating it by
//! its extension never panics, and a key is never a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reconfig::config::{ConfigFile, DEFAULT_MODE};
use reconfig::manifest::data::config_objects;
use reconfig::manifest::node::Limits;
use reconfig::manifest::object::check_key;
use reconfig::validate::Validator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(objects) = config_objects(text, Limits::default(), 1 << 20) else {
        return;
    };
    let files: Vec<ConfigFile> = objects
        .into_iter()
        .flat_map(|o| {
            let name = o.name.clone();
            o.items.into_iter().map(move |item| {
                assert!(
                    check_key(&item.key).is_ok(),
                    "a key that is not a file name was accepted: {:?}",
                    item.key
                );
                ConfigFile {
                    path: format!("configmap/{name}/{}", item.key),
                    name: item.key,
                    bytes: item.bytes,
                    mode: DEFAULT_MODE,
                }
            })
        })
        .collect();
    let validator = Validator::new(None, &[], None).expect("a validator without schemas");
    let _ = validator.check_files(&files);
});
