//! The Windows collector: runs Windows' own tools and parses their output.
//!
//! PowerShell is asked for `ConvertTo-Json`, which is locale-independent (property
//! names and enum values are not translated; enums come out as numbers), and with
//! `[Console]::OutputEncoding` set to UTF-8, so non-ASCII names (Japanese app names,
//! SSIDs) survive the pipe instead of arriving in the OEM code page (CP932).
//! `netsh wlan show interfaces` has no locale-independent form: its labels are
//! translated (`状態`, `State`), so only the `SSID` key is read, which netsh
//! never translates, and only shows while connected. `dsregcmd /status` prints the
//! same English keys on every locale.
//!
//! | attribute | tool |
//! |---|---|
//! | `os.name`, `os.version` | `Get-CimInstance Win32_OperatingSystem` (Caption, Version) |
//! | `tpm.present`, `tpm.enabled` | `Get-Tpm` (needs administrator rights, else unknown) |
//! | `tpm.version` | `Get-CimInstance -Namespace root/cimv2/Security/MicrosoftTpm Win32_Tpm` (SpecVersion) |
//! | `disk.*` | `Get-BitLockerVolume -MountPoint $env:SystemDrive` (encrypted = fully encrypted with protection on) |
//! | `antivirus` | `Get-CimInstance -Namespace root/SecurityCenter2 AntiVirusProduct` (productState bits 12-15 = 1: on) |
//! | `firewall` | `Get-NetFirewallProfile` (every profile enabled) |
//! | `windows_hello` | `dsregcmd /status` (`NgcSet : YES`) |
//! | `screen_lock` | machine policy `InactivityTimeoutSecs` (> 0: locks); else unknown |
//! | `apps` | registry uninstall keys (64- and 32-bit) `DisplayName` |
//! | `network.ssid` | `netsh wlan show interfaces` (`SSID : ...`) |

use policy_core::context::{DiskMethod, OsFamily};
use policy_core::value::Version;
use serde_json::{Map, Value};

use super::{app_list, json_objects, Collection, Collector, Options, Runner};

/// Prepended to every PowerShell command: UTF-8 output, errors stop the pipeline.
const PS_PRELUDE: &str =
    "[Console]::OutputEncoding = [Text.Encoding]::UTF8; $ErrorActionPreference = 'Stop'; ";

/// The PowerShell commands, by what they collect.
pub mod commands {
    /// OS caption and version.
    pub const OS: &str =
        "Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber | ConvertTo-Json";
    /// TPM presence and state.
    pub const TPM: &str =
        "Get-Tpm | Select-Object TpmPresent,TpmReady,TpmEnabled,TpmActivated | ConvertTo-Json";
    /// TPM specification version.
    pub const TPM_VERSION: &str = "Get-CimInstance -Namespace root/cimv2/Security/MicrosoftTpm -ClassName Win32_Tpm | Select-Object SpecVersion | ConvertTo-Json";
    /// BitLocker state of the system drive.
    pub const BITLOCKER: &str = "Get-BitLockerVolume -MountPoint $env:SystemDrive | Select-Object MountPoint,VolumeStatus,ProtectionStatus,EncryptionPercentage | ConvertTo-Json";
    /// Registered antivirus products.
    pub const ANTIVIRUS: &str = "Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct | Select-Object displayName,productState | ConvertTo-Json";
    /// Firewall profiles.
    pub const FIREWALL: &str =
        "Get-NetFirewallProfile | Select-Object Name,Enabled | ConvertTo-Json";
    /// The machine inactivity lock policy.
    pub const SCREEN_LOCK: &str = "Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System' | Select-Object InactivityTimeoutSecs | ConvertTo-Json";
    /// Installed applications from the uninstall keys.
    pub const APPS: &str = "Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*','HKLM:\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*' -ErrorAction SilentlyContinue | Where-Object DisplayName | Select-Object DisplayName | ConvertTo-Json";
}

/// Collects on Windows.
pub struct WindowsCollector {
    runner: Box<dyn Runner>,
}

impl WindowsCollector {
    /// A collector running tools through `runner`.
    pub fn new(runner: Box<dyn Runner>) -> WindowsCollector {
        WindowsCollector { runner }
    }

    /// Standard output of a PowerShell command that succeeded.
    fn ps(&self, command: &str) -> Option<String> {
        let script = format!("{PS_PRELUDE}{command}");
        self.runner.stdout(
            "powershell.exe",
            &["-NoProfile", "-NonInteractive", "-Command", &script],
        )
    }
}

impl Collector for WindowsCollector {
    fn family(&self) -> OsFamily {
        OsFamily::Windows
    }

    fn collect(&self, options: &Options) -> Collection {
        let mut c = Collection::default();
        let (p, d) = (&mut c.posture, &mut c.details);
        p.os.family = Some(self.family());
        if let Some((name, version)) = self.ps(commands::OS).and_then(|o| parse_os(&o)) {
            p.os.name = name;
            p.os.version = version.clone();
            d.kernel = version.map(|v| v.to_string());
        } else {
            d.note("os: Get-CimInstance Win32_OperatingSystem failed");
        }
        if let Some((present, enabled)) = self.ps(commands::TPM).and_then(|o| parse_get_tpm(&o)) {
            p.tpm.present = present;
            p.tpm.enabled = enabled;
        } else {
            d.note("tpm: Get-Tpm failed (administrator rights needed)");
        }
        p.tpm.version = self
            .ps(commands::TPM_VERSION)
            .and_then(|o| parse_tpm_spec_version(&o));
        if let Some((encrypted, method)) = self
            .ps(commands::BITLOCKER)
            .and_then(|o| parse_bitlocker(&o))
        {
            p.disk.encrypted = Some(encrypted);
            p.disk.method = method;
        } else {
            d.note("disk: Get-BitLockerVolume failed (administrator rights needed)");
        }
        p.antivirus = self
            .ps(commands::ANTIVIRUS)
            .and_then(|o| parse_antivirus(&o));
        p.firewall = self.ps(commands::FIREWALL).and_then(|o| parse_firewall(&o));
        p.windows_hello = self
            .runner
            .stdout("dsregcmd.exe", &["/status"])
            .and_then(|o| parse_dsregcmd_ngc(&o));
        p.screen_lock = self
            .ps(commands::SCREEN_LOCK)
            .and_then(|o| parse_inactivity_timeout(&o));
        p.apps = self
            .ps(commands::APPS)
            .and_then(|o| parse_uninstall_keys(&o));
        p.network.ip = super::default_route_ip();
        // chcp 65001: netsh writes UTF-8, so a Japanese SSID arrives intact.
        p.network.ssid = self
            .runner
            .stdout(
                "cmd.exe",
                &["/d", "/c", "chcp 65001 >nul & netsh wlan show interfaces"],
            )
            .and_then(|o| parse_netsh_wlan_ssid(&o));
        if options.location {
            d.note("location: the Windows location API is not implemented");
        }
        c
    }
}

fn first_object(text: &str) -> Option<Map<String, Value>> {
    json_objects(text)?.into_iter().next()
}

fn bool_field(m: &Map<String, Value>, key: &str) -> Option<bool> {
    m.get(key).and_then(Value::as_bool)
}

fn int_field(m: &Map<String, Value>, key: &str) -> Option<i64> {
    match m.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Win32_OperatingSystem` as JSON → `(Caption, Version)`.
pub fn parse_os(json: &str) -> Option<(Option<String>, Option<Version>)> {
    let m = first_object(json)?;
    let name = m
        .get("Caption")
        .and_then(Value::as_str)
        .map(|s| s.trim().trim_start_matches("Microsoft ").to_string())
        .filter(|s| !s.is_empty());
    let version = m
        .get("Version")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok());
    (name.is_some() || version.is_some()).then_some((name, version))
}

/// `Get-Tpm` as JSON → `(present, enabled)`; enabled means enabled and activated
/// (TPM 1.2 has both; TPM 2.0 reports both true when usable).
pub fn parse_get_tpm(json: &str) -> Option<(Option<bool>, Option<bool>)> {
    let m = first_object(json)?;
    let present = bool_field(&m, "TpmPresent");
    let enabled = match (bool_field(&m, "TpmEnabled"), bool_field(&m, "TpmActivated")) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) | (Some(true), None) => Some(true),
        _ => None,
    };
    // No TPM: it cannot be enabled.
    let enabled = if present == Some(false) {
        Some(false)
    } else {
        enabled
    };
    (present.is_some() || enabled.is_some()).then_some((present, enabled))
}

/// `Win32_Tpm.SpecVersion` (`"2.0, 0, 1.38"`) → `2.0`.
pub fn parse_tpm_spec_version(json: &str) -> Option<Version> {
    let m = first_object(json)?;
    m.get("SpecVersion")?
        .as_str()?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `Get-BitLockerVolume` as JSON → `(encrypted, method)`. Encrypted means fully
/// encrypted with protection on; suspended protection (the key is stored in the
/// clear) and encryption in progress are not. Enums come as numbers
/// (`VolumeStatus` 0 FullyDecrypted, 1 FullyEncrypted, 2 EncryptionInProgress, ...;
/// `ProtectionStatus` 0 Off, 1 On, 2 Unknown) or, with `-EnumsAsStrings`, names.
pub fn parse_bitlocker(json: &str) -> Option<(bool, Option<DiskMethod>)> {
    let m = first_object(json)?;
    let status = match m.get("VolumeStatus")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.as_str() {
            "FullyDecrypted" => 0,
            "FullyEncrypted" => 1,
            "EncryptionInProgress" => 2,
            "DecryptionInProgress" => 3,
            "EncryptionPaused" => 4,
            "DecryptionPaused" => 5,
            _ => return None,
        },
        _ => return None,
    };
    let protection = match m.get("ProtectionStatus")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match s.as_str() {
            "Off" => 0,
            "On" => 1,
            _ => 2,
        },
        _ => return None,
    };
    match (status, protection) {
        (1, 1) => Some((true, Some(DiskMethod::Bitlocker))),
        (0, _) => Some((false, None)),
        (1..=5, 0) => Some((false, None)),
        _ => None,
    }
}

/// `AntiVirusProduct` as JSON → true when some product is on (`productState` bits
/// 12-15 equal 1), false when products are registered and all are off.
pub fn parse_antivirus(json: &str) -> Option<bool> {
    let products = json_objects(json)?;
    let states: Vec<i64> = products
        .iter()
        .filter_map(|m| int_field(m, "productState"))
        .collect();
    if states.is_empty() {
        return None;
    }
    Some(states.iter().any(|s| (s >> 12) & 0xF == 1))
}

/// `Get-NetFirewallProfile` as JSON → true when every profile is enabled
/// (`Enabled` is a GpoBoolean: 1/True on, 0/False off).
pub fn parse_firewall(json: &str) -> Option<bool> {
    let profiles = json_objects(json)?;
    let states: Vec<Option<bool>> = profiles
        .iter()
        .map(|m| match m.get("Enabled") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Some(Value::String(s)) => match s.as_str() {
                "True" | "true" => Some(true),
                "False" | "false" => Some(false),
                _ => None,
            },
            _ => None,
        })
        .collect();
    if states.is_empty() || states.contains(&None) {
        return None;
    }
    Some(states.iter().all(|s| *s == Some(true)))
}

/// `dsregcmd /status` → Windows Hello for Business is set up (`NgcSet : YES`).
pub fn parse_dsregcmd_ngc(text: &str) -> Option<bool> {
    match super::colon_value(text, "NgcSet")? {
        "YES" => Some(true),
        "NO" => Some(false),
        _ => None,
    }
}

/// The machine inactivity limit policy → true when it locks after a non-zero time.
pub fn parse_inactivity_timeout(json: &str) -> Option<bool> {
    let m = first_object(json)?;
    let secs = int_field(&m, "InactivityTimeoutSecs")?;
    (secs > 0).then_some(true)
}

/// Uninstall-key `DisplayName`s as JSON → the installed application names.
pub fn parse_uninstall_keys(json: &str) -> Option<Vec<String>> {
    let entries = json_objects(json)?;
    app_list(entries.into_iter().filter_map(|m| {
        m.get("DisplayName")
            .and_then(Value::as_str)
            .map(str::to_string)
    }))
}

/// `netsh wlan show interfaces` (any display language) → the connected SSID.
/// netsh prints `SSID` (never translated) only for a connected interface.
pub fn parse_netsh_wlan_ssid(text: &str) -> Option<String> {
    super::colon_value(text, "SSID")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
