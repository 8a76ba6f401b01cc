//! The build host's trusted CAs for the chroot's tools while hooks run. Behind a
//! TLS-intercepting proxy the host trusts an extra CA that the image does not; pip, curl, git
//! and apt in the chroot then fail on every HTTPS download. The host's bundle is copied into
//! the hooks tree (bound read-only at /tmp/in_target.d during the in-chroot phases, never part
//! of the image's filesystem) and the chroot's tools are pointed at it through their
//! environment variables, so nothing of it is written into the image.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The bundle's file name in the hooks tree.
pub const BUNDLE: &str = "dibkit-host-ca-certificates.crt";
/// apt's configuration naming the bundle, in the hooks tree (`APT_CONFIG` is read in
/// addition to apt's own files).
pub const APT_CONF: &str = "dibkit-host-ca-apt.conf";

/// Where the hooks tree is inside the chroot.
const IN_TARGET: &str = "/tmp/in_target.d";

/// The host's CA bundle: `$SSL_CERT_FILE` when it names a file (the host's tools read it
/// too), else the Debian or Red Hat family's system bundle.
#[must_use]
pub fn find_bundle(ssl_cert_file: Option<&str>) -> Option<PathBuf> {
    ssl_cert_file
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/ca-bundle.pem",
            ]
            .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

/// Copies `bundle` and an apt configuration for it into the hooks tree.
pub fn install(bundle: &Path, hooks: &Path) -> Result<()> {
    fs::copy(bundle, hooks.join(BUNDLE))
        .with_context(|| format!("copying the host's CA bundle {}", bundle.display()))?;
    fs::write(
        hooks.join(APT_CONF),
        format!("Acquire::https::CAInfo \"{IN_TARGET}/{BUNDLE}\";\n"),
    )
    .context("writing the apt configuration for the host's CAs")?;
    Ok(())
}

/// The variables that point the chroot's TLS clients at the bundle: OpenSSL's default
/// (Python's ssl, wget, most tools), requests and pip, curl, git, Node and apt.
#[must_use]
pub fn chroot_env() -> Vec<(String, String)> {
    let bundle = format!("{IN_TARGET}/{BUNDLE}");
    let mut env: Vec<(String, String)> = [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "PIP_CERT",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_EXTRA_CA_CERTS",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), bundle.clone()))
    .collect();
    env.push(("APT_CONFIG".to_owned(), format!("{IN_TARGET}/{APT_CONF}")));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_cert_file_wins_when_it_is_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join("own.pem");
        fs::write(&own, "x").unwrap();
        assert_eq!(find_bundle(own.to_str()), Some(own));
        // A missing file or an empty value falls back to the system bundle (if any).
        let missing = tmp.path().join("missing.pem");
        assert_ne!(find_bundle(missing.to_str()), Some(missing));
        assert_eq!(find_bundle(Some("")), find_bundle(None));
    }

    #[test]
    fn bundle_and_apt_conf_go_into_the_hooks_tree_only() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("host.pem");
        fs::write(&src, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let hooks = tmp.path().join("hooks");
        fs::create_dir(&hooks).unwrap();
        install(&src, &hooks).unwrap();
        assert_eq!(
            fs::read_to_string(hooks.join(BUNDLE)).unwrap(),
            "-----BEGIN CERTIFICATE-----\nAAAA\n"
        );
        assert_eq!(
            fs::read_to_string(hooks.join(APT_CONF)).unwrap(),
            "Acquire::https::CAInfo \"/tmp/in_target.d/dibkit-host-ca-certificates.crt\";\n"
        );
        let env = chroot_env();
        for (k, v) in &env {
            assert!(v.starts_with("/tmp/in_target.d/"), "{k}={v}");
        }
        assert!(env.iter().any(|(k, _)| k == "PIP_CERT"));
        assert!(env.iter().any(|(k, _)| k == "SSL_CERT_FILE"));
    }
}
