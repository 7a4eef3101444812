//! # motionq-media: real sample media, generated in pure Rust
//!
//! The vendor simulator serves these files as job inputs (`/media/<name>`) and as generated
//! outputs; probe and validation tests read them back. Nothing here needs ffmpeg or any asset
//! file: every byte is produced by this crate.
//!
//! ## Module layout
//! - `h264`: a minimal H.264 writer (Constrained Baseline, CAVLC). It emits an IDR picture whose
//!   macroblocks are all `I_16x16` DC-predicted with no residual (a flat mid-grey frame, one
//!   byte per macroblock) and all-skip P pictures (a few bytes each). Any even size works.
//! - `mux`: the MP4/MOV muxer ([`mp4`], [`VideoSpec`], [`Layout`], [`Container`]).
//! - `images`: [`png()`], [`jpeg()`], [`webp()`] via the `png`, `jpeg-encoder` and `image-webp`
//!   crates; the picture is a colour gradient with a dark rectangle in the middle.
//! - `samples`: the named sample set ([`samples`], [`sample`], [`sample_names`]).
//!
//! ## Videos
//! [`mp4`] returns a complete, playable file: one H.264 video track, no audio, 10 frames per
//! second, an IDR picture every 2 s, movie/media timescale 1000, and a duration exactly equal to
//! [`VideoSpec::seconds`] rounded to the millisecond (the last frame is shortened). ffmpeg
//! decodes every frame without warnings, even with `-err_detect explode`; the `mp4` crate reads
//! duration, size and brand (fragmented files report duration 0 there, because `mvhd` holds 0
//! and the total is in `mvex/mehd`). The tests decode every picture with OpenH264 (a
//! dev-dependency built from its bundled C++ source, so building the tests needs a C++
//! compiler) and check the size and the flat grey picture, so CI needs no ffmpeg. Size is about one byte per 16x16 macroblock per IDR picture, e.g. 15 KB for
//! 8 s at 720x1280, 68 KB for 8 s at 1080x1920.
//!
//! ```
//! use motionq_media::{mp4, Container, Layout, VideoSpec};
//! let bytes = mp4(&VideoSpec::new(8.0, 720, 1280).layout(Layout::MoovAtEnd).container(Container::Mov));
//! assert_eq!(&bytes[4..12], b"ftypqt  ");
//! ```
//!
//! ## Samples
//! Each sample is built on first use and cached for the life of the process: [`sample`]
//! builds and returns only the one asked for, without copying; [`samples`] builds all of them
//! (about 12 MB, most of it the deliberately oversized PNG) and returns copies. Building is
//! cheap for videos (milliseconds) and slower for images in debug builds (the encoders run
//! unoptimised: up to about a second per large image on a busy machine).
//! `cargo run -p motionq-media --example write-samples -- DIR` writes them all to disk, e.g.
//! to check them with `ffprobe`.
//! Names and facts (videos are 720x1280 H.264 faststart MP4 unless said otherwise; "limits"
//! refers to the strictest vendor limits in `shared/VENDORS.md`: image ≥300 px, aspect within
//! 1:2.5–2.5:1, ≤10 MB; video 3–30 s, 340–3850 px):
//!
//! | name | facts | within limits? |
//! |---|---|---|
//! | `portrait-720x1280.png` / `.jpg` / `.webp` | 720x1280 | yes (WebP not for every vendor) |
//! | `square-1024x1024.png` / `.jpg` / `.webp` | 1024x1024 | yes |
//! | `landscape-1280x720.png` / `.jpg` / `.webp` | 1280x720 | yes |
//! | `small-200x200.png` / `.jpg` | 200x200 | no: below 300 px |
//! | `wide-3000x500.png` / `.jpg` | 3000x500 | no: aspect 6:1 |
//! | `huge-1900x1900.png` | 1900x1900, uncompressed, ≈10.8 MB | no: above 10 MB |
//! | `dance-2s.mp4` | 2 s | no: below 3 s |
//! | `dance-3s.mp4`, `dance-8s.mp4`, `dance-10s.mp4`, `dance-12s.mp4` | 3 / 8 / 10 / 12 s | yes (12 s only with `video` orientation) |
//! | `dance-31s.mp4` | 31 s | no: above 30 s |
//! | `dance-3s.mov`, `dance-8s.mov`, `dance-12s.mov`, `dance-31s.mov` | MOV (`qt  ` brand), 3 / 8 / 12 / 31 s | as the MP4s |
//! | `dance-8s-landscape-1280x720.mp4` | 8 s, 1280x720 | yes |
//! | `dance-8s-1080x1920.mp4` | 8 s, 1080x1920 | yes |
//! | `dance-8s-moov-end.mp4` | 8 s, `moov` after `mdat` | yes (the prober must seek) |
//! | `dance-8s-fragmented.mp4` | 8 s, fragmented (`iso5`), `mvhd` duration 0, `mehd` 8 s | yes |
//! | `dance-8s-truncated.mp4` | first half of `dance-8s.mp4`: `moov` intact, `mdat` cut | no: broken file |
//! | `dance-8s-moov-end-truncated.mp4` | first half of `dance-8s-moov-end.mp4`: no `moov` | no: broken file |
//! | `tiny-320x240-8s.mp4` | 8 s, 320x240 | no: below 340 px |
//! | `huge-4000x2250-8s.mp4` | 8 s, 4000x2250 | no: above 3850 px |
//!
//! Each [`Sample`] carries these facts (`width`, `height`, `seconds`, `defect`) so tests can
//! compare a probe's findings with the truth.

mod h264;
mod images;
mod mux;
mod samples;

pub use images::{jpeg, png, png_uncompressed, webp};
pub use mux::{Container, Layout, VideoSpec, FPS, GOP_FRAMES, TIMESCALE};
pub use samples::{sample, sample_names, samples, Sample, SampleKind};

/// A complete MP4 or MOV file for `spec`: real H.264 that ffmpeg decodes, with the requested
/// duration (to the millisecond) and size (odd sizes rounded up to even). See the crate doc.
pub fn mp4(spec: &VideoSpec) -> Vec<u8> {
    mux::build(spec)
}
