"""Energy-based models p(x) ~ exp(-E_theta(x)): energy networks, Langevin sampling, contrastive divergence.

* `energy`: `ConvEnergy` (small SiLU CNN for 16x16 images), `MLPEnergy` (2-D toys).
* `sampling`: short-run unadjusted Langevin chains (`LangevinConfig`, `langevin`, `langevin_path`) and a
  Metropolis-adjusted check (`mala`), all with the energy's parameters passed at call time.
* `cd`: the persistent contrastive-divergence step with a replay buffer in `TrainState.extra`.
* `divergence`: `fit` that stops on divergence with a clear message, and restarts from the last good
  checkpoint with a new seed.
* `ood`: AUROC by a rank statistic, Gaussian blur. `grid`: exp(-E) normalised on a 2-D grid, grid KL.
"""

from jgen.ebm import cd, divergence, energy, grid, ood, sampling
from jgen.ebm.cd import cd_loss, create_state, init_buffer, make_step
from jgen.ebm.divergence import DivergenceError
from jgen.ebm.energy import ConvEnergy, MLPEnergy
from jgen.ebm.sampling import LangevinConfig, LangevinInfo, MALAInfo, langevin, langevin_path, mala
from jgen.ebm.ood import auroc, gaussian_blur

__all__ = ["cd", "divergence", "energy", "grid", "ood", "sampling", "cd_loss", "create_state", "init_buffer",
           "make_step", "DivergenceError", "ConvEnergy", "MLPEnergy", "LangevinConfig", "LangevinInfo", "MALAInfo",
           "langevin", "langevin_path", "mala", "auroc", "gaussian_blur"]
