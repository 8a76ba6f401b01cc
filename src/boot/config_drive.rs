//! An OpenStack config drive (`config-2`) as a cloud gives one to a server: the drive's files
//! (`openstack/latest/meta_data.json`, `network_data.json`, `user_data`) made from a few
//! settings or taken from a directory, and written as an ISO 9660 image labelled `config-2`.
//! Pure but for reading the directory and running the ISO tool.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

/// The MAC address of the NIC a config drive made by dibkit describes (OpenStack's `fa:16:3e`
/// prefix).
pub const MAC: &str = "fa:16:3e:d1:b0:01";
/// qemu's user network: the guest's subnet, its gateway and DNS server.
pub const USER_NET: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 0);
pub const USER_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const USER_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The address qemu's DHCP server gives the first guest.
pub const USER_DHCP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// How the drive's network_data.json configures the NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// `ipv4_dhcp`.
    Dhcp,
    /// A static address on qemu's user network, with its gateway and DNS server.
    Static { address: Ipv4Addr, prefix: u8 },
}

impl Network {
    /// Parses `--address`: `dhcp`, or `A.B.C.D[/24]` on qemu's user network (10.0.2.0/24),
    /// not one of the addresses qemu itself uses there.
    pub fn parse(text: &str) -> Result<Self> {
        if text == "dhcp" {
            return Ok(Self::Dhcp);
        }
        let (addr, prefix) = text.split_once('/').unwrap_or((text, "24"));
        let address: Ipv4Addr = addr
            .parse()
            .map_err(|_| anyhow!("`{text}` is not an IPv4 address (A.B.C.D/24) or `dhcp`"))?;
        if prefix != "24" || u32::from(address) >> 8 != u32::from(USER_NET) >> 8 {
            bail!("`{text}` is not on qemu's user network, 10.0.2.0/24");
        }
        if matches!(address.octets()[3], 0 | 2 | 3 | 4 | 255) {
            bail!("`{text}`: 10.0.2.0, .2 (gateway), .3 (DNS), .4 and .255 are qemu's own");
        }
        Ok(Self::Static {
            address,
            prefix: 24,
        })
    }

    /// The guest address sshd is forwarded to (`None`: whatever DHCP gives, qemu's default).
    #[must_use]
    pub fn guest_address(&self) -> Option<Ipv4Addr> {
        match self {
            Self::Dhcp => None,
            Self::Static { address, .. } => Some(*address),
        }
    }
}

/// What a drive made from settings holds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server's name (meta_data.json `name` and `hostname`).
    pub name: String,
    /// The instance UUID.
    pub uuid: String,
    /// OpenSSH public keys, by key name.
    pub public_keys: Vec<(String, String)>,
    pub network: Network,
    pub user_data: Option<Vec<u8>>,
}

/// The drive's files, by path inside the drive.
#[derive(Debug, Clone)]
pub struct Drive {
    pub files: Vec<(String, Vec<u8>)>,
    /// The MAC address network_data.json's first link names (the NIC must have it).
    pub mac: String,
    /// The static address of the first IPv4 network, if it has one.
    pub guest_address: Option<Ipv4Addr>,
}

/// A host name made from `text` (an image file's stem): letters, digits and `-`.
#[must_use]
pub fn hostname_from(text: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "dibkit-vm".to_owned()
    } else {
        name.chars().take(63).collect()
    }
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

/// The drive made from settings.
#[must_use]
pub fn from_settings(s: &Settings) -> Drive {
    let keys: serde_json::Map<String, serde_json::Value> = s
        .public_keys
        .iter()
        .map(|(n, k)| (n.clone(), json!(k)))
        .collect();
    let key_list: Vec<serde_json::Value> = s
        .public_keys
        .iter()
        .map(|(n, k)| json!({"name": n, "type": "ssh", "data": k}))
        .collect();
    let meta = json!({
        "uuid": s.uuid,
        "name": s.name,
        "hostname": s.name,
        "availability_zone": "nova",
        "launch_index": 0,
        "public_keys": keys,
        "keys": key_list,
        "meta": {},
    });
    let network = match &s.network {
        Network::Dhcp => json!({"id": "network0", "type": "ipv4_dhcp", "link": "tap0",
            "network_id": "network0"}),
        Network::Static { address, prefix } => {
            let mask = Ipv4Addr::from(u32::MAX << (32 - prefix));
            json!({
                "id": "network0",
                "type": "ipv4",
                "link": "tap0",
                "ip_address": address.to_string(),
                "netmask": mask.to_string(),
                "routes": [{
                    "network": "0.0.0.0",
                    "netmask": "0.0.0.0",
                    "gateway": USER_GATEWAY.to_string(),
                }],
                "network_id": "network0",
            })
        }
    };
    let net = json!({
        "links": [{
            "id": "tap0",
            "type": "phy",
            "ethernet_mac_address": MAC,
            "mtu": 1500,
            "vif_id": "tap0",
        }],
        "networks": [network],
        "services": [{"type": "dns", "address": USER_DNS.to_string()}],
    });
    let mut files = vec![
        ("openstack/latest/meta_data.json".to_owned(), pretty(&meta)),
        (
            "openstack/latest/network_data.json".to_owned(),
            pretty(&net),
        ),
        (
            "openstack/latest/vendor_data.json".to_owned(),
            b"{}\n".to_vec(),
        ),
    ];
    if let Some(data) = &s.user_data {
        files.push(("openstack/latest/user_data".to_owned(), data.clone()));
    }
    Drive {
        files,
        mac: MAC.to_owned(),
        guest_address: s.network.guest_address(),
    }
}

/// The MAC and static address a network_data.json gives its first link and IPv4 network.
fn read_network(text: &[u8], file: &Path) -> Result<(String, Option<Ipv4Addr>)> {
    let v: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| anyhow!("{}:{}: {e}", file.display(), e.line()))?;
    let mac = v["links"][0]["ethernet_mac_address"]
        .as_str()
        .ok_or_else(|| {
            anyhow!(
                "{}: no links[0].ethernet_mac_address (the NIC is given that MAC)",
                file.display()
            )
        })?
        .to_ascii_lowercase();
    let address = v["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["type"] == "ipv4")
        .and_then(|n| n["ip_address"].as_str())
        .map(|a| {
            a.parse::<Ipv4Addr>()
                .map_err(|_| anyhow!("{}: ip_address `{a}` is not IPv4", file.display()))
        })
        .transpose()?;
    if let Some(a) = address {
        Network::parse(&a.to_string()).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    }
    Ok((mac, address))
}

/// The drive in `dir`: either a drive's own tree (`openstack/latest/meta_data.json`), taken
/// as it is, or a directory holding `meta_data.json` (and optionally `network_data.json`,
/// `user_data`, `vendor_data.json`), put under `openstack/latest/`.
pub fn from_dir(dir: &Path) -> Result<Drive> {
    let (base, prefix) = if dir.join("openstack/latest/meta_data.json").is_file() {
        (dir.to_path_buf(), String::new())
    } else if dir.join("meta_data.json").is_file() {
        (dir.to_path_buf(), "openstack/latest/".to_owned())
    } else {
        bail!(
            "{}: no meta_data.json or openstack/latest/meta_data.json",
            dir.display()
        );
    };
    let mut files = Vec::new();
    collect(&base, &base, &mut files)?;
    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(p, d)| (format!("{prefix}{p}"), d))
        .collect();
    let meta_path = format!("{prefix}meta_data.json");
    let net_path = if prefix.is_empty() {
        "openstack/latest/network_data.json".to_owned()
    } else {
        format!("{prefix}network_data.json")
    };
    for (p, d) in &files {
        if *p == meta_path || (prefix.is_empty() && p == "openstack/latest/meta_data.json") {
            serde_json::from_slice::<serde_json::Value>(d).map_err(|e| {
                anyhow!(
                    "{}:{}: {e}",
                    base.join(p.trim_start_matches(&prefix)).display(),
                    e.line()
                )
            })?;
        }
    }
    let (mac, guest_address) = match files.iter().find(|(p, _)| *p == net_path) {
        Some((p, d)) => read_network(d, &base.join(p.trim_start_matches(&prefix)))?,
        None => (MAC.to_owned(), None),
    };
    Ok(Drive {
        files,
        mac,
        guest_address,
    })
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect(base, &p, out)?;
        } else {
            let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
            out.push((
                rel,
                fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
            ));
        }
    }
    Ok(())
}

/// Writes the drive's files below `dir` and makes `iso` from them, labelled `config-2`, with
/// xorriso or genisoimage.
pub fn write_iso(drive: &Drive, dir: &Path, iso: &Path) -> Result<()> {
    for (rel, data) in &drive.files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
    }
    let tools: [(&str, &[&str]); 2] = [("xorriso", &["-as", "mkisofs"]), ("genisoimage", &[])];
    let (tool, pre) = tools
        .iter()
        .find(|(t, _)| which(t).is_some())
        .ok_or_else(|| {
            anyhow!("a config drive needs xorriso or genisoimage; install one with `apt-get install xorriso`")
        })?;
    let out = Command::new(tool)
        .args(*pre)
        .args(["-quiet", "-V", "config-2", "-r", "-J", "-o"])
        .arg(iso)
        .arg(dir)
        .output()
        .with_context(|| format!("running {tool}"))?;
    if !out.status.success() {
        bail!(
            "{tool} failed making the config drive: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The first `name` on PATH.
#[must_use]
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(drive: &Drive, path: &str) -> serde_json::Value {
        let data = &drive.files.iter().find(|(p, _)| p == path).unwrap().1;
        serde_json::from_slice(data).unwrap()
    }

    fn settings(network: Network) -> Settings {
        Settings {
            name: "worker-7".into(),
            uuid: "0f8b7d1c-4a6e-4c5d-9b1a-2e3f4a5b6c7d".into(),
            public_keys: vec![("dibkit".into(), "ssh-ed25519 AAAAC3Nz test@host".into())],
            network,
            user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
        }
    }

    #[test]
    fn meta_data_has_name_hostname_uuid_and_keys() {
        let d = from_settings(&settings(Network::Dhcp));
        let meta = json_of(&d, "openstack/latest/meta_data.json");
        assert_eq!(meta["name"], "worker-7");
        assert_eq!(meta["hostname"], "worker-7");
        assert_eq!(meta["uuid"], "0f8b7d1c-4a6e-4c5d-9b1a-2e3f4a5b6c7d");
        assert_eq!(
            meta["public_keys"]["dibkit"],
            "ssh-ed25519 AAAAC3Nz test@host"
        );
        assert_eq!(meta["keys"][0]["type"], "ssh");
        assert_eq!(meta["keys"][0]["data"], "ssh-ed25519 AAAAC3Nz test@host");
        let user = &d
            .files
            .iter()
            .find(|(p, _)| p == "openstack/latest/user_data")
            .unwrap()
            .1;
        assert_eq!(user, b"#!/bin/sh\necho hi\n");
    }

    #[test]
    fn network_data_gives_the_static_address_on_the_nics_mac() {
        let net = Network::parse("10.0.2.50/24").unwrap();
        let d = from_settings(&settings(net));
        let v = json_of(&d, "openstack/latest/network_data.json");
        assert_eq!(v["links"][0]["ethernet_mac_address"], MAC);
        assert_eq!(v["networks"][0]["type"], "ipv4");
        assert_eq!(v["networks"][0]["link"], v["links"][0]["id"]);
        assert_eq!(v["networks"][0]["ip_address"], "10.0.2.50");
        assert_eq!(v["networks"][0]["netmask"], "255.255.255.0");
        assert_eq!(v["networks"][0]["routes"][0]["gateway"], "10.0.2.2");
        assert_eq!(
            v["services"][0],
            json!({"type": "dns", "address": "10.0.2.3"})
        );
        assert_eq!(d.guest_address, Some(Ipv4Addr::new(10, 0, 2, 50)));
        assert_eq!(d.mac, MAC);

        let dhcp = from_settings(&settings(Network::Dhcp));
        let v = json_of(&dhcp, "openstack/latest/network_data.json");
        assert_eq!(v["networks"][0]["type"], "ipv4_dhcp");
        assert_eq!(dhcp.guest_address, None);
    }

    #[test]
    fn addresses_qemu_cannot_route_or_owns_are_refused() {
        assert_eq!(
            Network::parse("10.0.2.77").unwrap(),
            Network::Static {
                address: Ipv4Addr::new(10, 0, 2, 77),
                prefix: 24
            }
        );
        assert_eq!(Network::parse("dhcp").unwrap(), Network::Dhcp);
        for bad in [
            "10.0.3.5/24",
            "192.168.1.5/24",
            "10.0.2.2/24",
            "10.0.2.3",
            "10.0.2.5/28",
            "x",
            "10.0.2.5/40",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_from_image_names() {
        assert_eq!(hostname_from("jenkins_worker.v2"), "jenkins-worker-v2");
        assert_eq!(hostname_from("__"), "dibkit-vm");
    }

    #[test]
    fn a_directory_is_taken_as_a_drive_or_as_its_latest_files() {
        let tmp = tempfile::tempdir().unwrap();
        let flat = tmp.path().join("flat");
        fs::create_dir(&flat).unwrap();
        fs::write(flat.join("meta_data.json"), r#"{"name": "a"}"#).unwrap();
        fs::write(
            flat.join("network_data.json"),
            r#"{"links": [{"id": "l", "ethernet_mac_address": "FA:16:3E:00:00:09"}],
                "networks": [{"type": "ipv4", "link": "l", "ip_address": "10.0.2.60"}]}"#,
        )
        .unwrap();
        fs::write(flat.join("user_data"), "data").unwrap();
        let d = from_dir(&flat).unwrap();
        let names: Vec<&str> = d.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "openstack/latest/meta_data.json",
                "openstack/latest/network_data.json",
                "openstack/latest/user_data"
            ]
        );
        assert_eq!(d.mac, "fa:16:3e:00:00:09");
        assert_eq!(d.guest_address, Some(Ipv4Addr::new(10, 0, 2, 60)));

        let tree = tmp.path().join("tree");
        fs::create_dir_all(tree.join("openstack/latest")).unwrap();
        fs::write(tree.join("openstack/latest/meta_data.json"), "{}").unwrap();
        let d = from_dir(&tree).unwrap();
        assert_eq!(d.files[0].0, "openstack/latest/meta_data.json");
        assert_eq!(d.mac, MAC);
        assert_eq!(d.guest_address, None);

        fs::write(flat.join("meta_data.json"), "{\n  \"name\": \n").unwrap();
        let err = from_dir(&flat).unwrap_err().to_string();
        assert!(err.contains("meta_data.json:3"), "{err}");
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(
            from_dir(&empty)
                .unwrap_err()
                .to_string()
                .contains("no meta_data.json")
        );
    }

    #[test]
    fn the_iso_is_labelled_config_2() {
        let tmp = tempfile::tempdir().unwrap();
        let d = from_settings(&settings(Network::Dhcp));
        let iso = tmp.path().join("cd.iso");
        write_iso(&d, &tmp.path().join("files"), &iso).unwrap();
        let data = fs::read(&iso).unwrap();
        // The primary volume descriptor at sector 16: its volume identifier at byte 40.
        let pvd = &data[16 * 2048..17 * 2048];
        assert_eq!(&pvd[1..6], b"CD001");
        assert_eq!(
            std::str::from_utf8(&pvd[40..72]).unwrap().trim_end(),
            "config-2"
        );
    }
}
