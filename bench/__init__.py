"""
Benchmarks of the MRS server: the real server in its own process on
127.0.0.1, driven by load generator processes, measured against references
(OpenSSL, nginx, socat, node-media-server) in the same run.  Run with
C{python -m bench} or C{python -m bench --quick}; see C{docs/benchmarks.rst}.
"""
