//! The seed corpus: every JSON file in `events/` (not the scenarios), by source.

use std::path::Path;

use emulator::chaos::ChaosRng;
use serde_json::Value;

#[derive(Debug, Default)]
pub struct Corpus {
    pub sma: Vec<(String, Value)>,
    pub connect_lookup: Vec<(String, Value)>,
    pub connect_transfer: Vec<(String, Value)>,
    pub alexa: Vec<(String, Value)>,
    pub backend: Vec<(String, Value)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} holds no sma-*, connect-*, alexa-* or backend-* events")]
    Empty(String),
}

impl Corpus {
    /// Reads `dir/*.json`, sorted by name (so a seed means the same inputs everywhere).
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let read_err = |source| CorpusError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut corpus = Self::default();
        for path in files {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).map_err(|source| CorpusError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let value: Value =
                serde_json::from_str(&text).map_err(|source| CorpusError::Parse {
                    path: path.display().to_string(),
                    source,
                })?;
            corpus.add(name, value);
        }
        if corpus.is_empty() {
            return Err(CorpusError::Empty(dir.display().to_string()));
        }
        Ok(corpus)
    }

    pub fn add(&mut self, name: String, value: Value) {
        let list = if name.starts_with("sma-") {
            &mut self.sma
        } else if name.starts_with("connect-lookup-") {
            &mut self.connect_lookup
        } else if name.starts_with("connect-transfer-") {
            &mut self.connect_transfer
        } else if name.starts_with("alexa-") {
            &mut self.alexa
        } else if name.starts_with("backend-") {
            &mut self.backend
        } else {
            return;
        };
        list.push((name, value));
    }

    fn lists(&self) -> [&Vec<(String, Value)>; 5] {
        [
            &self.sma,
            &self.connect_lookup,
            &self.connect_transfer,
            &self.alexa,
            &self.backend,
        ]
    }

    pub fn len(&self) -> usize {
        self.lists().iter().map(|l| l.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn named(&self, name: &str) -> Option<&Value> {
        self.lists()
            .into_iter()
            .flat_map(|l| l.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Any event, uniformly (a donor for cross-over).
    pub fn any(&self, rng: &mut ChaosRng) -> Option<&Value> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let mut i = rng.below(n as u64) as usize;
        for l in self.lists() {
            if i < l.len() {
                return l.get(i).map(|(_, v)| v);
            }
            i -= l.len();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_directory_has_every_source() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        let c = Corpus::load(&dir).unwrap();
        assert!(c.sma.len() >= 10);
        assert!(!c.connect_lookup.is_empty() && !c.connect_transfer.is_empty());
        assert!(!c.alexa.is_empty() && !c.backend.is_empty());
        assert!(c.named("sma-new-inbound-call-basic").is_some());
        let mut rng = ChaosRng::new(1);
        assert!((0..100).all(|_| c.any(&mut rng).is_some()));
    }
}
