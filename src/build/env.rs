//! The environment hooks see, as disk-image-create and `run_in_target` set it: everything
//! outside the chroot, a cleared environment plus an allow-list inside it.

use std::collections::BTreeMap;

use crate::order::plan::Plan;

use super::Paths;

/// Variables handed into the chroot besides dib's own: `DIB_*` and proxies.
fn passes_into_chroot(key: &str) -> bool {
    key.starts_with("DIB_")
        || matches!(
            key.to_ascii_lowercase().as_str(),
            "http_proxy" | "https_proxy" | "no_proxy" | "ftp_proxy" | "all_proxy"
        )
        || key == "TERM"
}

/// dib's `die`, as an exported bash function. dib's version exits with the previous command's
/// status, so `if ...; then die msg; fi` exits 0; dibkit's always fails.
const DIE: &str = "() {  local rc=$?; echo \"ERROR: $*\" >&2; if [ \"$rc\" -eq 0 ]; then rc=1; fi; exit \"$rc\"\n}";

/// The variables dib defines for every hook.
#[must_use]
pub fn dib_vars(
    plan: &Plan,
    paths: &Paths,
    opts: &super::Options,
    element_paths: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("LC_ALL".into(), "C".into());
    v.insert("ARCH".into(), opts.arch.clone());
    // As in dib: the -o value as given, so files named after it (manifests) land beside the output.
    v.insert("IMAGE_NAME".into(), opts.output.display().to_string());
    v.insert(
        "IMAGE_TYPE".into(),
        opts.types.first().cloned().unwrap_or_else(|| "tar".into()),
    );
    v.insert("DIB_DEBUG_TRACE".into(), opts.debug_trace.to_string());
    v.insert(
        "DIB_IMAGE_CACHE".into(),
        paths.image_cache.display().to_string(),
    );
    v.insert(
        "DIB_OFFLINE".into(),
        if opts.offline {
            "1".into()
        } else {
            std::env::var("DIB_OFFLINE").unwrap_or_default()
        },
    );
    v.insert(
        "DIB_CHECKSUM".into(),
        if opts.checksum {
            "1".into()
        } else {
            "0".into()
        },
    );
    v.insert(
        "DIB_DEFAULT_INSTALLTYPE".into(),
        std::env::var("DIB_DEFAULT_INSTALLTYPE").unwrap_or_else(|_| "source".into()),
    );
    v.insert("ELEMENTS_PATH".into(), paths.elements_path.clone());
    let names: Vec<&str> = plan.elements.iter().map(|e| e.name.as_str()).collect();
    v.insert("IMAGE_ELEMENT".into(), names.join(" "));
    let mut yaml = String::new();
    for (n, p) in element_paths {
        yaml.push_str(&format!("{n}: {p}\n"));
    }
    v.insert("IMAGE_ELEMENT_YAML".into(), yaml);
    v.insert("TMP_BUILD_DIR".into(), paths.build.display().to_string());
    v.insert(
        "TMP_IMAGE_DIR".into(),
        paths.image_dir.display().to_string(),
    );
    v.insert("TMP_HOOKS_PATH".into(), paths.hooks.display().to_string());
    v.insert("TMP_MOUNT_PATH".into(), paths.mnt.display().to_string());
    v.insert("DIB_ARGS".into(), opts.elements.join(" "));
    v.insert("DEBIAN_FRONTEND".into(), "noninteractive".into());
    // The package-installs and pkg-map elements call back into dibkit on the host.
    if let Ok(exe) = std::env::current_exe() {
        v.insert("DIBKIT".into(), exe.display().to_string());
    }
    v
}

/// Environment for hooks run on the host: the caller's, dib's variables, and dib's exported
/// functions `die` and `get_image_element_array`.
#[must_use]
pub fn outside(
    vars: &BTreeMap<String, String>,
    element_paths: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.remove("TARGET_ROOT");
    env.extend(vars.clone());
    env.insert("BASH_FUNC_die%%".into(), DIE.into());
    let mut array = String::new();
    for (n, p) in element_paths {
        array.push_str(&format!("[{n}]={p} "));
    }
    env.insert(
        "BASH_FUNC_get_image_element_array%%".into(),
        format!("() {{  echo \"{array}\"\n}}"),
    );
    env.into_iter().collect()
}

/// Environment inside the chroot: cleared, then dib's variables, `DIB_*` and proxies, with
/// dib's literal PATH and `HOME=/root`. Bash functions do not survive sudo in dib either.
#[must_use]
pub fn inside(vars: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| passes_into_chroot(k))
        .collect();
    env.extend(vars.clone());
    let host_path = std::env::var("PATH").unwrap_or_default();
    env.insert(
        "PATH".into(),
        format!("{host_path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    );
    env.insert("HOME".into(), "/root".into());
    env.into_iter().collect()
}
