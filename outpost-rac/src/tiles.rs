//! Which parts of the desktop image must go to the browser: a bitset of dirty 64×64 cells
//! marked as RDP updates arrive, a hash per cell of what was last sent (a cell repainted with
//! the same pixels is dropped), and coalescing of dirty cells into few rectangles.
//!
//! The image is IronRDP's `DecodedImage` in `PixelFormat::RgbA32`: four bytes per pixel in
//! memory order R, G, B, A (`PixelFormat::channel_offsets` is `[0, 1, 2, 3]`), rows `stride`
//! bytes apart. Only the bytes are read here, so the format matters for the encoder only.

use std::hash::{DefaultHasher, Hasher};

/// The side of a cell, in pixels.
pub const CELL: u16 = 64;

/// Most cells a rectangle spans in either direction (512 pixels): smaller rectangles encode
/// in parallel, and each gets the encoding that suits its own content.
pub const MAX_MERGE: usize = 8;

/// Bytes per pixel of the image.
const BYTES_PER_PIXEL: usize = 4;

/// A rectangle of the desktop, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Rect {
    /// Its area in pixels.
    pub fn area(&self) -> u32 {
        u32::from(self.w) * u32::from(self.h)
    }
}

/// Dirty cells of a desktop image and hashes of what the browser has.
#[derive(Debug, Clone)]
pub struct DirtyCells {
    width: u16,
    height: u16,
    columns: usize,
    rows: usize,
    dirty: Vec<u64>,
    /// Per cell, the hash of the pixels last returned by [`DirtyCells::take`].
    sent: Vec<Option<u64>>,
}

impl DirtyCells {
    /// Cells for a `width` × `height` image, all dirty (the browser has nothing yet).
    pub fn new(width: u16, height: u16) -> Self {
        let columns = usize::from(width).div_ceil(usize::from(CELL));
        let rows = usize::from(height).div_ceil(usize::from(CELL));
        let cells = columns * rows;
        let mut this = Self {
            width,
            height,
            columns,
            rows,
            dirty: vec![0; cells.div_ceil(64)],
            sent: vec![None; cells],
        };
        this.reset();
        this
    }

    /// The image size.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// A new image size: every cell dirty, nothing known to be sent.
    pub fn resize(&mut self, width: u16, height: u16) {
        *self = Self::new(width, height);
    }

    /// Forgets what was sent and marks every cell dirty (a browser re-attached).
    pub fn reset(&mut self) {
        self.sent.fill(None);
        self.mark(0, 0, self.width, self.height);
    }

    /// Marks the cells under a rectangle dirty; the part outside the image is ignored.
    pub fn mark(&mut self, x: u16, y: u16, w: u16, h: u16) {
        let x_end = (u32::from(x) + u32::from(w)).min(u32::from(self.width));
        let y_end = (u32::from(y) + u32::from(h)).min(u32::from(self.height));
        if u32::from(x) >= x_end || u32::from(y) >= y_end {
            return;
        }
        let cell = u32::from(CELL);
        let (c0, c1) = (cell_index(u32::from(x), cell), cell_index(x_end - 1, cell));
        let (r0, r1) = (cell_index(u32::from(y), cell), cell_index(y_end - 1, cell));
        for row in r0..=r1 {
            for column in c0..=c1 {
                self.set(row * self.columns + column);
            }
        }
    }

    /// Whether any cell is dirty.
    pub fn is_dirty(&self) -> bool {
        self.dirty.iter().any(|&word| word != 0)
    }

    /// The rectangles to send now, and every cell clean. Cells whose pixels hash as what was
    /// last sent are dropped; the others are remembered as sent (the caller must send every
    /// rectangle returned). Dirty cells are merged into runs along a row, then runs with the
    /// same span in consecutive rows into rectangles; a merge that bridges clean cells is kept
    /// only if at least 75% of its cells are dirty, and no rectangle is more than
    /// [`MAX_MERGE`] cells wide or high.
    pub fn take(&mut self, image: &[u8], stride: usize) -> Vec<Rect> {
        let mut send = vec![false; self.columns * self.rows];
        for (index, wanted) in send.iter_mut().enumerate() {
            if !self.is_set(index) {
                continue;
            }
            let hash = self.hash_cell(index, image, stride);
            if hash.is_none() || hash != self.sent[index] {
                *wanted = true;
            }
            self.sent[index] = hash;
        }
        self.dirty.fill(0);
        self.coalesce(&send)
    }

    fn set(&mut self, index: usize) {
        if let Some(word) = self.dirty.get_mut(index / 64) {
            *word |= 1 << (index % 64);
        }
    }

    fn is_set(&self, index: usize) -> bool {
        self.dirty
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// The cell's pixel rectangle.
    fn cell_rect(&self, row: usize, column: usize, rows: usize, columns: usize) -> Rect {
        let cell = usize::from(CELL);
        let x = column * cell;
        let y = row * cell;
        let w = (columns * cell).min(usize::from(self.width).saturating_sub(x));
        let h = (rows * cell).min(usize::from(self.height).saturating_sub(y));
        Rect {
            x: to_u16(x),
            y: to_u16(y),
            w: to_u16(w),
            h: to_u16(h),
        }
    }

    /// A hash of the cell's pixels, or `None` when the image does not hold them all.
    fn hash_cell(&self, index: usize, image: &[u8], stride: usize) -> Option<u64> {
        let rect = self.cell_rect(index / self.columns, index % self.columns, 1, 1);
        let mut hasher = DefaultHasher::new();
        for y in usize::from(rect.y)..usize::from(rect.y) + usize::from(rect.h) {
            let start = y
                .checked_mul(stride)?
                .checked_add(usize::from(rect.x) * BYTES_PER_PIXEL)?;
            let end = start.checked_add(usize::from(rect.w) * BYTES_PER_PIXEL)?;
            hasher.write(image.get(start..end)?);
        }
        Some(hasher.finish())
    }

    fn coalesce(&self, send: &[bool]) -> Vec<Rect> {
        let mut rects = Vec::new();
        // Open rectangles: (first row, first column, end column), extended while the next
        // row has a span with the same columns, up to `MAX_MERGE` rows.
        let mut open: Vec<(usize, usize, usize)> = Vec::new();
        for row in 0..self.rows {
            let cells = send
                .get(row * self.columns..(row + 1) * self.columns)
                .unwrap_or(&[]);
            let mut still_open = Vec::new();
            for (start, end) in row_spans(cells) {
                let extends = open
                    .iter()
                    .position(|&(first, s, e)| s == start && e == end && row - first < MAX_MERGE);
                match extends {
                    Some(at) => still_open.push(open.swap_remove(at)),
                    None => still_open.push((row, start, end)),
                }
            }
            for (first_row, start, end) in open.drain(..) {
                rects.push(self.cell_rect(first_row, start, row - first_row, end - start));
            }
            open = still_open;
        }
        for (first_row, start, end) in open {
            rects.push(self.cell_rect(first_row, start, self.rows - first_row, end - start));
        }
        rects.sort_by_key(|r| (r.y, r.x));
        rects
    }
}

/// The dirty runs of one row of cells, merged across clean gaps while at least 75% of the
/// merged span is dirty, and cut to at most `MAX_MERGE` cells.
fn row_spans(cells: &[bool]) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, dirty cells)
    let mut column = 0;
    while column < cells.len() {
        if !cells[column] {
            column += 1;
            continue;
        }
        let start = column;
        while column < cells.len() && cells[column] && column - start < MAX_MERGE {
            column += 1;
        }
        let end = column;
        if let Some(last) = spans.last_mut() {
            let dirty = last.2 + (end - start);
            let length = end - last.0;
            if length <= MAX_MERGE && dirty * 4 >= length * 3 {
                *last = (last.0, end, dirty);
                continue;
            }
        }
        spans.push((start, end, end - start));
    }
    spans.into_iter().map(|(s, e, _)| (s, e)).collect()
}

fn cell_index(pixel: u32, cell: u32) -> usize {
    usize::try_from(pixel / cell).unwrap_or(usize::MAX)
}

/// Pixel values here are bounded by the image size, a `u16`.
fn to_u16(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

#[cfg(test)]
#[path = "tiles_tests.rs"]
mod tests;
