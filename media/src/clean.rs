//! An upload made safe to serve, without I/O: its format read from its bytes (never its name),
//! its dimensions checked before anything is decoded, decoded within allocation limits, turned
//! upright, and encoded again so that no metadata (EXIF, GPS, comments) survives. And its sized
//! variants.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::MediaError;

/// What an upload may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_bytes: usize,
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Most pixels in all (a decompression bomb is small on disk and huge decoded).
    pub max_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_side: 16_384,
            // A 48-megapixel phone photo fits; decoded, it is under 200 MB.
            max_pixels: 50_000_000,
        }
    }
}

/// The formats accepted and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (animations kept).
    Gif,
    /// WebP.
    Webp,
}

impl Format {
    /// Its `Content-Type`.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// The format of `bytes`, read from their signature.
    ///
    /// # Errors
    /// [`MediaError::Svg`] for SVG, [`MediaError::UnsupportedFormat`] for another image format,
    /// [`MediaError::NotAnImage`] otherwise.
    pub fn sniff(bytes: &[u8]) -> Result<Self, MediaError> {
        match image::guess_format(bytes) {
            Ok(ImageFormat::Jpeg) => Ok(Self::Jpeg),
            Ok(ImageFormat::Png) => Ok(Self::Png),
            Ok(ImageFormat::Gif) => Ok(Self::Gif),
            Ok(ImageFormat::WebP) => Ok(Self::Webp),
            Ok(other) => Err(MediaError::UnsupportedFormat(
                other
                    .extensions_str()
                    .first()
                    .unwrap_or(&"this")
                    .to_uppercase(),
            )),
            Err(_) if looks_like_svg(bytes) => Err(MediaError::Svg),
            Err(_) => Err(MediaError::NotAnImage),
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Gif => ImageFormat::Gif,
            Self::Webp => ImageFormat::WebP,
        }
    }
}

/// Whether `bytes` start like an SVG document: markup (after a BOM and blanks) with an `<svg`
/// element in its first kilobyte.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.starts_with('<') && text.contains("<svg")
}

/// An image fit to store and serve.
#[derive(Debug, Clone)]
pub struct Cleaned {
    /// Its bytes: encoded anew, without metadata (a GIF, which has no EXIF, as it came).
    pub bytes: Vec<u8>,
    /// Its format (the one it came in).
    pub format: Format,
    /// Width in pixels, upright.
    pub width: u32,
    /// Height in pixels, upright.
    pub height: u32,
}

/// JPEG quality of stored images and their variants.
const JPEG_QUALITY: u8 = 85;

fn decode_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    // Room for the pixels at 8 bytes each (16-bit RGBA), and no more.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    l
}

/// Checks an upload and makes it safe to serve: CPU work, to run off the async runtime.
///
/// # Errors
/// [`MediaError`] saying what is wrong with it; nothing is kept.
pub fn clean(bytes: &[u8], limits: &Limits) -> Result<Cleaned, MediaError> {
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::TooLarge {
            max: limits.max_bytes,
        });
    }
    let format = Format::sniff(bytes)?;
    let reader = || ImageReader::with_format(Cursor::new(bytes), format.image_format());
    // The header alone first: a bomb is refused before a pixel is decoded.
    let (width, height) = reader().into_dimensions().map_err(corrupt)?;
    check_dimensions(width, height, limits)?;
    let mut reader = reader();
    reader.limits(decode_limits(limits));
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if format == Format::Gif {
        // Decoded (its first frame) to prove it is one; kept as it came, animation and all.
        return Ok(Cleaned {
            bytes: bytes.to_vec(),
            format,
            width,
            height,
        });
    }
    image.apply_orientation(orientation);
    Ok(Cleaned {
        bytes: encode(&image, format)?,
        format,
        width: image.width(),
        height: image.height(),
    })
}

fn check_dimensions(width: u32, height: u32, limits: &Limits) -> Result<(), MediaError> {
    if width == 0 || height == 0 {
        return Err(MediaError::Corrupt("the image has no pixels".into()));
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn corrupt(e: image::ImageError) -> MediaError {
    match e {
        image::ImageError::Limits(_) => MediaError::Corrupt(
            "the image would need more memory to decode than its size allows".into(),
        ),
        e => MediaError::Corrupt(e.to_string()),
    }
}

fn encode(image: &DynamicImage, format: Format) -> Result<Vec<u8>, MediaError> {
    let mut out = Cursor::new(Vec::new());
    let written = match format {
        Format::Jpeg => {
            let encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
            if let DynamicImage::ImageLuma8(_) = image {
                image.write_with_encoder(encoder)
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8()).write_with_encoder(encoder)
            }
        }
        Format::Png => image.write_with_encoder(PngEncoder::new(&mut out)),
        Format::Webp => DynamicImage::ImageRgba8(image.to_rgba8())
            .write_with_encoder(WebPEncoder::new_lossless(&mut out)),
        Format::Gif => image.write_to(&mut out, ImageFormat::Gif),
    };
    written.map_err(|e| MediaError::Corrupt(e.to_string()))?;
    Ok(out.into_inner())
}

/// `stored` (an image [`clean`] made) at `width` pixels wide, or `None` when it is not wider
/// than that (it is then served as it is). A GIF is always served as it is, to keep its
/// animation.
///
/// # Errors
/// [`MediaError::Corrupt`] if the stored image no longer decodes.
pub fn resize(stored: &[u8], width: u32, limits: &Limits) -> Result<Option<Vec<u8>>, MediaError> {
    let format = Format::sniff(stored)?;
    if format == Format::Gif {
        return Ok(None);
    }
    let reader = || ImageReader::with_format(Cursor::new(stored), format.image_format());
    // From the header: an image not wider than asked for is never decoded.
    let (stored_width, _) = reader().into_dimensions().map_err(corrupt)?;
    if stored_width <= width {
        return Ok(None);
    }
    let mut reader = reader();
    reader.limits(decode_limits(limits));
    let image = reader.decode().map_err(corrupt)?;
    // `thumbnail` averages areas: fast, and sharp enough for a downscale.
    let scaled = image.thumbnail(width, u32::MAX);
    encode(&scaled, format).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }))
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        encode(&photo(width, height), Format::Jpeg).unwrap()
    }

    /// `jpeg` with an APP1 Exif segment (orientation 6: turn 90° clockwise) and a GPS marker
    /// string right after the SOI marker, as a phone writes it.
    fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
        let plain = jpeg(width, height);
        let mut tiff = Vec::new();
        // Little-endian TIFF header, IFD0 at offset 8 with one entry: Orientation = 6.
        tiff.extend_from_slice(b"II*\0\x08\0\0\0");
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&6u16.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(b"GPSLatitude 52.3676N 4.9041E");
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn exif_is_stripped_and_the_photo_turned_upright() {
        let upload = jpeg_with_exif(40, 20);
        assert!(contains(&upload, b"GPSLatitude"));
        let cleaned = clean(&upload, &Limits::default()).unwrap();
        assert_eq!(cleaned.format, Format::Jpeg);
        assert!(!contains(&cleaned.bytes, b"GPSLatitude"));
        assert!(!contains(&cleaned.bytes, b"Exif"));
        // Orientation 6: stored 40×20, shown 20×40; the stored pixels are turned instead.
        assert_eq!((cleaned.width, cleaned.height), (20, 40));
        let back = image::load_from_memory(&cleaned.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (20, 40));
    }

    #[test]
    fn the_format_is_read_from_the_bytes() {
        for format in [Format::Jpeg, Format::Png, Format::Webp, Format::Gif] {
            let bytes = encode(&photo(8, 6), format).unwrap();
            let cleaned = clean(&bytes, &Limits::default()).unwrap();
            assert_eq!(cleaned.format, format);
            assert_eq!((cleaned.width, cleaned.height), (8, 6));
        }
        assert!(matches!(
            clean(b"just some text, named cat.jpg", &Limits::default()),
            Err(MediaError::NotAnImage)
        ));
        for svg in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            b"\xEF\xBB\xBF  <?xml version=\"1.0\"?>\n<svg></svg>",
        ] {
            assert!(matches!(
                clean(svg, &Limits::default()),
                Err(MediaError::Svg)
            ));
        }
        // A BMP or a TIFF is an image, but not one we serve.
        for other in [&b"BM\x3a\0\0\0\0\0\0\0"[..], b"II*\0\x08\0\0\0"] {
            assert!(matches!(
                clean(other, &Limits::default()),
                Err(MediaError::UnsupportedFormat(_))
            ));
        }
        // A JPEG signature with nothing behind it.
        assert!(matches!(
            clean(&jpeg(8, 8)[..40], &Limits::default()),
            Err(MediaError::Corrupt(_))
        ));
    }

    #[test]
    fn limits_refuse_large_files_and_bombs_before_decoding() {
        let small = Limits {
            max_bytes: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            clean(&jpeg(200, 200), &small),
            Err(MediaError::TooLarge { max: 1000 })
        ));
        // A PNG that says it is 100,000 × 100,000 pixels: refused from its header.
        let mut png = encode(&photo(1, 1), Format::Png).unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            clean(&png, &Limits::default()),
            Err(MediaError::TooManyPixels { width: 100_000, .. })
        ));
        let tight = Limits {
            max_pixels: 100,
            ..Limits::default()
        };
        assert!(matches!(
            clean(&jpeg(20, 20), &tight),
            Err(MediaError::TooManyPixels { .. })
        ));
    }

    #[test]
    fn variants_are_narrower_never_wider() {
        let stored = clean(&jpeg(1000, 500), &Limits::default()).unwrap().bytes;
        let small = resize(&stored, 320, &Limits::default()).unwrap().unwrap();
        let small = image::load_from_memory(&small).unwrap();
        assert_eq!((small.width(), small.height()), (320, 160));
        assert!(resize(&stored, 1280, &Limits::default()).unwrap().is_none());
    }
}
