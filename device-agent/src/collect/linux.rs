//! The Linux collector.
//!
//! | attribute | source | unknown when |
//! |---|---|---|
//! | `os.*` | `/etc/os-release` (`PRETTY_NAME`, `VERSION_ID`); kernel from `/proc/sys/kernel/osrelease` (details only) | the file is missing; a `VERSION_ID` that is not dotted numbers (`rolling`) |
//! | `tpm.*` | `/sys/class/tpm/tpm*` (`tpm_version_major`, TPM 1.2 `device/enabled`) | `/sys/class/tpm` is missing (no TPM driver loaded: the kernel cannot tell us). An existing but empty class directory means no TPM (`present = false`) |
//! | `disk.*` | the root file system in `/proc/mounts`; a device-mapper device whose `/sys/block/dm-N/dm/uuid` (or that of a device below it, e.g. LVM on LUKS) starts with `CRYPT-` is encrypted (`CRYPT-LUKS*` → `luks`, else `other`); a plain partition is not encrypted | the root is not a block device (overlay, network, container file systems) |
//! | `firewall` | `nft list ruleset` (a base chain on the `input` hook), else `ufw status` | neither tool answers (missing, or not allowed: both need root) |
//! | `screen_lock` | GNOME `gsettings` (`lock-enabled` and a non-zero `idle-delay`), only inside a graphical session | no graphical session (a service), or no GNOME settings |
//! | `apps` | `dpkg-query` (installed packages), else `rpm -qa` | neither is installed |
//! | `network.ip` | the default route's source address | no route |
//! | `network.ssid` | `nmcli` (NetworkManager), the active Wi-Fi network | no NetworkManager, or not on Wi-Fi |
//! | `windows_hello`, `antivirus`, `location` | none on Linux | always |

use std::path::{Path, PathBuf};

use policy_core::context::{DiskMethod, OsFamily};
use policy_core::value::Version;

use super::{app_list, Collection, Collector, Details, Options, Runner};

/// Collects on Linux, reading files under `root` (`/` for the real system).
pub struct LinuxCollector {
    runner: Box<dyn Runner>,
    root: PathBuf,
}

impl LinuxCollector {
    /// A collector for this system.
    pub fn new(runner: Box<dyn Runner>) -> LinuxCollector {
        LinuxCollector {
            runner,
            root: PathBuf::from("/"),
        }
    }

    /// A collector that reads `/etc`, `/proc` and `/sys` under another root (tests).
    pub fn with_root(runner: Box<dyn Runner>, root: impl Into<PathBuf>) -> LinuxCollector {
        LinuxCollector {
            runner,
            root: root.into(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.path(p)).ok()
    }
}

impl Collector for LinuxCollector {
    fn family(&self) -> OsFamily {
        OsFamily::Linux
    }

    fn collect(&self, options: &Options) -> Collection {
        let mut c = Collection::default();
        let (p, d) = (&mut c.posture, &mut c.details);
        p.os.family = Some(self.family());
        match self.read("/etc/os-release") {
            Some(text) => {
                let (name, version) = parse_os_release(&text);
                p.os.name = name;
                p.os.version = version;
            }
            None => d.note("os: /etc/os-release not readable"),
        }
        d.kernel = self
            .read("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string());

        self.tpm(&mut p.tpm, d);
        match self.root_encryption() {
            Some((encrypted, method)) => {
                p.disk.encrypted = Some(encrypted);
                p.disk.method = method;
            }
            None => d.note("disk: the root file system is not on a local block device"),
        }
        p.firewall = self.firewall();
        if p.firewall.is_none() {
            d.note("firewall: neither `nft list ruleset` nor `ufw status` answered (root needed)");
        }
        p.screen_lock = self.screen_lock();
        p.apps = self.packages();
        if p.apps.is_none() {
            d.note("apps: neither dpkg-query nor rpm is available");
        }
        p.network.ip = super::default_route_ip();
        p.network.ssid = self
            .runner
            .stdout("nmcli", &["-t", "-f", "ACTIVE,SSID", "dev", "wifi"])
            .and_then(|o| parse_nmcli_ssid(&o));
        if options.location {
            d.note("location: Linux has no OS location source");
        }
        c
    }
}

impl LinuxCollector {
    fn tpm(&self, tpm: &mut policy_core::context::Tpm, d: &mut Details) {
        let class = self.path("/sys/class/tpm");
        let Ok(entries) = std::fs::read_dir(&class) else {
            d.note("tpm: /sys/class/tpm missing (no TPM driver loaded)");
            return;
        };
        let mut chips: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tpm"))
            })
            .collect();
        chips.sort();
        let Some(chip) = chips.first() else {
            tpm.present = Some(false);
            tpm.enabled = Some(false);
            return;
        };
        tpm.present = Some(true);
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
        };
        match read(&chip.join("tpm_version_major")).as_deref() {
            Some("2") => {
                tpm.version = "2.0".parse().ok();
                // The kernel registers a TPM 2.0 chip only after it answered its
                // start-up commands, so a registered chip is enabled.
                tpm.enabled = Some(true);
            }
            Some("1") => {
                tpm.version = "1.2".parse().ok();
                tpm.enabled = match read(&chip.join("device/enabled")).as_deref() {
                    Some("1") => Some(true),
                    Some("0") => Some(false),
                    _ => None,
                };
            }
            _ => d.note("tpm: version unknown (no tpm_version_major)"),
        }
    }

    /// `(encrypted, method)` of the root file system's device, `None` when unknown.
    fn root_encryption(&self) -> Option<(bool, Option<DiskMethod>)> {
        let mounts = self.read("/proc/mounts")?;
        let source = root_source(&mounts)?;
        let dev = source.strip_prefix("/dev/")?;
        // /dev/mapper/NAME → dm-N via /sys/block/dm-*/dm/name.
        let block = if let Some(name) = dev.strip_prefix("mapper/") {
            self.dm_by_name(name)?
        } else {
            dev.to_string()
        };
        if block.starts_with("dm-") {
            let uuid = self.crypt_uuid(&block, 0)?;
            return Some(match uuid {
                Some(u) if u.starts_with("CRYPT-LUKS") => (true, Some(DiskMethod::Luks)),
                Some(_) => (true, Some(DiskMethod::Other)),
                None => (false, None),
            });
        }
        // A plain partition or disk that the kernel knows: not dm-crypt.
        self.path(&format!("/sys/class/block/{block}"))
            .exists()
            .then_some((false, None))
    }

    fn dm_by_name(&self, name: &str) -> Option<String> {
        let entries = std::fs::read_dir(self.path("/sys/block")).ok()?;
        entries.flatten().find_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            let dm_name = std::fs::read_to_string(e.path().join("dm/name")).ok()?;
            (n.starts_with("dm-") && dm_name.trim() == name).then_some(n)
        })
    }

    /// The `CRYPT-` uuid of `dm` or of a device-mapper device below it; `Some(None)`
    /// when there is none, `None` when sysfs cannot tell.
    fn crypt_uuid(&self, dm: &str, depth: usize) -> Option<Option<String>> {
        if depth > 8 {
            return None;
        }
        let uuid = self.read(&format!("/sys/block/{dm}/dm/uuid"))?;
        let uuid = uuid.trim();
        if uuid.starts_with("CRYPT-") {
            return Some(Some(uuid.to_string()));
        }
        let slaves = std::fs::read_dir(self.path(&format!("/sys/block/{dm}/slaves"))).ok()?;
        for s in slaves.flatten() {
            let name = s.file_name().to_string_lossy().into_owned();
            if name.starts_with("dm-") {
                if let Some(Some(u)) = self.crypt_uuid(&name, depth + 1) {
                    return Some(Some(u));
                }
            }
        }
        Some(None)
    }

    fn firewall(&self) -> Option<bool> {
        if let Some(out) = self.runner.stdout("nft", &["list", "ruleset"]) {
            return Some(parse_nft_ruleset(&out));
        }
        self.runner
            .stdout("ufw", &["status"])
            .and_then(|o| parse_ufw_status(&o))
    }

    fn screen_lock(&self) -> Option<bool> {
        // Outside a graphical session gsettings answers with schema defaults, which
        // say nothing about any user's session: unknown.
        let session = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
            && (std::env::var_os("DISPLAY").is_some()
                || std::env::var_os("WAYLAND_DISPLAY").is_some());
        if !session {
            return None;
        }
        let lock = self.runner.stdout(
            "gsettings",
            &["get", "org.gnome.desktop.screensaver", "lock-enabled"],
        )?;
        let idle = self.runner.stdout(
            "gsettings",
            &["get", "org.gnome.desktop.session", "idle-delay"],
        )?;
        parse_gnome_lock(&lock, &idle)
    }

    fn packages(&self) -> Option<Vec<String>> {
        if let Some(out) = self.runner.stdout(
            "dpkg-query",
            &["-W", "-f", "${db:Status-Status}\t${Package}\n"],
        ) {
            return app_list(out.lines().filter_map(|l| {
                let (status, name) = l.split_once('\t')?;
                (status == "installed").then(|| name.to_string())
            }));
        }
        self.runner
            .stdout("rpm", &["-qa", "--qf", "%{NAME}\n"])
            .and_then(|o| app_list(o.lines().map(str::to_string)))
    }
}

/// `(PRETTY_NAME or NAME, VERSION_ID)` from os-release text (values may be quoted).
pub fn parse_os_release(text: &str) -> (Option<String>, Option<Version>) {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        })
    };
    let name = get("PRETTY_NAME")
        .or_else(|| get("NAME"))
        .filter(|s| !s.is_empty());
    let version = get("VERSION_ID").and_then(|v| v.parse().ok());
    (name, version)
}

/// The source device of the root mount in `/proc/mounts` (the last mount of `/`
/// wins, as it hides the earlier ones).
pub fn root_source(mounts: &str) -> Option<String> {
    mounts.lines().rev().find_map(|l| {
        let mut f = l.split_whitespace();
        let (src, target) = (f.next()?, f.next()?);
        (target == "/").then(|| src.to_string())
    })
}

/// True when an nftables ruleset filters incoming traffic: some base chain hooks
/// `input` (with rules or a drop policy). An empty ruleset is no firewall.
pub fn parse_nft_ruleset(text: &str) -> bool {
    let mut in_input = false;
    let mut filtering = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("chain ") {
            in_input = false;
        } else if line.starts_with("type filter hook input") {
            in_input = true;
            if line.contains("policy drop") || line.contains("policy reject") {
                filtering = true;
            }
        } else if in_input && !line.is_empty() && line != "}" {
            filtering = true;
        }
    }
    filtering
}

/// `ufw status`: `Status: active` / `Status: inactive`; anything else unknown.
pub fn parse_ufw_status(text: &str) -> Option<bool> {
    match super::colon_value(text, "Status")? {
        "active" => Some(true),
        "inactive" => Some(false),
        _ => None,
    }
}

/// GNOME: locked when `lock-enabled` is true and `idle-delay` (`uint32 300`) is not
/// zero; not locked when either says so.
pub fn parse_gnome_lock(lock_enabled: &str, idle_delay: &str) -> Option<bool> {
    let lock = match lock_enabled.trim() {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    let idle: u64 = idle_delay
        .trim()
        .trim_start_matches("uint32")
        .trim()
        .parse()
        .ok()?;
    Some(lock && idle > 0)
}

/// `nmcli -t -f ACTIVE,SSID dev wifi`: the SSID on the line marked `yes` (terse
/// output escapes `:` as `\:`).
pub fn parse_nmcli_ssid(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let ssid = l.strip_prefix("yes:")?;
        let ssid = ssid.replace("\\:", ":").replace("\\\\", "\\");
        (!ssid.is_empty()).then_some(ssid)
    })
}
