//! `dibkit boot`: prove an image boots, and, with `--ssh`, that it can be used: a config
//! drive as a cloud gives one, an SSH login, commands run there. `build --boot-test` takes
//! the same checks ([`Checks`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Failure;
use crate::boot::{self, config_drive, ssh};

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// The image (qcow2, raw or vhd).
    pub image: PathBuf,

    /// Boot with UEFI firmware (OVMF) instead of BIOS.
    #[arg(long)]
    pub uefi: bool,

    /// Seconds to wait for the pattern (and then for an SSH login).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,

    /// Regular expression that means "booted", matched against the serial console.
    #[arg(long, value_name = "REGEX", default_value = "login: ?$|login:")]
    pub expect: String,

    /// Guest memory in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 1024)]
    pub memory: u32,

    /// Serial console log [default: IMAGE.boot.log].
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Accelerator: `auto` (KVM if /dev/kvm opens and the guest talks, else TCG), `kvm`,
    /// `tcg`.
    #[arg(long, value_name = "auto|kvm|tcg", default_value = "auto")]
    pub accel: String,

    #[command(flatten)]
    pub checks: Checks,
}

/// What to check once the image is up, shared by `boot` and `build --boot-test`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Checks {
    /// Attach an OpenStack config drive (ISO 9660, label config-2). Bare, it is made from
    /// --name, --address, --user-data and the public keys (--key's and --public-key's);
    /// `--config-drive=DIR` takes DIR instead: meta_data.json (and network_data.json,
    /// user_data...) or a drive's own tree with openstack/latest/.
    #[arg(long, value_name = "DIR", num_args = 0..=1, require_equals = true)]
    #[allow(clippy::option_option)]
    pub config_drive: Option<Option<PathBuf>>,

    /// The server's name in the config drive (meta_data.json `name` and `hostname`)
    /// [default: the image's file name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The NIC's configuration in the config drive's network_data.json: a static
    /// `A.B.C.D[/24]` on qemu's user network 10.0.2.0/24 (gateway .2, DNS .3), or `dhcp`
    /// [default: 10.0.2.50/24, an address qemu's DHCP never gives].
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,

    /// User data for the config drive (openstack/latest/user_data).
    #[arg(long, value_name = "FILE")]
    pub user_data: Option<PathBuf>,

    /// Another OpenSSH public key for the config drive (repeatable).
    #[arg(long, value_name = "FILE")]
    pub public_key: Vec<PathBuf>,

    /// Once the prompt shows, log in over SSH as USER with --key, through the port on
    /// 127.0.0.1 forwarded to the guest's sshd, and wait until that works.
    #[arg(long, value_name = "USER")]
    pub ssh: Option<String>,

    /// The private key for --ssh; its public half (KEY.pub, or derived) also goes into the
    /// config drive.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// A command to run in the guest over SSH (repeatable, run in order); each one's output
    /// and exit status are shown, and any failure fails the boot.
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,

    /// Seconds one --exec command may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub exec_timeout: u64,

    /// Grow the disk before booting, on a temporary overlay (the image is not changed):
    /// `+SIZE` (e.g. +2G) or a new total SIZE.
    #[arg(long, value_name = "SIZE")]
    pub resize: Option<String>,

    /// The port on 127.0.0.1 forwarded to the guest's sshd [default: a free one].
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u16>,
}

impl Checks {
    /// Whether any check was asked for (for `build`, which needs `--boot-test` with them).
    #[must_use]
    pub fn any(&self) -> bool {
        self.config_drive.is_some()
            || self.name.is_some()
            || self.address.is_some()
            || self.user_data.is_some()
            || !self.public_key.is_empty()
            || self.ssh.is_some()
            || self.key.is_some()
            || !self.exec.is_empty()
            || self.resize.is_some()
            || self.ssh_port.is_some()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("{what} {}: {e}", path.display()), None))
}

/// The config drive the flags ask for.
fn drive(checks: &Checks, image: &Path) -> Result<Option<config_drive::Drive>, Failure> {
    let from_flags = checks.name.is_some()
        || checks.address.is_some()
        || checks.user_data.is_some()
        || !checks.public_key.is_empty();
    let Some(dir) = &checks.config_drive else {
        if from_flags {
            return Err(Failure::usage(
                "--name, --address, --user-data and --public-key describe a config drive",
                Some("add --config-drive".to_owned()),
            ));
        }
        return Ok(None);
    };
    if let Some(dir) = dir {
        if from_flags {
            return Err(Failure::usage(
                format!(
                    "--config-drive={} takes the drive from the directory; --name, --address, --user-data and --public-key would be ignored",
                    dir.display()
                ),
                Some("write them into the directory's meta_data.json and network_data.json, or use a bare --config-drive".to_owned()),
            ));
        }
        return config_drive::from_dir(dir)
            .map(Some)
            .map_err(|e| Failure::usage(format!("--config-drive: {e:#}"), None));
    }
    let network = config_drive::Network::parse(checks.address.as_deref().unwrap_or("10.0.2.50/24"))
        .map_err(|e| Failure::usage(format!("--address {e:#}"), None))?;
    let mut public_keys = Vec::new();
    if let Some(key) = &checks.key {
        let k = ssh::public_key(key).map_err(|e| Failure::usage(format!("--key {e:#}"), None))?;
        public_keys.push(("dibkit".to_owned(), k));
    }
    for (i, file) in checks.public_key.iter().enumerate() {
        let text = String::from_utf8_lossy(&read(file, "--public-key")?).into_owned();
        let key = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| {
                Failure::usage(
                    format!("--public-key {}: no key in the file", file.display()),
                    None,
                )
            })?;
        public_keys.push((format!("key{}", i + 1), key.to_owned()));
    }
    let user_data = checks
        .user_data
        .as_ref()
        .map(|f| read(f, "--user-data"))
        .transpose()?;
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = checks
        .name
        .clone()
        .unwrap_or_else(|| config_drive::hostname_from(&stem));
    Ok(Some(config_drive::from_settings(&config_drive::Settings {
        name,
        uuid: crate::engine::sys::random::uuid(),
        public_keys,
        network,
        user_data,
    })))
}

/// The SSH part the flags ask for.
fn ssh_check(checks: &Checks) -> Result<Option<boot::SshCheck>, Failure> {
    match (&checks.ssh, &checks.key) {
        (Some(user), Some(key)) => {
            if !key.is_file() {
                return Err(Failure::usage(
                    format!("--key {}: no such file", key.display()),
                    None,
                ));
            }
            Ok(Some(boot::SshCheck {
                user: user.clone(),
                key: key.clone(),
                exec: checks.exec.clone(),
                exec_timeout: Duration::from_secs(checks.exec_timeout),
            }))
        }
        (Some(_), None) => Err(Failure::usage(
            "--ssh needs --key (the private key to log in with)",
            None,
        )),
        (None, _) if !checks.exec.is_empty() => Err(Failure::usage(
            "--exec runs commands over SSH",
            Some("add --ssh USER --key FILE".to_owned()),
        )),
        (None, _) => Ok(None),
    }
}

/// Writes each command's report: a header with its status, then its output.
fn report_exec(out: &mut impl Write, execs: &[ssh::Exec]) -> std::io::Result<()> {
    for (i, e) in execs.iter().enumerate() {
        let status = e.status.map_or_else(
            || "did not finish".to_owned(),
            |s| format!("exit status {s}"),
        );
        writeln!(
            out,
            "== exec {}/{}: {} ({status}, {:.1} s)",
            i + 1,
            execs.len(),
            e.command,
            e.seconds
        )?;
        out.write_all(e.stdout.as_bytes())?;
        if !e.stdout.is_empty() && !e.stdout.ends_with('\n') {
            writeln!(out)?;
        }
        if !e.stderr.is_empty() {
            writeln!(out, "-- stderr")?;
            out.write_all(e.stderr.as_bytes())?;
            if !e.stderr.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

/// Runs `dibkit boot`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if !matches!(args.accel.as_str(), "auto" | "kvm" | "tcg") {
        return Err(Failure::usage(
            format!("--accel {}: use auto, kvm or tcg", args.accel),
            None,
        ));
    }
    let checks = &args.checks;
    let config_drive = drive(checks, &args.image)?;
    let ssh = ssh_check(checks)?;
    if let Some(spec) = &checks.resize {
        // The size is checked before anything boots.
        boot::resized(0, spec).map_err(|e| Failure::usage(format!("{e:#}"), None))?;
    }
    let log = args.log.clone().unwrap_or_else(|| {
        let mut p = args.image.clone().into_os_string();
        p.push(".boot.log");
        PathBuf::from(p)
    });
    let drive_note = config_drive.as_ref().map(|d| {
        let name = d
            .files
            .iter()
            .find(|(p, _)| p.ends_with("meta_data.json"))
            .and_then(|(_, data)| serde_json::from_slice::<serde_json::Value>(data).ok())
            .and_then(|v| v["name"].as_str().map(str::to_owned))
            .unwrap_or_default();
        format!(
            "config drive: name `{name}`, {}",
            d.guest_address
                .map_or_else(|| "DHCP".to_owned(), |a| format!("static address {a}"))
        )
    });
    let opts = boot::Options {
        image: args.image.clone(),
        uefi: args.uefi,
        timeout: Duration::from_secs(args.timeout),
        expect: args.expect.clone(),
        memory_mib: args.memory,
        log: log.clone(),
        accel: args.accel.clone(),
        config_drive,
        resize: checks.resize.clone(),
        ssh,
        ssh_port: checks.ssh_port,
    };
    let outcome = boot::boot(&opts).map_err(|e| Failure::usage(format!("{e:#}"), None))?;
    let mut err = std::io::stderr().lock();
    if !outcome.booted {
        return Err(Failure {
            code: 1,
            message: format!(
                "{} did not reach `{}` within {} s ({})",
                args.image.display(),
                args.expect,
                args.timeout,
                outcome.accel
            ),
            notes: vec![format!(
                "last console lines:\n    {}",
                outcome.tail.join("\n    ")
            )],
            hint: Some(format!("the whole console is in {}", log.display())),
        });
    }
    let _ = writeln!(
        err,
        "{} booted ({}, {}) in {:.1} s; console log {}",
        args.image.display(),
        if args.uefi { "UEFI" } else { "BIOS" },
        outcome.accel,
        outcome.seconds,
        log.display()
    );
    if let Some(bytes) = outcome.disk_bytes {
        let _ = writeln!(
            err,
            "disk grown to {} MiB on a temporary overlay; {} is unchanged",
            bytes >> 20,
            args.image.display()
        );
    }
    if let Some(note) = drive_note {
        let _ = writeln!(err, "{note}");
    }
    let Some(ssh_outcome) = &outcome.ssh else {
        return Ok(0);
    };
    let user = checks.ssh.clone().unwrap_or_default();
    let login_at = format!(
        "{user}@127.0.0.1 port {} (the guest's {}:22)",
        outcome.ssh_port, outcome.ssh_target
    );
    match &ssh_outcome.login {
        Ok(seconds) => {
            let _ = writeln!(err, "ssh {login_at}: logged in at {seconds:.1} s");
        }
        Err(why) => {
            return Err(Failure {
                code: 1,
                message: format!("no SSH login as {login_at} within {} s", args.timeout),
                notes: vec![format!("last ssh error: {why}")],
                hint: Some(format!(
                    "check the user and key, and the console in {}{}",
                    log.display(),
                    if opts.config_drive.is_some() {
                        " (did glean apply the config drive's network_data.json?)"
                    } else {
                        ""
                    }
                )),
            });
        }
    }
    drop(err);
    report_exec(&mut std::io::stdout().lock(), &ssh_outcome.exec)
        .map_err(|e| Failure::usage(format!("writing output: {e}"), None))?;
    let failed: Vec<String> = ssh_outcome
        .exec
        .iter()
        .filter(|e| !e.succeeded())
        .map(|e| {
            e.status.map_or_else(
                || format!("`{}` (did not finish)", e.command),
                |s| format!("`{}` (exit status {s})", e.command),
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(
            1,
            format!(
                "{} of {} commands failed in the guest: {}",
                failed.len(),
                ssh_outcome.exec.len(),
                failed.join(", ")
            ),
            None,
        ))
    }
}
