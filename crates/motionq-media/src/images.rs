//! Still images: a smooth two-axis colour gradient with a dark "figure" rectangle in the
//! middle, so the pictures are recognisable and compress well.

/// RGB8 pixels of the test picture.
fn picture(width: u32, height: u32) -> Vec<u8> {
    assert!(width > 0 && height > 0, "image dimensions must be non-zero");
    let (w, h) = (width as usize, height as usize);
    // Red and blue depend only on the column: build that row once, then vary green per row.
    let mut template = Vec::with_capacity(w * 3);
    for x in 0..w {
        template.extend_from_slice(&[(x * 255 / w) as u8, 0, 160]);
    }
    let figure_cols = (w.div_ceil(3) * 3)..(w * 2).div_ceil(3) * 3;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let start = rgb.len();
        rgb.extend_from_slice(&template);
        let row = &mut rgb[start..];
        let green = (y * 255 / h) as u8;
        for px in row.chunks_exact_mut(3) {
            px[1] = green;
        }
        if y * 10 >= h * 2 && y * 10 < h * 9 {
            for px in row[figure_cols.clone()].chunks_exact_mut(3) {
                px.copy_from_slice(&[40, 40, 48]);
            }
        }
    }
    rgb
}

/// A PNG (8-bit RGB) of `width` x `height`.
///
/// # Panics
/// If a dimension is zero.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode_png(width, height, png::Compression::Fast)
}

/// A PNG stored without compression: its size is about `3 * width * height` bytes, which makes
/// "file too large" samples cheap to produce.
///
/// # Panics
/// If a dimension is zero.
pub fn png_uncompressed(width: u32, height: u32) -> Vec<u8> {
    encode_png(width, height, png::Compression::NoCompression)
}

fn encode_png(width: u32, height: u32, compression: png::Compression) -> Vec<u8> {
    let rgb = picture(width, height);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(compression);
    // Writing into a Vec cannot fail; an error here is a bug in the dimensions we passed.
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(&rgb).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}

/// A baseline JPEG (quality 85) of `width` x `height`.
///
/// # Panics
/// If a dimension is zero or above 65535 (the JPEG limit).
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let w = u16::try_from(width).expect("JPEG width must be at most 65535");
    let h = u16::try_from(height).expect("JPEG height must be at most 65535");
    let rgb = picture(width, height);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("JPEG encoding into memory");
    out
}

/// A lossless WebP (VP8L) of `width` x `height`.
///
/// # Panics
/// If a dimension is zero or above 16384 (the WebP limit).
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    assert!(
        width <= 16_384 && height <= 16_384,
        "WebP dimensions must be at most 16384"
    );
    let rgb = picture(width, height);
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&rgb, width, height, image_webp::ColorType::Rgb8)
        .expect("WebP encoding into memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_write_their_signatures() {
        assert_eq!(&png(4, 3)[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&jpeg(4, 3)[..3], &[0xff, 0xd8, 0xff]);
        let webp = webp(4, 3);
        assert_eq!((&webp[..4], &webp[8..12]), (&b"RIFF"[..], &b"WEBP"[..]));
    }

    #[test]
    fn uncompressed_png_size_tracks_pixel_count() {
        let bytes = png_uncompressed(100, 100).len();
        assert!(bytes > 30_000 && bytes < 31_000, "{bytes}");
    }
}
