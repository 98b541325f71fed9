//! Reading everything a zone is made from: the settings file and the templates directory.
//!
//! Used alike by `check`, `export`, `serve` at start-up and every reload, so that all of them
//! accept and reject exactly the same inputs.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::diag::SourceErrors;
use crate::template::{load_dir_cached, TemplateCache, TemplateSet};
use crate::zone::serial::serial_for_change;
use crate::zone::{self, Zone};

/// Where the inputs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub zones_dir: PathBuf,
    /// `None`: the embedded default settings.
    pub settings_file: Option<PathBuf>,
}

/// Why a set of inputs was rejected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Source(#[from] SourceErrors),
    #[error("{0}")]
    Build(#[from] zone::BuildError),
}

/// Settings and templates, validated.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub templates: TemplateSet,
    /// When the zone's inputs last changed, in seconds since 1970 (0 if unknown): the newest
    /// change time of the templates, the zones directory (files added, removed, renamed), the
    /// settings file and the running executable (whose defaults and rules shape the zone too).
    /// The SOA serial derives from it, so that a restart over unchanged inputs publishes the
    /// serial it published before and secondaries do not transfer the zone again.
    pub changed_at: u32,
}

impl Inputs {
    pub fn read(&self) -> Result<Loaded, LoadError> {
        self.read_cached(&mut TemplateCache::default(), None)
    }

    /// `read`, parsing only the template files changed since `cache` saw them; `changed`, when
    /// known, names every template file that may have changed (the others are not looked at).
    pub fn read_cached(
        &self,
        cache: &mut TemplateCache,
        changed: Option<&HashSet<OsString>>,
    ) -> Result<Loaded, LoadError> {
        let settings = match &self.settings_file {
            Some(path) => Settings::load(path),
            None => Ok(Settings::default()),
        };
        let templates = load_dir_cached(&self.zones_dir, cache, changed);
        // Report the mistakes of both inputs together.
        match (settings, templates) {
            (Ok(settings), Ok(templates)) => Ok(Loaded {
                settings,
                templates,
                changed_at: self.changed_at(cache),
            }),
            (Err(a), Err(b)) => Err(SourceErrors(a.0.into_iter().chain(b.0).collect()).into()),
            (Err(e), _) | (_, Err(e)) => Err(e.into()),
        }
    }

    /// See [`Loaded::changed_at`].
    fn changed_at(&self, cache: &TemplateCache) -> u32 {
        let change_time = |path: &Path| {
            std::fs::metadata(path).map_or(0, |m| std::os::unix::fs::MetadataExt::ctime(&m))
        };
        // The running executable's own file, even when it was replaced since it started.
        let executable = change_time(Path::new("/proc/self/exe"));
        let newest = [
            cache.newest_change(),
            change_time(&self.zones_dir),
            self.settings_file.as_deref().map_or(0, change_time),
            executable,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        u32::try_from(newest).unwrap_or(0)
    }
}

impl Loaded {
    /// The SOA serial to publish for these inputs, given the one published before (0 if
    /// none): see [`Loaded::changed_at`].
    pub fn serial_after(&self, previous: u32) -> u32 {
        serial_for_change(previous, self.changed_at)
    }

    pub fn build(&self, serial: u32) -> Result<Zone, LoadError> {
        self.build_from(serial, None)
    }

    /// Builds, reusing the parts of `previous` whose templates did not change.
    pub fn build_from(&self, serial: u32, previous: Option<&Zone>) -> Result<Zone, LoadError> {
        Ok(zone::build(
            &self.settings.zone,
            &self.templates,
            serial,
            previous,
        )?)
    }
}

/// Reads and builds in one step, with the serial a server would publish for these inputs.
pub fn load_zone(
    zones_dir: &Path,
    settings_file: Option<&Path>,
) -> Result<(Loaded, Zone), LoadError> {
    let inputs = Inputs {
        zones_dir: zones_dir.to_path_buf(),
        settings_file: settings_file.map(Path::to_path_buf),
    };
    let loaded = inputs.read()?;
    let zone = loaded.build(loaded.serial_after(0))?;
    Ok((loaded, zone))
}
