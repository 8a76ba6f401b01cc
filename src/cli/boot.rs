//! `dibkit boot`: prove an image boots.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::Failure;
use crate::boot;

#[derive(Debug, clap::Args)]
#[command(help_expected = true)]
pub struct Args {
    /// The image (qcow2, raw or vhd).
    pub image: PathBuf,

    /// Boot with UEFI firmware (OVMF) instead of BIOS.
    #[arg(long)]
    pub uefi: bool,

    /// Seconds to wait for the pattern.
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
}

/// Runs `dibkit boot`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if !matches!(args.accel.as_str(), "auto" | "kvm" | "tcg") {
        return Err(Failure::usage(
            format!("--accel {}: use auto, kvm or tcg", args.accel),
            None,
        ));
    }
    let log = args.log.clone().unwrap_or_else(|| {
        let mut p = args.image.clone().into_os_string();
        p.push(".boot.log");
        PathBuf::from(p)
    });
    let opts = boot::Options {
        image: args.image.clone(),
        uefi: args.uefi,
        timeout: Duration::from_secs(args.timeout),
        expect: args.expect.clone(),
        memory_mib: args.memory,
        log: log.clone(),
        accel: args.accel.clone(),
    };
    let outcome = boot::boot(&opts).map_err(|e| Failure::usage(format!("{e:#}"), None))?;
    if outcome.booted {
        let _ = writeln!(
            std::io::stderr(),
            "{} booted ({}, {}) in {:.1} s; console log {}",
            args.image.display(),
            if args.uefi { "UEFI" } else { "BIOS" },
            outcome.accel,
            outcome.seconds,
            log.display()
        );
        Ok(0)
    } else {
        Err(Failure {
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
        })
    }
}
