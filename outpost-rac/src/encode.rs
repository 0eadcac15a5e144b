//! Tile encoding: a rectangle of the desktop image becomes a `fill` (one colour), a PNG (text
//! and UI, or whenever lossless is required) or a JPEG (photo-like content), as in
//! Guacamole's choice. CPU work: run it on a blocking pool.
//!
//! The image is `PixelFormat::RgbA32` (bytes R, G, B, A; see [`crate::tiles`]), `stride` bytes
//! per row. RDP has no transparency, so every tile is sent opaque (alpha 255) whatever the
//! image's alpha bytes hold. A rectangle not wholly inside the image (past `stride / 4`
//! columns or the end of the buffer) is refused, so a bad rectangle or stride never panics
//! nor allocates more than the image.

use crate::tiles::Rect;
use redoubt_outpost_proto::rac::TileEncoding;

/// The fill sent for a refused rectangle.
const BLACK: [u8; 4] = [0, 0, 0, 255];

/// Smallest area (pixels) worth a JPEG; smaller photo-like tiles go as PNG.
pub const JPEG_MIN_AREA: u32 = 4096;

/// Content is photo-like when fewer than this share (percent) of its pixels equal their left
/// neighbour; text and UI are typically above 80%.
pub const PHOTO_MAX_EQUAL_PERCENT: u64 = 50;

/// Which PNG row filter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PngFilter {
    /// Each pixel minus its left neighbour: cheapest, good for horizontal UI.
    Sub,
    /// Each pixel minus the one above.
    Up,
    /// The best of the five filters per row: smallest output, more CPU.
    #[default]
    Adaptive,
}

/// How a connection's tiles are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeSettings {
    /// PNG only, never JPEG (the endpoint's `lossless`, and tests).
    pub lossless: bool,
    /// JPEG quality, 1 to 100 (from [`crate::pacing::Pacer::jpeg_quality`]).
    pub jpeg_quality: u8,
    pub png_filter: PngFilter,
}

impl Default for EncodeSettings {
    fn default() -> Self {
        Self {
            lossless: false,
            jpeg_quality: 90,
            png_filter: PngFilter::default(),
        }
    }
}

/// Buffers reused across tiles (one per encoding thread).
#[derive(Debug, Default)]
pub struct EncodeScratch {
    rgba: Vec<u8>,
    rgb: Vec<u8>,
}

/// Encodes one rectangle of the image; the data is what a `Tile` message carries. A rectangle
/// that is empty or not wholly inside the image (see [`fits`]; the rectangles of
/// [`crate::tiles::DirtyCells::take`] always are) is refused as a `Fill` of opaque black.
pub fn encode_tile(
    image: &[u8],
    stride: usize,
    rect: Rect,
    choice: &EncodeSettings,
    scratch: &mut EncodeScratch,
) -> (TileEncoding, Vec<u8>) {
    if !copy_opaque(image, stride, rect, &mut scratch.rgba) {
        tracing::debug!(
            ?rect,
            stride,
            len = image.len(),
            "tile outside the image, sending black"
        );
        return (TileEncoding::Fill, BLACK.to_vec());
    }
    let pixels = &scratch.rgba;
    let Some(&first) = pixels.first_chunk::<4>() else {
        return (TileEncoding::Fill, BLACK.to_vec());
    };
    if pixels.chunks_exact(4).all(|p| p == first) {
        return (TileEncoding::Fill, first.to_vec());
    }
    if !choice.lossless
        && rect.area() > JPEG_MIN_AREA
        && is_photo_like(pixels, rect.w)
        && let Some(jpeg) = jpeg(pixels, rect, choice.jpeg_quality)
    {
        return (TileEncoding::Jpeg, jpeg);
    }
    scratch.rgb.clear();
    scratch
        .rgb
        .extend(pixels.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
    match png(
        &scratch.rgb,
        rect.w,
        rect.h,
        png::ColorType::Rgb,
        choice.png_filter,
    ) {
        Some(png) => (TileEncoding::Png, png),
        None => {
            tracing::warn!(
                w = rect.w,
                h = rect.h,
                "png encoding failed, sending a fill"
            );
            (TileEncoding::Fill, first.to_vec())
        }
    }
}

/// A cursor image (RGBA, not premultiplied, as IronRDP decodes pointers for accelerated
/// rendering) as a PNG with its transparency; `None` when the size does not match the data
/// or is zero.
pub fn encode_cursor_png(width: u16, height: u16, rgba: &[u8]) -> Option<Vec<u8>> {
    let expected = usize::from(width) * usize::from(height) * 4;
    if expected == 0 || rgba.len() != expected {
        return None;
    }
    png(
        rgba,
        width,
        height,
        png::ColorType::Rgba,
        PngFilter::Adaptive,
    )
}

/// Whether every pixel of `rect` is in an image of `image_len` bytes with rows `stride`
/// bytes apart (the image is `stride / 4` pixels wide). An empty rectangle is not.
pub fn fits(rect: Rect, image_len: usize, stride: usize) -> bool {
    if rect.w == 0 || rect.h == 0 {
        return false;
    }
    let right = (usize::from(rect.x) + usize::from(rect.w)) * 4;
    let last_row = usize::from(rect.y) + usize::from(rect.h) - 1;
    let end = last_row
        .checked_mul(stride)
        .and_then(|start| start.checked_add(right));
    right <= stride && end.is_some_and(|end| end <= image_len)
}

/// Copies the rectangle out of the image as RGBA rows with alpha 255; `false` (and nothing
/// copied) when the rectangle is empty or not wholly inside the image.
fn copy_opaque(image: &[u8], stride: usize, rect: Rect, out: &mut Vec<u8>) -> bool {
    out.clear();
    if !fits(rect, image.len(), stride) {
        return false;
    }
    let left = usize::from(rect.x) * 4;
    let row_bytes = usize::from(rect.w) * 4;
    out.reserve(row_bytes * usize::from(rect.h));
    for y in usize::from(rect.y)..usize::from(rect.y) + usize::from(rect.h) {
        let start = y * stride + left;
        // In bounds: `fits` checked the last row's end, and every row ends before it.
        if let Some(row) = image.get(start..start + row_bytes) {
            out.extend(row.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2], 255]));
        }
    }
    true
}

/// Whether few pixels equal their left neighbour (Guacamole's "PNG optimality" estimate).
fn is_photo_like(pixels: &[u8], width: u16) -> bool {
    let row_bytes = usize::from(width) * 4;
    if row_bytes == 0 {
        return false;
    }
    let (mut equal, mut total) = (0u64, 0u64);
    for row in pixels.chunks_exact(row_bytes) {
        for pair in row.windows(8).step_by(4) {
            total += 1;
            equal += u64::from(pair[..4] == pair[4..]);
        }
    }
    total > 0 && equal * 100 < total * PHOTO_MAX_EQUAL_PERCENT
}

fn jpeg(rgba: &[u8], rect: Rect, quality: u8) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    match encoder.encode(rgba, rect.w, rect.h, jpeg_encoder::ColorType::Rgba) {
        Ok(()) => Some(out),
        Err(error) => {
            tracing::debug!(%error, "jpeg encoding failed, sending png");
            None
        }
    }
}

fn png(
    data: &[u8],
    width: u16,
    height: u16,
    color: png::ColorType,
    filter: PngFilter,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, u32::from(width), u32::from(height));
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(match filter {
        PngFilter::Sub => png::Filter::Sub,
        PngFilter::Up => png::Filter::Up,
        PngFilter::Adaptive => png::Filter::Adaptive,
    });
    let result = encoder.write_header().and_then(|mut writer| {
        writer.write_image_data(data)?;
        writer.finish()
    });
    match result {
        Ok(()) => Some(out),
        Err(error) => {
            tracing::debug!(%error, "png encoding failed");
            None
        }
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
