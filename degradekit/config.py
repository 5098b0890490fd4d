"""The degradation config: frozen dataclasses, the paper presets (as code), strict TOML load and dump.

`preset("realesrgan")` is spec/realesrgan-model.md; `preset("realesrgan-x2")` is the same model at scale 2
(Real-ESRGAN's x2 model is trained with the same degradation settings and scale 2).  `preset("realworld")` (and
"realworld-x2") mixes in the issue-11 vocabulary (codecs, resize filters, blur and noise kinds, halos, banding,
dither, a shuffled stage): every new field defaults to "off", so the Real-ESRGAN presets draw exactly as 0.1.

TOML files may be partial: keys they give override the preset named by a top-level `preset = "..."`
(default "realesrgan").  `[[stages]]` tables: the number written is the number of stage settings of the result;
table i starts from the preset's stage min(i, n - 1) and overrides the keys it gives (write an empty
`[[stages]]` to keep a preset stage).  In the pipeline, stage i (1-based) uses stages[min(i, len) - 1].

Everything is validated before any work: unknown keys, wrong types, out-of-range values, lo > hi and
probabilities that do not sum to 1 raise `ConfigError("FILE: dotted.key: problem")` (one line).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

PI = math.pi
MODES = ("area", "bilinear", "bicubic")
SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
MAX_KERNEL_SIZE = 21
# The issue-11 vocabulary.  Copies of the ops' tuples (tests check they are equal) so that importing the config
# (every CLI --help) does not import the ops.
FILTERS = ("nearest", "box", "bilinear", "hamming", "bicubic_a50", "bicubic_a75", "mitchell", "catmull_rom",
           "lanczos3", "lanczos4", "gaussian")                                    # = ops.resample.FILTERS
DITHER_METHODS = ("bayer2", "bayer4", "bayer8", "floyd_steinberg", "jarvis", "stucki", "atkinson", "burkes",
                  "sierra")                                                       # = ops.dither.DITHER_METHODS
SUBSAMPLINGS = ("444", "422", "420", "440")
VIDEO_CODECS = ("h264", "hevc", "mpeg2", "mpeg4", "vp9", "av1")                    # keys of ops.video.VIDEO_CODECS
CODECS = ("jpeg", "webp", "avif", "jpeg2000") + VIDEO_CODECS
#: a stage's steps in the fixed order ("jpeg" is the compression step, whatever the codec)
STEPS = ("blur", "resize", "halo", "noise", "color", "banding", "dither", "jpeg")
#: the largest intermediate image a config may produce (check_size_bound): 64 Mpx = 768 MB as float32 RGB
MAX_INTERMEDIATE_PIXELS = 64_000_000


class ConfigError(ValueError):
    """A config that cannot be used; str(e) is one line: "SOURCE: dotted.key: problem"."""


def _f(default, doc: str, **checks):
    """A dataclass field with its documentation and value checks (used by validate_config and the README).

    checks: lo/hi (inclusive bounds; lo_open=True makes lo exclusive) applied to a number or to every element
    of a tuple; odd; choices; nonempty; unique.  Two-element float tuples are ranges [lo, hi] with lo <= hi.
    """
    return field(default=default, metadata={"doc": doc, **checks})


def _check_weights(name: str, choices: tuple, weights: tuple):
    """Problems of the optional weights `name` of the choice tuple `choices` (empty weights = uniform)."""
    if not weights:
        return
    if len(weights) != len(choices):
        yield name, f"{len(weights)} weights for {len(choices)} choices (give one per choice, or none)"
    elif abs(sum(weights) - 1.0) > 1e-6:
        yield name, f"weights sum to {sum(weights):.6g}, must sum to 1"


def _check_at_most_one(table_names: tuple[str, ...], obj):
    total = sum(getattr(obj, n) for n in table_names)
    if total > 1.0 + 1e-9:
        yield table_names[-1], f"{' + '.join(table_names)} = {total:.6g}, must be <= 1"


# ----------------------------------------------------------------------------------------------- dataclasses

@dataclass(frozen=True)
class KindWeights:
    """Weights of the six non-sinc kernel kinds (must sum to 1)."""
    iso: float = _f(0.45, "isotropic Gaussian", lo=0.0, hi=1.0)
    aniso: float = _f(0.25, "anisotropic Gaussian", lo=0.0, hi=1.0)
    generalized_iso: float = _f(0.12, "isotropic generalized Gaussian", lo=0.0, hi=1.0)
    generalized_aniso: float = _f(0.03, "anisotropic generalized Gaussian", lo=0.0, hi=1.0)
    plateau_iso: float = _f(0.12, "isotropic plateau", lo=0.0, hi=1.0)
    plateau_aniso: float = _f(0.03, "anisotropic plateau", lo=0.0, hi=1.0)

    def _checks(self):
        total = sum(dataclasses.astuple(self))
        if abs(total - 1.0) > 1e-6:
            yield "", f"weights sum to {total:.6g}, must sum to 1"


@dataclass(frozen=True)
class KernelConfig:
    """How one stage's blur kernel is drawn (spec section 2)."""
    sizes: tuple[int, ...] = _f(SIZES, "kernel sizes k (uniform choice)", lo=1,
                                hi=MAX_KERNEL_SIZE, odd=True, nonempty=True, unique=True)
    sinc_prob: float = _f(0.1, "probability of a sinc kernel (else one of the six kinds)", lo=0.0, hi=1.0)
    sinc_omega_small: tuple[float, float] = _f((PI / 3, PI), "sinc cutoff omega_c range (rad/px) when "
                                               "k < sinc_large_from", lo=0.0, lo_open=True, hi=PI)
    sinc_omega_large: tuple[float, float] = _f((PI / 5, PI), "sinc cutoff omega_c range (rad/px) when "
                                               "k >= sinc_large_from", lo=0.0, lo_open=True, hi=PI)
    sinc_large_from: int = _f(13, "size from which sinc_omega_large applies", lo=1)
    weights: KindWeights = _f(KindWeights(), "weights of the six non-sinc kinds (sum 1)")
    sigma: tuple[float, float] = _f((0.2, 3.0), "sigma_x (and sigma_y for anisotropic kinds) range, px",
                                    lo=0.0, lo_open=True, hi=100.0)
    theta: tuple[float, float] = _f((-PI, PI), "rotation range of anisotropic kinds, radians",
                                    lo=-2 * PI, hi=2 * PI)
    generalized_beta: tuple[float, float] = _f((0.5, 4.0), "generalized Gaussian beta range [lo <= 1 <= hi]; "
                                               "beta ~ U(lo, 1) with beta_low_prob, else U(1, hi)",
                                               lo=0.0, lo_open=True, hi=100.0)
    plateau_beta: tuple[float, float] = _f((1.0, 2.0), "plateau beta range [lo <= 1 <= hi], split like "
                                           "generalized_beta (so lo = 1 gives beta = 1 with beta_low_prob)",
                                           lo=0.0, lo_open=True, hi=100.0)
    beta_low_prob: float = _f(0.5, "probability of drawing beta below 1 (from U(lo, 1))", lo=0.0, hi=1.0)
    pool_prob: float = _f(0.0, "probability of a kernel from the --pool (RealSR) instead", lo=0.0, hi=1.0)
    box_prob: float = _f(0.0, "probability of a box blur (of a non-pool kernel; box, disk, motion and median "
                         "together <= 1, sinc and the six kinds share the rest)", lo=0.0, hi=1.0)
    disk_prob: float = _f(0.0, "probability of a disk (defocus) blur", lo=0.0, hi=1.0)
    motion_prob: float = _f(0.0, "probability of a linear motion blur", lo=0.0, hi=1.0)
    median_prob: float = _f(0.0, "probability of a median filter (not a kernel: ops.median)", lo=0.0, hi=1.0)
    box_size: tuple[float, float] = _f((1.0, 3.0), "box side range, px (fractional: edge taps weighted)",
                                       lo=1.0, hi=float(MAX_KERNEL_SIZE))
    disk_radius: tuple[float, float] = _f((0.5, 3.0), "disk radius range, px", lo=0.0, lo_open=True,
                                          hi=(MAX_KERNEL_SIZE - 1) / 2)
    motion_length: tuple[float, float] = _f((1.0, 9.0), "motion segment length range, px", lo=1.0,
                                            hi=float(MAX_KERNEL_SIZE - 2))
    motion_angle: tuple[float, float] = _f((-180.0, 180.0), "motion direction range, degrees counter-clockwise "
                                           "from +x", lo=-360.0, hi=360.0)
    median_sizes: tuple[int, ...] = _f((3, 5), "median window sizes (uniform choice)", lo=3, hi=15, odd=True,
                                       nonempty=True, unique=True)

    def _checks(self):
        yield from _check_at_most_one(("box_prob", "disk_prob", "motion_prob", "median_prob"), self)
        for name in ("generalized_beta", "plateau_beta"):
            lo, hi = getattr(self, name)
            if not lo <= 1.0 <= hi:
                yield name, f"range [{lo}, {hi}] must contain 1 (beta is drawn from U(lo, 1) or U(1, hi))"


@dataclass(frozen=True)
class ResizeConfig:
    """One stage's random resize."""
    up_prob: float = _f(0.2, "probability of upscaling", lo=0.0, hi=1.0)
    down_prob: float = _f(0.7, "probability of downscaling", lo=0.0, hi=1.0)
    keep_prob: float = _f(0.1, "probability of factor 1", lo=0.0, hi=1.0)
    up: tuple[float, float] = _f((1.0, 1.5), "upscale factor range", lo=1.0, hi=16.0)
    down: tuple[float, float] = _f((0.15, 1.0), "downscale factor range", lo=0.0, lo_open=True, hi=1.0)
    modes: tuple[str, ...] = _f(MODES, "interpolation modes (uniform choice)", choices=MODES, nonempty=True,
                                unique=True)
    size_ref: str = _f("current", "output size: \"current\" = floor(current * s); \"final\" = "
                       "int((HR // scale) * s) (the reference's stage-2 rule)", choices=("current", "final"))
    filter_prob: float = _f(0.0, "probability of resampling with one of `filters` (ops.resample) instead of "
                            "one of `modes`", lo=0.0, hi=1.0)
    filters: tuple[str, ...] = _f(FILTERS, "resampling filters (choice, see filter_weights)", choices=FILTERS,
                                  nonempty=True, unique=True)
    filter_weights: tuple[float, ...] = _f((), "weights of `filters` (sum 1; empty = uniform)", lo=0.0, hi=1.0)
    antialias_prob: float = _f(0.0, "probability that a filter resize is antialiased (support scaled with the "
                               "factor when shrinking, as Pillow/MATLAB; else interpolating as OpenCV)",
                               lo=0.0, hi=1.0)
    down_up_prob: float = _f(0.0, "probability of a down-up chain: first to floor(target * f) with a second "
                             "drawn mode/filter, then to the target", lo=0.0, hi=1.0)
    down_up: tuple[float, float] = _f((0.5, 0.9), "down-up chain factor f range", lo=0.0, lo_open=True, hi=1.0)

    def _checks(self):
        yield from _check_weights("filter_weights", self.filters, self.filter_weights)
        total = self.up_prob + self.down_prob + self.keep_prob
        if abs(total - 1.0) > 1e-6:
            yield "", f"up_prob + down_prob + keep_prob = {total:.6g}, must sum to 1"


@dataclass(frozen=True)
class NoiseConfig:
    """One stage's noise."""
    gaussian_prob: float = _f(0.5, "probability of Gaussian noise (else Poisson)", lo=0.0, hi=1.0)
    gaussian_sigma: tuple[float, float] = _f((1.0, 30.0), "Gaussian sigma range on the 0-255 scale",
                                             lo=0.0, hi=255.0)
    poisson_scale: tuple[float, float] = _f((0.05, 3.0), "Poisson noise scale range", lo=0.0, hi=100.0)
    gray_prob: float = _f(0.4, "probability of gray noise (one field for the 3 channels)", lo=0.0, hi=1.0)
    pool_prob: float = _f(0.0, "probability of a noise patch from the --pool (RealSR) instead", lo=0.0,
                          hi=1.0)
    uniform_prob: float = _f(0.0, "probability of uniform noise instead of Gaussian/Poisson (uniform, speckle "
                             "and salt-and-pepper together <= 1)", lo=0.0, hi=1.0)
    speckle_prob: float = _f(0.0, "probability of speckle (multiplicative) noise instead", lo=0.0, hi=1.0)
    salt_pepper_prob: float = _f(0.0, "probability of salt-and-pepper noise instead (gray_prob of them hit the "
                                 "three channels of a pixel at once)", lo=0.0, hi=1.0)
    uniform_amplitude: tuple[float, float] = _f((1.0, 20.0), "uniform noise amplitude range (U(-a, a), 0-255 "
                                                "scale)", lo=0.0, hi=255.0)
    speckle_sigma: tuple[float, float] = _f((5.0, 30.0), "speckle sigma range (c + c n, n ~ N(0, sigma / 255))",
                                            lo=0.0, hi=255.0)
    salt_pepper_amount: tuple[float, float] = _f((0.001, 0.01), "fraction of pixels set to 0 or 1", lo=0.0,
                                                 hi=1.0)
    salt_ratio: tuple[float, float] = _f((0.3, 0.7), "share of salt (1) among the set pixels", lo=0.0, hi=1.0)
    luma_prob: float = _f(0.0, "probability that Gaussian/uniform/speckle noise is on luma (BT.601 Y) only",
                          lo=0.0, hi=1.0)
    chroma_prob: float = _f(0.0, "probability that it is on chroma (Cb, Cr) only (else gray_prob decides "
                            "gray / per channel)", lo=0.0, hi=1.0)

    def _checks(self):
        yield from _check_at_most_one(("uniform_prob", "speckle_prob", "salt_pepper_prob"), self)
        yield from _check_at_most_one(("luma_prob", "chroma_prob"), self)


@dataclass(frozen=True)
class JpegConfig:
    """JPEG compression with a real libjpeg codec."""
    quality: tuple[float, float] = _f((30.0, 95.0), "quality range; quality = round(U(lo, hi)), an integer",
                                      lo=1.0, hi=100.0)
    subsampling: tuple[str, ...] = _f(("420",), "chroma subsampling choices (4:2:0 is Real-ESRGAN's)",
                                      choices=SUBSAMPLINGS, nonempty=True, unique=True)
    subsampling_weights: tuple[float, ...] = _f((), "weights of `subsampling` (sum 1; empty = uniform)",
                                                lo=0.0, hi=1.0)

    def _checks(self):
        yield from _check_weights("subsampling_weights", self.subsampling, self.subsampling_weights)


@dataclass(frozen=True)
class CodecWeights:
    """Weights of the codecs of a compression step (sum 1)."""
    jpeg: float = _f(1.0, "JPEG (libjpeg via OpenCV; quality and subsampling in the jpeg table)", lo=0.0, hi=1.0)
    webp: float = _f(0.0, "WebP, lossy (libwebp via Pillow)", lo=0.0, hi=1.0)
    avif: float = _f(0.0, "AVIF (libavif + libaom via Pillow)", lo=0.0, hi=1.0)
    jpeg2000: float = _f(0.0, "JPEG 2000 (OpenJPEG via Pillow, one layer at a compression ratio)", lo=0.0,
                         hi=1.0)
    h264: float = _f(0.0, "an H.264 intra frame (libx264 via PyAV)", lo=0.0, hi=1.0)
    hevc: float = _f(0.0, "an HEVC frame (libx265 via PyAV)", lo=0.0, hi=1.0)
    mpeg2: float = _f(0.0, "an MPEG-2 frame (FFmpeg's mpeg2video)", lo=0.0, hi=1.0)
    mpeg4: float = _f(0.0, "an MPEG-4 Part 2 frame (FFmpeg's mpeg4)", lo=0.0, hi=1.0)
    vp9: float = _f(0.0, "a VP9 frame (libvpx-vp9 via PyAV)", lo=0.0, hi=1.0)
    av1: float = _f(0.0, "an AV1 frame (libsvtav1 via PyAV)", lo=0.0, hi=1.0)

    def _checks(self):
        total = sum(dataclasses.astuple(self))
        if abs(total - 1.0) > 1e-6:
            yield "", f"weights sum to {total:.6g}, must sum to 1"

    def used(self) -> tuple[str, ...]:
        """The codecs with weight > 0, in CODECS order."""
        return tuple(c for c in CODECS if getattr(self, c) > 0)


@dataclass(frozen=True)
class WebpConfig:
    quality: tuple[int, int] = _f((40, 95), "lossy quality range (integers, uniform)", lo=1, hi=100)


@dataclass(frozen=True)
class AvifConfig:
    quality: tuple[int, int] = _f((40, 90), "quality range (integers, uniform)", lo=0, hi=100)
    speed: tuple[int, int] = _f((6, 8), "encoder speed range (integers; higher = faster, coarser)", lo=0, hi=10)


@dataclass(frozen=True)
class Jpeg2000Config:
    rate: tuple[float, float] = _f((10.0, 60.0), "compression rate range (ratio to the raw size)", lo=1.0,
                                   hi=1000.0)


@dataclass(frozen=True)
class VideoConfig:
    """One video codec's still-frame settings (checked against ops.video.VIDEO_CODECS)."""
    quality: tuple[int, int] = _f((20, 32), "crf (h264, hevc, vp9, av1) or qscale (mpeg2, mpeg4) range, "
                                  "integers", lo=0, hi=63)
    presets: tuple[str, ...] = _f(("medium",), "encoder presets (uniform choice): x264/x265 ultrafast..placebo, "
                                  "vp9 best|good|realtime, av1 (SVT-AV1) \"0\"..\"13\"", nonempty=True,
                                  unique=True)
    pix_fmts: tuple[str, ...] = _f(("yuv420p",), "pixel formats (uniform choice): yuv420p, yuv444p, "
                                   "yuv420p10le, yuv444p10le (those the installed encoder has)", nonempty=True,
                                   unique=True)


@dataclass(frozen=True)
class CompressionConfig:
    """The codec choice of a compression step and each codec's settings (JPEG's are the jpeg table)."""
    weights: CodecWeights = _f(CodecWeights(), "codec weights (sum 1)")
    webp: WebpConfig = _f(WebpConfig(), "WebP settings")
    avif: AvifConfig = _f(AvifConfig(), "AVIF settings")
    jpeg2000: Jpeg2000Config = _f(Jpeg2000Config(), "JPEG 2000 settings")
    h264: VideoConfig = _f(VideoConfig((18, 32), ("medium",), ("yuv420p",)), "H.264 settings (crf)")
    hevc: VideoConfig = _f(VideoConfig((20, 34), ("medium",), ("yuv420p",)), "HEVC settings (crf)")
    mpeg2: VideoConfig = _f(VideoConfig((2, 12), ("",), ("yuv420p",)), "MPEG-2 settings (qscale; no presets: \"\")")
    mpeg4: VideoConfig = _f(VideoConfig((2, 12), ("",), ("yuv420p",)), "MPEG-4 Part 2 settings (qscale; no presets)")
    vp9: VideoConfig = _f(VideoConfig((20, 40), ("good",), ("yuv420p",)), "VP9 settings (crf)")
    av1: VideoConfig = _f(VideoConfig((25, 45), ("8",), ("yuv420p",)), "AV1 settings (SVT-AV1 crf)")

    def _checks(self):
        # Only codecs with weight > 0 are checked against the installed libraries: the presets that use
        # JPEG alone never import PyAV.
        used = [c for c in self.weights.used() if c != "jpeg"]
        if not used:
            return
        from degradekit.ops import codec_info

        for codec in used:
            try:
                codec_info.require(codec)
            except ValueError as e:
                yield f"weights.{codec}", str(e)
                return
        video = [c for c in used if c in VIDEO_CODECS]
        if not video:
            return
        from degradekit.ops.video import VIDEO_CODECS as SPEC

        for codec in video:
            vc, spec = getattr(self, codec), SPEC[codec]
            lo, hi = spec.quality_range
            for i, q in enumerate(vc.quality):
                if not lo <= q <= hi:
                    yield f"{codec}.quality[{i}]", f"{q} out of range, must be in [{lo}, {hi}] for {codec}"
            for field_name, allowed in (("presets", spec.presets), ("pix_fmts", spec.pix_fmts)):
                for i, v in enumerate(getattr(vc, field_name)):
                    if v not in allowed:
                        yield (f"{codec}.{field_name}[{i}]",
                               f"{v!r} is not one of {', '.join(map(repr, allowed))} for {codec}")


@dataclass(frozen=True)
class HaloConfig:
    """Oversharpening halos: img + amount (img - G_radius) where |img - G| * 255 > threshold."""
    amount: tuple[float, float] = _f((0.5, 1.5), "sharpening amount range", lo=0.0, hi=10.0)
    radius: tuple[float, float] = _f((0.8, 2.0), "Gaussian sigma range, px", lo=0.0, hi=20.0)
    threshold: tuple[float, float] = _f((0.0, 5.0), "threshold range on the 0-255 scale", lo=0.0, hi=255.0)


@dataclass(frozen=True)
class BandingConfig:
    """Bit-depth reduction (banding): rint(x (2^bits - 1)) / (2^bits - 1)."""
    bits: tuple[int, ...] = _f((5, 6), "bits per channel (uniform choice)", lo=1, hi=8, nonempty=True,
                               unique=True)


@dataclass(frozen=True)
class DitherConfig:
    """Quantisation to a few levels with ordered or error-diffusion dithering."""
    levels: tuple[int, int] = _f((4, 32), "levels per channel range (integers, uniform)", lo=2, hi=256)
    methods: tuple[str, ...] = _f(DITHER_METHODS, "dithering methods (uniform choice)", choices=DITHER_METHODS,
                                  nonempty=True, unique=True)


@dataclass(frozen=True)
class ColorConfig:
    """Colour/brightness/gamma jitter (opt-in: a colour shift between HR and LR teaches a network to shift
    colours)."""
    brightness: tuple[float, float] = _f((-0.03, 0.03), "brightness offset range", lo=-1.0, hi=1.0)
    contrast: tuple[float, float] = _f((0.95, 1.05), "contrast factor range", lo=0.0, hi=10.0)
    saturation: tuple[float, float] = _f((0.9, 1.1), "saturation factor range", lo=0.0, hi=10.0)
    gamma: tuple[float, float] = _f((0.95, 1.05), "gamma range", lo=0.0, lo_open=True, hi=10.0)


@dataclass(frozen=True)
class StageConfig:
    """One degradation stage: blur, resize, noise, compression (each with its probability), optional halo,
    colour, banding and dither steps, in the fixed order or shuffled."""
    blur_prob: float = _f(1.0, "probability of the blur", lo=0.0, hi=1.0)
    kernel: KernelConfig = _f(KernelConfig(), "the blur kernel")
    resize: ResizeConfig = _f(ResizeConfig(), "the random resize (always applied; keep_prob gives factor 1)")
    noise_prob: float = _f(1.0, "probability of the noise", lo=0.0, hi=1.0)
    noise: NoiseConfig = _f(NoiseConfig(), "the noise")
    jpeg_prob: float = _f(1.0, "probability of the compression step (codec: compression.weights)", lo=0.0,
                          hi=1.0)
    jpeg: JpegConfig = _f(JpegConfig(), "the JPEG settings")
    compression: CompressionConfig = _f(CompressionConfig(), "the codec choice of the compression step")
    halo_prob: float = _f(0.0, "probability of oversharpening halos (after the resize)", lo=0.0, hi=1.0)
    halo: HaloConfig = _f(HaloConfig(), "the oversharpening")
    color_prob: float = _f(0.0, "probability of colour jitter; opt-in: it teaches a network to shift colours",
                           lo=0.0, hi=1.0)
    color: ColorConfig = _f(ColorConfig(), "the colour jitter")
    banding_prob: float = _f(0.0, "probability of banding (bit-depth reduction)", lo=0.0, hi=1.0)
    banding: BandingConfig = _f(BandingConfig(), "the banding")
    dither_prob: float = _f(0.0, "probability of dithered quantisation", lo=0.0, hi=1.0)
    dither: DitherConfig = _f(DitherConfig(), "the dithering")
    step_order: str = _f("fixed", "\"fixed\": blur, resize, halo, noise, color, banding, dither, jpeg; "
                         "\"shuffle\": a uniform random order of the steps the stage can take, per sample",
                         choices=("fixed", "shuffle"))

    def steps(self) -> tuple[str, ...]:
        """The steps this stage can take (probability > 0; the resize always), in the fixed order."""
        probs = {"blur": self.blur_prob, "resize": 1.0, "halo": self.halo_prob, "noise": self.noise_prob,
                 "color": self.color_prob, "banding": self.banding_prob, "dither": self.dither_prob,
                 "jpeg": self.jpeg_prob}
        return tuple(s for s in STEPS if probs[s] > 0)


@dataclass(frozen=True)
class UsmConfig:
    """Unsharp mask of the HR; (!) the reference synthesizes the LR from the sharpened HR."""
    enabled: bool = _f(True, "sharpen the HR before stage 1")
    radius: int = _f(51, "Gaussian kernel size, odd", lo=1, hi=255, odd=True)
    sigma: float = _f(0.0, "Gaussian sigma; 0 = OpenCV's rule for the size (8.0 for 51)", lo=0.0, hi=100.0)
    weight: float = _f(0.5, "sharpening weight", lo=0.0, hi=10.0)
    threshold: float = _f(10.0, "mask threshold on the 0-255 scale", lo=0.0, hi=255.0)


@dataclass(frozen=True)
class FinalConfig:
    """The final step: (A) resize, sinc, JPEG or (B) JPEG, resize, sinc; then 8-bit quantisation."""
    resize_first_prob: float = _f(0.5, "probability of order (A) resize-sinc-JPEG (else (B) JPEG-resize-sinc)",
                                  lo=0.0, hi=1.0)
    modes: tuple[str, ...] = _f(MODES, "modes of the resize to HR // scale (uniform choice)", choices=MODES,
                                nonempty=True, unique=True)
    sinc_prob: float = _f(0.8, "probability of the sinc filter (else identity)", lo=0.0, hi=1.0)
    sinc_sizes: tuple[int, ...] = _f(SIZES, "sinc kernel sizes (uniform choice)", lo=1,
                                     hi=MAX_KERNEL_SIZE, odd=True, nonempty=True, unique=True)
    sinc_omega: tuple[float, float] = _f((PI / 3, PI), "sinc cutoff omega_c range (rad/px), every size",
                                         lo=0.0, lo_open=True, hi=PI)
    jpeg: JpegConfig = _f(JpegConfig(), "the final JPEG settings")
    filter_prob: float = _f(0.0, "probability of resampling to HR // scale with one of `filters` instead of "
                            "one of `modes`", lo=0.0, hi=1.0)
    filters: tuple[str, ...] = _f(FILTERS, "resampling filters (choice, see filter_weights)", choices=FILTERS,
                                  nonempty=True, unique=True)
    filter_weights: tuple[float, ...] = _f((), "weights of `filters` (sum 1; empty = uniform)", lo=0.0, hi=1.0)
    antialias_prob: float = _f(0.0, "probability that a filter resize is antialiased", lo=0.0, hi=1.0)
    compression: CompressionConfig = _f(CompressionConfig(), "the codec choice of the final compression "
                                        "(always applied)")

    def _checks(self):
        yield from _check_weights("filter_weights", self.filters, self.filter_weights)


# Real-ESRGAN's second stage (the first stage is StageConfig()).
_REALESRGAN_STAGE2 = StageConfig(
    blur_prob=0.8,
    kernel=KernelConfig(sigma=(0.2, 1.5)),
    resize=ResizeConfig(up_prob=0.3, down_prob=0.4, keep_prob=0.3, up=(1.0, 1.2), down=(0.3, 1.0),
                        size_ref="final"),
    noise=NoiseConfig(gaussian_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5)),
    jpeg_prob=0.0,  # the final step does stage 2's JPEG
)


@dataclass(frozen=True)
class DegradeConfig:
    """The whole Real-ESRGAN degradation model; the defaults are the `realesrgan` preset."""
    scale: int = _f(4, "downscaling factor: LR size = HR size // scale", choices=(1, 2, 4))
    order: int = _f(2, "number of degradation stages (1, 2 or more; the model is 2)", lo=1, hi=16)
    usm: UsmConfig = _f(UsmConfig(), "the unsharp mask of the HR")
    stages: tuple[StageConfig, ...] = _f((StageConfig(), _REALESRGAN_STAGE2),
                                         "stage settings; stage i uses stages[min(i, len) - 1]", nonempty=True)
    final: FinalConfig = _f(FinalConfig(), "the final step")

    def to_dict(self) -> dict:
        """Every key as plain JSON/TOML types (lists for tuples); `DegradeConfig.from_dict` reads it back."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "DegradeConfig":
        """A validated config from a (possibly partial) dict shaped like the TOML file (see config_from_dict)."""
        return config_from_dict(data, source)


# --------------------------------------------------------------------------------------------------- presets

# `realworld`: general real-world photos (docs/degradations.md gives the mix and why).  Real-ESRGAN's two
# stages and final step, with the kinds real inputs show: defocus/motion blur, Lanczos/bicubic resizes done by
# editors and browsers (mostly antialiased), luma-heavy sensor noise, in-camera oversharpening, phone JPEG 4:2:0
# and web WebP in stage 1; the last save (final) is JPEG, WebP, AVIF or a video frame.  Colour jitter stays 0.
_WEB_FILTERS = ("lanczos3", "bicubic_a50", "bicubic_a75", "mitchell", "bilinear", "hamming", "box", "lanczos4",
                "nearest")
_WEB_FILTER_WEIGHTS = (0.3, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05)
_PHONE_JPEG = JpegConfig(quality=(40.0, 95.0), subsampling=("420", "422", "444"),
                         subsampling_weights=(0.75, 0.1, 0.15))
_REALWORLD_STAGE1 = StageConfig(
    blur_prob=0.9,
    kernel=KernelConfig(disk_prob=0.1, motion_prob=0.08, box_prob=0.03, median_prob=0.02),
    resize=ResizeConfig(filter_prob=0.5, filters=_WEB_FILTERS, filter_weights=_WEB_FILTER_WEIGHTS,
                        antialias_prob=0.7, down_up_prob=0.1),
    noise_prob=0.8,
    noise=NoiseConfig(gaussian_prob=0.6, gaussian_sigma=(1.0, 20.0), poisson_scale=(0.05, 2.0), gray_prob=0.3,
                      luma_prob=0.4, chroma_prob=0.1, speckle_prob=0.05, uniform_prob=0.03,
                      salt_pepper_prob=0.01),
    jpeg_prob=0.9,
    jpeg=_PHONE_JPEG,
    # stage 1 runs at up to the HR size: the slow encoders (AVIF, HEVC, VP9, AV1) are left to the final save
    compression=CompressionConfig(weights=CodecWeights(jpeg=0.75, webp=0.15, h264=0.07, jpeg2000=0.03),
                                  h264=VideoConfig((18, 30), ("veryfast", "medium"), ("yuv420p",))),
    halo_prob=0.1,
    halo=HaloConfig(amount=(0.3, 1.2), radius=(0.8, 2.0), threshold=(0.0, 4.0)),
    banding_prob=0.03,
    dither_prob=0.02,
    dither=DitherConfig(levels=(8, 32)),
)
_REALWORLD_STAGE2 = StageConfig(
    blur_prob=0.6,
    kernel=KernelConfig(sigma=(0.2, 1.5), disk_prob=0.05, motion_prob=0.05, box_prob=0.05,
                        disk_radius=(0.5, 2.0), motion_length=(1.0, 5.0)),
    resize=ResizeConfig(up_prob=0.3, down_prob=0.4, keep_prob=0.3, up=(1.0, 1.2), down=(0.3, 1.0),
                        size_ref="final", filter_prob=0.6, filters=_WEB_FILTERS,
                        filter_weights=_WEB_FILTER_WEIGHTS, antialias_prob=0.7),
    noise_prob=0.5,
    noise=NoiseConfig(gaussian_sigma=(1.0, 10.0), poisson_scale=(0.05, 1.0), luma_prob=0.4, chroma_prob=0.1),
    jpeg_prob=0.0,  # the final step is the last save
    halo_prob=0.1,
    halo=HaloConfig(amount=(0.3, 1.0), radius=(0.8, 1.5), threshold=(0.0, 4.0)),
    step_order="shuffle",  # re-edits come in any order
)
_REALWORLD_FINAL = FinalConfig(
    filter_prob=0.5, filters=_WEB_FILTERS, filter_weights=_WEB_FILTER_WEIGHTS, antialias_prob=0.7,
    sinc_prob=0.4,
    jpeg=_PHONE_JPEG,
    compression=CompressionConfig(
        weights=CodecWeights(jpeg=0.45, webp=0.2, avif=0.1, h264=0.1, hevc=0.05, vp9=0.05, av1=0.05),
        webp=WebpConfig((40, 95)), avif=AvifConfig((40, 85), (6, 8)),
        h264=VideoConfig((18, 32), ("veryfast", "medium"), ("yuv420p", "yuv444p")),
        hevc=VideoConfig((20, 34), ("fast", "medium"), ("yuv420p",)),
        vp9=VideoConfig((20, 40), ("good", "realtime"), ("yuv420p",)),
        av1=VideoConfig((25, 45), ("8", "10"), ("yuv420p",))),
)
_REALWORLD = DegradeConfig(stages=(_REALWORLD_STAGE1, _REALWORLD_STAGE2), final=_REALWORLD_FINAL)

PRESETS = {
    "realesrgan": DegradeConfig(),                # spec/realesrgan-model.md, x4
    "realesrgan-x2": DegradeConfig(scale=2),      # the same degradation at scale 2 (Real-ESRGAN's x2 model)
    "realworld": _REALWORLD,                      # the issue-11 mix for general real-world photos, x4
    "realworld-x2": dataclasses.replace(_REALWORLD, scale=2),
}


def preset(name: str = "realesrgan") -> DegradeConfig:
    """A named preset (see PRESETS): "realesrgan" (x4, the spec), "realesrgan-x2", "realworld" (x4, the
    issue-11 mix for real-world photos) or "realworld-x2"."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def stage_config(cfg: DegradeConfig, i: int) -> StageConfig:
    """The settings of stage i (1-based): stages[min(i, len) - 1]."""
    return cfg.stages[min(i, len(cfg.stages)) - 1]


def check_size_bound(cfg: DegradeConfig, hr_hw: tuple[int, int], source: str) -> None:
    """Reject a config whose largest reachable intermediate image exceeds MAX_INTERMEDIATE_PIXELS.

    hr_hw: the HR size (synth: the patch; preview: the image).  Every stage is taken at its largest reachable
    factor (up[1] when up_prob > 0, else 1 when keep_prob > 0, else down[1]), honouring size_ref exactly as
    `apply` does.  Raises ConfigError("SOURCE: stages[k].resize.up: ...") (one line) before any work.
    """
    h, w = int(hr_hw[0]), int(hr_hw[1])
    limit = MAX_INTERMEDIATE_PIXELS
    if h * w > limit:
        raise ConfigError(f"{source}: the {w}x{h} px HR is {h * w / 1e6:.1f} Mpx, more than the "
                          f"{limit / 1e6:.0f} Mpx bound on an intermediate image")
    final = (h // cfg.scale, w // cfg.scale)
    for i in range(1, cfg.order + 1):
        r = stage_config(cfg, i).resize
        k = min(i, len(cfg.stages)) - 1
        f = max(([r.up[1]] if r.up_prob > 0 else []) + ([1.0] if r.keep_prob > 0 else [])
                + ([r.down[1]] if r.down_prob > 0 else []))
        if r.size_ref == "final":
            h, w = max(1, int(final[0] * f)), max(1, int(final[1] * f))
        else:
            h, w = max(1, math.floor(h * f)), max(1, math.floor(w * f))
        if h * w > limit:
            raise ConfigError(f"{source}: stages[{k}].resize.up: stage {i} can grow a {hr_hw[1]}x{hr_hw[0]} px HR "
                              f"to {w}x{h} px ({h * w / 1e6:.0f} Mpx), more than the {limit / 1e6:.0f} Mpx bound "
                              f"on an intermediate image")


# ------------------------------------------------------------------------------------------- type conversion

def _type_name(v) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", tuple: "array",
            dict: "table"}.get(type(v), type(v).__name__)


def _convert(hint, value, key: str, source: str):
    """Check `value` against the type `hint`; return it converted (arrays -> tuples, int -> float)."""
    def bad(expected):
        raise ConfigError(f"{source}: {key}: expected {expected}, got {value!r} ({_type_name(value)})")

    if hint is bool:
        return value if isinstance(value, bool) else bad("true or false")
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else bad("an integer")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {key}: must be finite, got {value!r}")
        return float(value)
    if hint is str:
        return value if isinstance(value, str) else bad("a string")
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            bad("an array" if args[-1] is Ellipsis else f"an array of {len(args)} numbers [lo, hi]")
        if args[-1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{source}: {key}: expected an array of {len(args)} values [lo, hi], "
                              f"got {len(value)}")
        return tuple(_convert(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value)))
    raise TypeError(f"unsupported config type {hint!r}")  # pragma: no cover - programming error


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _stage_list_hint(hint) -> bool:
    return typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0])


def _override(base, data, prefix: str, source: str):
    """`base` (a dataclass instance) with the keys of the TOML table `data` replaced, strictly checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'config'}: expected a table, got {data!r} ({_type_name(data)})")
    hints = _hints(type(base))
    changes = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{source}: {dotted}: unknown key (known here: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            changes[key] = _override(getattr(base, key), value, dotted, source)
        elif _stage_list_hint(hint):
            if not isinstance(value, list):
                raise ConfigError(f"{source}: {dotted}: expected an array of tables ([[{dotted}]]), "
                                  f"got {value!r} ({_type_name(value)})")
            old = getattr(base, key)
            if not old:  # pragma: no cover - presets always have stages
                old = (typing.get_args(hint)[0](),)
            changes[key] = tuple(_override(old[min(i, len(old) - 1)], v, f"{dotted}[{i}]", source)
                                 for i, v in enumerate(value))
        else:
            changes[key] = _convert(hint, value, dotted, source)
    return dataclasses.replace(base, **changes)


# -------------------------------------------------------------------------------------------------- checking

def _check_fields(obj, prefix: str, source: str) -> None:
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        hint = hints[f.name]
        meta = f.metadata
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):
                raise ConfigError(f"{source}: {key}: expected {hint.__name__}, got {_type_name(value)}")
            _check_fields(value, key, source)
            continue
        if _stage_list_hint(hint):
            cls = typing.get_args(hint)[0]
            if not isinstance(value, tuple) or not all(isinstance(s, cls) for s in value):
                raise ConfigError(f"{source}: {key}: expected a tuple of {cls.__name__}")
            if meta.get("nonempty") and not value:
                raise ConfigError(f"{source}: {key}: must not be empty")
            for i, s in enumerate(value):
                _check_fields(s, f"{key}[{i}]", source)
            continue
        if isinstance(value, list):
            raise ConfigError(f"{source}: {key}: expected a tuple, got a list")
        _convert(hint, value, key, source)  # type check (raises on mismatch)
        is_tuple = isinstance(value, tuple)
        items = value if is_tuple else (value,)
        if meta.get("nonempty") and not items:
            raise ConfigError(f"{source}: {key}: must not be empty")
        if meta.get("unique") and len(set(items)) != len(items):
            raise ConfigError(f"{source}: {key}: has duplicates: {list(items)}")
        for i, v in enumerate(items):
            k = f"{key}[{i}]" if is_tuple else key
            if "choices" in meta and v not in meta["choices"]:
                raise ConfigError(f"{source}: {k}: {v!r} is not one of {', '.join(map(repr, meta['choices']))}")
            if "lo" in meta:
                lo = meta["lo"]
                if (v <= lo) if meta.get("lo_open") else (v < lo):
                    op = ">" if meta.get("lo_open") else ">="
                    raise ConfigError(f"{source}: {k}: {v!r} out of range, must be {op} {lo:g}")
            if "hi" in meta and v > meta["hi"]:
                raise ConfigError(f"{source}: {k}: {v!r} out of range, must be <= {meta['hi']:.6g}")
            if meta.get("odd") and v % 2 == 0:
                raise ConfigError(f"{source}: {k}: {v!r} is not odd")
        if is_tuple and typing.get_args(hint)[-1] is not Ellipsis and value[0] > value[1]:
            raise ConfigError(f"{source}: {key}: lo > hi in [{value[0]}, {value[1]}]")
    if hasattr(obj, "_checks"):
        for name, problem in obj._checks():
            key = ".".join(p for p in (prefix, name) if p) or "config"
            raise ConfigError(f"{source}: {key}: {problem}")


def validate_config(cfg: DegradeConfig, source: str = "<config>") -> DegradeConfig:
    """Check every value of `cfg` (types, ranges, lo <= hi, sums); return cfg or raise ConfigError."""
    if not isinstance(cfg, DegradeConfig):
        raise ConfigError(f"{source}: expected a DegradeConfig, got {type(cfg).__name__}")
    # sample() calls this per draw: an object already validated is recognised by identity (hashing the nested
    # frozen config costs ~0.1 ms); the entry keeps the object alive, so its id cannot be reused meanwhile
    hit = _SEEN.get((id(cfg), source))
    if hit is cfg:
        return cfg
    try:
        _validated(cfg, source)
        if len(_SEEN) >= 64:
            _SEEN.clear()
        _SEEN[(id(cfg), source)] = cfg
        return cfg
    except TypeError:  # unhashable (a list where a tuple belongs): check without the cache
        _check_fields(cfg, "", source)
        return cfg


_SEEN: dict[tuple[int, str], DegradeConfig] = {}


@functools.lru_cache(maxsize=64)
def _validated(cfg: DegradeConfig, source: str) -> DegradeConfig:
    _check_fields(cfg, "", source)
    return cfg


# ------------------------------------------------------------------------------------------------ load, dump

def config_from_dict(data: dict, source: str = "<dict>") -> DegradeConfig:
    """A validated DegradeConfig from a (possibly partial) dict shaped like the TOML file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table, got {_type_name(data)}")
    data = dict(data)
    name = data.pop("preset", "realesrgan")
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"{source}: preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    cfg = _override(PRESETS[name], data, "", source)
    return validate_config(cfg, source)


def load_config(path) -> DegradeConfig:
    """Read and validate a TOML config file (partial files override their `preset`).

    Raises ConfigError("PATH: dotted.key: problem") for unreadable files, TOML syntax errors and every invalid
    value, before any work starts.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    return config_from_dict(data, str(path))


def config_to_dict(cfg: DegradeConfig) -> dict:
    """Plain dict (lists, not tuples) of every key; the inverse of config_from_dict."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


_SHORT_ARRAY = re.compile(r"\[\n((?:[ ]+[^\n\[\]{}]*,\n)+)[ ]*\]")


def _doc_index() -> dict[tuple[str, str], str]:
    """(table path without stage indices, key) -> doc, e.g. ("stages.kernel", "sigma")."""
    out = {}

    def walk(cls, path):
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            out[(path, f.name)] = f.metadata.get("doc", "")
            hint = hints[f.name]
            sub = f"{path}.{f.name}" if path else f.name
            if dataclasses.is_dataclass(hint):
                walk(hint, sub)
            elif _stage_list_hint(hint):
                walk(typing.get_args(hint)[0], sub)
    walk(DegradeConfig, "")
    return out


def dump_config(cfg: DegradeConfig, *, comments: bool = True) -> str:
    """The full config as TOML text (load_config of it gives back an equal config)."""
    text = tomli_w.dumps(config_to_dict(cfg))
    # tomli_w writes every array over several lines; arrays of scalars read better on one
    text = _SHORT_ARRAY.sub(lambda m: "[" + ", ".join(x.strip().rstrip(",") for x in m.group(1).splitlines())
                            + "]", text)
    if not comments:
        return text
    docs = _doc_index()
    lines, table = [], ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[\[?([A-Za-z0-9_.]+)\]\]?", line)
        if header:
            table = header.group(1)
            doc = docs.get(tuple(table.rsplit(".", 1)) if "." in table else ("", table))
            if doc and lines and lines[-1] == "":
                lines.append(f"# {doc}")
        else:
            m = re.match(r"([A-Za-z0-9_]+) = ", line)
            if m and docs.get((table, m.group(1))):
                lines.append(f"# {docs[(table, m.group(1))]}")
        lines.append(line)
    head = "# degradekit degradation config; every key, with its meaning, is in docs/config-reference.md.\n"
    return head + "\n".join(lines) + "\n"


def config_reference_markdown() -> str:
    """Markdown table of every key: dotted key, type, default (realesrgan preset), meaning and range.

    Used to write the README's Config reference (which is static text).
    """
    base = preset("realesrgan")
    rows = ["| key | type | realesrgan default | meaning, allowed values |", "|---|---|---|---|"]

    def fmt(v):
        if isinstance(v, float):
            for num, name in ((PI, "pi"), (PI / 3, "pi/3"), (PI / 5, "pi/5"), (-PI, "-pi"), (2 * PI, "2 pi"),
                              (-2 * PI, "-2 pi")):
                if v == num:
                    return name
            return f"{v:g}"
        if isinstance(v, tuple):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        return str(v)

    def tname(hint):
        if hint is float:
            return "float"
        if hint is int:
            return "int"
        if hint is bool:
            return "bool"
        if hint is str:
            return "string"
        args = typing.get_args(hint)
        if args[-1] is Ellipsis:
            return f"[{tname(args[0])}, ...]"
        return "[lo, hi]"

    def rng(meta):
        parts = []
        if "choices" in meta:
            parts.append("one of " + ", ".join(fmt(c) for c in meta["choices"]))
        if "lo" in meta or "hi" in meta:
            lo = meta.get("lo")
            lo_s = "" if lo is None else (f"> {fmt(float(lo))}" if meta.get("lo_open") else f">= {fmt(lo)}")
            hi_s = "" if "hi" not in meta else f"<= {fmt(meta['hi'])}"
            parts.append(" and ".join(p for p in (lo_s, hi_s) if p))
        if meta.get("odd"):
            parts.append("odd")
        return "; ".join(parts)

    def walk(obj, path, stage_label=None):
        hints = _hints(type(obj))
        for f in dataclasses.fields(obj):
            key = f"{path}.{f.name}" if path else f.name
            hint = hints[f.name]
            v = getattr(obj, f.name)
            if dataclasses.is_dataclass(hint):
                walk(v, key, stage_label)
            elif _stage_list_hint(hint):
                walk(v[0], f"{key}[0]")
                # stage 2 differs from stage 1 in the preset: list only the keys that differ
                s1, s2 = config_to_dict(v[0]), config_to_dict(v[1])
                for sub, val in _flat_diff(s1, s2):
                    rows.append(f"| `{key}[1].{sub}` | | {fmt(_tup(val))} | as `{key}[0].{sub}` (stage 2) |")
            else:
                r = rng(f.metadata)
                rows.append(f"| `{key}` | {tname(hint)} | {fmt(v)} | {f.metadata.get('doc', '')}"
                            f"{'; ' + r if r else ''} |")
    walk(base, "")
    return "\n".join(rows) + "\n"


def preset_diff_markdown(name: str, base: str = "realesrgan") -> str:
    """Markdown table of the keys where preset `name` differs from preset `base` (both have two stages)."""
    a, b = config_to_dict(preset(base)), config_to_dict(preset(name))
    rows = [f"| key | {base} | {name} |", "|---|---|---|"]

    def fmt(v):
        return "[" + ", ".join(fmt(x) for x in v) + "]" if isinstance(v, list) else \
            (f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else f"{v:g}"
             if isinstance(v, float) else str(v))

    for i, (sa, sb) in enumerate(zip(a.pop("stages"), b.pop("stages"))):
        rows += [f"| `stages[{i}].{k}` | {fmt(_flat_get(sa, k))} | {fmt(v)} |" for k, v in _flat_diff(sa, sb)]
    rows += [f"| `{k}` | {fmt(_flat_get(a, k))} | {fmt(v)} |" for k, v in _flat_diff(a, b)]
    return "\n".join(rows) + "\n"


def _flat_get(d: dict, dotted: str):
    for k in dotted.split("."):
        d = d[k]
    return d


def _tup(v):
    return tuple(v) if isinstance(v, list) else v


def _flat_diff(a: dict, b: dict, prefix: str = ""):
    for k in a:
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(a[k], dict):
            yield from _flat_diff(a[k], b[k], key)
        elif a[k] != b[k]:
            yield key, b[k]


if __name__ == "__main__":  # pragma: no cover - `python -m degradekit.config > docs/config-reference.md`
    print("# Config reference\n\nGenerated by `python -m degradekit.config` "
          "(`degradekit.config.config_reference_markdown()`); defaults are the `realesrgan` preset.\n")
    print(config_reference_markdown(), end="")
    print("\n## The realworld preset: the keys that differ from realesrgan\n\n(`realworld-x2` is the same at "
          "`scale = 2`; the mix and why: docs/degradations.md, \"The realworld preset (and realworld-x2)\".)\n")
    print(preset_diff_markdown("realworld"), end="")
