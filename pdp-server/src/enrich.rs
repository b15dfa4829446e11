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
//! them, and re-read from the store after `cache_ttl`. An entry is never used
//! once older than `cache_ttl`; from three quarters of it, one request renews it
//! in the background while the others keep using it, so a busy user costs about
//! one trip to the store per renewal, not one per request in flight.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use policy_core::context::{Device as DeviceCtx, Request};
use policy_core::value::Point;

use crate::detector::{Assessment, Detector, Observation, Past};
use crate::geoip::GeoIp;
use crate::metrics::Metrics;
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

struct UserEntry {
    user: Option<Arc<User>>,
    groups: Vec<String>,
    /// The user's address as filled into contexts (lower case), worked out once
    /// when the entry is loaded; `None` when the directory has none.
    email: Option<String>,
}

/// Most entries a cache holds before it is emptied.
const CACHE_CAP: usize = 100_000;

/// What a cache has for a key at a given moment.
enum Hit<R> {
    /// Younger than three quarters of the time to live.
    Fresh(R),
    /// Still valid, and due for renewal: the caller is the one that refreshes it.
    Refresh(R),
    /// Missing or expired: the caller must read the store before deciding.
    Miss,
}

impl<R> Hit<R> {
    /// Files the lookup of `id`: a valid value into `have`; the id into `renew`
    /// when the entry is due for renewal, or into `want` when it must be read.
    fn sort(
        self,
        id: &str,
        have: &mut Option<R>,
        want: &mut Option<String>,
        renew: &mut Option<String>,
    ) {
        match self {
            Hit::Fresh(v) => *have = Some(v),
            Hit::Refresh(v) => {
                *have = Some(v);
                *renew = Some(id.to_owned());
            }
            Hit::Miss => *want = Some(id.to_owned()),
        }
    }
}

struct Cached<T> {
    /// When the lookup that read `value` began (so its age is never understated).
    at: Instant,
    value: T,
    /// A refresh of this entry is under way.
    refreshing: bool,
}

/// One cache of answers from the store, keyed by user or device id.
///
/// An entry serves for the time to live counted from when the lookup that read
/// it began, never longer. From three quarters of that age on, the first request
/// that sees it is told to refresh it (once; the others keep using it), so a busy
/// user's entry is renewed by one trip to the store before it expires, instead of
/// expiring under every request in flight at once, each of which would then go to
/// the store.
struct Cache<T> {
    inner: Mutex<Entries<T>>,
}

struct Entries<T> {
    map: HashMap<String, Cached<T>>,
    /// Bumped by every invalidation: a lookup that began before one may have read
    /// what the change replaced, so what it read is not kept.
    generation: u64,
}

impl<T> Cache<T> {
    fn new() -> Cache<T> {
        Cache {
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                generation: 0,
            }),
        }
    }

    /// The generation a lookup must note before it reads the store.
    fn generation(&self) -> u64 {
        lock(&self.inner).generation
    }

    /// Looks `key` up at `now`, reading a hit through `read`.
    fn get<R>(&self, key: &str, ttl: Duration, now: Instant, read: impl FnOnce(&T) -> R) -> Hit<R> {
        let mut inner = lock(&self.inner);
        let Some(c) = inner.map.get_mut(key) else {
            return Hit::Miss;
        };
        let age = now.saturating_duration_since(c.at);
        if age >= ttl {
            Hit::Miss
        } else if age >= ttl - ttl / 4 && !c.refreshing {
            c.refreshing = true;
            Hit::Refresh(read(&c.value))
        } else {
            Hit::Fresh(read(&c.value))
        }
    }

    /// Keeps what a lookup that began at `at`, in `generation`, read: `value`
    /// makes the entry from the one in place, if any. Dropped when an
    /// invalidation came in between.
    fn put(&self, key: &str, at: Instant, generation: u64, value: impl FnOnce(Option<T>) -> T) {
        let mut inner = lock(&self.inner);
        if inner.generation != generation {
            return;
        }
        let old = inner.map.remove(key).map(|c| c.value);
        if inner.map.len() >= CACHE_CAP {
            inner.map.clear();
        }
        inner.map.insert(
            key.to_string(),
            Cached {
                at,
                value: value(old),
                refreshing: false,
            },
        );
    }

    /// A refresh that failed: a later request may try again.
    fn refresh_failed(&self, key: &str) {
        if let Some(c) = lock(&self.inner).map.get_mut(key) {
            c.refreshing = false;
        }
    }

    /// Reads the entry for `key`, whatever its age.
    fn with<R>(&self, key: &str, read: impl FnOnce(Option<&mut T>) -> R) -> R {
        read(lock(&self.inner).map.get_mut(key).map(|c| &mut c.value))
    }

    fn invalidate(&self, key: &str) {
        let mut inner = lock(&self.inner);
        inner.generation += 1;
        inner.map.remove(key);
    }

    fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.generation += 1;
        inner.map.clear();
    }
}

/// The enricher's caches; shared with refreshes running in the background.
struct Caches {
    users: Cache<Arc<UserEntry>>,
    devices: Cache<Option<Arc<Device>>>,
    /// Each user's latest accesses, newest first.
    recent: Cache<Vec<Past>>,
}

/// What one trip to the store reads: the ids whose entries are wanted.
#[derive(Default, Clone)]
struct Wants {
    user: Option<String>,
    device: Option<String>,
    recent: Option<String>,
}

impl Wants {
    fn any(&self) -> bool {
        self.user.is_some() || self.device.is_some() || self.recent.is_some()
    }

    /// Adds what `other` wants.
    fn add(&mut self, other: Wants) {
        self.user = self.user.take().or(other.user);
        self.device = self.device.take().or(other.device);
        self.recent = self.recent.take().or(other.recent);
    }
}

/// The cache generations before a trip to the store.
#[derive(Clone, Copy)]
struct Generations {
    users: u64,
    devices: u64,
    recent: u64,
}

/// What one blocking trip to the store brought back.
#[derive(Default)]
struct Loaded {
    user: Option<Arc<UserEntry>>,
    device: Option<Option<Arc<Device>>>,
    recent: Option<Vec<Past>>,
}

impl Caches {
    fn generations(&self) -> Generations {
        Generations {
            users: self.users.generation(),
            devices: self.devices.generation(),
            recent: self.recent.generation(),
        }
    }

    /// Keeps what a trip that began at `at` read. The latest accesses this server
    /// noted meanwhile, newer than any the store returned (not yet indexed, or
    /// made during the trip), stay in front.
    fn put(&self, wants: &Wants, loaded: &Loaded, at: Instant, gens: Generations, history: usize) {
        if let (Some(u), Some(e)) = (&wants.user, &loaded.user) {
            self.users.put(u, at, gens.users, |_| e.clone());
        }
        if let (Some(d), Some(e)) = (&wants.device, &loaded.device) {
            self.devices.put(d, at, gens.devices, |_| e.clone());
        }
        if let (Some(u), Some(stored)) = (&wants.recent, &loaded.recent) {
            self.recent.put(u, at, gens.recent, |noted| {
                // The store keeps microseconds; what was noted here has more.
                let newest = stored.first().map(|p| p.time.timestamp_micros());
                let mut merged: Vec<Past> = noted
                    .unwrap_or_default()
                    .into_iter()
                    .take_while(|p| newest.is_none_or(|t| p.time.timestamp_micros() > t))
                    .collect();
                merged.extend(stored.iter().cloned());
                merged.truncate(history);
                merged
            });
        }
    }

    /// A refresh that failed: each entry may be refreshed again.
    fn refresh_failed(&self, wants: &Wants) {
        if let Some(u) = &wants.user {
            self.users.refresh_failed(u);
        }
        if let Some(d) = &wants.device {
            self.devices.refresh_failed(d);
        }
        if let Some(u) = &wants.recent {
            self.recent.refresh_failed(u);
        }
    }
}

/// One trip to the store (blocking) for what `wants` names, counted in `metrics`.
fn load(
    store: &dyn Store,
    metrics: &Metrics,
    wants: &Wants,
    history: usize,
) -> Result<Loaded, StoreError> {
    metrics.directory_loads.fetch_add(1, Ordering::Relaxed);
    let mut l = Loaded::default();
    if let Some(u) = &wants.user {
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
    if let Some(d) = &wants.device {
        l.device = Some(store.get_device(d)?.map(Arc::new));
    }
    if let Some(u) = &wants.recent {
        let records = store.recent_access(u, history)?;
        l.recent = Some(records.iter().map(|r| Past::from_record(r, None)).collect());
    }
    Ok(l)
}

/// Fills request contexts from the directory, the GeoIP database and the detector.
pub struct Enricher {
    store: Arc<dyn Store>,
    ttl: Duration,
    geoip: Option<GeoIp>,
    detector: Detector,
    caches: Arc<Caches>,
    metrics: Arc<Metrics>,
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

impl Enricher {
    /// An enricher over this store. `ttl` zero disables caching; trips to the
    /// store are counted in `metrics`.
    pub fn new(
        store: Arc<dyn Store>,
        ttl: Duration,
        geoip: Option<GeoIp>,
        detector: Detector,
        metrics: Arc<Metrics>,
    ) -> Enricher {
        Enricher {
            store,
            ttl,
            geoip,
            detector,
            caches: Arc::new(Caches {
                users: Cache::new(),
                devices: Cache::new(),
                recent: Cache::new(),
            }),
            metrics,
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
        self.caches.users.invalidate(id);
    }

    /// Forgets what is cached about a device (after a directory change).
    pub fn invalidate_device(&self, id: &str) {
        self.caches.devices.invalidate(id);
    }

    /// Forgets every cached user (after a group change).
    pub fn invalidate_users(&self) {
        self.caches.users.clear();
    }

    /// Remembers an access as the user's latest (called as each decision is
    /// recorded, so the next one is compared with it). `location` is the device's
    /// reported location, which the access log does not keep.
    pub fn note(&self, record: &AccessRecord, location: Option<Point>) {
        let Some(user) = &record.user else { return };
        let n = self.detector.config().history.max(1);
        self.caches.recent.with(user, |recent| {
            if let Some(recent) = recent {
                recent.insert(0, Past::from_record(record, location));
                recent.truncate(n);
            }
        });
    }

    /// Enriches a request for `app`, deciding at `now` in the policy's time zone.
    pub async fn enrich(
        &self,
        req: Request,
        app: &str,
        tz: policy_core::chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> Result<Enriched, StoreError> {
        self.enrich_at(req, app, tz, now, Instant::now()).await
    }

    /// [`Enricher::enrich`] with the caches' clock reading given (tests move it).
    async fn enrich_at(
        &self,
        mut req: Request,
        app: &str,
        tz: policy_core::chrono_tz::Tz,
        now: DateTime<Utc>,
        clock: Instant,
    ) -> Result<Enriched, StoreError> {
        // Borrowed, not cloned: only a trip to the store needs owned copies.
        let user_id = req.user.id.as_deref();
        let device_id = req.device.id.as_deref();
        let history = self.detector.config().history.max(1);

        // What the caches have; what must be read from the store before deciding
        // (`wants`); what is due for an early refresh (`renew`).
        let (mut wants, mut renew) = (Wants::default(), Wants::default());
        let caches = &self.caches;
        let (mut user_entry, mut device) = (None, None);
        if let Some(u) = user_id {
            let users = caches.users.get(u, self.ttl, clock, Arc::clone);
            users.sort(u, &mut user_entry, &mut wants.user, &mut renew.user);
            let recent = caches.recent.get(u, self.ttl, clock, |_| ());
            recent.sort(u, &mut None, &mut wants.recent, &mut renew.recent);
        }
        if let Some(d) = device_id {
            let devices = caches.devices.get(d, self.ttl, clock, Clone::clone);
            devices.sort(d, &mut device, &mut wants.device, &mut renew.device);
        }
        let caching = !self.ttl.is_zero();
        let mut loaded_recent: Option<Vec<Past>> = None;
        if wants.any() {
            // This decision waits for the store; whatever is due for renewal comes
            // along on the same trip.
            wants.add(renew);
            let gens = caches.generations();
            let (store, metrics) = (self.store.clone(), self.metrics.clone());
            let trip = wants.clone();
            let loaded =
                tokio::task::spawn_blocking(move || load(store.as_ref(), &metrics, &trip, history))
                    .await
                    .map_err(|e| StoreError::Backend(format!("directory lookup failed: {e}")))
                    .and_then(|loaded| loaded);
            let loaded = match loaded {
                Ok(l) => l,
                Err(e) => {
                    caches.refresh_failed(&wants);
                    return Err(e);
                }
            };
            if caching {
                caches.put(&wants, &loaded, clock, gens, history);
            } else {
                loaded_recent = loaded.recent;
            }
            user_entry = loaded.user.or(user_entry);
            device = loaded.device.or(device);
        } else if renew.any() {
            // Renewed in the background: this decision uses the valid entries.
            let gens = caches.generations();
            let (store, metrics, caches) =
                (self.store.clone(), self.metrics.clone(), caches.clone());
            tokio::task::spawn_blocking(move || {
                match load(store.as_ref(), &metrics, &renew, history) {
                    Ok(loaded) => caches.put(&renew, &loaded, clock, gens, history),
                    Err(e) => {
                        tracing::warn!(error = %e, "refreshing cached directory entries failed");
                        caches.refresh_failed(&renew);
                    }
                }
            });
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
            None => caches.recent.with(obs.user, |recent| {
                self.detector.assess(&obs, recent.map_or(&[], |r| &r[..]))
            }),
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
    use crate::model::NewUser;
    use crate::store::sqlite::SqliteStore;

    fn enricher(store: Arc<dyn Store>, ttl: Duration) -> (Enricher, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let detector = Detector::new(Default::default());
        let e = Enricher::new(store, ttl, None, detector, metrics.clone());
        (e, metrics)
    }

    fn trips(m: &Metrics) -> u64 {
        m.directory_loads.load(Ordering::Relaxed)
    }

    async fn groups_at(e: &Enricher, clock: Instant) -> Vec<String> {
        let req = Request::from_json(r#"{"user":{"id":"u1"}}"#).unwrap();
        let tz = policy_core::chrono_tz::Asia::Tokyo;
        let out = e
            .enrich_at(req, "app", tz, Utc::now(), clock)
            .await
            .unwrap();
        out.request.user.groups.unwrap_or_default()
    }

    /// A change made in the store behind the cache's back (another decision
    /// server sharing PostgreSQL) shows once the entry is renewed early, by one
    /// trip however many requests see it due; an expired entry is never served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_due_for_renewal_is_refreshed_once_and_never_served_expired() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        store.migrate().unwrap();
        store
            .create_user(&NewUser {
                id: "u1".into(),
                email: "u1@example.co.jp".into(),
                display_name: "u1".into(),
                password_hash: None,
            })
            .unwrap();
        store.create_group("経理部").unwrap();
        let ttl = Duration::from_secs(10);
        let (e, metrics) = enricher(store.clone(), ttl);
        let e = Arc::new(e);
        let t0 = Instant::now();
        assert!(groups_at(&e, t0).await.is_empty());
        assert_eq!(trips(&metrics), 1);

        store.add_member("経理部", "u1").unwrap();
        // Young entry: served as cached, no trip.
        assert!(groups_at(&e, t0 + Duration::from_secs(5)).await.is_empty());
        assert_eq!(trips(&metrics), 1);

        // Due for renewal: no request waits for the store (each is answered from
        // the valid entry, or from the renewed one once it has landed), and one of
        // them starts the only refresh.
        let due = t0 + Duration::from_secs(8);
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let e = e.clone();
            requests.spawn(async move { groups_at(&e, due).await });
        }
        while let Some(groups) = requests.join_next().await {
            let groups = groups.unwrap();
            assert!(groups.is_empty() || groups == ["経理部"], "{groups:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while groups_at(&e, due).await.is_empty() {
            assert!(Instant::now() < deadline, "the refresh never landed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(trips(&metrics), 2, "one refresh for 50 requests");

        // Expired (counted from when the refresh began): read again before deciding.
        store.remove_member("経理部", "u1").unwrap();
        assert!(groups_at(&e, due + ttl).await.is_empty());
        assert_eq!(trips(&metrics), 3);
    }

    #[test]
    fn a_lookup_that_began_before_an_invalidation_is_not_kept() {
        let cache: Cache<u32> = Cache::new();
        let ttl = Duration::from_secs(10);
        let now = Instant::now();
        let before = cache.generation();
        cache.invalidate("u1");
        cache.put("u1", now, before, |_| 1);
        assert!(matches!(cache.get("u1", ttl, now, |v| *v), Hit::Miss));
        cache.put("u1", now, cache.generation(), |_| 2);
        assert!(matches!(cache.get("u1", ttl, now, |v| *v), Hit::Fresh(2)));
        // Renewal is handed to one caller only; a failed refresh can be retried.
        let due = now + Duration::from_millis(7_500);
        assert!(matches!(cache.get("u1", ttl, due, |v| *v), Hit::Refresh(2)));
        assert!(matches!(cache.get("u1", ttl, due, |v| *v), Hit::Fresh(2)));
        cache.refresh_failed("u1");
        assert!(matches!(cache.get("u1", ttl, due, |v| *v), Hit::Refresh(2)));
        assert!(matches!(cache.get("u1", ttl, now + ttl, |v| *v), Hit::Miss));
    }

    #[test]
    fn renewed_history_keeps_accesses_the_store_does_not_have_yet() {
        let past_ns = |secs: i64, nanos: u32| Past {
            time: DateTime::from_timestamp(1_800_000_000 + secs, nanos).unwrap(),
            country: None,
            device: Some(format!("PC-{secs}")),
            denied: false,
            location: None,
        };
        let past = |secs: i64| past_ns(secs, 0);
        let caches = Caches {
            users: Cache::new(),
            devices: Cache::new(),
            recent: Cache::new(),
        };
        let now = Instant::now();
        let gens = caches.generations();
        // This server noted accesses at 4 and 3 (with the nanoseconds the store
        // does not keep); the store has indexed up to 3.
        caches.recent.put("u1", now, gens.recent, |_| {
            vec![past(4), past_ns(3, 500), past(1)]
        });
        let wants = Wants {
            recent: Some("u1".into()),
            ..Wants::default()
        };
        let loaded = Loaded {
            recent: Some(vec![past(3), past(2), past(1)]),
            ..Loaded::default()
        };
        caches.put(&wants, &loaded, now, caches.generations(), 3);
        let times: Vec<i64> = caches.recent.with("u1", |r| {
            r.unwrap()
                .iter()
                .map(|p| p.time.timestamp() - 1_800_000_000)
                .collect()
        });
        assert_eq!(times, vec![4, 3, 2]);
    }

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
