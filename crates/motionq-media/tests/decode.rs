//! Decodes every picture of generated videos with a real H.264 decoder (OpenH264, error
//! concealment off), so CI proves the streams are valid without ffmpeg.

use std::io::Cursor;

use motionq_media::{mp4, Container, Layout, SampleKind, VideoSpec};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

/// Decodes all samples of the file's video track; returns (pictures, width, height, the
/// distinct luma values of the first, second and last pictures).
fn decode_all(file: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    let mut reader = mp4::Mp4Reader::read_header(Cursor::new(file), file.len() as u64).unwrap();
    let track = reader.tracks().values().next().expect("a track");
    let track_id = track.track_id();
    let count = track.sample_count();
    // avcC parameter sets, then each length-prefixed sample, as Annex B start-code NAL units.
    let mut annex_b = Vec::new();
    for nal in [
        track.sequence_parameter_set().unwrap(),
        track.picture_parameter_set().unwrap(),
    ] {
        annex_b.extend_from_slice(&[0, 0, 0, 1]);
        annex_b.extend_from_slice(nal);
    }
    let mut decoder = Decoder::new().unwrap();
    assert!(
        decoder.decode(&annex_b).unwrap().is_none(),
        "parameter sets hold no picture"
    );

    let (mut pictures, mut size, mut lumas) = (0, (0, 0), Vec::new());
    for n in 1..=count {
        let sample = reader.read_sample(track_id, n).unwrap().expect("sample");
        let mut unit = Vec::with_capacity(sample.bytes.len());
        let mut at = 0;
        while at < sample.bytes.len() {
            let len = u32::from_be_bytes(sample.bytes[at..at + 4].try_into().unwrap()) as usize;
            unit.extend_from_slice(&[0, 0, 0, 1]);
            unit.extend_from_slice(&sample.bytes[at + 4..at + 4 + len]);
            at += 4 + len;
        }
        let picture = decoder
            .decode(&unit)
            .unwrap_or_else(|e| panic!("sample {n}: {e}"))
            .unwrap_or_else(|| panic!("sample {n} gave no picture"));
        pictures += 1;
        size = picture.dimensions();
        if n <= 2 || n == count {
            // Every row, every visible column (an IDR picture, a P picture, the last one).
            let (y_stride, _, _) = picture.strides();
            let mut seen = [false; 256];
            for row in picture.y().chunks(y_stride).take(size.1) {
                for &v in &row[..size.0] {
                    seen[v as usize] = true;
                }
            }
            lumas.extend((0..=255u8).filter(|v| seen[*v as usize]));
        }
    }
    lumas.sort_unstable();
    lumas.dedup();
    (pictures, size.0, size.1, lumas)
}

#[test]
fn every_picture_of_assorted_specs_decodes() {
    let specs = [
        VideoSpec::new(3.0, 720, 1280),
        VideoSpec::new(2.35, 1280, 720).layout(Layout::MoovAtEnd),
        VideoSpec::new(4.1, 1080, 1920).container(Container::Mov),
        // Sizes that are not multiples of 16 exercise the SPS cropping.
        VideoSpec::new(1.0, 342, 3850),
        VideoSpec::new(0.3, 2, 2),
    ];
    for spec in specs {
        let (pictures, width, height, lumas) = decode_all(&mp4(&spec));
        assert_eq!(
            pictures as u32,
            spec.duration_ms().div_ceil(100),
            "{spec:?}"
        );
        assert_eq!(
            (width as u32, height as u32),
            (spec.width, spec.height),
            "{spec:?}"
        );
        assert_eq!(lumas, vec![128], "{spec:?}: a flat mid-grey picture");
    }
}

#[test]
fn every_well_formed_progressive_sample_decodes() {
    let mut decoded = 0;
    for name in motionq_media::sample_names() {
        let video = name.ends_with(".mp4") || name.ends_with(".mov");
        if !video || name.contains("fragmented") || name.contains("truncated") {
            continue;
        }
        let s = motionq_media::sample(name).unwrap();
        assert_eq!((s.kind, s.defect), (SampleKind::Video, None), "{name}");
        decoded += 1;
        let (pictures, width, height, lumas) = decode_all(&s.bytes);
        assert_eq!(lumas, vec![128], "{}", s.name);
        let seconds = s.seconds.unwrap();
        assert_eq!(pictures as f64, (seconds * 10.0).ceil(), "{}", s.name);
        assert_eq!(
            (width as u32, height as u32),
            (s.width, s.height),
            "{}",
            s.name
        );
    }
    assert!(decoded >= 14, "{decoded}");
}
