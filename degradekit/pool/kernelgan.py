"""KernelGAN (Bell-Kligler et al., NeurIPS 2019): blind estimation of an image's x2 downscaling kernel.

A deep *linear* generator G (convs 7, 5, 3, 1, 1, 1; 64 channels; no bias; last layer stride 2) learns to
downscale crops of the image so that a patch discriminator D cannot tell G's output from crops of the image
itself. Because G is linear, it equals one 13x13 stride-2 convolution whose kernel is the estimate.

What degradekit does differently from the original code (see docs/spec realsr-pools.md):
- the forward pass uses the *collapsed* 13x13 kernel, recomputed from the six layers every step (gradients
  flow to the layers exactly as in the layer-by-layer forward; ~18x cheaper);
- the discriminator's noise is added to a copy of the crop (the original drifts the stored image);
- the bicubic-loss schedule has a fallback: if the loss never stays under 0.4, the constraints switch on anyway;
- x4 kernels are composed analytically from the x2 estimate and centred on the grid (the realsr pipeline then
  decimates on the matching grid, see :func:`degradekit.pool.realsr.decimate_kernel`);
- seeded and deterministic on CPU (a forked torch RNG seeded per image, a numpy Generator for the crops);
- early stopping once the kernel stops changing.

Image values are scaled to [-1, 1]; RGB is treated as three gray images (batch of 3).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.ndimage as ndi

__all__ = [
    "KernelGANConfig",
    "KernelEstimate",
    "estimate_kernel",
    "postprocess_kernel",
    "kernel_x4_from_x2",
    "kernel_quality",
    "center_kernel",
    "G_KERNEL_SIZE",
]

G_STRUCT = (7, 5, 3, 1, 1, 1)
G_KERNEL_SIZE = sum(G_STRUCT) - len(G_STRUCT) + 1  # 13: receptive field of the linear generator


@dataclass(frozen=True)
class KernelGANConfig:
    """KernelGAN hyper-parameters: the paper/code values, except a compressed schedule (ours: lr / 10 every
    400 iterations instead of 750, bicubic weight / 100 every 100 instead of 200 -- the same phases in about half
    the iterations, measured equally accurate), two crops per step instead of one (`batch`, measured: median
    +8.5 instead of +7.2 dB over bicubic, fewer runs that drift wide, 1.3x the CPU) and early stopping.

    iters: maximum number of iterations (3000 in the original); early stopping usually ends far sooner.
    min_iters: never stop before this many iterations.
    stop_tol: early stop when the mean absolute change of the (normalised) kernel over `stop_window`
        iterations, relative to its mean absolute value, stays below this for 2 consecutive checks.
    fallback_iter: if the bicubic loss has not stayed under 0.4 by this iteration, the schedule
        proceeds anyway (the original waits forever and never switches the constraints on).
    """

    iters: int = 3000
    min_iters: int = 400
    stop_window: int = 100
    stop_tol: float = 0.05
    early_stop: bool = True
    crop: int = 64
    batch: int = 2
    channels: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    lr_step: int = 400
    lr_gamma: float = 0.1
    lambda_bicubic: float = 5.0
    lambda_sum2one: float = 0.5
    lambda_boundaries: float = 0.5
    lambda_centralized_end: float = 1.0
    lambda_sparse_end: float = 5.0
    bic_threshold: float = 0.4
    bic_decay_every: int = 100
    bic_decay: float = 100.0
    bic_min: float = 5e-6
    fallback_iter: int = 200
    d_noise: float = 1.0 / 255.0
    init_gain: float = 0.1  # xavier-normal init gain (the original's); 0: torch default init (measured worse)
    retries: int = 2
    collapse_sum: float = 0.5
    ema: float = 0.0  # > 0: estimate = EMA of the normalised kernel once constraints are on (measured: no gain)

    def __post_init__(self):
        for name in ("iters", "min_iters", "stop_window", "crop", "channels", "lr_step", "bic_decay_every",
                     "fallback_iter"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"KernelGANConfig.{name}: must be a positive integer, got {v!r}")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise ValueError(f"KernelGANConfig.retries: must be an integer >= 0, got {self.retries!r}")
        if self.crop < 2 * G_KERNEL_SIZE + 14:
            raise ValueError(f"KernelGANConfig.crop: must be >= {2 * G_KERNEL_SIZE + 14}, got {self.crop}")
        if not (0 < self.lr < 1):
            raise ValueError(f"KernelGANConfig.lr: must be in (0, 1), got {self.lr}")


@dataclass
class KernelEstimate:
    """Result of one KernelGAN run.

    raw: float64 (13, 13) collapsed generator kernel (not normalised; its sum is a quality signal).
    kernel: float64 (k, k), k odd, sum 1, centre of mass on the grid centre: the x2 pool kernel.
    losses: final losses (moving averages over the last 50 iterations).
    iters: iterations run; stopped_early: whether early stopping ended the run; seconds: wall time.
    """

    raw: np.ndarray
    kernel: np.ndarray
    losses: dict
    iters: int
    stopped_early: bool
    seconds: float
    schedule: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- networks
def _torch():
    import torch  # deferred: `--help` and the numpy-only paths stay fast

    return torch


def _build_nets(cfg: KernelGANConfig, device):
    torch = _torch()
    nn = torch.nn

    class Generator(nn.Module):
        """The deep linear generator; `forward` is the collapsed single-conv form, `forward_layers` the
        layer-by-layer one (kept for tests and as the definition)."""

        def __init__(self):
            super().__init__()
            chans = [1] + [cfg.channels] * (len(G_STRUCT) - 1) + [1]
            self.layers = nn.ModuleList(
                nn.Conv2d(chans[i], chans[i + 1], G_STRUCT[i], stride=2 if i == len(G_STRUCT) - 1 else 1,
                          bias=False)
                for i in range(len(G_STRUCT)))

        def collapsed_kernel(self):
            """(13, 13) kernel K with G(x) == conv2d(x, K, stride=2) (cross-correlation), differentiable.

            Composing two cross-correlations with weights A (c2, c1, a, a) then B (c3, c2, b, b) gives one with
            C[o, i] = sum_c B[o, c] (*) A[c, i] (full convolution) = conv_transpose2d(B, A); folding the layers
            from the last one back costs ~5 MFLOP instead of pushing a delta through 64-channel layers."""
            u = self.layers[-1].weight  # (1, 64, 1, 1)
            for layer in reversed(self.layers[:-1]):
                u = torch.nn.functional.conv_transpose2d(u, layer.weight)
            return u[0, 0]

        def forward(self, x, kernel=None):
            if kernel is None:
                kernel = self.collapsed_kernel()
            return torch.nn.functional.conv2d(x, kernel[None, None], stride=2)

        def forward_layers(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    class Discriminator(nn.Module):
        """Fully convolutional patch discriminator, 7x7 receptive field, all convs spectral-normalised:
        7x7 conv 3->64, five [1x1 conv, norm, ReLU], 1x1 conv -> 1, sigmoid.

        The original runs BatchNorm on batches of one image, which normalises each channel over that image's
        pixels: that is instance normalisation, so `forward` can take real and fake in one batch with the same
        result per sample. Spectral norm is done by hand: one power iteration per D step (`power=True`), the
        G step reuses the current singular vectors (torch's hook would iterate on every call)."""

        def __init__(self):
            super().__init__()
            c = cfg.channels
            self.convs = nn.ModuleList([nn.Conv2d(3, c, 7)] + [nn.Conv2d(c, c, 1) for _ in range(5)]
                                       + [nn.Conv2d(c, 1, 1)])
            self.norms = nn.ModuleList(nn.InstanceNorm2d(c, affine=True) for _ in range(5))
            for i, conv in enumerate(self.convs):
                wm = conv.weight.detach().reshape(conv.weight.shape[0], -1)
                u = torch.nn.functional.normalize(torch.randn(wm.shape[0]), dim=0, eps=1e-12)
                v = torch.nn.functional.normalize(torch.randn(wm.shape[1]), dim=0, eps=1e-12)
                self.register_buffer(f"u{i}", u)
                self.register_buffer(f"v{i}", v)
            self.power_iteration()

        @torch.no_grad()
        def power_iteration(self):
            normalize = torch.nn.functional.normalize
            for i, conv in enumerate(self.convs):
                wm = conv.weight.reshape(conv.weight.shape[0], -1)
                u, v = getattr(self, f"u{i}"), getattr(self, f"v{i}")
                v.copy_(normalize(wm.t() @ u, dim=0, eps=1e-12))
                u.copy_(normalize(wm @ v, dim=0, eps=1e-12))

        def forward(self, x):
            conv2d = torch.nn.functional.conv2d
            for i, conv in enumerate(self.convs):
                w = conv.weight
                sigma = torch.dot(getattr(self, f"u{i}"), w.reshape(w.shape[0], -1) @ getattr(self, f"v{i}"))
                x = conv2d(x, w / sigma, conv.bias)
                if 1 <= i <= 5:  # the 7x7 input conv and the output conv have no norm/ReLU
                    x = torch.relu(self.norms[i - 1](x))
            return torch.sigmoid(x)

    g, d = Generator(), Discriminator()
    if cfg.init_gain > 0:
        with torch.no_grad():
            for m in list(g.layers) + list(d.convs):
                torch.nn.init.xavier_normal_(m.weight, cfg.init_gain)
                if m.bias is not None:
                    m.bias.zero_()
            for n in d.norms:
                n.weight.normal_(1.0, 0.02)
                n.bias.zero_()
        d.power_iteration()
    return g.to(device), d.to(device)


# ----------------------------------------------------------------------------------------- fixed tensors
def _bicubic_taps_x2() -> np.ndarray:
    """Antialiased bicubic (Keys a=-0.5) x2 downscale taps, 8 taps at offsets +-0.5..+-3.5, padded with a
    leading zero to 9 taps so that its centre (4.5) lines up with the generator's expected centre (6.5)."""
    t = (np.arange(8) - 3.5) / 2.0
    a = -0.5
    at = np.abs(t)
    w = np.where(at <= 1, (a + 2) * at**3 - (a + 3) * at**2 + 1,
                 np.where(at < 2, a * at**3 - 5 * a * at**2 + 8 * a * at - 4 * a, 0.0))
    w = w / w.sum()
    return np.concatenate([[0.0], w])


def _boundary_mask(k: int, scale: float = 30.0) -> np.ndarray:
    """Penalty that is zero in the central (k//2+1)^2 region and grows quadratically towards the border.

    Stronger than the original's (which only weighs the two outer rings, by 2-6): measured on photos blurred
    with known kernels, the original's mask lets the estimate drift too wide on some seeds (26.5 vs 33.2 dB)."""
    r = np.arange(k) - (k - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    d = np.maximum(np.abs(yy), np.abs(xx))
    inner = (k // 2 + 1) // 2  # central half stays free
    m = np.clip(d - inner, 0, None) / max(1.0, (k - 1) / 2 - inner)
    return scale * m**2


def _gradient_prob(img: np.ndarray, crop: int) -> np.ndarray:
    """Probability of each top-left position of a crop x crop window, proportional to the mean gradient
    magnitude inside the window (textured crops carry the kernel information; flat ones do not)."""
    g = img.astype(np.float32).mean(axis=2)
    gy = np.abs(np.diff(g, axis=0, append=g[-1:]))
    gx = np.abs(np.diff(g, axis=1, append=g[:, -1:]))
    mag = gx + gy
    ii = np.pad(mag.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    s = ii[crop:, crop:] - ii[:-crop, crop:] - ii[crop:, :-crop] + ii[:-crop, :-crop]
    s = np.clip(s, 0, None).ravel() + 1e-6
    return s / s.sum()


# ------------------------------------------------------------------------------------------ main routine
def estimate_kernel(img: np.ndarray, *, seed: int, cfg: KernelGANConfig = KernelGANConfig(),
                    device: str = "cpu", progress=None) -> KernelEstimate:
    """Estimate the x2 blur kernel of one image with KernelGAN (retrying a collapsed run).

    img: uint8 HxWx3 RGB, both sides >= cfg.crop (64).  seed: any int >= 0; the run is a pure function of
    (img, seed, cfg) on CPU at a fixed torch thread count.  device: "cpu" or "cuda".
    progress: optional callable(iteration) called every 50 iterations.

    (ours) A deep linear generator can shrink into the all-zero kernel (a saddle it cannot leave; measured on
    3 of the 8 sample photos in one configuration): a run whose kernel sum falls below `collapse_sum` once the
    constraints are on is abandoned and restarted with the next derived seed, up to `retries` times.
    Returns a :class:`KernelEstimate` (raw 13x13 kernel, post-processed centred x2 kernel, losses).
    """
    t0 = time.perf_counter()
    total = 0
    for attempt in range(cfg.retries + 1):
        est = _estimate_once(img, seed=seed if attempt == 0 else int(
            np.random.SeedSequence([int(seed), attempt]).generate_state(1)[0]), cfg=cfg, device=device,
            progress=progress)
        total += est.iters
        est.schedule["attempt"] = attempt
        if not est.schedule.get("collapsed"):
            break
    est.schedule["iters_total"] = total
    est.seconds = time.perf_counter() - t0
    return est


def _estimate_once(img: np.ndarray, *, seed: int, cfg: KernelGANConfig, device: str, progress) -> KernelEstimate:
    torch = _torch()
    F = torch.nn.functional
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"estimate_kernel: expected uint8 HxWx3, got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    c_g = cfg.crop
    if h < c_g or w < c_g:
        raise ValueError(f"image is {w}x{h}, KernelGAN needs at least {c_g}x{c_g}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6B67]))
    dev = torch.device(device)
    k = G_KERNEL_SIZE
    c_d = (c_g - k) // 2 + 1  # 26: generator output size, the discriminator's crop size
    prob_g = _gradient_prob(img, c_g)
    prob_d = _gradient_prob(img, c_d)
    cols_g = w - c_g + 1
    cols_d = w - c_d + 1
    im = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(dev)  # (3, H, W) uint8

    def to_pm1(t):
        return t.to(torch.float32) / 127.5 - 1.0

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(int(rng.integers(2**62)))
        G, D = _build_nets(cfg, dev)
        G.train()
        D.train()
        opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999), foreach=True)
        opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999), foreach=True)
        g_params = list(G.parameters())
        bic = torch.tensor(_bicubic_taps_x2(), dtype=torch.float32, device=dev)
        bic2d = (bic[:, None] * bic[None, :])[None, None]
        mask = torch.tensor(_boundary_mask(k), dtype=torch.float32, device=dev)
        r = torch.arange(k, dtype=torch.float32, device=dev)
        want_c = k // 2 + 0.5  # x2: the expected centre of mass sits half a pixel off the grid centre
        lam = dict(bicubic=cfg.lambda_bicubic, centralized=0.0, sparse=0.0)
        similar = False
        similar_at = None
        forced = False
        constraints_at = None
        bic_count = 0
        hist = {n: [] for n in ("gan", "bicubic", "sum2one", "boundaries", "centralized", "sparse", "d")}
        prev_k = None
        stable = 0
        changes = []
        collapsed = False
        k_ema = None
        stopped = False
        it = 0
        # pre-draw all crop positions (one RNG stream, independent of early stopping)
        n_it = cfg.iters
        B = cfg.batch
        pos_g = rng.choice(prob_g.size, size=(n_it, B), p=prob_g)
        pos_d = rng.choice(prob_d.size, size=(n_it, B), p=prob_d)
        for it in range(n_it):
            g_crops, d_crops = [], []
            for b in range(B):
                yg, xg = divmod(int(pos_g[it, b]), cols_g)
                yd, xd = divmod(int(pos_d[it, b]), cols_d)
                g_crops.append(im[:, yg:yg + c_g, xg:xg + c_g])
                d_crops.append(im[:, yd:yd + c_d, xd:xd + c_d])
            g_in = to_pm1(torch.cat(g_crops))[:, None]  # (3B, 1, 64, 64): RGB as gray images
            d_real = to_pm1(torch.stack(d_crops))  # (B, 3, 26, 26), a copy: noise never reaches `im`

            # ---- G step
            K = G.collapsed_kernel()
            g_out = F.conv2d(g_in, K[None, None], stride=2)  # (3, 1, 26, 26)
            fake = g_out.reshape(B, 3, c_d, c_d)
            d_fake = D(fake)
            loss_gan = (d_fake - 1.0).abs().mean()
            down = F.conv2d(g_in, bic2d, stride=2)
            off_y = (down.shape[-2] - g_out.shape[-2]) // 2
            off_x = (down.shape[-1] - g_out.shape[-1]) // 2
            down = down[..., off_y:off_y + g_out.shape[-2], off_x:off_x + g_out.shape[-1]]
            loss_bic = F.mse_loss(g_out, down)
            ksum = K.sum()
            loss_sum = (1.0 - ksum).abs()
            loss_bound = (K * mask).abs().mean()
            tot = K.sum()
            cy = (K.sum(1) * r).sum() / tot
            cx = (K.sum(0) * r).sum() / tot
            loss_cent = 0.5 * ((cy - want_c) ** 2 + (cx - want_c) ** 2)
            # (ours) scale-invariant sparsity: the original's mean |k|^0.2 (weight 5) also pulls the whole kernel
            # towards 0, and a deep linear generator that shrinks to 0 cannot come back (measured: 2 of 8 photos
            # ended with a kernel summing to 0). Dividing by (sum |k|)^0.2 keeps the shape term only.
            loss_sparse = (K.abs() + 1e-8).pow(0.2).mean() / (K.abs().sum() + 1e-8).pow(0.2)
            loss_g = (loss_gan + lam["bicubic"] * loss_bic + cfg.lambda_sum2one * loss_sum
                      + cfg.lambda_boundaries * loss_bound + lam["centralized"] * loss_cent
                      + lam["sparse"] * loss_sparse)
            # gradients for G only: D's weight gradients are not needed in the G step
            for prm, grad in zip(g_params, torch.autograd.grad(loss_g, g_params)):
                prm.grad = grad
            opt_g.step()

            # ---- D step (fresh noise on copies of real and fake; one batch, per-sample norm)
            opt_d.zero_grad(set_to_none=True)
            D.power_iteration()
            noise = torch.randn(2 * B, 3, c_d, c_d, device=dev) * cfg.d_noise
            d_both = D(torch.cat([d_real, fake.detach()]) + noise)
            loss_d = 0.5 * ((d_both[:B] - 1.0).abs().mean() + d_both[B:].abs().mean())
            loss_d.backward()
            opt_d.step()

            lb = float(loss_bic.detach())
            for name, v in (("gan", loss_gan), ("bicubic", lb), ("sum2one", loss_sum),
                            ("boundaries", loss_bound), ("centralized", loss_cent), ("sparse", loss_sparse),
                            ("d", loss_d)):
                hist[name].append(float(v.detach()) if hasattr(v, "detach") else float(v))

            # ---- schedule (the original's, plus the fallback)
            i1 = it + 1
            if i1 % cfg.lr_step == 0:
                for opt in (opt_g, opt_d):
                    for grp in opt.param_groups:
                        grp["lr"] *= cfg.lr_gamma
            if not similar:
                bic_count = bic_count + 1 if lb < cfg.bic_threshold else 0
                if bic_count >= 3:
                    similar, similar_at = True, i1
                elif i1 >= cfg.fallback_iter:
                    similar, similar_at, forced = True, i1, True
            elif (i1 - similar_at) % cfg.bic_decay_every == 0 and lam["bicubic"] > cfg.bic_min:
                lam["bicubic"] = max(lam["bicubic"] / cfg.bic_decay, cfg.bic_min)
                if constraints_at is None and lam["bicubic"] < 5e-3:
                    lam["centralized"] = cfg.lambda_centralized_end
                    lam["sparse"] = cfg.lambda_sparse_end
                    constraints_at = i1

            # ---- (ours) the estimate is an exponential moving average of the normalised kernel once the
            # constraints are on: the GAN makes the kernel jitter from step to step around its target
            if constraints_at is not None and cfg.ema > 0:
                kd = K.detach()
                kd = kd / kd.sum()
                k_ema = kd.clone() if k_ema is None else k_ema.mul_(cfg.ema).add_(kd, alpha=1 - cfg.ema)

            # ---- early stopping: the (averaged) kernel has stopped changing
            if i1 % 50 == 0:
                if progress is not None:
                    progress(i1)
                if constraints_at is not None and float(ksum.detach()) < cfg.collapse_sum:
                    collapsed = True
                    break
                if cfg.early_stop and constraints_at is not None:
                    kn = (k_ema if k_ema is not None else K.detach()).cpu().double().numpy()
                    kn = kn / kn.sum()
                    if prev_k is not None and i1 - prev_k[0] >= cfg.stop_window:
                        change = np.abs(kn - prev_k[1]).mean() / np.abs(kn).mean()
                        changes.append((i1, round(float(change), 5)))
                        stable = stable + 1 if change < cfg.stop_tol else 0
                        prev_k = (i1, kn)
                        if stable >= 2 and i1 >= cfg.min_iters and i1 >= constraints_at + cfg.stop_window:
                            stopped = True
                            break
                    elif prev_k is None:
                        prev_k = (i1, kn)
        with torch.no_grad():
            last = G.collapsed_kernel().double().cpu().numpy()
        # the raw record keeps the generator's scale (its sum is a quality signal)
        raw = last if k_ema is None else k_ema.double().cpu().numpy() * last.sum()
    n_run = it + 1
    losses = {n: float(np.mean(v[-50:])) for n, v in hist.items() if v}
    kernel = postprocess_kernel(raw)
    sched = dict(similar_at=similar_at, forced_fallback=forced, constraints_at=constraints_at, changes=changes, collapsed=collapsed)
    return KernelEstimate(raw=raw, kernel=kernel, losses=losses, iters=n_run, stopped_early=stopped,
                          seconds=time.perf_counter() - t0, schedule=sched)


# ------------------------------------------------------------------------------------- post-processing
def centroid(k: np.ndarray) -> tuple[float, float]:
    """Centre of mass (row, col) of a non-negative kernel, in pixel indices."""
    s = k.sum()
    r = np.arange(k.shape[0])
    c = np.arange(k.shape[1])
    return float((k.sum(1) * r).sum() / s), float((k.sum(0) * c).sum() / s)


def center_kernel(k: np.ndarray, pad: int = 2) -> np.ndarray:
    """Pad by `pad` and shift `k` (sub-pixel, cubic spline) so its centre of mass is on the grid centre.

    Returns float64 (k+2*pad, k+2*pad), non-negative, sum 1."""
    k = np.pad(np.asarray(k, np.float64), pad)
    cy, cx = centroid(k)
    mid = (k.shape[0] - 1) / 2
    out = k
    for _ in range(3):  # clipping the spline's small negative lobes moves the centroid a hair: iterate
        cy, cx = centroid(out)
        if abs(cy - mid) < 1e-3 and abs(cx - mid) < 1e-3:
            break
        out = ndi.shift(out, (mid - cy, mid - cx), order=3, mode="constant")
        out = np.clip(out, 0, None)
        out /= out.sum()
    return out / out.sum()


def postprocess_kernel(raw: np.ndarray, n: int = 40) -> np.ndarray:
    """The original's post-processing: subtract 0.75 x the (n+1)-th largest value and clip at 0 (kills the
    negligible tail), renormalise, then centre the mass on the grid (padding by 2: 13 -> 17).

    raw: float (13, 13). Returns float64 (17, 17), sum 1, centroid on (8, 8)."""
    k = np.asarray(raw, np.float64)
    thr = 0.75 * np.sort(k.ravel())[-n - 1]
    k = np.clip(k - thr, 0, None)
    if k.sum() <= 0:
        k = np.clip(np.asarray(raw, np.float64), 0, None)
        if k.sum() <= 0:
            k = np.zeros_like(k)
            k[k.shape[0] // 2, k.shape[1] // 2] = 1.0
    k = k / k.sum()
    return center_kernel(k, pad=2)


def trim_kernel(k: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Crop symmetric outer rings while their total mass is < eps; keeps the size odd and the centre."""
    k = np.asarray(k, np.float64)
    while k.shape[0] > 3:
        ring = k.sum() - k[1:-1, 1:-1].sum()
        if ring >= eps:
            break
        k = k[1:-1, 1:-1]
    return k / k.sum()


def kernel_x4_from_x2(k2: np.ndarray) -> np.ndarray:
    """x4 kernel from a centred x2 kernel: blur with k2, decimate 2, blur with k2 again equals one blur with
    k4 = k2 (*) (k2 dilated by 2) at the HR grid, then decimate 4. k2 centred -> k4 centred (the realsr
    decimation then samples the x4 grid, see realsr.decimate).

    k2: float (k, k) odd, sum 1, centred. Returns float64 (m, m), m odd, sum 1, centred, trimmed of
    negligible outer rings."""
    k2 = np.asarray(k2, np.float64)
    n = k2.shape[0]
    dil = np.zeros((2 * n - 1, 2 * n - 1))
    dil[::2, ::2] = k2
    from scipy.signal import convolve2d

    k4 = convolve2d(dil, k2, mode="full")  # (3n-2, 3n-2), centred at (3n-3)/2
    k4 = np.clip(k4, 0, None)
    k4 /= k4.sum()
    return center_kernel(trim_kernel(k4), pad=0)


def kernel_cov(k: np.ndarray) -> np.ndarray:
    """(2, 2) covariance of a non-negative kernel about its centre of mass, in (x, y) = (column, row) axes."""
    k = np.asarray(k, np.float64)
    k = k / k.sum()
    cy, cx = centroid(k)
    yy, xx = np.meshgrid(np.arange(k.shape[0]) - cy, np.arange(k.shape[1]) - cx, indexing="ij")
    cxy = (k * xx * yy).sum()
    return np.array([[(k * xx * xx).sum(), cxy], [cxy, (k * yy * yy).sum()]])


def kernel_moments(k: np.ndarray) -> dict:
    """Second moments of a kernel: sigma_major, sigma_minor (pixels), theta (degrees, [0, 180), angle of
    the major axis measured from the +x (column) axis towards +y (rows, downwards))."""
    ev, evec = np.linalg.eigh(kernel_cov(k))
    major = evec[:, 1]
    theta = math.degrees(math.atan2(major[1], major[0])) % 180.0
    return dict(sigma_major=float(math.sqrt(max(ev[1], 0))), sigma_minor=float(math.sqrt(max(ev[0], 0))),
                theta=float(theta))


# Outlier rules for the quality record (documented in docs/pools.md, "Pool folder"):
QUALITY_LIMITS = dict(raw_sum=(0.8, 1.25), centroid_offset=1.5, edge_mass=0.05, sigma_major=(0.2, 4.0), texture=2.0)


def image_texture(img: np.ndarray) -> float:
    """Mean absolute gray gradient (grey levels per pixel) of a uint8 HxWx3 image: KernelGAN learns the blur
    from edges, so a nearly flat photo (< QUALITY_LIMITS["texture"]) yields an arbitrary kernel."""
    g = img.astype(np.float32).mean(axis=2)
    return float((np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()) / 2)


def kernel_quality(raw: np.ndarray, kernel: np.ndarray, losses: dict, texture: float | None = None) -> dict:
    """Quality record of one estimate and whether it is an outlier.

    raw_sum: sum of the raw generator kernel (the sum-to-1 constraint should hold; far off = diverged);
    centroid_offset: distance (px) of the raw kernel's centre of mass from the expected centre (6.5, 6.5);
    edge_mass: share of |raw| on the outer ring of the 13x13 support (kernel hitting the border);
    sigma_major/minor, theta: width and orientation of the final kernel; losses: the final losses;
    texture: :func:`image_texture` of the photo (None: not checked).
    outlier: list of violated rules (empty = usable)."""
    raw = np.asarray(raw, np.float64)
    a = np.abs(raw)
    k = raw.shape[0]
    want = k // 2 + 0.5
    pos = np.clip(raw, 0, None)
    if pos.sum() > 0:
        cy, cx = centroid(pos)
        off = math.hypot(cy - want, cx - want)
    else:
        off = float("inf")
    edge = float((a.sum() - a[1:-1, 1:-1].sum()) / max(a.sum(), 1e-12))
    mom = kernel_moments(kernel)
    rec = dict(raw_sum=float(raw.sum()), centroid_offset=float(off), edge_mass=edge, **mom,
               losses={n: float(v) for n, v in losses.items()}, texture=texture)
    bad = []
    lo, hi = QUALITY_LIMITS["raw_sum"]
    if not (lo <= rec["raw_sum"] <= hi):
        bad.append(f"raw sum {rec['raw_sum']:.3f} outside [{lo}, {hi}]")
    if not off <= QUALITY_LIMITS["centroid_offset"]:
        bad.append(f"centroid offset {off:.2f} px > {QUALITY_LIMITS['centroid_offset']}")
    if edge > QUALITY_LIMITS["edge_mass"]:
        bad.append(f"edge mass {edge:.3f} > {QUALITY_LIMITS['edge_mass']}")
    lo, hi = QUALITY_LIMITS["sigma_major"]
    if not (lo <= mom["sigma_major"] <= hi):
        bad.append(f"width {mom['sigma_major']:.2f} px outside [{lo}, {hi}]")
    if not all(math.isfinite(v) for v in rec["losses"].values()):
        bad.append("non-finite loss")
    if texture is not None and texture < QUALITY_LIMITS["texture"]:
        bad.append(f"photo too flat (mean gradient {texture:.2f} < {QUALITY_LIMITS['texture']} grey levels/px)")
    rec["outlier"] = bad
    return rec


def config_dict(cfg: KernelGANConfig) -> dict:
    return asdict(cfg)
