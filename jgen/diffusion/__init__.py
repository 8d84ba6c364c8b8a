"""Denoising diffusion probabilistic models (Ho et al. 2020): schedules, losses, samplers, denoisers, bounds."""

from jgen.diffusion import ddpm, denoisers, samplers, schedules, unet, vlb
from jgen.diffusion.ddpm import ancestral_sample, noise_prediction_loss, q_sample
from jgen.diffusion.denoisers import DenoisingMLP
from jgen.diffusion.samplers import ddim_sample, ddpm_sample
from jgen.diffusion.schedules import (Schedule, cosine_beta_schedule, linear_beta_schedule, make_schedule,
                                      schedule_from_betas)
from jgen.diffusion.unet import UNet

__all__ = ["ddpm", "denoisers", "samplers", "schedules", "unet", "vlb", "Schedule", "linear_beta_schedule",
           "cosine_beta_schedule", "make_schedule", "schedule_from_betas", "q_sample", "noise_prediction_loss",
           "ancestral_sample", "ddpm_sample", "ddim_sample", "DenoisingMLP", "UNet"]
