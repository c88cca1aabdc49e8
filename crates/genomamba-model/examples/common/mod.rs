//! What the examples share: E. coli's bases as tokens.

use std::io::Read;

use genomamba_seq::alphabet;

/// The first `n` bases (at most the whole genome) of E. coli (data/genomes/ecoli536.fna.gz) as tokens
/// (genomamba-seq's alphabet).
pub fn ecoli(n: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/genomes/ecoli536.fna.gz"
    );
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
    let (mut tokens, mut soft_masked) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.starts_with('>')) {
        alphabet::tokenize(line.as_bytes(), &mut tokens, &mut soft_masked)?;
        if tokens.len() >= n {
            break;
        }
    }
    tokens.truncate(n);
    Ok(tokens)
}
