//! Writes a phone-sized test photo (4032x3024 JPEG, quality 92, about 5 MB: a gradient with
//! grain, which compresses like a photo) to the path given, for measuring uploads:
//!
//!   cargo run --release -p media --example photo -- /tmp/photo.jpg
//!   curl -H "Authorization: Bearer $TOKEN" -F file=@/tmp/photo.jpg http://127.0.0.1:8080/media

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: photo OUT.jpg")?;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let image = image::RgbImage::from_fn(4032, 3024, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let grain = (seed % 32) as u32;
        let r = (x * 255 / 4032 + grain).min(255) as u8;
        let g = (y * 255 / 3024 + grain).min(255) as u8;
        let b = ((x + y) * 255 / 7056 + grain).min(255) as u8;
        image::Rgb([r, g, b])
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(&image)?;
    Ok(())
}
