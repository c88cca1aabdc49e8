//! The token alphabet (DESIGN §3): one const 256-entry table from file bytes to token ids.
//!
//! Vocabulary (Caduceus/HyenaDNA characters): `[CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6
//! A=7 C=8 G=9 T=10 N=11`. Lower-case bases take the token of their upper-case letter plus a soft-mask flag,
//! IUPAC ambiguity codes `RYSWKMBDHV` (either case) become `N`, and every other byte is invalid.

use std::fmt;

/// `[CLS]` token id.
pub const CLS: u8 = 0;
/// `[SEP]` token id.
pub const SEP: u8 = 1;
/// `[BOS]` token id.
pub const BOS: u8 = 2;
/// `[MASK]` token id.
pub const MASK: u8 = 3;
/// `[PAD]` token id.
pub const PAD: u8 = 4;
/// `[RESERVED]` token id.
pub const RESERVED: u8 = 5;
/// `[UNK]` token id.
pub const UNK: u8 = 6;
/// Token id of base `A`.
pub const A: u8 = 7;
/// Token id of base `C`.
pub const C: u8 = 8;
/// Token id of base `G`.
pub const G: u8 = 9;
/// Token id of base `T`.
pub const T: u8 = 10;
/// Token id of `N` (and of every IUPAC ambiguity code).
pub const N: u8 = 11;
/// Number of token ids in the vocabulary (`0..VOCAB_SIZE`).
pub const VOCAB_SIZE: usize = 12;

/// Bit set in a [`TABLE`] entry for a lower-case (soft-masked) byte.
pub const SOFT_MASK_BIT: u8 = 0x40;
/// [`TABLE`] entry of a byte that is not a base.
pub const INVALID: u8 = 0xFF;

/// Byte -> entry: `token | SOFT_MASK_BIT` for lower case, `token` for upper case, [`INVALID`] otherwise.
pub const TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let upper: [(u8, u8); 15] = [
        (b'A', A),
        (b'C', C),
        (b'G', G),
        (b'T', T),
        (b'N', N),
        (b'R', N),
        (b'Y', N),
        (b'S', N),
        (b'W', N),
        (b'K', N),
        (b'M', N),
        (b'B', N),
        (b'D', N),
        (b'H', N),
        (b'V', N),
    ];
    let mut i = 0;
    while i < upper.len() {
        let (b, tok) = upper[i];
        t[b as usize] = tok;
        t[b.to_ascii_lowercase() as usize] = tok | SOFT_MASK_BIT;
        i += 1;
    }
    t
};

/// A byte that is not a base, found at `offset` (0-based) in the slice given to [`tokenize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidBase {
    /// 0-based index of the byte in the input slice.
    pub offset: usize,
    /// The byte itself.
    pub byte: u8,
}

impl fmt::Display for InvalidBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid base {} at offset {} (0-based)",
            self.byte.escape_ascii(),
            self.offset
        )
    }
}

impl std::error::Error for InvalidBase {}

/// Token of one byte and whether it is soft-masked, or `None` if it is not a base.
///
/// ```
/// use genomamba_seq::alphabet;
/// assert_eq!(alphabet::token(b'g'), Some((alphabet::G, true)));
/// assert_eq!(alphabet::token(b'Y'), Some((alphabet::N, false)));
/// assert_eq!(alphabet::token(b'-'), None);
/// ```
pub const fn token(byte: u8) -> Option<(u8, bool)> {
    let e = TABLE[byte as usize];
    if e == INVALID {
        None
    } else {
        Some((e & !SOFT_MASK_BIT, e & SOFT_MASK_BIT != 0))
    }
}

/// Appends the tokens of `bases` to `tokens` and their soft-mask flags to `soft_masked`.
///
/// On an invalid byte nothing is appended and its offset within `bases` is returned.
///
/// ```
/// use genomamba_seq::alphabet::{self, A, C, G, N, T};
/// let (mut tokens, mut mask) = (Vec::new(), Vec::new());
/// alphabet::tokenize(b"ACgtR", &mut tokens, &mut mask)?;
/// assert_eq!(tokens, [A, C, G, T, N]);
/// assert_eq!(mask, [false, false, true, true, false]);
/// let err = alphabet::tokenize(b"AC-T", &mut tokens, &mut mask).unwrap_err();
/// assert_eq!(err.offset, 2);
/// # Ok::<(), alphabet::InvalidBase>(())
/// ```
pub fn tokenize(
    bases: &[u8],
    tokens: &mut Vec<u8>,
    soft_masked: &mut Vec<bool>,
) -> Result<(), InvalidBase> {
    let t0 = tokens.len();
    let m0 = soft_masked.len();
    tokens.reserve(bases.len());
    soft_masked.reserve(bases.len());
    let mut bad = 0u8;
    // Branch-free hot loop: accumulate the entries' high bits, check once per call.
    tokens.extend(bases.iter().map(|&b| {
        let e = TABLE[b as usize];
        bad |= e & 0x80;
        e & !SOFT_MASK_BIT
    }));
    if bad != 0 {
        tokens.truncate(t0);
        let offset = bases
            .iter()
            .position(|&b| TABLE[b as usize] == INVALID)
            .unwrap_or(0);
        return Err(InvalidBase {
            offset,
            byte: bases[offset],
        });
    }
    soft_masked.extend(
        tokens[t0..]
            .iter()
            .zip(bases)
            .map(|(_, &b)| TABLE[b as usize] & SOFT_MASK_BIT != 0),
    );
    debug_assert_eq!(soft_masked.len() - m0, bases.len());
    Ok(())
}

/// Complement of a token: A<->T, C<->G, N->N; special tokens map to themselves.
pub const fn complement_token(token: u8) -> u8 {
    match token {
        A => T,
        T => A,
        C => G,
        G => C,
        other => other,
    }
}

/// Reverses `tokens` in place and complements each (DESIGN §3: reverse, then A<->T, C<->G, N->N).
///
/// ```
/// use genomamba_seq::alphabet::{self, A, C, G, N, T};
/// let mut t = vec![A, A, C, N, G];
/// alphabet::reverse_complement(&mut t);
/// assert_eq!(t, [C, N, G, T, T]);
/// ```
pub fn reverse_complement(tokens: &mut [u8]) {
    tokens.reverse();
    for t in tokens {
        *t = complement_token(*t);
    }
}

/// Reverse complement of raw bases in place, keeping case and IUPAC codes (`R`<->`Y`, `K`<->`M`, `B`<->`V`,
/// `D`<->`H`, `S`, `W`, `N` unchanged); any other byte is left as it is. BAM reads use this.
pub fn reverse_complement_bases(bases: &mut [u8]) {
    bases.reverse();
    for b in bases {
        *b = complement_base(*b);
    }
}

const fn complement_base(b: u8) -> u8 {
    let lower = b & 0x20;
    let c = match b & !0x20 {
        b'A' => b'T',
        b'T' => b'A',
        b'C' => b'G',
        b'G' => b'C',
        b'R' => b'Y',
        b'Y' => b'R',
        b'K' => b'M',
        b'M' => b'K',
        b'B' => b'V',
        b'V' => b'B',
        b'D' => b'H',
        b'H' => b'D',
        _ => return b,
    };
    c | lower
}

/// Token id -> the upper-case letter it stands for (`b'?'` for special tokens).
pub const fn token_letter(token: u8) -> u8 {
    match token {
        A => b'A',
        C => b'C',
        G => b'G',
        T => b'T',
        N => b'N',
        _ => b'?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_table_covers_exactly_the_alphabet() {
        let valid: Vec<u8> = (0..=255u8)
            .filter(|&b| TABLE[b as usize] != INVALID)
            .collect();
        let mut expected: Vec<u8> = b"ACGTNRYSWKMBDHVacgtnryswkmbdhv".to_vec();
        expected.sort_unstable();
        assert_eq!(valid, expected);
        assert_eq!(token(b'a'), Some((A, true)));
        assert_eq!(token(b'N'), Some((N, false)));
        assert_eq!(token(b'h'), Some((N, true)));
        assert_eq!(token(b'U'), None);
        assert_eq!(token(b'\r'), None);
    }

    #[test]
    fn test_tokenize_reports_first_invalid_byte() {
        let (mut t, mut m) = (vec![A], vec![false]);
        let err = tokenize(b"ACGT\nX", &mut t, &mut m).unwrap_err();
        assert_eq!(
            err,
            InvalidBase {
                offset: 4,
                byte: b'\n'
            }
        );
        assert_eq!((t.len(), m.len()), (1, 1), "nothing appended on error");
        assert_eq!(err.to_string(), "invalid base \\n at offset 4 (0-based)");
    }

    #[test]
    fn test_reverse_complement_is_an_involution_on_real_sequence() -> Result<(), InvalidBase> {
        let lambda = include_bytes!("../../../data/genomes/lambda_virus.fa");
        let seq: Vec<u8> = lambda
            .split(|&b| b == b'\n')
            .skip(1)
            .flatten()
            .copied()
            .collect();
        let (mut t, mut m) = (Vec::new(), Vec::new());
        tokenize(&seq, &mut t, &mut m)?;
        assert_eq!(t.len(), 48_502);
        let mut rc = t.clone();
        reverse_complement(&mut rc);
        assert_eq!(rc[0], complement_token(t[t.len() - 1]));
        assert_ne!(rc, t);
        reverse_complement(&mut rc);
        assert_eq!(rc, t);
        let mut bases = b"ACgtRyKmBvDhNSW".to_vec();
        reverse_complement_bases(&mut bases);
        assert_eq!(&bases, b"WSNdHbVkMrYacGT");
        Ok(())
    }
}
