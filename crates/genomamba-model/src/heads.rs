//! Heads on the final hidden state: the four-base distribution from the (tied) LM head.

use crate::engine::BASE_TOKENS;

/// P(A), P(C), P(G), P(T) of the next base from one final hidden row `h` `(D,)` and the LM head
/// `(vocab, D)`: softmax over the logits of tokens A, C, G, T only, which equals the full softmax
/// renormalised over those four. Logits are accumulated in f64, in four interleaved partial sums (so the
/// loop vectorises; a serial f64 sum cannot be reordered).
pub fn base_probs(h: &[f32], lm_head: &[f32]) -> [f32; 4] {
    let d = h.len();
    let mut logits = [0f64; 4];
    for (l, &tok) in logits.iter_mut().zip(&BASE_TOKENS) {
        let row = &lm_head[tok * d..(tok + 1) * d];
        let mut acc = [0f64; 4];
        let (ws, xs) = (row.chunks_exact(4), h.chunks_exact(4));
        let rest: f64 = (ws.remainder().iter().zip(xs.remainder()))
            .map(|(&w, &x)| f64::from(w) * f64::from(x))
            .sum();
        for (w, x) in ws.zip(xs) {
            for j in 0..4 {
                acc[j] += f64::from(w[j]) * f64::from(x[j]);
            }
        }
        *l = acc.iter().sum::<f64>() + rest;
    }
    softmax4(logits)
}

/// Softmax of four logits, computed stably.
pub fn softmax4(logits: [f64; 4]) -> [f32; 4] {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = logits.map(|l| (l - max).exp());
    let sum: f64 = e.iter().sum();
    e.map(|x| (x / sum) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_softmax4_sums_to_one_and_orders() {
        let p = softmax4([1.0, 2.0, 3.0, 4.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] < p[1] && p[1] < p[2] && p[2] < p[3]);
        assert!((p[3] / p[2] - std::f32::consts::E).abs() < 1e-5);
        // Huge logits must not overflow.
        assert_eq!(softmax4([1.0, 2.0, 3.0, 1000.0]), [0.0, 0.0, 0.0, 1.0]);
    }
}
