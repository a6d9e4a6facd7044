"""genforge.geo: spatial data augmentation with SpaceGAN that keeps local spatial autocorrelation.

Public API (imported lazily, so ``import genforge.geo`` and the ``genforge`` CLI start fast)::

    from genforge.geo import read_spatial, SpaceGAN, moran, weights
    data = read_spatial("sales.csv", target="price", coords="lon,lat")   # CSV, Parquet, GeoJSON, shapefile
    gan = SpaceGAN(k=8).fit(data)                                         # best-MIE checkpoint kept
    more = gan.sample(n_per_point=10)                                     # long frame with a `draw` column

Layout: ``data`` (read/validate), ``spatial`` (libpysal weights, esda Moran's I, torch Moran's I),
``models`` (SpaceGAN on the core GAN), ``evaluate`` (SpaceGAN's protocol and baselines), ``cli``
(``genforge geo ...``).
"""

from __future__ import annotations

from genforge.lazy import lazy_getattr
from genforge.suite import Suite

SUITE = Suite(
    name="geo",
    title="Geo augmentation",
    summary="SpaceGAN: extra spatial samples (CSV/GeoJSON points, polygons) that keep local Moran's I",
    cli="genforge.geo.cli:app",
    demo="genforge.geo.cli:run_demo",
    estimators=("genforge.geo.models:SpaceGAN",),
    page="genforge.dashboards.views.geo",
    icon=":material/map:",
    models=("genforge.geo.models",),
)

_LAZY = {
    "SpatialData": "genforge.geo.data",
    "read_spatial": "genforge.geo.data",
    "read_layer": "genforge.geo.data",
    "prepare": "genforge.geo.data",
    "baltimore": "genforge.geo.data",
    "reference": "genforge.geo.data",
    "data_root": "genforge.geo.data",
    "weights": "genforge.geo.spatial",
    "moran": "genforge.geo.spatial",
    "sparse_weights": "genforge.geo.spatial",
    "local_moran_torch": "genforge.geo.spatial",
    "global_moran_torch": "genforge.geo.spatial",
    "SpaceGAN": "genforge.geo.models",
    "augment": "genforge.geo.models",
    "score_mean": "genforge.geo.models",
    "Protocol": "genforge.geo.evaluate",
    "run_evaluation": "genforge.geo.evaluate:evaluate",
    "format_table": "genforge.geo.evaluate",
    "write_layer": "genforge.geo.cli",
    "run_demo": "genforge.geo.cli",
}

__all__ = ["SUITE", *_LAZY]


__getattr__ = lazy_getattr("genforge.geo", _LAZY, globals())
