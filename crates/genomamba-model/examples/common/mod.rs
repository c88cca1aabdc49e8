//! What the examples share: E. coli's bases as tokens.

use std::io::Read;

/// The first `n` bases (at most the whole genome) of E. coli (data/genomes/ecoli536.fna.gz) as tokens (A7 C8
/// G9 T10, else N11).
pub fn ecoli(n: usize) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/genomes/ecoli536.fna.gz"
    );
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
    let map = |b: u8| match b.to_ascii_uppercase() {
        b'A' => 7,
        b'C' => 8,
        b'G' => 9,
        b'T' => 10,
        _ => 11,
    };
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(|l| l.bytes())
        .map(map)
        .take(n)
        .collect())
}
