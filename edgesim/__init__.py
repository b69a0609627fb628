"""edgesim: a local CloudFront edge.

General layout, layers importing only downward:

    errors, wire, models          base values and the error tree
    config/                       schema (frozen values) and the loader (files -> schema)
    behaviors, cache              path-pattern matching; cache key, TTLs, store, collapsing
    forwarding                    what CloudFront sends to the origin and back to the viewer
    origins/                      the origin clients (HTTP pool, directory origin)
    pipeline                      the ONLY code that puts the stages of a request in order
    trace, explain, diff,         what each answered request did, why, counted and
      metrics, access_log         logged; owned by the server, built from the Exchange
    server, admin, pages          the edge's HTTP front, the control API, error pages
    inspector                     the live inspector page and the JSON/metrics views
    cli, demo                     command-line entry points and the embedded demo
"""

__version__ = "0.1.0"
