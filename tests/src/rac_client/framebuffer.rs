//! The test browser's picture: an RGBA framebuffer the size of the remote desktop, into which
//! decoded tiles are drawn (fills and PNG; JPEG is refused, since the tests that look at
//! pixels force lossless tiles).

use anyhow::{Context, bail, ensure};
use redoubt_outpost_proto::rac::TileEncoding;

/// An RGBA picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u16,
    height: u16,
    rgba: Vec<u8>,
}

/// A decoded tile, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedTile {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
    /// `width * height` RGBA pixels, rows top to bottom.
    pub rgba: Vec<u8>,
}

impl Framebuffer {
    /// A `width` × `height` picture of transparent black (a freshly sized canvas).
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            rgba: vec![0; usize::from(width) * usize::from(height) * 4],
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The RGBA pixel at (`x`, `y`), `None` outside the picture.
    pub fn pixel(&self, x: u16, y: u16) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        let p = self.rgba.get(at..at + 4)?;
        Some([p[0], p[1], p[2], p[3]])
    }

    /// The RGB pixel at (`x`, `y`) (alpha dropped).
    pub fn rgb(&self, x: u16, y: u16) -> Option<[u8; 3]> {
        self.pixel(x, y).map(|[r, g, b, _]| [r, g, b])
    }

    /// How many pixels in the picture are exactly `rgb`.
    pub fn count_rgb(&self, rgb: [u8; 3]) -> usize {
        self.rgba
            .chunks_exact(4)
            .filter(|p| p[..3] == rgb[..])
            .count()
    }

    /// Draws `tile`; fails when it does not fit inside the picture.
    pub fn draw(&mut self, tile: &DecodedTile) -> anyhow::Result<()> {
        ensure!(
            u32::from(tile.x) + u32::from(tile.width) <= u32::from(self.width)
                && u32::from(tile.y) + u32::from(tile.height) <= u32::from(self.height),
            "tile {}x{} at ({}, {}) is outside the {}x{} desktop",
            tile.width,
            tile.height,
            tile.x,
            tile.y,
            self.width,
            self.height
        );
        let row_bytes = usize::from(tile.width) * 4;
        ensure!(
            tile.rgba.len() == row_bytes * usize::from(tile.height),
            "tile data has the wrong size"
        );
        for (row, source) in tile.rgba.chunks_exact(row_bytes.max(1)).enumerate() {
            let y = usize::from(tile.y) + row;
            let start = (y * usize::from(self.width) + usize::from(tile.x)) * 4;
            self.rgba[start..start + row_bytes].copy_from_slice(source);
        }
        Ok(())
    }
}

/// Decodes a `Tile` message's pixels.
pub fn decode_tile(
    x: u16,
    y: u16,
    width: u16,
    height: u16,
    encoding: TileEncoding,
    data: &[u8],
) -> anyhow::Result<DecodedTile> {
    let pixels = usize::from(width) * usize::from(height);
    let rgba = match encoding {
        TileEncoding::Fill => {
            let colour: [u8; 4] = data
                .try_into()
                .map_err(|_| anyhow::anyhow!("a fill tile carries {} bytes, not 4", data.len()))?;
            colour.repeat(pixels)
        }
        TileEncoding::Png => decode_png(data, width, height)?,
        TileEncoding::Jpeg => {
            bail!(
                "a JPEG tile arrived: the test client decodes lossless tiles only (set the endpoint's `lossless`)"
            )
        }
    };
    Ok(DecodedTile {
        x,
        y,
        width,
        height,
        rgba,
    })
}

/// A PNG of exactly `width` × `height` as RGBA.
fn decode_png(data: &[u8], width: u16, height: u16) -> anyhow::Result<Vec<u8>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().context("PNG header")?;
    let size = reader.output_buffer_size().context("PNG too large")?;
    let mut buffer = vec![0; size];
    let info = reader.next_frame(&mut buffer).context("PNG data")?;
    ensure!(
        (info.width, info.height) == (u32::from(width), u32::from(height)),
        "a {}x{} tile carries a {}x{} PNG",
        width,
        height,
        info.width,
        info.height
    );
    let pixels = usize::from(width) * usize::from(height);
    let mut rgba = Vec::with_capacity(pixels * 4);
    for row in buffer
        .chunks_exact(info.line_size.max(1))
        .take(usize::from(height))
    {
        let row = row.get(..info.line_size).unwrap_or(row);
        match info.color_type {
            png::ColorType::Rgba => rgba.extend_from_slice(row),
            png::ColorType::Rgb => {
                for p in row.chunks_exact(3) {
                    rgba.extend_from_slice(&[p[0], p[1], p[2], 0xFF]);
                }
            }
            png::ColorType::Grayscale => {
                for &v in row {
                    rgba.extend_from_slice(&[v, v, v, 0xFF]);
                }
            }
            png::ColorType::GrayscaleAlpha => {
                for p in row.chunks_exact(2) {
                    rgba.extend_from_slice(&[p[0], p[0], p[0], p[1]]);
                }
            }
            png::ColorType::Indexed => bail!("the PNG palette was not expanded"),
        }
    }
    ensure!(rgba.len() == pixels * 4, "the PNG has too few rows");
    Ok(rgba)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(width: u32, height: u32, colour: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(colour);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(data).expect("data");
        writer.finish().expect("finish");
        out
    }

    #[test]
    fn draws_fill_and_png_tiles_where_they_belong() {
        let mut fb = Framebuffer::new(4, 3);
        let fill = decode_tile(0, 0, 4, 3, TileEncoding::Fill, &[1, 2, 3, 255]).expect("fill");
        fb.draw(&fill).expect("draw");
        let rgb = png_of(2, 1, png::ColorType::Rgb, &[10, 20, 30, 40, 50, 60]);
        let tile = decode_tile(1, 2, 2, 1, TileEncoding::Png, &rgb).expect("png");
        fb.draw(&tile).expect("draw");
        assert_eq!(fb.pixel(0, 2), Some([1, 2, 3, 255]));
        assert_eq!(fb.pixel(1, 2), Some([10, 20, 30, 255]));
        assert_eq!(fb.rgb(2, 2), Some([40, 50, 60]));
        assert_eq!(fb.pixel(3, 2), Some([1, 2, 3, 255]));
        assert_eq!(fb.pixel(4, 0), None);
        assert_eq!(fb.count_rgb([1, 2, 3]), 10);
        let rgba = png_of(1, 1, png::ColorType::Rgba, &[7, 8, 9, 128]);
        let tile = decode_tile(3, 0, 1, 1, TileEncoding::Png, &rgba).expect("png");
        fb.draw(&tile).expect("draw");
        assert_eq!(fb.pixel(3, 0), Some([7, 8, 9, 128]));
    }

    #[test]
    fn refuses_what_a_browser_could_not_draw() {
        let mut fb = Framebuffer::new(4, 3);
        let outside = decode_tile(3, 0, 2, 1, TileEncoding::Fill, &[0, 0, 0, 255]).expect("fill");
        assert!(fb.draw(&outside).is_err());
        assert!(decode_tile(0, 0, 1, 1, TileEncoding::Fill, &[1, 2, 3]).is_err());
        assert!(decode_tile(0, 0, 1, 1, TileEncoding::Jpeg, &[0xFF, 0xD8]).is_err());
        assert!(decode_tile(0, 0, 1, 1, TileEncoding::Png, b"not a png").is_err());
        let two = png_of(2, 1, png::ColorType::Rgb, &[0; 6]);
        assert!(decode_tile(0, 0, 1, 1, TileEncoding::Png, &two).is_err());
    }
}
