//! Reads the generated media back with independent parsers (`mp4`, `imagesize`), so CI checks
//! the files without ffmpeg.

use std::io::Cursor;

use motionq_media::{mp4, sample, samples, Container, Layout, SampleKind, VideoSpec};

fn read_mp4(bytes: &[u8]) -> mp4::Result<mp4::Mp4Reader<Cursor<&[u8]>>> {
    mp4::Mp4Reader::read_header(Cursor::new(bytes), bytes.len() as u64)
}

fn video_track<R: std::io::Read + std::io::Seek>(reader: &mp4::Mp4Reader<R>) -> &mp4::Mp4Track {
    let mut tracks = reader.tracks().values();
    let track = tracks.next().expect("one track");
    assert!(tracks.next().is_none(), "exactly one track");
    assert_eq!(track.track_type().unwrap(), mp4::TrackType::Video);
    track
}

#[test]
fn videos_report_duration_size_and_brand() {
    let cases = [
        (VideoSpec::new(8.0, 720, 1280), "isom"),
        (
            VideoSpec::new(3.0, 1280, 720).layout(Layout::MoovAtEnd),
            "isom",
        ),
        (
            VideoSpec::new(12.5, 1080, 1920).container(Container::Mov),
            "qt  ",
        ),
        (
            VideoSpec::new(31.0, 1920, 1080)
                .container(Container::Mov)
                .layout(Layout::MoovAtEnd),
            "qt  ",
        ),
        (VideoSpec::new(0.25, 342, 3850), "isom"),
    ];
    for (spec, brand) in cases {
        let bytes = mp4(&spec);
        let reader = read_mp4(&bytes).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        assert_eq!(
            reader.duration().as_millis(),
            u128::from(spec.duration_ms()),
            "{spec:?}"
        );
        assert_eq!(reader.ftyp.major_brand.to_string(), brand);
        let track = video_track(&reader);
        assert_eq!(
            (track.width() as u32, track.height() as u32),
            (spec.width, spec.height)
        );
        assert_eq!(track.duration().as_millis(), u128::from(spec.duration_ms()));
        assert_eq!(track.media_type().unwrap(), mp4::MediaType::H264);
        // 10 frames per second, the last one shortened.
        let frames = spec.duration_ms().div_ceil(100);
        assert_eq!(track.sample_count(), frames, "{spec:?}");
    }
}

#[test]
fn sample_offsets_point_at_the_h264_pictures() {
    for layout in [Layout::Faststart, Layout::MoovAtEnd] {
        let spec = VideoSpec::new(4.0, 720, 1280).layout(layout);
        let bytes = mp4(&spec);
        let mut reader = read_mp4(&bytes).unwrap();
        let count = video_track(&reader).sample_count();
        for n in 1..=count {
            let sample = reader.read_sample(1, n).unwrap().expect("sample exists");
            let nal_len = u32::from_be_bytes(sample.bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(nal_len + 4, sample.bytes.len(), "{layout:?} sample {n}");
            let nal_type = sample.bytes[4] & 0x1f;
            // IDR (type 5) at 0 s and 2 s, P pictures (type 1) in between.
            let idr = (n - 1) % 20 == 0;
            assert_eq!(nal_type, if idr { 5 } else { 1 }, "{layout:?} sample {n}");
            assert_eq!(sample.is_sync, idr);
        }
    }
}

#[test]
fn fragmented_files_report_zero_duration_and_carry_fragments() {
    let spec = VideoSpec::new(8.0, 720, 1280).layout(Layout::Fragmented);
    let bytes = mp4(&spec);
    let reader = read_mp4(&bytes).unwrap();
    assert_eq!(reader.duration().as_millis(), 0);
    assert_eq!(reader.ftyp.major_brand.to_string(), "iso5");
    assert!(reader.is_fragmented());
    let mehd = reader
        .moov
        .mvex
        .as_ref()
        .and_then(|m| m.mehd.as_ref())
        .expect("mehd");
    assert_eq!(mehd.fragment_duration, 8000);
    // One fragment per 2-second group of pictures, 20 frames each.
    assert_eq!(reader.moofs.len(), 4);
    let frames: u32 = reader
        .moofs
        .iter()
        .flat_map(|m| &m.trafs)
        .map(|t| t.trun.as_ref().expect("trun").sample_count)
        .sum();
    assert_eq!(frames, 80);
    let track = video_track(&reader);
    assert_eq!((track.width(), track.height()), (720, 1280));
}

#[test]
fn every_sample_matches_its_stated_facts() {
    let all = samples();
    assert!(all.len() >= 30);
    let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "names are unique");

    for s in &all {
        match s.kind {
            SampleKind::Image => {
                let size =
                    imagesize::blob_size(&s.bytes).unwrap_or_else(|e| panic!("{}: {e:?}", s.name));
                assert_eq!(
                    (size.width as u32, size.height as u32),
                    (s.width, s.height),
                    "{}",
                    s.name
                );
                let format = imagesize::image_type(&s.bytes).unwrap();
                let expected = match s.content_type {
                    "image/png" => imagesize::ImageType::Png,
                    "image/jpeg" => imagesize::ImageType::Jpeg,
                    "image/webp" => imagesize::ImageType::Webp,
                    other => panic!("{}: unexpected content type {other}", s.name),
                };
                assert_eq!(format, expected, "{}", s.name);
                assert!(s.seconds.is_none());
            }
            SampleKind::Video if s.defect.is_some() => {
                assert!(read_mp4(&s.bytes).is_err(), "{} must be rejected", s.name);
            }
            SampleKind::Video => {
                let reader = read_mp4(&s.bytes).unwrap_or_else(|e| panic!("{}: {e}", s.name));
                let seconds = s.seconds.expect("videos have a duration");
                let header = reader.duration().as_secs_f64();
                if reader.is_fragmented() {
                    assert_eq!(header, 0.0, "{}", s.name);
                } else {
                    assert_eq!(header, seconds, "{}", s.name);
                }
                let track = video_track(&reader);
                assert_eq!(
                    (u32::from(track.width()), u32::from(track.height())),
                    (s.width, s.height),
                    "{}",
                    s.name
                );
                let brand = reader.ftyp.major_brand.to_string();
                match s.content_type {
                    "video/mp4" => {
                        assert!(brand == "isom" || brand == "iso5", "{}: {brand}", s.name)
                    }
                    "video/quicktime" => assert_eq!(brand, "qt  ", "{}", s.name),
                    other => panic!("{}: unexpected content type {other}", s.name),
                }
                assert!(s
                    .name
                    .ends_with(if brand == "qt  " { ".mov" } else { ".mp4" }));
            }
        }
    }
}

#[test]
fn named_samples_have_the_documented_properties() {
    let get = |name| sample(name).unwrap_or_else(|| panic!("sample {name} is missing"));
    assert_eq!(get("dance-31s.mp4").seconds, Some(31.0));
    assert_eq!(get("dance-12s.mov").content_type, "video/quicktime");
    assert_eq!(
        (
            get("tiny-320x240-8s.mp4").width,
            get("tiny-320x240-8s.mp4").height
        ),
        (320, 240)
    );
    assert!(get("huge-1900x1900.png").bytes.len() > 10 * 1024 * 1024);
    let truncated = get("dance-8s-truncated.mp4");
    assert_eq!(truncated.bytes.len(), get("dance-8s.mp4").bytes.len() / 2);
    assert_eq!(
        &truncated.bytes[..],
        &get("dance-8s.mp4").bytes[..truncated.bytes.len()]
    );
    let moov_end = &get("dance-8s-moov-end.mp4").bytes;
    assert_eq!(moov_end.len(), get("dance-8s.mp4").bytes.len());
    let ftyp_len = u32::from_be_bytes(moov_end[..4].try_into().unwrap()) as usize;
    assert_eq!(&moov_end[ftyp_len + 4..ftyp_len + 8], b"mdat");
    assert!(sample("no-such-file.mp4").is_none());
    assert_eq!(motionq_media::sample_names().count(), samples().len());
}
