//! Context enrichment: the decision point fills in what an enforcement point cannot
//! know before the rules are evaluated.
//!
//! - `user.groups` from the directory (added to any the PEP sent), `user.email` when
//!   missing; a disabled directory user is flagged so the decision is a denial;
//! - the device's latest posture report when `device.id` is a registered device
//!   owned by the user: fields the PEP sent are kept, the report fills the missing
//!   ones, and `device.registered` is set from the directory (true only for a
//!   device registered to this user);
//! - `source.country` from the GeoIP database when missing and `source.ip` is known;
//! - `time` from the server's clock when missing, and `destination.app`;
//! - `risk` from the anomaly detector, comparing this access with the user's latest
//!   ones (a PEP's own `risk` is only ever raised, never lowered).
//!
//! Directory lookups are cached for `cache_ttl` (admin API writes invalidate at
//! once); the user's latest accesses are kept in memory as this server records
//! them, and re-read from the store after `cache_ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use policy_core::context::{Device as DeviceCtx, Request};
use policy_core::value::Point;

use crate::detector::{Assessment, Detector, Observation, Past};
use crate::geoip::GeoIp;
use crate::model::{AccessRecord, Device, User};
use crate::store::{Store, StoreError};

/// A request context after enrichment.
#[derive(Debug, Clone)]
pub struct Enriched {
    /// The enriched context.
    pub request: Request,
    /// The directory's entry for `user.id`, when there is one.
    pub user: Option<Arc<User>>,
    /// The detector's assessment, when the request names a user.
    pub assessment: Option<Assessment>,
}

impl Enriched {
    /// True when the directory says the user is disabled.
    pub fn user_disabled(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.disabled)
    }
}

struct Cached<T> {
    at: Instant,
    value: T,
}

struct UserEntry {
    user: Option<Arc<User>>,
    groups: Vec<String>,
    /// The user's address as filled into contexts (lower case), worked out once
    /// when the entry is loaded; `None` when the directory has none.
    email: Option<String>,
}

/// Most entries a cache holds before it is emptied.
const CACHE_CAP: usize = 100_000;

/// Fills request contexts from the directory, the GeoIP database and the detector.
pub struct Enricher {
    store: Arc<dyn Store>,
    ttl: Duration,
    geoip: Option<GeoIp>,
    detector: Detector,
    users: Mutex<HashMap<String, Cached<Arc<UserEntry>>>>,
    devices: Mutex<HashMap<String, Cached<Option<Arc<Device>>>>>,
    recent: Mutex<HashMap<String, Cached<Vec<Past>>>>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("ttl", &self.ttl)
            .field("geoip", &self.geoip)
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The cached value for `key` when it is younger than `ttl` at `now` (one clock
/// reading per request instead of one per lookup).
fn cached<T: Clone>(
    map: &Mutex<HashMap<String, Cached<T>>>,
    key: &str,
    ttl: Duration,
    now: Instant,
) -> Option<T> {
    lock(map)
        .get(key)
        .filter(|c| now.saturating_duration_since(c.at) < ttl)
        .map(|c| c.value.clone())
}

fn put<T>(map: &Mutex<HashMap<String, Cached<T>>>, key: &str, value: T) {
    let mut m = lock(map);
    if m.len() >= CACHE_CAP {
        m.clear();
    }
    m.insert(
        key.to_string(),
        Cached {
            at: Instant::now(),
            value,
        },
    );
}

/// What one blocking trip to the store brought back.
#[derive(Default)]
struct Loaded {
    user: Option<Arc<UserEntry>>,
    device: Option<Option<Arc<Device>>>,
    recent: Option<Vec<Past>>,
}

impl Enricher {
    /// An enricher over this store. `ttl` zero disables caching.
    pub fn new(
        store: Arc<dyn Store>,
        ttl: Duration,
        geoip: Option<GeoIp>,
        detector: Detector,
    ) -> Enricher {
        Enricher {
            store,
            ttl,
            geoip,
            detector,
            users: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The GeoIP database, if one is loaded.
    pub fn geoip(&self) -> Option<&GeoIp> {
        self.geoip.as_ref()
    }

    /// Forgets what is cached about a user (after a directory change).
    pub fn invalidate_user(&self, id: &str) {
        lock(&self.users).remove(id);
    }

    /// Forgets what is cached about a device (after a directory change).
    pub fn invalidate_device(&self, id: &str) {
        lock(&self.devices).remove(id);
    }

    /// Forgets every cached user (after a group change).
    pub fn invalidate_users(&self) {
        lock(&self.users).clear();
    }

    /// Remembers an access as the user's latest (called as each decision is
    /// recorded, so the next one is compared with it). `location` is the device's
    /// reported location, which the access log does not keep.
    pub fn note(&self, record: &AccessRecord, location: Option<Point>) {
        let Some(user) = &record.user else { return };
        let n = self.detector.config().history.max(1);
        if let Some(c) = lock(&self.recent).get_mut(user) {
            c.value.insert(0, Past::from_record(record, location));
            c.value.truncate(n);
        }
    }

    /// Enriches a request for `app`, deciding at `now` in the policy's time zone.
    pub async fn enrich(
        &self,
        mut req: Request,
        app: &str,
        tz: policy_core::chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> Result<Enriched, StoreError> {
        // Borrowed, not cloned: only a trip to the store needs owned copies.
        let user_id = req.user.id.as_deref();
        let device_id = req.device.id.as_deref();
        let history = self.detector.config().history.max(1);
        let clock = Instant::now();

        // What the caches have, and what must be read from the store.
        let mut user_entry = user_id.and_then(|u| cached(&self.users, u, self.ttl, clock));
        let mut device = device_id.and_then(|d| cached(&self.devices, d, self.ttl, clock));
        let recent_cached = user_id.is_some_and(|u| {
            lock(&self.recent)
                .get(u)
                .is_some_and(|c| clock.saturating_duration_since(c.at) < self.ttl)
        });
        let need_user = user_id.is_some() && user_entry.is_none();
        let need_device = device_id.is_some() && device.is_none();
        let need_recent = user_id.is_some() && !recent_cached;
        let mut loaded_recent: Option<Vec<Past>> = None;
        if need_user || need_device || need_recent {
            let store = self.store.clone();
            let (u, d) = (user_id.map(str::to_owned), device_id.map(str::to_owned));
            let loaded = tokio::task::spawn_blocking(move || -> Result<Loaded, StoreError> {
                let mut l = Loaded::default();
                if let (true, Some(u)) = (need_user, &u) {
                    let user = store.get_user(u)?;
                    let groups = if user.is_some() {
                        store.groups_of(u)?
                    } else {
                        Vec::new()
                    };
                    let email = user
                        .as_ref()
                        .filter(|u| !u.email.is_empty())
                        .map(|u| u.email.to_lowercase());
                    l.user = Some(Arc::new(UserEntry {
                        user: user.map(Arc::new),
                        groups,
                        email,
                    }));
                }
                if let (true, Some(d)) = (need_device, &d) {
                    l.device = Some(store.get_device(d)?.map(Arc::new));
                }
                if let (true, Some(u)) = (need_recent, &u) {
                    let records = store.recent_access(u, history)?;
                    l.recent = Some(records.iter().map(|r| Past::from_record(r, None)).collect());
                }
                Ok(l)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("directory lookup failed: {e}")))??;
            let caching = !self.ttl.is_zero();
            if let (Some(e), Some(u)) = (loaded.user, user_id) {
                if caching {
                    put(&self.users, u, e.clone());
                }
                user_entry = Some(e);
            }
            if let (Some(dv), Some(d)) = (loaded.device, device_id) {
                if caching {
                    put(&self.devices, d, dv.clone());
                }
                device = Some(dv);
            }
            if let (Some(r), Some(u)) = (loaded.recent, user_id) {
                if caching {
                    put(&self.recent, u, r);
                } else {
                    loaded_recent = Some(r);
                }
            }
        }

        // The directory's user: groups and e-mail.
        let user = user_entry.as_ref().and_then(|e| e.user.clone());
        if let (Some(_), Some(e)) = (&user, &user_entry) {
            if req.user.email.is_none() {
                req.user.email.clone_from(&e.email);
            }
            let mut groups = req.user.groups.take().unwrap_or_default();
            groups.extend(e.groups.iter().cloned());
            groups.sort();
            groups.dedup();
            req.user.groups = Some(groups);
        }

        // The device: registered only when owned by this user; posture fills gaps.
        if device_id.is_some() {
            let owned = device
                .flatten()
                .filter(|d| user.is_some() && user_id == Some(d.owner.as_str()));
            req.device.registered = Some(owned.is_some());
            if let Some(posture) = owned.as_ref().and_then(|d| d.posture.as_ref()) {
                merge_device(&mut req.device, posture);
            }
        }

        // Country from the source address.
        if req.source.country.is_none() {
            if let (Some(ip), Some(g)) = (req.source.ip, &self.geoip) {
                req.source.country = g.country(ip);
            }
        }
        req.fill_app_and_time(app, now, tz);

        // Risk from the user's latest accesses.
        let assessment = Observation::from_request(&req, now).map(|obs| match &loaded_recent {
            Some(r) => self.detector.assess(&obs, r),
            None => {
                let recent = lock(&self.recent);
                let history: &[Past] = recent.get(obs.user).map_or(&[], |c| &c.value);
                self.detector.assess(&obs, history)
            }
        });
        if let Some(a) = &assessment {
            let risk = &mut req.risk;
            risk.suspicious = Some(risk.suspicious.unwrap_or(false) || a.suspicious);
            risk.score = Some(risk.score.unwrap_or(0.0).max(a.score));
        }
        Ok(Enriched {
            request: req,
            user,
            assessment,
        })
    }
}

fn fill<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
    if dst.is_none() {
        dst.clone_from(src);
    }
}

/// Fills the fields the PEP did not send from the directory's posture report.
pub fn merge_device(d: &mut DeviceCtx, p: &DeviceCtx) {
    fill(&mut d.os.family, &p.os.family);
    fill(&mut d.os.name, &p.os.name);
    fill(&mut d.os.version, &p.os.version);
    fill(&mut d.tpm.present, &p.tpm.present);
    fill(&mut d.tpm.enabled, &p.tpm.enabled);
    fill(&mut d.tpm.version, &p.tpm.version);
    fill(&mut d.disk.encrypted, &p.disk.encrypted);
    fill(&mut d.disk.method, &p.disk.method);
    fill(&mut d.windows_hello, &p.windows_hello);
    fill(&mut d.firewall, &p.firewall);
    fill(&mut d.antivirus, &p.antivirus);
    fill(&mut d.screen_lock, &p.screen_lock);
    fill(&mut d.apps, &p.apps);
    fill(&mut d.location, &p.location);
    fill(&mut d.network.ssid, &p.network.ssid);
    fill(&mut d.network.ip, &p.network.ip);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_what_the_pep_sent() {
        let mut sent = Request::from_json(r#"{"device":{"id":"PC-1","firewall":false}}"#).unwrap();
        let report = Request::from_json(
            r#"{"device":{"firewall":true,"tpm":{"enabled":true},"disk":{"encrypted":true,"method":"bitlocker"}}}"#,
        )
        .unwrap();
        merge_device(&mut sent.device, &report.device);
        assert_eq!(sent.device.firewall, Some(false));
        assert_eq!(sent.device.tpm.enabled, Some(true));
        assert_eq!(
            sent.device.disk.method,
            Some(policy_core::context::DiskMethod::Bitlocker)
        );
        assert_eq!(sent.device.id.as_deref(), Some("PC-1"));
    }
}
