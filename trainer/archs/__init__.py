"""Networks: RRDBNet generator, U-Net discriminator with spectral norm, ESRGAN's VGG-style discriminator, VGG19
feature extractor.

All constructors take keyword-only typed arguments and keep the Real-ESRGAN / torchvision key names, so released
weight files load with a plain ``load_state_dict``.
"""
from trainer.archs.discriminator import UNetDiscriminatorSN
from trainer.archs.rrdbnet import RRDBNet, rrdb_config_from_state
from trainer.archs.vgg import VGG19Features, resolve_vgg_weights
from trainer.archs.vgg_discriminator import VGGStyleDiscriminator

__all__ = ["RRDBNet", "rrdb_config_from_state", "UNetDiscriminatorSN", "VGG19Features", "resolve_vgg_weights",
           "VGGStyleDiscriminator"]
