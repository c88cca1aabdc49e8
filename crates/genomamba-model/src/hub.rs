//! Models already in the local Hugging Face cache, named as transformers names them (`owner/name`,
//! `owner/name@revision`): never downloaded, only found where `huggingface-cli download`, `hf download` or a
//! transformers run left them.
//!
//! The cache's layout (`models--owner--name/refs/<branch>` holding a commit, `snapshots/<commit>/` holding the
//! files) is read through `hf-hub`; its root is found as `huggingface_hub` finds it ([`cache_root`]).

use std::{
    env,
    path::{Path, PathBuf},
};

use hf_hub::{Cache, Repo, RepoType};

use crate::{Error, Result};

/// Where a `--model` argument points: a directory as given, or a snapshot in the Hugging Face cache.
///
/// An existing path is used as it is. Otherwise an argument of the form `owner/name` or
/// `owner/name@revision` (a branch or tag under `refs/`, or a commit whose snapshot is present) is looked up
/// in [`cache_root`]; a repository that is not there is an error saying how to get it. Anything else is
/// returned unchanged, so that loading it reports the missing `config.json`.
pub fn locate(model: &Path) -> Result<PathBuf> {
    if model.exists() {
        return Ok(model.to_path_buf());
    }
    let Some((id, revision)) = model.to_str().and_then(repo_id) else {
        return Ok(model.to_path_buf());
    };
    let root = cache_root().ok_or_else(|| {
        Error::NotFound(format!(
            "{}: no such directory, and no Hugging Face cache to look in (neither HF_HUB_CACHE, HF_HOME nor a \
             home directory is set)",
            model.display()
        ))
    })?;
    snapshot(&root, id, revision).ok_or_else(|| {
        Error::NotFound(format!(
            "{}: no such directory, and not in the Hugging Face cache at {} (genomamba never downloads: \
             `huggingface-cli download {id}{}` puts it there, or give the model's directory)",
            model.display(),
            root.display(),
            revision.map(|r| format!(" --revision {r}")).unwrap_or_default(),
        ))
    })
}

/// The snapshot directory of repository `id` at `revision` (default `main`) under the cache `root`, if its
/// `config.json` is there.
pub fn snapshot(root: &Path, id: &str, revision: Option<&str>) -> Option<PathBuf> {
    let revision = revision.unwrap_or("main");
    let repo = Repo::with_revision(id.to_owned(), RepoType::Model, revision.to_owned());
    let found = Cache::new(root.to_path_buf())
        .repo(repo.clone())
        .get("config.json")
        .or_else(|| {
            // A commit given as the revision names its snapshot directly, with no ref.
            let by_commit = root
                .join(repo.folder_name())
                .join("snapshots")
                .join(revision)
                .join("config.json");
            by_commit.is_file().then_some(by_commit)
        })?;
    found.parent().map(Path::to_path_buf)
}

/// `owner/name` and an optional `@revision`, when `arg` has that form (one `/`, no leading `.`, `/` or `~`, and
/// the characters the Hub allows in names).
fn repo_id(arg: &str) -> Option<(&str, Option<&str>)> {
    let (id, revision) = match arg.split_once('@') {
        Some((id, r)) if !r.is_empty() => (id, Some(r)),
        Some(_) => return None,
        None => (arg, None),
    };
    let (owner, name) = id.split_once('/')?;
    let part = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (part(owner) && part(name)).then_some((id, revision))
}

/// The Hugging Face cache's root, as `huggingface_hub` finds it: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`; `None` without any of them.
/// (`hf_hub::Cache::from_env` reads `HF_HOME` only, and panics with no home directory.)
pub fn cache_root() -> Option<PathBuf> {
    let var = |name: &str| {
        env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HUB_CACHE")
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
        .or_else(|| env::home_dir().map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// `owner/name@commit` when `dir` is a snapshot in a Hugging Face cache (`.../models--owner--name/snapshots/
/// <commit>`), else `None`: how a model found there is named in outputs, rather than by its commit alone.
pub fn snapshot_name(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let commit = dir.file_name()?.to_str()?;
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let folder = snapshots.parent()?.file_name()?.to_str()?;
    let id = folder.strip_prefix("models--")?;
    let (owner, name) = id.split_once("--")?;
    Some(format!("{owner}/{name}@{commit}"))
}

/// How a model loaded from `dir` is named: its Hugging Face repository and commit when `dir` is a cache
/// snapshot, else the directory's own name.
pub fn model_name(dir: &Path) -> String {
    snapshot_name(dir).unwrap_or_else(|| {
        dir.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_told_from_paths() {
        assert_eq!(
            repo_id("state-spaces/mamba-130m-hf"),
            Some(("state-spaces/mamba-130m-hf", None))
        );
        assert_eq!(
            repo_id("kuleshov-group/caduceus-ps_seqlen-131k_d_model-256_n_layer-16@v1.0"),
            Some((
                "kuleshov-group/caduceus-ps_seqlen-131k_d_model-256_n_layer-16",
                Some("v1.0")
            ))
        );
        for path in [
            "model", "./a/b", "../a", "/abs/dir", "a/b/c", "~/m", "a/", "a/b@", ".a/b",
        ] {
            assert_eq!(repo_id(path), None, "{path}");
        }
    }

    #[test]
    fn snapshot_names_name_the_repository() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let snap = tmp
            .path()
            .join("models--owner--some-model/snapshots/0123abcd");
        std::fs::create_dir_all(&snap)?;
        assert_eq!(model_name(&snap), "owner/some-model@0123abcd");
        let plain = tmp.path().join("plain-model");
        std::fs::create_dir_all(&plain)?;
        assert_eq!(model_name(&plain), "plain-model");
        Ok(())
    }
}
