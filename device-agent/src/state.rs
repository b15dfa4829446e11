//! The agent's state directory: its configuration (`agent.toml`), its ed25519 key
//! (`device.key`), the report sequence counter (`sequence`) and the last reported
//! posture (`last_posture.json`). Every file is written with mode 0600 (owner only)
//! and replaced atomically (written beside, then renamed).
//!
//! The default directory is `$RZTS_AGENT_STATE_DIR`, else `/var/lib/rzts-agent`
//! when running as root (a service), else `~/.local/state/rzts-agent`
//! (`%ProgramData%\rzts-agent` on Windows).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::posture::Posture;

/// The default loopback attestation address.
pub const DEFAULT_ATTEST_LISTEN: &str = "127.0.0.1:47615";
/// The default report period, in seconds (5 minutes).
pub const DEFAULT_INTERVAL_SECS: u64 = 300;

/// A state directory problem.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file could not be read or written.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        why: String,
    },
    /// A file is there but unusable.
    #[error("{path}: {why}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The device is not enrolled yet.
    #[error("this device is not enrolled (no {0}); run `rzts-agent enroll --server URL --code CODE` first")]
    NotEnrolled(String),
    /// The device is enrolled already.
    #[error("this device is enrolled already ({0}); pass --force to enrol again with a new key")]
    AlreadyEnrolled(String),
    /// No randomness for a key.
    #[error("no OS randomness for the device key: {0}")]
    Random(String),
}

/// `agent.toml`: what enrolment established, plus the agent's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The decision server's base URL.
    pub server: String,
    /// This device's id in the directory.
    pub device_id: String,
    /// Its owner.
    pub owner: String,
    /// Origins of login pages allowed to ask for an attestation.
    pub attestation_origins: Vec<String>,
    /// Report period in seconds (a changed posture is reported at once).
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// The loopback attestation endpoint.
    #[serde(default = "default_attest_listen")]
    pub attest_listen: SocketAddr,
    /// Report `device.location` where the OS has a source (off by default).
    #[serde(default)]
    pub location: bool,
}

fn default_interval() -> u64 {
    DEFAULT_INTERVAL_SECS
}

/// [`DEFAULT_ATTEST_LISTEN`] as an address.
pub(crate) fn default_attest_listen() -> SocketAddr {
    DEFAULT_ATTEST_LISTEN
        .parse()
        .expect("DEFAULT_ATTEST_LISTEN is a socket address")
}

/// True when the process runs as root (a system service): the owner of
/// `/proc/self` on Linux, else `$USER`.
fn running_as_root() -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(m) = std::fs::metadata("/proc/self") {
            return m.uid() == 0;
        }
    }
    std::env::var("USER").is_ok_and(|u| u == "root")
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |e| StateError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

impl StateDir {
    /// A state directory at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The default directory (see the module documentation).
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("RZTS_AGENT_STATE_DIR") {
            return PathBuf::from(d);
        }
        if cfg!(windows) {
            let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
            return PathBuf::from(base).join("rzts-agent");
        }
        match std::env::var_os("HOME") {
            Some(home) if !running_as_root() => PathBuf::from(home).join(".local/state/rzts-agent"),
            _ => PathBuf::from("/var/lib/rzts-agent"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` with mode 0600, atomically.
    fn write(&self, name: &str, contents: &[u8]) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
        }
        let path = self.file(name);
        let tmp = self.file(&format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(contents).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    fn read(&self, name: &str) -> Result<Option<String>, StateError> {
        let path = self.file(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn corrupt(&self, name: &str, why: impl std::fmt::Display) -> StateError {
        StateError::Corrupt {
            path: self.file(name).display().to_string(),
            why: why.to_string(),
        }
    }

    /// True when a device key exists.
    pub fn is_enrolled(&self) -> bool {
        self.file("device.key").exists()
    }

    /// A new device key (not yet saved).
    pub fn generate_key() -> Result<SigningKey, StateError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| StateError::Random(e.to_string()))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// Saves the device key (base64 of the 32-byte seed, mode 0600).
    pub fn save_key(&self, key: &SigningKey) -> Result<(), StateError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.to_bytes());
        self.write("device.key", format!("{b64}\n").as_bytes())
    }

    /// The device key.
    pub fn load_key(&self) -> Result<SigningKey, StateError> {
        let text = self
            .read("device.key")?
            .ok_or_else(|| StateError::NotEnrolled("device.key".into()))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| self.corrupt("device.key", e))?;
        let seed: [u8; 32] = raw
            .try_into()
            .map_err(|_| self.corrupt("device.key", "not a 32-byte ed25519 seed"))?;
        Ok(SigningKey::from_bytes(&seed))
    }

    /// Saves `agent.toml`.
    pub fn save_config(&self, c: &AgentConfig) -> Result<(), StateError> {
        let text = toml::to_string(c).map_err(|e| self.corrupt("agent.toml", e))?;
        self.write("agent.toml", text.as_bytes())
    }

    /// Reads `agent.toml`.
    pub fn load_config(&self) -> Result<AgentConfig, StateError> {
        let text = self
            .read("agent.toml")?
            .ok_or_else(|| StateError::NotEnrolled("agent.toml".into()))?;
        toml::from_str(&text).map_err(|e| self.corrupt("agent.toml", e))
    }

    /// The next report sequence number: one more than the last one used, saved
    /// before it is sent, so a number is never used twice (a report that fails
    /// to arrive leaves a gap, which the server accepts).
    pub fn next_seq(&self) -> Result<u64, StateError> {
        let last = match self.read("sequence")? {
            Some(t) => t
                .trim()
                .parse::<u64>()
                .map_err(|e| self.corrupt("sequence", e))?,
            None => 0,
        };
        let next = last
            .checked_add(1)
            .ok_or_else(|| self.corrupt("sequence", "exhausted"))?;
        self.write("sequence", format!("{next}\n").as_bytes())?;
        Ok(next)
    }

    /// Restarts the sequence (a new enrolment restarts it on the server too).
    pub fn reset_seq(&self) -> Result<(), StateError> {
        self.write("sequence", b"0\n")
    }

    /// The last posture reported, if any (an unreadable file counts as none).
    pub fn last_posture(&self) -> Option<Posture> {
        let text = self.read("last_posture.json").ok()??;
        serde_json::from_str(&text).ok()
    }

    /// Remembers the posture just reported.
    pub fn save_last_posture(&self, p: &Posture) -> Result<(), StateError> {
        let text = serde_json::to_vec(p).map_err(|e| self.corrupt("last_posture.json", e))?;
        self.write("last_posture.json", &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path().join("state"));
        assert!(!s.is_enrolled());
        assert!(matches!(s.load_key(), Err(StateError::NotEnrolled(_))));
        let k = StateDir::generate_key().unwrap();
        s.save_key(&k).unwrap();
        assert_eq!(s.load_key().unwrap().to_bytes(), k.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(s.path().join("device.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(s.next_seq().unwrap(), 1);
        assert_eq!(s.next_seq().unwrap(), 2);
        s.reset_seq().unwrap();
        assert_eq!(s.next_seq().unwrap(), 1);
        std::fs::write(s.path().join("device.key"), "garbage").unwrap();
        assert!(matches!(s.load_key(), Err(StateError::Corrupt { .. })));
    }
}
