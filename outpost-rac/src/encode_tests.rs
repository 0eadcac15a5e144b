//! Tests of tile encoding: decode the output back and compare pixels.

use super::*;

/// A `width` × `height` RGBA image from a pixel function; alpha is 0 on purpose (the encoder
/// must send opaque pixels whatever the image holds).
fn image(width: usize, height: usize, pixel: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height * 4);
    for y in 0..height {
        for x in 0..width {
            let [r, g, b] = pixel(x, y);
            out.extend_from_slice(&[r, g, b, 0]);
        }
    }
    out
}

fn rect(x: u16, y: u16, w: u16, h: u16) -> Rect {
    Rect { x, y, w, h }
}

/// A "UI" image: flat areas and a few lines of text-like strokes.
fn ui(x: usize, y: usize) -> [u8; 3] {
    if y % 16 == 3 && x % 7 < 4 {
        [0, 0, 0]
    } else if x < 20 {
        [30, 60, 200]
    } else {
        [240, 240, 240]
    }
}

/// A "photo": no two neighbours equal.
fn photo(x: usize, y: usize) -> [u8; 3] {
    let v = (x * 7 + y * 13) % 256;
    [
        u8::try_from(v).unwrap_or(0),
        u8::try_from((x * 3) % 256).unwrap_or(0),
        u8::try_from((y * 5 + x) % 256).unwrap_or(0),
    ]
}

fn decode_png(data: &[u8]) -> (png::OutputInfo, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(data));
    let mut reader = decoder.read_info().expect("png header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("png data");
    pixels.truncate(info.buffer_size());
    (info, pixels)
}

/// The expected RGB bytes of a rectangle of a `width`-wide image.
fn rgb_of(image: &[u8], width: usize, r: Rect) -> Vec<u8> {
    let mut out = Vec::new();
    for y in usize::from(r.y)..usize::from(r.y + r.h) {
        for x in usize::from(r.x)..usize::from(r.x + r.w) {
            let at = (y * width + x) * 4;
            out.extend_from_slice(&image[at..at + 3]);
        }
    }
    out
}

#[test]
fn one_colour_is_a_fill() {
    let pixels = image(100, 100, |_, _| [1, 2, 3]);
    let mut scratch = EncodeScratch::default();
    let out = encode_tile(
        &pixels,
        400,
        rect(10, 10, 64, 64),
        &EncodeSettings::default(),
        &mut scratch,
    );
    assert_eq!(out, (TileEncoding::Fill, vec![1, 2, 3, 255]));
}

#[test]
fn ui_content_is_a_lossless_rgb_png() {
    let pixels = image(200, 100, ui);
    let mut scratch = EncodeScratch::default();
    for filter in [PngFilter::Sub, PngFilter::Up, PngFilter::Adaptive] {
        let settings = EncodeSettings {
            png_filter: filter,
            ..EncodeSettings::default()
        };
        let r = rect(5, 7, 150, 90);
        let (encoding, data) = encode_tile(&pixels, 800, r, &settings, &mut scratch);
        assert_eq!(encoding, TileEncoding::Png, "{filter:?}");
        let (info, decoded) = decode_png(&data);
        assert_eq!((info.width, info.height), (150, 90));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(decoded, rgb_of(&pixels, 200, r), "{filter:?}");
    }
}

#[test]
fn photo_content_is_a_jpeg_close_to_the_original() {
    let pixels = image(128, 128, photo);
    let mut scratch = EncodeScratch::default();
    let settings = EncodeSettings {
        jpeg_quality: 95,
        ..EncodeSettings::default()
    };
    let r = rect(0, 0, 128, 128);
    let (encoding, data) = encode_tile(&pixels, 512, r, &settings, &mut scratch);
    assert_eq!(encoding, TileEncoding::Jpeg);
    let mut decoder = zune_jpeg::JpegDecoder::new(std::io::Cursor::new(&data));
    let decoded = decoder.decode().expect("jpeg decodes");
    assert_eq!(decoder.dimensions(), Some((128, 128)));
    let original = rgb_of(&pixels, 128, r);
    assert_eq!(decoded.len(), original.len());
    let error: u64 = decoded
        .iter()
        .zip(&original)
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = error / u64::try_from(original.len()).unwrap_or(1);
    assert!(mean < 16, "mean error {mean}");
}

#[test]
fn lossless_and_small_photos_stay_png() {
    let pixels = image(128, 128, photo);
    let mut scratch = EncodeScratch::default();
    let lossless = EncodeSettings {
        lossless: true,
        ..EncodeSettings::default()
    };
    let r = rect(0, 0, 128, 128);
    let (encoding, data) = encode_tile(&pixels, 512, r, &lossless, &mut scratch);
    assert_eq!(encoding, TileEncoding::Png);
    assert_eq!(decode_png(&data).1, rgb_of(&pixels, 128, r));
    let small = rect(0, 0, 64, 64); // exactly 4096 px: not larger than the minimum
    let (encoding, _) = encode_tile(
        &pixels,
        512,
        small,
        &EncodeSettings::default(),
        &mut scratch,
    );
    assert_eq!(encoding, TileEncoding::Png);
}

#[test]
fn rectangles_outside_the_image_are_refused() {
    let pixels = image(10, 10, |x, _| [200, 100, u8::try_from(x).unwrap_or(0)]);
    let mut scratch = EncodeScratch::default();
    let settings = EncodeSettings {
        lossless: true,
        ..EncodeSettings::default()
    };
    let black = (TileEncoding::Fill, vec![0, 0, 0, 255]);
    for r in [
        rect(8, 8, 4, 2),
        rect(8, 8, 2, 3),
        rect(500, 500, 2, 2),
        rect(0, 0, 0, 5),
        rect(0, 0, u16::MAX, u16::MAX),
    ] {
        assert!(!fits(r, pixels.len(), 40), "{r:?}");
        assert_eq!(
            encode_tile(&pixels, 40, r, &settings, &mut scratch),
            black,
            "{r:?}"
        );
    }
    // The bottom-right corner is inside; a stride with padding narrows nothing else.
    let corner = rect(8, 8, 2, 2);
    assert!(fits(corner, pixels.len(), 40));
    let (encoding, data) = encode_tile(&pixels, 40, corner, &settings, &mut scratch);
    assert_eq!(encoding, TileEncoding::Png);
    assert_eq!(decode_png(&data).1, rgb_of(&pixels, 10, corner));
    // Only the last row may be short of a full stride.
    assert!(fits(rect(0, 9, 10, 1), 9 * 48 + 40, 48));
    assert!(!fits(rect(0, 9, 10, 1), 9 * 48 + 39, 48));
    assert!(!fits(rect(0, 0, 13, 1), 1000, 48));
    assert!(!fits(rect(0, 0, 1, 1), 1000, 0));
}

#[test]
fn cursors_keep_their_transparency() {
    let rgba: Vec<u8> = (0..4u8).flat_map(|i| [i, 2 * i, 3 * i, 60 * i]).collect();
    let data = encode_cursor_png(2, 2, &rgba).expect("a 2x2 cursor encodes");
    let (info, decoded) = decode_png(&data);
    assert_eq!(info.color_type, png::ColorType::Rgba);
    assert_eq!(decoded, rgba);
    assert_eq!(encode_cursor_png(3, 2, &rgba), None);
    assert_eq!(encode_cursor_png(0, 0, &[]), None);
}
