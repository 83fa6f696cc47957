"""Posterior summaries written into an AnnData, under documented keys.

=====================================  =================================================
key                                    content
=====================================  =================================================
``var["scribe_{site}_mean"]``, ``_sd``  per-gene sites (``r``, ``mu``, ``gate``)
``varm["scribe_{site}_mean"]``, ``_sd`` per-gene sites of a mixture, ``[genes, K]``
``obs["scribe_{site}_mean"]``, ``_sd``  per-cell sites (``p_capture``, ``phi_capture``)
``obsm["scribe_assignment_probs"]``    mixtures: ``P(component | cell)``, ``[cells, K]``
``obs["scribe_component"]``            mixtures: the most probable component
``obsm["X_scribe"]``                   VAE: latent means ``E[z | cell]`` (as ``X_scVI``)
``uns["scribe"]``                      ``config`` (JSON), ``loss_history``, globals'
                                       ``{site}_mean`` / ``{site}_sd``, ``version``
=====================================  =================================================

Means and standard deviations are Monte Carlo estimates over the guide's
draws; cell-by-gene sites (a VAE's decoded ``mu``) are left out: ask
:meth:`ScribeResults.posterior_samples` for them.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import anndata
import numpy as np
import pandas as pd

from scribe.results import ScribeResults

PREFIX = "scribe_"


def _summaries(results: ScribeResults, n_samples: int, seed: int) -> dict[str, Any]:
    """Mean and sd of every site except cell-by-gene ones."""
    n_genes = results.n_genes
    keep = [
        name
        for name, site in results.sites.items()
        if not (site.per_cell and n_genes in site.shape)
    ]
    draws = results.posterior_samples(n_samples, seed, return_sites=keep)
    return {k: (v.mean(axis=0), v.std(axis=0)) for k, v in draws.items()}


def annotate(
    results: ScribeResults, adata: Any = None, n_samples: int = 100, seed: int = 0
) -> Any:
    """Write ``results``' posterior summaries into ``adata`` (see the module table).

    Parameters
    ----------
    results : ScribeResults
    adata : AnnData, optional
        Annotated in place; its cell and gene names must be the fit's.
        Default: a new AnnData of the attached counts (sparse if they are).
    n_samples : int
        Guide draws behind each mean and sd.
    seed : int

    Returns
    -------
    AnnData
        ``adata``.

    Raises
    ------
    ValueError
        If the names or shape differ from the fit's, or no AnnData is given
        and no counts are attached.
    """
    if adata is None:
        data = results._require_data("to_anndata() without an AnnData")
        adata = anndata.AnnData(
            X=data.matrix,
            obs=pd.DataFrame(index=pd.Index(data.cell_names)),
            var=pd.DataFrame(index=pd.Index(data.gene_names)),
        )
    elif not isinstance(adata, anndata.AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")
    results.check_matches("adata", adata.shape, adata.obs_names, adata.var_names)
    uns: dict[str, Any] = {
        "version": importlib.metadata.version("scribe"),
        "config": results.config.model_dump_json(),
        "loss_history": np.asarray(results.loss_history),
    }
    for name, (mean, sd) in _summaries(results, n_samples, seed).items():
        site = results.sites[name]
        if site.per_cell:
            if mean.ndim == 1:
                adata.obs[f"{PREFIX}{name}_mean"] = mean
                adata.obs[f"{PREFIX}{name}_sd"] = sd
        elif site.shape and site.shape[-1] == results.n_genes:
            if mean.ndim == 1:
                adata.var[f"{PREFIX}{name}_mean"] = mean
                adata.var[f"{PREFIX}{name}_sd"] = sd
            else:
                adata.varm[f"{PREFIX}{name}_mean"] = mean.T
                adata.varm[f"{PREFIX}{name}_sd"] = sd.T
        else:
            uns[f"{name}_mean"] = np.asarray(mean)
            uns[f"{name}_sd"] = np.asarray(sd)
    if results.config.n_components is not None:
        probs = results.assignment_probabilities(n_samples, seed)
        adata.obsm[f"{PREFIX}assignment_probs"] = probs
        adata.obs[f"{PREFIX}component"] = pd.Categorical(probs.argmax(axis=1))
    if results.config.guide == "vae":
        adata.obsm["X_scribe"] = results.latent_representation()
    adata.uns["scribe"] = uns
    return adata
