"""InfoNCE with the Cauchy similarity q = 1 / (1 + D^2) (or a heavier-tailed q = (1 + D^2 / a)^(-a), option
``dof`` a, ``base.log_similarity``): t-SNE's loss reached by contrastive learning
(Damrich, Böhm, Hamprecht, Kobak, ICLR 2023, "From t-SNE to UMAP with contrastive learning").

For a similar pair (i, j) and negatives k, InfoNCE is -log(q_ij / (q_ij + sum_k q_ik)). With one normaliser
shared by all anchors instead of one per anchor, its mean over the similar pairs is t-SNE's KL divergence
(p uniform over the similar pairs) up to constants:

    L = rho * E_S[-log q_ij] + log E_D[q_kl],

E_S / E_D the means over all similar / dissimilar pairs. t-SNE's normaliser also sums the similar pairs; they
are a fraction ~k/N of all pairs and are left out, so that the step's dissimilar pairs estimate it. Options:
``dof`` a (above; default 1) and ``exaggeration`` rho, the weight of attraction as in t-SNE's early
exaggeration (rho > 1 moves towards UMAP-like embeddings, Damrich et al.).

Estimator. A per-anchor normaliser needs negatives of every anchor, which ``per_pair`` steps do not have
(their negatives are uniform over all dissimilar pairs and seldom touch the step's anchors); the shared one
uses every weighted dissimilar pair of a step, in either mode. The step's dissimilar weights w make their
weighted mean an estimate of E_D[q] (uniform draws in ``per_pair``, self-normalised importance weights in
``batch``, ``pipeline/train/batches.py``), so

    Zhat = sum_dis w q / sum_dis w,    L_step = sum_sim w_ij * (-rho * log q_ij + log Zhat).

The similar weights sum to s / (1 + r) (s the worker's ``similar_scale``, 1 for one worker), so the log
normaliser weighs what the similar pairs weigh, as log Z weighs sum p = 1 in t-SNE; r only sets how many
negatives a ``per_pair`` step draws (in ``batch`` mode every in-batch pair is scored and r cancels in Zhat).
Zhat divides out the dissimilar weights' scale, so worker w estimates the mean over its own dissimilar pairs
D_w, a hash share of D whose mean is E_D[q] up to the spread between shares; averaged over the workers
(their similar scales average 1), the gradient is that of L / (1 + r). The gradient of log Zhat is a ratio
estimate, grad Zhat / Zhat, consistent with bias O(1 / dissimilar pairs per step): with thousands per step
(``batch``) the loss converges to t-SNE's L; with few (``per_pair`` at small r * batch_size) E log Zhat falls
below log E Zhat and, as Damrich et al. show for InfoNCE with few negatives, the embedding drifts towards
UMAP-like.

Per-pair loss reported (the training metrics): -rho * log q for a similar pair (its attraction), log Zhat for
a dissimilar pair (the step's repulsion term, the same for each); L_step weighs their sum by the similar pairs'
weights.
"""

from __future__ import annotations

import torch

from encoders.losses.base import PairLoss, distance_of, log_similarity, squared_distance


class InfoNCELoss(PairLoss):
    def __init__(self, *, exaggeration: float, dof: float) -> None:
        self.exaggeration = exaggeration
        self.dof = dof

    def weighted(
        self, z: torch.Tensor, left: torch.Tensor, right: torch.Tensor, y: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        squared = squared_distance(z[left], z[right])
        log_q = log_similarity(squared, self.dof)
        similar = y == 0
        dissimilar_weight = torch.where(similar, 0.0, weight)
        mass = dissimilar_weight.sum()
        mean_q = (dissimilar_weight * log_q.exp()).sum() / mass.clamp_min(torch.finfo(mass.dtype).tiny)
        # A step without weighted dissimilar pairs (train.negatives_per_positive: 0) has no repulsion; where()
        # keeps log's gradient finite there (log 1 = 0 instead of log 0).
        log_z = torch.log(torch.where(mass > 0, mean_q, torch.ones_like(mean_q)))
        attraction = -self.exaggeration * log_q
        loss = (torch.where(similar, weight, 0.0) * (attraction + log_z)).sum()
        per_pair = torch.where(similar, attraction, log_z.detach())
        return loss, per_pair, distance_of(squared)
