//! Hot reload: re-read the inputs, build and compile a new snapshot off the query path, swap it
//! in whole, or keep serving the old one when the new set is bad.
//!
//! Triggers are file changes (watched with `notify`, bursts debounced into one reload) and
//! SIGHUP. Query threads never wait: they load whichever snapshot is current through `ArcSwap`,
//! and each response is built from exactly one snapshot. The SOA serial moves only when the
//! content changed, and never backwards (see `zone::serial`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{ServerSettings, Settings};
use crate::load::Inputs;
use crate::server::access::QueryAcl;
use crate::template::{is_template_file, TemplateCache};
use crate::transfer::journal::Journal;
use crate::wire::Snapshot;

/// A quiet period that ends a burst of file events (an editor's write-rename-chmod, a
/// `git pull`, an rsync of many files).
const DEBOUNCE_QUIET: Duration = Duration::from_millis(100);
/// A burst that never goes quiet still reloads this long after its first event.
const DEBOUNCE_MAX: Duration = Duration::from_secs(2);

/// The result of one reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied { serial: u32 },
    Unchanged { serial: u32 },
    Rejected { serial: u32, error: String },
}

/// What reloads have done so far, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub applied: AtomicU64,
    pub unchanged: AtomicU64,
    pub rejected: AtomicU64,
    /// Whether the last attempt read a good set (applied or unchanged): 0 means the files on
    /// disk are broken and the server still serves an older set.
    pub last_good: AtomicBool,
    /// When a good set was last read (the start-up load, or a reload that was applied or
    /// found nothing changed), in seconds since 1970.
    pub last_good_at: AtomicU64,
    /// How long the last attempt took, in microseconds, whatever its outcome.
    pub last_duration_us: AtomicU64,
}

impl ReloadStats {
    fn record(&self, outcome: &ReloadOutcome, started: Instant) {
        let counter = match outcome {
            ReloadOutcome::Applied { .. } => &self.applied,
            ReloadOutcome::Unchanged { .. } => &self.unchanged,
            ReloadOutcome::Rejected { .. } => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let good = !matches!(outcome, ReloadOutcome::Rejected { .. });
        self.last_good.store(good, Ordering::Relaxed);
        if good {
            self.last_good_at.store(unix_now(), Ordering::Relaxed);
        }
        self.last_duration_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

fn unix_now() -> u64 {
    crate::server::stats::unix_seconds(SystemTime::now())
}

/// Owns the current snapshot's replacement.
pub struct Reloader {
    inputs: Inputs,
    snapshots: Arc<ArcSwap<Snapshot>>,
    acl: Arc<ArcSwap<QueryAcl>>,
    /// The `[server]` settings the process was started with: those but identity and cookies
    /// need a restart.
    running: ServerSettings,
    /// One reload at a time (a trigger during a reload waits and then reads the newest
    /// files); holds the templates parsed so far, so unchanged files are not parsed again.
    busy: Mutex<TemplateCache>,
    /// The serial now served, for those who must tell others of changes (NOTIFY).
    serial_tx: watch::Sender<u32>,
    /// The settings of the last good load, for those that follow settings changes that need
    /// no new zone (transfer ACLs, TSIG keys, NOTIFY targets).
    settings_tx: watch::Sender<Option<Arc<Settings>>>,
    stats: ReloadStats,
    /// Where each replaced version goes, for incremental transfers.
    journal: Arc<Journal>,
}

impl Reloader {
    /// `cache`: the templates parsed for the zone now served.
    pub fn new(
        cache: TemplateCache,
        inputs: Inputs,
        snapshots: Arc<ArcSwap<Snapshot>>,
        acl: Arc<ArcSwap<QueryAcl>>,
        running: ServerSettings,
        journal: Arc<Journal>,
    ) -> Self {
        let serial = snapshots.load().serial();
        let (serial_tx, _) = watch::channel(serial);
        Reloader {
            inputs,
            snapshots,
            acl,
            running,
            journal,
            busy: Mutex::new(cache),
            serial_tx,
            settings_tx: watch::channel(None).0,
            // Created once the start-up load has been read and served: a good set.
            stats: ReloadStats {
                last_good: AtomicBool::new(true),
                last_good_at: AtomicU64::new(unix_now()),
                ..ReloadStats::default()
            },
        }
    }

    /// Changes of the served serial.
    pub fn serials(&self) -> watch::Receiver<u32> {
        self.serial_tx.subscribe()
    }

    /// The settings of each good load (`None` until the first reload).
    pub fn settings(&self) -> watch::Receiver<Option<Arc<Settings>>> {
        self.settings_tx.subscribe()
    }

    /// What reloads have done so far.
    pub fn stats(&self) -> &ReloadStats {
        &self.stats
    }

    /// Re-reads everything and swaps in a new snapshot if the inputs are good and different.
    /// Blocking (file reads, compilation): call it off the async runtime's workers.
    pub fn reload(&self, trigger: &str) -> ReloadOutcome {
        self.reload_changed(trigger, None)
    }

    /// `reload`, where `changed` (when known) names every template file that may have changed
    /// since the last reload: the others are taken from the cache without even a `stat`.
    pub fn reload_changed(
        &self,
        trigger: &str,
        changed: Option<&HashSet<OsString>>,
    ) -> ReloadOutcome {
        let mut cache = self
            .busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = Instant::now();
        crate::service::reloading();
        let outcome = self.reload_locked(&mut cache, trigger, changed, started);
        self.stats.record(&outcome, started);
        crate::service::ready(&self.status_after(&outcome));
        outcome
    }

    /// The service status after a reload, for `systemctl status`.
    fn status_after(&self, outcome: &ReloadOutcome) -> String {
        let operators = self.snapshots.load().zone.operators;
        match outcome {
            ReloadOutcome::Applied { serial } => crate::service::serving(operators, *serial),
            ReloadOutcome::Unchanged { serial } => format!(
                "{} (last reload: no change)",
                crate::service::serving(operators, *serial)
            ),
            ReloadOutcome::Rejected { serial, error } => format!(
                "last reload rejected, still {}: {}",
                crate::service::serving(operators, *serial),
                error.lines().next().unwrap_or_default()
            ),
        }
    }

    /// The reload itself, under the lock.
    fn reload_locked(
        &self,
        cache: &mut TemplateCache,
        trigger: &str,
        changed: Option<&HashSet<OsString>>,
        started: Instant,
    ) -> ReloadOutcome {
        let current = self.snapshots.load_full();
        let loaded = match self.inputs.read_cached(cache, changed) {
            Ok(loaded) => loaded,
            Err(error) => return self.rejected(trigger, current.serial(), error.to_string()),
        };
        let mut candidate = match loaded.build_from(current.serial(), Some(&current.zone)) {
            Ok(zone) => zone,
            Err(error) => return self.rejected(trigger, current.serial(), error.to_string()),
        };
        // What a reload can change of `[server]` (`ServerSettings::reloaded`); the rest
        // needs a restart.
        let server = self.running.reloaded(&loaded.settings.server);
        if loaded.settings.server != server {
            tracing::warn!(
                "settings under [server] (listen addresses, threads, limits) changed; they take effect after a restart"
            );
        }
        self.acl.store(Arc::new(QueryAcl::new(
            loaded.settings.access.allow_query.clone(),
        )));
        self.settings_tx
            .send_replace(Some(Arc::new(loaded.settings.clone())));
        if candidate.same_content(&current.zone) {
            if current.answers_as(&server) {
                tracing::info!(
                    trigger,
                    outcome = "unchanged",
                    serial = current.serial(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "reload: content unchanged, serial kept"
                );
                return ReloadOutcome::Unchanged {
                    serial: current.serial(),
                };
            }
            // Same zone, new identity or cookie settings: the compiled parts are reused.
            let serial = current.serial();
            let snapshot = Snapshot::compile(candidate, &server, Some(&current));
            self.snapshots.store(Arc::new(snapshot));
            tracing::info!(
                trigger,
                outcome = "applied",
                serial,
                duration_ms = started.elapsed().as_millis() as u64,
                "reload: identity or cookie settings applied, zone unchanged"
            );
            return ReloadOutcome::Applied { serial };
        }
        let serial = loaded.serial_after(current.serial());
        candidate.set_serial(serial);
        let (operators, records) = (candidate.operators, candidate.record_count());
        let snapshot = Snapshot::compile(candidate, &server, Some(&current));
        let replaced = current.zone.clone();
        self.journal.keep(replaced, &snapshot.zone);
        self.snapshots.store(Arc::new(snapshot));
        drop(current);
        crate::parallel::release_freed_memory();
        let _ = self.serial_tx.send(serial);
        tracing::info!(
            trigger,
            outcome = "applied",
            serial,
            operators,
            records,
            duration_ms = started.elapsed().as_millis() as u64,
            "reload: new zone served"
        );
        ReloadOutcome::Applied { serial }
    }

    fn rejected(&self, trigger: &str, serial: u32, error: String) -> ReloadOutcome {
        tracing::error!(
            trigger,
            outcome = "rejected",
            serial,
            "reload rejected; still serving the previous zone (serial {serial}):\n{error}"
        );
        ReloadOutcome::Rejected { serial, error }
    }

    /// Reloads after each burst of changes reported by `watch`, until `shutdown`.
    pub async fn follow(self: Arc<Self>, mut watch: InputWatch, shutdown: CancellationToken) {
        loop {
            let first_change = tokio::select! {
                event = watch.events.recv() => match event {
                    Some(change) => change,
                    None => break,
                },
                _ = shutdown.cancelled() => break,
            };
            // The template files named by the burst's events; `None` when the watch lost track
            // (queue overflow) and every file must be looked at.
            let mut changed = Some(HashSet::new());
            watch.note(first_change, &mut changed);
            let first = Instant::now();
            loop {
                let remaining = DEBOUNCE_MAX.saturating_sub(first.elapsed());
                if remaining.is_zero() {
                    break;
                }
                match tokio::time::timeout(DEBOUNCE_QUIET.min(remaining), watch.events.recv()).await
                {
                    Ok(Some(change)) => watch.note(change, &mut changed),
                    _ => break,
                }
            }
            let reloader = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                reloader.reload_changed("file change", changed.as_ref())
            })
            .await;
        }
        drop(watch);
    }
}

/// A watch on the inputs: the zones directory and the settings file's directory (editors
/// replace files by renaming, which would end a watch on the file itself). Started before the
/// inputs are first read, so that no change made while the server starts is missed.
pub struct InputWatch {
    watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<Change>,
    /// The zones directory as the watch now resolves it (its real path): moves when a
    /// symbolic link given as `--zones` is pointed elsewhere.
    zones_dir: Arc<std::sync::Mutex<PathBuf>>,
    /// The zones directory as configured (perhaps that link).
    zones_configured: PathBuf,
}

/// What a file event means for the next reload.
#[derive(Debug)]
enum Change {
    /// This template file (by name) was written, created, renamed or removed.
    Template(OsString),
    /// The settings file changed (it is re-read on every reload anyway).
    Settings,
    /// Events were lost: look at every file.
    Rescan,
    /// The zones directory is a symbolic link, and it was replaced: watch where it points
    /// now, and look at every file (deploy tools switch a `zones -> releases/N` link).
    ZonesRelinked,
}

impl InputWatch {
    pub fn start(inputs: &Inputs) -> notify::Result<InputWatch> {
        let (tx, events) = mpsc::unbounded_channel::<Change>();
        let settings_file = inputs.settings_file.clone();
        let zones_dir = Arc::new(std::sync::Mutex::new(canonical(&inputs.zones_dir)));
        let zones_link = zones_link(&inputs.zones_dir);
        let classify = {
            let settings_file = settings_file.clone();
            let zones_dir = zones_dir.clone();
            let zones_link = zones_link.clone();
            move |path: &Path| -> Option<Change> {
                if zones_link.as_deref() == Some(path) {
                    return Some(Change::ZonesRelinked);
                }
                let in_zones_dir = zones_dir
                    .lock()
                    .is_ok_and(|dir| path.parent() == Some(dir.as_path()));
                if in_zones_dir {
                    if is_template_file(path) {
                        return path.file_name().map(|n| Change::Template(n.to_os_string()));
                    }
                    // A link or directory beside the templates may be what they are read
                    // through, and its swap gives their own names no event: Kubernetes mounts
                    // a ConfigMap as `x.toml -> ..data/x.toml` and updates it by renaming a
                    // new `..data` link over the old one. Look at every file then.
                    if is_link_or_dir(path) {
                        return Some(Change::Rescan);
                    }
                }
                settings_file
                    .as_ref()
                    .is_some_and(|s| {
                        same_dir(path, s)
                            && (path.file_name() == s.file_name() || is_link_or_dir(path))
                    })
                    .then_some(Change::Settings)
            }
        };
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let event = match event {
                    Ok(event) => event,
                    Err(_) => {
                        let _ = tx.send(Change::Rescan);
                        return;
                    }
                };
                if event.need_rescan() {
                    let _ = tx.send(Change::Rescan);
                    return;
                }
                if event.kind.is_access() {
                    return;
                }
                for change in event.paths.iter().filter_map(|p| classify(p)) {
                    let _ = tx.send(change);
                }
            })?;
        watcher.watch(&canonical(&inputs.zones_dir), RecursiveMode::NonRecursive)?;
        // The link itself lives in its parent directory: watch that for its replacement.
        if let Some(parent) = zones_link.as_deref().and_then(Path::parent) {
            watcher.watch(parent, RecursiveMode::NonRecursive)?;
        }
        if let Some(file) = &settings_file {
            let dir = parent_dir(file);
            watcher.watch(&canonical(dir), RecursiveMode::NonRecursive)?;
        }
        Ok(InputWatch {
            watcher,
            events,
            zones_dir,
            zones_configured: inputs.zones_dir.clone(),
        })
    }

    /// Adds a change to the burst's: the template files named (`None` for every file).
    fn note(&mut self, change: Change, changed: &mut Option<HashSet<OsString>>) {
        match change {
            Change::Template(name) => {
                if let Some(set) = changed.as_mut() {
                    set.insert(name);
                }
            }
            Change::Settings => {}
            Change::Rescan => *changed = None,
            Change::ZonesRelinked => {
                if self.follow_zones_link() {
                    *changed = None;
                }
            }
        }
    }

    /// After the zones link was replaced: moves the watch to where it points now. Returns
    /// whether it moved.
    fn follow_zones_link(&mut self) -> bool {
        let now = canonical(&self.zones_configured);
        let Some(before) = self.zones_dir.lock().ok().map(|dir| dir.clone()) else {
            return false;
        };
        if before == now {
            return false;
        }
        // Events in the new target count as template changes from here on.
        if let Ok(mut dir) = self.zones_dir.lock() {
            dir.clone_from(&now);
        }
        // Not under the lock: (un)watching waits for notify's event thread, which may be in
        // the event handler, waiting for that lock. The old target may be gone already,
        // which ended its watch.
        let _ = self.watcher.unwatch(&before);
        match self.watcher.watch(&now, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::info!(zones = %now.display(), "zones link points elsewhere: watching there")
            }
            Err(error) => {
                tracing::warn!(zones = %now.display(), %error, "cannot watch the zones directory's new target; SIGHUP still reloads")
            }
        }
        true
    }
}

/// The zones path as a link to watch for replacement, absolute and with its parent resolved
/// (as watch events name it), when the configured path is a symbolic link.
fn zones_link(configured: &Path) -> Option<PathBuf> {
    let is_link = std::fs::symlink_metadata(configured).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return None;
    }
    let name = configured.file_name()?;
    Some(canonical(parent_dir(configured)).join(name))
}

/// The directory a configured path lies in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether a path is (now) a symbolic link or a directory, without following it.
fn is_link_or_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink() || m.is_dir())
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Event paths are absolute and canonical; configured paths may be relative.
fn same_dir(event_path: &Path, configured: &Path) -> bool {
    let dir = parent_dir(configured);
    event_path.parent().map(canonical) == Some(canonical(dir))
}
