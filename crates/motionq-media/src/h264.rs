//! A minimal H.264 (AVC) bitstream writer: Constrained Baseline profile, CAVLC, one slice per
//! picture, 4:2:0 8-bit.
//!
//! It produces exactly two kinds of picture, which is all a "real but cheap" test video needs:
//! - an IDR picture where every macroblock is `I_16x16` with DC prediction and no residual, so
//!   the decoded picture is flat mid-grey (DC prediction with no coded residual yields 128),
//!   costing one byte per macroblock;
//! - a P picture where every macroblock is skipped (a copy of the previous picture), costing a
//!   few bytes in total.
//!
//! Any even width and height works: the coded size is rounded up to whole macroblocks and the
//! SPS frame-cropping fields cut it back to the requested size.

/// Writes bits most-significant first, with Exp-Golomb helpers (H.264 §9.1).
struct BitWriter {
    bytes: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            current: 0,
            used: 0,
        }
    }

    fn bit(&mut self, on: bool) {
        self.current = (self.current << 1) | u8::from(on);
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    /// `count` low bits of `value`, most significant first (`count` <= 32).
    fn bits(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit((value >> i) & 1 == 1);
        }
    }

    /// Unsigned Exp-Golomb `ue(v)`.
    fn ue(&mut self, value: u32) {
        let coded = u64::from(value) + 1;
        let len = 64 - coded.leading_zeros();
        for _ in 0..len - 1 {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((coded >> i) & 1 == 1);
        }
    }

    /// Signed Exp-Golomb `se(v)`.
    fn se(&mut self, value: i32) {
        let mapped = if value > 0 {
            (value as u32) * 2 - 1
        } else {
            value.unsigned_abs() * 2
        };
        self.ue(mapped);
    }

    /// `rbsp_trailing_bits()`: a stop bit, then zero bits up to the byte boundary.
    fn finish(mut self) -> Vec<u8> {
        self.bit(true);
        while self.used != 0 {
            self.bit(false);
        }
        self.bytes
    }
}

/// Wraps an RBSP into a NAL unit (without start code or length prefix), inserting emulation
/// prevention bytes so that no `00 00 0x` (x <= 3) sequence appears in the payload.
fn nal_unit(nal_ref_idc: u8, nal_unit_type: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    out.push((nal_ref_idc << 5) | nal_unit_type);
    let mut zeros = 0;
    for &byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Smallest level whose MaxFS (max frame size in macroblocks, H.264 Table A-1) holds the frame.
fn level_idc(frame_mbs: u32) -> u8 {
    const LEVELS: [(u8, u32); 8] = [
        (30, 1_620),
        (31, 3_600),
        (32, 5_120),
        (40, 8_192),
        (50, 22_080),
        (51, 36_864),
        (52, 36_864),
        (60, 139_264),
    ];
    LEVELS
        .iter()
        .find(|(_, max_fs)| frame_mbs <= *max_fs)
        .map_or(62, |(level, _)| *level)
}

/// Number of `frame_num` values before wrapping (`log2_max_frame_num_minus4 = 0`).
pub(crate) const MAX_FRAME_NUM: u32 = 16;

/// Parameter sets plus the two picture kinds for one resolution.
pub(crate) struct Encoder {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    width_mbs: u32,
    height_mbs: u32,
}

impl Encoder {
    /// `width` and `height` must be even and non-zero (4:2:0 crops in units of two pixels).
    pub fn new(width: u32, height: u32) -> Self {
        assert!(
            width >= 2 && height >= 2 && width % 2 == 0 && height % 2 == 0,
            "H.264 4:2:0 needs even, non-zero dimensions (got {width}x{height})"
        );
        let width_mbs = width.div_ceil(16);
        let height_mbs = height.div_ceil(16);
        let crop_right = (width_mbs * 16 - width) / 2;
        let crop_bottom = (height_mbs * 16 - height) / 2;

        let mut sps = BitWriter::new();
        sps.bits(66, 8); // profile_idc: Baseline
        sps.bits(0b1100_0000, 8); // constraint_set0+1: Constrained Baseline
        sps.bits(u32::from(level_idc(width_mbs * height_mbs)), 8);
        sps.ue(0); // seq_parameter_set_id
        sps.ue(0); // log2_max_frame_num_minus4
        sps.ue(2); // pic_order_cnt_type 2: output order == decoding order, no B frames
        sps.ue(1); // max_num_ref_frames
        sps.bit(false); // gaps_in_frame_num_value_allowed_flag
        sps.ue(width_mbs - 1);
        sps.ue(height_mbs - 1);
        sps.bit(true); // frame_mbs_only_flag
        sps.bit(true); // direct_8x8_inference_flag
        if crop_right > 0 || crop_bottom > 0 {
            sps.bit(true);
            sps.ue(0);
            sps.ue(crop_right);
            sps.ue(0);
            sps.ue(crop_bottom);
        } else {
            sps.bit(false);
        }
        sps.bit(false); // vui_parameters_present_flag: timing lives in the container
        let sps = nal_unit(3, 7, &sps.finish());

        let mut pps = BitWriter::new();
        pps.ue(0); // pic_parameter_set_id
        pps.ue(0); // seq_parameter_set_id
        pps.bit(false); // entropy_coding_mode_flag: CAVLC
        pps.bit(false); // bottom_field_pic_order_in_frame_present_flag
        pps.ue(0); // num_slice_groups_minus1
        pps.ue(0); // num_ref_idx_l0_default_active_minus1
        pps.ue(0); // num_ref_idx_l1_default_active_minus1
        pps.bit(false); // weighted_pred_flag
        pps.bits(0, 2); // weighted_bipred_idc
        pps.se(0); // pic_init_qp_minus26
        pps.se(0); // pic_init_qs_minus26
        pps.se(0); // chroma_qp_index_offset
        pps.bit(true); // deblocking_filter_control_present_flag
        pps.bit(false); // constrained_intra_pred_flag
        pps.bit(false); // redundant_pic_cnt_present_flag
        let pps = nal_unit(3, 8, &pps.finish());

        Encoder {
            sps,
            pps,
            width_mbs,
            height_mbs,
        }
    }

    fn frame_mbs(&self) -> u32 {
        self.width_mbs * self.height_mbs
    }

    /// An IDR picture (NAL type 5). Consecutive IDR pictures must differ in `idr_pic_id`.
    pub fn idr(&self, idr_pic_id: u32) -> Vec<u8> {
        let mut w = BitWriter::new();
        w.ue(0); // first_mb_in_slice
        w.ue(7); // slice_type: I (all slices of the picture)
        w.ue(0); // pic_parameter_set_id
        w.bits(0, 4); // frame_num
        w.ue(idr_pic_id);
        w.bit(false); // no_output_of_prior_pics_flag
        w.bit(false); // long_term_reference_flag
        w.se(0); // slice_qp_delta
        w.ue(1); // disable_deblocking_filter_idc: nothing to smooth in a flat picture
        for _ in 0..self.frame_mbs() {
            w.ue(3); // mb_type I_16x16_2_0_0: DC prediction, no coded luma AC / chroma
            w.ue(0); // intra_chroma_pred_mode: DC
            w.se(0); // mb_qp_delta
            w.bit(true); // Intra16x16DCLevel coeff_token: TotalCoeff 0 (nC is always 0 here)
        }
        nal_unit(3, 5, &w.finish())
    }

    /// A P picture (NAL type 1) where every macroblock is skipped.
    pub fn p_skip(&self, frame_num: u32) -> Vec<u8> {
        let mut w = BitWriter::new();
        w.ue(0); // first_mb_in_slice
        w.ue(5); // slice_type: P (all slices of the picture)
        w.ue(0); // pic_parameter_set_id
        w.bits(frame_num % MAX_FRAME_NUM, 4);
        w.bit(false); // num_ref_idx_active_override_flag
        w.bit(false); // ref_pic_list_modification_flag_l0
        w.bit(false); // adaptive_ref_pic_marking_mode_flag: sliding window
        w.se(0); // slice_qp_delta
        w.ue(1); // disable_deblocking_filter_idc
        w.ue(self.frame_mbs()); // mb_skip_run covering the whole picture
        nal_unit(2, 1, &w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_match_the_standard_table() {
        let mut w = BitWriter::new();
        // ue: 0 -> 1, 1 -> 010, 2 -> 011, 3 -> 00100; se: -1 -> 011 (k=2)
        w.ue(0);
        w.ue(1);
        w.ue(2);
        w.ue(3);
        w.se(-1);
        // 1 010 011 00100 011 + stop bit 1 -> 1010 0110 0100 0111, already byte aligned
        assert_eq!(w.finish(), vec![0b1010_0110, 0b0100_0111]);
    }

    #[test]
    fn emulation_prevention_escapes_start_code_patterns() {
        let nal = nal_unit(3, 5, &[0, 0, 1, 0, 0, 0, 0, 0, 3, 0xff]);
        assert_eq!(nal, vec![0x65, 0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 0, 3, 0xff]);
    }

    #[test]
    fn sps_describes_size_level_and_cropping() {
        let enc = Encoder::new(1080, 1920);
        assert_eq!(enc.sps[0], 0x67);
        assert_eq!(enc.sps[1], 66);
        assert_eq!(enc.sps[3], 40, "1080x1920 is 8160 macroblocks: level 4.0");
        assert_eq!(Encoder::new(720, 1280).sps[3], 31);
        assert_eq!(enc.frame_mbs(), 68 * 120);
        // One byte per macroblock plus a short header.
        let idr = enc.idr(0);
        assert!(idr.len() > 8160 && idr.len() < 8200, "{}", idr.len());
        assert!(enc.p_skip(1).len() < 16);
    }

    #[test]
    #[should_panic(expected = "even")]
    fn odd_dimensions_are_rejected() {
        Encoder::new(721, 1280);
    }
}
