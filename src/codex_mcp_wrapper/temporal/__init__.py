"""Scale-out on Temporal: missions as workflows (the engine's own runner inside), tasks as
activities on hosts, big payloads through a shared store. See docs/scale-out.md.

``submitter.TemporalBackend`` is the submitting side (``run --temporal``, ``serve --temporal``;
``relay`` follows a run, through server restarts),
``host.serve_host`` a host (``host --temporal``), ``workflow`` the workflow and the
executor seam inside it, ``shared`` the store, ``devserver`` a loopback dev server.
"""
