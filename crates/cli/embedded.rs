//! The default model, embedded in the binary so every command works with no `--model`
//! (data/models/ecoli-mamba-small: a small causal DNA Mamba trained on E. coli 536; see its card).

use anyhow::ensure;
use genomamba_model::Model;
use sha2::{Digest, Sha256};

const CONFIG: &[u8] = include_bytes!("../../data/models/ecoli-mamba-small/config.json");
const WEIGHTS: &[u8] = include_bytes!("../../data/models/ecoli-mamba-small/model.safetensors");
const CARD: &str = include_str!("../../data/models/ecoli-mamba-small/README.md");
/// SHA-256 of the embedded model.safetensors, checked at every load.
const WEIGHTS_SHA256: &str =
    include_str!("../../data/models/ecoli-mamba-small/model.safetensors.sha256");

/// The directory name of the embedded model, as recorded in metadata.
pub const NAME: &str = "ecoli-mamba-small";

/// Loads the embedded model after checking its SHA-256.
pub fn load() -> anyhow::Result<Model> {
    let digest = Sha256::digest(WEIGHTS);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let expected = WEIGHTS_SHA256.split_whitespace().next().unwrap_or_default();
    ensure!(
        hex == expected,
        "the embedded weights are corrupt: sha256 {hex}, expected {expected}"
    );
    let mut model = Model::from_bytes(CONFIG, WEIGHTS)?;
    model.info.name = format!("{NAME} (embedded)");
    Ok(model)
}

/// The card's title and first paragraph, for `genomamba inspect`.
pub fn card_summary() -> String {
    let mut out = Vec::new();
    let mut started = false;
    for line in CARD.lines() {
        if line.trim().is_empty() {
            if started && out.len() > 1 {
                break;
            }
            continue;
        }
        started = true;
        out.push(line);
    }
    out.push("(full card: data/models/ecoli-mamba-small/README.md)");
    out.join("\n")
}
