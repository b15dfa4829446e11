//! The Windows, macOS and Linux tool-output parsers on recorded outputs (in
//! `tests/fixtures/`), including a Japanese-locale Windows, partial failures (a
//! tool missing, access denied, empty or garbled output) and whole collectors run
//! over a fake tool runner. Unparseable output must come out unknown, never true.

use std::collections::HashMap;
use std::path::PathBuf;

use policy_core::context::{DiskMethod, OsFamily};
use rzts_device_agent::collect::linux::{self, LinuxCollector};
use rzts_device_agent::collect::macos::{self, MacosCollector};
use rzts_device_agent::collect::windows::{self, commands, WindowsCollector};
use rzts_device_agent::collect::{Collector, Options, Output, Runner};

fn fixture(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn v(s: &str) -> policy_core::value::Version {
    s.parse().unwrap()
}

/// `parse` of each recorded output gives the expected value.
fn each<T: PartialEq + std::fmt::Debug>(parse: impl Fn(&str) -> T, cases: &[(&str, T)]) {
    for (file, want) in cases {
        assert_eq!(&parse(&fixture(file)), want, "{file}");
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

// ---------------------------------------------------------------------------
// Windows

#[test]
fn windows_os_tpm_and_bitlocker() {
    let (name, version) = windows::parse_os(&fixture("windows/os.json")).unwrap();
    assert_eq!(name.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(version, Some(v("10.0.22631")));

    each(
        windows::parse_get_tpm,
        &[
            ("windows/get_tpm.json", Some((Some(true), Some(true)))),
            (
                "windows/get_tpm_absent.json",
                Some((Some(false), Some(false))),
            ),
            ("windows/get_tpm_access_denied.txt", None),
            ("windows/get_tpm_access_denied_ja.txt", None),
        ],
    );
    assert_eq!(
        windows::parse_tpm_spec_version(&fixture("windows/win32_tpm.json")),
        Some(v("2.0"))
    );

    each(
        windows::parse_bitlocker,
        &[
            (
                "windows/bitlocker_on.json",
                Some((true, Some(DiskMethod::Bitlocker))),
            ),
            ("windows/bitlocker_off.json", Some((false, None))),
            // Suspended protection: encrypted on disk, key in the clear: not protected.
            ("windows/bitlocker_suspended.json", Some((false, None))),
            // In progress with unknown protection: unknown, never true.
            ("windows/bitlocker_in_progress_strings.json", None),
        ],
    );
    assert_eq!(windows::parse_bitlocker(""), None);
}

#[test]
fn windows_security_products_apps_and_hello() {
    each(
        windows::parse_antivirus,
        &[
            ("windows/antivirus.json", Some(true)),
            ("windows/antivirus_off.json", Some(false)),
        ],
    );
    assert_eq!(windows::parse_antivirus(""), None);
    each(
        windows::parse_firewall,
        &[
            ("windows/firewall.json", Some(true)),
            ("windows/firewall_public_off.json", Some(false)),
        ],
    );
    each(
        windows::parse_dsregcmd_ngc,
        &[("windows/dsregcmd.txt", Some(true))],
    );
    assert_eq!(windows::parse_dsregcmd_ngc("garbage"), None);
    each(
        windows::parse_inactivity_timeout,
        &[
            ("windows/inactivity.json", Some(true)),
            ("windows/inactivity_unset.json", None),
        ],
    );
    assert_eq!(
        windows::parse_uninstall_keys(&fixture("windows/uninstall.json")),
        Some(vec![
            "7-Zip 23.01 (x64)".to_string(),
            "Google Chrome".into(),
            "Microsoft Teams".into(),
            "秀丸エディタ".into(),
        ])
    );
}

#[test]
fn windows_netsh_in_english_and_japanese() {
    each(
        windows::parse_netsh_wlan_ssid,
        &[
            ("windows/netsh_wlan_en.txt", some("corp-wifi")),
            ("windows/netsh_wlan_ja.txt", some("corp-wifi")),
            // Disconnected (状態: 切断されました) and the WLAN service stopped: unknown.
            ("windows/netsh_wlan_ja_disconnected.txt", None),
            ("windows/netsh_wlan_ja_no_service.txt", None),
        ],
    );
}

/// Answers from recorded outputs, keyed by the PowerShell command (or program);
/// anything not recorded is "not installed".
struct Recorded(HashMap<String, Output>);

impl Recorded {
    fn new(entries: &[(&str, Option<i32>, &str)]) -> Recorded {
        Recorded(
            entries
                .iter()
                .map(|(k, code, out)| {
                    (
                        k.to_string(),
                        Output {
                            code: *code,
                            stdout: if *code == Some(0) {
                                out.to_string()
                            } else {
                                String::new()
                            },
                            stderr: if *code == Some(0) {
                                String::new()
                            } else {
                                out.to_string()
                            },
                        },
                    )
                })
                .collect(),
        )
    }
}

impl Runner for Recorded {
    fn run(&self, program: &str, args: &[&str]) -> Option<Output> {
        let key = match program {
            "powershell.exe" => {
                let script = args.last()?;
                let cmd = script.rsplit("'Stop'; ").next()?;
                cmd.to_string()
            }
            other => other.to_string(),
        };
        self.0.get(&key).cloned()
    }
}

#[test]
fn windows_collector_japanese_machine_with_partial_failures() {
    let runner = Recorded::new(&[
        (commands::OS, Some(0), &fixture("windows/os_ja.json")),
        // Not elevated: Get-Tpm and Get-BitLockerVolume are refused.
        (
            commands::TPM,
            Some(1),
            &fixture("windows/get_tpm_access_denied_ja.txt"),
        ),
        (
            commands::BITLOCKER,
            Some(1),
            "Get-BitLockerVolume : アクセスが拒否されました。",
        ),
        (
            commands::TPM_VERSION,
            Some(0),
            &fixture("windows/win32_tpm.json"),
        ),
        // Empty output with success: unknown.
        (commands::ANTIVIRUS, Some(0), ""),
        (
            commands::FIREWALL,
            Some(0),
            &fixture("windows/firewall.json"),
        ),
        (commands::APPS, Some(0), &fixture("windows/uninstall.json")),
        ("cmd.exe", Some(0), &fixture("windows/netsh_wlan_ja.txt")),
        // dsregcmd missing (not recorded), screen lock policy unset.
        (
            commands::SCREEN_LOCK,
            Some(0),
            &fixture("windows/inactivity_unset.json"),
        ),
    ]);
    let c = WindowsCollector::new(Box::new(runner));
    assert_eq!(c.family(), OsFamily::Windows);
    let got = c.collect(&Options { location: true });
    let p = &got.posture;
    assert_eq!(p.os.family, Some(OsFamily::Windows));
    assert_eq!(p.os.name.as_deref(), Some("Windows 11 Pro"));
    assert_eq!(p.os.version, Some(v("10.0.26100")));
    assert_eq!(p.tpm.present, None);
    assert_eq!(p.tpm.enabled, None);
    assert_eq!(p.tpm.version, Some(v("2.0")));
    assert_eq!(p.disk.encrypted, None);
    assert_eq!(p.disk.method, None);
    assert_eq!(p.antivirus, None);
    assert_eq!(p.firewall, Some(true));
    assert_eq!(p.windows_hello, None);
    assert_eq!(p.screen_lock, None);
    assert_eq!(p.location, None, "location is never collected");
    assert_eq!(p.network.ssid.as_deref(), Some("corp-wifi"));
    assert!(p
        .apps
        .as_ref()
        .unwrap()
        .contains(&"秀丸エディタ".to_string()));
    assert!(got.details.notes.iter().any(|n| n.starts_with("tpm:")));
    assert!(got.details.notes.iter().any(|n| n.starts_with("location:")));
}

#[test]
fn windows_collector_without_powershell_knows_nothing() {
    let c = WindowsCollector::new(Box::new(Recorded::new(&[])));
    let p = c.collect(&Options::default()).posture;
    assert_eq!(p.os.family, Some(OsFamily::Windows));
    assert_eq!(p.os.name, None);
    assert!(p.tpm.is_empty());
    assert!(p.disk.is_empty());
    assert_eq!(
        (p.firewall, p.antivirus, p.windows_hello, p.screen_lock),
        (None, None, None, None)
    );
    assert_eq!(p.apps, None);
    assert_eq!(p.network.ssid, None);
}

// ---------------------------------------------------------------------------
// macOS

#[test]
fn macos_parsers() {
    let sw = macos::parse_sp_software(&fixture("macos/sp_software.json")).unwrap();
    assert_eq!(sw.name.as_deref(), Some("macOS"));
    assert_eq!(sw.version, Some(v("14.4.1")));
    assert_eq!(sw.kernel.as_deref(), Some("Darwin 23.4.0"));
    assert_eq!(macos::parse_sp_software("{}"), None);

    assert_eq!(
        macos::parse_sp_applications(&fixture("macos/sp_applications.json")),
        Some(vec![
            "ATOK".to_string(),
            "Google Chrome".into(),
            "Microsoft Teams".into(),
            "Safari".into()
        ])
    );
    each(
        macos::parse_fdesetup,
        &[
            ("macos/fdesetup_on.txt", Some(true)),
            ("macos/fdesetup_off.txt", Some(false)),
            ("macos/fdesetup_in_progress.txt", None),
            ("macos/fdesetup_error.txt", None),
        ],
    );
    each(
        macos::parse_socketfilterfw,
        &[
            ("macos/socketfilterfw_on.txt", Some(true)),
            ("macos/socketfilterfw_off.txt", Some(false)),
            ("macos/socketfilterfw_block_all.txt", Some(true)),
        ],
    );
    assert_eq!(macos::parse_socketfilterfw(""), None);
    each(
        macos::parse_sysadminctl_screenlock,
        &[
            ("macos/sysadminctl_screenlock_on.txt", Some(true)),
            ("macos/sysadminctl_screenlock_off.txt", Some(false)),
        ],
    );
    each(
        macos::parse_airport_network,
        &[
            ("macos/networksetup_airport.txt", some("corp-wifi")),
            ("macos/networksetup_not_associated.txt", None),
        ],
    );
}

#[test]
fn macos_collector_with_fdesetup_needing_root() {
    let runner = Recorded::new(&[
        (
            "system_profiler",
            Some(0),
            &fixture("macos/sp_software.json"),
        ),
        ("fdesetup", Some(1), &fixture("macos/fdesetup_error.txt")),
        (
            "/usr/libexec/ApplicationFirewall/socketfilterfw",
            Some(0),
            &fixture("macos/socketfilterfw_on.txt"),
        ),
        (
            "networksetup",
            Some(0),
            &fixture("macos/networksetup_airport.txt"),
        ),
    ]);
    let got = MacosCollector::new(Box::new(runner)).collect(&Options::default());
    let p = &got.posture;
    assert_eq!(p.os.family, Some(OsFamily::Macos));
    assert_eq!(p.os.version, Some(v("14.4.1")));
    assert_eq!(got.details.kernel.as_deref(), Some("Darwin 23.4.0"));
    assert_eq!(p.disk.encrypted, None, "fdesetup failed: unknown");
    assert_eq!(p.firewall, Some(true));
    assert_eq!(p.tpm.present, Some(false));
    assert_eq!(p.screen_lock, None);
    assert_eq!(p.network.ssid.as_deref(), Some("corp-wifi"));
    // The same runner answers both system_profiler calls; the software JSON is no
    // application list.
    assert_eq!(p.apps, None);
}

// ---------------------------------------------------------------------------
// Linux (parsers and a fake /sys tree)

#[test]
fn linux_parsers() {
    let (name, version) = linux::parse_os_release(&fixture("linux/os-release-ubuntu"));
    assert_eq!(name.as_deref(), Some("Ubuntu 24.04.1 LTS"));
    assert_eq!(version, Some(v("24.04")));
    let (name, version) = linux::parse_os_release(&fixture("linux/os-release-arch"));
    assert_eq!(name.as_deref(), Some("Arch Linux"));
    assert_eq!(version, None, "rolling release: no version");

    each(
        linux::parse_nft_ruleset,
        &[
            ("linux/nft_ruleset_input.txt", true),
            ("linux/nft_ruleset_accept_empty.txt", false),
        ],
    );
    assert!(!linux::parse_nft_ruleset(""));
    each(
        linux::parse_ufw_status,
        &[
            ("linux/ufw_active.txt", Some(true)),
            ("linux/ufw_inactive.txt", Some(false)),
        ],
    );
    assert_eq!(linux::parse_ufw_status("ERROR: You need to be root"), None);
    each(
        linux::parse_nmcli_ssid,
        &[("linux/nmcli_wifi.txt", some("corp:5G"))],
    );
    assert_eq!(
        linux::parse_gnome_lock("true\n", "uint32 300\n"),
        Some(true)
    );
    assert_eq!(linux::parse_gnome_lock("true", "uint32 0"), Some(false));
    assert_eq!(linux::parse_gnome_lock("false", "uint32 300"), Some(false));
    assert_eq!(
        linux::parse_gnome_lock("No such schema", "uint32 300"),
        None
    );
    assert_eq!(
        linux::root_source("/dev/vda1 / ext4 rw 0 0\n/dev/mapper/root / ext4 rw 0 0\n").as_deref(),
        Some("/dev/mapper/root")
    );
}

/// A fake root with LVM on LUKS and a TPM 2.0.
fn fake_root(dir: &std::path::Path, crypt: bool, tpm: Option<&str>) {
    let w = |p: &str, s: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w("etc/os-release", &fixture("linux/os-release-ubuntu"));
    w("proc/sys/kernel/osrelease", "6.8.0-45-generic\n");
    w(
        "proc/mounts",
        "sysfs /sys sysfs rw 0 0\n/dev/mapper/vg-root / ext4 rw,relatime 0 0\n",
    );
    w("sys/block/dm-1/dm/name", "vg-root\n");
    w("sys/block/dm-1/dm/uuid", "LVM-abcdef\n");
    std::fs::create_dir_all(dir.join("sys/block/dm-1/slaves/dm-0")).unwrap();
    w("sys/block/dm-0/dm/name", "nvme0n1p3_crypt\n");
    let uuid = if crypt {
        "CRYPT-LUKS2-0123456789abcdef-nvme0n1p3_crypt\n"
    } else {
        "LVM-raid\n"
    };
    w("sys/block/dm-0/dm/uuid", uuid);
    std::fs::create_dir_all(dir.join("sys/block/dm-0/slaves")).unwrap();
    match tpm {
        Some(major) => w("sys/class/tpm/tpm0/tpm_version_major", major),
        None => std::fs::create_dir_all(dir.join("sys/class/tpm")).unwrap(),
    }
}

#[test]
fn linux_collector_on_a_fake_root() {
    let dir = tempfile::tempdir().unwrap();
    fake_root(dir.path(), true, Some("2\n"));
    let c = LinuxCollector::with_root(Box::new(Recorded::new(&[])), dir.path());
    let got = c.collect(&Options::default());
    let p = &got.posture;
    assert_eq!(p.os.name.as_deref(), Some("Ubuntu 24.04.1 LTS"));
    assert_eq!(got.details.kernel.as_deref(), Some("6.8.0-45-generic"));
    assert_eq!(p.disk.encrypted, Some(true), "LVM on LUKS");
    assert_eq!(p.disk.method, Some(DiskMethod::Luks));
    assert_eq!(
        (p.tpm.present, p.tpm.enabled, p.tpm.version.clone()),
        (Some(true), Some(true), Some(v("2.0")))
    );
    // No tools: firewall and apps unknown.
    assert_eq!(p.firewall, None);
    assert_eq!(p.apps, None);

    let dir = tempfile::tempdir().unwrap();
    fake_root(dir.path(), false, None);
    let p = LinuxCollector::with_root(Box::new(Recorded::new(&[])), dir.path())
        .collect(&Options::default())
        .posture;
    assert_eq!(p.disk.encrypted, Some(false), "device-mapper without crypt");
    assert_eq!(
        (p.tpm.present, p.tpm.enabled),
        (Some(false), Some(false)),
        "an empty /sys/class/tpm: no TPM"
    );

    // Tools answering from recordings.
    let runner = Recorded::new(&[
        ("nft", Some(1), "Error: Operation not permitted"),
        ("ufw", Some(0), &fixture("linux/ufw_active.txt")),
    ]);
    let p = LinuxCollector::with_root(Box::new(runner), dir.path())
        .collect(&Options::default())
        .posture;
    assert_eq!(p.firewall, Some(true), "nft refused, ufw answered");
}
