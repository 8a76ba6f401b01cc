//! The environment hooks see, as disk-image-create and `run_in_target` set it: everything
//! outside the chroot, a cleared environment plus an allow-list inside it. Settings come
//! from the resolved options; the caller's environment is read only to pass it on to hooks.

use std::collections::BTreeMap;

use crate::order::plan::Plan;

use super::context::Paths;
use super::options::Options;

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
    opts: &Options,
    element_paths: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    v.insert("LC_ALL".into(), "C".into());
    v.insert("ARCH".into(), opts.arch.clone());
    // As in dib: the -o value as given, so files named after it (manifests) land beside the output.
    v.insert("IMAGE_NAME".into(), opts.output.display().to_string());
    v.insert(
        "IMAGE_TYPE".into(),
        opts.types.first().map_or("tar", |t| t.name()).to_owned(),
    );
    v.insert("DIB_DEBUG_TRACE".into(), opts.debug_trace.to_string());
    v.insert(
        "DIB_IMAGE_CACHE".into(),
        opts.image_cache.display().to_string(),
    );
    v.insert("DIB_OFFLINE".into(), opts.offline.clone());
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
        opts.default_install_type.clone(),
    );
    v.insert(
        "ELEMENTS_PATH".into(),
        opts.exported_elements_path(&paths.builtin_dir),
    );
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
    v.insert("DIB_ENV".into(), declare_p(&opts.dib_env));
    v.insert("DEBIAN_FRONTEND".into(), "noninteractive".into());
    // The package-installs and pkg-map elements call back into dibkit on the host.
    if let Ok(exe) = std::env::current_exe() {
        v.insert("DIBKIT".into(), exe.display().to_string());
    }
    v
}

/// `declare -p` of exported variables, as bash prints them: `declare -x NAME="VALUE"` with
/// `"`, `\`, `$` and `` ` `` escaped, one per line (dib's `DIB_ENV`).
#[must_use]
pub fn declare_p(vars: &[(String, String)]) -> String {
    let mut lines = Vec::new();
    for (name, value) in vars {
        let mut quoted = String::new();
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        lines.push(format!("declare -x {name}=\"{quoted}\""));
    }
    lines.join("\n")
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
/// `HOME=/root` and the six standard directories as PATH. dib's PATH there is the literal
/// text `$PATH:` followed by those six (`env` does not expand it), so the first component
/// names no directory: the host's PATH never reaches the chroot. Bash functions do not
/// survive sudo in dib either.
#[must_use]
pub fn inside(vars: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| passes_into_chroot(k))
        .collect();
    env.extend(vars.clone());
    env.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    env.insert("HOME".into(), "/root".into());
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn declare_p_quotes_as_bash_does() {
        let vars = vec![
            ("DIB_A".to_owned(), "plain".to_owned()),
            ("DIB_B".to_owned(), r#"a "b" $c `d` \e"#.to_owned()),
        ];
        assert_eq!(
            super::declare_p(&vars),
            "declare -x DIB_A=\"plain\"\ndeclare -x DIB_B=\"a \\\"b\\\" \\$c \\`d\\` \\\\e\""
        );
    }
}
