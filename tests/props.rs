//! Property tests (fuzzing with proptest) for the parsers and the ordering: any input gives
//! an answer, never a panic, and orders are total.

use std::cmp::Ordering;

use dibkit::element::parse::name_list;
use dibkit::lint::{shell, yaml};
use dibkit::order::sort::compare;
use proptest::prelude::*;

fn hook_name() -> impl Strategy<Value = String> {
    "[-0-9A-Za-z_.]{0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `sort -n` order must be a total order, or sorting would be meaningless.
    #[test]
    fn sort_n_is_a_total_order(a in hook_name(), b in hook_name(), c in hook_name()) {
        prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        prop_assert_eq!(compare(&a, &a), Ordering::Equal);
        if compare(&a, &b) != Ordering::Greater && compare(&b, &c) != Ordering::Greater {
            prop_assert_ne!(compare(&a, &c), Ordering::Greater);
        }
        // Equal only when identical: dib's order never depends on input order.
        prop_assert_eq!(compare(&a, &b) == Ordering::Equal, a == b);
    }

    #[test]
    fn name_list_never_panics_and_trims(text in "\\PC{0,200}") {
        for n in name_list(&text) {
            prop_assert!(!n.name.is_empty());
            prop_assert_eq!(n.name.trim(), n.name.as_str());
        }
    }

    #[test]
    fn yaml_parser_never_panics(text in "[ -~\\n\\t]{0,300}") {
        let _ = yaml::parse(&text);
    }

    #[test]
    fn yaml_scalar_typing_never_panics(text in "\\PC{0,20}") {
        let _ = yaml::yaml11_type(&text);
        let _ = yaml::python_str_if_changed(&text);
    }

    #[test]
    fn shell_helpers_never_panic(line in "\\PC{0,120}") {
        for r in shell::var_refs(&line) {
            prop_assert!(r.range.end <= line.len());
            prop_assert!(line.is_char_boundary(r.range.start) && line.is_char_boundary(r.range.end));
        }
        let _ = shell::assigned_names(&line);
        let _ = shell::strip_comment(&line);
    }
}

/// Regressions kept from fuzzing.
#[test]
fn fuzz_regressions() {
    assert!(yaml::parse("? - :\n").is_ok() || yaml::parse("? - :\n").is_err());
    assert_eq!(compare("-", "0"), Ordering::Less);
    assert_eq!(compare(".", "0"), Ordering::Less);
    assert!(shell::var_refs("${").is_empty());
    assert!(shell::var_refs("$").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whole elements with arbitrary file contents: every rule runs, nothing panics.
    #[test]
    fn lint_never_panics_on_arbitrary_elements(
        deps in "\\PC{0,80}",
        hook in proptest::collection::vec(any::<u8>(), 0..200),
        script in "#!/bin/bash\n[ -~\\n\\t]{0,200}",
        pkgs in "[ -~\\n]{0,150}",
        pkgmap in "[ -~\\n]{0,100}",
        env in "[ -~\\n]{0,100}",
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let el = tmp.path().join("el");
        for d in ["install.d", "environment.d"] {
            std::fs::create_dir_all(el.join(d)).unwrap();
        }
        std::fs::write(el.join("element-deps"), &deps).unwrap();
        std::fs::write(el.join("install.d/10-bytes"), &hook).unwrap();
        std::fs::write(el.join("install.d/20-script"), &script).unwrap();
        std::fs::write(el.join("package-installs.yaml"), &pkgs).unwrap();
        std::fs::write(el.join("pkg-map"), &pkgmap).unwrap();
        std::fs::write(el.join("environment.d/10-env.bash"), &env).unwrap();
        let opts = dibkit::lint::Options {
            targets: vec![el],
            builtins: Some(dibkit::element::discover::Builtins::None),
            ..Default::default()
        };
        let config = dibkit::lint::config::Config::default();
        let report = dibkit::lint::run(&opts, &config).unwrap();
        let _ = dibkit::lint::render::full(&report.ws, &report.diagnostics, false);
        let _ = dibkit::lint::render::sarif(&report.ws, &report.diagnostics);
        let mut ws = report.ws;
        let _ = dibkit::lint::fix::apply(&mut ws, &config, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The block-device configuration parser answers every input with a config or an error.
    #[test]
    fn blockdev_config_never_panics(text in "[-a-z0-9_:%/ \\n\\[\\],'\"]{0,300}") {
        if let Ok(c) = dibkit::blockdev::config::parse(&text) {
            let _ = c.order();
            let _ = c.fstab();
            for i in 0..c.partitionings.len() {
                let _ = dibkit::blockdev::layout::place(&c, i, 1 << 30);
            }
        }
    }

    #[test]
    fn size_specs_never_panic(spec in "\\PC{0,16}") {
        let _ = dibkit::blockdev::size::parse(&spec);
    }
}
