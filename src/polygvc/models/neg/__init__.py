"""Centre-periphery (new economic geography) model with services and numerical simulation.

Modules, bottom to top:

* :mod:`~polygvc.models.neg.equilibrium` parameters, economy and the short-run solver;
* :mod:`~polygvc.models.neg.geography` trade costs from distance and infrastructure,
  synthetic and real (prefecture) geographies;
* :mod:`~polygvc.models.neg.dynamics` replicator dynamics and stable equilibria;
* :mod:`~polygvc.models.neg.krugman` two-region break and sustain points, tomahawk;
* :mod:`~polygvc.models.neg.mapping` polycentricity indices and the GVC proxy;
* :mod:`~polygvc.models.neg.sweeps` parallel parameter sweeps to NetCDF;
* :mod:`~polygvc.models.neg.plots` figures.

:mod:`polygvc.models.centre_periphery` re-exports the public functions.
"""
