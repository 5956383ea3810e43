//! Copying one object: streamed from the source, hashed on the way (MD5, the checksum S3 itself
//! reports as ETag), multipart for large objects, paced by the bandwidth cap, then verified.
//!
//! Verification: S3 answers an upload with an ETag that is the MD5 of what it stored (for a
//! multipart upload, the MD5 of the parts' MD5s and `-<parts>`); Kura computes the same from the
//! bytes it sent and compares. Where the store gives no such ETag (a local folder, a server with
//! encryption that changes ETags) the object is read back and hashed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, PutResult, WriteMultipart};

use crate::plan::SourceObject;
use crate::{Error, Result};

/// How objects are sent.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Objects at least this large go up in parts.
    pub multipart_threshold: u64,
    /// Part size (S3 needs at least 5 MiB for all parts but the last).
    pub part_size: usize,
    /// Parts of one object in flight at once.
    pub part_concurrency: usize,
}

impl Default for TransferConfig {
    fn default() -> Self {
        // As rclone's S3 default (200 MiB): below it one PUT is cheaper for the server than
        // parts it must assemble (measured: 32 MiB made the 1,000,000-person copy 27% slower).
        Self { multipart_threshold: 200 << 20, part_size: 16 << 20, part_concurrency: 4 }
    }
}

/// Paces reads to a number of bytes per second, across all transfers.
#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: f64,
    next: tokio::sync::Mutex<Instant>,
}

impl Throttle {
    /// A cap of `bytes_per_second`.
    pub fn new(bytes_per_second: u64) -> Self {
        Self { bytes_per_second: bytes_per_second.max(1) as f64, next: tokio::sync::Mutex::new(Instant::now()) }
    }

    /// Waits until `bytes` more may go.
    pub async fn take(&self, bytes: usize) {
        let start = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            // Idle time does not build up credit beyond a moment.
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
}

/// What was sent for one object.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Bytes sent.
    pub bytes: u64,
    /// MD5 of the content (hex).
    pub md5: String,
    /// Whether the check used the store's ETag (else the object was read back).
    pub etag_checked: bool,
}

/// MD5 of a whole object and of its parts, as S3 computes ETags.
struct Checksums {
    whole: Md5,
    part: Md5,
    part_len: usize,
    part_size: usize,
    parts: Vec<[u8; 16]>,
}

impl Checksums {
    fn new(part_size: usize) -> Self {
        Self { whole: Md5::new(), part: Md5::new(), part_len: 0, part_size, parts: Vec::new() }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.whole.update(data);
        // A single PUT's ETag is the whole MD5: hashing its one "part" too would double the work.
        if self.part_size == usize::MAX {
            return;
        }
        while !data.is_empty() {
            let take = (self.part_size - self.part_len).min(data.len());
            self.part.update(&data[..take]);
            self.part_len += take;
            data = &data[take..];
            if self.part_len == self.part_size {
                self.parts.push(std::mem::take(&mut self.part).finalize().into());
                self.part_len = 0;
            }
        }
    }

    /// (MD5 of the whole, expected multipart ETag).
    fn finish(mut self) -> (String, String) {
        if self.part_size == usize::MAX {
            let whole = hex::encode(self.whole.finalize());
            return (whole.clone(), whole);
        }
        if self.part_len > 0 {
            self.parts.push(self.part.finalize().into());
        }
        let mut of_parts = Md5::new();
        for p in &self.parts {
            of_parts.update(p);
        }
        let whole = hex::encode(self.whole.finalize());
        (whole, format!("{}-{}", hex::encode(of_parts.finalize()), self.parts.len()))
    }
}

/// The ETag as the store gave it, without quotes, lower case.
fn clean_etag(result: &PutResult) -> Option<String> {
    result.e_tag.as_ref().map(|t| t.trim_matches('"').to_ascii_lowercase())
}

/// Copies one object and verifies it at the destination.
pub async fn copy_object(
    source: &Arc<dyn ObjectStore>,
    destination: &Arc<dyn ObjectStore>,
    object: &SourceObject,
    config: &TransferConfig,
    throttle: Option<&Throttle>,
    on_bytes: &(dyn Fn(u64) + Send + Sync),
    names: (&str, &str),
) -> Result<Sent> {
    let (from, to) = names;
    let path = Path::from(object.path.as_str());
    let got = source.get(&path).await.map_err(Error::store(from))?;
    let mut stream = got.into_stream();
    let multipart = object.size >= config.multipart_threshold;
    let mut sums = Checksums::new(if multipart { config.part_size } else { usize::MAX });
    let mut sent = 0u64;
    let result = if multipart {
        let upload = destination.put_multipart(&path).await.map_err(Error::store(to))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, config.part_size);
        let outcome: Result<()> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(Error::store(from))?;
                account(&chunk, throttle, &mut sums, &mut sent, on_bytes).await;
                writer.wait_for_capacity(config.part_concurrency).await.map_err(Error::store(to))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        if let Err(e) = outcome {
            // Leave no half upload behind when we can help it.
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(Error::store(to))?
    } else {
        let mut chunks: Vec<Bytes> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(Error::store(from))?;
            account(&chunk, throttle, &mut sums, &mut sent, on_bytes).await;
            chunks.push(chunk);
        }
        destination.put(&path, PutPayload::from_iter(chunks)).await.map_err(Error::store(to))?
    };
    let (md5, multipart_etag) = sums.finish();
    let expected = if multipart { multipart_etag } else { md5.clone() };
    let etag = clean_etag(&result);
    let etag_checked = etag.as_deref().is_some_and(looks_like_md5_etag);
    if etag_checked {
        let found = etag.unwrap_or_default();
        if found != expected {
            return Err(Error::Checksum { path: object.path.clone(), sent: expected, found });
        }
    } else {
        let found = md5_of(destination, &path, to).await?;
        if found != md5 {
            return Err(Error::Checksum { path: object.path.clone(), sent: md5, found });
        }
    }
    Ok(Sent { bytes: sent, md5, etag_checked })
}

/// Paces, hashes and counts one chunk read from the source.
async fn account(
    chunk: &[u8],
    throttle: Option<&Throttle>,
    sums: &mut Checksums,
    sent: &mut u64,
    on_bytes: &(dyn Fn(u64) + Send + Sync),
) {
    if let Some(t) = throttle {
        t.take(chunk.len()).await;
    }
    sums.update(chunk);
    *sent += chunk.len() as u64;
    on_bytes(chunk.len() as u64);
}

/// Whether an ETag has MD5's form (32 hex digits, optionally `-<parts>`).
fn looks_like_md5_etag(tag: &str) -> bool {
    let hex_part = tag.split_once('-').map_or(tag, |(h, n)| if n.chars().all(|c| c.is_ascii_digit()) { h } else { "" });
    hex_part.len() == 32 && hex_part.chars().all(|c| c.is_ascii_hexdigit())
}

/// MD5 of an object (hex), reading it whole.
pub async fn md5_of(store: &Arc<dyn ObjectStore>, path: &Path, location: &str) -> Result<String> {
    let mut stream = store.get(path).await.map_err(Error::store(location))?.into_stream();
    let mut hasher = Md5::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk.map_err(Error::store(location))?);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[test]
    fn multipart_etag_is_md5_of_part_md5s() {
        let data = vec![7u8; 25];
        let mut sums = Checksums::new(10);
        sums.update(&data[..3]);
        sums.update(&data[3..]);
        let (whole, etag) = sums.finish();
        assert_eq!(whole, hex::encode(Md5::digest(&data)));
        let mut of_parts = Md5::new();
        for part in data.chunks(10) {
            of_parts.update(Md5::digest(part));
        }
        assert_eq!(etag, format!("{}-3", hex::encode(of_parts.finalize())));
        assert!(looks_like_md5_etag(&etag) && looks_like_md5_etag(&whole));
        assert!(!looks_like_md5_etag("1234-abcd-5678"));
    }

    #[tokio::test]
    async fn copies_small_and_multipart_objects_and_checks_them() {
        let src: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dst: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let big: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
        src.put(&Path::from("t/big.parquet"), PutPayload::from(big.clone())).await.unwrap();
        src.put(&Path::from("t/small.json"), PutPayload::from_static(b"{}")).await.unwrap();
        let config = TransferConfig { multipart_threshold: 1 << 20, part_size: 1 << 20, part_concurrency: 2 };
        for (path, size) in [("t/big.parquet", big.len() as u64), ("t/small.json", 2)] {
            let object = SourceObject { path: path.into(), size, tag: "x".into() };
            let sent = copy_object(&src, &dst, &object, &config, None, &|_| {}, ("a", "b")).await.unwrap();
            assert_eq!(sent.bytes, size);
        }
        let copied = dst.get(&Path::from("t/big.parquet")).await.unwrap().bytes().await.unwrap();
        assert_eq!(copied.as_ref(), big.as_slice());
    }

    #[tokio::test]
    async fn throttle_paces_bytes() {
        let t = Throttle::new(1000);
        let started = Instant::now();
        for _ in 0..3 {
            t.take(100).await;
        }
        // Three takes of 100 bytes at 1000 B/s: the third may start after 0.2 s.
        assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());
    }
}
