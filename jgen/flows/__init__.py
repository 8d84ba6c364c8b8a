"""Normalizing flows as distrax bijectors: RealNVP and spline coupling layers, MAF/IAF, flow models, image flows."""

from jgen.flows.conditioners import MADE, MLP, ConvNet, MaskedDense, made_degrees, made_masks
from jgen.flows.coupling import (affine_coupling, alternating_masks, bounded_log_scale, channel_mask,
                                 checkerboard_mask, half_mask)
from jgen.flows.image import dequantize_logit, logit_to_levels
from jgen.flows.maf import MaskedAutoregressive, inverse_autoregressive
from jgen.flows.model import MAF, CouplingFlow, Flow, SplineCouplingFlow
from jgen.flows.scan_chain import ScanChain
from jgen.flows.spline import spline_coupling, spline_params_per_dim

__all__ = [
    "MLP", "ConvNet", "MADE", "MaskedDense", "made_degrees", "made_masks",
    "affine_coupling", "alternating_masks", "bounded_log_scale", "channel_mask", "checkerboard_mask",
    "half_mask", "MaskedAutoregressive", "inverse_autoregressive", "ScanChain",
    "spline_coupling", "spline_params_per_dim", "Flow", "CouplingFlow", "SplineCouplingFlow", "MAF",
    "dequantize_logit", "logit_to_levels",
]
