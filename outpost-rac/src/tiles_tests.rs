//! Tests of dirty-cell tracking: marking, hashing of sent cells, coalescing.

use super::*;

fn rect(x: u16, y: u16, w: u16, h: u16) -> Rect {
    Rect { x, y, w, h }
}

fn image(width: u16, height: u16) -> (Vec<u8>, usize) {
    let stride = usize::from(width) * 4;
    (vec![0; stride * usize::from(height)], stride)
}

fn paint(image: &mut [u8], stride: usize, x: usize, y: usize, value: u8) {
    image[y * stride + x * 4] = value;
}

#[test]
fn a_new_image_is_all_dirty_and_sent_as_one_rectangle() {
    let (pixels, stride) = image(200, 100);
    let mut cells = DirtyCells::new(200, 100);
    assert!(cells.is_dirty());
    assert_eq!(cells.take(&pixels, stride), [rect(0, 0, 200, 100)]);
    assert!(!cells.is_dirty());
    assert!(cells.take(&pixels, stride).is_empty());
}

#[test]
fn unchanged_cells_are_dropped() {
    let (mut pixels, stride) = image(256, 128);
    let mut cells = DirtyCells::new(256, 128);
    cells.take(&pixels, stride);
    cells.mark(0, 0, 256, 128);
    assert!(cells.take(&pixels, stride).is_empty(), "same pixels");
    paint(&mut pixels, stride, 70, 70, 9);
    cells.mark(0, 0, 256, 128);
    assert_eq!(cells.take(&pixels, stride), [rect(64, 64, 64, 64)]);
    // A change outside the marked area is not looked at.
    paint(&mut pixels, stride, 0, 0, 9);
    cells.mark(200, 0, 10, 10);
    assert!(cells.take(&pixels, stride).is_empty());
}

#[test]
fn marks_are_clamped_to_the_image() {
    let (mut pixels, stride) = image(100, 70);
    let mut cells = DirtyCells::new(100, 70);
    cells.take(&pixels, stride);
    cells.mark(500, 0, 10, 10);
    cells.mark(0, 0, 0, 10);
    assert!(!cells.is_dirty());
    for x in [99, 0] {
        paint(&mut pixels, stride, x, 69, 1);
    }
    cells.mark(90, 65, u16::MAX, u16::MAX);
    assert_eq!(cells.take(&pixels, stride), [rect(64, 64, 36, 6)]);
}

#[test]
fn runs_in_a_row_merge_across_small_gaps_only() {
    // Cells 0,1,2 dirty, 3 clean, 4 dirty: 4 of 5 (80%) -> one run.
    assert_eq!(row_spans(&[true, true, true, false, true, false]), [(0, 5)]);
    // 1 of 2 (50%) -> separate.
    assert_eq!(row_spans(&[true, false, true]), [(0, 1), (2, 3)]);
    // 3 of 4 (75%) merges.
    assert_eq!(row_spans(&[true, true, false, true]), [(0, 4)]);
    assert!(row_spans(&[false, false]).is_empty());
}

#[test]
fn rows_with_the_same_span_merge_into_rectangles() {
    let (mut pixels, stride) = image(320, 256);
    let mut cells = DirtyCells::new(320, 256);
    cells.take(&pixels, stride);
    // Cells (row 0..=2, columns 1..=2) and (row 3, column 4).
    for row in 0..3 {
        for column in 1..3 {
            paint(&mut pixels, stride, column * 64 + 1, row * 64 + 1, 5);
        }
    }
    paint(&mut pixels, stride, 4 * 64, 3 * 64, 5);
    cells.mark(0, 0, 320, 256);
    assert_eq!(
        cells.take(&pixels, stride),
        [rect(64, 0, 128, 192), rect(256, 192, 64, 64)]
    );
}

#[test]
fn resize_and_reset_send_everything_again() {
    let (pixels, stride) = image(128, 64);
    let mut cells = DirtyCells::new(128, 64);
    cells.take(&pixels, stride);
    cells.reset();
    assert_eq!(cells.take(&pixels, stride), [rect(0, 0, 128, 64)]);
    cells.resize(64, 128);
    assert_eq!(cells.size(), (64, 128));
    let (pixels, stride) = image(64, 128);
    assert_eq!(cells.take(&pixels, stride), [rect(0, 0, 64, 128)]);
}

#[test]
fn a_short_image_buffer_sends_the_cells_without_remembering_them() {
    let mut cells = DirtyCells::new(128, 64);
    let short = vec![0u8; 100];
    assert_eq!(cells.take(&short, 512), [rect(0, 0, 128, 64)]);
    cells.mark(0, 0, 1, 1);
    assert_eq!(cells.take(&short, 512), [rect(0, 0, 64, 64)]);
    let empty = DirtyCells::new(0, 0).take(&[], 0);
    assert!(empty.is_empty());
}

#[test]
fn rectangles_are_at_most_eight_cells_a_side() {
    let (pixels, stride) = image(1920, 1080);
    let mut cells = DirtyCells::new(1920, 1080);
    let rects = cells.take(&pixels, stride);
    assert_eq!(rects.len(), 4 * 3, "{rects:?}");
    assert_eq!(rects[0], rect(0, 0, 512, 512));
    assert_eq!(rects[3], rect(1536, 0, 384, 512));
    assert_eq!(rects[11], rect(1536, 1024, 384, 56));
    let area: u32 = rects.iter().map(Rect::area).sum();
    assert_eq!(area, 1920 * 1080);
    // Long runs are cut; the rest still merges across a small gap.
    let mut row = vec![true; 10];
    row.extend([false, true]);
    assert_eq!(row_spans(&row), [(0, 8), (8, 12)]);
    // Merging never makes a span longer than the cap.
    let mut row = vec![true; 7];
    row.extend([false, true, true]);
    assert_eq!(row_spans(&row), [(0, 7), (8, 10)]);
}
