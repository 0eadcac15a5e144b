//! The test desktop: a known pattern (four coloured quadrants above a checkerboard strip of
//! single pixels) that tests can recompute for any pixel with [`pattern_rgb`], plus the fills
//! a test painted over it later. Kept as BGRX bytes, the layout the RDP encoders send.

/// Height of the checkerboard strip along the bottom edge, in pixels.
pub const STRIP_HEIGHT: u16 = 16;

/// The top-left quadrant's colour.
pub const TOP_LEFT: [u8; 3] = [0xE0, 0x30, 0x30];
/// The top-right quadrant's colour.
pub const TOP_RIGHT: [u8; 3] = [0x30, 0xC0, 0x40];
/// The bottom-left quadrant's colour.
pub const BOTTOM_LEFT: [u8; 3] = [0x30, 0x50, 0xD0];
/// The bottom-right quadrant's colour.
pub const BOTTOM_RIGHT: [u8; 3] = [0xF0, 0xD0, 0x20];
/// The checkerboard's light pixels (where `x + y` is even).
pub const CHECK_LIGHT: [u8; 3] = [0xFF, 0xFF, 0xFF];
/// The checkerboard's dark pixels.
pub const CHECK_DARK: [u8; 3] = [0x00, 0x00, 0x00];

/// The pattern's colour (R, G, B) at (`x`, `y`) on a `width` × `height` desktop. The quadrants
/// split the area above the strip in half both ways; the strip is the bottom
/// [`STRIP_HEIGHT`] rows (all rows when the desktop is smaller). Every channel differs between
/// the colours, so a swapped channel or a lossy codec shows.
pub fn pattern_rgb(width: u16, height: u16, x: u16, y: u16) -> [u8; 3] {
    let strip_top = height.saturating_sub(STRIP_HEIGHT);
    if y >= strip_top {
        return if (u32::from(x) + u32::from(y)) % 2 == 0 {
            CHECK_LIGHT
        } else {
            CHECK_DARK
        };
    }
    let left = x < width / 2;
    let top = y < strip_top / 2;
    match (top, left) {
        (true, true) => TOP_LEFT,
        (true, false) => TOP_RIGHT,
        (false, true) => BOTTOM_LEFT,
        (false, false) => BOTTOM_RIGHT,
    }
}

/// A rectangle of desktop pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

impl Rect {
    /// The part of `self` inside a `width` × `height` desktop (`None` when nothing is).
    pub fn clip(self, width: u16, height: u16) -> Option<Rect> {
        let right = self.x.saturating_add(self.width).min(width);
        let bottom = self.y.saturating_add(self.height).min(height);
        (right > self.x && bottom > self.y).then_some(Rect {
            x: self.x,
            y: self.y,
            width: right - self.x,
            height: bottom - self.y,
        })
    }

    /// Whether (`x`, `y`) is inside.
    pub fn contains(self, x: u16, y: u16) -> bool {
        x >= self.x
            && y >= self.y
            && u32::from(x) < u32::from(self.x) + u32::from(self.width)
            && u32::from(y) < u32::from(self.y) + u32::from(self.height)
    }
}

/// The current picture of the test desktop.
#[derive(Debug, Clone)]
pub struct Desktop {
    width: u16,
    height: u16,
    /// B, G, R, X per pixel, rows top to bottom.
    bgrx: Vec<u8>,
}

impl Desktop {
    /// A `width` × `height` desktop showing the pattern.
    pub fn new(width: u16, height: u16) -> Self {
        let mut bgrx = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
        for y in 0..height {
            for x in 0..width {
                let [r, g, b] = pattern_rgb(width, height, x, y);
                bgrx.extend_from_slice(&[b, g, r, 0xFF]);
            }
        }
        Self {
            width,
            height,
            bgrx,
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The colour (R, G, B) at (`x`, `y`), `None` outside the desktop.
    pub fn rgb(&self, x: u16, y: u16) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        let pixel = self.bgrx.get(at..at + 4)?;
        Some([pixel[2], pixel[1], pixel[0]])
    }

    /// Paints `rect` (clipped to the desktop) with `rgb`; returns the painted part.
    pub fn fill(&mut self, rect: Rect, rgb: [u8; 3]) -> Option<Rect> {
        let rect = rect.clip(self.width, self.height)?;
        let [r, g, b] = rgb;
        for y in rect.y..rect.y + rect.height {
            let row = usize::from(y) * usize::from(self.width);
            let start = (row + usize::from(rect.x)) * 4;
            let end = start + usize::from(rect.width) * 4;
            for pixel in self.bgrx[start..end].chunks_exact_mut(4) {
                pixel.copy_from_slice(&[b, g, r, 0xFF]);
            }
        }
        Some(rect)
    }

    /// The BGRX bytes of `rect` (clipped), rows top to bottom, `rect.width * 4` bytes a row.
    pub fn bgrx_of(&self, rect: Rect) -> Option<(Rect, Vec<u8>)> {
        let rect = rect.clip(self.width, self.height)?;
        let mut out = Vec::with_capacity(usize::from(rect.width) * usize::from(rect.height) * 4);
        for y in rect.y..rect.y + rect.height {
            let start = (usize::from(y) * usize::from(self.width) + usize::from(rect.x)) * 4;
            out.extend_from_slice(&self.bgrx[start..start + usize::from(rect.width) * 4]);
        }
        Some((rect, out))
    }

    /// The whole desktop as a rectangle.
    pub fn area(&self) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_has_four_quadrants_and_a_checkerboard_strip() {
        let (w, h) = (200, 116);
        assert_eq!(pattern_rgb(w, h, 0, 0), TOP_LEFT);
        assert_eq!(pattern_rgb(w, h, 99, 49), TOP_LEFT);
        assert_eq!(pattern_rgb(w, h, 100, 0), TOP_RIGHT);
        assert_eq!(pattern_rgb(w, h, 0, 50), BOTTOM_LEFT);
        assert_eq!(pattern_rgb(w, h, 199, 99), BOTTOM_RIGHT);
        assert_eq!(pattern_rgb(w, h, 0, 100), CHECK_LIGHT);
        assert_eq!(pattern_rgb(w, h, 1, 100), CHECK_DARK);
        assert_eq!(pattern_rgb(w, h, 1, 101), CHECK_LIGHT);
        assert_eq!(pattern_rgb(4, 3, 1, 1), CHECK_LIGHT);
    }

    #[test]
    fn desktop_starts_as_the_pattern_and_takes_clipped_fills() {
        let mut desktop = Desktop::new(64, 48);
        for (x, y) in [(0, 0), (40, 5), (3, 20), (63, 31), (10, 40), (11, 40)] {
            assert_eq!(desktop.rgb(x, y), Some(pattern_rgb(64, 48, x, y)));
        }
        assert_eq!(desktop.rgb(64, 0), None);
        let painted = desktop.fill(
            Rect {
                x: 60,
                y: 46,
                width: 10,
                height: 10,
            },
            [1, 2, 3],
        );
        assert_eq!(
            painted,
            Some(Rect {
                x: 60,
                y: 46,
                width: 4,
                height: 2
            })
        );
        assert_eq!(desktop.rgb(63, 47), Some([1, 2, 3]));
        assert_eq!(desktop.rgb(59, 47), Some(pattern_rgb(64, 48, 59, 47)));
        let (rect, bytes) = desktop
            .bgrx_of(Rect {
                x: 62,
                y: 47,
                width: 9,
                height: 9,
            })
            .expect("inside");
        assert_eq!((rect.width, rect.height), (2, 1));
        assert_eq!(bytes, vec![3, 2, 1, 0xFF, 3, 2, 1, 0xFF]);
        let outside = Rect {
            x: 64,
            y: 0,
            width: 5,
            height: 5,
        };
        assert_eq!(desktop.fill(outside, [0, 0, 0]), None);
    }
}
