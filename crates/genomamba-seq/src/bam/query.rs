//! Region queries on a coordinate-sorted BAM through its `.bai` or `.csi` index.

use std::{collections::VecDeque, fs::File, io, path::Path};

use noodles::{
    bam,
    bgzf::{self, io::Seek as _},
    core::{Position, region::Interval},
    csi::{BinningIndex, binning_index::index::reference_sequence::bin::Chunk},
    sam::{self, alignment::Record as _},
};

use super::{Current, ReadFilter, decode, raw_of, read_info};
use crate::{
    Region,
    source::{SequenceInfo, SequenceSource, context, invalid_data},
};

/// Reads the records overlapping each region in turn (a read overlapping two regions is returned twice, as
/// `samtools view` does with several regions).
pub struct QueryReader {
    inner: bam::io::Reader<bgzf::io::Reader<File>>,
    index: Box<dyn BinningIndex + Send>,
    header: sam::Header,
    input: String,
    filter: ReadFilter,
    regions: VecDeque<Region>,
    chunks: VecDeque<Chunk>,
    in_chunk: Option<bgzf::VirtualPosition>,
    target: Option<(usize, u64, u64)>,
    record: bam::Record,
    current: Current,
}

impl QueryReader {
    /// Opens `path` with `<path>.bai` or `<path>.csi`; validates every region against the header.
    pub fn open(path: &Path, regions: Vec<Region>, filter: ReadFilter) -> io::Result<Self> {
        let input = path.display().to_string();
        let index = bam::fs::read_associated_index(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{input}: a region query needs a BAM index ({input}.bai or .csi; create it with `samtools index`): {e}"),
            )
        })?;
        // Queries never reach the end in order: check once that the file is whole.
        crate::bgzf_eof::check_file(path, &input)?;
        let file = File::open(path).map_err(|e| context(&input, "opening", e))?;
        let mut inner = bam::io::Reader::new(file);
        let header = inner
            .read_header()
            .map_err(|e| context(&input, "reading the BAM header", e))?;
        let refs = header.reference_sequences();
        for r in &regions {
            let Some((_, map)) = refs.get_key_value(r.name.as_bytes()) else {
                return Err(invalid_data(
                    &input,
                    format_args!("unknown reference name '{}' in region {r}", r.name),
                ));
            };
            r.resolve(map.length().get() as u64)
                .map_err(|e| invalid_data(&input, e))?;
        }
        Ok(Self {
            inner,
            index: Box::new(index),
            header,
            input,
            filter,
            regions: regions.into(),
            chunks: VecDeque::new(),
            in_chunk: None,
            target: None,
            record: bam::Record::default(),
            current: Current::default(),
        })
    }

    fn start_region(&mut self) -> io::Result<bool> {
        let Some(region) = self.regions.pop_front() else {
            return Ok(false);
        };
        let refs = self.header.reference_sequences();
        let id = refs
            .get_index_of(region.name.as_bytes())
            .unwrap_or(usize::MAX);
        let len = refs
            .get_index(id)
            .map_or(0, |(_, m)| m.length().get() as u64);
        let (start, end) = region
            .resolve(len)
            .map_err(|e| invalid_data(&self.input, e))?;
        let to_pos =
            |p: u64| Position::try_from(p as usize).map_err(|e| invalid_data(&self.input, e));
        let interval = Interval::from(to_pos(start + 1)?..=to_pos(end)?);
        self.chunks = self
            .index
            .query(id, interval)
            .map_err(|e| context(&self.input, &region, e))?
            .into();
        self.target = Some((id, start, end));
        self.in_chunk = None;
        Ok(true)
    }

    /// Next record inside the current region's chunks that overlaps it; `false` when the region is done.
    fn next_overlapping(&mut self) -> io::Result<bool> {
        let Some((id, start, end)) = self.target else {
            return Ok(false);
        };
        loop {
            let inside = self
                .in_chunk
                .is_some_and(|e| self.inner.get_ref().virtual_position() < e);
            if !inside {
                let Some(chunk) = self.chunks.pop_front() else {
                    return Ok(false);
                };
                self.inner
                    .get_mut()
                    .seek_to_virtual_position(chunk.start())?;
                self.in_chunk = Some(chunk.end());
            }
            if self.inner.read_record(&mut self.record)? == 0 {
                self.chunks.clear();
                return Ok(false);
            }
            let rec = &self.record;
            if rec.reference_sequence_id().transpose()? != Some(id) {
                continue;
            }
            let Some(s) = rec.alignment_start().transpose()? else {
                continue;
            };
            let s0 = usize::from(s) as u64 - 1;
            // Unmapped reads placed beside their mate count as covering one base (samtools does the same).
            let e0 = match rec.alignment_end().transpose()? {
                Some(e) if usize::from(e) as u64 > s0 => usize::from(e) as u64,
                _ => s0 + 1,
            };
            if s0 >= end {
                // Sorted input: nothing later in this chunk list can overlap.
                self.chunks.clear();
                self.in_chunk = None;
                return Ok(false);
            }
            if e0 > start {
                return Ok(true);
            }
        }
    }
}

impl SequenceSource for QueryReader {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        loop {
            if self.target.is_none() && !self.start_region()? {
                self.current = Current::default();
                return Ok(None);
            }
            if !self
                .next_overlapping()
                .map_err(|e| context(&self.input, "BAM query", e))?
            {
                self.target = None;
                continue;
            }
            let (flag, mapq) = decode(&self.record, &mut self.current.bases)?;
            if !self.filter.keeps(flag, mapq) {
                continue;
            }
            let raw = raw_of(&self.record, flag, mapq)?;
            self.current.pos = 0;
            return Ok(Some(read_info(&self.header, raw, &mut self.current.bases)));
        }
    }

    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        Ok(self.current.take(buf, max))
    }

    fn input_name(&self) -> &str {
        &self.input
    }
}
