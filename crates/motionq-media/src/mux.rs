//! ISO-BMFF (MP4) / QuickTime (MOV) muxer for the H.264 stream of [`crate::h264`].
//!
//! One video track, no audio. Timing: 10 frames per second, an IDR picture every 2 seconds
//! (so players can seek), all-skip P pictures in between; movie and media timescale 1000
//! (milliseconds). The last frame is shortened so the duration is exactly the requested one,
//! rounded to the millisecond.

use crate::h264::{Encoder, MAX_FRAME_NUM};

/// Frames per second of every generated video.
pub const FPS: u32 = 10;
/// Frames per group of pictures (one IDR picture every 2 s).
pub const GOP_FRAMES: u32 = 20;
/// Movie and media timescale (units per second).
pub const TIMESCALE: u32 = 1000;
const FRAME_TICKS: u32 = TIMESCALE / FPS;

/// Where the `moov` (index) box sits relative to the media data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `ftyp`, `moov`, `mdat`: the index first, as web-optimised files have it.
    Faststart,
    /// `ftyp`, `mdat`, `moov`: the index last, as cameras and plain `ffmpeg` write it; a reader
    /// must jump to the end of the file to learn the duration.
    MoovAtEnd,
    /// `ftyp`, `moov` (with `mvex`/`mehd`, empty sample tables), then one `moof`+`mdat` pair
    /// per 2-second group of pictures. `mvhd` duration is 0; the total is in `mehd`.
    Fragmented,
}

/// File brand: ISO MP4 or Apple QuickTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// `ftyp` major brand `isom` (`iso5` when fragmented); content type `video/mp4`.
    Mp4,
    /// `ftyp` major brand `qt  `; content type `video/quicktime`.
    Mov,
}

impl Container {
    /// The HTTP content type of files in this container.
    pub fn content_type(self) -> &'static str {
        match self {
            Container::Mp4 => "video/mp4",
            Container::Mov => "video/quicktime",
        }
    }

    /// The four-character `ftyp` major brand written for `layout`.
    pub fn major_brand(self, layout: Layout) -> &'static str {
        match (self, layout) {
            (Container::Mov, _) => "qt  ",
            (Container::Mp4, Layout::Fragmented) => "iso5",
            (Container::Mp4, _) => "isom",
        }
    }
}

/// What [`crate::mp4`] produces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoSpec {
    /// Duration in seconds, kept to the millisecond. Values below 0.001 (and NaN) become 0.001.
    pub seconds: f64,
    /// Width in pixels. Odd values are rounded up to even (H.264 4:2:0); 0 becomes 2.
    pub width: u32,
    /// Height in pixels. Odd values are rounded up to even; 0 becomes 2.
    pub height: u32,
    /// Placement of the index box.
    pub layout: Layout,
    /// MP4 or MOV branding.
    pub container: Container,
}

impl VideoSpec {
    /// A faststart MP4 of `seconds` at `width` x `height`.
    pub fn new(seconds: f64, width: u32, height: u32) -> Self {
        VideoSpec {
            seconds,
            width,
            height,
            layout: Layout::Faststart,
            container: Container::Mp4,
        }
    }

    /// The same spec with another layout.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The same spec with another container.
    pub fn container(mut self, container: Container) -> Self {
        self.container = container;
        self
    }

    /// Duration in timescale units (milliseconds) after clamping.
    pub fn duration_ms(&self) -> u32 {
        let ms = (self.seconds * f64::from(TIMESCALE)).round();
        // `as` saturates, and NaN maps to 0, so this also clamps absurd inputs.
        (ms as u32).max(1)
    }

    /// The width actually encoded.
    pub fn coded_width(&self) -> u32 {
        even(self.width)
    }

    /// The height actually encoded.
    pub fn coded_height(&self) -> u32 {
        even(self.height)
    }
}

fn even(v: u32) -> u32 {
    let v = v.clamp(2, u32::from(u16::MAX) - 1);
    v + v % 2
}

/// One access unit to store: which picture, how long it lasts, whether it is a sync sample.
struct Frame<'a> {
    nal: &'a [u8],
    ticks: u32,
    sync: bool,
}

/// Builds the complete file for `spec`.
pub(crate) fn build(spec: &VideoSpec) -> Vec<u8> {
    let width = spec.coded_width();
    let height = spec.coded_height();
    let encoder = Encoder::new(width, height);
    // Consecutive IDR pictures must carry different idr_pic_id values, so alternate two.
    let idrs = [encoder.idr(0), encoder.idr(1)];
    let p_frames: Vec<Vec<u8>> = (0..MAX_FRAME_NUM).map(|n| encoder.p_skip(n)).collect();

    let total = spec.duration_ms();
    let count = total.div_ceil(FRAME_TICKS);
    let frames: Vec<Frame> = (0..count)
        .map(|i| {
            let in_gop = i % GOP_FRAMES;
            let nal: &[u8] = if in_gop == 0 {
                &idrs[((i / GOP_FRAMES) % 2) as usize]
            } else {
                &p_frames[(in_gop % MAX_FRAME_NUM) as usize]
            };
            let ticks = if i + 1 == count {
                total - FRAME_TICKS * (count - 1)
            } else {
                FRAME_TICKS
            };
            Frame {
                nal,
                ticks,
                sync: in_gop == 0,
            }
        })
        .collect();

    let track = Track {
        width,
        height,
        total,
        sample_entry: avc1(width, height, &encoder),
        container: spec.container,
    };
    let ftyp = ftyp(spec.container, spec.layout);
    match spec.layout {
        Layout::Faststart => {
            let mdat = mdat(&frames);
            // stco holds 32-bit offsets whatever their value, so measure with 0 and rebuild.
            let moov_len = track.moov(&frames, 0).len();
            let chunk_offset = (ftyp.len() + moov_len + 8) as u32;
            let moov = track.moov(&frames, chunk_offset);
            [ftyp, moov, mdat].concat()
        }
        Layout::MoovAtEnd => {
            let mdat = mdat(&frames);
            let chunk_offset = (ftyp.len() + 8) as u32;
            let moov = track.moov(&frames, chunk_offset);
            [ftyp, mdat, moov].concat()
        }
        Layout::Fragmented => {
            let mut out = ftyp;
            out.extend(track.fragmented_moov());
            let mut decode_time = 0u64;
            for (index, gop) in frames.chunks(GOP_FRAMES as usize).enumerate() {
                out.extend(moof(index as u32 + 1, decode_time, gop));
                out.extend(mdat(gop));
                decode_time += gop.iter().map(|f| u64::from(f.ticks)).sum::<u64>();
            }
            out
        }
    }
}

/// Big-endian byte builder for box bodies.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    /// The unity transformation matrix of `mvhd`/`tkhd`.
    fn unity_matrix(&mut self) -> &mut Self {
        for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
        self
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len() + 8).expect("generated boxes stay below 4 GiB");
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(body.len() + 4);
    inner.extend_from_slice(&((u32::from(version) << 24) | flags).to_be_bytes());
    inner.extend_from_slice(body);
    boxed(kind, &inner)
}

fn ftyp(container: Container, layout: Layout) -> Vec<u8> {
    let mut b = Body::default();
    b.bytes(container.major_brand(layout).as_bytes());
    let compatible: &[&[u8; 4]] = match (container, layout) {
        (Container::Mov, _) => {
            b.u32(0x0000_0200);
            &[b"qt  "]
        }
        (Container::Mp4, Layout::Fragmented) => {
            b.u32(0x0000_0200);
            &[b"iso5", b"iso6", b"mp41", b"avc1"]
        }
        (Container::Mp4, _) => {
            b.u32(0x0000_0200);
            &[b"isom", b"iso2", b"avc1", b"mp41"]
        }
    };
    for brand in compatible {
        b.bytes(&brand[..]);
    }
    boxed(b"ftyp", &b.take())
}

fn mdat(frames: &[Frame]) -> Vec<u8> {
    let payload: usize = frames.iter().map(|f| f.nal.len() + 4).sum();
    let mut body = Vec::with_capacity(payload);
    for frame in frames {
        // avcC lengthSizeMinusOne = 3: every NAL unit is prefixed with a 32-bit length.
        body.extend_from_slice(&(frame.nal.len() as u32).to_be_bytes());
        body.extend_from_slice(frame.nal);
    }
    boxed(b"mdat", &body)
}

/// `avc1` visual sample entry with its `avcC` decoder configuration.
fn avc1(width: u32, height: u32, encoder: &Encoder) -> Vec<u8> {
    let (sps, pps) = (&encoder.sps, &encoder.pps);
    let mut avcc = Body::default();
    avcc.u8(1) // configurationVersion
        .u8(sps[1]) // AVCProfileIndication
        .u8(sps[2]) // profile_compatibility
        .u8(sps[3]) // AVCLevelIndication
        .u8(0xff) // reserved bits + lengthSizeMinusOne = 3
        .u8(0xe1) // reserved bits + one SPS
        .u16(sps.len() as u16)
        .bytes(sps)
        .u8(1) // one PPS
        .u16(pps.len() as u16)
        .bytes(pps);
    let avcc = boxed(b"avcC", &avcc.take());

    let mut name = [0u8; 32];
    let label = b"motionq-media";
    name[0] = label.len() as u8;
    name[1..=label.len()].copy_from_slice(label);

    let mut b = Body::default();
    b.zeros(6) // reserved
        .u16(1) // data_reference_index
        .u16(0) // pre_defined
        .u16(0) // reserved
        .zeros(12) // pre_defined
        .u16(width as u16)
        .u16(height as u16)
        .u32(0x0048_0000) // 72 dpi
        .u32(0x0048_0000)
        .u32(0) // reserved
        .u16(1) // frame_count
        .bytes(&name)
        .u16(0x0018) // depth: colour, no alpha
        .u16(0xffff) // pre_defined = -1
        .bytes(&avcc);
    boxed(b"avc1", &b.take())
}

struct Track {
    width: u32,
    height: u32,
    total: u32,
    sample_entry: Vec<u8>,
    container: Container,
}

impl Track {
    fn mvhd(&self, duration: u32) -> Vec<u8> {
        let mut b = Body::default();
        b.u32(0) // creation_time
            .u32(0) // modification_time
            .u32(TIMESCALE)
            .u32(duration)
            .u32(0x0001_0000) // rate 1.0
            .u16(0x0100) // volume 1.0
            .zeros(10) // reserved
            .unity_matrix()
            .zeros(24) // pre_defined
            .u32(2); // next_track_ID
        full_box(b"mvhd", 0, 0, &b.take())
    }

    fn tkhd(&self, duration: u32) -> Vec<u8> {
        let mut b = Body::default();
        b.u32(0) // creation_time
            .u32(0) // modification_time
            .u32(1) // track_ID
            .u32(0) // reserved
            .u32(duration)
            .zeros(8) // reserved
            .u16(0) // layer
            .u16(0) // alternate_group
            .u16(0) // volume: 0 for video
            .u16(0) // reserved
            .unity_matrix()
            .u32(self.width << 16) // 16.16 fixed point
            .u32(self.height << 16);
        // flags: track_enabled | track_in_movie
        full_box(b"tkhd", 0, 0x3, &b.take())
    }

    fn mdia(&self, duration: u32, stbl: Vec<u8>) -> Vec<u8> {
        let mut mdhd = Body::default();
        mdhd.u32(0)
            .u32(0)
            .u32(TIMESCALE)
            .u32(duration)
            .u16(0x55c4) // language "und" packed as ISO-639-2/T
            .u16(0);
        let mdhd = full_box(b"mdhd", 0, 0, &mdhd.take());

        let mut hdlr = Body::default();
        // QuickTime names the handler component type here; ISO leaves it zero.
        let component: &[u8; 4] = match self.container {
            Container::Mov => b"mhlr",
            Container::Mp4 => &[0; 4],
        };
        hdlr.bytes(component)
            .bytes(b"vide")
            .zeros(12)
            .bytes(b"VideoHandler\0");
        let hdlr = full_box(b"hdlr", 0, 0, &hdlr.take());

        let mut vmhd = Body::default();
        vmhd.u16(0).zeros(6); // graphicsmode copy, opcolor 0
        let vmhd = full_box(b"vmhd", 0, 1, &vmhd.take());
        let url = full_box(b"url ", 0, 1, &[]); // flag 1: media is in this file
        let dref = full_box(b"dref", 0, 0, &[&1u32.to_be_bytes()[..], &url].concat());
        let dinf = boxed(b"dinf", &dref);
        let minf = boxed(b"minf", &[vmhd, dinf, stbl].concat());
        boxed(b"mdia", &[mdhd, hdlr, minf].concat())
    }

    fn stsd(&self) -> Vec<u8> {
        full_box(
            b"stsd",
            0,
            0,
            &[&1u32.to_be_bytes()[..], &self.sample_entry].concat(),
        )
    }

    /// Index of a progressive (non-fragmented) file; all samples in one chunk at `chunk_offset`.
    fn moov(&self, frames: &[Frame], chunk_offset: u32) -> Vec<u8> {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for frame in frames {
            match runs.last_mut() {
                Some((count, ticks)) if *ticks == frame.ticks => *count += 1,
                _ => runs.push((1, frame.ticks)),
            }
        }
        let mut stts = Body::default();
        stts.u32(runs.len() as u32);
        for (count, ticks) in runs {
            stts.u32(count).u32(ticks);
        }
        let stts = full_box(b"stts", 0, 0, &stts.take());

        let sync: Vec<u32> = (1..=frames.len() as u32)
            .filter(|n| frames[*n as usize - 1].sync)
            .collect();
        let mut stss = Body::default();
        stss.u32(sync.len() as u32);
        for n in sync {
            stss.u32(n);
        }
        let stss = full_box(b"stss", 0, 0, &stss.take());

        let mut stsc = Body::default();
        stsc.u32(1).u32(1).u32(frames.len() as u32).u32(1);
        let stsc = full_box(b"stsc", 0, 0, &stsc.take());

        let mut stsz = Body::default();
        stsz.u32(0).u32(frames.len() as u32);
        for frame in frames {
            stsz.u32(frame.nal.len() as u32 + 4);
        }
        let stsz = full_box(b"stsz", 0, 0, &stsz.take());

        let mut stco = Body::default();
        stco.u32(1).u32(chunk_offset);
        let stco = full_box(b"stco", 0, 0, &stco.take());

        let stbl = boxed(
            b"stbl",
            &[self.stsd(), stts, stss, stsc, stsz, stco].concat(),
        );
        let trak = boxed(
            b"trak",
            &[self.tkhd(self.total), self.mdia(self.total, stbl)].concat(),
        );
        boxed(b"moov", &[self.mvhd(self.total), trak].concat())
    }

    /// Index of a fragmented file: empty sample tables, `mvex` with the total in `mehd`.
    fn fragmented_moov(&self) -> Vec<u8> {
        let empty = 0u32.to_be_bytes();
        let stbl = boxed(
            b"stbl",
            &[
                self.stsd(),
                full_box(b"stts", 0, 0, &empty),
                full_box(b"stsc", 0, 0, &empty),
                full_box(b"stsz", 0, 0, &[empty, empty].concat()),
                full_box(b"stco", 0, 0, &empty),
            ]
            .concat(),
        );
        let trak = boxed(b"trak", &[self.tkhd(0), self.mdia(0, stbl)].concat());
        let mehd = full_box(b"mehd", 0, 0, &self.total.to_be_bytes());
        let mut trex = Body::default();
        trex.u32(1) // track_ID
            .u32(1) // default_sample_description_index
            .u32(FRAME_TICKS) // default_sample_duration
            .u32(0) // default_sample_size
            .u32(NON_SYNC_SAMPLE_FLAGS);
        let trex = full_box(b"trex", 0, 0, &trex.take());
        let mvex = boxed(b"mvex", &[mehd, trex].concat());
        boxed(b"moov", &[self.mvhd(0), trak, mvex].concat())
    }
}

/// Sample flags: depends on other samples, not a sync sample.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;
/// Sample flags: depends on no other sample (an IDR picture).
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;

/// One movie fragment for `frames`, whose data follows in the next `mdat`.
fn moof(sequence: u32, decode_time: u64, frames: &[Frame]) -> Vec<u8> {
    let build = |data_offset: u32| {
        let mfhd = full_box(b"mfhd", 0, 0, &sequence.to_be_bytes());
        // flags 0x020000: default-base-is-moof, offsets count from this moof's first byte.
        let tfhd = full_box(b"tfhd", 0, 0x02_0000, &1u32.to_be_bytes());
        let tfdt = full_box(b"tfdt", 1, 0, &decode_time.to_be_bytes());
        let mut trun = Body::default();
        trun.u32(frames.len() as u32)
            .u32(data_offset)
            .u32(SYNC_SAMPLE_FLAGS);
        for frame in frames {
            trun.u32(frame.ticks).u32(frame.nal.len() as u32 + 4);
        }
        // flags: data-offset | first-sample-flags | sample-duration | sample-size
        let trun = full_box(b"trun", 0, 0x0000_0305, &trun.take());
        let traf = boxed(b"traf", &[tfhd, tfdt, trun].concat());
        boxed(b"moof", &[mfhd, traf].concat())
    };
    let len = build(0).len() as u32;
    build(len + 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_clamped_and_rounded() {
        assert_eq!(VideoSpec::new(8.0, 720, 1280).duration_ms(), 8000);
        assert_eq!(VideoSpec::new(2.5004, 720, 1280).duration_ms(), 2500);
        assert_eq!(VideoSpec::new(0.0, 720, 1280).duration_ms(), 1);
        assert_eq!(VideoSpec::new(f64::NAN, 720, 1280).duration_ms(), 1);
        assert_eq!(VideoSpec::new(-3.0, 720, 1280).duration_ms(), 1);
    }

    #[test]
    fn odd_or_zero_sizes_become_even() {
        let spec = VideoSpec::new(1.0, 721, 0);
        assert_eq!((spec.coded_width(), spec.coded_height()), (722, 2));
        let spec = VideoSpec::new(1.0, 1, 1_000_000);
        assert_eq!((spec.coded_width(), spec.coded_height()), (2, 65534));
    }

    #[test]
    fn layouts_order_top_level_boxes() {
        fn top_level(bytes: &[u8]) -> Vec<String> {
            let mut names = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                names.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
                at += size;
            }
            assert_eq!(at, bytes.len(), "boxes must tile the file exactly");
            names
        }
        let spec = VideoSpec::new(3.0, 64, 64);
        assert_eq!(top_level(&build(&spec)), ["ftyp", "moov", "mdat"]);
        assert_eq!(
            top_level(&build(&spec.layout(Layout::MoovAtEnd))),
            ["ftyp", "mdat", "moov"]
        );
        assert_eq!(
            top_level(&build(&spec.layout(Layout::Fragmented))),
            ["ftyp", "moov", "moof", "mdat", "moof", "mdat"]
        );
    }
}
