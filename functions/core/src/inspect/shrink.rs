//! Downscaling one row at a time: memory is O(width) for the accumulators plus the
//! thumbnail itself, whatever the image's height, so a PNG never needs its full pixels.

/// Thumbnail dimensions: the longest side brought to `side`, aspect kept; smaller images keep their size.
pub fn fit(w: u32, h: u32, side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= side {
        return (w.max(1), h.max(1));
    }
    let scale = |n: u32| ((u64::from(n) * u64::from(side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    (scale(w), scale(h))
}

/// Area-averaging (box filter) from `w×h` to `tw×th`, fed rows of `channels` 8-bit samples.
pub struct Shrinker {
    h: u32,
    th: u32,
    channels: usize,
    /// Output column of each input column.
    column: Vec<u32>,
    /// Input columns per output column.
    per_column: Vec<u32>,
    sums: Vec<u32>,
    rows_in_sums: u32,
    /// Input rows seen, and the output row they are summed into.
    y: u32,
    out_y: u32,
    out: Vec<u8>,
}

impl Shrinker {
    pub fn new(w: u32, h: u32, tw: u32, th: u32, channels: usize) -> Self {
        let column: Vec<u32> = (0..w).map(|x| (u64::from(x) * u64::from(tw) / u64::from(w)) as u32).collect();
        let mut per_column = vec![0u32; tw as usize];
        for &c in &column {
            per_column[c as usize] += 1;
        }
        Self {
            h,
            th,
            channels,
            column,
            per_column,
            sums: vec![0; tw as usize * channels],
            rows_in_sums: 0,
            y: 0,
            out_y: 0,
            out: Vec::with_capacity(tw as usize * th as usize * channels),
        }
    }

    /// Bytes this needs besides the input row: for reserving against the memory budget.
    pub fn footprint(w: u32, tw: u32, th: u32, channels: usize) -> u64 {
        u64::from(w) * 4 + u64::from(tw) * (4 + 4 * channels as u64) + u64::from(tw) * u64::from(th) * channels as u64
    }

    pub fn push(&mut self, row: &[u8]) {
        if self.y >= self.h {
            return;
        }
        let target = (u64::from(self.y) * u64::from(self.th) / u64::from(self.h)) as u32;
        if target != self.out_y {
            self.flush();
            self.out_y = target;
        }
        let ch = self.channels;
        for (px, &c) in row.chunks_exact(ch).zip(&self.column) {
            let at = c as usize * ch;
            for (s, &v) in self.sums[at..at + ch].iter_mut().zip(px) {
                *s += u32::from(v);
            }
        }
        self.rows_in_sums += 1;
        self.y += 1;
    }

    fn flush(&mut self) {
        if self.rows_in_sums == 0 {
            return;
        }
        let ch = self.channels;
        for (i, s) in self.sums.iter_mut().enumerate() {
            let n = self.per_column[i / ch] * self.rows_in_sums;
            self.out.push(((*s + n / 2) / n.max(1)) as u8);
            *s = 0;
        }
        self.rows_in_sums = 0;
    }

    /// The thumbnail's samples, row by row; `None` if fewer rows arrived than the height.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        self.flush();
        (self.y == self.h && self.out.len() == self.sums.len() * self.th as usize).then_some(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_the_aspect_and_small_images() {
        assert_eq!(fit(4000, 3000, 256), (256, 192));
        assert_eq!(fit(3000, 4000, 256), (192, 256));
        assert_eq!(fit(100, 50, 256), (100, 50));
        assert_eq!(fit(100_000, 1, 256), (256, 1));
    }

    #[test]
    fn averages_areas() {
        // 4×2 gray: left half 0, right half 200 → 2×1.
        let mut s = Shrinker::new(4, 2, 2, 1, 1);
        s.push(&[0, 0, 200, 200]);
        s.push(&[0, 0, 200, 100]);
        assert_eq!(s.finish().unwrap(), vec![0, 175]);
        // Identity when the size is kept, for every channel.
        let mut s = Shrinker::new(2, 2, 2, 2, 3);
        s.push(&[1, 2, 3, 4, 5, 6]);
        s.push(&[7, 8, 9, 10, 11, 12]);
        assert_eq!(s.finish().unwrap(), (1..=12).collect::<Vec<u8>>());
    }

    #[test]
    fn a_short_image_is_not_a_thumbnail() {
        let mut s = Shrinker::new(2, 3, 1, 1, 1);
        s.push(&[1, 2]);
        assert!(s.finish().is_none());
    }
}
