//! Sequence names that repeat across inputs: their rows share key values (`chrom`, `read_name`), which a join or
//! a `GROUP BY` on the key would merge. Said in a warning at the end of the run.

use std::collections::HashMap;

/// Names seen so far, by the input each was first seen in, and those seen again in another input.
#[derive(Debug)]
pub(crate) struct RepeatedNames {
    /// Every record name is remembered (genomes), or only each input's first (reads, where remembering millions
    /// of names would cost memory that grows with the input; a first name catches mates named alike).
    every: bool,
    /// Name -> index of the input it was first seen in.
    seen: HashMap<String, usize>,
    /// The input whose first name was taken last (reads).
    last_input: Option<usize>,
    /// Names seen again in another input.
    count: u64,
    /// The first few of them: (name, first input, the other input).
    examples: Vec<(String, usize, usize)>,
}

impl RepeatedNames {
    /// Names remembered at most (then names are still checked against those): 100,000 contigs of a draft
    /// assembly, some megabytes.
    const REMEMBERED: usize = 100_000;
    /// Names given in the warning at most.
    const NAMED: usize = 3;

    /// For genome records: every name.
    pub(crate) fn records() -> Self {
        Self::new(true)
    }

    /// For reads: each input's first read.
    pub(crate) fn reads() -> Self {
        Self::new(false)
    }

    fn new(every: bool) -> Self {
        Self {
            every,
            seen: HashMap::new(),
            last_input: None,
            count: 0,
            examples: Vec::new(),
        }
    }

    /// A sequence `name` of input `input` has ended.
    pub(crate) fn add(&mut self, input: usize, name: &str) {
        if !self.every {
            if self.last_input == Some(input) {
                return;
            }
            self.last_input = Some(input);
        }
        match self.seen.get(name) {
            Some(&first) if first != input => {
                self.count += 1;
                if self.examples.len() < Self::NAMED {
                    self.examples.push((name.to_owned(), first, input));
                }
            }
            Some(_) => {}
            None if self.seen.len() < Self::REMEMBERED => {
                self.seen.insert(name.to_owned(), input);
            }
            None => {}
        }
    }

    /// The warning, if a name repeated; `input_name` gives an input's name by index.
    pub(crate) fn warning<'a>(&self, input_name: impl Fn(usize) -> &'a str) -> Option<String> {
        let (name, first, other) = self.examples.first()?;
        if !self.every {
            return Some(format!(
                "inputs {} and {} both begin with read '{name}' (mates named alike, or the same reads twice?), so \
                 their rows may share read_name values: rows follow the inputs' order, or give mates distinct names \
                 (name/1, name/2)",
                input_name(*first),
                input_name(*other)
            ));
        }
        let listed: Vec<String> = self
            .examples
            .iter()
            .map(|(n, a, b)| format!("'{n}' ({} and {})", input_name(*a), input_name(*b)))
            .collect();
        let more = match self.count - self.examples.len() as u64 {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let (names, appear) = if self.count == 1 {
            ("record name appears", "its rows share their chrom")
        } else {
            ("record names appear", "their rows share chrom")
        };
        Some(format!(
            "{} {names} in more than one input, so {appear} values: {}{more}; rows follow the inputs' order, \
             or run the inputs separately",
            self.count,
            listed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::RepeatedNames;

    const INPUTS: [&str; 3] = ["a.fa", "b.fa", "c.fa"];

    #[test]
    fn repeated_records_are_named_with_their_inputs() {
        let mut records = RepeatedNames::records();
        for (input, name) in [(0, "chr1"), (0, "chr1"), (0, "chr2"), (1, "chr3")] {
            records.add(input, name);
        }
        assert_eq!(
            records.warning(|i| INPUTS[i]),
            None,
            "regions of one record"
        );
        records.add(1, "chr2");
        assert_eq!(
            records.warning(|i| INPUTS[i]).as_deref(),
            Some(
                "1 record name appears in more than one input, so its rows share their chrom values: 'chr2' (a.fa \
                 and b.fa); rows follow the inputs' order, or run the inputs separately"
            )
        );
        for name in ["chr1", "chr2", "chr3", "chr4"] {
            records.add(2, name);
        }
        let warning = records.warning(|i| INPUTS[i]).unwrap_or_default();
        assert!(
            warning.starts_with(
                "4 record names appear in more than one input, so their rows share chrom values: 'chr2' (a.fa \
                 and b.fa), 'chr1' (a.fa and c.fa), 'chr2' (a.fa and c.fa) and 1 more;"
            ),
            "{warning}"
        );
    }

    #[test]
    fn reads_compare_each_inputs_first_read() {
        let mut reads = RepeatedNames::reads();
        for (input, name) in [(0, "r1"), (0, "r2"), (1, "r2"), (1, "r1")] {
            reads.add(input, name);
        }
        assert_eq!(reads.warning(|i| INPUTS[i]), None, "only first reads");
        reads.add(2, "r1");
        assert_eq!(
            reads.warning(|i| INPUTS[i]).as_deref(),
            Some(
                "inputs a.fa and c.fa both begin with read 'r1' (mates named alike, or the same reads twice?), so \
                 their rows may share read_name values: rows follow the inputs' order, or give mates distinct names \
                 (name/1, name/2)"
            )
        );
    }
}
