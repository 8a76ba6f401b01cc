//! The variables disk-image-create exports before it first sources environment.d (spec
//! §7.1), for code that sources a set's environment.d without building (`dibkit packages`).
//! environment.d files use them under `set -u` (`manifests` reads `IMAGE_NAME`), so sourcing
//! without them fails where dib would not. Pure: the caller passes its environment and a
//! scratch directory standing in for dib's temporary build directories.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::plan::Plan;

/// What the variables are computed from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub arch: &'a str,
    /// `ELEMENTS_PATH` as dib exports it (the user's entries, then the built-in directory).
    pub elements_path: &'a str,
    /// The element arguments as given on the command line (`DIB_ARGS`).
    pub args: &'a [String],
    /// Stands in for `TMP_BUILD_DIR` and `TMP_IMAGE_DIR`.
    pub scratch: &'a Path,
    /// The caller's environment: dib honours several variables from it.
    pub caller: &'a BTreeMap<String, String>,
}

/// The variables dib has exported when root.d's run sources environment.d. The ones that
/// depend on the block-device layout (`DIB_ROOT_LABEL`, `DIB_MOUNTPOINTS`, ...) are left out:
/// computing them needs the layout, and no environment.d file of upstream's reads them.
#[must_use]
pub fn exported(i: &Inputs<'_>) -> BTreeMap<String, String> {
    let from = |k: &str, default: &str| {
        i.caller
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let home = i.caller.get("HOME").map_or("/root", String::as_str);
    let build = i.scratch.join("dib_build");
    let image = i.scratch.join("dib_image");
    let mut v = BTreeMap::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_owned(), val);
    };
    set("LC_ALL", "C".to_owned());
    set("ARCH", i.arch.to_owned());
    set("IMAGE_NAME", from("IMAGE_NAME", "image"));
    set("IMAGE_TYPE", from("IMAGE_TYPE", "qcow2"));
    set("FS_TYPE", from("FS_TYPE", "ext4"));
    set("DIB_DEBUG_TRACE", from("DIB_DEBUG_TRACE", "0"));
    set(
        "DIB_IMAGE_CACHE",
        from("DIB_IMAGE_CACHE", &format!("{home}/.cache/image-create")),
    );
    set(
        "DIB_LOCKFILES",
        from("DIB_LOCKFILES", &format!("{home}/.cache/dib/lockfiles")),
    );
    set("DIB_OFFLINE", from("DIB_OFFLINE", ""));
    set("DIB_CHECKSUM", from("DIB_CHECKSUM", "0"));
    set("DIB_NO_TMPFS", from("DIB_NO_TMPFS", "0"));
    set("DIB_MIN_TMPFS", from("DIB_MIN_TMPFS", "2"));
    set("ELEMENTS_PATH", i.elements_path.to_owned());
    let names: Vec<&str> = i.plan.elements.iter().map(|e| e.name.as_str()).collect();
    set("IMAGE_ELEMENT", names.join(" "));
    let mut yaml = String::new();
    for e in &i.plan.elements {
        let _ = writeln!(yaml, "{}: {}", e.name, e.path);
    }
    set("IMAGE_ELEMENT_YAML", yaml);
    set("TMP_BUILD_DIR", build.display().to_string());
    set("TMP_IMAGE_DIR", image.display().to_string());
    set("TMP_HOOKS_PATH", build.join("hooks").display().to_string());
    set("TMP_MOUNT_PATH", build.join("mnt").display().to_string());
    set("OUT_IMAGE_PATH", String::new());
    set(
        "DIB_BLOCK_DEVICE_PARAMS_YAML",
        build.join("block-device/params.yaml").display().to_string(),
    );
    set("DIB_ARGS", i.args.join(" "));
    // `declare -p` of the DIB_ variables at startup, one per line.
    let mut dib_env = String::new();
    for (k, val) in i.caller.iter().filter(|(k, _)| k.starts_with("DIB_")) {
        let val = val.replace(['"', '\\', '$', '`'], "");
        let _ = writeln!(dib_env, "declare -x {k}=\"{val}\"");
    }
    set("DIB_ENV", dib_env);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(plan: &'a Plan, caller: &'a BTreeMap<String, String>) -> Inputs<'a> {
        Inputs {
            plan,
            arch: "amd64",
            elements_path: "/e",
            args: &[],
            scratch: Path::new("/tmp/x"),
            caller,
        }
    }

    #[test]
    fn image_name_defaults_and_honours_the_caller() {
        let plan = Plan::default();
        let mut caller = BTreeMap::new();
        {
            let v = exported(&inputs(&plan, &caller));
            assert_eq!(v["IMAGE_NAME"], "image");
            assert_eq!(v["TMP_MOUNT_PATH"], "/tmp/x/dib_build/mnt");
            assert_eq!(v["DIB_OFFLINE"], "");
        }
        caller.insert("IMAGE_NAME".to_owned(), "out/disk".to_owned());
        assert_eq!(exported(&inputs(&plan, &caller))["IMAGE_NAME"], "out/disk");
    }
}
