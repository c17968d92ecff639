//! Uploaded images: [`clean`] checks an upload by its content and makes it safe to serve
//! (no metadata, upright, within size and pixel limits) and makes its sized variants;
//! [`MediaLibrary`] keeps originals and variants in an object store (a directory, or an
//! S3-compatible bucket such as MinIO) through the `object_store` crate, doing the image work
//! on blocking threads, a bounded number at a time.
//!
//! Keys: `{id}/original` and `{id}/w{width}`. An image is written once and never changed, so
//! whoever serves it may let clients cache it for good.

pub mod clean;

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::sync::Semaphore;
use uuid::Uuid;

pub use clean::{Format, Limits};
pub use render::IMAGE_WIDTHS;

/// Why an upload was refused, or an image could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Not an image at all (checked by content, not by name).
    #[error("not an image: send a JPEG, PNG, GIF or WebP file")]
    NotAnImage,
    /// An SVG: it can carry scripts, so it is not accepted.
    #[error("SVG images are not accepted (they can carry scripts): send a PNG instead")]
    Svg,
    /// An image in a format not served.
    #[error("{0} images are not accepted: send a JPEG, PNG, GIF or WebP file")]
    UnsupportedFormat(String),
    /// Over the size limit.
    #[error("the file is larger than the limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// Too many pixels, or too long a side (a decompression bomb, or just too big).
    #[error(
        "the image is {width}×{height} pixels: at most {max_side} on a side and {max_pixels} in all"
    )]
    TooManyPixels {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The longest side allowed.
        max_side: u32,
        /// The most pixels allowed.
        max_pixels: u64,
    },
    /// The bytes start like an image but do not decode.
    #[error("the image could not be read: {0}")]
    Corrupt(String),
    /// A width that is not one of [`IMAGE_WIDTHS`].
    #[error("w must be one of 320, 640, 960, 1280, 1920")]
    BadWidth,
    /// The store failed.
    #[error("media store: {0}")]
    Store(#[from] object_store::Error),
    /// The store's location could not be understood.
    #[error("media store location {0:?}: {1}")]
    Location(String, String),
    /// The image work did not finish (its thread panicked or the runtime is stopping).
    #[error("the image could not be processed")]
    Task,
}

impl MediaError {
    /// A stable machine-readable code.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAnImage => "NOT_AN_IMAGE",
            Self::Svg => "SVG_NOT_ACCEPTED",
            Self::UnsupportedFormat(_) => "UNSUPPORTED_IMAGE_TYPE",
            Self::TooLarge { .. } => "FILE_TOO_LARGE",
            Self::TooManyPixels { .. } => "IMAGE_TOO_LARGE",
            Self::Corrupt(_) => "INVALID_IMAGE",
            Self::BadWidth => "BAD_WIDTH",
            Self::Store(_) | Self::Location(..) | Self::Task => "MEDIA_STORE_UNAVAILABLE",
        }
    }

    /// Whether the fault is the upload's (rather than the server's).
    #[must_use]
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Location(..) | Self::Task)
    }
}

/// An upload, stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its id (UUIDv7), and so its URL `/media/{id}`.
    pub id: Uuid,
    /// Its format.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes stored (after cleaning).
    pub size: u64,
}

/// An image to serve.
#[derive(Debug, Clone)]
pub struct Served {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its format.
    pub format: Format,
}

/// The images of a site, in an object store.
#[derive(Clone)]
pub struct MediaLibrary {
    store: Arc<dyn ObjectStore>,
    location: String,
    limits: Limits,
    /// Image work at once: each can hold a decoded photo (up to a few hundred MB).
    cpu: Arc<Semaphore>,
}

impl std::fmt::Debug for MediaLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLibrary")
            .field("location", &self.location)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn original(id: Uuid) -> Path {
    Path::from(format!("{id}/original"))
}

fn variant(id: Uuid, width: u32) -> Path {
    Path::from(format!("{id}/w{width}"))
}

impl MediaLibrary {
    /// Opens the store at `location`: `s3://bucket[/prefix]` (an S3-compatible bucket,
    /// configured from the `AWS_*` environment: `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`), `memory://` (this process
    /// only), or a directory (`file:///path` or a plain path), created if missing.
    ///
    /// # Errors
    /// [`MediaError::Location`] when it cannot be opened.
    pub fn open(location: &str, limits: Limits) -> Result<Self, MediaError> {
        let bad = |e: &dyn std::fmt::Display| MediaError::Location(location.into(), e.to_string());
        let store: Arc<dyn ObjectStore> = if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(&"no bucket named"));
            }
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| bad(&e))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            }
        } else if location == "memory://" {
            Arc::new(object_store::memory::InMemory::new())
        } else {
            let dir = location.strip_prefix("file://").unwrap_or(location);
            if dir.is_empty() {
                return Err(bad(&"no directory named"));
            }
            std::fs::create_dir_all(dir).map_err(|e| bad(&e))?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e))?,
            )
        };
        let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Ok(Self {
            store,
            location: location.to_owned(),
            limits,
            cpu: Arc::new(Semaphore::new(threads)),
        })
    }

    /// Where it keeps images.
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    /// What an upload may be.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn on_cpu<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, MediaError> + Send + 'static,
    ) -> Result<T, MediaError> {
        let _permit = self.cpu.acquire().await.map_err(|_| MediaError::Task)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| MediaError::Task)?
    }

    /// Checks and cleans an upload, then stores it under a new id.
    ///
    /// # Errors
    /// [`MediaError`]: the upload's fault (nothing is stored) or the store's.
    pub async fn store(&self, upload: Bytes) -> Result<Stored, MediaError> {
        let limits = self.limits;
        let cleaned = self.on_cpu(move || clean::clean(&upload, &limits)).await?;
        let id = Uuid::now_v7();
        let size = cleaned.bytes.len() as u64;
        self.store.put(&original(id), cleaned.bytes.into()).await?;
        Ok(Stored {
            id,
            format: cleaned.format,
            width: cleaned.width,
            height: cleaned.height,
            size,
        })
    }

    /// Removes an image and its variants (an upload whose recording was refused). Best effort:
    /// a failure is logged.
    pub async fn discard(&self, id: Uuid) {
        for path in std::iter::once(original(id)).chain(IMAGE_WIDTHS.map(|w| variant(id, w))) {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => tracing::warn!(%id, %error, "could not remove a discarded image"),
            }
        }
    }

    async fn get(&self, path: &Path) -> Result<Option<Bytes>, MediaError> {
        match self.store.get(path).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The image `id`, or its variant `width` pixels wide (one of [`IMAGE_WIDTHS`]; made and
    /// stored the first time it is asked for; the image itself when it is not wider). `None`
    /// when there is no such image.
    ///
    /// # Errors
    /// [`MediaError::BadWidth`], or the store's failure.
    pub async fn fetch(&self, id: Uuid, width: Option<u32>) -> Result<Option<Served>, MediaError> {
        let served = |bytes: Bytes| {
            let format = Format::sniff(&bytes)?;
            Ok(Some(Served { bytes, format }))
        };
        let Some(width) = width else {
            return match self.get(&original(id)).await? {
                Some(bytes) => served(bytes),
                None => Ok(None),
            };
        };
        if !IMAGE_WIDTHS.contains(&width) {
            return Err(MediaError::BadWidth);
        }
        if let Some(bytes) = self.get(&variant(id, width)).await? {
            return served(bytes);
        }
        let Some(stored) = self.get(&original(id)).await? else {
            return Ok(None);
        };
        let limits = self.limits;
        let source = stored.clone();
        match self
            .on_cpu(move || clean::resize(&source, width, &limits))
            .await?
        {
            None => served(stored),
            Some(resized) => {
                let resized = Bytes::from(resized);
                // Stored for the next reader; a failure to store costs only the next resize.
                if let Err(error) = self
                    .store
                    .put(&variant(id, width), resized.clone().into())
                    .await
                {
                    tracing::warn!(%id, width, %error, "could not store an image variant");
                }
                served(resized)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Bytes {
        let image = image::DynamicImage::ImageRgb8(image::RgbImage::new(width, height));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Png).unwrap();
        Bytes::from(out.into_inner())
    }

    #[tokio::test]
    async fn a_directory_store_keeps_originals_and_variants() {
        let dir = std::env::temp_dir().join(format!("inkwire-media-{}", Uuid::now_v7()));
        let library = MediaLibrary::open(dir.to_str().unwrap(), Limits::default()).unwrap();
        let stored = library.store(png(700, 350)).await.unwrap();
        assert_eq!((stored.width, stored.height), (700, 350));
        let original = library.fetch(stored.id, None).await.unwrap().unwrap();
        assert_eq!(original.format, Format::Png);
        assert_eq!(original.bytes.len() as u64, stored.size);
        let small = library.fetch(stored.id, Some(320)).await.unwrap().unwrap();
        let small = image::load_from_memory(&small.bytes).unwrap();
        assert_eq!((small.width(), small.height()), (320, 160));
        assert!(dir.join(stored.id.to_string()).join("w320").exists());
        // Not wider than 960: the original.
        let same = library.fetch(stored.id, Some(960)).await.unwrap().unwrap();
        assert_eq!(same.bytes, original.bytes);
        assert!(matches!(
            library.fetch(stored.id, Some(500)).await,
            Err(MediaError::BadWidth)
        ));
        assert!(library.fetch(Uuid::now_v7(), None).await.unwrap().is_none());
        assert!(
            library
                .fetch(Uuid::now_v7(), Some(320))
                .await
                .unwrap()
                .is_none()
        );
        library.discard(stored.id).await;
        assert!(library.fetch(stored.id, None).await.unwrap().is_none());
        std::fs::remove_dir_all(dir).ok();
    }
}
