//! Real collection on the machine running the tests (Linux only): the attributes
//! that are knowable here must be right, the rest must stay unknown.
#![cfg(target_os = "linux")]

use policy_core::context::OsFamily;
use rzts_device_agent::collect::linux::{parse_os_release, LinuxCollector};
use rzts_device_agent::collect::{Collector, Options, SystemRunner};

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[test]
fn collects_this_machine() {
    let got =
        LinuxCollector::new(Box::new(SystemRunner::default())).collect(&Options { location: true });
    let p = &got.posture;
    assert_eq!(p.os.family, Some(OsFamily::Linux));

    // os.name and os.version exactly as /etc/os-release says.
    let text = std::fs::read_to_string("/etc/os-release").expect("/etc/os-release");
    let (name, version) = parse_os_release(&text);
    assert!(name.is_some());
    assert_eq!(p.os.name, name);
    assert_eq!(p.os.version, version);

    // The kernel (details only) is uname -r.
    let uname = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .unwrap();
    assert_eq!(
        got.details.kernel.as_deref(),
        Some(String::from_utf8_lossy(&uname.stdout).trim())
    );

    // TPM: present false only when the class directory exists and is empty;
    // unknown when it is missing; never enabled without a chip.
    match std::fs::read_dir("/sys/class/tpm") {
        Err(_) => assert!(
            p.tpm.is_empty(),
            "no /sys/class/tpm: unknown, got {:?}",
            p.tpm
        ),
        Ok(entries) => {
            let chips = entries.count();
            assert_eq!(p.tpm.present, Some(chips > 0));
            if chips == 0 {
                assert_eq!(p.tpm.enabled, Some(false));
            }
        }
    }

    // Installed packages from dpkg when it exists.
    if which("dpkg-query") {
        let apps = p.apps.as_ref().expect("packages from dpkg-query");
        assert!(apps.iter().any(|a| a == "dpkg"), "dpkg lists itself");
        assert!(apps.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    }

    // Never guessed: no Windows Hello, antivirus or location on Linux.
    assert_eq!(p.windows_hello, None);
    assert_eq!(p.antivirus, None);
    assert_eq!(p.location, None);
    assert!(got.details.notes.iter().any(|n| n.starts_with("location:")));

    // A firewall verdict only when nft or ufw answered (both need root).
    if p.firewall.is_none() {
        assert!(got.details.notes.iter().any(|n| n.starts_with("firewall:")));
    }
    // Screen lock only inside a graphical session.
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        assert_eq!(p.screen_lock, None);
    }

    // Disk: a root on a plain block device is not encrypted; not a block device:
    // unknown.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let root = rzts_device_agent::collect::linux::root_source(&mounts).unwrap();
    if root.starts_with("/dev/vd") || root.starts_with("/dev/sd") || root.starts_with("/dev/nvme") {
        assert_eq!(p.disk.encrypted, Some(false));
        assert_eq!(p.disk.method, None);
    } else if !root.starts_with("/dev/") {
        assert_eq!(p.disk.encrypted, None);
    }

    // The default route's address, when the machine has one, is a local address.
    if let Some(ip) = p.network.ip {
        assert!(!ip.is_loopback() && !ip.is_unspecified());
    }

    // The JSON is a valid spec §2 device object.
    let json = serde_json::to_string(p).unwrap();
    policy_core::context::Request::from_json(&format!("{{\"device\":{json}}}")).unwrap();
}

#[test]
fn the_binary_prints_the_posture() {
    let out = assert_cmd::Command::cargo_bin("rzts-agent")
        .unwrap()
        .args(["collect"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["os"]["family"], "linux");
    let out = assert_cmd::Command::cargo_bin("rzts-agent")
        .unwrap()
        .args(["collect", "--details"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["details"]["kernel"].is_string());
    // Not enrolled: report fails with exit 2 and says how to enrol.
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("rzts-agent")
        .unwrap()
        .args([
            "--state-dir",
            dir.path().to_str().unwrap(),
            "report",
            "--once",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rzts-agent enroll"));
}
